"""The results of the NFSv3 procedures (RFC 1813 §3.3), as the server encodes them.

Each ``*3res`` of the RFC is a union on ``nfsstat3``: the ``resok`` arm on NFS3_OK, the
``resfail`` arm otherwise.  The two arms share most of their fields (the resfail arm is
the resok arm minus the results proper), so one dataclass per result shape holds both:
:meth:`Res.pack` writes the status, then the fields of the arm that status selects.  An
``Attr`` that is None goes out as "attributes do not follow".  ``fsid`` is the export id
that ``fattr3`` carries.

>>> from protocols.nfs.errors import NFS3ERR_NOENT
>>> r = LookupRes(NFS3ERR_NOENT)
>>> p = Packer(); r.pack(p); p.data().hex()  # status, dir_attributes: none
'0000000200000000'
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import NamedTuple

from core.fs import Attr

from .errors import NFS3_OK
from .nfs3_types import (
    NFS3_COOKIEVERFSIZE,
    NFS3_WRITEVERFSIZE,
    StableHow,
    WccData,
    fattr3,
    pack_fh3,
    pack_nfstime3,
    pack_post_op_attr,
    pack_post_op_fh3,
    pack_wcc_data,
)
from .xdr import Packer

__all__ = ["AccessRes", "CommitRes", "CreateRes", "Entry3", "EntryPlus3", "FsinfoRes", "FsstatRes", "GetattrRes",
           "LinkRes", "LookupRes", "PathconfRes", "ReadRes", "ReaddirRes", "ReaddirplusRes", "ReadlinkRes",
           "RenameRes", "Res", "WccRes", "WriteRes"]


@dataclass(slots=True)
class Res:
    status: int = NFS3_OK
    fsid: int = 0

    def pack(self, p: Packer) -> None:
        p.pack_enum(self.status)
        self.body(p, self.status == NFS3_OK)

    def body(self, p: Packer, ok: bool) -> None:
        raise NotImplementedError


@dataclass(slots=True)
class GetattrRes(Res):
    """GETATTR3res: fattr3 on success, nothing on failure."""

    attr: Attr | None = None

    def body(self, p: Packer, ok: bool) -> None:
        if ok:
            assert self.attr is not None, "GETATTR succeeded without attributes"
            p.pack_raw(fattr3(self.attr, self.fsid))


@dataclass(slots=True)
class WccRes(Res):
    """SETATTR3res, REMOVE3res, RMDIR3res: wcc_data in both arms."""

    wcc: WccData = field(default_factory=WccData)

    def body(self, p: Packer, ok: bool) -> None:
        pack_wcc_data(p, self.wcc, self.fsid)


@dataclass(slots=True)
class LookupRes(Res):
    fh: bytes = b""
    obj: Attr | None = None
    dir: Attr | None = None

    def body(self, p: Packer, ok: bool) -> None:
        if ok:
            pack_fh3(p, self.fh)
            pack_post_op_attr(p, self.obj, self.fsid)
        pack_post_op_attr(p, self.dir, self.fsid)


@dataclass(slots=True)
class AccessRes(Res):
    obj: Attr | None = None
    access: int = 0

    def body(self, p: Packer, ok: bool) -> None:
        pack_post_op_attr(p, self.obj, self.fsid)
        if ok:
            p.pack_uint(self.access)


@dataclass(slots=True)
class ReadlinkRes(Res):
    obj: Attr | None = None
    target: bytes = b""

    def body(self, p: Packer, ok: bool) -> None:
        pack_post_op_attr(p, self.obj, self.fsid)
        if ok:
            p.pack_string(self.target)


@dataclass(slots=True)
class ReadRes(Res):
    """READ3res: count is the length of ``data``."""

    obj: Attr | None = None
    data: bytes | bytearray = b""
    eof: bool = False

    def body(self, p: Packer, ok: bool) -> None:
        pack_post_op_attr(p, self.obj, self.fsid)
        if ok:
            p.pack_uint(len(self.data))
            p.pack_bool(self.eof)
            p.pack_opaque(self.data)


@dataclass(slots=True)
class WriteRes(Res):
    wcc: WccData = field(default_factory=WccData)
    count: int = 0
    committed: StableHow = StableHow.UNSTABLE
    verf: bytes = bytes(NFS3_WRITEVERFSIZE)

    def body(self, p: Packer, ok: bool) -> None:
        pack_wcc_data(p, self.wcc, self.fsid)
        if ok:
            p.pack_uint(self.count)
            p.pack_enum(self.committed)
            p.pack_fopaque(NFS3_WRITEVERFSIZE, self.verf)


@dataclass(slots=True)
class CreateRes(Res):
    """CREATE3res, MKDIR3res, SYMLINK3res, MKNOD3res: the new object's handle and attributes, the
    directory's wcc_data (the only field of the failure arm)."""

    fh: bytes | None = None
    obj: Attr | None = None
    dir_wcc: WccData = field(default_factory=WccData)

    def body(self, p: Packer, ok: bool) -> None:
        if ok:
            pack_post_op_fh3(p, self.fh)
            pack_post_op_attr(p, self.obj, self.fsid)
        pack_wcc_data(p, self.dir_wcc, self.fsid)


@dataclass(slots=True)
class RenameRes(Res):
    src_wcc: WccData = field(default_factory=WccData)
    dst_wcc: WccData = field(default_factory=WccData)

    def body(self, p: Packer, ok: bool) -> None:
        pack_wcc_data(p, self.src_wcc, self.fsid)
        pack_wcc_data(p, self.dst_wcc, self.fsid)


