"""CLOSE, FLUSH, READ and WRITE (MS-SMB2 3.3.5.10-3.3.5.13), and what closing an open does.

- FileIds name opens of this connection (another connection's id is FILE_CLOSED);
  a FileId on another tree is INVALID_HANDLE... both as Windows answers.
- READ/WRITE: at most the negotiated MaxRead/MaxWriteSize (INVALID_PARAMETER beyond), the open
  must hold READ_DATA (or EXECUTE) / WRITE_DATA or APPEND_DATA (ACCESS_DENIED); a directory is
  INVALID_DEVICE_REQUEST; a read at or past the end, or shorter than MinimumCount, is
  END_OF_FILE; bytes under another owner's byte-range lock (exclusive for reads, any for writes)
  are FILE_LOCK_CONFLICT, whichever protocol took the lock. Offset 0xFFFFFFFFFFFFFFFF with
  APPEND_DATA appends. WRITE_THROUGH (the flag or the open's option) makes the write durable
  before the answer; otherwise FLUSH and CLOSE do.
- CLOSE releases the share mode and the open's byte-range locks, flushes, and removes the file
  when a delete is pending and this was its last open (MS-FSA 2.1.5.4).
"""

from __future__ import annotations

import logging
import struct

from core.errors import Closed, CoreError, NotFound
from core.fs import acl as A

from . import streams
from .conn import Connection, Reply, Request, unpack
from .errors import SmbError
from .fileinfo import allocation_size, dos_attributes, filetime
from .state import Open
from .status import NtStatus

log = logging.getLogger("tessera.smb")

_CLOSE = struct.Struct("<HHI16s")
_CLOSE_RESP = struct.Struct("<HHIQQQQQQI")
_FLUSH = struct.Struct("<HHI16s")
_READ = struct.Struct("<HBBIQ16sIIIHH")       # 48
_READ_RESP = struct.Struct("<HBBIII")         # 16, data at 80
_WRITE = struct.Struct("<HHIQ16sIIHHI")       # 48
_WRITE_RESP = struct.Struct("<HHIIHH")
CLOSE_POSTQUERY_ATTRIB = 0x1
WRITEFLAG_WRITE_THROUGH = 0x1
APPEND_OFFSET = 0xFFFFFFFFFFFFFFFF
SMALL_WRITE = 64 * 1024
MAX_OFFSET = (1 << 63) - 1


def find_open(conn: Connection, req: Request, file_id: bytes) -> Open:
    """The open ``file_id`` names (related messages inherit the previous FileId)."""
    fid = req.chain.file_id(bytes(file_id))
    o = conn.opens.get(int.from_bytes(fid[8:], "little"))
    if o is None or o.persistent != int.from_bytes(fid[:8], "little"):
        raise SmbError(NtStatus.FILE_CLOSED, "no such open")
    if o.session is not req.session or o.tree.connected is not req.tree:
        raise SmbError(NtStatus.INVALID_HANDLE if o.session is req.session else NtStatus.FILE_CLOSED,
                       "the open belongs to another tree or session")
    return o


def close_open(conn: Connection, o: Open) -> None:
    """Release an open: its handle (flushed), locks, share mode, and a pending delete at the last close."""
    conn.opens.pop(o.volatile, None)
    conn.ctx.opens.pop(o.volatile, None)
    for p in [p for p in conn.pending.values() if p.extra.get("open") == o.volatile]:
        conn.complete(p, Reply(b"", NtStatus.NOTIFY_CLEANUP))
    ctx = conn.ctx
    from .handlers_oplock import settle
    with ctx.lease_lock:
        out = ctx.leases.close(o.volatile)
    settle(ctx, out)
    try:
        if o.handle is not None:
            o.handle.close()
    finally:
        if o.locks:
            try:
                ctx.fs.unlock_all(o.lock_owner)
            except CoreError:
                log.exception("releasing the locks of %s", o.path)
        if o.share_id is not None:
            ctx.fs.close_share(o.share_id)
    if o.written and o.ino in ctx.stamps:
        try:  # our own last flush is not a change from elsewhere (handlers_oplock.watch)
            a = ctx.fs.getattr(o.ino)
            ctx.stamps[o.ino] = (a.ctime_ns, a.size)
        except CoreError:
            pass
    if o.delete_on_close:
        ctx.doomed.add(o.ino)
    if o.stream:
        if o.delete_on_close and o.tree.fs is not None:
            streams.remove(o.tree.fs, o.ino, o.stream)
        return
    if o.ino in ctx.doomed and not ctx.opens_of(o.ino):
        ctx.doomed.discard(o.ino)
        fs = o.tree.fs
        if fs is not None and o.parent and o.name:
            try:
                if o.is_dir:
                    fs.rmdir(o.parent, o.name)
                else:
                    fs.unlink(o.parent, o.name)
            except NotFound:
                pass
            except CoreError as e:  # e.g. a file appeared in the directory since: the close still succeeds
                log.info("delete on close of %s failed: %s", o.path, e)


