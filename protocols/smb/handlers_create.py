"""CREATE (MS-SMB2 3.3.5.9, MS-FSA 2.1.5.1): open or make a file or directory inside a share.

Order of checks (each failure answers the NTSTATUS Windows gives):

1. request fields: ImpersonationLevel <= 3 (BAD_IMPERSONATION_LEVEL), CreateDisposition <= 5 and no
   reserved CreateOptions bits (INVALID_PARAMETER), FILE_OPEN_BY_FILE_ID (NOT_SUPPORTED),
   ACCESS_SYSTEM_SECURITY (PRIVILEGE_NOT_HELD), DIRECTORY_FILE with NON_DIRECTORY_FILE
   (INVALID_PARAMETER);
2. the path (``paths.split``: leading ``\\``, ``..``, invalid characters, device names) and the
   walk to its parent inside the share (OBJECT_PATH_NOT_FOUND);
3. the disposition against what exists: CREATE on an existing name is OBJECT_NAME_COLLISION,
   OPEN/OVERWRITE of a missing one OBJECT_NAME_NOT_FOUND; DIRECTORY_FILE on a file
   NOT_A_DIRECTORY, NON_DIRECTORY_FILE on a directory FILE_IS_A_DIRECTORY; a read-only share
   refuses any create, overwrite or write access (ACCESS_DENIED);
4. access: GENERIC_* bits mapped (MS-SMB2 2.2.13.1.1), MAXIMUM_ALLOWED = what core.fs grants,
   otherwise every asked bit must be granted by core.fs (mode bits / ACL), DELETE also through
   the parent's DELETE_CHILD; DELETE_ON_CLOSE needs DELETE;
5. the share mode through core.fs (SHARING_VIOLATION across every process and protocol).

Create contexts answered: MxAc (maximal access), QFid (the inode as the on-disk file id); durable
handle requests (DHnQ, DH2Q) get no response context because handles are not kept across a
disconnect (the truthful answer: the client then treats the open as non-durable). Leases (RqLs)
and oplocks: see ``leases``. A TWrp context or an ``@GMT-`` token in the path opens a Previous
Version, read-only (``snapshots``).

Retention: a file under retention or a legal hold (core.fs ``locked``) refuses DELETE_ON_CLOSE with
CANNOT_DELETE, as Windows refuses it on a read-only file; an overwrite of it fails in core.fs
(``Locked``: ACCESS_DENIED).
"""

from __future__ import annotations

import dataclasses
import struct

from core.errors import CoreError, NotFound, ShareViolation
from core.fs import DELETE, READ, WRITE, Attr, FileSystem, FileType
from core.fs import acl as A

from . import eas, paths, snapshots, streams
from .conn import Connection, Reply, Request, buffer_at, unpack
from .createctx import ContextError, encode_contexts, parse_contexts, parse_ea_list, parse_twrp
from .crypto import Dialect
from .errors import SmbError
from .fileinfo import allocation_size, dos_attributes, filetime
from .leases import Grant, LeaseRequest, OplockLevel
from .oplockwire import BreakWireError, encode_lease_context, parse_lease_context
from .state import Open, Tree
from .status import NtStatus

_CREATE = struct.Struct("<HBBIQQIIIIIHHII")   # 56 bytes
_RESPONSE = struct.Struct("<HBBIQQQQQQII16sII")  # 88 bytes

SUPERSEDE, OPEN, CREATE, OPEN_IF, OVERWRITE, OVERWRITE_IF = range(6)
SUPERSEDED, OPENED, CREATED, OVERWRITTEN = range(4)

DIRECTORY_FILE = 0x1
WRITE_THROUGH = 0x2
NON_DIRECTORY_FILE = 0x40
DELETE_ON_CLOSE = 0x1000
OPEN_BY_FILE_ID = 0x2000
OPTIONS_RESERVED = 0xFF000000

GENERIC_READ, GENERIC_WRITE, GENERIC_EXECUTE, GENERIC_ALL = 0x80000000, 0x40000000, 0x20000000, 0x10000000
MAXIMUM_ALLOWED = 0x02000000
ACCESS_SYSTEM_SECURITY = 0x01000000
_GENERIC = ((GENERIC_READ, 0x00120089), (GENERIC_WRITE, 0x00120116), (GENERIC_EXECUTE, 0x001200A0),
            (GENERIC_ALL, 0x001F01FF))
