"""CREATE contexts (MS-SMB2 2.2.13.2, 2.2.14.2): the chain in requests and responses, and the
contexts the server reads or answers. Sans-IO.

A chain is a run of SMB2_CREATE_CONTEXT structures, each 8-byte aligned, little-endian::

    0 Next (offset to the next context from this one, 0 for the last)   4 NameOffset (16)
    6 NameLength   8 Reserved   10 DataOffset (8-aligned, 0 with no data)   12 DataLength   16 name, pad, data

:func:`parse_contexts` takes the request's CreateContexts bytes (the server slices them with
CreateContextsOffset/Length) and returns ``{name: data}``; it checks what Samba checks (Next a
multiple of 8 inside the buffer, NameOffset 16, a name of at least 4 bytes, DataOffset 8-aligned,
past the name and, with DataLength, inside the buffer) and raises :class:`ContextError`
(INVALID_PARAMETER) otherwise. A name given twice keeps its first data. :func:`encode_contexts`
builds a response chain: name at 16, data at the next 8-byte boundary, each context but the last
padded to 8 bytes with Next naming the following one.

Context bodies (``parse_*`` raise ContextError(INVALID_PARAMETER) on a wrong length)::

    MxAc  request: empty or Timestamp u64          response: QueryStatus u32, MaximalAccess u32
    QFid  request: empty                            response: DiskFileId u64, VolumeId u64, Reserved (16)
    DHnQ  request: 16 reserved                      response: 8 reserved
    DHnC  request: FileId (16)
    DH2Q  request: Timeout u32, Flags u32, Reserved (8), CreateGuid (16)    response: Timeout u32, Flags u32
    DH2C  request: FileId (16), CreateGuid (16), Flags u32
    RqLs  v1 (32): LeaseKey (16), LeaseState u32, LeaseFlags u32, LeaseDuration u64
          v2 (52): ... + ParentLeaseKey (16), Epoch u16, Reserved u16; the response has the same shape
    AlSi  AllocationSize u64      TWrp  Timestamp u64 (FILETIME)      SecD  a security descriptor (raw)
    ExtA  FILE_FULL_EA_INFORMATION list (MS-FSCC 2.4.15): NextEntryOffset u32, Flags u8,
          EaNameLength u8, EaValueLength u16, name, NUL, value; entries 4-byte aligned

Public interface: the name constants (:data:`MXAC`, :data:`QFID`, ...), :func:`parse_contexts`,
:func:`encode_contexts`, :func:`parse_mxac`, :func:`encode_mxac`, :func:`encode_qfid`,
:func:`parse_dhnq`, :func:`encode_dhnq`, :func:`parse_dhnc`, :class:`DurableV2`,
:func:`parse_dh2q`, :func:`encode_dh2q`, :class:`DurableV2Reconnect`, :func:`parse_dh2c`,
:class:`Lease`, :func:`parse_lease`, :func:`encode_lease`, :func:`parse_alsi`,
:func:`parse_twrp`, :class:`EaEntry`, :func:`parse_ea_list`, :func:`encode_ea_list`,
:class:`ContextError`.

>>> chain = encode_contexts([(MXAC, encode_mxac(0, 0x1F01FF)), (QFID, encode_qfid(42, 7))])
>>> ctx = parse_contexts(chain)
>>> sorted(ctx), len(chain), ctx[QFID][:8].hex()
([b'MxAc', b'QFid'], 88, '2a00000000000000')
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .status import NtStatus

MXAC: Final = b"MxAc"
QFID: Final = b"QFid"
DHNQ: Final = b"DHnQ"
DHNC: Final = b"DHnC"
DH2Q: Final = b"DH2Q"
DH2C: Final = b"DH2C"
RQLS: Final = b"RqLs"
ALSI: Final = b"AlSi"
TWRP: Final = b"TWrp"
EXTA: Final = b"ExtA"
SECD: Final = b"SecD"

DH2_FLAG_PERSISTENT: Final = 0x2
LEASE_FLAG_BREAK_IN_PROGRESS: Final = 0x2
LEASE_FLAG_PARENT_LEASE_KEY_SET: Final = 0x4

_HEAD = struct.Struct("<IHHHHI")
_EA = struct.Struct("<IBBH")
_LEASE1 = struct.Struct("<16sIIQ")
_LEASE2 = struct.Struct("<16sIIQ16sHH")
_DH2Q = struct.Struct("<II8s16s")


class ContextError(Exception):
    """A malformed create context; ``status`` is the NTSTATUS to fail the CREATE with."""

    def __init__(self, why: str, status: NtStatus = NtStatus.INVALID_PARAMETER) -> None:
        super().__init__(why)
        self.status = status


# ----------------------------------------------------------------------------- the chain

def parse_contexts(buf: bytes | bytearray | memoryview) -> dict[bytes, bytes]:
    """The contexts of a CREATE request, name -> data (module docstring). An empty buffer is none.

    >>> parse_contexts(b"\\0" * 15)
    Traceback (most recent call last):
    ...
    protocols.smb.createctx.ContextError: 15 bytes left: too short for a create context
    """
    view = bytes(buf)
    out: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(view):
        left = len(view) - pos
        if left < _HEAD.size:
            raise ContextError(f"{left} bytes left: too short for a create context")
        nxt, name_off, name_len, _, data_off, data_len = _HEAD.unpack_from(view, pos)
        if nxt % 8 or nxt > left or (nxt and nxt < _HEAD.size):
            raise ContextError(f"context at {pos}: Next {nxt}")
        if name_off != _HEAD.size or name_len < 4 or name_off + name_len > left:
            raise ContextError(f"context at {pos}: name at {name_off}, {name_len} bytes")
        if data_off % 8 or (data_off and data_off < name_off + name_len) or data_off + data_len > left \
                or (data_len and not data_off):
            raise ContextError(f"context at {pos}: data at {data_off}, {data_len} bytes")
        name = view[pos + name_off: pos + name_off + name_len]
        out.setdefault(name, view[pos + data_off: pos + data_off + data_len] if data_len else b"")
        if nxt == 0:
            break
        pos += nxt
    return out


def _pad8(n: int) -> int:
    return -n % 8


def encode_contexts(contexts: Sequence[tuple[bytes, bytes]]) -> bytes:
    """A context chain (response or request) from (name, data) pairs; b"" for none.

    >>> encode_contexts([(DHNQ, encode_dhnq())]).hex()
    '0000000010000400000018000800000044486e51000000000000000000000000'
    """
    out = bytearray()
    for i, (name, data) in enumerate(contexts):
        data_off = _HEAD.size + len(name) + _pad8(_HEAD.size + len(name)) if data else 0
        body = bytearray(_HEAD.pack(0, _HEAD.size, len(name), 0, data_off, len(data)) + name)
        if data:
            body += bytes(data_off - len(body)) + data
        if i < len(contexts) - 1:
            body += bytes(_pad8(len(body)))
            struct.pack_into("<I", body, 0, len(body))
        out += body
    return bytes(out)


# ----------------------------------------------------------------------------- individual contexts

def _exact(name: bytes, data: bytes, *sizes: int) -> None:
    if len(data) not in sizes:
        raise ContextError(f"{name.decode('latin-1')} context of {len(data)} bytes (wants {sizes})")


def parse_mxac(data: bytes) -> int | None:
    """An MxAc request's Timestamp (FILETIME), or None when it has none."""
    _exact(MXAC, data, 0, 8)
    return struct.unpack("<Q", data)[0] if data else None


