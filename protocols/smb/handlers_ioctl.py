"""IOCTL (MS-SMB2 3.3.5.15): the FSCTLs clients send to a file server.

Served: FSCTL_PIPE_TRANSCEIVE (DCE/RPC on ``srvsvc``), FSCTL_VALIDATE_NEGOTIATE_INFO (3.0/3.0.2
clients check that nobody tampered with the NEGOTIATE: a mismatch closes the connection, 3.3.5.15.12),
FSCTL_SRV_REQUEST_RESUME_KEY + FSCTL_SRV_COPYCHUNK(_WRITE) (server-side copy: the data never
crosses the network), FSCTL_SET_SPARSE (accepted: every Tessera file is sparse), FSCTL_SET_ZERO_DATA
(a hole punched by writing zeros) and FSCTL_QUERY_ALLOCATED_RANGES (the whole file is reported
allocated), FSCTL_GET_REPARSE_POINT (NOT_A_REPARSE_POINT), FSCTL_QUERY_NETWORK_INTERFACE_INFO
(NOT_SUPPORTED: no multichannel is advertised). Any other control code is INVALID_DEVICE_REQUEST,
as Windows answers; IOCTLs that are not FSCTLs are NOT_SUPPORTED.
"""

from __future__ import annotations

import struct

from core.fs import acl as A

from .conn import Connection, Disconnect, Reply, Request, buffer_at, unpack
from .errors import SmbError
from .handlers_file import find_open
from .state import Open
from .status import NtStatus

_IOCTL = struct.Struct("<HHI16sIIIIIIII")     # 56
_RESPONSE = struct.Struct("<HHI16sIIIIII")    # 48; output at 64 + 48
OUTPUT_OFFSET = 64 + _RESPONSE.size
IOCTL_IS_FSCTL = 0x1
ALL_ONES = b"\xff" * 16

FSCTL_PIPE_TRANSCEIVE = 0x0011C017
FSCTL_VALIDATE_NEGOTIATE_INFO = 0x00140204
FSCTL_SRV_REQUEST_RESUME_KEY = 0x00140078
FSCTL_SRV_COPYCHUNK = 0x001440F2
FSCTL_SRV_COPYCHUNK_WRITE = 0x001480F2
FSCTL_QUERY_NETWORK_INTERFACE_INFO = 0x001401FC
FSCTL_SET_SPARSE = 0x000900C4
FSCTL_SET_ZERO_DATA = 0x000980C8
FSCTL_QUERY_ALLOCATED_RANGES = 0x000940CF
FSCTL_GET_REPARSE_POINT = 0x000900A8
_VNEG = struct.Struct("<I16sHH")
ZERO_CHUNK = 1 << 20


def _answer(ctl: int, file_id: bytes, output: bytes, status: int = NtStatus.SUCCESS) -> Reply:
    head = _RESPONSE.pack(49, 0, ctl, file_id, OUTPUT_OFFSET, 0, OUTPUT_OFFSET, len(output), 0, 0)
    return Reply(head + output, status)


def ioctl(conn: Connection, req: Request) -> Reply:
    (_, _, ctl, fid, in_off, in_count, _max_in, _out_off, _out_count, max_out, flags,
     _) = unpack(_IOCTL, req.body, "IOCTL")
    n = conn.negotiated
    assert n is not None
    if not flags & IOCTL_IS_FSCTL:
        raise SmbError(NtStatus.NOT_SUPPORTED, "only FSCTLs")
    if in_count > n.max_transact_size or max_out > n.max_transact_size:
        raise SmbError(NtStatus.INVALID_PARAMETER, "IOCTL buffers exceed MaxTransactSize")
    data = buffer_at(req, in_off, in_count, "IOCTL input")
    if ctl == FSCTL_VALIDATE_NEGOTIATE_INFO:
        return _validate_negotiate(conn, data, fid, max_out)
    if ctl == FSCTL_QUERY_NETWORK_INTERFACE_INFO:
        raise SmbError(NtStatus.NOT_SUPPORTED, "no multichannel")
    o = find_open(conn, req, fid)
    if ctl == FSCTL_PIPE_TRANSCEIVE:
        if o.pipe is None:
            raise SmbError(NtStatus.INVALID_DEVICE_REQUEST, "not a pipe")
        from .pipes import transceive
        out, status = transceive(o, data, max_out)
        return _answer(ctl, o.file_id, out, status)
    if o.pipe is not None:
        raise SmbError(NtStatus.INVALID_DEVICE_REQUEST, f"FSCTL {ctl:#x} on a pipe")
    if ctl == FSCTL_GET_REPARSE_POINT:
        raise SmbError(NtStatus.NOT_A_REPARSE_POINT, "no reparse points")
    if ctl == FSCTL_SET_SPARSE:
        _need(o, A.WRITE_DATA | A.WRITE_ATTRIBUTES, "set sparse")
        return _answer(ctl, o.file_id, b"")
    if ctl == FSCTL_SET_ZERO_DATA:
        return _zero_data(o, data, ctl)
    if ctl == FSCTL_QUERY_ALLOCATED_RANGES:
        return _allocated(o, data, ctl, max_out)
    if ctl == FSCTL_SRV_REQUEST_RESUME_KEY:
        return _resume_key(o, ctl, max_out)
    if ctl in (FSCTL_SRV_COPYCHUNK, FSCTL_SRV_COPYCHUNK_WRITE):
        from .copychunk import copychunk
        return copychunk(conn, o, ctl, data, max_out)
    raise SmbError(NtStatus.INVALID_DEVICE_REQUEST, f"FSCTL {ctl:#010x} is not served")


