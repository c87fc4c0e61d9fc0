"""The per-server context every NFS-side program shares: exports, credentials, handles.

One :class:`Context` per server.  Every NFS procedure starts with :meth:`Context.resolve`,
which turns the client's file handle into (the caller's file-system view, the export,
the inode) or the nfsstat3 that refuses it, in this order:

1. a handle that does not parse or fails its HMAC (``core.fs`` handle format v1) is
   NFS3ERR_BADHANDLE;
2. a handle whose export id is not among the *current* exports (removed, renamed) is
   NFS3ERR_STALE; so is one whose inode or generation is gone;
3. a peer whose address is not one of the export's clients is NFS3ERR_ACCES;
4. a mutating call (``write=True``) on a ``ro`` export is NFS3ERR_ROFS.

Exports change without a restart: the ``exports`` callable is re-read at most every
``refresh_s`` seconds (1 s), so a removed export's handles go Stale and a client taken
out of an export is refused within that time.

Credentials (:meth:`Context.cred`), the squash table (knfsd's rules)::

    squash   AUTH_SYS uid 0            AUTH_SYS uid u > 0        AUTH_NONE
    none     root (admin)              u, its gid and gids       anon
    root     anon (gid 0 -> anongid)   u, its gid and gids       anon
    all      anon                      anon                      anon

``root`` squash also maps gid 0 in the primary and supplementary groups to ``anongid``.
An effective uid of 0 is root: NFS root on a POSIX server bypasses mode bits and ACLs,
which in core.fs terms is ``Cred.admin``.  No other uid is ever admin over NFS, even one
that belongs to an admin user of ``core.identity``: AUTH_SYS is the client's unverified
claim, so only the export's squash setting decides who is root.  (``anonuid: 0`` makes
the anonymous caller root, as it does on Linux.)  The groups are the ones the client sent
(AUTH_SYS carries at most 16), as knfsd without ``--manage-gids``.

Not checked: whether the inode of a valid handle still lies below its export's root
(a file moved out of an export stays reachable through handles issued before; Linux's
default ``no_subtree_check`` behaves the same).  Handles are only ever issued for inodes
reached from the export root, and ``..`` stops at :meth:`Context.root_ino`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.errors import BadHandle, CoreError, NotADirectory, NotFound, Stale
from core.fs import Attr, Cred, FileSystem, Volume
from core.identity import Identity

from .dispatch import AuthSys, Request
from .errors import NFS3ERR_ACCES, NFS3ERR_BADHANDLE, NFS3ERR_ROFS, NFS3ERR_STALE, NfsError
from .exports import Export

log = logging.getLogger("tessera.nfs")

REFRESH_S = 1.0
_CRED_CACHE = 4096


def squash(export: Export, auth: AuthSys | None) -> tuple[int, int, frozenset[int]]:
    """(uid, gid, groups) after the export's squash rule (see the module text).

    >>> e = Export.build("/", ["*"], squash="root", anonuid=99, anongid=98)
    >>> a = AuthSys(0, "h", 0, 0, (0, 5))
    >>> squash(e, a)
    (99, 98, frozenset({98, 5}))
    >>> squash(e, AuthSys(0, "h", 1000, 100, (100, 0)))
    (1000, 100, frozenset({98, 100}))
    """
    anon = (export.anonuid, export.anongid, frozenset({export.anongid}))
    if auth is None or export.squash == "all":
        return anon
    uid, gid, gids = auth.uid, auth.gid, auth.gids
    if export.squash == "root":
        uid = export.anonuid if uid == 0 else uid
        gid = export.anongid if gid == 0 else gid
        gids = tuple(export.anongid if g == 0 else g for g in gids)
    return uid, gid, frozenset(gids) | {gid}


@dataclass(frozen=True)
class _State:
    """One reading of the exports, with what is derived from it."""

    exports: tuple[Export, ...]
    by_id: dict[int, Export]
    read_at: float
    roots: dict[str, tuple[int, float]] = field(default_factory=dict)  # path -> (ino, resolved at)


class Context:
    """Exports, credentials and handles for one NFS server (shared by NFS, MOUNT and NLM)."""

    def __init__(self, volume: Volume, exports: Callable[[], Sequence[Export]], *,
                 refresh_s: float = REFRESH_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.volume = volume
        self.fs: FileSystem = volume.fs  # the admin view: bookkeeping only, never a client's call
        self.identity: Identity = volume.identity
        self._source = exports
        self._refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._creds: dict[tuple[Export, AuthSys | None], Cred] = {}
        self._views: dict[Cred, FileSystem] = {}
        self._state = self._read(None)

    # -- exports ----------------------------------------------------------------------
    def exports(self) -> Sequence[Export]:
        """The current exports (re-read from the source at most every ``refresh_s``)."""
        return self._current().exports

    def export_by_id(self, export_id: int) -> Export | None:
        return self._current().by_id.get(export_id)

    def _current(self) -> _State:
        st = self._state
        if self._clock() - st.read_at < self._refresh_s:
            return st
        with self._lock:
            if self._state is st:
                self._state = self._read(st)
            return self._state

    def _read(self, old: _State | None) -> _State:
        now = self._clock()
        try:
            fresh = tuple(self._source())
        except Exception:
            if old is None:
                raise
            log.exception("reading the NFS exports failed; keeping the previous ones")
            return _State(old.exports, old.by_id, now, old.roots)
        if old is not None and fresh == old.exports:
            self._creds.clear()  # user names may have changed; keep the cache bounded in time
            return _State(old.exports, old.by_id, now, old.roots)
        by_id: dict[int, Export] = {}
        for e in fresh:
            if e.id in by_id:
                log.error("NFS export %s ignored: its id collides with export %s", e.path, by_id[e.id].path)
                continue
            by_id[e.id] = e
        if old is not None:
            log.info("NFS exports changed: %s", ", ".join(e.path for e in by_id.values()) or "none")
        self._creds.clear()
        return _State(tuple(by_id.values()), by_id, now)

    # -- credentials ------------------------------------------------------------------
    def cred(self, export: Export, auth: AuthSys | None) -> Cred:
        """The core.fs credential of a caller of ``export`` (squash applied; see the module text)."""
        key = (export, auth)
        c = self._creds.get(key)
        if c is None:
            if len(self._creds) >= _CRED_CACHE:
                self._creds.clear()
            uid, gid, groups = squash(export, auth)
            c = self._creds[key] = Cred(uid, gid, groups, admin=uid == 0, name=self._name(uid))
        return c

    def _name(self, uid: int) -> str:
        """The user's name for logs and audit: the identity's when the uid is known, else ``uid:N``."""
        try:
            user = self.identity.user_by_uid(uid)
        except CoreError:
            user = None
        return user.name if user is not None else f"uid:{uid}"

    # -- handles ----------------------------------------------------------------------
    def handle(self, export: Export, attr: Attr) -> bytes:
        """The file handle of ``attr`` under ``export``."""
        return self.fs.make_handle(export.id, attr)

    def resolve(self, req: Request, fh: bytes, *, write: bool = False) -> tuple[FileSystem, Export, int]:
        """(the caller's view, the export, the inode) of a handle, or the NfsError refusing it."""
        view, export, attr = self.resolve_attr(req, fh, write=write)
        return view, export, attr.ino

    def resolve_attr(self, req: Request, fh: bytes, *, write: bool = False) -> tuple[FileSystem, Export, Attr]:
        """:meth:`resolve` with the inode's attributes, read by the validity check itself (GETATTR and
        every procedure that returns pre- or post-op attributes can use them instead of reading again)."""
        try:
            export_id, ino, gen = self.fs.parse_handle(bytes(fh))
        except BadHandle as e:
            raise NfsError(NFS3ERR_BADHANDLE, str(e)) from None
        export = self._current().by_id.get(export_id)
        if export is None:
            raise NfsError(NFS3ERR_STALE, "the handle's export is no longer exported")
        if not export.allows(req.client[0]):
            raise NfsError(NFS3ERR_ACCES, f"{req.client[0]} is not a client of export {export.path}")
        try:
            attr = self.fs.getattr(ino, gen)
        except (Stale, NotFound):
            raise NfsError(NFS3ERR_STALE, f"inode {ino} generation {gen} no longer exists") from None
        if write and export.read_only:
            raise NfsError(NFS3ERR_ROFS, f"export {export.path} is read-only")
        return self.view(self.cred(export, req.auth)), export, attr

    def view(self, cred: Cred) -> FileSystem:
        """The file system as ``cred`` (views are cached: a client sends the same credential every call)."""
        v = self._views.get(cred)
        if v is None:
            if len(self._views) >= _CRED_CACHE:
                self._views.clear()
            v = self._views[cred] = self.fs.as_user(cred)
        return v

    def root_ino(self, export: Export) -> int:
        """The inode of the export's directory (resolved as the admin; cached for ``refresh_s``).

        NotFound / NotADirectory when the path is missing or not a directory.
        """
        st = self._current()
        now = self._clock()
        hit = st.roots.get(export.path)
        if hit is not None and now - hit[1] < self._refresh_s:
            return hit[0]
        attr = self.fs.resolve(export.path)
        if not attr.is_dir:
            raise NotADirectory(f"export {export.path} is not a directory")
        st.roots[export.path] = (attr.ino, now)
        return attr.ino

    def lookup_path(self, export: Export, path: str) -> Attr:
        """The directory at ``path`` (inside ``export``), walked as the admin without following symlinks."""
        if not export.contains(path):
            raise NotFound(f"{path} is outside export {export.path}")
        self.root_ino(export)  # the export's own directory must exist
        attr = self.fs.resolve(path)
        if not attr.is_dir:
            raise NotADirectory(f"{path} is not a directory")
        return attr