def encode_mxac(query_status: int, maximal_access: int) -> bytes:
    """The MxAc response: the status of the access query and the access mask the caller would get."""
    return struct.pack("<II", query_status, maximal_access)


def encode_qfid(disk_file_id: int, volume_id: int) -> bytes:
    """The QFid response (32 bytes): the file's on-disk id (the inode number) and the volume's."""
    return struct.pack("<QQ16x", disk_file_id, volume_id)


def parse_dhnq(data: bytes) -> None:
    """Check a DHnQ request (16 reserved bytes)."""
    _exact(DHNQ, data, 16)


def encode_dhnq() -> bytes:
    """The DHnQ response: 8 reserved bytes."""
    return bytes(8)


def parse_dhnc(data: bytes) -> bytes:
    """A DHnC (durable reconnect) request: the FileId (16 bytes) of the open to reclaim."""
    _exact(DHNC, data, 16)
    return data


@dataclass(frozen=True, slots=True)
class DurableV2:
    """A DH2Q request: ``timeout`` in ms (0: the server picks), ``flags`` (PERSISTENT 2), ``create_guid``."""

    timeout: int
    flags: int
    create_guid: bytes

    @property
    def persistent(self) -> bool:
        return bool(self.flags & DH2_FLAG_PERSISTENT)


def parse_dh2q(data: bytes) -> DurableV2:
    _exact(DH2Q, data, _DH2Q.size)
    timeout, flags, _, guid = _DH2Q.unpack(data)
    return DurableV2(timeout, flags, guid)


