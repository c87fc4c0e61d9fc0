"""NFSv3 namespace procedures: LOOKUP, CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR, RENAME, LINK.

- LOOKUP ``.`` is the directory itself and ``..`` its parent, except at the export's root,
  whose ``..`` is the root itself: nothing outside an export is reachable by name (the
  ``..`` of a directory moved out of its export is NFS3ERR_STALE, see
  :func:`~protocols.nfs.nfs3_call.parent_in_export`).
- CREATE UNCHECKED makes the file or, if a regular file of that name exists, applies only
  the size (an ``O_TRUNC`` open), as knfsd does; GUARDED fails NFS3ERR_EXIST on any
  existing name.  EXCLUSIVE hands the client's 8-byte verifier to core.fs, which keeps it
  with the new file in the create's own transaction (a reserved attribute no client sees): a
  retry with the same verifier finds the file and succeeds, any other verifier gets NFS3ERR_EXIST.  The file is
  made ``0600``; the client then sends a SETATTR with the attributes it wants.
- New objects take the ``sattr3`` mode (defaults 0644 for files, 0755 for directories) and
  uid/gid (core.fs refuses ids the caller may not give); times given in ``sattr3`` are set
  right after, by the creator, who owns the object.
- MKNOD answers NFS3ERR_NOTSUPP for character and block devices, makes FIFOs and sockets,
  and answers NFS3ERR_BADTYPE for other types, as RFC 1813 says.
- RENAME and LINK across exports are NFS3ERR_XDEV (each export is its own file system).
"""

from __future__ import annotations

from core.errors import Exists, NotADirectory, PermissionDenied
from core.fs import Attr, FileSystem, FileType, Wcc, acl

from .errors import NFS3ERR_BADTYPE, NFS3ERR_NOTSUPP, NfsError
from .nfs3_args import CreateArgs, DirOpArgs, LinkArgs, MkdirArgs, MknodArgs, RenameArgs, SymlinkArgs
from .nfs3_call import Call, ProcTable, attr_or_none, name_of, new_name, parent_in_export, same_export, wcc_of
from .nfs3_res import CreateRes, LinkRes, LookupRes, RenameRes, WccRes
from .nfs3_types import FILETYPE, CreateMode, Ftype3, Proc, Sattr3

FILE_MODE, DIR_MODE, EXCL_MODE = 0o644, 0o755, 0o600


def lookup(c: Call, a: DirOpArgs, res: LookupRes) -> None:
    fs, export, dino = c.resolve(a.what.dir, res)
    try:
        raw = a.what.name
        if raw == b".":
            obj = fs.getattr(dino)
            if not obj.is_dir:
                raise NotADirectory("'.' of a non-directory")
            if not fs.access(dino, acl.EXECUTE):
                raise PermissionDenied("permission denied: search the directory")
        elif raw == b"..":
            obj = parent_in_export(c, fs, export, dino)
        else:
            obj = fs.lookup(dino, name_of(raw))
        res.fh, res.obj = c.handle(export, obj), obj
    finally:
        res.dir = attr_or_none(fs, dino)


def _times(fs: FileSystem, attr: Attr, s: Sattr3) -> Attr:
    """Apply the times a creating call asked for (the creator owns the new object)."""
    if s.atime is None and s.mtime is None:
        return attr
    return fs.setattr(attr.ino, atime_ns=s.atime, mtime_ns=s.mtime)


def create(c: Call, a: CreateArgs, res: CreateRes) -> None:
    fs, export, dino = c.resolve(a.where.dir, res, write=True)
    w = Wcc()
    try:
        name = new_name(a.where.name)
        if a.mode == CreateMode.EXCLUSIVE:
            obj = _create_exclusive(c, fs, dino, name, a.verf or b"", w)
        else:
            obj = _create_checked(fs, dino, name, a.attrs or Sattr3(), a.mode == CreateMode.GUARDED, w)
        res.fh, res.obj = c.handle(export, obj), obj
    finally:
        res.dir_wcc = wcc_of(fs, w, dino)


def _create_checked(fs: FileSystem, dino: int, name: str, s: Sattr3, guarded: bool, w: Wcc) -> Attr:
    mode = FILE_MODE if s.mode is None else s.mode
    try:
        obj = fs.create(dino, name, mode, s.uid, s.gid, exclusive=True, wcc=w)
    except Exists:
        if guarded:
            raise
        obj = fs.lookup(dino, name)
        if not obj.is_file:
            raise
        return obj if s.size is None else fs.setattr(obj.ino, size=s.size)
    if s.size:
        obj = fs.setattr(obj.ino, size=s.size)
    return _times(fs, obj, s)


