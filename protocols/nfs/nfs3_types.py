"""NFSv3 (RFC 1813) constants and the codecs of its shared types, mapped from core.fs records.

The procedure arguments are in :mod:`protocols.nfs.nfs3_args`, the results in
:mod:`protocols.nfs.nfs3_res`; both are built from the pieces here.  Every layout is
checked against the RFC's own ``.x`` text (tests/protocols/nfs/data/nfs3.x) by an
independent interpreter of that text.

Attributes come from :class:`core.fs.Attr`: ``fsid`` is the export's id (each export is a
file system to the client), ``fileid`` the inode number, times are nanoseconds since the
epoch carried as ``nfstime3`` (seconds clamped to the u32 range: no time before 1970 or
after 2106 can be said in NFSv3).

>>> from core.fs import Attr, FileType
>>> a = Attr(7, 1, FileType.REG, 0o100644, 1, 1000, 100, 5, 0, 10**9 + 5, 2 * 10**9, 3 * 10**9, 0)
>>> p = Packer(); pack_fattr3(p, a, fsid=9); raw = p.data(); len(raw)
84
>>> raw[:8].hex(), raw[44:60].hex()
('00000001000001a4', '00000000000000090000000000000007')
>>> nfstime(-5), nfstime(1_500_000_000_123_456_789)
((0, 0), (1500000000, 123456789))
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from core.fs import NOW, Attr, FileType

from .xdr import Packer, Unpacker, XdrError

NFS_PROGRAM = 100003
NFS_V3 = 3

NFS3_FHSIZE = 64
NFS3_COOKIEVERFSIZE = 8
NFS3_CREATEVERFSIZE = 8
NFS3_WRITEVERFSIZE = 8
NAME_BOUND = 4096       # filename3 is string<>: longer names are refused as bad XDR, 256..4096 as NAMETOOLONG
PATH_BOUND = 64 * 1024  # nfspath3 (a symlink target) likewise


class Proc(IntEnum):
    NULL = 0
    GETATTR = 1
    SETATTR = 2
    LOOKUP = 3
    ACCESS = 4
    READLINK = 5
    READ = 6
    WRITE = 7
    CREATE = 8
    MKDIR = 9
    SYMLINK = 10
    MKNOD = 11
    REMOVE = 12
    RMDIR = 13
    RENAME = 14
    LINK = 15
    READDIR = 16
    READDIRPLUS = 17
    FSSTAT = 18
    FSINFO = 19
    PATHCONF = 20
    COMMIT = 21


class Ftype3(IntEnum):
    REG = 1
    DIR = 2
    BLK = 3
    CHR = 4
    LNK = 5
    SOCK = 6
    FIFO = 7


FTYPE3: dict[FileType, Ftype3] = {
    FileType.REG: Ftype3.REG, FileType.DIR: Ftype3.DIR, FileType.BLK: Ftype3.BLK, FileType.CHR: Ftype3.CHR,
    FileType.LNK: Ftype3.LNK, FileType.SOCK: Ftype3.SOCK, FileType.FIFO: Ftype3.FIFO,
}
FILETYPE: dict[Ftype3, FileType] = {v: k for k, v in FTYPE3.items()}


class TimeHow(IntEnum):
    DONT_CHANGE = 0
    SET_TO_SERVER_TIME = 1
    SET_TO_CLIENT_TIME = 2


class StableHow(IntEnum):
    UNSTABLE = 0
    DATA_SYNC = 1
    FILE_SYNC = 2


class CreateMode(IntEnum):
    UNCHECKED = 0
    GUARDED = 1
    EXCLUSIVE = 2


ACCESS3_READ = 0x0001
ACCESS3_LOOKUP = 0x0002
ACCESS3_MODIFY = 0x0004
ACCESS3_EXTEND = 0x0008
ACCESS3_DELETE = 0x0010
ACCESS3_EXECUTE = 0x0020
ACCESS3_ALL = 0x003F

FSF3_LINK = 0x0001
FSF3_SYMLINK = 0x0002
FSF3_HOMOGENEOUS = 0x0008
FSF3_CANSETTIME = 0x0010

# type mode nlink uid gid | size used | rdev(2) | fsid fileid | atime(2) mtime(2) ctime(2)
_FATTR3 = struct.Struct(">IIIIIQQIIQQIIIIII")
_WCC_ATTR = struct.Struct(">QIIII")  # size mtime(2) ctime(2)
FATTR3_SIZE = _FATTR3.size  # 84
WCC_ATTR_SIZE = _WCC_ATTR.size  # 24
_U32 = 0xFFFFFFFF
_BILLION = 1_000_000_000


def enum_of(cls: type[IntEnum], v: int) -> IntEnum:
    """``cls(v)``, or XdrError: an enum value the RFC does not define is malformed XDR."""
    try:
        return cls(v)
    except ValueError:
        raise XdrError(f"{v} is not a value of {cls.__name__}") from None


# -- times ------------------------------------------------------------------------------
def nfstime(ns: int) -> tuple[int, int]:
    """(seconds, nseconds) of a time in nanoseconds, clamped to what nfstime3 can carry."""
    if ns <= 0:
        return 0, 0
    sec, nsec = divmod(ns, _BILLION)
    return (sec, nsec) if sec <= _U32 else (_U32, _BILLION - 1)


def pack_nfstime3(p: Packer, ns: int) -> None:
    sec, nsec = nfstime(ns)
    p.pack_uint(sec)
    p.pack_uint(nsec)


def unpack_nfstime3(u: Unpacker) -> int:
    sec = u.unpack_uint()
    nsec = u.unpack_uint()
    if nsec >= _BILLION:
        raise XdrError(f"nfstime3 nseconds {nsec} out of range")
    return sec * _BILLION + nsec


# -- attributes -------------------------------------------------------------------------
def specdata(rdev: int) -> tuple[int, int]:
    """(major, minor) of a Linux dev_t.

    >>> import os
    >>> specdata(os.makedev(8, 1)), specdata(os.makedev(300, 70000))
    ((8, 1), (300, 70000))
    """
    major = ((rdev >> 8) & 0xFFF) | ((rdev >> 32) & ~0xFFF)
    minor = (rdev & 0xFF) | ((rdev >> 12) & ~0xFF)
    return major & _U32, minor & _U32


def fattr3(a: Attr, fsid: int) -> bytes:
    """The 84 bytes of ``fattr3`` for ``a``."""
    major, minor = specdata(a.rdev) if a.rdev else (0, 0)
    at, mt, ct = nfstime(a.atime_ns), nfstime(a.mtime_ns), nfstime(a.ctime_ns)
    return _FATTR3.pack(FTYPE3[a.type], a.mode & 0o7777, min(a.nlink, _U32), a.uid & _U32, a.gid & _U32,
                        a.size, a.blocks * 512, major, minor, fsid, a.ino, *at, *mt, *ct)


def pack_fattr3(p: Packer, a: Attr, fsid: int) -> None:
    p.pack_raw(fattr3(a, fsid))


def pack_post_op_attr(p: Packer, a: Attr | None, fsid: int) -> None:
    if a is None:
        p.pack_bool(False)
    else:
        p.pack_bool(True)
        p.pack_raw(fattr3(a, fsid))


def pack_pre_op_attr(p: Packer, a: Attr | None) -> None:
    if a is None:
        p.pack_bool(False)
    else:
        p.pack_bool(True)
        p.pack_raw(_WCC_ATTR.pack(a.size, *nfstime(a.mtime_ns), *nfstime(a.ctime_ns)))


class WccData(NamedTuple):
    """wcc_data: the attributes just before (only size, mtime and ctime go out) and just after a change."""

    before: Attr | None = None
    after: Attr | None = None


def pack_wcc_data(p: Packer, w: WccData, fsid: int) -> None:
    pack_pre_op_attr(p, w.before)
    pack_post_op_attr(p, w.after, fsid)


# -- handles and names ------------------------------------------------------------------
def pack_fh3(p: Packer, fh: bytes) -> None:
    if len(fh) > NFS3_FHSIZE:
        raise XdrError(f"a file handle is at most {NFS3_FHSIZE} bytes")
    p.pack_opaque(fh)


def unpack_fh3(u: Unpacker) -> bytes:
    return u.unpack_opaque(NFS3_FHSIZE)


def pack_post_op_fh3(p: Packer, fh: bytes | None) -> None:
    p.pack_bool(fh is not None)
    if fh is not None:
        pack_fh3(p, fh)


def unpack_name(u: Unpacker) -> bytes:
    return u.unpack_string(NAME_BOUND)


@dataclass(frozen=True, slots=True)
class DirOp:
    """diropargs3: a directory's handle and a name in it (bytes, as sent)."""

    dir: bytes
    name: bytes

    def pack(self, p: Packer) -> None:
        pack_fh3(p, self.dir)
        p.pack_string(self.name)

    @staticmethod
    def unpack(u: Unpacker) -> DirOp:
        return DirOp(unpack_fh3(u), unpack_name(u))


