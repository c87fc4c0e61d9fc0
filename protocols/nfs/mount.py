"""MOUNT (RFC 1813 Appendix I): program 100005, how a client gets an export's root handle.

Version 3 serves NULL, MNT, DUMP, UMNT, UMNTALL and EXPORT.  Versions 1 and 2 (the
NFSv2 era) serve the same procedures except MNT, whose fixed 32-byte ``fhandle``
cannot carry our 36-byte handles: it answers PROC_UNAVAIL (``showmount`` works with
any of the three).  XDR of the v3 procedures::

    MNT      dirpath<1024>          -> mountstat3 status; OK: fhandle3<64>, int auth_flavors<>
    DUMP     void                   -> mountbody *: {name hostname<255>, dirpath directory, next}
    UMNT     dirpath                -> void
    UMNTALL  void                   -> void
    EXPORT   void                   -> exportnode *: {dirpath dir, groupnode *groups, next}

MNT accepts an export's path or any directory below it (resolved as the admin
without following symlinks, ``..`` refused); the deepest export that contains the
path and allows the client serves it.  It answers MNT3ERR_ACCES when exports contain
the path but none allows the client, MNT3ERR_NOENT when none contains it or it does
not exist, MNT3ERR_NOTDIR for a non-directory.  Every caller is accepted (AUTH_NONE
too, and from unprivileged ports, as exports(5) ``insecure``); the handle is only a
starting point, every later call is checked by :meth:`Context.resolve`.

The mount list (DUMP) is advisory, as everywhere: it lives in memory only, is lost on
restart and is capped at :data:`MAX_MOUNTS` entries (oldest dropped).  Hosts are
listed by address (no reverse DNS).
"""

from __future__ import annotations

import logging
import threading

from core.errors import CoreError, NotADirectory, NotFound

from .context import Context
from .dispatch import Handler, Program, Request
from .exports import Export, find_export, normalise_path
from .xdr import Packer, Unpacker

log = logging.getLogger("tessera.nfs.mount")

PROG = 100005
MNTPATHLEN = 1024
MNTNAMLEN = 255
MAX_MOUNTS = 10_000
AUTH_SYS = 1

# procedures
NULL, MNT, DUMP, UMNT, UMNTALL, EXPORT, EXPORTALL = range(7)

# mountstat3
MNT3_OK = 0
MNT3ERR_PERM = 1
MNT3ERR_NOENT = 2
MNT3ERR_IO = 5
MNT3ERR_ACCES = 13
MNT3ERR_NOTDIR = 20
MNT3ERR_INVAL = 22
MNT3ERR_NAMETOOLONG = 63
MNT3ERR_NOTSUPP = 10004
MNT3ERR_SERVERFAULT = 10006


class MountList:
    """Who mounted what (DUMP's answer): (host, path) pairs in the order of their latest MNT; thread-safe.

    >>> m = MountList(); m.add("10.0.0.1", "/data"); m.add("10.0.0.2", "/"); m.add("10.0.0.1", "/data")
    >>> m.entries()
    [('10.0.0.2', '/'), ('10.0.0.1', '/data')]
    >>> m.remove("10.0.0.1", "/data"); m.remove_host("10.0.0.2"); m.entries()
    []
    """

    def __init__(self, limit: int = MAX_MOUNTS) -> None:
        self._items: dict[tuple[str, str], None] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def add(self, host: str, path: str) -> None:
        with self._lock:
            self._items.pop((host, path), None)
            self._items[(host, path)] = None
            while len(self._items) > self._limit:
                del self._items[next(iter(self._items))]

    def remove(self, host: str, path: str) -> None:
        with self._lock:
            self._items.pop((host, path), None)

    def remove_host(self, host: str) -> None:
        with self._lock:
            for key in [k for k in self._items if k[0] == host]:
                del self._items[key]

    def entries(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._items)


def _path_arg(args: Unpacker) -> str:
    return args.unpack_string(MNTPATHLEN).decode("utf-8", "surrogateescape")