def _create_exclusive(c: Call, fs: FileSystem, dino: int, name: str, verf: bytes, w: Wcc) -> Attr:
    """EXCLUSIVE: core keeps the verifier with the file in the create's own transaction, and a retry with the
    same verifier answers the file it made (a different verifier: EXIST)."""
    return fs.create(dino, name, EXCL_MODE, exclusive=True, wcc=w, verifier=verf)


def mkdir(c: Call, a: MkdirArgs, res: CreateRes) -> None:
    fs, export, dino = c.resolve(a.where.dir, res, write=True)
    w = Wcc()
    try:
        s = a.attrs
        obj = fs.mkdir(dino, new_name(a.where.name), DIR_MODE if s.mode is None else s.mode, s.uid, s.gid, wcc=w)
        obj = _times(fs, obj, s)
        res.fh, res.obj = c.handle(export, obj), obj
    finally:
        res.dir_wcc = wcc_of(fs, w, dino)


def symlink(c: Call, a: SymlinkArgs, res: CreateRes) -> None:
    fs, export, dino = c.resolve(a.where.dir, res, write=True)
    w = Wcc()
    try:
        s = a.attrs
        obj = fs.symlink(dino, new_name(a.where.name), name_of(a.target), s.uid, s.gid, wcc=w)
        obj = _times(fs, obj, s)
        res.fh, res.obj = c.handle(export, obj), obj
    finally:
        res.dir_wcc = wcc_of(fs, w, dino)


def mknod(c: Call, a: MknodArgs, res: CreateRes) -> None:
    fs, export, dino = c.resolve(a.where.dir, res, write=True)
    w = Wcc()
    try:
        if a.type in (Ftype3.CHR, Ftype3.BLK):
            raise NfsError(NFS3ERR_NOTSUPP, "device files are not supported")
        if a.type not in (Ftype3.FIFO, Ftype3.SOCK):
            raise NfsError(NFS3ERR_BADTYPE, f"MKNOD cannot make a {a.type.name}")
        s = a.attrs or Sattr3()
        kind: FileType = FILETYPE[a.type]
        obj = fs.mknod(dino, new_name(a.where.name), kind, FILE_MODE if s.mode is None else s.mode, s.uid, s.gid,
                       wcc=w)
        obj = _times(fs, obj, s)
        res.fh, res.obj = c.handle(export, obj), obj
    finally:
        res.dir_wcc = wcc_of(fs, w, dino)


def remove(c: Call, a: DirOpArgs, res: WccRes) -> None:
    fs, _, dino = c.resolve(a.what.dir, res, write=True)
    w = Wcc()
    try:
        fs.unlink(dino, name_of(a.what.name), wcc=w)
    finally:
        res.wcc = wcc_of(fs, w, dino)


def rmdir(c: Call, a: DirOpArgs, res: WccRes) -> None:
    fs, _, dino = c.resolve(a.what.dir, res, write=True)
    w = Wcc()
    try:
        fs.rmdir(dino, name_of(a.what.name), wcc=w)
    finally:
        res.wcc = wcc_of(fs, w, dino)


def rename(c: Call, a: RenameArgs, res: RenameRes) -> None:
    fs, src_export, src = c.resolve(a.src.dir, res, write=True)
    w = Wcc()
    dst = src
    try:
        _, dst_export, dst = c.resolve(a.dst.dir, res, write=True)
        same_export(src_export, dst_export)
        fs.rename(src, name_of(a.src.name), dst, name_of(a.dst.name), wcc=w)
    finally:
        res.src_wcc = wcc_of(fs, w, src)
        res.dst_wcc = wcc_of(fs, w, dst) if dst != src else res.src_wcc


def link(c: Call, a: LinkArgs, res: LinkRes) -> None:
    fs, export, ino = c.resolve(a.file, res)
    w = Wcc()
    dino = None
    try:
        _, dir_export, dino = c.resolve(a.link.dir, res, write=True)
        same_export(export, dir_export)
        fs.link(ino, dino, new_name(a.link.name), wcc=w)
    finally:
        res.obj = w.after.get(ino) or attr_or_none(fs, ino)
        if dino is not None:
            res.dir_wcc = wcc_of(fs, w, dino)


NS_PROCEDURES: ProcTable = {
    Proc.LOOKUP: (DirOpArgs, LookupRes, lookup),
    Proc.CREATE: (CreateArgs, CreateRes, create),
    Proc.MKDIR: (MkdirArgs, CreateRes, mkdir),
    Proc.SYMLINK: (SymlinkArgs, CreateRes, symlink),
    Proc.MKNOD: (MknodArgs, CreateRes, mknod),
    Proc.REMOVE: (DirOpArgs, WccRes, remove),
    Proc.RMDIR: (DirOpArgs, WccRes, rmdir),
    Proc.RENAME: (RenameArgs, RenameRes, rename),
    Proc.LINK: (LinkArgs, LinkRes, link),
}
