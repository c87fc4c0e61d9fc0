"""QUERY_INFO and SET_INFO (MS-SMB2 3.3.5.20, 3.3.5.21): file, file-system and security classes.

Access rules (MS-FSA): reading attributes needs READ_ATTRIBUTES, the security descriptor
READ_CONTROL; setting times or attributes WRITE_ATTRIBUTES, the size WRITE_DATA, a delete
disposition or a rename DELETE, the DACL WRITE_DAC and the owner WRITE_OWNER; core.fs checks the
same again as the session's user. A read-only share refuses every SET_INFO (ACCESS_DENIED).

A security descriptor that does not fit OutputBufferLength is BUFFER_TOO_SMALL with the size it
needs in the ERROR data (3.3.5.20.3), so clients retry with the right buffer.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

from core.errors import NotFound
from core.fs import FileType
from core.fs import acl as A

from . import eas, paths, security, streams
from .conn import Connection, Reply, Request, buffer_at, unpack
from .createctx import ContextError, parse_ea_list
from .errors import SmbError
from .fileinfo import FileFacts, FileInfoClass, InfoError, VolumeFacts, dos_attributes, query_file, query_fs
from .handlers_create import lookup_entry, walk
from .handlers_file import broke_writes, find_open
from .setinfo import Allocation, BasicInfo, Disposition, EndOfFile, Position, RenameInfo, decode_set_info
from .state import Open
from .status import NtStatus

_QUERY = struct.Struct("<HBBIHHIII16s")    # 40
_SET = struct.Struct("<HBBIHHI16s")        # 32
INFO_FILE, INFO_FILESYSTEM, INFO_SECURITY, INFO_QUOTA = 1, 2, 3, 4
READ_CONTROL = 0x00020000
WRITE_DAC = 0x00040000
WRITE_OWNER = 0x00080000


# MS-FSA 2.1.5.12: these classes need FILE_READ_ATTRIBUTES; the others (Standard, Internal, Ea, Name,
# Position, Mode, Alignment, Stream...) need no access right at all
_NEED_READ_ATTRIBUTES = frozenset({FileInfoClass.BASIC, FileInfoClass.ALL, FileInfoClass.NETWORK_OPEN,
                                   FileInfoClass.ATTRIBUTE_TAG})


def _need(o: Open, mask: int, what: str) -> None:
    if not o.access & mask:
        raise SmbError(NtStatus.ACCESS_DENIED, f"the open lacks the right to {what}")


def query_info(conn: Connection, req: Request) -> Reply:
    _, kind, cls, out_len, _in_off, _, _in_len, additional, _flags, fid = unpack(_QUERY, req.body, "QUERY_INFO")
    o = find_open(conn, req, fid)
    n = conn.negotiated
    assert n is not None
    if out_len > n.max_transact_size:
        raise SmbError(NtStatus.INVALID_PARAMETER, "OutputBufferLength exceeds MaxTransactSize")
    fs = o.tree.fs
    if o.pipe is not None or fs is None:
        if kind == INFO_FILE and cls == FileInfoClass.STANDARD:
            return _out(struct.pack("<qqIBBH", 4096, 0, 1, 1, 0, 0))
        raise SmbError(NtStatus.NOT_SUPPORTED, "query info on a pipe")
    try:
        if kind == INFO_FILE and cls == FileInfoClass.FULL_EA:
            _need(o, 0x8, "read EAs")
            status, data = eas.query(fs, o.ino, out_len)
        elif kind == INFO_FILE:
            if cls in _NEED_READ_ATTRIBUTES:
                _need(o, A.READ_ATTRIBUTES, "read attributes")
            attr = fs.getattr(o.ino)
            named: tuple[tuple[str, int], ...] = ()
            if o.stream:
                attr = dataclasses.replace(attr, size=len(streams.read(fs, o.ino, o.stream)), type=FileType.REG)
            elif cls == FileInfoClass.STREAM:
                named = tuple(streams.listing(fs, o.ino))
            ea_size = eas.size(fs, o.ino) if cls in (FileInfoClass.EA, FileInfoClass.ALL) else 0
            facts = FileFacts(attr, name=o.path, access=o.access, position=o.position, mode=o.options & 0x3E,
                              delete_pending=o.delete_on_close or conn.ctx.delete_pending(o.ino),
                              dos_attributes=dos_attributes(attr, o.name, stored=attr.dos), streams=named,
                              ea_size=ea_size)
            status, data = query_file(cls, facts, out_len)
        elif kind == INFO_FILESYSTEM:
            share = o.tree.share
            assert share is not None
            vol = VolumeFacts(fs.statfs(), label=share.name[:32], serial=zlib.crc32(share.path.encode()),
                              created_ns=0, read_only=share.read_only, case_sensitive=not share.case_insensitive)
            status, data = query_fs(cls, vol, out_len)
        elif kind == INFO_SECURITY:
            return _query_security(conn, o, additional, out_len)
        elif kind == INFO_QUOTA:
            raise SmbError(NtStatus.NOT_SUPPORTED, "quotas")
        else:
            raise SmbError(NtStatus.INVALID_PARAMETER, f"InfoType {kind}")
    except InfoError as e:
        raise SmbError(e.status, str(e)) from None
    if status not in (NtStatus.SUCCESS, NtStatus.BUFFER_OVERFLOW):
        raise SmbError(status, "info class")
    return _out(data, status)


def _out(data: bytes, status: int = NtStatus.SUCCESS) -> Reply:
    return Reply(struct.pack("<HHI", 9, 72, len(data)) + data, status)


def _query_security(conn: Connection, o: Open, want: int, out_len: int) -> Reply:
    _need(o, READ_CONTROL, "read the security descriptor")
    fs = o.tree.fs
    assert fs is not None
    attr = fs.getattr(o.ino)
    acl, stored = fs.getacl(o.ino)
    sd = security.file_descriptor(acl if stored else None, uid=attr.uid, gid=attr.gid, mode=attr.mode & 0o7777,
                                  is_dir=attr.is_dir, want=want & security.ALL_INFO,
                                  resolver=security.IdentityResolver(conn.ctx.identity))
    if len(sd) > out_len:
        raise SmbError(NtStatus.BUFFER_TOO_SMALL, f"the descriptor needs {len(sd)} bytes",
                       data=struct.pack("<I", len(sd)))
    return _out(sd)


def set_info(conn: Connection, req: Request) -> Reply:
    _, kind, cls, length, off, _, additional, fid = unpack(_SET, req.body, "SET_INFO")
    o = find_open(conn, req, fid)
    buf = buffer_at(req, off, length, "buffer")
    if o.tree.read_only:
        raise SmbError(NtStatus.ACCESS_DENIED, "the share is read-only")
    if o.pipe is not None:
        raise SmbError(NtStatus.NOT_SUPPORTED, "set info on a pipe")
    if kind == INFO_FILE and cls == FileInfoClass.FULL_EA:
        _need(o, 0x10, "write EAs")
        try:
            entries = parse_ea_list(buf)
        except ContextError as e:
            raise SmbError(e.status, str(e)) from None
        assert o.tree.fs is not None
        eas.apply(o.tree.fs, o.ino, entries)
    elif kind == INFO_FILE:
        try:
            info = decode_set_info(cls, buf)
        except InfoError as e:
            raise SmbError(e.status, str(e)) from None
        _set_file(conn, o, info)
    elif kind == INFO_SECURITY:
        _set_security(conn, o, buf, additional)
    elif kind == INFO_FILESYSTEM:
        raise SmbError(NtStatus.ACCESS_DENIED, "file system information is not settable")
    else:
        raise SmbError(NtStatus.NOT_SUPPORTED, f"InfoType {kind}")
    return Reply(struct.pack("<H", 2), file_id=o.file_id)


def _set_file(conn: Connection, o: Open, info: object) -> None:
    fs = o.tree.fs
    assert fs is not None
    if isinstance(info, BasicInfo):
        _need(o, A.WRITE_ATTRIBUTES, "write attributes")
        attrs = info.attributes
        if attrs is not None:
            if attrs & 0x10 and not o.is_dir:
                raise SmbError(NtStatus.INVALID_PARAMETER, "DIRECTORY attribute on a file")
            if attrs & 0x100 and o.is_dir:
                raise SmbError(NtStatus.INVALID_PARAMETER, "TEMPORARY attribute on a directory")
        if o.handle is not None and (info.written_ns is not None or info.accessed_ns is not None):
            o.handle.flush()  # buffered data must not move mtime after the client set it
        fs.setattr(o.ino, atime_ns=info.accessed_ns, mtime_ns=info.written_ns, btime_ns=info.created_ns,
                   dos=None if attrs is None else attrs & ~0x90)
    elif isinstance(info, EndOfFile):
        _need(o, A.WRITE_DATA, "change the size")
        if o.stream:
            streams.truncate(fs, o.ino, o.stream, info.size)
            return
        if o.is_dir:
            raise SmbError(NtStatus.INVALID_PARAMETER, "size of a directory")
        broke_writes(conn, o)
        if o.handle is not None:
            o.handle.truncate(info.size)
        else:
            fs.setattr(o.ino, size=info.size)
    elif isinstance(info, Allocation):
        _need(o, A.WRITE_DATA, "change the allocation")
        broke_writes(conn, o)
        size = o.handle.size() if o.handle is not None else fs.getattr(o.ino).size
        if info.size < size and not o.is_dir:
            if o.handle is not None:
                o.handle.truncate(info.size)
            else:
                fs.setattr(o.ino, size=info.size)
    elif isinstance(info, Disposition):
        _dispose(conn, o, bool(info.flags & 1))
    elif isinstance(info, RenameInfo):
        _rename(conn, o, info)
    elif isinstance(info, Position):
        o.position = info.offset
    else:
        raise SmbError(NtStatus.NOT_SUPPORTED, f"set {type(info).__name__}")


def _dispose(conn: Connection, o: Open, delete: bool) -> None:
    _need(o, A.DELETE, "delete")
    fs = o.tree.fs
    assert fs is not None
    if not o.path:
        raise SmbError(NtStatus.ACCESS_DENIED, "the share root cannot be deleted")
    if o.stream:
        o.delete_on_close = delete
        return
    if delete:
        attr = fs.getattr(o.ino)
        if attr.dos is not None and attr.dos & 0x1:
            raise SmbError(NtStatus.CANNOT_DELETE, "the file is read-only")
        if not o.is_dir and fs.locked(o.ino):
            raise SmbError(NtStatus.CANNOT_DELETE, "the file is under retention or a legal hold")
        if o.is_dir and fs.readdir(o.ino, 0, 1):
            raise SmbError(NtStatus.DIRECTORY_NOT_EMPTY, "the directory is not empty")
        conn.ctx.doomed.add(o.ino)
        _broke_handles(conn, o.ino, o.volatile)
    else:
        conn.ctx.doomed.discard(o.ino)
        o.delete_on_close = False


def _rename(conn: Connection, o: Open, info: RenameInfo) -> None:
    _need(o, A.DELETE, "rename")
    fs = o.tree.fs
    assert fs is not None and o.tree.root is not None
    if not o.path:
        raise SmbError(NtStatus.ACCESS_DENIED, "the share root cannot be renamed")
    try:
        target = paths.split(info.name.lstrip("\\"))
        if not target.parts:
            raise paths.PathError("empty target", NtStatus.OBJECT_NAME_INVALID)
        paths.check_component(target.name, creating=True)
    except paths.PathError as e:
        raise SmbError(e.status, str(e)) from None
    if target.stream:
        raise SmbError(NtStatus.NOT_SUPPORTED, "renaming streams")
    try:
        parent = walk(conn, o.tree, target.parts[:-1])
    except NotFound:
        raise SmbError(NtStatus.OBJECT_PATH_NOT_FOUND, "the target directory is missing") from None
    name = target.name
    try:
        stored, existing = lookup_entry(o.tree, parent.ino, name)
        if existing.ino != o.ino:
            name = stored  # replacing another entry: name it exactly
    except NotFound:
        existing = None
    if info.link:
        if existing is not None and not info.replace:
            raise SmbError(NtStatus.OBJECT_NAME_COLLISION, f"{target.text()} exists")
        if existing is not None:
            fs.unlink(parent.ino, name)
        fs.link(o.ino, parent.ino, name)
        return
    if existing is not None and existing.ino != o.ino:
        if not info.replace:
            raise SmbError(NtStatus.OBJECT_NAME_COLLISION, f"{target.text()} exists")
        if existing.is_dir:
            raise SmbError(NtStatus.ACCESS_DENIED, "cannot replace a directory")
        if conn.ctx.opens_of(existing.ino):
            raise SmbError(NtStatus.ACCESS_DENIED, f"{target.text()} is open")
    if o.is_dir:
        prefix = o.path + "\\"
        if any(x.path.startswith(prefix) and x.tree.share == o.tree.share and x is not o
               for x in conn.ctx.opens.values()):
            raise SmbError(NtStatus.ACCESS_DENIED, "a file below the directory is open")
    _broke_handles(conn, o.ino, o.volatile)
    if existing is not None and existing.ino != o.ino:
        _broke_handles(conn, existing.ino, None)
    fs.rename(o.parent, o.name, parent.ino, name, replace=info.replace)
    o.parent, o.name, o.path = parent.ino, name, target.text()


def _broke_handles(conn: Connection, ino: int, by: int | None) -> None:
    from .handlers_oplock import settle
    with conn.ctx.lease_lock:
        out = conn.ctx.leases.on_rename(ino, by)
    settle(conn.ctx, out)


def _set_security(conn: Connection, o: Open, buf: bytes, want: int) -> None:
    fs = o.tree.fs
    assert fs is not None
    if want & security.OWNER_SECURITY_INFORMATION or want & security.GROUP_SECURITY_INFORMATION:
        _need(o, WRITE_OWNER, "change the owner")
    if want & security.DACL_SECURITY_INFORMATION:
        _need(o, WRITE_DAC, "change the DACL")
    attr = fs.getattr(o.ino)
    try:
        parsed = security.from_descriptor(buf, security.IdentityResolver(conn.ctx.identity), attr.uid, attr.gid,
                                          want & security.ALL_INFO)
    except security.SecurityError as e:
        raise SmbError(e.status, str(e)) from None
    if parsed.uid is not None or parsed.gid is not None:
        fs.setattr(o.ino, uid=parsed.uid, gid=parsed.gid)
    if parsed.acl is not None:
        fs.setacl(o.ino, parsed.acl)


def _register() -> dict[object, object]:
    from .header import Command
    return {Command.QUERY_INFO: query_info, Command.SET_INFO: set_info}


HANDLERS = _register()