WRITE_BITS = A.WRITE_DATA | A.APPEND_DATA | A.WRITE_NAMED_ATTRS | A.WRITE_ATTRIBUTES | A.DELETE_CHILD \
    | A.DELETE | A.WRITE_ACL | A.WRITE_OWNER
FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_SHARE_DELETE = 1, 2, 4
FILE_MODE, DIR_MODE = 0o644, 0o755


def map_generic(mask: int) -> int:
    """DesiredAccess with GENERIC_* replaced by the file rights they stand for.

    >>> hex(map_generic(GENERIC_READ | 0x10000))
    '0x130089'
    """
    out = mask & ~(GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL)
    for bit, rights in _GENERIC:
        if mask & bit:
            out |= rights
    return out


def lookup(conn: Connection, tree: Tree, parent: int, name: str) -> Attr:
    """``name`` in ``parent`` as the share compares names (case-insensitively when it says so)."""
    return lookup_entry(tree, parent, name)[1]


def lookup_entry(tree: Tree, parent: int, name: str) -> tuple[str, Attr]:
    """(the stored name, its attributes) of ``name`` in ``parent``, as the share compares names."""
    fs = tree.fs
    assert fs is not None and tree.share is not None
    return fs.lookup_entry(parent, name, fold=tree.share.case_insensitive)


def walk(conn: Connection, tree: Tree, parts: tuple[str, ...]) -> Attr:
    fs = tree.fs
    assert fs is not None and tree.root is not None and tree.share is not None
    return paths.walk(tree.share.path, tree.root, parts, lambda p, n: lookup(conn, tree, p, n), fs.readlink)


def _share_bits(access: int) -> int:
    bits = 0
    if access & (A.READ_DATA | A.EXECUTE):
        bits |= READ
    if access & (A.WRITE_DATA | A.APPEND_DATA):
        bits |= WRITE
    if access & A.DELETE:
        bits |= DELETE
    return bits


def _sharing(share_access: int) -> int:
    bits = 0
    if share_access & FILE_SHARE_READ:
        bits |= READ
    if share_access & FILE_SHARE_WRITE:
        bits |= WRITE
    if share_access & FILE_SHARE_DELETE:
        bits |= DELETE
    return bits


def grant(fs: FileSystem, attr: Attr, parent: int, desired: int, read_only: bool) -> int:
    """The access mask to grant for ``desired`` (ACCESS_DENIED if any asked right is missing)."""
    maximal = fs.access(attr.ino, A.FULL_MASK)
    wants_delete = desired & (A.DELETE | MAXIMUM_ALLOWED)
    if wants_delete and not maximal & A.DELETE and fs.access(parent, A.DELETE_CHILD):
        maximal |= A.DELETE
    if not attr.is_dir and maximal & A.READ_DATA:
        maximal |= A.EXECUTE  # who may read a file may execute-open it (Samba's "acl allow execute always")
    if not attr.is_dir and maximal & A.WRITE_DATA:
        # GENERIC_WRITE carries FILE_WRITE_ATTRIBUTES: a writer may open with it, as on Samba; core.fs still
        # decides each SET_INFO (explicit times and DOS attributes: the owner or an ACL grant)
        maximal |= A.WRITE_ATTRIBUTES
    if read_only:
        maximal &= ~WRITE_BITS
    if desired & MAXIMUM_ALLOWED:
        return maximal | (desired & ~MAXIMUM_ALLOWED & maximal)
    want = desired & A.FULL_MASK
    missing = want & ~maximal
    if missing:
        raise SmbError(NtStatus.ACCESS_DENIED, f"access {missing:#x} not granted")
    return want


