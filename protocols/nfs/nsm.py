"""The Network Status Monitor (NSM, program 100024 v1): restart recovery for NLM locks.

NLM locks live in core.fs and die with the process that took them, so after a server
restart every NFSv3 client must be told to take its locks again.  That is NSM's job:

* The server's *state number* is odd while it is up and grows on every start
  (``+2`` after a clean run left it odd, ``+1`` otherwise).
* Every client that takes an NLM lock is *recorded* (durably, before the lock is
  granted) with its name and address.
* On start the state is bumped and, once the server listens
  (:meth:`StatusMonitor.notify_clients`), ``SM_NOTIFY(server name, new state)`` goes to every
  recorded client's statd (found through that host's portmapper, UDP), in the
  background with retries (1 s doubling to 30 s, for ``give_up_s``, 15 minutes by
  default).  The client's lock manager then reclaims its locks while NLM's grace period
  refuses new ones.  A client that answered is dropped from the record (it is recorded
  again as soon as it locks again); one that never answered stays for the next start.
* A client's statd sends us ``SM_NOTIFY(client name, state)`` when *it* restarts: its
  locks are released (NLM's FREE_ALL logic, through :meth:`StatusMonitor.on_reboot`)
  and it leaves the record.  Matching is by name, as the client's locks carry it
  (``caller_name``); NSM has no authentication, like NLM itself.

SM_MON, SM_UNMON, SM_UNMON_ALL and SM_SIMU_CRASH are a lock manager's requests to its
*local* statd: they are honoured from loopback addresses only (as Linux's rpc.statd
does); from elsewhere SM_MON answers ``stat_fail`` and the others do nothing.  A host
watched through SM_MON is recorded like a lock client; when it reports a restart the
watcher's ``my_id`` procedure is called with ``sm_status`` (on ``my_id.name``, normally
127.0.0.1).  SM_STAT answers ``stat_succ`` and the current state.

The record lives in the store, in the admin-only directory ``system_dir("nfs")``, as the
file ``nsm-state``: UTF-8 JSON, format version 1::

    {"format": "tessera-nsm", "version": 1, "state": 7,
     "clients": [{"name": "node12", "addr": "10.0.0.12"}, {"name": "build", "addr": null}]}

``addr`` is the address the client last locked from (null for an SM_MON host: its name is
resolved when it is notified).  One NFS server per store keeps this file; servers on
several nodes of one store would need one file each (not done yet).

>>> st = _State.load(None)
>>> (st.state, st.clients)
(0, {})
>>> st.state = next_state(st.state); st.clients["c"] = "10.0.0.1"
>>> _State.load(st.dump()).clients, next_state(1), next_state(2)
({'c': '10.0.0.1'}, 3, 3)
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from core.errors import CoreError, NotFound
from core.fs import FileSystem

from . import nlm_types as T
from . import rpcbind
from .dispatch import Handler, Program, Request
from .rpcclient import RpcClient, RpcError
from .xdr import Packer, Unpacker, XdrError

log = logging.getLogger("tessera.nfs.nsm")

STATE_FILE = "nsm-state"
FORMAT = "tessera-nsm"
VERSION = 1

# (host, prog, vers, transport) -> (host, port) of that RPC service
Locate = Callable[[str, int, int, Literal["tcp", "udp"]], tuple[str, int]]


def portmap_locate(host: str, prog: int, vers: int, transport: Literal["tcp", "udp"]) -> tuple[str, int]:
    """Where ``prog``/``vers`` listens on ``host``, asked of its portmapper; OSError if not registered."""
    port = rpcbind.getport(host, prog, vers, transport, timeout=3.0)
    if not port:
        raise ConnectionRefusedError(f"program {prog} v{vers} is not registered with {host}'s portmapper")
    return host, port


def is_loopback(ip: str) -> bool:
    """Whether a peer address is this host's loopback (IPv4, IPv6, or IPv4-mapped).

    >>> [is_loopback(a) for a in ("127.0.0.1", "::1", "::ffff:127.0.0.2", "10.0.0.1", "junk")]
    [True, True, True, False, False]
    """
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def next_state(state: int) -> int:
    """The state number after a start: the next odd number above ``state``."""
    return state + 2 if state % 2 else state + 1


@dataclass
class _State:
    """What ``nsm-state`` holds."""

    state: int = 0
    clients: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def load(cls, raw: bytes | None) -> _State:
        if not raw:
            return cls()
        doc = json.loads(raw.decode("utf-8"))
        if doc.get("format") != FORMAT or doc.get("version") != VERSION:
            raise ValueError(f"{STATE_FILE}: unknown format {doc.get('format')!r} version {doc.get('version')!r}")
        clients = {str(c["name"]): (None if c.get("addr") is None else str(c["addr"])) for c in doc["clients"]}
        return cls(int(doc["state"]), clients)

    def dump(self) -> bytes:
        doc = {"format": FORMAT, "version": VERSION, "state": self.state,
               "clients": [{"name": n, "addr": a} for n, a in sorted(self.clients.items())]}
        return json.dumps(doc, indent=1).encode("utf-8")


@dataclass(frozen=True)
class _Watch:
    """An SM_MON registration: call ``my_id`` with ``priv`` when ``mon_name`` restarts."""

    mon_name: str
    my_id: T.MyId
    priv: bytes


class StatusMonitor:
    """The server's statd: its state number, the recorded clients, SM_NOTIFY in and out."""

    def __init__(self, fs: FileSystem, *, name: str | None = None, locate: Locate = portmap_locate,
                 give_up_s: float = 900.0, retry_max_s: float = 30.0, timeout_s: float = 3.0) -> None:
        self.fs = fs                          # the admin view
        self.name = name or socket.gethostname()
        self.locate = locate
        self.give_up_s = give_up_s
        self.retry_max_s = retry_max_s
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._st = _State()
        self._current: set[str] = set()       # recorded during this run (they hold locks now)
        self._watches: list[_Watch] = []
        self._hooks: list[Callable[[str], None]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._dir: int | None = None
        self._previous: dict[str, str | None] = {}
        self.notified: list[str] = []          # clients that acknowledged our SM_NOTIFY (tests, logs)

    @property
    def state(self) -> int:
        return self._st.state

    # -- persistence ------------------------------------------------------------------
    def _dir_ino(self) -> int:
        if self._dir is None:
            self._dir = self.fs.system_dir("nfs")
        return self._dir

    def _read(self) -> bytes | None:
        try:
            attr = self.fs.lookup(self._dir_ino(), STATE_FILE)
        except NotFound:
            return None
        return self.fs.read(attr.ino, 0, attr.size)

    def _save(self) -> None:
        """Write the record (the caller holds ``_lock``); durable on return."""
        self.fs.write_file(self._dir_ino(), STATE_FILE, self._st.dump(), mode=0o600)

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> list[str]:
        """Bump the state and save it; returns the clients recorded by the previous run.

        Those may reclaim locks (NLM needs a grace period only when there are some); call
        :meth:`notify_clients` once the server listens, so that their reclaims find it.
        """
        with self._lock:
            try:
                self._st = _State.load(self._read())
            except (ValueError, KeyError, TypeError) as e:
                log.error("%s is unreadable (%s): starting from state 0 with no clients", STATE_FILE, e)
                self._st = _State()
            self._st.state = next_state(self._st.state)
            self._save()
            self._previous = dict(self._st.clients)
        log.info("NSM state %d; %d client(s) to tell of the restart", self._st.state, len(self._previous))
        return sorted(self._previous)

    def notify_clients(self) -> None:
        """Send SM_NOTIFY to the previous run's clients, in the background with retries (once)."""
        previous, self._previous = self._previous, {}
        if previous:
            self._spawn(self._notify_all, previous, self.state)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def _spawn(self, fn: Callable[..., None], *args: object) -> None:
        t = threading.Thread(target=fn, args=args, name="tessera-nsm", daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    # -- recording (NLM calls these) --------------------------------------------------
    def monitor(self, name: str, addr: str | None) -> None:
        """Record a client that took a lock (durable before return when it is new or moved)."""
        with self._lock:
            self._current.add(name)
            if name in self._st.clients and self._st.clients[name] == addr:
                return
            self._st.clients[name] = addr
            self._save()

    def forget(self, name: str) -> None:
        with self._lock:
            self._current.discard(name)
            if self._st.clients.pop(name, False) is not False:
                self._save()

    def on_reboot(self, hook: Callable[[str], None]) -> None:
        """Call ``hook(client name)`` when a client reports a restart (NLM frees its locks)."""
        self._hooks.append(hook)

    def rebooted(self, name: str, state: int) -> None:
        """A client restarted: release what it held, tell its watchers, forget it."""
        log.info("client %r restarted (state %d): releasing its locks", name, state)
        for hook in self._hooks:
            try:
                hook(name)
            except Exception:
                log.exception("releasing the locks of %r failed", name)
        watches = [w for w in self._watches if w.mon_name == name]
        if watches:
            self._spawn(self._call_watchers, watches, state)
        self.forget(name)

    # -- outgoing SM_NOTIFY -----------------------------------------------------------
    def _notify_all(self, clients: dict[str, str | None], state: int) -> None:
        pending = dict(clients)
        deadline = time.monotonic() + self.give_up_s
        wait = 1.0
        while pending and not self._stop.is_set():
            for name, addr in list(pending.items()):
                if self._notify_one(name, addr, state):
                    del pending[name]
                    self.notified.append(name)
                    with self._lock:
                        if name not in self._current and self._st.clients.get(name, False) == addr:
                            del self._st.clients[name]
                            self._save()
            if not pending or time.monotonic() + wait > deadline:
                break
            self._stop.wait(wait)
            wait = min(wait * 2, self.retry_max_s)
        if pending:
            log.warning("NSM: no answer to SM_NOTIFY from %s; they stay recorded", ", ".join(sorted(pending)))

    def _notify_one(self, name: str, addr: str | None, state: int) -> bool:
        host = addr or name
        args = Packer()
        T.pack_stat_chge(args, T.StatChge(self.name, state))
        try:
            where = self.locate(host, T.NSM_PROG, T.NSM_VERS, "udp")
            with RpcClient(*where, transport="udp", timeout=self.timeout_s) as c:
                c.call_ok(T.NSM_PROG, T.NSM_VERS, T.SmProc.NOTIFY, args)
        except (OSError, RpcError, XdrError, CoreError) as e:
            log.debug("SM_NOTIFY to %s (%s): %s", name, host, e)
            return False
        log.info("told %s (%s) that this server restarted (state %d)", name, host, state)
        return True

    def _call_watchers(self, watches: list[_Watch], state: int) -> None:
        for w in watches:
            args = Packer()
            T.pack_sm_status(args, T.SmStatus(w.mon_name, state, w.priv))
            try:
                where = self.locate(w.my_id.name, w.my_id.prog, w.my_id.vers, "udp")
                with RpcClient(*where, transport="udp", timeout=self.timeout_s) as c:
                    c.call(w.my_id.prog, w.my_id.vers, w.my_id.proc, args)
            except (OSError, RpcError) as e:
                log.warning("SM_MON callback for %s to %s failed: %s", w.mon_name, w.my_id, e)

    # -- the RPC program --------------------------------------------------------------
    def program(self) -> Program:
        procs: dict[int, Handler] = {
            T.SmProc.NULL: lambda req, u: Packer(),
            T.SmProc.STAT: self._sm_stat,
            T.SmProc.MON: self._sm_mon,
            T.SmProc.UNMON: self._sm_unmon,
            T.SmProc.UNMON_ALL: self._sm_unmon_all,
            T.SmProc.SIMU_CRASH: self._sm_simu_crash,
            T.SmProc.NOTIFY: self._sm_notify,
        }
        return Program(T.NSM_PROG, {T.NSM_VERS: procs})

    def _stat_res(self, res: int) -> Packer:
        p = Packer()
        T.pack_sm_stat_res(p, T.SmStatRes(res, self.state))
        return p

    def _state_only(self) -> Packer:
        p = Packer()
        T.pack_sm_stat(p, self.state)
        return p

    def _sm_stat(self, req: Request, u: Unpacker) -> Packer:
        T.unpack_sm_name(u)
        return self._stat_res(T.STAT_SUCC)

    def _sm_mon(self, req: Request, u: Unpacker) -> Packer:
        mon = T.unpack_mon(u)
        if not is_loopback(req.client[0]):
            log.warning("SM_MON from %s refused: only local lock managers may ask", req.client[0])
            return self._stat_res(T.STAT_FAIL)
        w = _Watch(mon.mon_id.mon_name, mon.mon_id.my_id, mon.priv)
        with self._lock:
            self._watches = [x for x in self._watches if (x.mon_name, x.my_id) != (w.mon_name, w.my_id)] + [w]
            if w.mon_name not in self._st.clients:
                self._st.clients[w.mon_name] = None
                self._save()
        return self._stat_res(T.STAT_SUCC)

    def _drop_watches(self, keep: Callable[[_Watch], bool]) -> None:
        with self._lock:
            gone = {w.mon_name for w in self._watches if not keep(w)}
            self._watches = [w for w in self._watches if keep(w)]
            still = {w.mon_name for w in self._watches} | self._current
            dropped = [n for n in gone - still if n in self._st.clients]
            for n in dropped:
                del self._st.clients[n]
            if dropped:
                self._save()

    def _sm_unmon(self, req: Request, u: Unpacker) -> Packer:
        mid = T.unpack_mon_id(u)
        if is_loopback(req.client[0]):
            self._drop_watches(lambda w: (w.mon_name, w.my_id) != (mid.mon_name, mid.my_id))
        return self._state_only()

    def _sm_unmon_all(self, req: Request, u: Unpacker) -> Packer:
        my = T.unpack_my_id(u)
        if is_loopback(req.client[0]):
            self._drop_watches(lambda w: w.my_id != my)
        return self._state_only()

    def _sm_simu_crash(self, req: Request, u: Unpacker) -> Packer:
        if is_loopback(req.client[0]):
            with self._lock:
                self._st.state += 2
                self._save()
                clients = dict(self._st.clients)
            if clients:
                self._spawn(self._notify_all, clients, self.state)
        return Packer()

    def _sm_notify(self, req: Request, u: Unpacker) -> Packer:
        sc = T.unpack_stat_chge(u)
        if (sc.mon_name, sc.state) == (self.name, self.state):
            # our own notice came back: the client's address led to this server (a NAT, or qemu's user network)
            log.info("SM_NOTIFY for a client reached this server itself: that client cannot be told")
            return Packer()
        self.rebooted(sc.mon_name, sc.state)
        return Packer()
