"""IOCTL and FSCTL codecs against impacket's and smbprotocol's structures."""

from __future__ import annotations

import ipaddress
import struct
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from impacket import smb3structs as s3
from smbprotocol.ioctl import (
    SMB2IOCTLRequest,
    SMB2IOCTLResponse,
    SMB2NetworkInterfaceInfo,
    SMB2SrvCopyChunk,
    SMB2SrvCopyChunkCopy,
    SMB2SrvCopyChunkResponse,
    SMB2SrvRequestResumeKey,
    SMB2ValidateNegotiateInfoRequest,
    SMB2ValidateNegotiateInfoResponse,
)

from protocols.smb import ioctl as io
from protocols.smb.status import NtStatus

FID = bytes(range(16))
ALL_FF = b"\xff" * 16


def _impacket_ioctl(ctl: int, data: bytes, file_id: bytes = FID, max_out: int = 65536, flags: int = 1) -> bytes:
    req = s3.SMB2Ioctl()
    req["CtlCode"], req["FileID"] = ctl, file_id
    req["InputCount"], req["MaxOutputResponse"], req["Flags"] = len(data), max_out, flags
    req["OutputOffset"] = 0
    req["Buffer"] = data
    return bytes(req.getData())


def test_fsctl_codes_match_impacket() -> None:
    for name in ("PIPE_TRANSCEIVE", "PIPE_PEEK", "PIPE_WAIT", "SRV_COPYCHUNK", "SRV_COPYCHUNK_WRITE",
                 "SRV_REQUEST_RESUME_KEY", "QUERY_NETWORK_INTERFACE_INFO", "VALIDATE_NEGOTIATE_INFO",
                 "DFS_GET_REFERRALS", "DFS_GET_REFERRALS_EX", "SRV_ENUMERATE_SNAPSHOTS", "SRV_READ_HASH",
                 "LMR_REQUEST_RESILIENCY", "FILE_LEVEL_TRIM", "SET_REPARSE_POINT", "DELETE_REPARSE_POINT"):
        assert io.Fsctl[name] == getattr(s3, "FSCTL_" + name), name
    assert io.Fsctl.SET_SPARSE == 0x900C4 and io.Fsctl.QUERY_ALLOCATED_RANGES == 0x940CF


def test_parses_impacket_and_smbprotocol_requests() -> None:
    r = io.parse_ioctl(_impacket_ioctl(io.Fsctl.SET_ZERO_DATA, struct.pack("<qq", 10, 20), max_out=0))
    assert (r.ctl_code, r.file_id, r.input, r.max_output_response) == (io.Fsctl.SET_ZERO_DATA, FID,
                                                                       struct.pack("<qq", 10, 20), 0)
    assert r.needs_open
    sp = SMB2IOCTLRequest()
    sp["ctl_code"], sp["file_id"], sp["max_output_response"], sp["flags"] = io.Fsctl.SRV_REQUEST_RESUME_KEY, FID, 32, 1
    r2 = io.parse_ioctl(sp.pack())
    assert (r2.ctl_code, r2.input, r2.max_output_response) == (io.Fsctl.SRV_REQUEST_RESUME_KEY, b"", 32)


def test_request_checks() -> None:
    with pytest.raises(io.IoctlError) as e:
        io.parse_ioctl(_impacket_ioctl(io.Fsctl.SET_SPARSE, b"", flags=0))
    assert e.value.status == NtStatus.NOT_SUPPORTED
    with pytest.raises(io.IoctlError) as e:
        io.parse_ioctl(_impacket_ioctl(io.Fsctl.VALIDATE_NEGOTIATE_INFO, bytes(30), file_id=FID))
    assert e.value.status == NtStatus.INVALID_PARAMETER
    assert not io.parse_ioctl(_impacket_ioctl(io.Fsctl.QUERY_NETWORK_INTERFACE_INFO, b"", ALL_FF)).needs_open
    with pytest.raises(io.IoctlError):
        io.parse_ioctl(_impacket_ioctl(io.Fsctl.SET_SPARSE, b"", max_out=1 << 20), max_transact=65536)
    body = bytearray(_impacket_ioctl(io.Fsctl.SET_SPARSE, b"\x01"))
    struct.pack_into("<I", body, 28, 2)          # InputCount past the end
    with pytest.raises(io.IoctlError):
        io.parse_ioctl(body)
    struct.pack_into("<II", body, 24, 100, 1)    # InputOffset inside the fixed part
    with pytest.raises(io.IoctlError):
        io.parse_ioctl(body)
    with pytest.raises(io.IoctlError):
        io.parse_ioctl(bytes(55))