# -- settable attributes ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sattr3:
    """sattr3: what to change (None = leave it); a time is nanoseconds or :data:`core.fs.NOW`
    (SET_TO_SERVER_TIME).

    >>> u = Unpacker(bytes.fromhex("00000001000001ed" "00000000" "00000000" "0000000100000000" "0000000a"
    ...                            "00000001" "00000002" "0000000200000003"))
    >>> s = Sattr3.unpack(u); u.done(); s
    Sattr3(mode=493, uid=None, gid=None, size=10, atime=-1, mtime=2000000003)
    """

    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    atime: int | None = None
    mtime: int | None = None

    @property
    def empty(self) -> bool:
        return all(v is None for v in (self.mode, self.uid, self.gid, self.size, self.atime, self.mtime))

    def pack(self, p: Packer) -> None:
        for v, fn in ((self.mode, p.pack_uint), (self.uid, p.pack_uint), (self.gid, p.pack_uint),
                      (self.size, p.pack_uhyper)):
            p.pack_bool(v is not None)
            if v is not None:
                fn(v)
        for t in (self.atime, self.mtime):
            if t is None:
                p.pack_enum(TimeHow.DONT_CHANGE)
            elif t == NOW:
                p.pack_enum(TimeHow.SET_TO_SERVER_TIME)
            else:
                p.pack_enum(TimeHow.SET_TO_CLIENT_TIME)
                pack_nfstime3(p, t)

    @staticmethod
    def unpack(u: Unpacker) -> Sattr3:
        mode = u.unpack_uint() if u.unpack_bool() else None
        uid = u.unpack_uint() if u.unpack_bool() else None
        gid = u.unpack_uint() if u.unpack_bool() else None
        size = u.unpack_uhyper() if u.unpack_bool() else None
        return Sattr3(mode, uid, gid, size, _unpack_set_time(u), _unpack_set_time(u))


def _unpack_set_time(u: Unpacker) -> int | None:
    how = enum_of(TimeHow, u.unpack_enum())
    if how == TimeHow.DONT_CHANGE:
        return None
    if how == TimeHow.SET_TO_SERVER_TIME:
        return NOW
    return unpack_nfstime3(u)


# -- directory entries (sizes for the READDIR budgets) ---------------------------------
def entry3_size(name_len: int) -> int:
    """Bytes one entry3 takes in a READDIR reply, with the TRUE that announces it.

    >>> entry3_size(1), entry3_size(4), entry3_size(5)
    (28, 28, 32)
    """
    return 4 + 8 + 4 + ((name_len + 3) & ~3) + 8


def entryplus3_size(name_len: int, with_attr: bool, fh_len: int | None) -> int:
    """Bytes one entryplus3 takes in a READDIRPLUS reply, with the TRUE that announces it."""
    attr = 4 + (FATTR3_SIZE if with_attr else 0)
    fh = 4 + (4 + ((fh_len + 3) & ~3) if fh_len is not None else 0)
    return entry3_size(name_len) + attr + fh