def encode_dh2q(timeout: int, flags: int = 0) -> bytes:
    """The DH2Q response: the timeout granted (ms) and flags (PERSISTENT when granted)."""
    return struct.pack("<II", timeout, flags)


@dataclass(frozen=True, slots=True)
class DurableV2Reconnect:
    file_id: bytes
    create_guid: bytes
    flags: int


def parse_dh2c(data: bytes) -> DurableV2Reconnect:
    _exact(DH2C, data, 36)
    file_id, guid, flags = struct.unpack("<16s16sI", data)
    return DurableV2Reconnect(file_id, guid, flags)


@dataclass(frozen=True, slots=True)
class Lease:
    """An RqLs request or response; ``version`` 1 (32 bytes) or 2 (52 bytes, parent key and epoch)."""

    key: bytes
    state: int
    flags: int = 0
    duration: int = 0
    parent_key: bytes = bytes(16)
    epoch: int = 0
    version: int = 1


def parse_lease(data: bytes) -> Lease:
    """An RqLs request of either version.

    >>> parse_lease(encode_lease(Lease(b"K" * 16, 7, version=2, epoch=3))).epoch
    3
    """
    _exact(RQLS, data, _LEASE1.size, _LEASE2.size)
    if len(data) == _LEASE1.size:
        key, state, flags, duration = _LEASE1.unpack(data)
        return Lease(key, state, flags, duration)
    key, state, flags, duration, parent, epoch, _ = _LEASE2.unpack(data)
    return Lease(key, state, flags, duration, parent, epoch, 2)


def encode_lease(lease: Lease) -> bytes:
    """The RqLs body of ``lease`` in its version's layout (the response answers in the request's)."""
    if lease.version == 1:
        return _LEASE1.pack(lease.key, lease.state, lease.flags, lease.duration)
    return _LEASE2.pack(lease.key, lease.state, lease.flags, lease.duration, lease.parent_key, lease.epoch, 0)


def parse_alsi(data: bytes) -> int:
    """An AlSi request: the allocation size asked for."""
    _exact(ALSI, data, 8)
    return int(struct.unpack("<Q", data)[0])


def parse_twrp(data: bytes) -> int:
    """A TWrp request: the snapshot time (FILETIME) to open."""
    _exact(TWRP, data, 8)
    return int(struct.unpack("<Q", data)[0])


@dataclass(frozen=True, slots=True)
class EaEntry:
    name: bytes
    value: bytes
    flags: int = 0     # FILE_NEED_EA 0x80


def parse_ea_list(data: bytes) -> list[EaEntry]:
    """An ExtA request's FILE_FULL_EA_INFORMATION list. Each entry must hold its NUL-terminated
    name and value, NextEntryOffset must be 4-aligned and inside the buffer; ContextError otherwise
    (Windows says STATUS_EA_LIST_INCONSISTENT; INVALID_PARAMETER here).

    >>> parse_ea_list(encode_ea_list([EaEntry(b"user.a", b"1"), EaEntry(b"B", b"")]))
    [EaEntry(name=b'user.a', value=b'1', flags=0), EaEntry(name=b'B', value=b'', flags=0)]
    """
    out: list[EaEntry] = []
    pos = 0
    while True:
        left = len(data) - pos
        if left < _EA.size:
            raise ContextError(f"EA entry at {pos}: {left} bytes")
        nxt, flags, name_len, value_len = _EA.unpack_from(data, pos)
        size = _EA.size + name_len + 1 + value_len
        if name_len == 0 or size > left or data[pos + _EA.size + name_len] != 0:
            raise ContextError(f"EA entry at {pos}: name {name_len} value {value_len} bytes, {left} left")
        if nxt % 4 or (nxt and (nxt < size or nxt >= left)):
            raise ContextError(f"EA entry at {pos}: NextEntryOffset {nxt}")
        name = data[pos + _EA.size: pos + _EA.size + name_len]
        value = data[pos + _EA.size + name_len + 1: pos + size]
        out.append(EaEntry(name, value, flags))
        if nxt == 0:
            return out
        pos += nxt


def encode_ea_list(entries: Sequence[EaEntry]) -> bytes:
    """A FILE_FULL_EA_INFORMATION list (tests; also the shape of an EA query answer)."""
    out = bytearray()
    for i, e in enumerate(entries):
        entry = _EA.pack(0, e.flags, len(e.name), len(e.value)) + e.name + b"\0" + e.value
        if i < len(entries) - 1:
            entry += bytes(-len(entry) % 4)
            entry = struct.pack("<I", len(entry)) + entry[4:]
        out += entry
    return bytes(out)
