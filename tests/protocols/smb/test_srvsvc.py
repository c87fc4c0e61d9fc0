"""The srvsvc pipe driven by impacket's DCE/RPC client (through a fake transport) and by hand-built PDUs."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from impacket.dcerpc.v5 import rpcrt, srvs, transport
from impacket.dcerpc.v5.dtypes import NULL

from protocols.smb.srvsvc import (
    BIND_ACK,
    BIND_NAK,
    ERROR_INVALID_LEVEL,
    FAULT,
    NCA_OP_RNG_ERROR,
    NCA_UNK_IF,
    NDR64_SYNTAX,
    NDR_SYNTAX,
    NERR_NET_NAME_NOT_FOUND,
    PFC_FIRST_FRAG,
    PFC_LAST_FRAG,
    RESPONSE,
    SRVSVC_SYNTAX,
    STYPE_DISKTREE,
    STYPE_IPC,
    PipeError,
    ShareInfo,
    SrvsvcPipe,
    bind_pdu,
    parse_bind_ack,
    syntax,
)

SHARES = [ShareInfo("data", STYPE_DISKTREE, "studio files", "C:\\data", 0x30),
          ShareInfo("caf\u00e9", STYPE_DISKTREE, "", "C:\\cafe"),
          ShareInfo("IPC$", STYPE_IPC, "IPC Service")]


class PipeTransport(transport.DCERPCTransport):  # type: ignore[misc]
    """impacket transport that writes into a SrvsvcPipe and reads its messages, like SMB WRITE/READ."""

    def __init__(self, pipe: SrvsvcPipe, read_size: int = 65536) -> None:
        super().__init__("tessera", 445)
        self.pipe, self.read_size, self.buf = pipe, read_size, b""
        self.writes: list[bytes] = []

    def connect(self) -> int:
        return 1

    def disconnect(self) -> int:
        return 1

    def send(self, data: bytes, forceWriteAndx: int = 0, forceRecv: int = 0) -> None:
        self.writes.append(bytes(data))
        self.pipe.write(bytes(data))

    def recv(self, forceRecv: int = 0, count: int = 0) -> bytes:
        while len(self.buf) < max(count, 1):
            r = self.pipe.read(self.read_size)
            assert r.data, "the client waits for an answer that never came"
            self.buf += r.data
        n = count or len(self.buf)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def _client(shares: list[ShareInfo] | None = None, read_size: int = 65536) -> tuple[Any, PipeTransport]:
    t = PipeTransport(SrvsvcPipe(SHARES if shares is None else shares, "TESSERA"), read_size)
    dce = rpcrt.DCERPC_v5(t)
    dce.connect()
    dce.bind(srvs.MSRPC_UUID_SRVS)
    return dce, t


def _names(resp: Any, level: int) -> list[str]:
    return [str(e[f"shi{level}_netname"])[:-1] for e in resp["InfoStruct"]["ShareInfo"][f"Level{level}"]["Buffer"]]


@pytest.mark.parametrize("level", [0, 1, 2, 501, 502])
def test_share_enum_through_impacket_client(level: int) -> None:
    dce, _ = _client()
    resp = srvs.hNetrShareEnum(dce, level)
    assert _names(resp, level) == ["data", "caf\u00e9", "IPC$"]
    assert resp["TotalEntries"] == 3 and resp["ErrorCode"] == 0
    entries = resp["InfoStruct"]["ShareInfo"][f"Level{level}"]["Buffer"]
    if level != 0:
        assert [e[f"shi{level}_type"] for e in entries] == [0, 0, 0x80000003]
        assert str(entries[0][f"shi{level}_remark"]) == "studio files\0"
    if level in (2, 502):
        assert str(entries[1][f"shi{level}_path"]) == "C:\\cafe\0"
    if level == 501:
        assert entries[0]["shi501_flags"] == 0x30


def test_share_enum_sticky_leaves_out_dollar_shares() -> None:
    dce, _ = _client()
    resp = srvs.hNetrShareEnumSticky(dce, 1)
    assert _names(resp, 1) == ["data", "caf\u00e9"] and resp["TotalEntries"] == 2


def test_share_enum_unsupported_level_is_invalid_level() -> None:
    dce, _ = _client()
    with pytest.raises(srvs.DCERPCSessionError) as e:
        srvs.hNetrShareEnum(dce, 503)
    assert e.value.get_error_code() == ERROR_INVALID_LEVEL


@pytest.mark.parametrize("level", [0, 1, 2, 501, 502, 1005])
def test_share_get_info_is_case_insensitive(level: int) -> None:
    dce, _ = _client()
    info = srvs.hNetrShareGetInfo(dce, "DATA\0", level)["InfoStruct"][f"ShareInfo{level}"]
    if level == 1005:
        assert info["shi1005_flags"] == 0x30
    else:
        assert str(info[f"shi{level}_netname"]) == "data\0"


def test_share_get_info_errors() -> None:
    dce, _ = _client()
    with pytest.raises(srvs.DCERPCSessionError) as e:
        srvs.hNetrShareGetInfo(dce, "nope\0", 1)
    assert e.value.get_error_code() == NERR_NET_NAME_NOT_FOUND
    with pytest.raises(srvs.DCERPCSessionError) as e:
        srvs.hNetrShareGetInfo(dce, "data\0", 7)
    assert e.value.get_error_code() == ERROR_INVALID_LEVEL


def test_server_get_info() -> None:
    dce, _ = _client()
    i100 = srvs.hNetrServerGetInfo(dce, 100)["InfoStruct"]["ServerInfo100"]
    assert (i100["sv100_platform_id"], str(i100["sv100_name"])) == (500, "TESSERA\0")
    i101 = srvs.hNetrServerGetInfo(dce, 101)["InfoStruct"]["ServerInfo101"]
    assert str(i101["sv101_name"]) == "TESSERA\0" and i101["sv101_type"] & 0x3 == 0x3
    with pytest.raises(srvs.DCERPCSessionError) as e:
        srvs.hNetrServerGetInfo(dce, 102)
    assert e.value.get_error_code() == ERROR_INVALID_LEVEL


def test_unknown_opnum_faults_with_op_rng_error() -> None:
    dce, _t = _client()
    req = srvs.NetrShareDel()
    req["ServerName"], req["NetName"], req["Reserved"] = NULL, "data\0", 0
    with pytest.raises(rpcrt.DCERPCException) as e:
        dce.request(req)
    assert str(e.value) == "nca_s_op_rng_error"


def test_many_shares_answer_in_several_fragments_and_impacket_reassembles() -> None:
    shares = [ShareInfo(f"share{i:03}", STYPE_DISKTREE, "r" * 40, f"C:\\s\\{i}") for i in range(200)]
    dce, _t = _client(shares)
    resp = srvs.hNetrShareEnum(dce, 2)
    assert _names(resp, 2) == [s.name for s in shares]


def test_fragmented_request_from_impacket() -> None:
    dce, t = _client()
    dce.set_max_fragment_size(16)     # impacket splits the request stub into 16-byte fragments
    resp = srvs.hNetrShareGetInfo(dce, "data\0", 2)
    assert str(resp["InfoStruct"]["ShareInfo2"]["shi2_path"]) == "C:\\data\0"
    assert len(t.writes) >= 3 and t.writes[-1][3] & PFC_LAST_FRAG and not t.writes[-2][3] & PFC_LAST_FRAG


def _request(stub: bytes, opnum: int, call_id: int = 2, ctx: int = 0, flags: int = 3) -> bytes:
    return struct.pack("<BBBB4sHHIIHH", 5, 0, 0, flags, b"\x10\0\0\0", 24 + len(stub), 0, call_id,
                       len(stub), ctx, opnum) + stub


def _enum_stub(level: int) -> bytes:
    q = srvs.NetrShareEnum()
    q["ServerName"], q["PreferedMaximumLength"], q["ResumeHandle"] = "\\\\x\0", 0xFFFFFFFF, 0
    q["InfoStruct"]["Level"] = level
    q["InfoStruct"]["ShareInfo"]["tag"] = level
    q["InfoStruct"]["ShareInfo"][f"Level{level}"]["Buffer"] = NULL
    return bytes(q.getData())


def _split_pdus(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        n = struct.unpack_from("<H", data, pos + 8)[0]
        out.append(data[pos: pos + n])
        pos += n
    return out


@pytest.mark.parametrize("max_recv", [64, 200, 1432])
def test_responses_honour_max_recv_frag(max_recv: int) -> None:
    shares = [ShareInfo(f"s{i}", remark="x" * i) for i in range(30)]
    pipe = SrvsvcPipe(shares, "T")
    ack = parse_bind_ack(pipe.transact(bind_pdu(max_recv=max_recv)))
    assert ack.max_xmit == max_recv and ack.results == [(0, 0)]
    frags = _split_pdus(pipe.transact(_request(_enum_stub(1), 15, call_id=9)))
    assert len(frags) > 1
    stub = b""
    for i, f in enumerate(frags):
        ptype, flags, call_id = f[2], f[3], struct.unpack_from("<I", f, 12)[0]
        alloc_hint = struct.unpack_from("<I", f, 16)[0]
        assert (ptype, call_id) == (RESPONSE, 9) and len(f) <= max_recv
        assert bool(flags & PFC_FIRST_FRAG) == (i == 0) and bool(flags & PFC_LAST_FRAG) == (i == len(frags) - 1)
        if i < len(frags) - 1:
            assert (len(f) - 24) % 8 == 0
        assert alloc_hint == sum(len(g) - 24 for g in frags[i:])
        stub += f[24:]
    assert _names(srvs.NetrShareEnumResponse(stub), 1) == [s.name for s in shares]


def test_read_returns_one_message_at_a_time() -> None:
    pipe = SrvsvcPipe([ShareInfo(f"s{i}", remark="y" * 50) for i in range(40)], "T")
    pipe.write(bind_pdu(max_recv=1024))
    pipe.read(65536)
    pipe.write(_request(_enum_stub(1), 15))
    first = pipe.read(100)
    assert len(first.data) == 100 and first.more
    rest = pipe.read(65536)
    assert not rest.more and len(first.data + rest.data) == struct.unpack_from("<H", first.data, 8)[0] <= 1024
    assert pipe.pending > 0 and pipe.read(65536).data[2] == RESPONSE


def test_bind_rejects_ndr64_and_other_interfaces_and_acks_feature_negotiation() -> None:
    btfn = syntax("6cb71c2c-9812-4540-0300-000000000000", 1)
    other = syntax("12345778-1234-abcd-ef00-0123456789ac", 1)
    pipe = SrvsvcPipe(SHARES, "T")
    pdu = bind_pdu(contexts=[(0, SRVSVC_SYNTAX, [NDR64_SYNTAX]), (1, SRVSVC_SYNTAX, [NDR_SYNTAX]),
                             (2, SRVSVC_SYNTAX, [btfn]), (3, other, [NDR_SYNTAX])])
    ack_pdu = pipe.transact(pdu)
    ack = parse_bind_ack(ack_pdu)
    assert ack_pdu[2] == BIND_ACK and ack.sec_addr == b"\\PIPE\\srvsvc\0"
    assert ack.results == [(2, 2), (0, 0), (3, 0), (2, 1)]
    assert ack_pdu[-20:] == bytes(20)       # rejected contexts carry a null transfer syntax
    ok = pipe.transact(_request(_enum_stub(0), 15, ctx=1))
    assert ok[2] == RESPONSE and _names(srvs.NetrShareEnumResponse(ok[24:]), 0) == ["data", "caf\u00e9", "IPC$"]
    bad = pipe.transact(_request(_enum_stub(0), 15, ctx=0))     # the rejected NDR64 context
    assert bad[2] == FAULT and struct.unpack_from("<I", bad, 24)[0] == NCA_UNK_IF


def test_request_before_bind_and_unknown_opnum_fault() -> None:
    pipe = SrvsvcPipe(SHARES, "T")
    f = pipe.transact(_request(_enum_stub(0), 15, call_id=4))
    assert (f[2], struct.unpack_from("<I", f, 12)[0], struct.unpack_from("<I", f, 24)[0]) == (FAULT, 4, NCA_UNK_IF)
    pipe.transact(bind_pdu())
    f = pipe.transact(_request(b"", 99))
    assert (f[2], len(f), struct.unpack_from("<I", f, 24)[0]) == (FAULT, 32, NCA_OP_RNG_ERROR)
    garbage = pipe.transact(_request(b"\xff" * 7, 16))
    assert garbage[2] == FAULT and struct.unpack_from("<I", garbage, 24)[0] == 0x6F7


def test_bind_with_auth_gets_nak_and_bad_streams_raise() -> None:
    pipe = SrvsvcPipe(SHARES, "T")
    pdu = bytearray(bind_pdu())
    pdu[10] = 8
    assert pipe.transact(bytes(pdu))[2] == BIND_NAK
    with pytest.raises(PipeError) as e:
        pipe.write(b"\x04\x00" + bytes(20))
    assert e.value.status == 0xC000000D
    half = bind_pdu()
    p2 = SrvsvcPipe(SHARES, "T")
    assert p2.transact(half[:30]) == b"" and p2.transact(half[30:])[2] == BIND_ACK


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_any_bytes(data: bytes) -> None:
    pipe = SrvsvcPipe(SHARES, "T")
    try:
        pipe.write(data)
    except PipeError as e:
        assert e.status
    while pipe.read(4096).data:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([15, 16, 21]), st.binary(max_size=200))
def test_fuzz_stubs_after_bind(opnum: int, stub: bytes) -> None:
    pipe = SrvsvcPipe(SHARES, "T")
    pipe.transact(bind_pdu())
    out = pipe.transact(_request(stub, opnum))
    assert out[2] in (RESPONSE, FAULT)


def test_alter_context_adds_a_context_and_tiny_max_recv_is_floored() -> None:
    pipe = SrvsvcPipe(SHARES, "T")
    ack = parse_bind_ack(pipe.transact(bind_pdu(max_recv=16)))
    assert ack.max_xmit == 64 and ack.results == [(0, 0)]
    resp = pipe.transact(bind_pdu(call_id=2, contexts=[(5, SRVSVC_SYNTAX, [NDR_SYNTAX])], ptype=14))
    assert resp[2] == 15 and parse_bind_ack(resp).sec_addr == b"" and parse_bind_ack(resp).results == [(0, 0)]
    frags = _split_pdus(pipe.transact(_request(_enum_stub(0), 15, call_id=3, ctx=5)))
    assert all(len(f) <= 64 for f in frags) and frags[-1][3] & PFC_LAST_FRAG
    assert _names(srvs.NetrShareEnumResponse(b"".join(f[24:] for f in frags)), 0) == ["data", "caf\u00e9", "IPC$"]
    bad = pipe.transact(_request(_enum_stub(0), 15, call_id=4, ctx=9))
    assert bad[2] == FAULT and struct.unpack_from("<I", bad, 24)[0] == NCA_UNK_IF
