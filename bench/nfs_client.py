"""A minimal pipelining NFSv3 client (ONC-RPC over TCP, AUTH_SYS) for the benchmarks.

It is written from RFC 5531 / RFC 1813 with ``struct`` alone and shares no code with the
server under test, so both servers in ``bench/nfs.py`` get exactly the same client.  A window
of calls goes out in one ``sendall`` and the replies are matched back by xid, so one connection
keeps many calls in flight; several connections run in threads (socket calls release the GIL).

    >>> fattr = bytes(84)
    >>> Parse(struct.pack(">I", 1) + fattr + struct.pack(">I", 0)).post_op_attr() == fattr
    True
    >>> p = Pack(); p.string("ab"); p.u64(5); bytes(p.b).hex()
    '00000002616200000000000000000005'
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

NFS_PROG, NFS_VERS = 100003, 3
MOUNT_PROG, MOUNT_VERS = 100005, 3
GETATTR, LOOKUP, WRITE, CREATE, MKDIR, READDIRPLUS, COMMIT = 1, 3, 7, 8, 9, 17, 21
MNT = 1
UNSTABLE, DATA_SYNC, FILE_SYNC = 0, 1, 2
UNCHECKED, GUARDED = 0, 1
FATTR_SIZE = 84

_xids = itertools.count(int.from_bytes(os.urandom(3), "big") << 8)
_xid_lock = threading.Lock()


def next_xid() -> int:
    with _xid_lock:
        return next(_xids) & 0xFFFFFFFF


class RpcError(Exception):
    pass


class NfsStatus(Exception):
    def __init__(self, proc: int, status: int) -> None:
        super().__init__(f"NFS procedure {proc} failed with status {status}")
        self.proc, self.status = proc, status


class Pack:
    """XDR encoding into a bytearray (RFC 4506)."""

    def __init__(self) -> None:
        self.b = bytearray()

    def u32(self, v: int) -> None:
        self.b += struct.pack(">I", v)

    def u64(self, v: int) -> None:
        self.b += struct.pack(">Q", v)

    def opaque(self, v: bytes) -> None:
        self.b += struct.pack(">I", len(v)) + v + bytes(-len(v) % 4)

    def string(self, v: str) -> None:
        self.opaque(v.encode())

    def fixed(self, v: bytes) -> None:
        self.b += v + bytes(-len(v) % 4)


class Parse:
    """XDR decoding of one reply body."""

    def __init__(self, data: bytes | memoryview, pos: int = 0) -> None:
        self.d = memoryview(data)
        self.p = pos

    def u32(self) -> int:
        v: int = struct.unpack_from(">I", self.d, self.p)[0]
        self.p += 4
        return v

    def u64(self) -> int:
        v: int = struct.unpack_from(">Q", self.d, self.p)[0]
        self.p += 8
        return v

    def opaque(self) -> bytes:
        n = self.u32()
        v = bytes(self.d[self.p:self.p + n])
        self.p += n + (-n % 4)
        return v

    def fixed(self, n: int) -> bytes:
        v = bytes(self.d[self.p:self.p + n])
        self.p += n + (-n % 4)
        return v

    def post_op_attr(self) -> bytes | None:
        return self.fixed(FATTR_SIZE) if self.u32() else None

    def wcc_data(self) -> None:
        if self.u32():  # pre_op_attr: size, mtime, ctime
            self.p += 24
        self.post_op_attr()


def sattr3(mode: int | None = None, size: int | None = None) -> bytes:
    p = Pack()
    for v in (mode, None, None):  # mode, uid, gid
        p.u32(v is not None)
        if v is not None:
            p.u32(v)
    p.u32(size is not None)
    if size is not None:
        p.u64(size)
    p.u32(0)  # atime DONT_CHANGE
    p.u32(0)  # mtime DONT_CHANGE
    return bytes(p.b)


@dataclass(frozen=True)
class Cred:
    uid: int = 0
    gid: int = 0
    gids: tuple[int, ...] = ()
    machine: str = "bench"

    def encode(self) -> bytes:
        body = Pack()
        body.u32(0)  # stamp
        body.string(self.machine)
        body.u32(self.uid)
        body.u32(self.gid)
        body.u32(len(self.gids))
        for g in self.gids:
            body.u32(g)
        p = Pack()
        p.u32(1)  # AUTH_SYS
        p.opaque(bytes(body.b))
        p.u32(0)  # verifier AUTH_NONE
        p.u32(0)
        return bytes(p.b)


def call_record(xid: int, prog: int, vers: int, proc: int, cred: bytes, args: bytes) -> bytes:
    """One RPC CALL message in one record-marking fragment (last-fragment bit set)."""
    body = struct.pack(">IIIIII", xid, 0, 2, prog, vers, proc) + cred + args
    return struct.pack(">I", 0x80000000 | len(body)) + body


class Conn:
    """One TCP connection carrying pipelined calls."""

    def __init__(self, host: str, port: int, cred: Cred) -> None:
        self.sock = socket.create_connection((host, port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.cred = cred.encode()
        self.buf = bytearray()

    def close(self) -> None:
        self.sock.close()

    def _record(self) -> bytes:
        """Read one complete record (all fragments) from the socket."""
        out = bytearray()
        while True:
            while len(self.buf) < 4:
                self._fill()
            mark = struct.unpack_from(">I", self.buf)[0]
            n = mark & 0x7FFFFFFF
            while len(self.buf) < 4 + n:
                self._fill()
            out += self.buf[4:4 + n]
            del self.buf[:4 + n]
            if mark & 0x80000000:
                return bytes(out)

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise RpcError("connection closed by the server")
        self.buf += chunk

    def calls(self, prog: int, vers: int, proc: int, args: Sequence[bytes]) -> list[Parse]:
        """Send every call at once, wait for every reply; replies (positioned at the results) in call order."""
        xids = [next_xid() for _ in args]
        self.sock.sendall(b"".join(call_record(x, prog, vers, proc, self.cred, a)
                                   for x, a in zip(xids, args, strict=True)))
        got: dict[int, Parse] = {}
        while len(got) < len(xids):
            rec = self._record()
            xid, mtype, stat = struct.unpack_from(">III", rec)
            if mtype != 1:
                raise RpcError(f"not a reply: message type {mtype}")
            if stat != 0:
                raise RpcError(f"call denied (reply_stat {stat})")
            r = Parse(rec, 12)
            r.u32()  # verifier flavor
            r.opaque()
            accept = r.u32()
            if accept != 0:
                raise RpcError(f"call not accepted: accept_stat {accept} (prog {prog} proc {proc})")
            got[xid] = r
        return [got[x] for x in xids]

    def call(self, prog: int, vers: int, proc: int, args: bytes) -> Parse:
        return self.calls(prog, vers, proc, [args])[0]

    def nfs(self, proc: int, args: Sequence[bytes]) -> list[Parse]:
        """NFS calls; raises NfsStatus on the first reply whose status is not NFS3_OK."""
        out = self.calls(NFS_PROG, NFS_VERS, proc, args)
        for r in out:
            st = r.u32()
            if st != 0:
                raise NfsStatus(proc, st)
        return out


def fh_args(fh: bytes) -> bytes:
    p = Pack()
    p.opaque(fh)
    return bytes(p.b)


def diropargs(dir_fh: bytes, name: str) -> bytes:
    p = Pack()
    p.opaque(dir_fh)
    p.string(name)
    return bytes(p.b)


class Client:
    """The operations the benchmark needs, over ``conns`` connections to one server."""

    def __init__(self, host: str, port: int, mnt_port: int, cred: Cred) -> None:
        self.host, self.port, self.mnt_port, self.cred = host, port, mnt_port, cred

    def connect(self) -> Conn:
        return Conn(self.host, self.port, self.cred)

    def mount(self, path: str) -> bytes:
        c = Conn(self.host, self.mnt_port, self.cred)
        try:
            p = Pack()
            p.string(path)
            r = c.call(MOUNT_PROG, MOUNT_VERS, MNT, bytes(p.b))
            st = r.u32()
            if st != 0:
                raise NfsStatus(-MNT, st)
            return r.opaque()
        finally:
            c.close()

    @staticmethod
    def lookup(c: Conn, dir_fh: bytes, name: str) -> bytes:
        return c.nfs(LOOKUP, [diropargs(dir_fh, name)])[0].opaque()

    @staticmethod
    def mkdir(c: Conn, dir_fh: bytes, name: str, mode: int = 0o755) -> bytes:
        r = c.nfs(MKDIR, [diropargs(dir_fh, name) + sattr3(mode)])[0]
        if not r.u32():
            raise RpcError("MKDIR returned no handle")
        return r.opaque()

    @staticmethod
    def create(c: Conn, dir_fh: bytes, names: Iterable[str], mode: int = 0o644) -> list[bytes]:
        """GUARDED creates, all in flight at once; the new files' handles."""
        how = struct.pack(">I", GUARDED) + sattr3(mode)
        fhs = []
        for r in c.nfs(CREATE, [diropargs(dir_fh, n) + how for n in names]):
            if not r.u32():
                raise RpcError("CREATE returned no handle (a client would need a LOOKUP)")
            fhs.append(r.opaque())
        return fhs

    @staticmethod
    def write(c: Conn, fhs: Sequence[bytes], data: bytes, stable: int = FILE_SYNC) -> None:
        tail = struct.pack(">QII", 0, len(data), stable)
        body = Pack()
        body.opaque(data)
        args = [fh_args(fh) + tail + bytes(body.b) for fh in fhs]
        for r in c.nfs(WRITE, args):
            r.wcc_data()
            if r.u32() != len(data):
                raise RpcError("short WRITE")
            if stable != UNSTABLE and r.u32() == UNSTABLE:
                raise RpcError("a stable WRITE was answered UNSTABLE")

    @staticmethod
    def getattr(c: Conn, fhs: Sequence[bytes]) -> None:
        for r in c.nfs(GETATTR, [fh_args(fh) for fh in fhs]):
            if len(r.d) - r.p < FATTR_SIZE:
                raise RpcError("short GETATTR reply")

    @staticmethod
    def readdirplus(c: Conn, dir_fh: bytes, dircount: int = 8192, maxcount: int = 65536) -> tuple[int, int]:
        """List a whole directory; (entries other than . and .., READDIRPLUS calls)."""
        cookie, verf, n, calls = 0, bytes(8), 0, 0
        while True:
            a = Pack()
            a.opaque(dir_fh)
            a.u64(cookie)
            a.fixed(verf)
            a.u32(dircount)
            a.u32(maxcount)
            r = c.nfs(READDIRPLUS, [bytes(a.b)])[0]
            calls += 1
            r.post_op_attr()
            verf = r.fixed(8)
            page = 0
            while r.u32():
                page += 1
                r.u64()  # fileid
                name = r.opaque()
                cookie = r.u64()
                r.post_op_attr()
                if r.u32():
                    r.opaque()  # handle
                if name not in (b".", b".."):
                    n += 1
            if r.u32():  # eof
                return n, calls
            if not page:
                raise RpcError("READDIRPLUS returned no entries and no eof")
