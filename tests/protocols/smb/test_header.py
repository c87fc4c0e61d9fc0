"""SMB2 header codec, compounds, related chains, ERROR body and credits; layouts checked against impacket."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from impacket import smb3structs as s3

from protocols.smb.header import (
    RELATED_FILE_ID,
    RELATED_SESSION_ID,
    RELATED_TREE_ID,
    ChainState,
    Command,
    ErrorBody,
    Flags,
    Header,
    HeaderError,
    Message,
    compound_response,
    decode_error,
    encode_error,
    mixed_compound,
    split_compound,
)
from protocols.smb.status import NtStatus

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
U16, U32, U64 = st.integers(0, 0xFFFF), st.integers(0, 0xFFFF_FFFF), st.integers(0, 2**64 - 1)

headers = st.builds(
    Header,
    command=st.sampled_from(list(Command)),
    message_id=U64, credit_charge=U16, status=U32, credits=U16,
    flags=U32.map(lambda f: f & ~Flags.ASYNC_COMMAND), next_command=U32,
    tree_id=U32, session_id=U64, signature=st.binary(min_size=16, max_size=16), reserved=U32,
)


def test_commands_and_flags_match_impacket() -> None:
    names = {"NEGOTIATE": "SMB2_NEGOTIATE", "OPLOCK_BREAK": "SMB2_OPLOCK_BREAK", "QUERY_INFO": "SMB2_QUERY_INFO"}
    for c in Command:
        assert getattr(s3, names.get(c.name, "SMB2_" + c.name)) == c, c
    assert Flags.SERVER_TO_REDIR == s3.SMB2_FLAGS_SERVER_TO_REDIR
    assert Flags.ASYNC_COMMAND == s3.SMB2_FLAGS_ASYNC_COMMAND
    assert Flags.RELATED_OPERATIONS == s3.SMB2_FLAGS_RELATED_OPERATIONS
    assert Flags.SIGNED == s3.SMB2_FLAGS_SIGNED
    assert Flags.DFS_OPERATIONS == s3.SMB2_FLAGS_DFS_OPERATIONS
    assert Flags.PRIORITY_MASK == 0x70 and Flags.REPLAY_OPERATION == 0x2000_0000


@FUZZ
@given(headers, st.binary(max_size=40))
def test_sync_header_ours_to_impacket(h: Header, body: bytes) -> None:
    p = s3.SMB2Packet(h.encode() + body)
    assert p["StructureSize"] == 64               # impacket checks the constant ProtocolID itself
    assert (p["CreditCharge"], p["Status"], p["Command"], p["CreditRequestResponse"]) == (
        h.credit_charge, h.status, h.command, h.credits)
    assert (p["Flags"], p["NextCommand"], p["MessageID"], p["Reserved"], p["TreeID"], p["SessionID"]) == (
        h.flags, h.next_command, h.message_id, h.reserved, h.tree_id, h.session_id)
    assert p["Signature"] == h.signature and p["Data"] == body
    p3 = s3.SMB3Packet(h.encode())
    assert p3["ChannelSequence"] == h.channel_sequence


@FUZZ
@given(headers)
def test_sync_header_impacket_to_ours(h: Header) -> None:
    p = s3.SMB2Packet()
    p["CreditCharge"], p["Status"], p["Command"] = h.credit_charge, h.status, int(h.command)
    p["CreditRequestResponse"], p["Flags"], p["NextCommand"] = h.credits, h.flags, h.next_command
    p["MessageID"], p["Reserved"], p["TreeID"] = h.message_id, h.reserved, h.tree_id
    p["SessionID"], p["Signature"], p["Data"] = h.session_id, h.signature, b"\x04\x00"
    wire = p.getData()
    assert Header.decode(wire) == h
    assert Header.decode(wire).encode() == wire[:64]


@FUZZ
@given(U64, U64, U64, U32)
def test_async_header_both_ways(mid: int, async_id: int, sid: int, status: int) -> None:
    flags = Flags.ASYNC_COMMAND | Flags.SERVER_TO_REDIR
    h = Header(Command.CHANGE_NOTIFY, message_id=mid, status=status, flags=flags, async_id=async_id, session_id=sid)
    p = s3.SMB2PacketAsync(h.encode())
    got = (p["MessageID"], p["AsyncID"], p["SessionID"], p["Status"], p["Flags"])
    assert got == (mid, async_id, sid, status, flags)
    q = s3.SMB2PacketAsync()
    q["Command"], q["Flags"], q["MessageID"], q["AsyncID"] = int(Command.CHANGE_NOTIFY), flags, mid, async_id
    q["SessionID"], q["Status"], q["Signature"] = sid, status, bytes(16)
    back = Header.decode(q.getData())
    assert back == h and back.is_async and back.tree_id == 0


def test_flag_properties() -> None:
    h = Header(Command.READ, flags=Flags.SIGNED | Flags.RELATED_OPERATIONS | 0x50 | Flags.REPLAY_OPERATION)
    assert h.is_signed and h.is_related and not h.is_response and not h.is_async and h.priority == 5
    assert Header(Command.WRITE, status=0x0003_0007).channel_sequence == 7


def test_response_header() -> None:
    req = Header(Command.CREATE, message_id=11, credit_charge=2, credits=16, tree_id=3, session_id=4,
                 flags=Flags.SIGNED | Flags.RELATED_OPERATIONS | Flags.DFS_OPERATIONS,
                 signature=b"s" * 16, next_command=128, reserved=0xFEFF)
    r = req.response(NtStatus.ACCESS_DENIED, credits=5)
    assert r.flags == Flags.SERVER_TO_REDIR | Flags.RELATED_OPERATIONS
    assert (r.message_id, r.credit_charge, r.tree_id, r.session_id, r.credits) == (11, 2, 3, 4, 5)
    assert (r.status, r.signature, r.next_command, r.reserved) == (0xC0000022, bytes(16), 0, 0)
    assert s3.SMB2Packet(r.encode())["Status"] == 0xC0000022


@pytest.mark.parametrize("bad", [b"", b"\xfeSMB" + bytes(59), b"\xfdSMB" + bytes(60)])
def test_decode_rejects_without_header(bad: bytes) -> None:
    with pytest.raises(HeaderError) as e:
        Header.decode(bad)
    assert e.value.status == NtStatus.INVALID_PARAMETER and e.value.header is None and e.value.disconnect


def test_decode_wrong_structure_size_names_the_header() -> None:
    wire = bytearray(Header(Command.ECHO, message_id=9).encode())
    wire[4] = 65
    with pytest.raises(HeaderError) as e:
        Header.decode(wire)
    assert e.value.header is not None and e.value.header.message_id == 9 and not e.value.disconnect


def test_unknown_command_means_disconnect() -> None:
    wire = bytearray(Header(Command.ECHO).encode())
    wire[12] = 0x13                              # one past OPLOCK_BREAK
    with pytest.raises(HeaderError) as e:
        Header.decode(wire)
    assert e.value.disconnect and e.value.header is None
    assert Header.decode(Header(Command.OPLOCK_BREAK).encode()).command is Command.OPLOCK_BREAK


# ----------------------------------------------------------------------------- compounds

def _request(cmd: Command, body: bytes, **kw: int) -> tuple[Header, bytes]:
    return Header(cmd, **kw), body


def test_compound_roundtrip_aligned_and_signable() -> None:
    parts = [_request(Command.CREATE, b"c" * 57, message_id=1, session_id=7, tree_id=2),
             _request(Command.READ, b"r" * 49, message_id=2, flags=Flags.RELATED_OPERATIONS),
             _request(Command.CLOSE, b"x" * 24, message_id=3, flags=Flags.RELATED_OPERATIONS)]
    out = compound_response(parts)
    assert [len(m) % 8 for m in out[:-1]] == [0, 0] and len(out[-1]) == 64 + 24
    frame = b"".join(out)
    msgs = split_compound(frame)
    assert [m.header.command for m in msgs] == [Command.CREATE, Command.READ, Command.CLOSE]
    assert [m.header.message_id for m in msgs] == [1, 2, 3]
    assert [bytes(m.raw) for m in msgs] == out
    assert bytes(msgs[0].body[:57]) == b"c" * 57 and bytes(msgs[0].body[57:]) == bytes(7)
    assert [m.offset for m in msgs] == [0, 128, 248]
    # impacket agrees on each message's NextCommand chain
    off, seen = 0, []
    while True:
        p = s3.SMB2Packet(frame[off:])
        seen.append(p["Command"])
        if not p["NextCommand"]:
            break
        off += p["NextCommand"]
    assert seen == [Command.CREATE, Command.READ, Command.CLOSE]


def test_single_message_and_empty_body() -> None:
    msgs = split_compound(Header(Command.ECHO).encode())
    assert len(msgs) == 1 and len(msgs[0].body) == 0


@pytest.mark.parametrize(("nxt", "disconnect"), [(4, True), (56, False), (60, True), (68, True), (80, False),
                                                  (2**32 - 8, False)])
def test_split_rejects_bad_next_command(nxt: int, disconnect: bool) -> None:
    frame = Header(Command.CREATE, message_id=5, next_command=nxt).encode() + bytes(8) + Header(Command.CLOSE).encode()
    with pytest.raises(HeaderError) as e:
        split_compound(frame)
    assert e.value.status == NtStatus.INVALID_PARAMETER and e.value.header is not None
    assert e.value.header.message_id == 5 and e.value.disconnect is disconnect


def test_split_rejects_garbage_second_header_and_too_many() -> None:
    with pytest.raises(HeaderError):
        split_compound(Header(Command.CREATE, next_command=64).encode() + b"\xffSMB" + bytes(60))
    one = Header(Command.ECHO, next_command=72).encode() + bytes(8)
    assert len(split_compound(one * 3 + Header(Command.ECHO).encode(), max_messages=4)) == 4
    with pytest.raises(HeaderError):
        split_compound(one * 4 + Header(Command.ECHO).encode(), max_messages=4)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(list(Command)), st.binary(max_size=40)), min_size=1, max_size=6))
def test_compound_roundtrip_fuzz(items: list[tuple[Command, bytes]]) -> None:
    out = compound_response([(Header(c, message_id=i), b) for i, (c, b) in enumerate(items)])
    msgs = split_compound(b"".join(out))
    assert [(m.header.command, m.header.message_id) for m in msgs] == [(c, i) for i, (c, _) in enumerate(items)]
    assert [bytes(m.body[: len(b)]) for m, (_, b) in zip(msgs, items, strict=True)] == [b for _, b in items]


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=80), headers.map(Header.encode)), max_size=5))
def test_split_fuzz_only_header_errors(pieces: list[bytes]) -> None:
    frame = b"".join(pieces)
    try:
        msgs = split_compound(frame)
    except HeaderError as e:
        assert e.status == NtStatus.INVALID_PARAMETER
        return
    assert sum(len(m.raw) for m in msgs) == len(frame)
    assert all(m.offset % 8 == 0 and len(m.raw) >= 64 for m in msgs)


# ----------------------------------------------------------------------------- related chains

def test_chain_inherits_ids_and_file() -> None:
    c = ChainState()
    assert c.enter(Header(Command.CREATE, session_id=10, tree_id=20)) == (10, 20)
    assert c.file_id(RELATED_FILE_ID) == RELATED_FILE_ID          # not related: taken literally
    c.leave(NtStatus.SUCCESS, b"f" * 16)
    rel = Header(Command.WRITE, flags=Flags.RELATED_OPERATIONS, session_id=RELATED_SESSION_ID, tree_id=RELATED_TREE_ID)
    assert c.enter(rel) == (10, 20) and c.file_id(RELATED_FILE_ID) == b"f" * 16
    assert c.file_id(b"g" * 16) == b"g" * 16                      # an explicit FileId stays its own
    c.leave(NtStatus.DISK_FULL, b"f" * 16)                        # the WRITE failed on a good handle
    other = Header(Command.CLOSE, flags=Flags.RELATED_OPERATIONS, session_id=3, tree_id=4)
    assert c.enter(other) == (10, 20) and c.file_id(RELATED_FILE_ID) == b"f" * 16
    c.leave(NtStatus.SUCCESS)
    # an unrelated message starts afresh: its own ids, no FileId to inherit
    assert c.enter(Header(Command.ECHO, session_id=1, tree_id=2)) == (1, 2)
    c.leave(NtStatus.SUCCESS)
    c.enter(Header(Command.READ, flags=Flags.RELATED_OPERATIONS))
    with pytest.raises(HeaderError) as e:
        c.file_id(RELATED_FILE_ID)
    assert e.value.status == NtStatus.INVALID_HANDLE and not e.value.disconnect


def test_chain_failed_create_fails_the_rest_with_its_status() -> None:
    c = ChainState()
    c.enter(Header(Command.CREATE, session_id=1, tree_id=1))
    c.leave(NtStatus.OBJECT_NAME_NOT_FOUND)                      # no FileId made
    for cmd in (Command.QUERY_INFO, Command.CLOSE):
        c.enter(Header(cmd, flags=Flags.RELATED_OPERATIONS))
        with pytest.raises(HeaderError) as e:
            c.file_id(RELATED_FILE_ID)
        assert e.value.status == NtStatus.OBJECT_NAME_NOT_FOUND
        c.leave(e.value.status)


def test_chain_warning_keeps_the_file() -> None:
    c = ChainState()
    c.enter(Header(Command.CREATE))
    c.leave(NtStatus.SUCCESS, b"d" * 16)
    c.enter(Header(Command.QUERY_DIRECTORY, flags=Flags.RELATED_OPERATIONS))
    c.leave(NtStatus.BUFFER_OVERFLOW)
    c.enter(Header(Command.CLOSE, flags=Flags.RELATED_OPERATIONS))
    assert c.file_id(RELATED_FILE_ID) == b"d" * 16


def test_chain_session_setup_in_chain_and_related_first() -> None:
    with pytest.raises(HeaderError) as e:
        ChainState().enter(Header(Command.READ, message_id=4, flags=Flags.RELATED_OPERATIONS))
    assert e.value.status == NtStatus.INVALID_PARAMETER and e.value.header is not None
    assert e.value.header.message_id == 4 and not e.value.disconnect
    c = ChainState()
    c.enter(Header(Command.SESSION_SETUP))
    c.set_ids(session_id=77)
    c.leave(NtStatus.SUCCESS)
    c.enter(Header(Command.TREE_CONNECT, flags=Flags.RELATED_OPERATIONS))
    c.set_ids(tree_id=5)
    assert c.enter(Header(Command.CREATE, flags=Flags.RELATED_OPERATIONS)) == (77, 5)


# ----------------------------------------------------------------------------- ERROR body

def test_error_body_against_impacket() -> None:
    # with no data the 9th byte is ErrorData's one zero byte (MS-SMB2 2.2.2); impacket's default
    # structure wants 0xFF there, so compare bytes, and read impacket's empty body with ours
    assert encode_error() == b"\x09" + bytes(8)
    assert decode_error(s3.SMB2Error().getData()) == decode_error(encode_error())
    # impacket's SMB2Error always writes and expects its 0xFF ErrorData constant: compare the fixed part
    q = s3.SMB2Error()
    q["ByteCount"] = 3
    body = encode_error(b"\x01\x02\x03")
    assert q.getData()[:8] == body[:8] and body[8:] == b"\x01\x02\x03"
    q["Reserved"] = 1                            # impacket predates ErrorContextCount (the low byte)
    assert q.getData()[:8] == encode_error(b"\x01\x02\x03", context_count=1)[:8]
    assert decode_error(encode_error(b"\x01\x02\x03", 1)) == ErrorBody(1, b"\x01\x02\x03")


@pytest.mark.parametrize("bad", [b"", b"\x09\x00\x00\x00\x05\x00\x00\x00abcd", b"\x08" + bytes(8)])
def test_error_body_rejects(bad: bytes) -> None:
    with pytest.raises(HeaderError):
        decode_error(bad)


def test_mixed_compound_styles() -> None:
    def msgs(*related: bool) -> list[Message]:
        parts = [(Header(Command.ECHO, flags=Flags.RELATED_OPERATIONS if r else 0), bytes(4)) for r in related]
        return split_compound(b"".join(compound_response(parts)))

    assert not mixed_compound(msgs(False))
    assert not mixed_compound(msgs(False, True, True)) and not mixed_compound(msgs(False, False, False))
    assert mixed_compound(msgs(False, True, False)) and mixed_compound(msgs(False, False, True))
    assert not mixed_compound(msgs(True, False))          # a related first message is ChainState's error


def test_related_responses_keep_the_flag() -> None:
    reqs = [Header(Command.CREATE, message_id=1),
            Header(Command.CLOSE, message_id=2, flags=Flags.RELATED_OPERATIONS | Flags.SIGNED)]
    out = compound_response([(r.response(), encode_error()) for r in reqs])
    got = [s3.SMB2Packet(m)["Flags"] for m in out]
    assert got == [Flags.SERVER_TO_REDIR, Flags.SERVER_TO_REDIR | Flags.RELATED_OPERATIONS]
