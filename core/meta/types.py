"""Plain records that cross the MetaStore interface."""

from __future__ import annotations

import stat as _stat
from dataclasses import dataclass
from enum import IntEnum


class FileType(IntEnum):
    """What an inode is; stored as its integer value."""

    REG = 1
    DIR = 2
    LNK = 3
    CHR = 4
    BLK = 5
    FIFO = 6
    SOCK = 7


REG, DIR, LNK, CHR, BLK, FIFO, SOCK = (FileType.REG, FileType.DIR, FileType.LNK, FileType.CHR, FileType.BLK,
                                       FileType.FIFO, FileType.SOCK)

_TYPE_BITS: dict[int, int] = {
    REG: _stat.S_IFREG, DIR: _stat.S_IFDIR, LNK: _stat.S_IFLNK, CHR: _stat.S_IFCHR,
    BLK: _stat.S_IFBLK, FIFO: _stat.S_IFIFO, SOCK: _stat.S_IFSOCK,
}


def type_bits(kind: int) -> int:
    return _TYPE_BITS[kind]


INODE_COLS = ("ino, gen, type, mode, uid, gid, nlink, size, rdev, atime, mtime, ctime, btime, "
              "parent, symlink, inline_data, flags, dos")
HAS_ACL = 1  # Inode.flags
LOCKED = 2  # Inode.flags: retention or a legal hold was set (core.fs.retention decides whether it still holds)
KEPT = 4  # Inode.flags: a kept version or trash entry (no name; read only through a versions view)


@dataclass(slots=True)
class Inode:
    ino: int
    gen: int
    type: int
    mode: int  # permission bits only (0o7777)
    uid: int
    gid: int
    nlink: int
    size: int
    rdev: int
    atime: int  # nanoseconds since the epoch
    mtime: int
    ctime: int
    btime: int
    parent: int  # a directory's '..'; 0 for other types
    symlink: bytes | None
    inline_data: bytes | None
    flags: int = 0  # HAS_ACL
    dos: int | None = None  # DOS attributes a client set (FILE_ATTRIBUTE_* bits); None = never set

    @property
    def st_mode(self) -> int:
        return _TYPE_BITS[self.type] | self.mode


@dataclass(slots=True, frozen=True)
class Slice:
    """``len`` bytes at ``off`` in chunk ``chunk`` come from ``seg_off`` of ``segment``."""

    id: int
    chunk: int
    off: int
    len: int
    segment: int
    seg_off: int


@dataclass(slots=True, frozen=True)
class SegmentInfo:
    id: int
    k: int
    m: int
    cell: int
    state: str
    owner: str
    nstripes: int
    capacity: int  # stripes
    targets: tuple[int, ...]  # shard index -> target id


@dataclass(slots=True, frozen=True)
class TargetInfo:
    id: int
    path: str
    state: str
    weight: float
    domain: str
    node: str = ""  # the cluster node whose disk holds it ('' = this machine, one-node store)