def create(conn: Connection, req: Request) -> Reply:
    tree = req.tree
    assert tree is not None and req.session is not None
    (_, _sec, oplock, impersonation, _flags, _res, desired, attributes, share_access, disposition, options,
     name_off, name_len, ctx_off, ctx_len) = unpack(_CREATE, req.body, "CREATE")
    if impersonation > 3:
        raise SmbError(NtStatus.BAD_IMPERSONATION_LEVEL, f"impersonation level {impersonation}")
    if disposition > OVERWRITE_IF or options & OPTIONS_RESERVED or name_len % 2:
        raise SmbError(NtStatus.INVALID_PARAMETER, "CREATE disposition, options or name length")
    if options & DIRECTORY_FILE and options & NON_DIRECTORY_FILE:
        raise SmbError(NtStatus.INVALID_PARAMETER, "both DIRECTORY_FILE and NON_DIRECTORY_FILE")
    if options & OPEN_BY_FILE_ID:
        raise SmbError(NtStatus.NOT_SUPPORTED, "open by file id")
    if desired & ACCESS_SYSTEM_SECURITY:
        raise SmbError(NtStatus.PRIVILEGE_NOT_HELD, "SACL access")
    try:
        name = buffer_at(req, name_off, name_len, "name").decode("utf-16-le")
    except UnicodeDecodeError:
        raise SmbError(NtStatus.OBJECT_NAME_INVALID, "name is not UTF-16") from None
    contexts = _contexts(req, ctx_off, ctx_len)
    desired = map_generic(desired)
    if tree.ipc:
        from .pipes import open_pipe
        return open_pipe(conn, req, name, desired)
    name, at = snapshots.split_token(name)
    if b"TWrp" in contexts:
        try:
            at = snapshots.from_filetime(parse_twrp(contexts[b"TWrp"]))
        except ContextError as e:
            raise SmbError(e.status, str(e)) from None
    if at is not None:  # Previous Versions: the path as it was then, read-only
        return snapshots.open_version(conn, req, tree, name, at, desired, disposition, options, contexts)
    try:
        path = paths.split(name)
    except paths.PathError as e:
        raise SmbError(e.status, str(e)) from None
    if path.stream:
        return _open_stream(conn, req, tree, path, desired, attributes, share_access, disposition, options, contexts)
    lease = _lease_request(conn, oplock, contexts)
    args = (path, desired, attributes, share_access, disposition, options, contexts, oplock, lease)
    reply = _attempt(conn, req, tree, *args)
    if reply is not None:
        return reply

    def retry() -> Reply | None:
        if req.session is None or req.session.id not in conn.sessions or tree.id not in req.session.trees:
            return Reply(b"", NtStatus.NETWORK_NAME_DELETED)
        return _attempt(conn, req, tree, *args)
    return Reply(b"", pending=conn.new_pending(req, retry=retry))


def _open_stream(conn: Connection, req: Request, tree: Tree, path: paths.SmbPath, desired: int, attributes: int,
                 share_access: int, disposition: int, options: int, contexts: dict[bytes, bytes]) -> Reply:
    """CREATE of ``file:stream``: the base file (made when a creating disposition needs it), then the
    stream (an xattr, see ``streams``) by the disposition's rules. No oplock or lease is granted."""
    fs = tree.fs
    assert fs is not None
    base_disp = OPEN if disposition in (OPEN, OVERWRITE) else OPEN_IF
    base = paths.SmbPath(path.parts)
    o, _action, _ = _open(conn, req, tree, base, desired, attributes, share_access, base_disp,
                          options & ~(DIRECTORY_FILE | NON_DIRECTORY_FILE | DELETE_ON_CLOSE))
    try:
        if o.handle is not None:
            o.handle.close()
            o.handle = None
        here = streams.exists(fs, o.ino, path.stream)
        if here and disposition == CREATE:
            raise SmbError(NtStatus.OBJECT_NAME_COLLISION, f"stream {path.stream!r} exists")
        if not here and disposition in (OPEN, OVERWRITE):
            raise SmbError(NtStatus.OBJECT_NAME_NOT_FOUND, f"no stream {path.stream!r}")
        if (here and disposition in (SUPERSEDE, OVERWRITE, OVERWRITE_IF)) or not here:
            if tree.read_only or not o.access & (A.WRITE_DATA | A.APPEND_DATA):
                raise SmbError(NtStatus.ACCESS_DENIED, "writing a stream needs write access")
            streams.put(fs, o.ino, path.stream, b"")
        action = OPENED if here and disposition in (OPEN, OPEN_IF) else (CREATED if not here else OVERWRITTEN)
    except BaseException:
        from .handlers_file import close_open
        close_open(conn, o)
        raise
    o.stream = path.stream
    o.path = f"{o.path}:{path.stream}"
    o.delete_on_close = bool(options & DELETE_ON_CLOSE)
    return _response(conn, req, tree, o, action, contexts, Grant(NtStatus.SUCCESS), None)


