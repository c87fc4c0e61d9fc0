"""IOCTL requests and responses (MS-SMB2 2.2.31, 2.2.32, 3.3.5.15) and the FSCTL bodies the server
answers. Sans-IO.

The request body (offsets are from the start of the SMB2 header, 64 bytes before the body)::

    0  StructureSize (57)   2  Reserved   4  CtlCode   8  FileId (16)   24 InputOffset   28 InputCount
    32 MaxInputResponse     36 OutputOffset            40 OutputCount   44 MaxOutputResponse
    48 Flags (IS_FSCTL 1)   52 Reserved2  56 Buffer

The response body: StructureSize (49), Reserved, CtlCode, FileId, InputOffset, InputCount, OutputOffset,
OutputCount, Flags (0), Reserved2, Buffer; InputOffset is 112 (header + 48), OutputOffset that plus
InputCount rounded up to 8.

:func:`parse_ioctl` applies 3.3.5.15: Flags without IS_FSCTL is NOT_SUPPORTED; InputCount,
MaxInputResponse or MaxOutputResponse above MaxTransactSize, an input or output buffer outside the
request, or a FileId other than all 0xFF for the FSCTLs that name no open (VALIDATE_NEGOTIATE_INFO,
QUERY_NETWORK_INTERFACE_INFO, DFS referrals, PIPE_WAIT) is INVALID_PARAMETER. Errors are
:class:`IoctlError`: ``status``; ``disconnect`` when MS-SMB2 says to drop the connection (a
VALIDATE_NEGOTIATE_INFO that is malformed or does not match); ``output`` when the status goes in an
IOCTL response with that output rather than an ERROR body (the copychunk limits answer,
3.3.5.15.6.2).

:func:`fit_output` is the MaxOutputResponse rule: output that fits is SUCCESS; a pipe transceive or
peek, or a DFS referral, too long for it is cut with BUFFER_OVERFLOW (an IOCTL response carrying
data, 3.3.4.4); anything else is BUFFER_TOO_SMALL. FSCTLs with fixed-size answers check
MaxOutputResponse first (INVALID_PARAMETER, or a disconnect for VALIDATE_NEGOTIATE_INFO).

FSCTL bodies (little-endian):

- VALIDATE_NEGOTIATE_INFO request: Capabilities u32, Guid (16), SecurityMode u16, DialectCount u16,
  Dialects u16[]; response (24 bytes): Capabilities, Guid, SecurityMode, Dialect.
- SRV_REQUEST_RESUME_KEY response (32 bytes): ResumeKey (24), ContextLength u32 (0), 4 zero bytes
  (what Windows sends).
- SRV_COPYCHUNK / _WRITE request: SourceKey (24), ChunkCount u32, Reserved u32, chunks of
  SourceOffset u64, TargetOffset u64, Length u32, Reserved u32; response SRV_COPYCHUNK_RESPONSE:
  ChunksWritten, ChunkBytesWritten, TotalBytesWritten (u32 each). Limits as Windows: 256 chunks,
  1 MiB a chunk, 16 MiB in all; past them, or a chunk of length 0, the answer is INVALID_PARAMETER
  with the limits in the response. COPYCHUNK needs the target opened for read and write,
  COPYCHUNK_WRITE for write (the server checks: ACCESS_DENIED).
- QUERY_NETWORK_INTERFACE_INFO response: NETWORK_INTERFACE_INFO entries of 152 bytes (Next, IfIndex,
  Capability RSS 1 / RDMA 2, Reserved, LinkSpeed u64 bits/s, SockAddr_Storage (128): family 2 with
  port and IPv4 address, or family 23 with port, flow info, IPv6 address, scope id).
- SET_SPARSE: an optional BOOLEAN (none means TRUE). SET_ZERO_DATA: FileOffset i64, BeyondFinalZero
  i64. QUERY_ALLOCATED_RANGES: FileOffset i64, Length i64 in; (offset, length) pairs out, as many as
  fit (BUFFER_OVERFLOW when not all do, BUFFER_TOO_SMALL when none does).
- GET_REPARSE_POINT: Tessera has no reparse points: :data:`NOT_A_REPARSE_POINT`. Other FSCTLs:
  :func:`unsupported_status`.

Public interface: :class:`Fsctl`, :class:`IoctlRequest`, :func:`parse_ioctl`,
:func:`encode_ioctl_request`, :func:`encode_ioctl_response`, :func:`fit_output`, :class:`IoctlError`,
:class:`ValidateNegotiate`, :func:`parse_validate_negotiate`, :func:`answer_validate_negotiate`,
:func:`encode_resume_key`, :class:`CopyChunk`, :class:`CopyChunkRequest`, :func:`parse_copychunk`,
:func:`encode_copychunk_response`, :class:`NetworkInterface`, :func:`encode_network_interfaces`,
:func:`parse_set_sparse`, :func:`parse_zero_data`, :func:`parse_allocated_ranges`,
:func:`encode_allocated_ranges`, :data:`NOT_A_REPARSE_POINT`, :func:`unsupported_status`, the
copychunk limits.

>>> req = parse_ioctl(encode_ioctl_request(Fsctl.SET_ZERO_DATA, b"F" * 16, struct.pack("<qq", 0, 4096)))
>>> req.ctl_code == Fsctl.SET_ZERO_DATA, parse_zero_data(req.input)
(True, (0, 4096))
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from .status import NtStatus

HEADER_SIZE: Final = 64
REQUEST_FIXED: Final = 56
RESPONSE_FIXED: Final = 48
IS_FSCTL: Final = 0x1
NO_FILE_ID: Final = b"\xff" * 16
NOT_A_REPARSE_POINT: Final = NtStatus.NOT_A_REPARSE_POINT

COPYCHUNK_MAX_CHUNKS: Final = 256
COPYCHUNK_MAX_CHUNK_SIZE: Final = 1024 * 1024
COPYCHUNK_MAX_TOTAL: Final = 16 * 1024 * 1024

CAP_RSS: Final = 0x1
CAP_RDMA: Final = 0x2

_REQ = struct.Struct("<HHI16sIIIIIIII")
_RESP = struct.Struct("<HHI16sIIIIII")
_VNEG = struct.Struct("<I16sHH")
_VNEG_RESP = struct.Struct("<I16sHH")
_CC_HEAD = struct.Struct("<24sII")
_CC_CHUNK = struct.Struct("<QQII")
_CC_RESP = struct.Struct("<III")
_NIC = struct.Struct("<IIIIQ128s")
_RANGE = struct.Struct("<qq")
_I64_MAX: Final = (1 << 63) - 1


class Fsctl(IntEnum):
    """FSCTL codes the server knows (MS-SMB2 2.2.31, MS-FSCC 2.3)."""

    DFS_GET_REFERRALS = 0x00060194
    DFS_GET_REFERRALS_EX = 0x000601B0
    PIPE_PEEK = 0x0011400C
    PIPE_WAIT = 0x00110018
    PIPE_TRANSCEIVE = 0x0011C017
    SRV_COPYCHUNK = 0x001440F2
    SRV_COPYCHUNK_WRITE = 0x001480F2
    SRV_ENUMERATE_SNAPSHOTS = 0x00144064
    SRV_REQUEST_RESUME_KEY = 0x00140078
    SRV_READ_HASH = 0x001441BB
    LMR_REQUEST_RESILIENCY = 0x001401D4
    QUERY_NETWORK_INTERFACE_INFO = 0x001401FC
    VALIDATE_NEGOTIATE_INFO = 0x00140204
    SET_SPARSE = 0x000900C4
    SET_ZERO_DATA = 0x000980C8
    QUERY_ALLOCATED_RANGES = 0x000940CF
    GET_REPARSE_POINT = 0x000900A8
    SET_REPARSE_POINT = 0x000900A4
    DELETE_REPARSE_POINT = 0x000900AC
    FILE_LEVEL_TRIM = 0x00098208


NO_OPEN_FSCTLS: Final = frozenset({Fsctl.DFS_GET_REFERRALS, Fsctl.DFS_GET_REFERRALS_EX, Fsctl.PIPE_WAIT,
                                   Fsctl.QUERY_NETWORK_INTERFACE_INFO, Fsctl.VALIDATE_NEGOTIATE_INFO})
TRUNCATABLE_FSCTLS: Final = frozenset({Fsctl.PIPE_TRANSCEIVE, Fsctl.PIPE_PEEK, Fsctl.DFS_GET_REFERRALS,
                                       Fsctl.DFS_GET_REFERRALS_EX})


class IoctlError(Exception):
    """An IOCTL to refuse (module docstring): ``status``, ``disconnect``, and ``output`` when the
    status is sent in an IOCTL response carrying it."""

    def __init__(self, status: NtStatus, why: str = "", *, disconnect: bool = False,
                 output: bytes | None = None) -> None:
        super().__init__(f"{status.name}: {why}" if why else status.name)
        self.status = status
        self.disconnect = disconnect
        self.output = output


def _invalid(why: str) -> IoctlError:
    return IoctlError(NtStatus.INVALID_PARAMETER, why)


# ----------------------------------------------------------------------------- request / response

@dataclass(frozen=True, slots=True)
class IoctlRequest:
    ctl_code: int
    file_id: bytes
    input: bytes
    max_input_response: int
    max_output_response: int
    flags: int

    @property
    def needs_open(self) -> bool:
        """False for the FSCTLs that name no open (FileId all 0xFF)."""
        return self.ctl_code not in NO_OPEN_FSCTLS


def _buffer(body: bytes | bytearray | memoryview, offset: int, count: int, what: str) -> bytes:
    if count == 0:
        return b""
    start = offset - HEADER_SIZE
    if offset < HEADER_SIZE + REQUEST_FIXED or start + count > len(body):
        raise _invalid(f"{what} at {offset}, {count} bytes, in a {len(body)}-byte request")
    return bytes(body[start: start + count])


def parse_ioctl(body: bytes | bytearray | memoryview, max_transact: int | None = None) -> IoctlRequest:
    """Read and check an IOCTL request body (module docstring).

    >>> parse_ioctl(encode_ioctl_request(Fsctl.SET_SPARSE, b"F" * 16, flags=0))
    Traceback (most recent call last):
    ...
    protocols.smb.ioctl.IoctlError: NOT_SUPPORTED: Flags 0x0
    """
    if len(body) < REQUEST_FIXED:
        raise _invalid(f"{len(body)} bytes is too short for IOCTL")
    (size, _, ctl, file_id, in_off, in_count, max_in, out_off, out_count, max_out, flags,
     _) = _REQ.unpack_from(body)
    if size != 57:
        raise _invalid(f"StructureSize {size}")
    if flags != IS_FSCTL:
        raise IoctlError(NtStatus.NOT_SUPPORTED, f"Flags 0x{flags:x}")
    if ctl in NO_OPEN_FSCTLS and file_id != NO_FILE_ID:
        raise _invalid(f"FSCTL 0x{ctl:08x} names an open")
    if max_transact is not None and max(in_count, max_in, max_out) > max_transact:
        raise _invalid(f"InputCount {in_count}, MaxInputResponse {max_in}, MaxOutputResponse {max_out} "
                       f"> MaxTransactSize {max_transact}")
    data = _buffer(body, in_off, in_count, "input")
    _buffer(body, out_off, out_count, "output")
    return IoctlRequest(ctl, bytes(file_id), data, max_in, max_out, flags)


def encode_ioctl_request(ctl_code: int, file_id: bytes, data: bytes = b"", max_output: int = 65536,
                         flags: int = IS_FSCTL) -> bytes:
    """An IOCTL request body (tests and doctests)."""
    in_off = HEADER_SIZE + REQUEST_FIXED if data else 0
    return _REQ.pack(57, 0, ctl_code, file_id, in_off, len(data), 0, 0, 0, max_output, flags, 0) + data


def encode_ioctl_response(ctl_code: int, file_id: bytes, output: bytes = b"", input_: bytes = b"") -> bytes:
    """An IOCTL response body. With no data at all one zero byte follows the 48 fixed ones (the
    StructureSize 49 convention).

    >>> len(encode_ioctl_response(Fsctl.SET_SPARSE, b"F" * 16)), len(encode_ioctl_response(1, b"F" * 16, b"abc"))
    (49, 51)
    """
    in_off = HEADER_SIZE + RESPONSE_FIXED
    out_off = in_off + len(input_) + (-len(input_) % 8)
    buf = input_ + bytes(out_off - in_off - len(input_)) + output if output else input_
    return _RESP.pack(49, 0, ctl_code, file_id, in_off, len(input_), out_off, len(output), 0, 0) + (buf or b"\0")


def fit_output(ctl_code: int, output: bytes, max_output: int) -> tuple[NtStatus, bytes]:
    """The MaxOutputResponse rule (module docstring): (status, output to send); BUFFER_TOO_SMALL
    is an error (ERROR body).

    >>> fit_output(Fsctl.PIPE_TRANSCEIVE, b"abcdef", 4)
    (<NtStatus.BUFFER_OVERFLOW: 2147483653>, b'abcd')
    >>> fit_output(Fsctl.QUERY_NETWORK_INTERFACE_INFO, b"abcdef", 4)[0].name
    'BUFFER_TOO_SMALL'
    """
    if len(output) <= max_output:
        return NtStatus.SUCCESS, output
    if ctl_code in TRUNCATABLE_FSCTLS:
        return NtStatus.BUFFER_OVERFLOW, output[:max_output]
    return NtStatus.BUFFER_TOO_SMALL, b""


def unsupported_status(ctl_code: int) -> NtStatus:
    """What to answer an FSCTL the server does not implement: NOT_A_REPARSE_POINT for
    GET_REPARSE_POINT (nothing here is one), INVALID_DEVICE_REQUEST otherwise (Windows)."""
    return NOT_A_REPARSE_POINT if ctl_code == Fsctl.GET_REPARSE_POINT else NtStatus.INVALID_DEVICE_REQUEST


# ----------------------------------------------------------------------------- VALIDATE_NEGOTIATE_INFO

@dataclass(frozen=True, slots=True)
class ValidateNegotiate:
    capabilities: int
    guid: bytes
    security_mode: int
    dialects: tuple[int, ...]


def parse_validate_negotiate(data: bytes, max_output: int) -> ValidateNegotiate:
    """A VALIDATE_NEGOTIATE_INFO request; malformed, or a MaxOutputResponse under 24 bytes: an
    IoctlError that drops the connection (3.3.5.15.12)."""
    if len(data) < _VNEG.size or max_output < _VNEG_RESP.size:
        raise IoctlError(NtStatus.INVALID_PARAMETER, f"validate negotiate: {len(data)} bytes in, {max_output} out",
                         disconnect=True)
    caps, guid, mode, count = _VNEG.unpack_from(data)
    if len(data) < _VNEG.size + 2 * count:
        raise IoctlError(NtStatus.INVALID_PARAMETER, f"validate negotiate: {count} dialects in {len(data)} bytes",
                         disconnect=True)
    return ValidateNegotiate(caps, guid, mode, struct.unpack_from(f"<{count}H", data, _VNEG.size))


def answer_validate_negotiate(req: ValidateNegotiate, *, client: ValidateNegotiate, dialect: int,
                              supported: Sequence[int], server_capabilities: int, server_guid: bytes,
                              server_security_mode: int) -> bytes:
    """Compare the request with what the client sent in NEGOTIATE (``client``: its capabilities,
    guid, security mode and dialects) and the dialect chosen, and answer with the server's values.
    A mismatch (a man in the middle downgraded the negotiate) is an IoctlError that drops the
    connection. The dialect check: the highest of the request's dialects the server supports must
    be the connection's.

    >>> c = ValidateNegotiate(0x7F, b"G" * 16, 1, (0x202, 0x300))
    >>> len(answer_validate_negotiate(c, client=c, dialect=0x300, supported=(0x202, 0x210, 0x300),
    ...                               server_capabilities=0x44, server_guid=b"S" * 16, server_security_mode=2))
    24
    """
    common = [d for d in req.dialects if d in supported]
    if (req.capabilities, req.guid, req.security_mode) != (client.capabilities, client.guid, client.security_mode) \
            or not common or max(common) != dialect:
        raise IoctlError(NtStatus.ACCESS_DENIED, "validate negotiate does not match the negotiate", disconnect=True)
    return _VNEG_RESP.pack(server_capabilities, server_guid, server_security_mode, dialect)


# ----------------------------------------------------------------------------- resume key and copychunk

def encode_resume_key(key: bytes, max_output: int) -> bytes:
    """The SRV_REQUEST_RESUME_KEY answer for a 24-byte ``key`` naming the source open;
    INVALID_PARAMETER when MaxOutputResponse cannot hold its 32 bytes."""
    if len(key) != 24:
        raise ValueError("a resume key is 24 bytes")
    if max_output < 32:
        raise _invalid(f"MaxOutputResponse {max_output} < 32 for a resume key")
    return key + bytes(8)


@dataclass(frozen=True, slots=True)
class CopyChunk:
    source_offset: int
    target_offset: int
    length: int


@dataclass(frozen=True, slots=True)
class CopyChunkRequest:
    source_key: bytes
    chunks: tuple[CopyChunk, ...]

    @property
    def total(self) -> int:
        return sum(c.length for c in self.chunks)


def encode_copychunk_response(chunks_written: int, chunk_bytes_written: int, total_bytes_written: int) -> bytes:
    """SRV_COPYCHUNK_RESPONSE. On success: chunks done, 0, bytes copied; on a failure inside a chunk
    the bytes of that chunk written go in the middle field."""
    return _CC_RESP.pack(chunks_written, chunk_bytes_written, total_bytes_written)


LIMITS_RESPONSE: Final = encode_copychunk_response(COPYCHUNK_MAX_CHUNKS, COPYCHUNK_MAX_CHUNK_SIZE, COPYCHUNK_MAX_TOTAL)


def parse_copychunk(data: bytes, max_output: int) -> CopyChunkRequest:
    """A SRV_COPYCHUNK_COPY. Short input, chunks beyond it or a MaxOutputResponse under 12:
    INVALID_PARAMETER; past the limits or a zero-length chunk: INVALID_PARAMETER with
    :data:`LIMITS_RESPONSE` as ``output`` (sent in the IOCTL response).

    >>> body = struct.pack("<24sII", b"K" * 24, 1, 0) + struct.pack("<QQII", 0, 0, 2 << 20, 0)
    >>> parse_copychunk(body, 12)
    Traceback (most recent call last):
    ...
    protocols.smb.ioctl.IoctlError: INVALID_PARAMETER: chunk 0 of 2097152 bytes
    """
    if max_output < _CC_RESP.size:
        raise _invalid(f"MaxOutputResponse {max_output} < {_CC_RESP.size}")
    if len(data) < _CC_HEAD.size:
        raise _invalid(f"{len(data)} bytes is too short for SRV_COPYCHUNK_COPY")
    key, count, _ = _CC_HEAD.unpack_from(data)
    if count > COPYCHUNK_MAX_CHUNKS:
        raise IoctlError(NtStatus.INVALID_PARAMETER, f"{count} chunks", output=LIMITS_RESPONSE)
    if len(data) < _CC_HEAD.size + count * _CC_CHUNK.size:
        raise _invalid(f"{count} chunks in {len(data)} bytes")
    chunks = tuple(CopyChunk(*_CC_CHUNK.unpack_from(data, _CC_HEAD.size + i * _CC_CHUNK.size)[:3])
                   for i in range(count))
    for i, c in enumerate(chunks):
        if c.length == 0 or c.length > COPYCHUNK_MAX_CHUNK_SIZE:
            raise IoctlError(NtStatus.INVALID_PARAMETER, f"chunk {i} of {c.length} bytes", output=LIMITS_RESPONSE)
    req = CopyChunkRequest(key, chunks)
    if req.total > COPYCHUNK_MAX_TOTAL:
        raise IoctlError(NtStatus.INVALID_PARAMETER, f"{req.total} bytes in all", output=LIMITS_RESPONSE)
    return req


# ----------------------------------------------------------------------------- network interfaces

@dataclass(frozen=True, slots=True)
class NetworkInterface:
    """One address of one interface; ``if_index`` must not be 0 and is shared by an interface's addresses."""

    if_index: int
    address: str
    link_speed: int = 10_000_000_000       # bits per second
    capability: int = CAP_RSS


