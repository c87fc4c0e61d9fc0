"""NLM over RPC against a real core store: conflicts between NLM owners and with core.fs locks,
blocking locks with GRANTED callbacks, CANCEL, the _MSG variants, grace, shares, FREE_ALL, restart."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from core.errors import LockConflict, ShareViolation
from core.fs import READ, WRITE, Attr
from core.store import Store, open_store
from protocols.nfs import nlm, rpc
from protocols.nfs import nlm_types as T
from protocols.nfs.context import Context
from protocols.nfs.dispatch import AuthSys, handle_record, index
from protocols.nfs.server import ServerThread, serve_in_thread
from protocols.nfs.xdr import Packer

from .nlm_helpers import NlmClient, Peer, handle, make_ctx, wait_for

S = T.Stat


@dataclass
class Env:
    store: Store
    ctx: Context
    peer: Peer
    mgr: nlm.LockManager
    server: ServerThread
    fh: bytes                # /data/f (mode 0666, uid 1000)
    f: Attr
    clients: list[NlmClient]

    def client(self, name: str = "client", svid: int = 1, **kw: object) -> NlmClient:
        c = NlmClient(self.server.port, name, svid, **kw)  # type: ignore[arg-type]
        self.clients.append(c)
        return c

    def owners(self) -> list[tuple[str, int, int, bool]]:
        return [(lk.owner, lk.start, lk.length, lk.exclusive) for lk in self.store.fs.locks(self.f.ino)]


@pytest.fixture
def env(mem_store: Store) -> Iterator[Env]:
    yield from _env(mem_store, grace_s=0.0)


def _env(store: Store, grace_s: float) -> Iterator[Env]:
    ctx = make_ctx(store)
    peer = Peer().start()
    mgr = nlm.LockManager(ctx, None, grace_s=grace_s, poll_s=0.1, locate=peer.locate, callback_timeout_s=2.0)
    server = serve_in_thread([mgr.program()])
    fh, f = handle(ctx, "/data", "f")
    e = Env(store, ctx, peer, mgr, server, fh, f, [])
    yield e
    for c in e.clients:
        c.close()
    server.close()
    mgr.close()
    peer.close()


# -- plain locks ---------------------------------------------------------------------------

def test_lock_test_unlock_between_two_owners(env: Env) -> None:
    a, b = env.client("alpha", 11), env.client("beta", 22)
    assert a.lock(env.fh, 0, 100) == S.GRANTED
    t = b.test(env.fh, 50, 10)
    assert t.stat == S.DENIED and t.holder == T.Holder(True, 11, b"", 0, 100)
    assert b.test(env.fh, 100, 10).stat == S.GRANTED          # just past the lock
    assert a.test(env.fh, 50, 10).stat == S.GRANTED           # one's own lock never conflicts
    assert b.lock(env.fh, 50, 10) == S.DENIED
    assert b.lock(env.fh, 100, 0) == S.GRANTED                # to EOF, after a's range
    assert env.owners() == [("nlm:127.0.0.1:alpha:11", 0, 100, True), ("nlm:127.0.0.1:beta:22", 100, 0, True)]
    assert a.unlock(env.fh, 0, 100) == S.GRANTED
    assert b.lock(env.fh, 0, 100) == S.GRANTED
    # two processes of one client are two owners; shared locks coexist
    a2 = env.client("alpha", 12)
    assert a2.lock(env.fh, 0, 10) == S.DENIED
    assert b.unlock(env.fh, 0, 0) == S.GRANTED
    assert a.lock(env.fh, 0, 10, exclusive=False) == S.GRANTED
    assert a2.lock(env.fh, 5, 10, exclusive=False) == S.GRANTED
    t = b.test(env.fh, 0, 1)
    assert t.stat == S.DENIED and t.holder is not None and not t.holder.exclusive


def test_nlm_lock_conflicts_with_core_lock_and_the_reverse(env: Env) -> None:
    fs = env.store.fs
    c = env.client()
    fs.lock(env.f.ino, "smb:open:1", 0, 10, exclusive=True)
    assert c.lock(env.fh, 5, 10) == S.DENIED
    t = c.test(env.fh, 0, 1, exclusive=False)
    assert t.stat == S.DENIED and t.holder == T.Holder(True, 0, b"", 0, 10)   # a non-NLM owner: svid 0
    assert c.lock(env.fh, 10, 10) == S.GRANTED
    with pytest.raises(LockConflict):
        fs.lock(env.f.ino, "smb:open:2", 15, 1, exclusive=False)
    assert fs.test_lock(env.f.ino, "smb:open:2", 0, 0, exclusive=True) is not None
    assert c.unlock(env.fh, 10, 10) == S.GRANTED
    fs.lock(env.f.ino, "smb:open:2", 15, 1, exclusive=False)


def test_ranges_past_2_63_run_to_eof_and_offsets_past_it_are_fbig(env: Env) -> None:
    c = env.client()
    assert c.lock(env.fh, 10, (1 << 64) - 11) == S.GRANTED
    assert env.owners() == [("nlm:127.0.0.1:client:1", 10, 0, True)]
    assert c.lock(env.fh, (1 << 63) + 1, 1) == S.FBIG
    assert c.test(env.fh, 1 << 63, 0).stat == S.FBIG


def test_version_1_and_3_use_32_bit_ranges(env: Env) -> None:
    v1, v4 = env.client("old", 1, vers=1), env.client("new", 2)
    assert v1.lock(env.fh, 0, 0) == S.GRANTED
    t = v4.test(env.fh, 1 << 40, 5)
    assert t.stat == S.DENIED and t.holder == T.Holder(True, 1, b"", 0, 0)
    assert v4.lock(env.fh, 1 << 40, 5) == S.DENIED
    v3 = env.client("mid", 3, vers=3)
    assert v3.lock(env.fh, 0, 10) == S.DENIED
    assert v1.unlock(env.fh) == S.GRANTED
    assert v4.lock(env.fh, (1 << 32) + 100, 10) == S.GRANTED
    t = v1.test(env.fh, 0, 0)   # the holder's range past 4 GiB is shown clipped
    assert t.stat == S.DENIED and t.holder == T.Holder(True, 2, b"", (1 << 32) - 1, 0)
    bad = v1.lock(b"\0" * 36, 0, 1)
    assert bad == S.DENIED_NOLOCKS     # STALE_FH does not exist before v4


def test_handles_exports_and_permissions(env: Env) -> None:
    c = env.client()
    assert c.lock(b"garbage", 0, 1) == S.STALE_FH
    assert c.test(b"\0" * 36, 0, 1).stat == S.STALE_FH
    ro_fh, _ = handle(env.ctx, "/ro", "r")
    assert c.lock(ro_fh, 0, 1) == S.ROFS                       # exclusive needs a writable export
    assert c.lock(ro_fh, 0, 1, exclusive=False) == S.GRANTED
    mine_fh, _ = handle(env.ctx, "/data", "private", 0o600)    # uid 1000's own file
    stranger = env.client("other", 5, auth=AuthSys(1, "other", 2000, 2000, (2000,)))
    assert stranger.lock(mine_fh, 0, 1, exclusive=False) == S.FAILED
    assert c.lock(mine_fh, 0, 1) == S.GRANTED
    reader_fh, _ = handle(env.ctx, "/data", "readonly", 0o644)
    assert stranger.lock(reader_fh, 0, 1, exclusive=False) == S.GRANTED
    assert stranger.lock(reader_fh, 5, 1) == S.FAILED           # exclusive needs write permission
    root = env.client("rooty", 6, auth=AuthSys(1, "rooty", 0, 0, ()))   # squashed to nobody
    assert root.lock(mine_fh, 10, 1) == S.FAILED


# -- blocking locks ------------------------------------------------------------------------

def test_blocked_lock_granted_by_callback_when_a_core_lock_is_released(env: Env) -> None:
    fs = env.store.fs
    fs.lock(env.f.ino, "smb:other", 0, 0, exclusive=True)
    c = env.client("waiter", 7)
    assert c.lock(env.fh, 0, 50, block=True) == S.BLOCKED
    assert c.lock(env.fh, 0, 50, block=True) == S.BLOCKED    # a re-sent blocked LOCK keeps one waiter
    assert env.mgr.waiting() == 1
    assert env.peer.quiet(0.4)
    fs.unlock(env.f.ino, "smb:other", 0, 0)                   # a plain core.fs unlock: found by polling
    prog, proc, args = env.peer.next()
    assert (prog, proc) == (T.NLM_PROG, T.Proc.GRANTED)
    assert args.exclusive and args.lock == c.alock(env.fh, 0, 50)
    assert env.owners() == [("nlm:127.0.0.1:waiter:7", 0, 50, True)]
    assert env.mgr.waiting() == 0
    assert c.lock(env.fh, 0, 50, block=True) == S.GRANTED    # a late re-send finds it held


def test_blocked_lock_granted_when_another_nlm_owner_unlocks(env: Env) -> None:
    a, b = env.client("alpha", 1), env.client("beta", 2)
    env.mgr.poll_s = 30.0          # only the wake-up on UNLOCK can grant it in time
    time.sleep(0.2)
    assert a.lock(env.fh, 0, 10) == S.GRANTED
    assert b.lock(env.fh, 5, 10, exclusive=False, block=True) == S.BLOCKED
    t0 = time.monotonic()
    assert a.unlock(env.fh, 0, 10) == S.GRANTED
    _, proc, args = env.peer.next(timeout=5)
    assert proc == T.Proc.GRANTED and not args.exclusive and args.lock.svid == 2
    assert time.monotonic() - t0 < 5
    assert env.owners() == [("nlm:127.0.0.1:beta:2", 5, 10, False)]


def test_blocked_lock_granted_when_another_process_releases(dir_store_path: str) -> None:
    store = open_store(dir_store_path)
    gen = _env(store, grace_s=0.0)
    env = next(gen)
    try:
        spawn = mp.get_context("spawn")
        go, held = spawn.Event(), spawn.Event()
        p = spawn.Process(target=_hold_lock, args=(dir_store_path, env.f.ino, held, go))
        p.start()
        assert held.wait(60)
        c = env.client("waiter", 9)
        assert c.lock(env.fh, 0, 1, block=True) == S.BLOCKED
        assert env.peer.quiet(0.3)
        go.set()
        p.join(60)
        assert env.peer.next()[1] == T.Proc.GRANTED
        assert [o for o, *_ in env.owners()] == ["nlm:127.0.0.1:waiter:9"]
    finally:
        next(gen, None)
        store.close()


def _hold_lock(path: str, ino: int, held: mp.synchronize.Event, go: mp.synchronize.Event) -> None:
    s = open_store(path)
    s.fs.lock(ino, "other-process", 0, 0, exclusive=True)
    held.set()
    go.wait(60)
    s.fs.unlock(ino, "other-process", 0, 0)
    s.close()


def test_cancel_removes_the_waiter(env: Env) -> None:
    fs = env.store.fs
    fs.lock(env.f.ino, "core", 0, 0, exclusive=True)
    c = env.client("w", 3)
    assert c.lock(env.fh, 0, 10, block=True) == S.BLOCKED
    assert c.cancel(env.fh, 0, 10, exclusive=False) == S.GRANTED    # another request: stays
    assert env.mgr.waiting() == 1
    assert c.cancel(env.fh, 0, 10) == S.GRANTED
    assert env.mgr.waiting() == 0
    fs.unlock(env.f.ino, "core", 0, 0)
    assert env.peer.quiet(0.5)
    assert env.owners() == []


def test_client_that_stopped_waiting_gets_the_lock_released(env: Env) -> None:
    env.peer.granted_answer = S.DENIED
    fs = env.store.fs
    fs.lock(env.f.ino, "core", 0, 0, exclusive=True)
    c = env.client("w", 4)
    assert c.lock(env.fh, 0, 10, block=True) == S.BLOCKED
    fs.unlock(env.f.ino, "core", 0, 0)
    assert env.peer.next()[1] == T.Proc.GRANTED
    assert wait_for(lambda: env.owners() == [])


def test_unreachable_client_keeps_the_granted_lock(env: Env) -> None:
    def nowhere(host: str, prog: int, vers: int, transport: str) -> tuple[str, int]:
        raise ConnectionRefusedError("no portmapper")
    env.mgr.locate = nowhere
    fs = env.store.fs
    fs.lock(env.f.ino, "core", 0, 0, exclusive=True)
    c = env.client("w", 4)
    assert c.lock(env.fh, 0, 10, block=True) == S.BLOCKED
    fs.unlock(env.f.ino, "core", 0, 0)
    assert wait_for(lambda: env.owners() == [("nlm:127.0.0.1:w:4", 0, 10, True)])
    assert c.lock(env.fh, 0, 10, block=True) == S.GRANTED    # what a Linux client's re-sent LOCK sees


# -- the asynchronous (_MSG / _RES) procedures ---------------------------------------------

def test_msg_procedures_answer_through_res_callbacks(env: Env) -> None:
    a, b = env.client("alpha", 1), env.client("beta", 2)
    assert a.lock(env.fh, 0, 10) == S.GRANTED
    tb = T.TestArgs(b"t1", True, b.alock(env.fh, 0, 5))
    b.call(T.Proc.TEST_MSG, lambda p: T.pack_testargs(p, tb))
    _, proc, res = env.peer.next()
    assert (proc, res.cookie, res.stat, res.holder.svid) == (T.Proc.TEST_RES, b"t1", S.DENIED, 1)
    b.lock(env.fh, 0, 5, block=True, proc=T.Proc.LOCK_MSG)
    _, proc, res = env.peer.next()
    assert (proc, res) == (T.Proc.LOCK_RES, T.Res(b"ck", S.BLOCKED))
    ua = T.UnlockArgs(b"u1", a.alock(env.fh, 0, 10))
    a.call(T.Proc.UNLOCK_MSG, lambda p: T.pack_unlockargs(p, ua))
    got = dict(env.peer.next()[1:] for _ in range(2))
    assert got[T.Proc.UNLOCK_RES] == T.Res(b"u1", S.GRANTED)
    assert got[T.Proc.GRANTED_MSG].lock == b.alock(env.fh, 0, 5)
    assert env.owners() == [("nlm:127.0.0.1:beta:2", 0, 5, True)]
    # the client answers GRANTED_RES DENIED for that grant (its cookie): the lock goes
    cookie = got[T.Proc.GRANTED_MSG].cookie
    b.call(T.Proc.GRANTED_RES, lambda p: T.pack_res(p, T.Res(b"other", S.DENIED)))
    assert env.owners() == [("nlm:127.0.0.1:beta:2", 0, 5, True)]
    b.call(T.Proc.GRANTED_RES, lambda p: T.pack_res(p, T.Res(cookie, S.DENIED)))
    assert wait_for(lambda: env.owners() == [])
    ca = T.CancArgs(b"c1", True, True, b.alock(env.fh, 0, 5))
    b.call(T.Proc.CANCEL_MSG, lambda p: T.pack_cancargs(p, ca))
    assert env.peer.next()[1:] == (T.Proc.CANCEL_RES, T.Res(b"c1", S.GRANTED))


def test_granted_to_this_server_is_not_a_procedure(env: Env) -> None:
    c = env.client()
    r = c.rpc.call(T.NLM_PROG, 4, T.Proc.GRANTED, b"")
    assert r.accepted and r.stat == 3   # PROC_UNAVAIL: no NLM client side here


# -- shares, FREE_ALL ----------------------------------------------------------------------

def test_share_reservations_conflict_with_each_other_and_smb_opens(env: Env) -> None:
    fs = env.store.fs
    a, b = env.client("alpha", 1), env.client("beta", 2)
    assert a.share(env.fh, T.FSM_DW, T.FSA_R) == S.GRANTED        # read, deny write
    assert b.share(env.fh, T.FSM_DN, T.FSA_RW) == S.DENIED
    assert b.share(env.fh, T.FSM_DN, T.FSA_R) == S.GRANTED
    with pytest.raises(ShareViolation):
        fs.open_share(env.f.ino, "smb", WRITE, READ | WRITE)
    assert a.share(env.fh, T.FSM_DW, T.FSA_R, unshare=True) == S.GRANTED
    oid = fs.open_share(env.f.ino, "smb", WRITE, READ | WRITE)
    assert a.share(env.fh, T.FSM_DW, T.FSA_R) == S.DENIED           # denies the write the SMB open has
    fs.close_share(oid)
    b.free_all()
    fs.close_share(fs.open_share(env.f.ino, "smb", WRITE, 0))       # nothing of beta is left


def test_free_all_releases_locks_shares_and_waiters_of_a_client(env: Env) -> None:
    a, a2, b = env.client("alpha", 1), env.client("alpha", 2), env.client("beta", 3)
    assert a.lock(env.fh, 0, 10) == S.GRANTED
    assert a2.lock(env.fh, 20, 10) == S.GRANTED
    assert b.lock(env.fh, 40, 10) == S.GRANTED
    assert b.lock(env.fh, 0, 10, block=True) == S.BLOCKED
    assert a.lock(env.fh, 40, 1, block=True) == S.BLOCKED
    notify = Packer()
    T.pack_notify(notify, T.Notify("alpha", 0))
    elsewhere = rpc.encode_call(1, T.NLM_PROG, 4, T.Proc.FREE_ALL, notify.data())
    assert handle_record(index([env.mgr.program()]), elsewhere, ("10.9.9.9", 1), "udp") is not None
    assert len(env.owners()) == 3                      # another host's FREE_ALL frees nothing here
    a.free_all()
    assert env.peer.next()[2].lock.svid == 3           # beta's waiter got its lock
    assert sorted(o for o, *_ in env.owners()) == ["nlm:127.0.0.1:beta:3"] * 2
    assert env.mgr.waiting() == 0
    assert env.peer.quiet(0.4)                          # alpha's own waiter went with it


# -- grace and restart ---------------------------------------------------------------------

def test_grace_period_admits_only_reclaims(mem_store: Store) -> None:
    gen = _env(mem_store, grace_s=60.0)
    env = next(gen)
    try:
        c, d = env.client("back", 1), env.client("new", 2)
        assert d.lock(env.fh, 100, 1) == S.DENIED_GRACE_PERIOD
        assert d.test(env.fh, 100, 1).stat == S.DENIED_GRACE_PERIOD
        assert d.lock(env.fh, 100, 1, proc=T.Proc.NM_LOCK) == S.DENIED_GRACE_PERIOD
        assert d.share(env.fh, T.FSM_DN, T.FSA_R) == S.DENIED_GRACE_PERIOD
        assert c.lock(env.fh, 0, 10, reclaim=True) == S.GRANTED
        assert d.lock(env.fh, 0, 10, reclaim=True) == S.DENIED       # a reclaim still obeys conflicts
        assert c.unlock(env.fh, 0, 10) == S.GRANTED
        env.mgr.grace_until = 0
        assert d.lock(env.fh, 100, 1) == S.GRANTED
    finally:
        next(gen, None)


def test_restart_notifies_clients_and_opens_a_grace_period(mem_store: Store) -> None:
    ctx = make_ctx(mem_store)
    fh, f = handle(ctx, "/data", "f")
    peer = Peer().start()
    try:
        first = nlm.start(ctx, grace_s=30.0, name="tessera-a", locate=peer.locate, poll_s=0.1)
        assert not first.nlm.in_grace()                 # nobody held locks before: no grace
        state1 = first.nsm.state
        srv = serve_in_thread(first.programs())
        c = NlmClient(srv.port, "laptop", 4)
        assert c.lock(fh, 0, 10) == S.GRANTED
        assert c.lock(fh, 20, 10, proc=T.Proc.NM_LOCK) == S.GRANTED
        c.close()
        srv.close()
        first.close()                                   # the locks go with the process
        assert mem_store.fs.locks(f.ino) == []

        second = nlm.start(ctx, grace_s=30.0, name="tessera-a", locate=peer.locate, poll_s=0.1)
        srv = serve_in_thread(second.programs())
        try:
            assert peer.quiet(0.3)                      # not before the server listens
            second.announce()
            assert second.nsm.state == state1 + 2 and second.nsm.state % 2 == 1
            prog, proc, chg = peer.next()
            assert (prog, proc, chg) == (T.NSM_PROG, T.SmProc.NOTIFY, T.StatChge("tessera-a", second.nsm.state))
            assert second.nlm.in_grace()
            c = NlmClient(srv.port, "laptop", 4)
            other = NlmClient(srv.port, "desktop", 5)
            assert other.lock(fh, 0, 10) == S.DENIED_GRACE_PERIOD
            assert c.lock(fh, 0, 10, reclaim=True) == S.GRANTED
            c.close()
            other.close()
        finally:
            srv.close()
            second.close()
    finally:
        peer.close()