def test_response_parsed_by_impacket_and_smbprotocol() -> None:
    out = b"hello, world"
    body = io.encode_ioctl_response(io.Fsctl.PIPE_TRANSCEIVE, FID, out)
    imp = s3.SMB2Ioctl_Response(body)
    assert (imp["CtlCode"], imp["OutputOffset"], imp["OutputCount"], imp["InputCount"]) == (0x11C017, 112, 12, 0)
    assert imp["Buffer"] == out
    sp = SMB2IOCTLResponse()
    sp.unpack(body)
    assert sp["buffer"].get_value() == out and sp["file_id"].get_value() == FID
    withinput = io.encode_ioctl_response(7, FID, b"OUT", b"in")
    assert struct.unpack_from("<IIII", withinput, 24) == (112, 2, 120, 3) and withinput[48 + 8:] == b"OUT"
    empty = io.encode_ioctl_response(io.Fsctl.SET_SPARSE, FID)
    assert len(empty) == 49 and struct.unpack_from("<I", empty, 36)[0] == 0


def test_fit_output() -> None:
    assert io.fit_output(io.Fsctl.SRV_REQUEST_RESUME_KEY, b"x" * 32, 32) == (NtStatus.SUCCESS, b"x" * 32)
    assert io.fit_output(io.Fsctl.PIPE_PEEK, b"xyz", 2) == (NtStatus.BUFFER_OVERFLOW, b"xy")
    assert io.fit_output(io.Fsctl.QUERY_ALLOCATED_RANGES, b"x" * 32, 16)[0] == NtStatus.BUFFER_TOO_SMALL
    assert io.unsupported_status(io.Fsctl.GET_REPARSE_POINT) == NtStatus.NOT_A_REPARSE_POINT == io.NOT_A_REPARSE_POINT
    assert io.unsupported_status(0x90000) == NtStatus.INVALID_DEVICE_REQUEST


CLIENT_GUID = uuid.UUID(int=5)


def _vneg(dialects: list[int], caps: int = 0x7F, mode: int = 1) -> bytes:
    req = SMB2ValidateNegotiateInfoRequest()
    req["capabilities"], req["guid"], req["security_mode"] = caps, CLIENT_GUID, mode
    req["dialects"] = dialects
    return req.pack()


def test_validate_negotiate_with_smbprotocol() -> None:
    guid = uuid.UUID(int=5)
    req = io.parse_validate_negotiate(_vneg([0x202, 0x210, 0x300, 0x302]), 24)
    assert req.dialects == (0x202, 0x210, 0x300, 0x302) and req.guid == guid.bytes_le
    client = io.ValidateNegotiate(0x7F, guid.bytes_le, 1, (0x202, 0x210, 0x300, 0x302))
    kw = {"supported": (0x202, 0x210, 0x300, 0x302, 0x311), "server_capabilities": 0x45,
          "server_guid": uuid.UUID(int=9).bytes_le, "server_security_mode": 3}
    out = io.answer_validate_negotiate(req, client=client, dialect=0x302, **kw)  # type: ignore[arg-type]
    resp = SMB2ValidateNegotiateInfoResponse()
    resp.unpack(out)
    assert (resp["capabilities"].get_value(), resp["guid"].get_value(), resp["dialect"].get_value()) == \
        (0x45, uuid.UUID(int=9), 0x302)
    imp = s3.VALIDATE_NEGOTIATE_INFO_RESPONSE(out)
    assert (imp["SecurityMode"], imp["Dialect"]) == (3, 0x302)
    for bad in (io.ValidateNegotiate(0x7E, guid.bytes_le, 1, req.dialects), io.ValidateNegotiate(0x7F, guid.bytes_le, 1,
                                                                                                 (0x202, 0x300))):
        with pytest.raises(io.IoctlError) as e:
            io.answer_validate_negotiate(bad, client=client, dialect=0x302, **kw)  # type: ignore[arg-type]
        assert e.value.disconnect
    with pytest.raises(io.IoctlError) as e:
        io.parse_validate_negotiate(_vneg([0x202]), 23)
    assert e.value.disconnect
    with pytest.raises(io.IoctlError):
        io.parse_validate_negotiate(_vneg([0x202, 0x300])[:-1], 24)