def close(conn: Connection, req: Request) -> Reply:
    _, flags, _, fid = unpack(_CLOSE, req.body, "CLOSE")
    o = find_open(conn, req, fid)
    close_open(conn, o)
    if flags & CLOSE_POSTQUERY_ATTRIB and o.tree.fs is not None:
        try:
            a = o.tree.fs.getattr(o.ino)  # the open's tree: a Previous Versions open reads a kept version
        except CoreError:
            return Reply(_CLOSE_RESP.pack(60, 0, 0, 0, 0, 0, 0, 0, 0, 0), file_id=o.file_id)
        return Reply(_CLOSE_RESP.pack(60, flags, 0, filetime(a.btime_ns), filetime(a.atime_ns), filetime(a.mtime_ns),
                                      filetime(a.ctime_ns), allocation_size(a), 0 if a.is_dir else a.size,
                                      dos_attributes(a, o.name, stored=a.dos)), file_id=o.file_id)
    return Reply(_CLOSE_RESP.pack(60, 0, 0, 0, 0, 0, 0, 0, 0, 0), file_id=o.file_id)


def flush(conn: Connection, req: Request) -> Reply:
    _, _, _, fid = unpack(_FLUSH, req.body, "FLUSH")
    o = find_open(conn, req, fid)
    if not o.access & (A.WRITE_DATA | A.APPEND_DATA):
        raise SmbError(NtStatus.ACCESS_DENIED, "FLUSH needs write access")
    if o.handle is not None:
        o.handle.flush()  # data and every metadata change before it on stable storage
    elif o.tree.fs is not None:
        o.tree.fs.sync_meta()
    return Reply(struct.pack("<HH", 4, 0), file_id=o.file_id)


def check_locks(conn: Connection, o: Open, off: int, length: int, write: bool) -> None:
    """FILE_LOCK_CONFLICT when another owner's byte-range lock (any protocol's) covers these bytes for this I/O."""
    if length == 0:
        return
    hit = conn.ctx.fs.smb_check_io(o.ino, o.lock_owner, off, length, write)
    if hit is not None:
        raise SmbError(NtStatus.FILE_LOCK_CONFLICT, f"bytes {off}+{length} are locked by {hit.owner}")


def read(conn: Connection, req: Request) -> Reply:
    _, _pad, _flags, length, offset, fid, minimum, _ch, _rem, _ci_off, _ci_len = unpack(_READ, req.body, "READ")
    n = conn.negotiated
    assert n is not None
    o = find_open(conn, req, fid)
    if o.is_dir:
        raise SmbError(NtStatus.INVALID_DEVICE_REQUEST, "READ of a directory")
    if o.pipe is not None:
        from .pipes import pipe_read
        return pipe_read(conn, o, length)
    if length > n.max_read_size:
        raise SmbError(NtStatus.INVALID_PARAMETER, f"READ of {length} bytes exceeds {n.max_read_size}")
    if offset > MAX_OFFSET:
        raise SmbError(NtStatus.INVALID_PARAMETER, "READ offset")
    if o.stream:
        if not o.access & A.READ_DATA:
            raise SmbError(NtStatus.ACCESS_DENIED, "the open has no read access")
        data = streams.read(o.tree.fs, o.ino, o.stream)[offset:offset + length]  # type: ignore[arg-type]
        if (not data and length) or len(data) < minimum:
            raise SmbError(NtStatus.END_OF_FILE, "read at or past the end of the stream")
        return Reply(_READ_RESP.pack(17, 80, 0, len(data), 0, 0) + data, file_id=o.file_id)
    if o.tree.origin is not None and o.access & (A.READ_DATA | A.EXECUTE) and o.tree.fs is not None:
        data = bytes(o.tree.fs.read_buffer(o.ino, offset, length))  # a Previous Version: by inode (snapshots)
        if (not data and length) or len(data) < minimum:
            raise SmbError(NtStatus.END_OF_FILE, "read at or past the end of the file")
        o.position = offset + len(data)
        return Reply(_READ_RESP.pack(17, 80, 0, len(data), 0, 0) + data, file_id=o.file_id)
    if not o.access & (A.READ_DATA | A.EXECUTE) or o.handle is None:
        raise SmbError(NtStatus.ACCESS_DENIED, "the open has no read access")
    check_locks(conn, o, offset, length, False)
    body = bytearray(_READ_RESP.size + length)
    with memoryview(body) as view:
        got = o.handle.readinto(offset, view[_READ_RESP.size:])
    if (got == 0 and length) or got < minimum:
        raise SmbError(NtStatus.END_OF_FILE, "read at or past the end of the file")
    del body[_READ_RESP.size + got:]
    _READ_RESP.pack_into(body, 0, 17, 80, 0, got, 0, 0)
    o.position = offset + got
    return Reply(body, file_id=o.file_id)


