"""The target protocol codec: round trips, limits, and a fuzzed decoder (no sockets)."""

import errno
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.data import wire

REQUESTS: list[wire.Request] = [
    wire.Hello((2, 1), os.urandom(16)),
    wire.Auth(os.urandom(32)),
    wire.Write(3, 2**64 - 1, 5, 1 << 40, True),
    wire.Write(0, 1, 0, 0, False),
    wire.Read(1, 2, 3, 4, wire.MAX_PAYLOAD),
    wire.Sync(1, 2, 3),
    wire.Stat(4, 5, 6),
    wire.Delete(7, 8, 9),
    wire.List(1, 99, 2, 1000),
    wire.Space(12),
    wire.Ping(),
]


@pytest.mark.parametrize("req", REQUESTS, ids=lambda r: type(r).__name__)
def test_request_round_trip(req: wire.Request) -> None:
    plen = 5 if isinstance(req, wire.Write) else 0
    data = wire.encode_request(42, req, plen) + b"x" * plen
    (frame,) = wire.FrameReader(response=False).feed(data)
    assert frame.header.rid == 42 and frame.header.op == wire.op_of(req)
    assert wire.decode_request(frame.header, frame.fields) == req
    assert bytes(frame.payload) == b"x" * plen


def test_frames_split_anywhere_and_back_to_back() -> None:
    data = b"".join(wire.encode_request(i, r) for i, r in enumerate(REQUESTS))
    data += wire.encode_request(99, wire.Write(1, 2, 3, 4, False), 3) + b"abc"
    r = wire.FrameReader(response=False)
    frames = []
    for i in range(0, len(data), 7):
        frames += r.feed(data[i: i + 7])
    assert [f.header.rid for f in frames] == [*range(len(REQUESTS)), 99]
    assert bytes(frames[-1].payload) == b"abc"


def test_big_payloads_can_be_left_in_the_stream() -> None:
    r = wire.FrameReader(response=False, defer_over=4)
    small = wire.encode_request(1, wire.Write(1, 2, 3, 0, True), 4) + b"abcd"
    big = wire.encode_request(2, wire.Write(1, 2, 3, 4, True), 5)
    f1, f2 = r.feed(small + big)
    assert bytes(f1.payload) == b"abcd" and f1.deferred == 0
    assert f2.deferred == 5 and not f2.payload  # the caller receives these 5 bytes itself
    (f3,) = r.feed(wire.encode_request(3, wire.Ping()))
    assert f3.header.rid == 3


def test_answers_round_trip() -> None:
    fields, payload = wire.list_payload([(1, 0), (2**63, 7)])
    data = wire.encode_response(wire.Op.LIST, 5, fields, len(payload)) + payload
    (f,) = wire.FrameReader(response=True).feed(data)
    assert wire.decode_list(f.fields, f.payload) == [(1, 0), (2**63, 7)]
    assert wire.decode_space(wire.space_reply(10, 4, 3)) == (10, 4, 3)
    assert wire.decode_ping(wire.ping_reply([1, 5])) == [1, 5]
    assert wire.decode_u64(wire.u64(2**64 - 1)) == 2**64 - 1
    nonce, prf = os.urandom(16), os.urandom(32)
    assert wire.decode_hello_reply(wire.hello_reply(1, nonce, prf)) == (1, nonce, prf)
    err = wire.encode_error(wire.Op.READ, 9, wire.WIRE_CODES["ENOENT"], "no such shard " + "é" * 2000)
    (f,) = wire.FrameReader(response=True).feed(err)
    assert f.header.flags == wire.RESPONSE | wire.ERROR and f.header.rid == 9
    code, msg = wire.decode_error(f.fields)
    assert wire.from_wire(code) == errno.ENOENT and msg.startswith("no such shard")
    assert len(msg.encode()) <= wire.MAX_MESSAGE


def test_error_codes_map_both_ways() -> None:
    for name, code in wire.WIRE_CODES.items():
        host = getattr(errno, name)
        assert wire.to_wire(host) == code and wire.from_wire(code) == host
    assert wire.to_wire(errno.EXDEV) == wire.WIRE_CODES["EIO"]
    assert wire.from_wire(60000) == errno.EIO


