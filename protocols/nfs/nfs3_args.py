"""The arguments of the NFSv3 procedures (RFC 1813 §3.3): ``unpack`` for the server, ``pack`` for clients
and tests.  Field order and types follow the RFC's ``*3args`` structs exactly.

>>> a = ReadArgs(b"\\x01" * 36, 4096, 512)
>>> p = Packer(); a.pack(p); ReadArgs.unpack(Unpacker(p.data())) == a
True
>>> ARGS[Proc.READ] is ReadArgs, len(ARGS)
(True, 21)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Self

from .nfs3_types import (
    NFS3_COOKIEVERFSIZE,
    NFS3_CREATEVERFSIZE,
    PATH_BOUND,
    CreateMode,
    DirOp,
    Ftype3,
    Proc,
    Sattr3,
    StableHow,
    enum_of,
    pack_fh3,
    pack_nfstime3,
    unpack_fh3,
    unpack_nfstime3,
)
from .xdr import Packer, Unpacker


class Args(Protocol):
    def pack(self, p: Packer) -> None: ...


@dataclass(frozen=True, slots=True)
class FhArgs:
    """GETATTR3args, READLINK3args, FSSTAT3args, FSINFO3args, PATHCONF3args: one handle."""

    object: bytes

    def pack(self, p: Packer) -> None:
        pack_fh3(p, self.object)

    @staticmethod
    def unpack(u: Unpacker) -> FhArgs:
        return FhArgs(unpack_fh3(u))


@dataclass(frozen=True, slots=True)
class SetattrArgs:
    object: bytes
    attrs: Sattr3
    guard: int | None = None  # obj_ctime in ns when the client asks for the check

    def pack(self, p: Packer) -> None:
        pack_fh3(p, self.object)
        self.attrs.pack(p)
        p.pack_bool(self.guard is not None)
        if self.guard is not None:
            pack_nfstime3(p, self.guard)

    @staticmethod
    def unpack(u: Unpacker) -> SetattrArgs:
        fh, attrs = unpack_fh3(u), Sattr3.unpack(u)
        return SetattrArgs(fh, attrs, unpack_nfstime3(u) if u.unpack_bool() else None)


@dataclass(frozen=True, slots=True)
class DirOpArgs:
    """LOOKUP3args, REMOVE3args, RMDIR3args: one diropargs3."""

    what: DirOp

    def pack(self, p: Packer) -> None:
        self.what.pack(p)

    @staticmethod
    def unpack(u: Unpacker) -> DirOpArgs:
        return DirOpArgs(DirOp.unpack(u))


@dataclass(frozen=True, slots=True)
class AccessArgs:
    object: bytes
    access: int

    def pack(self, p: Packer) -> None:
        pack_fh3(p, self.object)
        p.pack_uint(self.access)

    @staticmethod
    def unpack(u: Unpacker) -> AccessArgs:
        return AccessArgs(unpack_fh3(u), u.unpack_uint())


@dataclass(frozen=True, slots=True)
class ReadArgs:
    """READ3args; COMMIT3args has the same shape (file, offset, count)."""

    file: bytes
    offset: int
    count: int

    def pack(self, p: Packer) -> None:
        pack_fh3(p, self.file)
        p.pack_uhyper(self.offset)
        p.pack_uint(self.count)

    @classmethod
    def unpack(cls, u: Unpacker) -> Self:
        return cls(unpack_fh3(u), u.unpack_uhyper(), u.unpack_uint())


@dataclass(frozen=True, slots=True)
class CommitArgs(ReadArgs):
    pass


@dataclass(frozen=True, slots=True)
class WriteArgs:
    file: bytes
    offset: int
    count: int
    stable: StableHow
    data: bytes | memoryview = field(repr=False)  # a view into the record: not copied on the way in

    def pack(self, p: Packer) -> None:
        pack_fh3(p, self.file)
        p.pack_uhyper(self.offset)
        p.pack_uint(self.count)
        p.pack_enum(self.stable)
        p.pack_opaque(self.data)

    @staticmethod
    def unpack(u: Unpacker) -> WriteArgs:
        fh, off, count = unpack_fh3(u), u.unpack_uhyper(), u.unpack_uint()
        stable = StableHow(enum_of(StableHow, u.unpack_enum()))
        return WriteArgs(fh, off, count, stable, u.unpack_opaque_view())


@dataclass(frozen=True, slots=True)
class CreateArgs:
    """CREATE3args: ``attrs`` for UNCHECKED and GUARDED, ``verf`` (8 bytes) for EXCLUSIVE."""

    where: DirOp
    mode: CreateMode
    attrs: Sattr3 | None = None
    verf: bytes | None = None

    def pack(self, p: Packer) -> None:
        self.where.pack(p)
        p.pack_enum(self.mode)
        if self.mode == CreateMode.EXCLUSIVE:
            p.pack_fopaque(NFS3_CREATEVERFSIZE, self.verf or bytes(NFS3_CREATEVERFSIZE))
        else:
            (self.attrs or Sattr3()).pack(p)

    @staticmethod
    def unpack(u: Unpacker) -> CreateArgs:
        where = DirOp.unpack(u)
        mode = CreateMode(enum_of(CreateMode, u.unpack_enum()))
        if mode == CreateMode.EXCLUSIVE:
            return CreateArgs(where, mode, verf=u.unpack_fopaque(NFS3_CREATEVERFSIZE))
        return CreateArgs(where, mode, attrs=Sattr3.unpack(u))


@dataclass(frozen=True, slots=True)
class MkdirArgs:
    where: DirOp
    attrs: Sattr3

    def pack(self, p: Packer) -> None:
        self.where.pack(p)
        self.attrs.pack(p)

    @staticmethod
    def unpack(u: Unpacker) -> MkdirArgs:
        return MkdirArgs(DirOp.unpack(u), Sattr3.unpack(u))


@dataclass(frozen=True, slots=True)
class SymlinkArgs:
    where: DirOp
    attrs: Sattr3
    target: bytes

    def pack(self, p: Packer) -> None:
        self.where.pack(p)
        self.attrs.pack(p)
        p.pack_string(self.target)

    @staticmethod
    def unpack(u: Unpacker) -> SymlinkArgs:
        return SymlinkArgs(DirOp.unpack(u), Sattr3.unpack(u), u.unpack_string(PATH_BOUND))


@dataclass(frozen=True, slots=True)
class MknodArgs:
    """MKNOD3args: a device (CHR, BLK) carries attributes and (major, minor); a FIFO or socket
    attributes only; any other type nothing (the server answers NFS3ERR_BADTYPE)."""

    where: DirOp
    type: Ftype3
    attrs: Sattr3 | None = None
    spec: tuple[int, int] | None = None

    def pack(self, p: Packer) -> None:
        self.where.pack(p)
        p.pack_enum(self.type)
        if self.type in (Ftype3.CHR, Ftype3.BLK):
            (self.attrs or Sattr3()).pack(p)
            major, minor = self.spec or (0, 0)
            p.pack_uint(major)
            p.pack_uint(minor)
        elif self.type in (Ftype3.SOCK, Ftype3.FIFO):
            (self.attrs or Sattr3()).pack(p)

    @staticmethod
    def unpack(u: Unpacker) -> MknodArgs:
        where = DirOp.unpack(u)
        kind = Ftype3(enum_of(Ftype3, u.unpack_enum()))
        if kind in (Ftype3.CHR, Ftype3.BLK):
            attrs = Sattr3.unpack(u)
            return MknodArgs(where, kind, attrs, (u.unpack_uint(), u.unpack_uint()))
        if kind in (Ftype3.SOCK, Ftype3.FIFO):
            return MknodArgs(where, kind, Sattr3.unpack(u))
        return MknodArgs(where, kind)


@dataclass(frozen=True, slots=True)
class RenameArgs:
    src: DirOp
    dst: DirOp

    def pack(self, p: Packer) -> None:
        self.src.pack(p)
        self.dst.pack(p)

    @staticmethod
    def unpack(u: Unpacker) -> RenameArgs:
        return RenameArgs(DirOp.unpack(u), DirOp.unpack(u))


@dataclass(frozen=True, slots=True)
class LinkArgs:
    file: bytes
    link: DirOp

    def pack(self, p: Packer) -> None:
        pack_fh3(p, self.file)
        self.link.pack(p)

    @staticmethod
    def unpack(u: Unpacker) -> LinkArgs:
        return LinkArgs(unpack_fh3(u), DirOp.unpack(u))


@dataclass(frozen=True, slots=True)
class ReaddirArgs:
    dir: bytes
    cookie: int
    verf: bytes
    count: int

    def pack(self, p: Packer) -> None:
        pack_fh3(p, self.dir)
        p.pack_uhyper(self.cookie)
        p.pack_fopaque(NFS3_COOKIEVERFSIZE, self.verf)
        p.pack_uint(self.count)

    @staticmethod
    def unpack(u: Unpacker) -> ReaddirArgs:
        return ReaddirArgs(unpack_fh3(u), u.unpack_uhyper(), u.unpack_fopaque(NFS3_COOKIEVERFSIZE), u.unpack_uint())


@dataclass(frozen=True, slots=True)
class ReaddirplusArgs:
    dir: bytes
    cookie: int
    verf: bytes
    dircount: int
    maxcount: int

    def pack(self, p: Packer) -> None:
        pack_fh3(p, self.dir)
        p.pack_uhyper(self.cookie)
        p.pack_fopaque(NFS3_COOKIEVERFSIZE, self.verf)
        p.pack_uint(self.dircount)
        p.pack_uint(self.maxcount)

    @staticmethod
    def unpack(u: Unpacker) -> ReaddirplusArgs:
        return ReaddirplusArgs(unpack_fh3(u), u.unpack_uhyper(), u.unpack_fopaque(NFS3_COOKIEVERFSIZE),
                               u.unpack_uint(), u.unpack_uint())


ARGS: dict[Proc, type] = {
    Proc.GETATTR: FhArgs, Proc.SETATTR: SetattrArgs, Proc.LOOKUP: DirOpArgs, Proc.ACCESS: AccessArgs,
    Proc.READLINK: FhArgs, Proc.READ: ReadArgs, Proc.WRITE: WriteArgs, Proc.CREATE: CreateArgs,
    Proc.MKDIR: MkdirArgs, Proc.SYMLINK: SymlinkArgs, Proc.MKNOD: MknodArgs, Proc.REMOVE: DirOpArgs,
    Proc.RMDIR: DirOpArgs, Proc.RENAME: RenameArgs, Proc.LINK: LinkArgs, Proc.READDIR: ReaddirArgs,
    Proc.READDIRPLUS: ReaddirplusArgs, Proc.FSSTAT: FhArgs, Proc.FSINFO: FhArgs, Proc.PATHCONF: FhArgs,
    Proc.COMMIT: CommitArgs,
}
"""Each procedure's argument type (NULL has none)."""

__all__ = ["ARGS", "AccessArgs", "Args", "CommitArgs", "CreateArgs", "DirOpArgs", "FhArgs", "LinkArgs", "MkdirArgs",
           "MknodArgs", "ReadArgs", "ReaddirArgs", "ReaddirplusArgs", "RenameArgs", "SetattrArgs", "SymlinkArgs",
           "WriteArgs"]