def _lease_request(conn: Connection, oplock: int, contexts: dict[bytes, bytes]) -> LeaseRequest | None:
    n = conn.negotiated
    assert n is not None
    if oplock != OplockLevel.LEASE or b"RqLs" not in contexts or n.dialect < Dialect.SMB21:
        return None
    try:
        return parse_lease_context(contexts[b"RqLs"], n.client_guid)
    except BreakWireError as e:
        raise SmbError(e.status, str(e)) from None


class _Violation(Exception):
    def __init__(self, ino: int) -> None:
        super().__init__("sharing violation")
        self.ino = ino


def _attempt(conn: Connection, req: Request, tree: Tree, path: paths.SmbPath, desired: int, attributes: int,
             share_access: int, disposition: int, options: int, contexts: dict[bytes, bytes], oplock: int,
             lease: LeaseRequest | None) -> Reply | None:
    """One try at the CREATE: the answer, or None to wait for oplock/lease breaks to settle."""
    from .handlers_oplock import deliver
    ctx = conn.ctx
    n = conn.negotiated
    assert n is not None
    level = oplock if n.dialect >= Dialect.SMB21 or oplock != OplockLevel.LEASE else OplockLevel.NONE
    try:
        o, action, overwrite = _open(conn, req, tree, path, desired, attributes, share_access, disposition, options)
    except _Violation as v:
        with ctx.lease_lock:
            g = ctx.leases.grant(v.ino, ctx.next_id(), level, lease, access=desired & A.FULL_MASK,
                                 disposition=disposition, sharing_violation=True)
        deliver(ctx, g.breaks)
        if g.status == NtStatus.PENDING:
            return None
        raise SmbError(NtStatus.SHARING_VIOLATION, f"{path.text()} is open elsewhere") from None
    if level in (OplockLevel.BATCH, OplockLevel.EXCLUSIVE, OplockLevel.LEASE) and ctx.foreign_locks(o.ino):
        # a client caching writes keeps its byte-range locks to itself: with locks from elsewhere on the
        # file (NFS, core.fs, another server) it must send them, so no write caching (Samba does the same)
        if lease is not None:
            lease = dataclasses.replace(lease, state=lease.state & ~4)
        elif level != OplockLevel.LEASE:
            level = OplockLevel.II
    with ctx.lease_lock:
        g = ctx.leases.grant(o.ino, o.volatile, level, lease, access=o.access, disposition=disposition,
                             directory=o.is_dir)
    deliver(ctx, g.breaks)
    if g.status == NtStatus.PENDING:
        _undo(conn, o)
        return None
    if g.status != NtStatus.SUCCESS:
        _undo(conn, o)
        raise SmbError(g.status, "lease key in use on another file")
    try:
        if overwrite:
            tree.fs.setattr(o.ino, size=0)  # type: ignore[union-attr]
    except CoreError:
        from .handlers_file import close_open
        close_open(conn, o)
        raise
    if b"ExtA" in contexts and action == CREATED and tree.fs is not None:
        try:
            eas.apply(tree.fs, o.ino, parse_ea_list(contexts[b"ExtA"]))
        except (ContextError, SmbError, CoreError):
            from .handlers_file import close_open
            close_open(conn, o)
            raise
    return _response(conn, req, tree, o, action, contexts, g, lease)


def _undo(conn: Connection, o: Open) -> None:
    """Take back an open that must wait (nothing was changed yet: no truncation happened)."""
    conn.opens.pop(o.volatile, None)
    conn.ctx.opens.pop(o.volatile, None)
    if o.handle is not None:
        o.handle.close()
    if o.share_id is not None:
        conn.ctx.fs.close_share(o.share_id)


