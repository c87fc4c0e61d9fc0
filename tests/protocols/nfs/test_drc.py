"""The duplicate-request cache: its own semantics, and through handle_record."""

from __future__ import annotations

import threading

from protocols.nfs import rpc
from protocols.nfs.dispatch import Program, Request, SystemErr, handle_record, index
from protocols.nfs.drc import Drc, DrcKey, Pending, make_key
from protocols.nfs.xdr import Packer, Unpacker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def key(xid: int, ip: str = "10.0.0.1") -> DrcKey:
    return DrcKey(ip, xid, 100003, 3, 12, 100, 0)


def test_new_in_progress_then_cached() -> None:
    drc = Drc()
    assert drc.begin(key(1)) is None
    assert drc.begin(key(1)) is Pending.IN_PROGRESS
    assert drc.begin(key(2)) is None                  # another xid is another call
    drc.finish(key(1), b"one")
    assert drc.begin(key(1)) == b"one"
    assert drc.begin(key(1, "10.0.0.2")) is None      # another client
    assert (drc.hits, drc.drops) == (1, 1)


def test_finish_without_a_reply_forgets_the_call() -> None:
    drc = Drc()
    drc.begin(key(1))
    drc.finish(key(1), None)
    assert drc.begin(key(1)) is None and len(drc) == 1


def test_capacity_evicts_the_least_recently_used() -> None:
    drc = Drc(capacity=3)
    for xid in (1, 2, 3):
        drc.begin(key(xid))
        drc.finish(key(xid), bytes([xid]))
    assert drc.begin(key(1)) == b"\1"                 # 1 is now the most recent
    drc.begin(key(4))
    assert len(drc) == 3
    assert drc.begin(key(2)) is None                  # 2 was evicted (and starts afresh)
    assert drc.begin(key(1)) == b"\1"


def test_entries_expire() -> None:
    clock = Clock()
    drc = Drc(ttl=120, clock=clock)
    drc.begin(key(1))
    drc.finish(key(1), b"one")
    clock.now += 119
    assert drc.begin(key(1)) == b"one"
    clock.now += 2
    assert drc.begin(key(1)) is None


def test_the_key_ignores_the_port_but_not_the_arguments() -> None:
    a = rpc.encode_call(5, 100003, 3, 12, b"\0\0\0\1" + b"name")
    b = rpc.encode_call(5, 100003, 3, 12, b"\0\0\0\1" + b"nams")
    auth = rpc.AuthSys(1, "h", 0, 0, ())
    c = rpc.encode_call(5, 100003, 3, 12, b"\0\0\0\1" + b"name", auth)
    ka = make_key("10.0.0.1", rpc.decode_call(a), a)
    assert ka == make_key("10.0.0.1", rpc.decode_call(a), bytes(a))
    assert ka != make_key("10.0.0.1", rpc.decode_call(b), b)
    assert ka != make_key("10.0.0.1", rpc.decode_call(c), c)
    assert ka != make_key("10.0.0.2", rpc.decode_call(a), a)
    assert (ka.xid, ka.prog, ka.vers, ka.proc, ka.length) == (5, 100003, 3, 12, len(a))


# ----------------------------------------------------------------------------- through the dispatch

class Counter:
    def __init__(self) -> None:
        self.runs = 0
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail = False

    def handler(self, req: Request, args: Unpacker) -> Packer:
        self.runs += 1
        self.entered.set()
        self.gate.wait(5)
        if self.fail:
            raise SystemErr("transient")
        p = Packer()
        p.pack_uint(self.runs)
        return p


def setup() -> tuple[Counter, dict[int, Program]]:
    c = Counter()
    c.gate.set()
    return c, index([Program(400500, {1: {1: c.handler, 2: c.handler}}, non_idempotent=frozenset({(1, 1)}))])


def run(progs: dict[int, Program], drc: Drc, proc: int, xid: int = 9, port: int = 700) -> rpc.Reply | None:
    out = handle_record(progs, rpc.encode_call(xid, 400500, 1, proc), ("10.1.1.1", port), "tcp", drc)
    return None if out is None else rpc.decode_reply(b"".join(out))


def test_non_idempotent_replies_are_replayed() -> None:
    c, progs = setup()
    drc = Drc()
    first = run(progs, drc, 1)
    assert first is not None and first.body == b"\0\0\0\1"
    assert run(progs, drc, 1, port=701) == first       # a retry from a new connection
    assert c.runs == 1
    assert run(progs, drc, 1, xid=10) is not None and c.runs == 2


def test_idempotent_calls_are_not_cached() -> None:
    c, progs = setup()
    drc = Drc()
    run(progs, drc, 2)
    second = run(progs, drc, 2)
    assert second is not None and second.body == b"\0\0\0\2" and len(drc) == 0 and c.runs == 2


def test_system_errors_are_not_cached() -> None:
    c, progs = setup()
    drc = Drc()
    c.fail = True
    failed = run(progs, drc, 1)
    assert failed is not None and failed.stat == rpc.SYSTEM_ERR
    c.fail = False
    retried = run(progs, drc, 1)
    assert retried is not None and retried.ok and c.runs == 2


def test_a_retry_while_the_call_runs_is_dropped() -> None:
    c, progs = setup()
    c.gate.clear()
    drc = Drc()
    results: list[rpc.Reply | None] = []
    worker = threading.Thread(target=lambda: results.append(run(progs, drc, 1)))
    worker.start()
    assert c.entered.wait(5)
    assert run(progs, drc, 1) is None                  # dropped, not run a second time
    c.gate.set()
    worker.join(5)
    assert results and results[0] is not None and results[0].ok
    assert c.runs == 1
    assert run(progs, drc, 1) == results[0]