def write(conn: Connection, req: Request) -> Reply:
    _, data_off, length, offset, fid, _ch, _rem, _wi_off, _wi_len, flags = unpack(_WRITE, req.body, "WRITE")
    n = conn.negotiated
    assert n is not None
    o = find_open(conn, req, fid)
    start = data_off - 64
    if data_off < 64 + _WRITE.size or start + length > len(req.body):
        raise SmbError(NtStatus.INVALID_PARAMETER, "WRITE data runs outside the message")
    data = req.body[start:start + length]
    if o.pipe is not None:
        from .pipes import pipe_write
        return pipe_write(conn, o, bytes(data))
    if o.is_dir:
        raise SmbError(NtStatus.INVALID_DEVICE_REQUEST, "WRITE to a directory")
    if length > n.max_write_size:
        raise SmbError(NtStatus.INVALID_PARAMETER, f"WRITE of {length} bytes exceeds {n.max_write_size}")
    if o.stream:
        if not o.access & (A.WRITE_DATA | A.APPEND_DATA):
            raise SmbError(NtStatus.ACCESS_DENIED, "the open has no write access")
        streams.write(o.tree.fs, o.ino, o.stream, offset, bytes(data))  # type: ignore[arg-type]
        return Reply(_WRITE_RESP.pack(17, 0, length, 0, 0, 0), file_id=o.file_id)
    if o.handle is None or not o.access & (A.WRITE_DATA | A.APPEND_DATA):
        raise SmbError(NtStatus.ACCESS_DENIED, "the open has no write access")
    if offset == APPEND_OFFSET and o.access & A.APPEND_DATA:
        offset = o.handle.size()
    elif offset > MAX_OFFSET or offset + length > MAX_OFFSET:
        raise SmbError(NtStatus.INVALID_PARAMETER, "WRITE offset")
    elif not o.access & A.WRITE_DATA:
        offset = max(offset, o.handle.size())  # APPEND_DATA only: never below the end
    check_locks(conn, o, offset, length, True)
    if not o.written:
        broke_writes(conn, o)
    o.handle.write(offset, data)
    o.written = True
    o.position = offset + length
    answer = _WRITE_RESP.pack(17, 0, length, 0, 0, 0)
    # acknowledged = survives a killed server: the data lands in segments (fsynced) and the metadata is
    # committed (not fsynced: FLUSH and WRITE_THROUGH do that, as on Windows and Samba) before the answer
    if flags & WRITEFLAG_WRITE_THROUGH or o.options & 0x2:
        o.handle.flush(durable=True)
        return Reply(answer, file_id=o.file_id)
    if length <= SMALL_WRITE:  # one metadata commit, cheaper than handing it to another thread
        o.handle.flush(durable=False)
        return Reply(answer, file_id=o.file_id)
    handle = o.handle

    def land() -> None:  # off the connection's lock: the next WRITEs are buffered meanwhile
        try:
            handle.flush(durable=False)
        except Closed:
            pass  # a CLOSE came first: it committed what was buffered, this write included
    return Reply(answer, file_id=o.file_id, defer=land)


def broke_writes(conn: Connection, o: Open) -> None:
    """A change of the data through ``o``: every other holder of the file loses its caching."""
    from .handlers_oplock import settle
    with conn.ctx.lease_lock:
        out = conn.ctx.leases.on_write(o.ino, o.volatile)
    settle(conn.ctx, out)


def _register() -> dict[object, object]:
    from .header import Command
    return {Command.CLOSE: close, Command.FLUSH: flush, Command.READ: read, Command.WRITE: write}


HANDLERS = _register()
