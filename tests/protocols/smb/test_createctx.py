"""Create contexts: request chains built by smbprotocol and impacket, responses read back by smbprotocol."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from impacket import smb3structs as s3
from smbprotocol.create_contexts import (
    SMB2CreateAllocationSize,
    SMB2CreateContextRequest,
    SMB2CreateDurableHandleRequestV2,
    SMB2CreateEABuffer,
    SMB2CreateQueryMaximalAccessRequest,
    SMB2CreateRequestLease,
    SMB2CreateRequestLeaseV2,
    SMB2CreateTimewarpToken,
)
from smbprotocol.open import SMB2CreateResponse

from protocols.smb import createctx as cc
from protocols.smb.status import NtStatus

GUID = bytes(range(16, 32))
KEY = b"K" * 16


def _ctx(name: bytes, data: bytes) -> SMB2CreateContextRequest:
    c = SMB2CreateContextRequest()
    c["buffer_name"] = name
    c["buffer_data"] = data
    return c


def test_parses_smbprotocol_request_chain() -> None:
    mxac = SMB2CreateQueryMaximalAccessRequest()
    mxac["timestamp"] = 0   # smbprotocol sends a timestamp field
    dh2q = SMB2CreateDurableHandleRequestV2()
    dh2q["timeout"], dh2q["flags"], dh2q["create_guid"] = 60000, 2, GUID
    lease = SMB2CreateRequestLeaseV2()
    lease["lease_key"], lease["lease_state"], lease["parent_lease_key"] = KEY, 7, b"P" * 16
    lease["lease_flags"], lease["epoch"] = 4, b"\x05\x00"
    alsi = SMB2CreateAllocationSize()
    alsi["allocation_size"] = 1 << 20
    twrp = SMB2CreateTimewarpToken()
    twrp["timestamp"] = 133_000_000_000_000_000
    ea1, ea2 = SMB2CreateEABuffer(), SMB2CreateEABuffer()
    ea1["ea_name"], ea1["ea_value"] = b"user.colour\0", b"blue"
    ea2["ea_name"], ea2["ea_value"], ea2["flags"] = b"X\0", b"", 0x80
    chain = SMB2CreateContextRequest.pack_multiple([
        _ctx(cc.MXAC, b""), _ctx(cc.QFID, b""), dh2q, lease, alsi, twrp,
        _ctx(cc.EXTA, SMB2CreateEABuffer.pack_multiple([ea1, ea2])), _ctx(cc.SECD, b"\x01\x00\x04\x80" + bytes(16)),
        mxac])
    ctx = cc.parse_contexts(chain)
    assert set(ctx) == {cc.MXAC, cc.QFID, cc.DH2Q, cc.RQLS, cc.ALSI, cc.TWRP, cc.EXTA, cc.SECD}
    assert cc.parse_mxac(ctx[cc.MXAC]) is None      # the first MxAc (no timestamp) wins over the later one
    assert cc.parse_dh2q(ctx[cc.DH2Q]) == cc.DurableV2(60000, 2, GUID) and cc.parse_dh2q(ctx[cc.DH2Q]).persistent
    assert cc.parse_lease(ctx[cc.RQLS]) == cc.Lease(KEY, 7, 4, 0, b"P" * 16, 5, 2)
    assert cc.parse_alsi(ctx[cc.ALSI]) == 1 << 20
    assert cc.parse_twrp(ctx[cc.TWRP]) == 133_000_000_000_000_000
    assert cc.parse_ea_list(ctx[cc.EXTA]) == [cc.EaEntry(b"user.colour", b"blue"), cc.EaEntry(b"X", b"", 0x80)]
    assert ctx[cc.SECD] == b"\x01\x00\x04\x80" + bytes(16)


def test_lease_v1_and_mxac_timestamp() -> None:
    lease = SMB2CreateRequestLease()
    lease["lease_key"], lease["lease_state"] = KEY, 3
    ctx = cc.parse_contexts(SMB2CreateContextRequest.pack_multiple([lease, _ctx(cc.MXAC, struct.pack("<Q", 1234))]))
    assert cc.parse_lease(ctx[cc.RQLS]) == cc.Lease(KEY, 3)
    assert cc.parse_mxac(ctx[cc.MXAC]) == 1234


def test_parses_impacket_context() -> None:
    dh = s3.SMB2_CREATE_DURABLE_HANDLE_REQUEST()
    c = s3.SMB2CreateContext()
    c["Next"], c["NameOffset"], c["NameLength"], c["DataOffset"] = 0, 16, 4, 24
    c["DataLength"] = len(dh)
    c["Buffer"] = b"DHnQ" + bytes(4) + dh.getData()
    ctx = cc.parse_contexts(c.getData())
    cc.parse_dhnq(ctx[cc.DHNQ])
    assert ctx == {b"DHnQ": bytes(16)}


def test_response_chain_read_by_smbprotocol() -> None:
    lease = cc.Lease(KEY, 7, cc.LEASE_FLAG_PARENT_LEASE_KEY_SET, 0, b"P" * 16, 9, 2)
    chain = cc.encode_contexts([(cc.MXAC, cc.encode_mxac(0, 0x1F01FF)), (cc.QFID, cc.encode_qfid(4242, 77)),
                                (cc.DH2Q, cc.encode_dh2q(60000, 0)), (cc.RQLS, cc.encode_lease(lease))])
    raw = struct.pack("<HBBI4QQQII16sII", 89, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x20, 0, bytes(16), 152, len(chain)) + chain
    resp2 = SMB2CreateResponse()
    resp2.unpack(raw)
    got = {c["buffer_name"].get_value(): c.get_context_data() for c in resp2["buffer"].get_value()}
    assert got[cc.MXAC]["maximal_access"].get_value() == 0x1F01FF
    assert got[cc.MXAC]["query_status"].get_value() == 0
    assert (got[cc.QFID]["disk_file_id"].get_value(), got[cc.QFID]["volume_id"].get_value()) == (4242, 77)
    assert got[cc.DH2Q]["timeout"].get_value() == 60000
    assert got[cc.RQLS]["lease_key"].get_value() == KEY and got[cc.RQLS]["epoch"].get_value() == 9
    # offsets: every context starts 8-aligned and Next chains them; the last Next is 0
    pos, starts = 0, []
    while True:
        starts.append(pos)
        nxt = struct.unpack_from("<I", chain, pos)[0]
        if nxt == 0:
            break
        pos += nxt
    assert starts == [0, 32, 88, 120] and all(struct.unpack_from("<H", chain, s + 10)[0] == 24 for s in starts)
    assert cc.parse_contexts(chain)[cc.RQLS] == cc.encode_lease(lease)


def test_encode_round_trip_with_empty_data_and_long_names() -> None:
    ctxs = [(cc.QFID, b""), (bytes(range(16)), b"abc"), (b"AAPL", b"x" * 13), (cc.DHNQ, bytes(8))]
    chain = cc.encode_contexts(ctxs)
    assert cc.parse_contexts(chain) == dict(ctxs)
    assert struct.unpack_from("<HI", chain, 10) == (0, 0)      # no data: DataOffset 0
    assert cc.encode_contexts([]) == b"" and cc.parse_contexts(b"") == {}


@pytest.mark.parametrize(("field", "offset", "value"), [
    ("Next not 8-aligned", 0, 12), ("Next past the end", 0, 4096), ("NameOffset", 4, 18), ("short name", 6, 3),
    ("DataOffset unaligned", 10, 26), ("DataLength past the end", 12, 9999), ("DataOffset inside the name", 10, 16),
])
def test_malformed_chain(field: str, offset: int, value: int) -> None:
    chain = bytearray(cc.encode_contexts([(cc.MXAC, bytes(8)), (cc.QFID, b"")]))
    fmt = "<I" if offset in (0, 12) else "<H"
    struct.pack_into(fmt, chain, offset, value)
    with pytest.raises(cc.ContextError) as e:
        cc.parse_contexts(chain)
    assert e.value.status == NtStatus.INVALID_PARAMETER, field


@pytest.mark.parametrize(("fn", "size"), [(cc.parse_mxac, 4), (cc.parse_dhnq, 8), (cc.parse_dh2q, 31),
                                          (cc.parse_lease, 40), (cc.parse_alsi, 9), (cc.parse_twrp, 0),
                                          (cc.parse_dhnc, 15), (cc.parse_dh2c, 32)])
def test_wrong_context_sizes(fn: object, size: int) -> None:
    with pytest.raises(cc.ContextError):
        fn(bytes(size))  # type: ignore[operator]


def test_malformed_ea_lists() -> None:
    good = cc.encode_ea_list([cc.EaEntry(b"ab", b"12"), cc.EaEntry(b"c", b"3")])
    assert struct.unpack_from("<I", good)[0] == 16
    for bad in (good[:-1], good[:7], bytes(8), good[:10] + b"X" + good[11:], b"\x06" + good[1:]):
        with pytest.raises(cc.ContextError):
            cc.parse_ea_list(bad)


@given(st.binary(max_size=300))
def test_fuzz_chain(buf: bytes) -> None:
    try:
        ctx = cc.parse_contexts(buf)
    except cc.ContextError as e:
        assert e.status == NtStatus.INVALID_PARAMETER
        return
    for name, data in ctx.items():
        assert len(name) >= 4 and len(data) <= len(buf)


@given(st.sampled_from([cc.parse_mxac, cc.parse_dh2q, cc.parse_lease, cc.parse_alsi, cc.parse_twrp, cc.parse_ea_list,
                        cc.parse_dh2c, cc.parse_dhnc, cc.parse_dhnq]), st.binary(max_size=80))
def test_fuzz_bodies(fn: object, data: bytes) -> None:
    try:
        fn(data)  # type: ignore[operator]
    except cc.ContextError as e:
        assert e.status == NtStatus.INVALID_PARAMETER


@given(st.lists(st.tuples(st.binary(min_size=4, max_size=20), st.binary(max_size=40)), max_size=6,
                unique_by=lambda t: t[0]))
def test_fuzz_round_trip(ctxs: list[tuple[bytes, bytes]]) -> None:
    assert cc.parse_contexts(cc.encode_contexts(ctxs)) == dict(ctxs)