def _need(o: Open, mask: int, what: str) -> None:
    if not o.access & mask:
        raise SmbError(NtStatus.ACCESS_DENIED, f"the open may not {what}")


def _validate_negotiate(conn: Connection, data: bytes, fid: bytes, max_out: int) -> Reply:
    n = conn.negotiated
    assert n is not None
    if bytes(fid) != ALL_ONES:
        raise SmbError(NtStatus.INVALID_PARAMETER, "VALIDATE_NEGOTIATE_INFO with a FileId")
    if len(data) < _VNEG.size:
        raise SmbError(NtStatus.INVALID_PARAMETER, "short VALIDATE_NEGOTIATE_INFO")
    caps, guid, mode, count = _VNEG.unpack_from(data)
    if len(data) < _VNEG.size + 2 * count:
        raise SmbError(NtStatus.INVALID_PARAMETER, "short dialect list")
    dialects = struct.unpack_from(f"<{count}H", data, _VNEG.size)
    if (caps != n.client_capabilities or guid != n.client_guid or mode != n.client_security_mode
            or tuple(dialects) != tuple(n.client_dialects)):
        raise Disconnect("VALIDATE_NEGOTIATE_INFO does not match the NEGOTIATE")
    if max_out < 24:
        raise SmbError(NtStatus.INVALID_PARAMETER, "MaxOutputResponse too small")
    out = struct.pack("<I16sHH", int(n.capabilities), conn.ctx.server_guid, int(n.security_mode), int(n.dialect))
    return _answer(FSCTL_VALIDATE_NEGOTIATE_INFO, ALL_ONES, out)


def _zero_data(o: Open, data: bytes, ctl: int) -> Reply:
    _need(o, A.WRITE_DATA, "write")
    if len(data) < 16:
        raise SmbError(NtStatus.INVALID_PARAMETER, "short FILE_ZERO_DATA_INFORMATION")
    start, end = struct.unpack_from("<qq", data)
    if start < 0 or end < start:
        raise SmbError(NtStatus.INVALID_PARAMETER, "bad zero range")
    if o.handle is None:
        raise SmbError(NtStatus.ACCESS_DENIED, "no data access")
    end = min(end, o.handle.size())
    pos = start
    while pos < end:
        n = min(ZERO_CHUNK, end - pos)
        o.handle.write(pos, bytes(n))
        pos += n
    return _answer(ctl, o.file_id, b"")


def _allocated(o: Open, data: bytes, ctl: int, max_out: int) -> Reply:
    _need(o, A.READ_DATA, "read")
    if len(data) < 16:
        raise SmbError(NtStatus.INVALID_PARAMETER, "short FILE_ALLOCATED_RANGE_BUFFER")
    off, length = struct.unpack_from("<qq", data)
    if off < 0 or length < 0:
        raise SmbError(NtStatus.INVALID_PARAMETER, "bad range")
    size = o.handle.size() if o.handle is not None else 0
    end = min(off + length, size)
    out = struct.pack("<qq", off, end - off) if end > off else b""
    if len(out) > max_out:
        raise SmbError(NtStatus.BUFFER_TOO_SMALL, "MaxOutputResponse too small")
    return _answer(ctl, o.file_id, out)


def _resume_key(o: Open, ctl: int, max_out: int) -> Reply:
    if max_out < 32:
        raise SmbError(NtStatus.INVALID_PARAMETER, "MaxOutputResponse too small for a resume key")
    return _answer(ctl, o.file_id, o.file_id + bytes(8) + struct.pack("<I", 0) + bytes(4))


def _register() -> dict[object, object]:
    from .header import Command
    return {Command.IOCTL: ioctl}


HANDLERS = _register()
