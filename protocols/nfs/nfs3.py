"""The NFSv3 program (RFC 1813) over core.fs: :func:`program` and the attribute and data procedures.

The namespace procedures (CREATE ... LINK) are in :mod:`protocols.nfs.nfs3_ns`, READDIR and
READDIRPLUS in :mod:`protocols.nfs.nfs3_readdir`.  Every procedure runs with the caller's
credential (``Context.resolve`` applies the export's squash rule); core.fs makes every
permission decision, and every CoreError reaches the client through the one mapper of
:mod:`protocols.nfs.errors`.

Choices where the RFC leaves room:

- SETATTR's guard compares ``obj_ctime`` with the current ctime (nfstime3 carries whole
  nanoseconds) inside the change's own transaction (core.fs ``if_ctime_ns``); a mismatch is
  NFS3ERR_NOT_SYNC with nothing changed.
- ACCESS asks core.fs (``fs.access``) with these masks, knfsd's table in ACL terms; on a
  ``ro`` export MODIFY, EXTEND and DELETE are never granted:

  ========  ==========================  ===========================================
  ACCESS3   file (and other non-dirs)   directory
  ========  ==========================  ===========================================
  READ      READ_DATA                   LIST_DIRECTORY
  LOOKUP    (never)                     EXECUTE
  MODIFY    WRITE_DATA                  EXECUTE + ADD_FILE + DELETE_CHILD
  EXTEND    APPEND_DATA                 EXECUTE + ADD_FILE
  DELETE    (never)                     EXECUTE + DELETE_CHILD
  EXECUTE   EXECUTE                     (never)
  ========  ==========================  ===========================================

- FSINFO offers 1 MiB reads and writes over TCP, 32 KiB over UDP (a reply is one datagram); READ
  returns at most that; ``eof`` is exact: offset + count reaches the size.
- WRITE: UNSTABLE is buffered (``committed`` UNSTABLE, made durable by COMMIT); DATA_SYNC
  and FILE_SYNC are durable before the reply and answer FILE_SYNC.  The verifier is
  ``fs.write_verifier`` (new on every server start).
- SETATTR is in the duplicate-request cache with the namespace procedures: a retried
  guarded SETATTR would otherwise fail NOT_SYNC against its own first execution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.fs import Wcc, acl

from .dispatch import Program
from .errors import NFS3ERR_INVAL, NFS3ERR_NOT_SYNC, NfsError
from .nfs3_args import AccessArgs, CommitArgs, FhArgs, ReadArgs, SetattrArgs, WriteArgs
from .nfs3_call import MAX_PAYLOAD, Call, ProcTable, attr_or_none, handler, wcc_of
from .nfs3_ns import NS_PROCEDURES
from .nfs3_readdir import READDIR_PROCEDURES
from .nfs3_res import (
    AccessRes,
    CommitRes,
    FsinfoRes,
    FsstatRes,
    GetattrRes,
    PathconfRes,
    ReadlinkRes,
    ReadRes,
    WccRes,
    WriteRes,
)
from .nfs3_types import (
    ACCESS3_DELETE,
    ACCESS3_EXECUTE,
    ACCESS3_EXTEND,
    ACCESS3_LOOKUP,
    ACCESS3_MODIFY,
    ACCESS3_READ,
    FSF3_CANSETTIME,
    FSF3_HOMOGENEOUS,
    FSF3_LINK,
    FSF3_SYMLINK,
    NFS_PROGRAM,
    NFS_V3,
    Proc,
    StableHow,
    nfstime,
)

if TYPE_CHECKING:
    from .context import Context

RTMAX = WTMAX = RTPREF = WTPREF = MAX_PAYLOAD  # over UDP: MAX_PAYLOAD_UDP
RTMULT = WTMULT = 4096
DTPREF = 64 * 1024
MAXFILESIZE = (1 << 63) - 1
LINK_MAX = 65000  # core.fs's limit on hard links (checked by the tests)
NAME_MAX = 255
PROPERTIES = FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME

_X, _ADD, _DEL = acl.EXECUTE, acl.ADD_FILE, acl.DELETE_CHILD
ACCESS_FILE = {ACCESS3_READ: acl.READ_DATA, ACCESS3_MODIFY: acl.WRITE_DATA, ACCESS3_EXTEND: acl.APPEND_DATA,
               ACCESS3_EXECUTE: acl.EXECUTE}
ACCESS_DIR = {ACCESS3_READ: acl.LIST_DIRECTORY, ACCESS3_LOOKUP: _X, ACCESS3_MODIFY: _X | _ADD | _DEL,
              ACCESS3_EXTEND: _X | _ADD, ACCESS3_DELETE: _X | _DEL}
_WRITES = ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE


def getattr_(c: Call, a: FhArgs, res: GetattrRes) -> None:
    _, _, res.attr = c.resolve_attr(a.object, res)


def setattr_(c: Call, a: SetattrArgs, res: WccRes) -> None:
    fs, _, ino = c.resolve(a.object, res, write=True)
    w = Wcc()
    try:
        s = a.attrs
        if a.guard is not None and s.empty:  # nothing to change: the guard alone decides
            cur = fs.getattr(ino)
            if nfstime(cur.ctime_ns) != nfstime(a.guard):
                w.before[ino] = w.after[ino] = cur
                raise NfsError(NFS3ERR_NOT_SYNC, "the object's ctime is not the guard's")
        if not s.empty:  # the guard is checked inside the change's own transaction (core.errors.Changed)
            fs.setattr(ino, mode=s.mode, uid=s.uid, gid=s.gid, size=s.size, atime_ns=s.atime, mtime_ns=s.mtime,
                       wcc=w, if_ctime_ns=a.guard)
    finally:
        res.wcc = wcc_of(fs, w, ino)


def access(c: Call, a: AccessArgs, res: AccessRes) -> None:
    fs, export, ino = c.resolve(a.object, res)
    res.obj = obj = fs.getattr(ino)
    table = ACCESS_DIR if obj.is_dir else ACCESS_FILE
    asked = {bit: mask for bit, mask in table.items() if a.access & bit}
    if export.read_only:
        asked = {bit: mask for bit, mask in asked.items() if not bit & _WRITES}
    union = 0
    for mask in asked.values():
        union |= mask
    have = fs.access(ino, union) if union else 0
    res.access = sum(bit for bit, mask in asked.items() if have & mask == mask)


def readlink(c: Call, a: FhArgs, res: ReadlinkRes) -> None:
    fs, _, ino = c.resolve(a.object, res)
    try:
        res.target = fs.readlink(ino).encode("utf-8", "surrogateescape")
    finally:
        res.obj = attr_or_none(fs, ino)


def read(c: Call, a: ReadArgs, res: ReadRes) -> None:
    fs, _, obj = c.resolve_attr(a.file, res)  # a read changes no attribute: the check's read serves as post-op
    ino = obj.ino
    try:
        data = fs.read_buffer(ino, a.offset, min(a.count, c.max_payload))
        res.obj, res.data, res.eof = obj, data, a.offset + len(data) >= obj.size
    finally:
        if res.obj is None:
            res.obj = attr_or_none(fs, ino)


def write(c: Call, a: WriteArgs, res: WriteRes) -> None:
    fs, _, ino = c.resolve(a.file, res, write=True)
    w = Wcc()
    try:
        if a.count > len(a.data):
            raise NfsError(NFS3ERR_INVAL, f"WRITE count {a.count} is more than the {len(a.data)} bytes sent")
        stable = a.stable != StableHow.UNSTABLE
        res.count = fs.write(ino, a.offset, a.data[: a.count], stable=stable, wcc=w)
        res.committed = StableHow.FILE_SYNC if stable else StableHow.UNSTABLE
        res.verf = fs.write_verifier
    finally:
        res.wcc = wcc_of(fs, w, ino)


def commit(c: Call, a: CommitArgs, res: CommitRes) -> None:
    fs, _, ino = c.resolve(a.file, res)
    w = Wcc()
    try:
        fs.commit(ino, wcc=w)
        res.verf = fs.write_verifier
    finally:
        res.wcc = wcc_of(fs, w, ino)


def fsstat(c: Call, a: FhArgs, res: FsstatRes) -> None:
    fs, _, ino = c.resolve(a.object, res)
    try:
        st = fs.statfs()
        res.tbytes, res.fbytes, res.abytes = st.total_bytes, st.free_bytes, st.free_bytes
        res.tfiles, res.ffiles, res.afiles = st.total_files, st.free_files, st.free_files
    finally:
        res.obj = attr_or_none(fs, ino)


def fsinfo(c: Call, a: FhArgs, res: FsinfoRes) -> None:
    fs, _, ino = c.resolve(a.object, res)
    res.obj = attr_or_none(fs, ino)
    size = c.max_payload
    res.rtmax, res.rtpref, res.rtmult = size, size, RTMULT
    res.wtmax, res.wtpref, res.wtmult = size, size, WTMULT
    res.dtpref, res.maxfilesize, res.time_delta_ns, res.properties = min(DTPREF, size), MAXFILESIZE, 1, PROPERTIES


def pathconf(c: Call, a: FhArgs, res: PathconfRes) -> None:
    fs, _, ino = c.resolve(a.object, res)
    res.obj = attr_or_none(fs, ino)
    res.linkmax, res.name_max = LINK_MAX, NAME_MAX
    res.no_trunc, res.chown_restricted, res.case_insensitive, res.case_preserving = True, True, False, True


PROCEDURES: ProcTable = {
    Proc.GETATTR: (FhArgs, GetattrRes, getattr_),
    Proc.SETATTR: (SetattrArgs, WccRes, setattr_),
    Proc.ACCESS: (AccessArgs, AccessRes, access),
    Proc.READLINK: (FhArgs, ReadlinkRes, readlink),
    Proc.READ: (ReadArgs, ReadRes, read),
    Proc.WRITE: (WriteArgs, WriteRes, write),
    Proc.COMMIT: (CommitArgs, CommitRes, commit),
    Proc.FSSTAT: (FhArgs, FsstatRes, fsstat),
    Proc.FSINFO: (FhArgs, FsinfoRes, fsinfo),
    Proc.PATHCONF: (FhArgs, PathconfRes, pathconf),
    **NS_PROCEDURES,
    **READDIR_PROCEDURES,
}

NON_IDEMPOTENT = frozenset((NFS_V3, int(p)) for p in (
    Proc.SETATTR, Proc.CREATE, Proc.MKDIR, Proc.SYMLINK, Proc.MKNOD, Proc.REMOVE, Proc.RMDIR, Proc.RENAME,
    Proc.LINK))


# metadata reads answered on the server's event loop (no thread hand-off): one indexed lookup each
INLINE = frozenset((NFS_V3, int(p)) for p in (Proc.GETATTR, Proc.LOOKUP, Proc.ACCESS, Proc.READLINK,
                                              Proc.FSINFO, Proc.PATHCONF))


def program(ctx: Context) -> Program:
    """NFS version 3 (program 100003) over ``ctx``; NULL is answered by dispatch itself."""
    procs = {int(p): handler(ctx, args, res, fn) for p, (args, res, fn) in PROCEDURES.items()}
    return Program(NFS_PROGRAM, {NFS_V3: procs}, NON_IDEMPOTENT, INLINE)