class Mount:
    """The MOUNT procedures over one :class:`Context`."""

    def __init__(self, ctx: Context, mounts: MountList | None = None) -> None:
        self.ctx = ctx
        self.mounts = mounts if mounts is not None else MountList()

    def mount(self, client: str, raw: str) -> tuple[int, bytes]:
        """(mountstat3, handle) for a MNT of ``raw`` by the peer at ``client``."""
        try:
            path = normalise_path(raw)
        except ValueError as e:
            log.info("MNT %r from %s refused: %s", raw, client, e)
            return MNT3ERR_INVAL if raw.startswith("/") else MNT3ERR_NOENT, b""
        export, contained = find_export(self.ctx.exports(), path, client)
        if export is None:
            log.info("MNT %s from %s refused: %s", path, client,
                     "not an allowed client" if contained else "not exported")
            return (MNT3ERR_ACCES if contained else MNT3ERR_NOENT), b""
        status, fh = self._handle_of(export, path)
        if status == MNT3_OK:
            self.mounts.add(client, path)
            log.info("MNT %s by %s (export %s)", path, client, export.path)
        return status, fh

    def _handle_of(self, export: Export, path: str) -> tuple[int, bytes]:
        try:
            attr = self.ctx.lookup_path(export, path)
        except NotFound:
            return MNT3ERR_NOENT, b""
        except NotADirectory:
            return MNT3ERR_NOTDIR, b""
        except CoreError as e:
            log.warning("MNT %s: %s", path, e)
            return MNT3ERR_IO, b""
        return MNT3_OK, self.ctx.handle(export, attr)

    # -- procedures ------------------------------------------------------------------
    def mnt(self, req: Request, args: Unpacker) -> Packer:
        status, fh = self.mount(req.client[0], _path_arg(args))
        p = Packer()
        p.pack_enum(status)
        if status == MNT3_OK:
            p.pack_opaque(fh)
            p.pack_array([AUTH_SYS], p.pack_int)
        return p

    def dump(self, req: Request, args: Unpacker) -> Packer:
        p = Packer()

        def one(item: tuple[str, str]) -> None:
            p.pack_string(item[0].encode()[:MNTNAMLEN])
            p.pack_string(item[1].encode("utf-8", "surrogateescape"))
        p.pack_list(self.mounts.entries(), one)
        return p

    def umnt(self, req: Request, args: Unpacker) -> Packer:
        raw = _path_arg(args)
        try:
            self.mounts.remove(req.client[0], normalise_path(raw))
        except ValueError:
            pass
        return Packer()

    def umntall(self, req: Request, args: Unpacker) -> Packer:
        self.mounts.remove_host(req.client[0])
        return Packer()

    def export(self, req: Request, args: Unpacker) -> Packer:
        p = Packer()

        def group(name: str) -> None:
            p.pack_string(name.encode())

        def node(e: Export) -> None:
            p.pack_string(e.path.encode("utf-8", "surrogateescape"))
            p.pack_list(e.clients, group)
        p.pack_list(self.ctx.exports(), node)
        return p


# -- the client side (tests, tools): decoders of the v3 results ------------------------------
def pack_dirpath(path: str) -> bytes:
    """MNT/UMNT arguments."""
    p = Packer()
    p.pack_string(path.encode("utf-8", "surrogateescape"))
    return p.data()


def unpack_mountres(body: bytes) -> tuple[int, bytes, list[int]]:
    """A MNT v3 result: (mountstat3, handle, auth flavors); XdrError when malformed.

    >>> p = Packer(); p.pack_enum(MNT3_OK); p.pack_opaque(b"fh"); p.pack_array([1], p.pack_int)
    >>> unpack_mountres(p.data())
    (0, b'fh', [1])
    """
    u = Unpacker(body)
    status = u.unpack_enum()
    fh, flavors = b"", []
    if status == MNT3_OK:
        fh = u.unpack_opaque(64)
        flavors = u.unpack_array(u.unpack_int, 64)
    u.done()
    return status, fh, flavors


def unpack_mountlist(body: bytes) -> list[tuple[str, str]]:
    """A DUMP result: (host, path) pairs."""
    u = Unpacker(body)
    out = u.unpack_list(lambda: (u.unpack_string(MNTNAMLEN).decode(errors="replace"),
                                 u.unpack_string(MNTPATHLEN).decode("utf-8", "surrogateescape")))
    u.done()
    return out


def unpack_exports(body: bytes) -> list[tuple[str, list[str]]]:
    """An EXPORT result: (path, client specs) pairs."""
    u = Unpacker(body)

    def node() -> tuple[str, list[str]]:
        path = u.unpack_string(MNTPATHLEN).decode("utf-8", "surrogateescape")
        return path, u.unpack_list(lambda: u.unpack_string(MNTNAMLEN).decode(errors="replace"))
    out = u.unpack_list(node)
    u.done()
    return out


def _null(req: Request, args: Unpacker) -> Packer:
    return Packer()


def program(ctx: Context, mounts: MountList | None = None) -> Program:
    """The MOUNT program (v1, v2 without MNT; v3 whole) over ``ctx``."""
    m = Mount(ctx, mounts)
    old: dict[int, Handler] = {NULL: _null, DUMP: m.dump, UMNT: m.umnt, UMNTALL: m.umntall, EXPORT: m.export,
                               EXPORTALL: m.export}
    v3: dict[int, Handler] = {NULL: _null, MNT: m.mnt, DUMP: m.dump, UMNT: m.umnt, UMNTALL: m.umntall,
                              EXPORT: m.export}
    return Program(PROG, {1: dict(old), 2: dict(old), 3: v3})

