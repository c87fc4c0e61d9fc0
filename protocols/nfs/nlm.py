"""The Network Lock Manager (NLM, program 100021): NFSv3 byte-range locks on core.fs locks.

Versions 4 (64-bit ranges, what NFSv3 clients speak), 3 and 1 (32-bit ranges; v1 has no
SHARE/UNSHARE/NM_LOCK/FREE_ALL) are served.  Every lock is a core.fs lock, so an NFS
client's ``fcntl`` lock conflicts with an SMB or core.fs lock on the same bytes, in any
process of the store.

Owners.  NLM names a lock owner by the client host and ``svid`` (its process id); the
core owner string is ``nlm:<client ip>:<caller_name, %-quoted>:<svid>``, as knfsd keys
owners by (host address, caller name, svid).  ``oh`` is not part of it (clients do not
promise the same ``oh`` on UNLOCK; knfsd ignores it too), and TEST shows other owners'
``oh`` empty.  A lock held by a non-NLM owner shows svid 0.

Access.  The lock runs as the caller (the export's squash applied, through
``ctx.resolve``): core.fs asks read permission for a shared lock and write permission for
an exclusive one (POSIX: ``F_RDLCK`` needs a readable descriptor, ``F_WRLCK`` a writable
one), and an exclusive lock on a read-only export is ``NLM4_ROFS``.  knfsd differs: it
lets anyone who may read the file take any lock.  Refusals map as knfsd's: a stale or
forged handle is STALE_FH, a permission refusal FAILED (v1/v3: DENIED_NOLOCKS).

Blocking locks.  LOCK with ``block`` that conflicts answers BLOCKED and queues a waiter.
Waiters are retried in queue order whenever a lock is released in this process and every
``poll_s`` (0.5 s) for releases by other processes (SMB, core.fs users).  Once granted,
the client's lock manager is called back: ``NLM_GRANTED`` (proc 5) for a LOCK,
``GRANTED_MSG`` (proc 10, answered by ``GRANTED_RES``) for a LOCK_MSG, at the request's
source address, on the port its portmapper gives for NLM of that version and transport.
The client answering DENIED (it stopped waiting) releases the lock; no answer keeps it
(a Linux client re-sends its blocked LOCK every 30 s and gets it then).  CANCEL removes
the waiter.  This server has no NLM client side: GRANTED to it is PROC_UNAVAIL.

The ``_MSG`` procedures (TEST_MSG, LOCK_MSG, CANCEL_MSG, UNLOCK_MSG) do the same work and
send the result to the client's lock manager as TEST_RES/LOCK_RES/CANCEL_RES/UNLOCK_RES.

Share reservations (SHARE/UNSHARE, DOS clients) are core.fs share modes
(``fs.open_share``): ``access`` is the open's access and ``mode`` what it denies, so they
conflict with SMB opens too.  NM_LOCK is LOCK without monitoring the client.  FREE_ALL
(and a client's SM_NOTIFY, see :mod:`protocols.nfs.nsm`) releases every lock and share
of the named client.

Grace.  After a restart the previous run's clients reclaim their locks: for ``grace_s``
only LOCK/NM_LOCK/SHARE with ``reclaim`` are served, other LOCKs and TESTs answer
DENIED_GRACE_PERIOD (UNLOCK and CANCEL are served).  :func:`start` skips the grace period
when NSM recorded no client that held locks.

>>> owner_of("10.0.0.1", "node:1", 77)
'nlm:10.0.0.1:node%3A1:77'
>>> core_range(10, 0), core_range(10, (1 << 64) - 10)
((10, 0), (10, 0))
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import itertools
import logging
import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

from core.errors import CoreError, LockConflict, NotFound, ShareViolation, Stale
from core.fs import DELETE, READ, WRITE, FileSystem

from . import nlm_types as T
from .context import Context
from .dispatch import AuthSys, Handler, Program, Request
from .errors import NFS3ERR_BADHANDLE, NFS3ERR_ROFS, NFS3ERR_STALE, NfsError
from .nsm import Locate, StatusMonitor, portmap_locate
from .rpcclient import RpcClient, RpcError
from .xdr import Packer, Unpacker, XdrError

log = logging.getLogger("tessera.nfs.nlm")

MAX_OFF = (1 << 63) - 1       # core.fs ranges end below 2^63
MAX_WAITERS = 10_000
GRANT_TRIES = 3               # NLM_GRANTED attempts before leaving it to the client's retransmitted LOCK
Transport = Literal["tcp", "udp"]


def owner_of(ip: str, caller_name: str, svid: int) -> str:
    return f"nlm:{ip}:{quote(caller_name, safe='')}:{svid}"


def svid_of(owner: str) -> int:
    """The svid of an NLM owner string; 0 for an owner of another protocol.

    >>> svid_of(owner_of("::1", "c", -5)), svid_of("smb:1234")
    (-5, 0)
    """
    if not owner.startswith("nlm:"):
        return 0
    try:
        return int(owner.rsplit(":", 1)[1])
    except ValueError:
        return 0


def core_range(offset: int, length: int) -> tuple[int, int]:
    """An NLM (offset, length) as core.fs's; a range running past 2^63 runs to EOF; FBIG past it."""
    if offset >= MAX_OFF:
        raise _Refuse(T.Stat.FBIG)
    if length and offset + length >= MAX_OFF:
        length = 0
    return offset, length