def test_resume_key_with_smbprotocol() -> None:
    key = bytes(range(24))
    out = io.encode_resume_key(key, 32)
    rk = SMB2SrvRequestResumeKey()
    rk.unpack(out)
    assert rk["resume_key"].get_value() == key and rk["context_length"].get_value() == 0 and len(out) == 32
    assert s3.SRV_REQUEST_RESUME_KEY(out)["ResumeKey"] == key
    with pytest.raises(io.IoctlError):
        io.encode_resume_key(key, 31)


def _copychunk(chunks: list[tuple[int, int, int]]) -> bytes:
    cc = SMB2SrvCopyChunkCopy()
    cc["source_key"] = b"K" * 24
    items = []
    for so, to, n in chunks:
        c = SMB2SrvCopyChunk()
        c["source_offset"], c["target_offset"], c["length"] = so, to, n
        items.append(c)
    cc["chunks"] = items
    return cc.pack()


def test_copychunk_with_smbprotocol() -> None:
    req = io.parse_copychunk(_copychunk([(0, 100, 4096), (1 << 33, 0, 1 << 20)]), 12)
    assert req.source_key == b"K" * 24 and req.total == 4096 + (1 << 20)
    assert req.chunks == (io.CopyChunk(0, 100, 4096), io.CopyChunk(1 << 33, 0, 1 << 20))
    assert io.parse_copychunk(_copychunk([]), 12).chunks == ()
    resp = SMB2SrvCopyChunkResponse()
    resp.unpack(io.encode_copychunk_response(2, 0, 4096 + (1 << 20)))
    assert resp["total_bytes_written"].get_value() == 4096 + (1 << 20)


@pytest.mark.parametrize("chunks", [
    [(0, 0, (1 << 20) + 1)], [(0, 0, 0)], [(i << 20, i << 20, 1 << 20) for i in range(17)],
    [(i, i, 1) for i in range(257)],
])
def test_copychunk_limits_answer(chunks: list[tuple[int, int, int]]) -> None:
    with pytest.raises(io.IoctlError) as e:
        io.parse_copychunk(_copychunk(chunks), 12)
    assert e.value.status == NtStatus.INVALID_PARAMETER and e.value.output is not None
    limits = s3.SRV_COPYCHUNK_RESPONSE(e.value.output)
    assert (limits["ChunksWritten"], limits["ChunkBytesWritten"], limits["TotalBytesWritten"]) == (256, 1 << 20,
                                                                                                 16 << 20)


def test_copychunk_malformed_is_plain_invalid_parameter() -> None:
    good = _copychunk([(0, 0, 10), (10, 10, 10)])
    for data, max_out in ((good[:-1], 12), (good[:31], 12), (good, 11)):
        with pytest.raises(io.IoctlError) as e:
            io.parse_copychunk(data, max_out)
        assert e.value.status == NtStatus.INVALID_PARAMETER and e.value.output is None


