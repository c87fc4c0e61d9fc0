"""NSM: the state number and client record in the store, SM_NOTIFY out on start and in from a
restarted client (its NLM locks released), SM_MON/UNMON from local lock managers only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from core.fs import FileSystem
from core.store import Store
from protocols.nfs import nlm, nsm, rpc
from protocols.nfs import nlm_types as T
from protocols.nfs.dispatch import handle_record, index
from protocols.nfs.server import serve_in_thread
from protocols.nfs.xdr import Packer, Unpacker

from .nlm_helpers import WATCH_PROG, NlmClient, Peer, handle, make_ctx, wait_for

S = T.Stat


@pytest.fixture
def peer() -> Iterator[Peer]:
    p = Peer().start()
    yield p
    p.close()


def record(fs: FileSystem) -> dict[str, Any]:
    d = fs.system_dir("nfs")
    a = fs.lookup(d, nsm.STATE_FILE)
    doc: dict[str, Any] = json.loads(fs.read(a.ino, 0, a.size))
    return doc


def recorded(fs: FileSystem) -> list[str]:
    return [c["name"] for c in record(fs)["clients"]]


def call(m: nsm.StatusMonitor, proc: int, args: Packer | None = None, ip: str = "127.0.0.1") -> Unpacker:
    raw = rpc.encode_call(5, T.NSM_PROG, 1, proc, (args or Packer()).data())
    out = handle_record(index([m.program()]), raw, (ip, 800), "udp")
    assert out is not None
    reply = rpc.decode_reply(b"".join(out))
    assert reply.ok
    return Unpacker(reply.body)


def test_state_is_odd_and_bumped_on_every_start(mem_store: Store, peer: Peer) -> None:
    fs = mem_store.fs
    m = nsm.StatusMonitor(fs, name="srv", locate=peer.locate)
    assert m.start() == []
    assert m.state == 1
    assert record(fs) == {"format": "tessera-nsm", "version": 1, "state": 1, "clients": []}
    m.close()
    m = nsm.StatusMonitor(fs, name="srv", locate=peer.locate)
    m.start()
    assert m.state == 3
    call(m, T.SmProc.SIMU_CRASH)
    assert m.state == 5 and record(fs)["state"] == 5
    call(m, T.SmProc.SIMU_CRASH, ip="10.1.2.3")           # only local lock managers may
    assert m.state == 5
    m.close()
    assert peer.quiet(0.2)                                  # no clients: nobody to notify


def test_restart_notifies_recorded_clients_and_forgets_those_that_answer(mem_store: Store, peer: Peer) -> None:
    fs = mem_store.fs
    m = nsm.StatusMonitor(fs, name="srv", locate=peer.locate)
    m.start()
    m.monitor("laptop", "127.0.0.1")
    m.monitor("laptop", "127.0.0.1")                        # recorded once
    m.close()
    assert record(fs)["clients"] == [{"name": "laptop", "addr": "127.0.0.1"}]

    def nowhere(host: str, prog: int, vers: int, transport: str) -> tuple[str, int]:
        raise ConnectionRefusedError(host)
    gone = nsm.StatusMonitor(fs, name="srv", locate=nowhere, give_up_s=0.0)
    assert gone.start() == ["laptop"]                        # nobody answers: it stays recorded
    gone.notify_clients()
    gone.close()
    assert recorded(fs) == ["laptop"]

    m = nsm.StatusMonitor(fs, name="srv", locate=peer.locate)
    assert m.start() == ["laptop"]
    assert peer.quiet(0.2)
    m.notify_clients()
    assert peer.next() == (T.NSM_PROG, T.SmProc.NOTIFY, T.StatChge("srv", 5))
    assert wait_for(lambda: m.notified == ["laptop"])
    assert wait_for(lambda: record(fs)["clients"] == [])
    m.close()


def test_client_reboot_notice_frees_its_locks(mem_store: Store, peer: Peer) -> None:
    ctx = make_ctx(mem_store)
    fh, f = handle(ctx, "/data", "f")
    lk = nlm.start(ctx, grace_s=0.0, name="srv", locate=peer.locate, poll_s=0.1)
    srv = serve_in_thread(lk.programs())
    a, b = NlmClient(srv.port, "crashy", 1), NlmClient(srv.port, "steady", 2)
    try:
        assert a.lock(fh, 0, 10) == S.GRANTED
        assert a.share(fh, T.FSM_DRW, T.FSA_R) == S.GRANTED
        assert b.lock(fh, 0, 10, block=True) == S.BLOCKED
        assert recorded(ctx.fs) == ["crashy", "steady"]
        p = Packer()
        T.pack_stat_chge(p, T.StatChge("crashy", 8))
        a.rpc.call_ok(T.NSM_PROG, 1, T.SmProc.NOTIFY, p)       # crashy's statd: it restarted
        assert peer.next()[2].lock.caller_name == "steady"      # its lock went, steady's waiter got it
        assert [x.owner for x in mem_store.fs.locks(f.ino)] == ["nlm:127.0.0.1:steady:2"]
        namesake = NlmClient(srv.port, "srv", 3)                # a client named as the server
        assert namesake.lock(fh, 50, 1) == S.GRANTED
        namesake.close()
        echo = Packer()                                         # our own restart notice, come back to us
        T.pack_stat_chge(echo, T.StatChge("srv", lk.nsm.state))
        b.rpc.call_ok(T.NSM_PROG, 1, T.SmProc.NOTIFY, echo)
        assert len(mem_store.fs.locks(f.ino)) == 2              # is not a client's restart
        assert b.share(fh, T.FSM_DN, T.FSA_R) == S.GRANTED       # crashy's deny-all share went too
        assert recorded(ctx.fs) == ["srv", "steady"]
    finally:
        a.close()
        b.close()
        srv.close()
        lk.close()


def test_sm_mon_is_for_local_callers_and_calls_watchers_back(mem_store: Store, peer: Peer) -> None:
    m = nsm.StatusMonitor(mem_store.fs, name="srv", locate=peer.locate)
    m.start()
    mon = T.Mon(T.MonId("peerhost", T.MyId("127.0.0.1", WATCH_PROG, 1, 1)), b"p" * 16)
    args = Packer()
    T.pack_mon(args, mon)
    assert T.unpack_sm_stat_res(call(m, T.SmProc.MON, args, ip="192.0.2.7")) == T.SmStatRes(T.STAT_FAIL, 1)
    assert T.unpack_sm_stat_res(call(m, T.SmProc.MON, args, ip="::1")) == T.SmStatRes(T.STAT_SUCC, 1)
    assert recorded(mem_store.fs) == ["peerhost"]
    stat = Packer()
    T.pack_sm_name(stat, "anyone")
    assert T.unpack_sm_stat_res(call(m, T.SmProc.STAT, stat)) == T.SmStatRes(T.STAT_SUCC, 1)
    note = Packer()
    T.pack_stat_chge(note, T.StatChge("peerhost", 12))
    call(m, T.SmProc.NOTIFY, note, ip="198.51.100.1")
    assert peer.next() == (WATCH_PROG, 1, T.SmStatus("peerhost", 12, b"p" * 16))
    # UNMON from elsewhere does nothing; from here it drops the watch and the record
    call(m, T.SmProc.MON, args)
    uid = Packer()
    T.pack_mon_id(uid, mon.mon_id)
    assert T.unpack_sm_stat(call(m, T.SmProc.UNMON, uid, ip="192.0.2.7")) == 1
    assert recorded(mem_store.fs) == ["peerhost"]
    assert T.unpack_sm_stat(call(m, T.SmProc.UNMON, uid)) == 1
    assert record(mem_store.fs)["clients"] == []
    call(m, T.SmProc.MON, args)
    my = Packer()
    T.pack_my_id(my, mon.mon_id.my_id)
    call(m, T.SmProc.UNMON_ALL, my)
    assert record(mem_store.fs)["clients"] == []
    call(m, T.SmProc.NOTIFY, note)
    assert peer.quiet(0.4)                                      # no watcher is left
    m.close()


def test_unreadable_record_starts_afresh(mem_store: Store, peer: Peer) -> None:
    fs = mem_store.fs
    fs.write_file(fs.system_dir("nfs"), nsm.STATE_FILE, b'{"format": "other"}')
    m = nsm.StatusMonitor(fs, name="srv", locate=peer.locate)
    assert m.start() == [] and m.state == 1
    m.close()