def test_proofs_bind_token_role_version_and_nonces() -> None:
    cn, sn = os.urandom(16), os.urandom(16)
    p = wire.proof(b"tok", "client", 1, cn, sn)
    assert len(p) == 32
    assert p != wire.proof(b"tok", "server", 1, cn, sn)
    assert p != wire.proof(b"tok2", "client", 1, cn, sn)
    assert p != wire.proof(b"tok", "client", 2, cn, sn)
    assert p != wire.proof(b"tok", "client", 1, sn, cn)
    assert b"tok" not in wire.encode_request(1, wire.Auth(p))


def test_version_choice() -> None:
    assert wire.pick_version((5, 1)) == 1
    assert wire.pick_version((2, 3)) is None


def _hdr(op: int = 10, flags: int = 0, flen: int = 0, plen: int = 0, magic: bytes = wire.MAGIC,
         reserved: int = 0) -> bytes:
    return wire.HEADER.pack(magic, op, flags, reserved, 1, flen, plen)


@pytest.mark.parametrize(("raw", "code"), [
    (_hdr(magic=b"HTTP"), "EPROTO"),
    (_hdr(flags=1), "EPROTO"),
    (_hdr(reserved=1), "EPROTO"),
    (_hdr(flen=wire.MAX_FIELDS + 1), "EMSGSIZE"),
    (_hdr(op=3, plen=wire.MAX_PAYLOAD + 1), "EMSGSIZE"),
    (_hdr(op=4, plen=10), "EPROTO"),  # a READ request carries no payload
])
def test_bad_headers_are_fatal(raw: bytes, code: str) -> None:
    with pytest.raises(wire.ProtocolError) as ei:
        wire.FrameReader(response=False).feed(raw)
    assert ei.value.code == wire.WIRE_CODES[code] and ei.value.fatal


def test_bad_fields() -> None:
    h = wire.Header(wire.Op.WRITE, 0, 1, 10, 0)
    with pytest.raises(wire.ProtocolError) as ei:
        wire.decode_request(h, b"x" * 10)
    assert ei.value.fatal
    with pytest.raises(wire.ProtocolError) as ei:
        wire.decode_request(wire.Header(200, 0, 1, 0, 0), b"")
    assert ei.value.code == wire.WIRE_CODES["ENOTSUP"] and not ei.value.fatal
    big = struct.pack("<IQIQI", 1, 2, 3, 4, wire.MAX_PAYLOAD + 1)
    with pytest.raises(wire.ProtocolError) as ei:
        wire.decode_request(wire.Header(wire.Op.READ, 0, 1, len(big), 0), big)
    assert ei.value.code == wire.WIRE_CODES["EMSGSIZE"]
    bad_hello = bytes([3]) + b"\0" * 4 + os.urandom(16)  # says 3 versions, holds 2
    with pytest.raises(wire.ProtocolError):
        wire.decode_request(wire.Header(wire.Op.HELLO, 0, 1, len(bad_hello), 0), bad_hello)
    with pytest.raises(ValueError):
        wire.encode_request(1, wire.Read(1, 1, 1, 0, 5), 5)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_fuzz_stream_never_crashes(data: bytes, response: bool) -> None:
    r = wire.FrameReader(response=response)
    try:
        frames = r.feed(data)
    except wire.ProtocolError:
        return
    for f in frames:
        if response:
            continue
        try:
            wire.decode_request(f.header, f.fields)
        except wire.ProtocolError:
            pass


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=120))
def test_fuzz_fields_never_crash(op: int, fields: bytes) -> None:
    h = wire.Header(op, 0, 1, len(fields), 0)
    try:
        req = wire.decode_request(h, fields)
    except wire.ProtocolError:
        return
    assert wire.request_fields(req) == fields  # whatever decodes, encodes back to the same bytes


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(REQUESTS), st.data())
def test_fuzz_mutated_valid_frames(req: wire.Request, data: st.DataObject) -> None:
    raw = bytearray(wire.encode_request(1, req))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    try:
        for f in wire.FrameReader(response=False).feed(bytes(raw)):
            wire.decode_request(f.header, f.fields)
    except wire.ProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_fuzz_answer_decoders(fields: bytes) -> None:
    for fn in (wire.decode_error, wire.decode_hello_reply, wire.decode_u64, wire.decode_space, wire.decode_ping):
        try:
            fn(fields)
        except wire.ProtocolError:
            pass
    try:
        wire.decode_list(fields[:4], fields[4:])
    except wire.ProtocolError:
        pass