@dataclass(slots=True)
class LinkRes(Res):
    obj: Attr | None = None
    dir_wcc: WccData = field(default_factory=WccData)

    def body(self, p: Packer, ok: bool) -> None:
        pack_post_op_attr(p, self.obj, self.fsid)
        pack_wcc_data(p, self.dir_wcc, self.fsid)


_HEAD = struct.Struct(">IQI")  # value follows, fileid, name length
_COOKIE = struct.Struct(">Q")
_FH_HEAD = struct.Struct(">II")  # handle follows, length
_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")
_TRUE, _FALSE = b"\0\0\0\1", b"\0\0\0\0"


class Entry3(NamedTuple):
    fileid: int
    name: bytes
    cookie: int


class EntryPlus3(NamedTuple):
    fileid: int
    name: bytes
    cookie: int
    attr: Attr | None
    fh: bytes | None


@dataclass(slots=True)
class ReaddirRes(Res):
    dir: Attr | None = None
    verf: bytes = bytes(NFS3_COOKIEVERFSIZE)
    entries: list[Entry3] = field(default_factory=list)
    eof: bool = False

    def body(self, p: Packer, ok: bool) -> None:
        pack_post_op_attr(p, self.dir, self.fsid)
        if ok:
            p.pack_fopaque(NFS3_COOKIEVERFSIZE, self.verf)
            p.pack_raw(b"".join([b"".join((_HEAD.pack(1, e.fileid, len(e.name)), e.name, _PAD[len(e.name) & 3],
                                           _COOKIE.pack(e.cookie))) for e in self.entries]))
            p.pack_bool(False)
            p.pack_bool(self.eof)


@dataclass(slots=True)
class ReaddirplusRes(Res):
    dir: Attr | None = None
    verf: bytes = bytes(NFS3_COOKIEVERFSIZE)
    entries: list[EntryPlus3] = field(default_factory=list)
    eof: bool = False

    def body(self, p: Packer, ok: bool) -> None:
        pack_post_op_attr(p, self.dir, self.fsid)
        if ok:
            p.pack_fopaque(NFS3_COOKIEVERFSIZE, self.verf)
            p.pack_raw(b"".join([self._entry(e) for e in self.entries]))
            p.pack_bool(False)
            p.pack_bool(self.eof)

    def _entry(self, e: EntryPlus3) -> bytes:
        """One entryplus3 with the TRUE that announces it, in one piece (listings are big: fewer calls)."""
        n = len(e.name)
        attr = _TRUE + fattr3(e.attr, self.fsid) if e.attr is not None else _FALSE
        fh = _FH_HEAD.pack(1, len(e.fh)) + e.fh + _PAD[len(e.fh) & 3] if e.fh is not None else _FALSE
        return b"".join((_HEAD.pack(1, e.fileid, n), e.name, _PAD[n & 3], _COOKIE.pack(e.cookie), attr, fh))


@dataclass(slots=True)
class FsstatRes(Res):
    obj: Attr | None = None
    tbytes: int = 0
    fbytes: int = 0
    abytes: int = 0
    tfiles: int = 0
    ffiles: int = 0
    afiles: int = 0
    invarsec: int = 0

    def body(self, p: Packer, ok: bool) -> None:
        pack_post_op_attr(p, self.obj, self.fsid)
        if ok:
            for v in (self.tbytes, self.fbytes, self.abytes, self.tfiles, self.ffiles, self.afiles):
                p.pack_uhyper(v)
            p.pack_uint(self.invarsec)


@dataclass(slots=True)
class FsinfoRes(Res):
    obj: Attr | None = None
    rtmax: int = 0
    rtpref: int = 0
    rtmult: int = 0
    wtmax: int = 0
    wtpref: int = 0
    wtmult: int = 0
    dtpref: int = 0
    maxfilesize: int = 0
    time_delta_ns: int = 0
    properties: int = 0

    def body(self, p: Packer, ok: bool) -> None:
        pack_post_op_attr(p, self.obj, self.fsid)
        if ok:
            for v in (self.rtmax, self.rtpref, self.rtmult, self.wtmax, self.wtpref, self.wtmult, self.dtpref):
                p.pack_uint(v)
            p.pack_uhyper(self.maxfilesize)
            pack_nfstime3(p, self.time_delta_ns)
            p.pack_uint(self.properties)


@dataclass(slots=True)
class PathconfRes(Res):
    obj: Attr | None = None
    linkmax: int = 0
    name_max: int = 0
    no_trunc: bool = True
    chown_restricted: bool = True
    case_insensitive: bool = False
    case_preserving: bool = True

    def body(self, p: Packer, ok: bool) -> None:
        pack_post_op_attr(p, self.obj, self.fsid)
        if ok:
            p.pack_uint(self.linkmax)
            p.pack_uint(self.name_max)
            for b in (self.no_trunc, self.chown_restricted, self.case_insensitive, self.case_preserving):
                p.pack_bool(b)


@dataclass(slots=True)
class CommitRes(Res):
    wcc: WccData = field(default_factory=WccData)
    verf: bytes = bytes(NFS3_WRITEVERFSIZE)

    def body(self, p: Packer, ok: bool) -> None:
        pack_wcc_data(p, self.wcc, self.fsid)
        if ok:
            p.pack_fopaque(NFS3_WRITEVERFSIZE, self.verf)