def _sockaddr(address: str) -> bytes:
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        raw = struct.pack("<H", 0x0002) + struct.pack(">H", 0) + ip.packed
    else:
        raw = struct.pack("<H", 0x0017) + struct.pack(">HI", 0, 0) + ip.packed + struct.pack("<I", 0)
    return raw + bytes(128 - len(raw))


def encode_network_interfaces(interfaces: Sequence[NetworkInterface]) -> bytes:
    """The QUERY_NETWORK_INTERFACE_INFO output: one 152-byte entry per address, chained by Next.

    >>> out = encode_network_interfaces([NetworkInterface(1, "10.0.2.15"), NetworkInterface(1, "fe80::1")])
    >>> len(out), struct.unpack_from("<I", out)[0], out[24:32].hex()
    (304, 152, '020000000a00020f')
    """
    out = bytearray()
    for i, nic in enumerate(interfaces):
        if nic.if_index == 0:
            raise ValueError("IfIndex 0 is not sent (MS-SMB2 3.3.5.15.11)")
        nxt = _NIC.size if i < len(interfaces) - 1 else 0
        out += _NIC.pack(nxt, nic.if_index, nic.capability, 0, nic.link_speed, _sockaddr(nic.address))
    return bytes(out)


# ----------------------------------------------------------------------------- sparse files

