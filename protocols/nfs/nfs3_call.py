"""What every NFSv3 procedure shares: one call in progress (:class:`Call`) and the handler wrapper.

A procedure is a function ``(call, args, res) -> None`` that fills the result in place.
It resolves its handles through :meth:`Call.resolve` (which also sets the result's
``fsid``), does its work through the caller's ``core.fs`` view, and fills the attributes
its failure arm carries in a ``finally`` so they go out on error too.  Any ``CoreError``
or ``NfsError`` it raises becomes the result's status through the one error mapper
(:func:`protocols.nfs.errors.nfsstat3`); bad arguments (``XdrError``) leave the wrapper
for the RPC layer (GARBAGE_ARGS); anything else is a bug, answered SYSTEM_ERR by dispatch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.errors import CoreError
from core.fs import Attr, FileSystem, Wcc

from .dispatch import Handler, Request
from .errors import NFS3ERR_EXIST, NFS3ERR_STALE, NFS3ERR_XDEV, NfsError, nfsstat3
from .nfs3_res import Res
from .nfs3_types import Proc, WccData
from .xdr import Packer, Unpacker

if TYPE_CHECKING:
    from .context import Context
    from .exports import Export

_MAX_DEPTH = 4096
MAX_PAYLOAD = 1 << 20      # READ and WRITE data, READDIR replies: over TCP
MAX_PAYLOAD_UDP = 32 << 10  # over UDP a reply must fit one datagram (knfsd's limit too)


class Call:
    """One NFSv3 call: the server's context and the caller's request."""

    __slots__ = ("ctx", "req")

    def __init__(self, ctx: Context, req: Request) -> None:
        self.ctx = ctx
        self.req = req

    @property
    def max_payload(self) -> int:
        """The most data one READ, WRITE or READDIR reply carries on this call's transport."""
        return MAX_PAYLOAD_UDP if self.req.transport == "udp" else MAX_PAYLOAD

    def resolve(self, fh: bytes, res: Res, *, write: bool = False) -> tuple[FileSystem, Export, int]:
        """(the caller's view, the export, the inode) of a handle; NfsError refuses it."""
        fs, export, ino = self.ctx.resolve(self.req, fh, write=write)
        res.fsid = export.id
        return fs, export, ino

    def resolve_attr(self, fh: bytes, res: Res, *, write: bool = False) -> tuple[FileSystem, Export, Attr]:
        """:meth:`resolve` with the attributes the handle check read (no second read)."""
        fs, export, attr = self.ctx.resolve_attr(self.req, fh, write=write)
        res.fsid = export.id
        return fs, export, attr

    def handle(self, export: Export, attr: Attr) -> bytes:
        return self.ctx.handle(export, attr)


def parent_in_export(c: Call, fs: FileSystem, export: Export, dino: int) -> Attr:
    """The ``..`` of directory ``dino`` as the caller sees it (search permission needed), kept inside the export:
    the export root's ``..`` is the root itself, and the parent of a directory moved out of the export (by
    another protocol, say) is not given out at all (NFS3ERR_STALE), so walking up never leaves the export."""
    parent = fs.parent(dino)
    root = c.ctx.root_ino(export)
    if dino == root:
        return fs.getattr(dino)
    admin, ino = c.ctx.fs, parent.ino
    for _ in range(_MAX_DEPTH):
        if ino == root:
            return parent
        if ino == admin.root:
            break
        ino = admin.parent(ino).ino
    raise NfsError(NFS3ERR_STALE, f"the parent of directory {dino} is outside export {export.path}")


def attr_or_none(fs: FileSystem, ino: int) -> Attr | None:
    """Attributes for a reply's optional fields: None when they cannot be had (the reply still goes out)."""
    try:
        return fs.getattr(ino)
    except CoreError:
        return None


def wcc_of(fs: FileSystem, w: Wcc, ino: int) -> WccData:
    """wcc_data for ``ino`` from core's collector; after a failed change, its attributes as they are now."""
    after = w.after.get(ino)
    return WccData(w.before.get(ino), after if after is not None else attr_or_none(fs, ino))


def name_of(raw: bytes) -> str:
    """A name from the wire as core.fs takes it (bytes kept exactly through surrogateescape)."""
    return os.fsdecode(raw)


def new_name(raw: bytes) -> str:
    """The name of an entry to create: ``.`` and ``..`` always exist (NFS3ERR_EXIST, as knfsd answers)."""
    if raw in (b".", b".."):
        raise NfsError(NFS3ERR_EXIST, f"{raw!r} exists")
    return name_of(raw)


def same_export(a: Export, b: Export) -> None:
    """Two handles of one call (RENAME, LINK) must be in one export: each export is its own file system."""
    if a.id != b.id:
        raise NfsError(NFS3ERR_XDEV, "the handles are in different exports")


Procedure = Callable[[Call, Any, Any], None]
ProcTable = dict[Proc, tuple[Any, type[Res], Procedure]]  # procedure -> (arguments, result, function)


def handler(ctx: Context, args: Any, res: type[Res], fn: Procedure) -> Handler:
    """A dispatch handler running ``fn``: decode ``args``, fill a ``res``, encode it."""
    unpack = args.unpack

    def run(req: Request, u: Unpacker) -> Packer:
        a = unpack(u)
        r = res()
        try:
            fn(Call(ctx, req), a, r)
        except (CoreError, NfsError) as e:
            r.status = nfsstat3(e)
        p = Packer()
        r.pack(p)
        return p
    return run
