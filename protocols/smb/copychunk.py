"""Server-side copy (FSCTL_SRV_COPYCHUNK / _WRITE, MS-SMB2 3.3.5.15.6): the client names a source
open by the resume key it was given and a list of chunks; the server copies them into the target
open without the data crossing the network (Explorer and the kernel client's copy_file_range use it).

Limits are Windows': 256 chunks, 1 MiB per chunk, 16 MiB per request; beyond them the answer is
INVALID_PARAMETER carrying the limits (the client then sizes its requests to them). The source
open must have been made by the same session and allow reading; the target needs write access
(and read access for COPYCHUNK, not for COPYCHUNK_WRITE). Byte-range locks apply as to READ/WRITE.
"""

from __future__ import annotations

import struct

from core.fs import acl as A

from .conn import Connection, Reply
from .errors import SmbError
from .state import Open
from .status import NtStatus

MAX_CHUNKS = 256
MAX_CHUNK = 1 << 20
MAX_TOTAL = 16 << 20
_HEAD = struct.Struct("<24sII")
_CHUNK = struct.Struct("<QQII")
_RESPONSE = struct.Struct("<III")
FSCTL_SRV_COPYCHUNK = 0x001440F2


def _limits(ctl: int, file_id: bytes) -> Reply:
    from .handlers_ioctl import _answer
    return _answer(ctl, file_id, _RESPONSE.pack(MAX_CHUNKS, MAX_CHUNK, MAX_TOTAL), NtStatus.INVALID_PARAMETER)


def copychunk(conn: Connection, target: Open, ctl: int, data: bytes, max_out: int) -> Reply:
    from .handlers_file import _lock_conflict
    from .handlers_ioctl import _answer
    if len(data) < _HEAD.size:
        raise SmbError(NtStatus.INVALID_PARAMETER, "short SRV_COPYCHUNK_COPY")
    if max_out < _RESPONSE.size:
        raise SmbError(NtStatus.INVALID_PARAMETER, "MaxOutputResponse too small")
    key, count, _ = _HEAD.unpack_from(data)
    if len(data) < _HEAD.size + count * _CHUNK.size:
        raise SmbError(NtStatus.INVALID_PARAMETER, "chunk list runs past the input")
    chunks = [_CHUNK.unpack_from(data, _HEAD.size + i * _CHUNK.size) for i in range(count)]
    if count > MAX_CHUNKS or any(c[2] > MAX_CHUNK or c[2] == 0 for c in chunks) \
            or sum(c[2] for c in chunks) > MAX_TOTAL:
        return _limits(ctl, target.file_id)
    source = conn.ctx.opens.get(int.from_bytes(key[8:16], "little"))
    if source is None or source.file_id != key[:16] or source.session is not target.session:
        raise SmbError(NtStatus.OBJECT_NAME_NOT_FOUND, "the resume key names no open of this session")
    if source.handle is None or not source.access & A.READ_DATA:
        raise SmbError(NtStatus.ACCESS_DENIED, "the source open may not read")
    need = A.WRITE_DATA | (A.READ_DATA if ctl == FSCTL_SRV_COPYCHUNK else 0)
    if target.handle is None or target.access & need != need:
        raise SmbError(NtStatus.ACCESS_DENIED, "the target open may not write")
    written = total = 0
    for src_off, dst_off, length, _ in chunks:
        _lock_conflict(conn, source, src_off, length, False)
        _lock_conflict(conn, target, dst_off, length, True)
        buf = source.handle.read(src_off, length)
        if len(buf) < length:
            if written == 0:
                raise SmbError(NtStatus.INVALID_VIEW_SIZE, "a chunk runs past the source's end")
            break
        target.handle.write(dst_off, buf)
        written += 1
        total += length
    return _answer(ctl, target.file_id, _RESPONSE.pack(written, 0, total))