def _contexts(req: Request, off: int, length: int) -> dict[bytes, bytes]:
    if not length:
        return {}
    raw = buffer_at(req, off, length, "create contexts")
    try:
        return dict(parse_contexts(raw))
    except ContextError as e:
        raise SmbError(e.status, str(e)) from None


def _open(conn: Connection, req: Request, tree: Tree, path: paths.SmbPath, desired: int, attributes: int,
          share_access: int, disposition: int, options: int) -> tuple[Open, int, bool]:
    fs = tree.fs
    assert fs is not None and tree.root is not None and req.session is not None
    if not path.parts:
        parent_ino, existing, name = tree.root.ino, tree.root, ""
    else:
        try:
            parent = walk(conn, tree, path.parts[:-1])
        except NotFound:
            raise SmbError(NtStatus.OBJECT_PATH_NOT_FOUND, f"{path.text()}: a directory on the way is missing"
                           ) from None
        if not parent.is_dir:
            raise SmbError(NtStatus.OBJECT_PATH_NOT_FOUND, f"{path.text()}: not a directory on the way")
        parent_ino, name = parent.ino, path.name
        try:
            name, existing = lookup_entry(tree, parent_ino, name)
            if existing.type == FileType.LNK:
                existing = walk(conn, tree, path.parts)
        except NotFound:
            existing = None
    if existing is not None:
        if not path.parts and disposition not in (OPEN, OPEN_IF):
            raise SmbError(NtStatus.ACCESS_DENIED, "the share root cannot be replaced")
        if disposition == CREATE:
            raise SmbError(NtStatus.OBJECT_NAME_COLLISION, f"{path.text()} exists")
        if existing.is_dir and options & NON_DIRECTORY_FILE:
            raise SmbError(NtStatus.FILE_IS_A_DIRECTORY, f"{path.text()} is a directory")
        if not existing.is_dir and options & DIRECTORY_FILE:
            raise SmbError(NtStatus.NOT_A_DIRECTORY, f"{path.text()} is not a directory")
        overwrite = disposition in (SUPERSEDE, OVERWRITE, OVERWRITE_IF)
        if overwrite and existing.is_dir:
            raise SmbError(NtStatus.INVALID_PARAMETER, "overwrite of a directory")
        if overwrite:
            desired |= A.WRITE_DATA
        if conn.ctx.delete_pending(existing.ino):
            raise SmbError(NtStatus.DELETE_PENDING, f"{path.text()} is being deleted")
        access = grant(fs, existing, parent_ino, desired, tree.read_only)
        action = OPENED
        attr = existing
        if overwrite:
            action = SUPERSEDED if disposition == SUPERSEDE else OVERWRITTEN
    else:
        if disposition in (OPEN, OVERWRITE):
            raise SmbError(NtStatus.OBJECT_NAME_NOT_FOUND, f"{path.text()} does not exist")
        if tree.read_only:
            raise SmbError(NtStatus.ACCESS_DENIED, f"share {tree.share and tree.share.name} is read-only")
        try:
            paths.check_component(name, creating=True)
        except paths.PathError as e:
            raise SmbError(e.status, str(e)) from None
        fold = tree.share is not None and tree.share.case_insensitive
        if options & DIRECTORY_FILE:
            attr = fs.mkdir(parent_ino, name, DIR_MODE, fold=fold)
        else:
            attr = fs.create(parent_ino, name, FILE_MODE, fold=fold)
        keep = attributes & 0x2027  # READONLY HIDDEN SYSTEM ARCHIVE NOT_CONTENT_INDEXED
        if keep & ~0x20:
            attr = fs.setattr(attr.ino, dos=keep)
        access = desired & A.FULL_MASK if not desired & MAXIMUM_ALLOWED else A.FULL_MASK
        access |= A.READ_ATTRIBUTES | A.SYNCHRONIZE
        action = CREATED
        overwrite = False
    if options & DELETE_ON_CLOSE:
        if not access & A.DELETE:
            raise SmbError(NtStatus.ACCESS_DENIED, "DELETE_ON_CLOSE without DELETE access")
        if attr.dos is not None and attr.dos & 0x1:
            raise SmbError(NtStatus.CANNOT_DELETE, f"{path.text()} is read-only")
        if not attr.is_dir and fs.locked(attr.ino):
            raise SmbError(NtStatus.CANNOT_DELETE, f"{path.text()} is under retention or a legal hold")
        if attr.is_dir and tree.fs is not None and tree.fs.readdir(attr.ino, 0, 1):
            raise SmbError(NtStatus.DIRECTORY_NOT_EMPTY, f"{path.text()} is not empty")
    try:
        o = _make_open(conn, req, tree, path, attr, parent_ino, name, access, share_access, options)
    except ShareViolation:
        raise _Violation(attr.ino) from None
    return o, action, overwrite