def test_network_interfaces_with_smbprotocol_and_impacket() -> None:
    nics = [io.NetworkInterface(2, "192.168.1.20", 1_000_000_000), io.NetworkInterface(2, "2001:db8::7"),
            io.NetworkInterface(3, "10.0.0.1", capability=io.CAP_RSS | io.CAP_RDMA)]
    out = io.encode_network_interfaces(nics)
    parsed = SMB2NetworkInterfaceInfo.unpack_multiple(out)
    assert [p["if_index"].get_value() for p in parsed] == [2, 2, 3]
    assert [p["link_speed"].get_value() for p in parsed] == [1_000_000_000, 10_000_000_000, 10_000_000_000]
    addrs = [p["sock_addr_storage"].get_value()["buffer"].get_value().get_ipaddress() for p in parsed]
    assert addrs[0] == "192.168.1.20" and addrs[2] == "10.0.0.1"
    assert ipaddress.ip_address(addrs[1]) == ipaddress.ip_address("2001:db8::7")
    first = s3.NETWORK_INTERFACE_INFO(out[:152])
    assert (first["Next"], first["Capability"], first["SockAddr_Storage"][:2]) == (152, 1, b"\x02\x00")
    assert s3.NETWORK_INTERFACE_INFO(out[304:])["Next"] == 0 and parsed[2]["capability"].get_value() == 3
    with pytest.raises(ValueError):
        io.encode_network_interfaces([io.NetworkInterface(0, "10.0.0.1")])


def test_sparse_zero_data_and_allocated_ranges() -> None:
    assert io.parse_set_sparse(b"") and io.parse_set_sparse(b"\x01") and not io.parse_set_sparse(b"\x00")
    assert io.parse_zero_data(struct.pack("<qq", 5, 5)) == (5, 5)
    for bad in (struct.pack("<qq", 6, 5), struct.pack("<qq", -1, 5), b"\x00" * 15):
        with pytest.raises(io.IoctlError):
            io.parse_zero_data(bad)
    assert io.parse_allocated_ranges(struct.pack("<qq", 0, 1 << 40)) == (0, 1 << 40)
    for bad in (struct.pack("<qq", 1, (1 << 63) - 1), struct.pack("<qq", 0, -1), b""):
        with pytest.raises(io.IoctlError):
            io.parse_allocated_ranges(bad)
    ranges = [(0, 4096), (65536, 8192), (1 << 30, 1)]
    status, out = io.encode_allocated_ranges(ranges, 1024)
    assert status == NtStatus.SUCCESS and [struct.unpack_from("<qq", out, i) for i in (0, 16, 32)] == ranges
    assert io.encode_allocated_ranges(ranges, 47) == (NtStatus.BUFFER_OVERFLOW, out[:32])
    assert io.encode_allocated_ranges(ranges, 15) == (NtStatus.BUFFER_TOO_SMALL, b"")
    assert io.encode_allocated_ranges([], 15)[0] == NtStatus.BUFFER_TOO_SMALL
    assert io.encode_allocated_ranges([], 16) == (NtStatus.SUCCESS, b"")


@given(st.binary(max_size=200), st.one_of(st.none(), st.integers(0, 1 << 20)))
def test_fuzz_request(body: bytes, max_transact: int | None) -> None:
    try:
        r = io.parse_ioctl(body, max_transact)
    except io.IoctlError as e:
        assert e.status in (NtStatus.INVALID_PARAMETER, NtStatus.NOT_SUPPORTED)
    else:
        assert len(r.input) <= len(body)


@given(st.sampled_from(["vneg", "cc", "zero", "ranges"]), st.binary(max_size=120), st.integers(0, 64))
def test_fuzz_bodies(kind: str, data: bytes, max_out: int) -> None:
    try:
        if kind == "vneg":
            io.parse_validate_negotiate(data, max_out)
        elif kind == "cc":
            io.parse_copychunk(data, max_out)
        elif kind == "zero":
            io.parse_zero_data(data)
        else:
            io.parse_allocated_ranges(data)
    except io.IoctlError as e:
        assert e.status == NtStatus.INVALID_PARAMETER
