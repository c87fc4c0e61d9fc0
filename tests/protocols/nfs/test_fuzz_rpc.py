"""Hypothesis fuzz of the sans-IO RPC layer: no exception escapes, every reply decodes."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.nfs import rpc
from protocols.nfs.dispatch import Program, Request, handle_record, index
from protocols.nfs.drc import Drc
from protocols.nfs.xdr import Packer, Unpacker

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _strict(req: Request, args: Unpacker) -> Packer:
    name = args.unpack_string(255)
    n = args.unpack_uint()
    items = args.unpack_array(args.unpack_uhyper, 64)
    args.done()
    p = Packer()
    p.pack_string(name)
    p.pack_uint(n + len(items))
    return p


def _crash(req: Request, args: Unpacker) -> Packer:
    if args.remaining() % 2:
        raise RuntimeError("odd")
    return Packer()


PROGS = index([Program(100003, {3: {1: _strict, 2: _crash}}, non_idempotent=frozenset({(3, 1)})),
               Program(100005, {1: {1: _strict}, 3: {1: _strict}})])
DRC = Drc(capacity=64)

auths = st.none() | st.builds(rpc.AuthSys, st.integers(0, 2**32 - 1), st.text(max_size=40),
                              st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
                              st.lists(st.integers(0, 2**32 - 1), max_size=16).map(tuple))
calls = st.builds(rpc.encode_call, st.integers(0, 2**32 - 1), st.sampled_from([100003, 100005, 100021]),
                  st.integers(0, 4), st.integers(0, 3), st.binary(max_size=64), auths)


def check(record: bytes) -> None:
    """handle_record never raises; a reply is a well-formed reply to the same xid."""
    out = handle_record(PROGS, record, ("198.51.100.1", 1000), "udp", DRC)
    if out is None:
        return
    reply = rpc.decode_reply(b"".join(out))
    assert reply.xid == struct.unpack(">I", record[:4])[0]


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes(record: bytes) -> None:
    check(record)


@FUZZ
@given(calls)
def test_well_formed_calls(record: bytes) -> None:
    call = rpc.decode_call(record)
    assert call.header_len + len(call.args) == len(record)
    check(record)


@FUZZ
@given(calls, st.data())
def test_mutated_calls(record: bytes, data: st.DataObject) -> None:
    buf = bytearray(record)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))
    check(bytes(buf[:cut]))
    check(bytes(buf))


@FUZZ
@given(st.binary(max_size=300))
def test_decode_call_raises_only_badcall(record: bytes) -> None:
    try:
        rpc.decode_call(record)
    except rpc.BadCall as e:
        if e.reply is not None:
            assert not rpc.decode_reply(e.reply).accepted


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=6), st.integers(1, 200), st.lists(st.integers(1, 64), min_size=1))
def test_record_reader_reassembles_any_chunking(msgs: list[bytes], max_fragment: int, cuts: list[int]) -> None:
    stream = b"".join(b"".join(bytes(p) for p in rpc.frame([m], max_fragment)) for m in msgs)
    reader = rpc.RecordReader(max_record=300)
    got: list[bytes] = []
    pos, i = 0, 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        got += reader.feed(stream[pos: pos + step])
        pos, i = pos + step, i + 1
    assert got == msgs and reader.pending() == 0


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_record_reader_on_garbage(chunks: list[bytes]) -> None:
    reader = rpc.RecordReader(max_record=1000)
    try:
        for chunk in chunks:
            for record in reader.feed(chunk):
                assert len(record) <= 1000
                check(record)
    except rpc.RecordTooLarge:
        pass