def _make_open(conn: Connection, req: Request, tree: Tree, path: paths.SmbPath, attr: Attr, parent: int, name: str,
               access: int, share_access: int, options: int) -> Open:
    fs = tree.fs
    assert fs is not None and req.session is not None
    vid = conn.ctx.next_id()
    o = Open(vid, vid, req.session, tree, path.text(), attr.ino, attr.gen, attr.is_dir, access, parent=parent,
             name=name, options=options, lock_owner=f"{conn.ctx.lock_prefix}{vid}", conn=conn,
             encrypted=req.encrypted)
    bits = _share_bits(access)
    try:
        if bits:
            o.share_id = conn.ctx.fs.open_share(attr.ino, o.lock_owner, bits, _sharing(share_access))
        if not attr.is_dir and access & (A.READ_DATA | A.WRITE_DATA | A.APPEND_DATA | A.EXECUTE):
            writable = bool(access & (A.WRITE_DATA | A.APPEND_DATA))
            o.handle = fs.open(attr.ino, write=writable)
    except CoreError:
        if o.share_id is not None:
            conn.ctx.fs.close_share(o.share_id)
        if o.handle is not None:
            o.handle.close()
        raise
    if options & DELETE_ON_CLOSE:
        o.delete_on_close = True
    conn.opens[vid] = o
    conn.ctx.opens[vid] = o
    return o


def _response(conn: Connection, req: Request, tree: Tree, o: Open, action: int, contexts: dict[bytes, bytes],
              g: Grant, lease: LeaseRequest | None) -> Reply:
    fs = tree.fs
    assert fs is not None
    attr = fs.getattr(o.ino)
    if o.stream:
        attr = dataclasses.replace(attr, size=len(streams.read(fs, o.ino, o.stream)), type=FileType.REG)
    out_ctx: list[tuple[bytes, bytes]] = []
    if b"MxAc" in contexts:
        maximal = o.access
        try:
            maximal = grant(fs, attr, o.parent or attr.ino, MAXIMUM_ALLOWED, tree.read_only)
        except (SmbError, CoreError):
            pass
        out_ctx.append((b"MxAc", struct.pack("<II", 0, maximal)))
    if b"QFid" in contexts:
        out_ctx.append((b"QFid", attr.ino.to_bytes(8, "little") + bytes(8) + _volume_id(tree)))
    if g.level == OplockLevel.LEASE and lease is not None:
        out_ctx.append((b"RqLs", encode_lease_context(lease.key, g.lease_state, g.lease_flags, version=lease.version,
                                                      epoch=g.epoch, parent=lease.parent)))
    ctx_bytes = _encode_contexts(out_ctx)
    ctx_off = 64 + _RESPONSE.size if ctx_bytes else 0
    dos = dos_attributes(attr, o.name, stored=attr.dos)
    body = _RESPONSE.pack(89, int(g.level), 0, action, filetime(attr.btime_ns), filetime(attr.atime_ns),
                          filetime(attr.mtime_ns), filetime(attr.ctime_ns), allocation_size(attr), attr.size if not
                          attr.is_dir else 0, dos, 0, o.file_id, ctx_off, len(ctx_bytes)) + ctx_bytes
    return Reply(body, file_id=o.file_id)


def _volume_id(tree: Tree) -> bytes:
    import zlib
    name = tree.share.path if tree.share is not None else ""
    return zlib.crc32(name.encode()).to_bytes(4, "little") + bytes(12)


def _encode_contexts(items: list[tuple[bytes, bytes]]) -> bytes:
    return bytes(encode_contexts(items)) if items else b""


def _register() -> dict[object, object]:
    from .header import Command
    return {Command.CREATE: create}


HANDLERS = _register()