def norm_ip(ip: str) -> str:
    """An IPv4-mapped IPv6 peer as plain IPv4 (one client, one name, whatever the socket)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return ip


class _Refuse(Exception):
    def __init__(self, stat: int) -> None:
        super().__init__(f"nlm4_stats {stat}")
        self.stat = stat


def status_of(exc: Exception) -> int:
    """The NLM status for an exception of resolve/core.fs (knfsd's mapping)."""
    if isinstance(exc, _Refuse):
        return exc.stat
    if isinstance(exc, NfsError):
        if exc.status in (NFS3ERR_BADHANDLE, NFS3ERR_STALE):
            return T.Stat.STALE_FH
        return T.Stat.ROFS if exc.status == NFS3ERR_ROFS else T.Stat.FAILED
    if isinstance(exc, LockConflict | ShareViolation):
        return T.Stat.DENIED
    if isinstance(exc, Stale | NotFound):
        return T.Stat.STALE_FH
    return T.Stat.FAILED


@dataclass(eq=False)
class _Waiter:
    """A blocked LOCK: retried until granted, cancelled or its client is freed."""

    host: tuple[str, str]          # (ip, caller_name)
    owner: str
    fs: FileSystem                 # the caller's view
    ino: int
    start: int
    length: int
    exclusive: bool
    lock: T.Lock                   # as the client sent it (for the GRANTED call)
    vers: int
    transport: Transport
    async_: bool                   # came as LOCK_MSG: answer with GRANTED_MSG
    cookie: bytes = b""

    @property
    def key(self) -> tuple[str, int, int, int, bool]:
        return (self.owner, self.ino, self.start, self.length, self.exclusive)


@dataclass
class _Host:
    owners: set[str] = field(default_factory=set)
    shares: dict[tuple[int, bytes], list[int]] = field(default_factory=dict)   # (ino, oh) -> open ids


class LockManager:
    """NLM's state: clients and their owners, waiters, share reservations, the grace period."""

    def __init__(self, ctx: Context, monitor: StatusMonitor | None = None, *, grace_s: float = 0.0,
                 poll_s: float = 0.5, locate: Locate = portmap_locate, callback_timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.nsm = monitor
        self.poll_s = poll_s
        self.locate = locate
        self.callback_timeout_s = callback_timeout_s
        self.clock = clock
        self.grace_until = clock() + grace_s
        self._lock = threading.RLock()
        self._hosts: dict[tuple[str, str], _Host] = {}
        self._waiters: list[_Waiter] = []
        self._granted_msgs: dict[bytes, _Waiter] = {}
        self._cookies = itertools.count(int.from_bytes(os.urandom(4), "big") << 24)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="tessera-nlm-cb")
        self._auth = AuthSys(0, (monitor.name if monitor else "tessera")[:255], 0, 0, ())
        self._thread = threading.Thread(target=self._run_waiters, name="tessera-nlm", daemon=True)
        self._thread.start()
        if monitor is not None:
            monitor.on_reboot(self.free_client)

    def in_grace(self) -> bool:
        return self.clock() < self.grace_until

    def close(self) -> None:
        """Stop the waiter thread and callbacks; release every lock and share this manager holds."""
        self._stop.set()
        self._wake.set()
        self._thread.join(10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for name in {name for _, name in self._hosts}:
                self.free_client(name)

    def holds(self, name: str) -> bool:
        """Whether client ``name`` (at any address) has locks or shares here."""
        with self._lock:
            return any(n == name for _, n in self._hosts)

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiters)

    # -- the operations ---------------------------------------------------------------
    def test(self, req: Request, a: T.TestArgs) -> T.TestRes:
        try:
            if self.in_grace():
                raise _Refuse(T.Stat.DENIED_GRACE_PERIOD)
            fs, _, ino = self.ctx.resolve(req, a.lock.fh)
            start, length = core_range(a.lock.offset, a.lock.length)
            ip = norm_ip(req.client[0])
            hit = fs.test_lock(ino, owner_of(ip, a.lock.caller_name, a.lock.svid), start, length, a.exclusive)
        except (NfsError, CoreError, _Refuse) as e:
            return T.TestRes(a.cookie, status_of(e))
        if hit is None:
            return T.TestRes(a.cookie, T.Stat.GRANTED)
        return T.TestRes(a.cookie, T.Stat.DENIED, T.Holder(hit.exclusive, svid_of(hit.owner), b"", hit.start,
                                                           hit.length))

    def lock(self, req: Request, a: T.LockArgs, *, monitor: bool = True, async_: bool = False) -> T.Res:
        try:
            return T.Res(a.cookie, self._lock_or_wait(req, a, monitor, async_))
        except (NfsError, CoreError, _Refuse) as e:
            return T.Res(a.cookie, status_of(e))

    def _lock_or_wait(self, req: Request, a: T.LockArgs, monitor: bool, async_: bool) -> int:
        if self.in_grace() and not a.reclaim:
            return T.Stat.DENIED_GRACE_PERIOD
        lk = a.lock
        fs, _, ino = self.ctx.resolve(req, lk.fh, write=a.exclusive)
        start, length = core_range(lk.offset, lk.length)
        ip = norm_ip(req.client[0])
        host = (ip, lk.caller_name)
        owner = owner_of(ip, lk.caller_name, lk.svid)
        if monitor and self.nsm is not None:
            try:
                self.nsm.monitor(lk.caller_name, ip)
            except CoreError as e:
                log.error("cannot record NLM client %s (%s): %s", lk.caller_name, ip, e)
                return T.Stat.DENIED_NOLOCKS
        w = _Waiter(host, owner, fs, ino, start, length, a.exclusive, lk, req.vers, _transport(req), async_)
        with self._lock:
            self._hosts.setdefault(host, _Host()).owners.add(owner)
            try:
                fs.lock(ino, owner, start, length, a.exclusive)
            except LockConflict:
                if not a.block:
                    return T.Stat.DENIED
                return self._enqueue(w)
            self._waiters = [x for x in self._waiters if x.key != w.key]   # a re-sent blocked LOCK got it
        return T.Stat.GRANTED

    def _enqueue(self, w: _Waiter) -> int:
        for i, x in enumerate(self._waiters):
            if x.key == w.key:
                self._waiters[i] = w    # the client re-sent its blocked LOCK: keep its place
                return T.Stat.BLOCKED
        if len(self._waiters) >= MAX_WAITERS:
            return T.Stat.DENIED_NOLOCKS
        self._waiters.append(w)
        return T.Stat.BLOCKED

    def cancel(self, req: Request, a: T.CancArgs) -> T.Res:
        try:
            _, _, ino = self.ctx.resolve(req, a.lock.fh)
            start, length = core_range(a.lock.offset, a.lock.length)
        except (NfsError, CoreError, _Refuse) as e:
            return T.Res(a.cookie, status_of(e))
        key = (owner_of(norm_ip(req.client[0]), a.lock.caller_name, a.lock.svid), ino, start, length, a.exclusive)
        with self._lock:
            self._waiters = [x for x in self._waiters if x.key != key]
        return T.Res(a.cookie, T.Stat.GRANTED)

    def unlock(self, req: Request, a: T.UnlockArgs) -> T.Res:
        try:
            fs, _, ino = self.ctx.resolve(req, a.lock.fh)
            start, length = core_range(a.lock.offset, a.lock.length)
            fs.unlock(ino, owner_of(norm_ip(req.client[0]), a.lock.caller_name, a.lock.svid), start, length)
        except (NfsError, CoreError, _Refuse) as e:
            return T.Res(a.cookie, status_of(e))
        self._wake.set()
        return T.Res(a.cookie, T.Stat.GRANTED)

    def share(self, req: Request, a: T.ShareArgs) -> T.ShareRes:
        s = a.share
        try:
            if self.in_grace() and not a.reclaim:
                raise _Refuse(T.Stat.DENIED_GRACE_PERIOD)
            fs, _, ino = self.ctx.resolve(req, s.fh, write=bool(s.access & T.FSA_W))
            ip = norm_ip(req.client[0])
            access = (READ if s.access & T.FSA_R else 0) | (WRITE if s.access & T.FSA_W else 0)
            allowed = (READ | WRITE | DELETE) & ~((READ if s.mode & T.FSM_DR else 0) |
                                                   (WRITE if s.mode & T.FSM_DW else 0))
            oid = fs.open_share(ino, f"nlm-share:{ip}:{quote(s.caller_name, safe='')}:{s.oh.hex()}", access,
                                allowed)
        except (NfsError, CoreError, _Refuse) as e:
            return T.ShareRes(a.cookie, status_of(e))
        with self._lock:
            self._hosts.setdefault((ip, s.caller_name), _Host()).shares.setdefault((ino, s.oh), []).append(oid)
        return T.ShareRes(a.cookie, T.Stat.GRANTED)

    def unshare(self, req: Request, a: T.ShareArgs) -> T.ShareRes:
        s = a.share
        try:
            _, _, ino = self.ctx.resolve(req, s.fh)
        except (NfsError, CoreError) as e:
            return T.ShareRes(a.cookie, status_of(e))
        with self._lock:
            h = self._hosts.get((norm_ip(req.client[0]), s.caller_name))
            ids = h.shares.pop((ino, s.oh), []) if h is not None else []
        for oid in ids:
            self.ctx.fs.close_share(oid)
        return T.ShareRes(a.cookie, T.Stat.GRANTED)

    def free_client(self, name: str, ip: str | None = None) -> None:
        """Release every lock, share and waiter of client ``name`` (at ``ip`` if given: FREE_ALL; SM_NOTIFY: any)."""
        def gone(host: tuple[str, str]) -> bool:
            return host[1] == name and (ip is None or host[0] == ip)

        with self._lock:
            hosts = [self._hosts.pop(k) for k in [k for k in self._hosts if gone(k)]]
            self._waiters = [w for w in self._waiters if not gone(w.host)]
            self._granted_msgs = {c: w for c, w in self._granted_msgs.items() if not gone(w.host)}
        for h in hosts:
            for owner in h.owners:
                self.ctx.fs.unlock_all(owner)
            for ids in h.shares.values():
                for oid in ids:
                    self.ctx.fs.close_share(oid)
        if hosts:
            log.info("released the NLM locks of %s", name)
            self._wake.set()

    # -- waiters and GRANTED callbacks --------------------------------------------------
    def _run_waiters(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.retry_waiters()
            except Exception:
                log.exception("retrying blocked NLM locks failed")

    def retry_waiters(self) -> None:
        """Try every queued waiter once, in order; grant and call back those that got their lock."""
        with self._lock:
            queue = list(self._waiters)
        for w in queue:
            with self._lock:
                if w not in self._waiters:
                    continue
                try:
                    w.fs.lock(w.ino, w.owner, w.start, w.length, w.exclusive)
                except LockConflict:
                    continue
                except CoreError as e:
                    log.info("dropping blocked lock of %s on inode %d: %s", w.owner, w.ino, e)
                    self._waiters.remove(w)
                    continue
                self._waiters.remove(w)
                w.cookie = struct.pack(">Q", next(self._cookies) & (2**64 - 1))
                if w.async_:
                    self._granted_msgs[w.cookie] = w
            self._pool.submit(self._grant, w)

    def _grant(self, w: _Waiter) -> None:
        args = Packer()
        T.pack_testargs(args, T.TestArgs(w.cookie, w.exclusive, w.lock), w.vers == 4)
        if w.async_:
            self._send(w.host[0], w.vers, w.transport, T.Proc.GRANTED_MSG, args)
            return
        for attempt in range(GRANT_TRIES):
            if self._stop.is_set():
                return
            try:
                host, port = self.locate(w.host[0], T.NLM_PROG, w.vers, w.transport)
                with RpcClient(host, port, transport=w.transport, timeout=self.callback_timeout_s,
                               auth=self._auth) as c:
                    res = T.unpack_res(Unpacker(c.call_ok(T.NLM_PROG, w.vers, T.Proc.GRANTED, args)))
            except (OSError, RpcError, XdrError) as e:
                log.debug("NLM_GRANTED to %s (attempt %d): %s", w.host, attempt + 1, e)
                self._stop.wait(min(2.0 ** attempt, 10.0))
                continue
            self._granted_reply(w, res.stat)
            if res.stat != T.Stat.DENIED_GRACE_PERIOD:
                return
            self._stop.wait(5.0)
        log.info("no answer to NLM_GRANTED from %s; the lock stays held for its next LOCK", w.host)

    def _granted_reply(self, w: _Waiter, stat: int) -> None:
        if stat in (T.Stat.GRANTED, T.Stat.DENIED_GRACE_PERIOD):
            return
        log.info("%s no longer wants the lock granted on inode %d (%d): releasing it", w.host, w.ino, stat)
        try:
            self.ctx.fs.unlock(w.ino, w.owner, w.start, w.length)
        except CoreError as e:
            log.warning("releasing an unwanted granted lock failed: %s", e)
        self._wake.set()

    def granted_res(self, req: Request, r: T.Res) -> None:
        with self._lock:
            w = self._granted_msgs.pop(bytes(r.cookie), None)
        if w is not None:
            self._granted_reply(w, r.stat)

    def _send(self, ip: str, vers: int, transport: Transport, proc: int, args: Packer) -> None:
        """Call the client's lock manager one way (a _RES or GRANTED_MSG); failures are logged."""
        try:
            host, port = self.locate(ip, T.NLM_PROG, vers, transport)
            with RpcClient(host, port, transport=transport, timeout=self.callback_timeout_s, retries=0,
                           auth=self._auth) as c:
                c.call(T.NLM_PROG, vers, proc, args)
        except (OSError, RpcError) as e:
            log.debug("NLM callback %d to %s: %s", proc, ip, e)

    def reply_async(self, req: Request, proc: int, args: Packer) -> None:
        self._pool.submit(self._send, norm_ip(req.client[0]), req.vers, _transport(req), proc, args)

    # -- the RPC program --------------------------------------------------------------
    def program(self) -> Program:
        return Program(T.NLM_PROG, {v: _procs(self, v) for v in (1, 3, 4)})


def _transport(req: Request) -> Transport:
    return "udp" if req.transport == "udp" else "tcp"


def _void(req: Request, u: Unpacker) -> Packer:
    return Packer()


def _procs(m: LockManager, vers: int) -> dict[int, Handler]:
    """Procedure table of one NLM version (decoders and encoders with that version's widths)."""
    wide = vers == 4

    def res(r: T.Res) -> Packer:
        p = Packer()
        T.pack_res(p, T.Res(r.cookie, T.downgrade(r.stat, vers)))
        return p

    def testres(r: T.TestRes) -> Packer:
        p = Packer()
        T.pack_testres(p, T.TestRes(r.cookie, T.downgrade(r.stat, vers), r.holder), wide)
        return p

    def shareres(r: T.ShareRes) -> Packer:
        p = Packer()
        T.pack_shareres(p, T.ShareRes(r.cookie, T.downgrade(r.stat, vers), r.sequence))
        return p

    def free_all(req: Request, u: Unpacker) -> Packer:
        n = T.unpack_notify(u)
        m.free_client(n.name, norm_ip(req.client[0]))   # as knfsd: the client at the caller's address
        if m.nsm is not None and not m.holds(n.name):
            m.nsm.forget(n.name)
        return Packer()

    def granted_res(req: Request, u: Unpacker) -> Packer:
        m.granted_res(req, T.unpack_res(u))
        return Packer()

    def msg(proc: int, result: Callable[[Request, Unpacker], Packer]) -> Handler:
        def handler(req: Request, u: Unpacker) -> Packer:
            m.reply_async(req, proc, result(req, u))
            return Packer()
        return handler

    def test(req: Request, u: Unpacker) -> Packer:
        return testres(m.test(req, T.unpack_testargs(u, wide)))

    def lock(req: Request, u: Unpacker) -> Packer:
        return res(m.lock(req, T.unpack_lockargs(u, wide)))

    def lock_msg(req: Request, u: Unpacker) -> Packer:
        return res(m.lock(req, T.unpack_lockargs(u, wide), async_=True))

    def cancel(req: Request, u: Unpacker) -> Packer:
        return res(m.cancel(req, T.unpack_cancargs(u, wide)))

    def unlock(req: Request, u: Unpacker) -> Packer:
        return res(m.unlock(req, T.unpack_unlockargs(u, wide)))

    procs: dict[int, Handler] = {
        T.Proc.NULL: _void,
        T.Proc.TEST: test,
        T.Proc.LOCK: lock,
        T.Proc.CANCEL: cancel,
        T.Proc.UNLOCK: unlock,
        T.Proc.TEST_MSG: msg(T.Proc.TEST_RES, test),
        T.Proc.LOCK_MSG: msg(T.Proc.LOCK_RES, lock_msg),
        T.Proc.CANCEL_MSG: msg(T.Proc.CANCEL_RES, cancel),
        T.Proc.UNLOCK_MSG: msg(T.Proc.UNLOCK_RES, unlock),
        T.Proc.GRANTED_MSG: _void,     # no client side here: ignored
        T.Proc.TEST_RES: _void,
        T.Proc.LOCK_RES: _void,
        T.Proc.CANCEL_RES: _void,
        T.Proc.UNLOCK_RES: _void,
        T.Proc.GRANTED_RES: granted_res,
    }
    if vers >= 3:
        procs[T.Proc.SHARE] = lambda req, u: shareres(m.share(req, T.unpack_shareargs(u)))
        procs[T.Proc.UNSHARE] = lambda req, u: shareres(m.unshare(req, T.unpack_shareargs(u)))
        procs[T.Proc.NM_LOCK] = lambda req, u: res(m.lock(req, T.unpack_lockargs(u, wide), monitor=False))
        procs[T.Proc.FREE_ALL] = free_all
    return procs


# -- assembly -----------------------------------------------------------------------------

@dataclass
class Locking:
    """NLM and NSM of one server: serve :meth:`programs`, :meth:`announce` once listening, :meth:`close` on stop."""

    nlm: LockManager
    nsm: StatusMonitor

    def programs(self) -> list[Program]:
        return [self.nlm.program(), self.nsm.program()]

    def announce(self) -> None:
        """Tell the previous run's clients that the server restarted (call once the port is up:
        they reclaim their locks at once, and a Linux client drops a lock whose reclaim fails)."""
        self.nsm.notify_clients()

    def close(self) -> None:
        self.nlm.close()
        self.nsm.close()


def start(ctx: Context, *, grace_s: float = 90.0, name: str | None = None, locate: Locate = portmap_locate,
          poll_s: float = 0.5) -> Locking:
    """Bump NSM's state and start NLM, with a grace period when the previous run had lock clients.

    Serve ``programs()``, then call ``announce()`` once the port is up; ``close()`` at stop.

    ``name`` is the server name sent in SM_NOTIFY (default: the host name); ``locate`` finds a
    client's RPC services (default: its portmapper; tests point it at their own servers).
    """
    nsm = StatusMonitor(ctx.fs, name=name, locate=locate)
    previous = nsm.start()
    if previous:
        log.info("NLM grace period of %.0f s for %d client(s) to reclaim locks", grace_s, len(previous))
    nlm = LockManager(ctx, nsm, grace_s=grace_s if previous else 0.0, poll_s=poll_s, locate=locate)
    return Locking(nlm, nsm)
