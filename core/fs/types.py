"""Records returned by core.fs."""

from __future__ import annotations

import stat as _stat
from dataclasses import dataclass

from core.meta.types import DIR, LNK, REG, Inode, type_bits


@dataclass(frozen=True, slots=True)
class Attr:
    ino: int
    gen: int
    type: int
    mode: int  # full st_mode: type bits | permissions
    nlink: int
    uid: int
    gid: int
    size: int
    rdev: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    btime_ns: int

    @property
    def perm(self) -> int:
        return _stat.S_IMODE(self.mode)

    @property
    def is_dir(self) -> bool:
        return self.type == DIR

    @property
    def is_file(self) -> bool:
        return self.type == REG

    @property
    def is_symlink(self) -> bool:
        return self.type == LNK

    @property
    def blocks(self) -> int:
        """512-byte blocks, as stat reports them."""
        return (self.size + 511) // 512

    @staticmethod
    def of(node: Inode) -> Attr:
        return Attr(node.ino, node.gen, node.type, type_bits(node.type) | node.mode, node.nlink,
                    node.uid, node.gid, node.size, node.rdev, node.atime, node.mtime, node.ctime,
                    node.btime)


@dataclass(frozen=True, slots=True)
class DirEntry:
    name: str
    ino: int
    type: int
    cookie: int  # pass back to readdir to continue after this entry


@dataclass(frozen=True, slots=True)
class StatFs:
    total_bytes: int  # usable (after parity) capacity
    free_bytes: int
    total_files: int
    free_files: int
    block_size: int
    name_max: int = 255


@dataclass(frozen=True, slots=True)
class LockInfo:
    owner: str
    start: int
    length: int  # 0 = to end of file
    exclusive: bool


# share-mode access and share bits (SMB's FILE_SHARE_*, NFSv4's OPEN4_SHARE_*)
READ, WRITE, DELETE = 1, 2, 4
