"""Direct TCP framing: FrameReader, frame, kind; checked against impacket's NetBIOS session packets."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from impacket import nmb, smb
from impacket.smb3structs import SMB2_NEGOTIATE, SMB2Packet

from protocols.smb.framing import (
    DEFAULT_MAX_FRAME,
    BadFrame,
    FrameKind,
    FrameReader,
    FrameTooLarge,
    FramingError,
    frame,
    kind,
    smb1_dialects,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _impacket_frame(payload: bytes) -> bytes:
    p = nmb.NetBIOSSessionPacket()
    p.set_type(nmb.NETBIOS_SESSION_MESSAGE)
    p.set_trailer(payload)
    return bytes(p.rawData())


def test_default_cap_is_8_mib_plus_headroom() -> None:
    assert DEFAULT_MAX_FRAME == 8 * 1024 * 1024 + 64 * 1024
    assert FrameReader().max_frame == DEFAULT_MAX_FRAME


def test_frame_matches_impacket_session_message() -> None:
    payload = bytes(SMB2Packet().getData()) + b"z" * 70000      # length needs all 24 bits' low 17
    assert b"".join(frame([payload[:10], payload[10:]])) == _impacket_frame(payload)
    back = nmb.NetBIOSSessionPacket(b"".join(frame([payload])))
    assert back.get_type() == nmb.NETBIOS_SESSION_MESSAGE
    assert back.get_length() == len(payload) and back.get_trailer() == payload


def test_reader_reads_impacket_frames_byte_by_byte() -> None:
    msgs = [b"\xfeSMB" + bytes(60), b"x" * 300, b"y"]
    stream = b"".join(_impacket_frame(m) for m in msgs)
    r = FrameReader()
    got: list[bytes] = []
    for i in range(len(stream)):
        got += r.feed(stream[i: i + 1])
    assert got == msgs and r.pending() == 0


def test_frame_parts_are_not_copied() -> None:
    part = bytearray(b"abc")
    out = frame([part])
    assert out[1] is part and bytes(out[0]) == b"\x00\x00\x00\x03"


def test_frame_refuses_over_24_bits() -> None:
    assert len(b"".join(frame([bytes(0xFFFFFF)]))) == 0xFFFFFF + 4
    with pytest.raises(ValueError):
        frame([bytes(0xFFFFFF), b"x"])


def test_too_large_is_refused_from_the_header_alone() -> None:
    r = FrameReader(max_frame=1000)
    assert r.feed(b"\x00\x00\x03\xe8") == []              # exactly the cap: waits for the data
    assert r.feed(bytes(1000)) == [bytes(1000)]
    with pytest.raises(FrameTooLarge):
        r.feed(b"\x00\x00\x03\xe9")
    with pytest.raises(FrameTooLarge):
        FrameReader().feed(b"\x00\x81\x00\x01")           # 8 MiB + 64 KiB + 1


def test_bad_first_byte_and_keepalive() -> None:
    r = FrameReader()
    assert r.feed(b"\x85\x00\x00\x00" * 3 + b"\x00\x00\x00\x01!") == [b"!"]
    with pytest.raises(BadFrame):
        FrameReader().feed(b"\x85\x00\x00\x01x")         # a keep-alive has no body
    with pytest.raises(BadFrame):
        FrameReader().feed(b"\x81\x00\x00\x00")          # NetBIOS session request: not on 445
    assert issubclass(BadFrame, FramingError) and issubclass(FrameTooLarge, FramingError)


def test_needed_sizes_the_next_read() -> None:
    r = FrameReader()
    assert r.needed() == 4
    r.feed(b"\x00\x00")
    assert r.needed() == 2
    r.feed(b"\x00\x10" + bytes(6))
    assert r.needed() == 10
    assert r.feed(bytes(10)) == [bytes(16)] and r.needed() == 4


def test_kinds_of_impacket_messages() -> None:
    p = SMB2Packet()
    p["Command"] = SMB2_NEGOTIATE
    assert kind(p.getData()) is FrameKind.SMB2
    neg = smb.NewSMBPacket()
    neg.addCommand(smb.SMBCommand(smb.SMB.SMB_COM_NEGOTIATE))
    assert kind(neg.getData()) is FrameKind.SMB1
    assert kind(b"\xfdSMB" + bytes(48)) is FrameKind.TRANSFORM
    assert kind(b"\xfcSMB" + bytes(12)) is FrameKind.COMPRESSION
    assert kind(b"") is kind(b"\xfeSM") is kind(b"\xfeSMC") is FrameKind.UNKNOWN


@FUZZ
@given(st.lists(st.binary(min_size=1, max_size=600), max_size=8), st.data())
def test_reader_roundtrip_any_chunking(msgs: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(b"".join(frame([m])) for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    r = FrameReader(max_frame=600)
    got: list[bytes] = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += r.feed(stream[a:b])
    assert got == msgs and r.pending() == 0


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=10))
def test_reader_fuzz_only_framing_errors(chunks: list[bytes]) -> None:
    r = FrameReader(max_frame=256)
    total = 0
    try:
        for c in chunks:
            for f in r.feed(c):
                assert 0 < len(f) <= 256
                total += len(f) + 4
    except FramingError:
        return
    assert total + r.pending() <= sum(len(c) for c in chunks)


def test_exactly_default_cap_is_accepted() -> None:
    r = FrameReader()
    assert r.feed(DEFAULT_MAX_FRAME.to_bytes(4, "big")) == []
    assert r.needed() == DEFAULT_MAX_FRAME


def test_smb1_dialects_from_impacket_negotiate() -> None:
    # what impacket's SMBConnection sends first (negotiateSessionWildcard), and what Windows sends
    for offered in (["NT LM 0.12", "SMB 2.002", "SMB 2.???"], ["PC NETWORK PROGRAM 1.0", "SMB 2.002"]):
        p = smb.NewSMBPacket()
        p["Flags2"] = smb.SMB.FLAGS2_EXTENDED_SECURITY | smb.SMB.FLAGS2_UNICODE
        neg = smb.SMBCommand(smb.SMB.SMB_COM_NEGOTIATE)
        neg["Data"] = b"".join(b"\x02" + d.encode() + b"\x00" for d in offered)
        p.addCommand(neg)
        wire = bytes(p.getData())
        assert kind(wire) is FrameKind.SMB1
        assert smb1_dialects(wire) == offered
        assert smb1_dialects(wire + b"trailing") == offered      # ByteCount bounds the list


@pytest.mark.parametrize("bad", [
    b"", b"\xfeSMB" + bytes(40),
    b"\xffSMB\x73" + bytes(30),                                   # SESSION_SETUP_ANDX, not NEGOTIATE
    b"\xffSMB\x72" + bytes(27) + b"\x01\x00\x00\x00\x00",          # WordCount 1
    b"\xffSMB\x72" + bytes(27) + b"\x00\x05\x00\x02abc",           # no terminating zero
    b"\xffSMB\x72" + bytes(27) + b"\x00\x05\x00\x01abc\x00",       # buffer format not 0x02
])
def test_smb1_dialects_rejects(bad: bytes) -> None:
    with pytest.raises(BadFrame):
        smb1_dialects(bad)


@FUZZ
@given(st.binary(max_size=80))
def test_smb1_dialects_fuzz(tail: bytes) -> None:
    try:
        smb1_dialects(b"\xffSMB\x72" + bytes(27) + tail)
    except BadFrame:
        pass
