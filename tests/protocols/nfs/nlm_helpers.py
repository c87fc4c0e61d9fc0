"""Test helpers for NLM and NSM: a raw NLM client and a peer that records callbacks.

The *peer* plays the NFS client host's side: its lock manager (GRANTED, GRANTED_MSG and
the ``_RES`` results) and its statd (SM_NOTIFY), served by the project's RPC server on a
port of its own; the server under test finds it through its ``locate`` hook.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from core.errors import NotFound
from core.fs import Attr
from core.store import Store
from protocols.nfs import nlm_types as T
from protocols.nfs.context import Context
from protocols.nfs.dispatch import AuthSys, Handler, Program, Request
from protocols.nfs.exports import Export
from protocols.nfs.rpcclient import RpcClient
from protocols.nfs.server import ServerThread, serve_in_thread
from protocols.nfs.xdr import Packer, Unpacker

USER = AuthSys(1, "client", 1000, 1000, (1000,))
WATCH_PROG = 400100   # an SM_MON watcher's callback program (my_id)


@dataclass
class Peer:
    """Records every callback as (program, procedure, decoded arguments)."""

    granted_answer: int = T.Stat.GRANTED
    calls: queue.Queue[tuple[int, int, Any]] = field(default_factory=queue.Queue)
    server: ServerThread | None = None

    def programs(self) -> list[Program]:
        def rec(prog: int, proc: int, decode: Callable[[Unpacker], Any]) -> Handler:
            def handler(req: Request, u: Unpacker) -> Packer:
                args = decode(u)
                self.calls.put((prog, proc, args))
                p = Packer()
                if prog == T.NLM_PROG and proc == T.Proc.GRANTED:
                    T.pack_res(p, T.Res(args.cookie, self.granted_answer))
                return p
            return handler

        nlm: dict[int, Handler] = {
            T.Proc.GRANTED: rec(T.NLM_PROG, T.Proc.GRANTED, T.unpack_testargs),
            T.Proc.GRANTED_MSG: rec(T.NLM_PROG, T.Proc.GRANTED_MSG, T.unpack_testargs),
            T.Proc.TEST_RES: rec(T.NLM_PROG, T.Proc.TEST_RES, T.unpack_testres),
            T.Proc.LOCK_RES: rec(T.NLM_PROG, T.Proc.LOCK_RES, T.unpack_res),
            T.Proc.CANCEL_RES: rec(T.NLM_PROG, T.Proc.CANCEL_RES, T.unpack_res),
            T.Proc.UNLOCK_RES: rec(T.NLM_PROG, T.Proc.UNLOCK_RES, T.unpack_res),
        }
        nsm: dict[int, Handler] = {T.SmProc.NOTIFY: rec(T.NSM_PROG, T.SmProc.NOTIFY, T.unpack_stat_chge)}
        watch: dict[int, Handler] = {1: rec(WATCH_PROG, 1, T.unpack_sm_status)}
        return [Program(T.NLM_PROG, {4: nlm}), Program(T.NSM_PROG, {1: nsm}), Program(WATCH_PROG, {1: watch})]

    def start(self) -> Peer:
        self.server = serve_in_thread(self.programs())
        return self

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    def locate(self, host: str, prog: int, vers: int, transport: Literal["tcp", "udp"]) -> tuple[str, int]:
        assert self.server is not None
        return "127.0.0.1", self.server.port

    def next(self, timeout: float = 10.0) -> tuple[int, int, Any]:
        return self.calls.get(timeout=timeout)

    def quiet(self, wait: float = 0.6) -> bool:
        """True when no callback arrives within ``wait`` seconds."""
        try:
            self.calls.get(timeout=wait)
        except queue.Empty:
            return True
        return False


class NlmClient:
    """One client process (caller_name, svid) speaking NLM to the server under test over RPC."""

    def __init__(self, port: int, name: str = "client", svid: int = 1, *, vers: int = 4,
                 transport: Literal["tcp", "udp"] = "tcp", auth: AuthSys | None = USER) -> None:
        self.rpc = RpcClient("127.0.0.1", port, transport=transport, auth=auth)
        self.name, self.svid, self.vers = name, svid, vers

    def close(self) -> None:
        self.rpc.close()

    def alock(self, fh: bytes, offset: int = 0, length: int = 0) -> T.Lock:
        return T.Lock(self.name, fh, f"{self.svid}@{self.name}".encode(), self.svid, offset, length)

    def call(self, proc: int, pack: Callable[[Packer], None]) -> bytes:
        p = Packer()
        pack(p)
        return self.rpc.call_ok(T.NLM_PROG, self.vers, proc, p)

    def lock(self, fh: bytes, offset: int = 0, length: int = 0, *, exclusive: bool = True, block: bool = False,
             reclaim: bool = False, proc: int = T.Proc.LOCK) -> int:
        a = T.LockArgs(b"ck", block, exclusive, self.alock(fh, offset, length), reclaim, 1)
        body = self.call(proc, lambda p: T.pack_lockargs(p, a, self.vers == 4))
        if proc == T.Proc.LOCK_MSG:
            return -1
        r = T.unpack_res(Unpacker(body))
        assert r.cookie == b"ck"
        return r.stat

    def test(self, fh: bytes, offset: int = 0, length: int = 0, *, exclusive: bool = True) -> T.TestRes:
        a = T.TestArgs(b"t", exclusive, self.alock(fh, offset, length))
        return T.unpack_testres(Unpacker(self.call(T.Proc.TEST, lambda p: T.pack_testargs(p, a, self.vers == 4))),
                                self.vers == 4)

    def unlock(self, fh: bytes, offset: int = 0, length: int = 0) -> int:
        a = T.UnlockArgs(b"u", self.alock(fh, offset, length))
        return T.unpack_res(Unpacker(self.call(T.Proc.UNLOCK,
                                               lambda p: T.pack_unlockargs(p, a, self.vers == 4)))).stat

    def cancel(self, fh: bytes, offset: int = 0, length: int = 0, *, exclusive: bool = True) -> int:
        a = T.CancArgs(b"c", True, exclusive, self.alock(fh, offset, length))
        return T.unpack_res(Unpacker(self.call(T.Proc.CANCEL,
                                               lambda p: T.pack_cancargs(p, a, self.vers == 4)))).stat

    def share(self, fh: bytes, mode: int, access: int, *, unshare: bool = False) -> int:
        a = T.ShareArgs(b"s", T.Share(self.name, fh, f"{self.svid}".encode(), mode, access), False)
        body = self.call(T.Proc.UNSHARE if unshare else T.Proc.SHARE, lambda p: T.pack_shareargs(p, a))
        return T.unpack_shareres(Unpacker(body)).stat

    def free_all(self) -> None:
        self.call(T.Proc.FREE_ALL, lambda p: T.pack_notify(p, T.Notify(self.name, 0)))


def make_ctx(store: Store) -> Context:
    fs = store.fs
    exports = [Export.build("/data", ["127.0.0.1"], squash="root"), Export.build("/ro", ["127.0.0.1"], access="ro")]
    for d in ("data", "ro"):
        try:
            fs.lookup(fs.root, d)
        except NotFound:
            fs.mkdir(fs.root, d, 0o777)
    return Context(store, lambda: exports)


def handle(ctx: Context, export: str, name: str, mode: int = 0o666) -> tuple[bytes, Attr]:
    fs = ctx.fs
    e = next(x for x in ctx.exports() if x.path == export)
    d = fs.lookup(fs.root, export.strip("/"))
    try:
        a = fs.lookup(d.ino, name)
    except NotFound:
        a = fs.create(d.ino, name, mode, uid=1000, gid=1000)
    return ctx.handle(e, a), a


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()