def parse_set_sparse(data: bytes) -> bool:
    """FSCTL_SET_SPARSE's FILE_SET_SPARSE_BUFFER: no input means set sparse."""
    return not data or data[0] != 0


def parse_zero_data(data: bytes) -> tuple[int, int]:
    """FSCTL_SET_ZERO_DATA: (FileOffset, BeyondFinalZero), checked as MS-FSA 2.1.5.9.35 does."""
    if len(data) < _RANGE.size:
        raise _invalid(f"{len(data)} bytes is too short for FILE_ZERO_DATA_INFORMATION")
    start, end = _RANGE.unpack_from(data)
    if start < 0 or end < 0 or start > end:
        raise _invalid(f"zero data from {start} to {end}")
    return start, end


def parse_allocated_ranges(data: bytes) -> tuple[int, int]:
    """FSCTL_QUERY_ALLOCATED_RANGES' FILE_ALLOCATED_RANGE_BUFFER: (FileOffset, Length)."""
    if len(data) < _RANGE.size:
        raise _invalid(f"{len(data)} bytes is too short for FILE_ALLOCATED_RANGE_BUFFER")
    offset, length = _RANGE.unpack_from(data)
    if offset < 0 or length < 0 or offset > _I64_MAX - length:
        raise _invalid(f"range {offset} + {length}")
    return offset, length


def encode_allocated_ranges(ranges: Sequence[tuple[int, int]], max_output: int) -> tuple[NtStatus, bytes]:
    """(offset, length) ranges as whole FILE_ALLOCATED_RANGE_BUFFERs in ``max_output`` bytes:
    SUCCESS, BUFFER_OVERFLOW with those that fit, or BUFFER_TOO_SMALL when not one could (MS-FSA
    2.1.5.9.22 checks the size first, even for a file with no ranges).

    >>> encode_allocated_ranges([(0, 10), (20, 5)], 20)[0].name
    'BUFFER_OVERFLOW'
    """
    fit = max_output // _RANGE.size
    if fit == 0:
        return NtStatus.BUFFER_TOO_SMALL, b""
    out = b"".join(_RANGE.pack(o, n) for o, n in ranges[:fit])
    return (NtStatus.BUFFER_OVERFLOW if len(ranges) > fit else NtStatus.SUCCESS), out
