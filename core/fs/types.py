"""Records returned by core.fs."""

from __future__ import annotations

import stat as _stat
from dataclasses import dataclass

from core.meta.types import DIR, LNK, REG, FileType, Inode, type_bits

NOBODY_ID = 65534
NOW = -1  # setattr: set a time to the server's clock

# DOS attributes (MS-FSCC 2.6 FILE_ATTRIBUTE_*) that core.fs keeps per inode for SMB.  DIRECTORY and NORMAL
# are not kept: the SMB layer derives them from the type and from "no other bit".  core.fs only stores
# them; what they mean to a Windows client (READONLY refusing writes, HIDDEN in listings) is SMB's.
DOS_READONLY = 0x1
DOS_HIDDEN = 0x2
DOS_SYSTEM = 0x4
DOS_ARCHIVE = 0x20
DOS_TEMPORARY = 0x100
DOS_SPARSE = 0x200
DOS_OFFLINE = 0x1000
DOS_NOT_CONTENT_INDEXED = 0x2000
DOS_KEEP = (DOS_READONLY | DOS_HIDDEN | DOS_SYSTEM | DOS_ARCHIVE | DOS_TEMPORARY | DOS_SPARSE | DOS_OFFLINE
            | DOS_NOT_CONTENT_INDEXED)


FILE_TYPES: dict[int, FileType] = {int(t): t for t in FileType}  # stored value -> enum, without Enum.__call__


@dataclass(frozen=True, slots=True)
class Cred:
    """Who is calling: every core.fs operation runs with one (like an FSAL operation context).

    ``admin`` bypasses permission checks (root on a local file system).  ``name`` is the
    principal for logs and audit; ``sid`` is filled in by the identity service for SMB.
    """

    uid: int
    gid: int
    groups: frozenset[int] = frozenset()
    admin: bool = False
    name: str = ""

    def in_group(self, gid: int) -> bool:
        return gid == self.gid or gid in self.groups

    @property
    def anonymous(self) -> bool:
        return self.uid == NOBODY_ID and not self.admin


ROOT = Cred(0, 0, admin=True, name="root")
ANONYMOUS = Cred(NOBODY_ID, NOBODY_ID, name="anonymous")


@dataclass(frozen=True, slots=True)
class Attr:
    ino: int
    gen: int
    type: FileType
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
    dos: int | None = None  # the DOS attributes a client set (DOS_KEEP bits); None = never set, derive them

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
        return Attr(node.ino, node.gen, FILE_TYPES[node.type], type_bits(node.type) | node.mode, node.nlink,
                    node.uid, node.gid, node.size, node.rdev, node.atime, node.mtime, node.ctime,
                    node.btime, node.dos)


@dataclass(frozen=True, slots=True)
class DirEntry:
    name: str
    ino: int
    type: FileType
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
    length: int  # 0 = to end of file (a POSIX lock); an SMB lock's length as given (0 = zero bytes)
    exclusive: bool
    smb: bool = False  # taken with smb_lock (stacked, exact unlock, unsigned 64-bit range)


# share-mode access and share bits (SMB's FILE_SHARE_*, NFSv4's OPEN4_SHARE_*)
READ, WRITE, DELETE = 1, 2, 4
