"""FileSystem's versions, tree-policy and retention calls (mixed into :class:`core.fs.fs.FileSystem`; the trash
can's calls build on these in :mod:`core.fs.trash`).

The rules are in :mod:`core.fs.versions` (what is kept) and :mod:`core.fs.retention` (what may go); this
module is the caller-facing surface, path based because a kept version may have no name left.  Paths are
absolute store paths (``/bucket/key``).  Every call is made with the view's credential:

* listing versions needs search permission on the existing directories of the path;
* reading one is an ordinary read of its inode (:attr:`VersionInfo.ino`), checked by its mode bits/ACL;
* deleting or purging one needs what removing the file needs in its directory (or, when the directory
  is gone too, being its owner, the one who removed it, or the admin) and is refused while it is locked;
* restoring is a write: the caller must be allowed to create (or replace) the file at the destination.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from core.errors import InvalidArgument, NotFound, NotPermitted
from core.fs import acl as A
from core.fs import names, perm, retention, versions
from core.fs import namespace as ns
from core.fs.retention import Retention
from core.fs.types import FILE_TYPES, Attr, Cred
from core.meta.txn import Txn
from core.meta.types import DIR, KEPT, LOCKED, REG, FileType, Inode
from core.meta.vtxn import TreeRow, VersionRow

if TYPE_CHECKING:
    from core.fs.fs import FileSystem
    from core.meta.store import MetaStore

T = TypeVar("T")
UNSET: Any = object()
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One version of a path: the live file (``kind`` 'current'), a noncurrent ``version``, a delete
    ``marker`` or a ``trash`` entry."""

    path: str
    vid: str
    kind: str
    latest: bool        # S3's IsLatest: the live file, or the newest marker when there is none
    ino: int            # read it with the ordinary read calls; 0 for a marker
    type: FileType
    size: int
    uid: int
    mtime_ns: int
    replaced_ns: int    # when it stopped being current (0: it is current)
    by_uid: int         # who replaced or removed it
    by_name: str
    reason: str         # overwrite / truncate / delete / rename / rmdir ('' for the live file)
    expires_ns: int | None
    row: int = 0        # the kept row's id (0 for the live file); orders versions of one path, newest highest


@dataclass(frozen=True, slots=True)
class TreePolicy:
    """The effective policy of a directory, and what the directory itself sets (None = inherited)."""

    path: str
    versioning: str
    trash_days: float
    trash_bytes: int
    lock: dict[str, Any] | None
    lifecycle: list[dict[str, Any]] | None
    own_versioning: str | None
    own_trash_days: float | None
    own_trash_bytes: int | None


def _path(raw: bytes) -> str:
    return "/" + names.decode(raw)


def _raw(path: str) -> bytes:
    parts = names.split_path(path)
    if not parts:
        raise InvalidArgument("the root has no versions")
    return b"/".join(names.encode(p) for p in parts)


def _info(r: VersionRow, latest: bool = False) -> VersionInfo:
    return VersionInfo(_path(r.path), r.vid, r.kind, latest, r.ino, FILE_TYPES[r.type], r.size, r.uid, r.mtime,
                       r.replaced, r.by_uid, r.by_name, r.reason, r.expires, r.id)


class VersionOps:
    if TYPE_CHECKING:
        cred: Cred
        _meta: MetaStore

        def _write(self, fn: Callable[[Txn], T]) -> T: ...
        def clone(self, parent: int, name: str, sources: list[int], *, mode: int = 0o644, uid: int | None = None,
                  gid: int | None = None, xattrs: dict[str, bytes] | None = None, exclusive: bool = False,
                  mtime_ns: int | None = None, keep_locked: bool = False) -> Attr: ...
        def makedirs(self, path: str, mode: int = 0o755, uid: int | None = None,
                     gid: int | None = None) -> Attr: ...
        def reading_versions(self) -> FileSystem: ...

    # -- lookups ----------------------------------------------------------------------
    def _live(self, t: Txn, raw: bytes, *, check: bool = True) -> tuple[Inode | None, Inode | None, bytes]:
        """(the parent directory if it exists, the live inode at the path if any, the last name); search
        permission on each existing directory."""
        parts = raw.split(b"/")
        d = ns.get(t, ns.ROOT)
        for p in parts[:-1]:
            if check:
                perm.may_search(t, self.cred, d)
            hit = t.lookup(d.ino, p)
            if hit is None or hit[1] != DIR:
                return None, None, parts[-1]
            d = ns.get(t, hit[0])
        if check:
            perm.may_search(t, self.cred, d)
        hit = t.lookup(d.ino, parts[-1])
        return d, (None if hit is None else ns.get(t, hit[0])), parts[-1]

    def _current(self, t: Txn, raw: bytes, node: Inode) -> VersionInfo:
        return VersionInfo(_path(raw), versions.vid_of(t, node), "current", True, node.ino, FILE_TYPES[node.type],
                           node.size, node.uid, node.mtime, 0, 0, "", "", None, 0)

    def versions(self, path: str) -> list[VersionInfo]:
        """Every version of ``path``, newest first: the live file (if any), then the kept rows."""
        raw = _raw(path)
        with self._meta.read() as t:
            _, node, _ = self._live(t, raw)
            out = [self._current(t, raw, node)] if node is not None and node.type != DIR else []
            rows = t.versions_at(raw)
        latest_marker = not out and bool(rows) and rows[0].kind == "marker"
        out += [_info(r, latest_marker and i == 0) for i, r in enumerate(rows)]
        return out

    def version(self, path: str, vid: str) -> VersionInfo:
        """The version ``vid`` of ``path`` (the live file's id, or a kept row's); :class:`NotFound` if none."""
        for v in self.versions(path):
            if v.vid == vid and v.kind != "trash":
                return v
        for v in self.versions(path):
            if v.vid == vid:
                return v
        raise NotFound(f"no version {vid!r} of {path}")

    def version_id(self, ino: int) -> str:
        """The version id of a live file ('null' when it was made with versioning off or suspended)."""
        with self._meta.read() as t:
            return versions.vid_of(t, ns.get(t, ino))

    def list_versions(self, prefix: str, *, after: tuple[str, int] | None = None, limit: int = 1000,
                      kinds: tuple[str, ...] = ("version", "marker", "trash")) -> list[VersionInfo]:
        """Kept rows whose path starts with ``prefix`` (a path prefix, not only whole components), by path
        then newest first, strictly after ``after`` = (path, row).  The live files are not included (the
        caller merges its own listing of them)."""
        lo = os.fsencode(prefix.lstrip("/"))
        hi = _next_prefix(lo)
        aft = None if after is None else (os.fsencode(after[0].lstrip("/")), after[1])
        with self._meta.read() as t:
            rows = t.versions_under(lo, hi, aft, limit, kinds)
        return [_info(r) for r in rows]

    # -- tree policies ------------------------------------------------------------------
    def tree_policy(self, ino: int) -> TreePolicy:
        with self._meta.read() as t:
            ns.get_dir(t, ino)
            pol = versions.policy(t, ino)
            own = versions.tree_row(t, ino)
            lifecycle = None
            for i in (pol.chain if pol else [ino]):
                tr = t.trees_of([i]).get(i)
                if tr is not None and tr.lifecycle is not None:
                    lifecycle = json.loads(tr.lifecycle)
                    break
        if pol is None:
            raise InvalidArgument("no path reaches this directory")
        return TreePolicy("/" + names.decode(pol.path), pol.versioning, pol.trash_days, pol.trash_bytes,
                          json.loads(pol.lock) if pol.lock else None, lifecycle, own.versioning, own.trash_days,
                          own.trash_bytes)

    def set_tree_policy(self, ino: int, *, versioning: str | None = UNSET, trash_days: float | None = UNSET,
                        trash_bytes: int | None = UNSET, lock: dict[str, Any] | None = UNSET,
                        lifecycle: list[dict[str, Any]] | None = UNSET) -> TreePolicy:
        """Set this directory's own policy fields (None = inherit again).  Versioning, once enabled, can only
        be suspended (as S3); the directory's owner or the admin may change it."""
        if versioning not in (UNSET, None):
            versions.check_state(versioning)
        if trash_days not in (UNSET, None) and not 0 <= float(trash_days) <= 36500:
            raise InvalidArgument("trash days must be between 0 and 36500")
        if trash_bytes not in (UNSET, None) and int(trash_bytes) < 0:
            raise InvalidArgument("trash bytes must not be negative")

        def apply(t: Txn) -> None:
            d = ns.get_dir(t, ino)
            if not self.cred.admin and self.cred.uid != d.uid:
                raise NotPermitted("only the directory's owner may change its policy")
            row = versions.tree_row(t, ino)
            if versioning is not UNSET:
                if row.versioning in ("enabled", "suspended") and versioning in (None, "off"):
                    raise InvalidArgument("versioning once enabled can only be suspended")
                row.versioning = versioning
            if trash_days is not UNSET:
                row.trash_days = None if trash_days is None else float(trash_days)
            if trash_bytes is not UNSET:
                row.trash_bytes = None if trash_bytes is None else int(trash_bytes)
            if lock is not UNSET:
                row.lock = None if lock is None else json.dumps(lock, sort_keys=True)
            if lifecycle is not UNSET:
                row.lifecycle = None if lifecycle is None else json.dumps(lifecycle, sort_keys=True)
            t.set_tree(row, time.time_ns())
        self._write(apply)
        return self.tree_policy(ino)

    def set_trash_default(self, days: float, max_bytes: int = 0) -> None:
        """The store-wide trash policy (the config's ``trash:``); admin only."""
        if not self.cred.admin:
            raise NotPermitted("the store's trash policy is for the admin")
        if not 0 <= days <= 36500 or max_bytes < 0:
            raise InvalidArgument("trash days must be between 0 and 36500 and bytes not negative")

        def apply(t: Txn) -> None:
            t.set_info("trash_days", repr(float(days)))
            t.set_info("trash_bytes", str(int(max_bytes)))
        self._write(apply)

    def trees(self) -> list[tuple[str, TreeRow]]:
        """Every directory with a policy of its own: (path, its row)."""
        with self._meta.read() as t:
            out = []
            for tr in t.all_trees():
                pol = versions.policy(t, tr.ino) if t.inode(tr.ino) is not None else None
                if pol is not None:
                    out.append(("/" + names.decode(pol.path), tr))
        return out

    # -- deleting, purging, restoring ---------------------------------------------------------
    def _may_drop(self, t: Txn, d: Inode | None, node: Inode | None, row: VersionRow | None) -> None:
        c = self.cred
        if c.admin:
            return
        if d is not None and node is not None:
            perm.may_remove(t, c, d, node)
            return
        if d is not None:
            perm.need(t, c, d, A.DELETE_CHILD | A.WRITE_DATA, "remove a version here")
            return
        if row is None or c.uid not in (row.uid, row.by_uid):
            raise NotPermitted("only the owner, the one who removed it, or the admin may purge this version")

    def delete_version(self, path: str, vid: str, *, bypass_governance: bool = False) -> VersionInfo:
        """Delete one version for good (S3 DELETE with versionId): the live file if ``vid`` is its id (the
        newest kept version then becomes current again, as S3 does), else that row.  Refused while locked
        (a GOVERNANCE retention gives way to the admin with ``bypass_governance``)."""
        raw = _raw(path)
        bypass = self.cred if bypass_governance else None

        def apply(t: Txn) -> VersionInfo:
            d, node, name = self._live(t, raw)
            if node is not None and node.type != DIR and versions.vid_of(t, node) == vid:
                info = self._current(t, raw, node)
                assert d is not None
                self._may_drop(t, d, node, None)
                retention.check(t, node, "delete this version", bypass=bypass)
                ts = time.time_ns()
                t.remove_dentry(d.ino, name, ts)
                node.nlink -= 1
                if node.nlink <= 0:
                    t.delete_inode(node.ino)
                else:
                    t.update_inode(node)
                d.mtime = d.ctime = ts
                t.update_inode(d)
                self._settle(t, raw, d, name)
                return info
            row = t.version_by_vid(raw, vid)
            if row is None:
                raise NotFound(f"no version {vid!r} of {path}")
            kept = t.inode(row.ino) if row.ino else None
            self._may_drop(t, d, kept, row)
            if kept is not None:
                retention.check(t, kept, "delete this version", bypass=bypass)
            versions.purge_row(t, row)
            if node is None and d is not None:
                self._settle(t, raw, d, name)
            return _info(row)
        return self._write(apply)

    def add_marker(self, path: str) -> VersionInfo | None:
        """S3 DELETE of a key with no live file in a versioned tree: a delete marker on top all the same (a
        fresh id when enabled; suspended: the ``null`` marker, in place of the path's ``null`` row).  None when
        the path has a live file, its directory is gone, or the tree is not versioned."""
        raw = _raw(path)

        def apply(t: Txn) -> VersionInfo | None:
            d, node, name = self._live(t, raw)
            if d is None or node is not None:
                return None
            pol = versions.policy(t, d.ino)
            if pol is None or pol.versioning == "off":
                return None
            self._may_drop(t, d, None, None)
            return _info(versions.add_marker(t, self.cred, d.ino, name, pol, time.time_ns()), True)
        return self._write(apply)

    def _settle(self, t: Txn, raw: bytes, d: Inode, name: bytes) -> None:
        """No live file at the path: if its newest kept row is a version (not a delete marker), it becomes
        current again (S3's rule when the current version or a delete marker is deleted)."""
        rows = [r for r in t.versions_at(raw) if r.kind in ("version", "marker")]
        if not rows or rows[0].kind != "version" or t.lookup(d.ino, name) is not None:
            return
        self._relink(t, rows[0], d, name)

    def _relink(self, t: Txn, row: VersionRow, d: Inode, name: bytes) -> Inode:
        node = ns.get(t, row.ino, kept=True)
        ts = time.time_ns()
        t.drop_version_row(row.id)
        node.flags &= ~KEPT
        node.nlink = 2 if node.type == DIR else 1
        node.ctime = ts
        if node.type == DIR:
            node.parent = d.ino
        t.update_inode(node)
        t.add_dentry(d.ino, name, node.ino, node.type)
        d.mtime = d.ctime = ts
        if node.type == DIR:
            d.nlink += 1
        t.update_inode(d)
        return node

    def purge_versions(self, path: str, vids: list[str] | None = None, *, bypass_governance: bool = False,
                       rows: list[int] | None = None) -> int:
        """Delete kept versions of ``path`` for good (all noncurrent ones, or those in ``vids``, or the kept rows
        ``rows`` (:attr:`VersionInfo.row`)); locked ones are refused.  The live file stays.  Returns how many went."""
        raw = _raw(path)
        bypass = self.cred if bypass_governance else None

        def apply(t: Txn) -> int:
            d, _, _ = self._live(t, raw)
            n = 0
            for row in t.versions_at(raw):
                if (vids is not None and row.vid not in vids) or (rows is not None and row.id not in rows):
                    continue
                kept = t.inode(row.ino) if row.ino else None
                self._may_drop(t, d, kept, row)
                if kept is not None:
                    retention.check(t, kept, "purge this version", bypass=bypass)
                versions.purge_row(t, row)
                n += 1
            return n
        return self._write(apply)

    def restore_version(self, path: str, vid: str | None = None, *, to: str | None = None) -> Attr:
        """Make a kept version current again at ``path`` (or ``to``): its content is shared into a new live
        file (no data copy) and what was live is kept as the policy says.  ``vid`` None: the newest kept
        version.  Needs read access to the version and the right to create or replace the destination."""
        raw = _raw(path)
        with self._meta.read() as t:
            self._live(t, raw)
            rows = [r for r in t.versions_at(raw) if r.ino and (vid is None or r.vid == vid)]
            if not rows:
                raise NotFound(f"no kept version {vid or ''} of {path}".replace("  ", " "))
            row = rows[0]
            src = ns.get(t, row.ino, kept=True)
            if src.type != REG:
                raise InvalidArgument("only a file's versions can be restored this way (use trash restore)")
            perm.need(t, self.cred, src, A.READ_DATA, "read the version")
            xattrs = {k: v for k, v in t.xattr_values(src.ino, t.xattrs(src.ino)).items()
                      if not k.startswith(A.RESERVED_PREFIX)}
        dest = to or path
        parts = names.split_path(dest)
        parent = self.makedirs("/" + "/".join(parts[:-1])) if len(parts) > 1 else None
        pino = parent.ino if parent is not None else ns.ROOT
        return self._restore_clone(pino, parts[-1], src, xattrs)

    def _restore_clone(self, parent: int, name: str, src: Inode, xattrs: dict[str, bytes]) -> Attr:
        uid = None if not self.cred.admin else src.uid
        gid = None if not self.cred.admin else src.gid
        return self.reading_versions().clone(parent, name, [src.ino], mode=src.mode, uid=uid, gid=gid, xattrs=xattrs,
                          mtime_ns=src.mtime)

    def version_usage(self, tree: str = "/") -> dict[str, tuple[int, int]]:
        """What kept content holds under ``tree``: kind ('version', 'marker', 'trash') -> (count, bytes).
        Bytes are logical sizes (content shared by several versions counts in each)."""
        lo = _raw(tree) + b"/" if tree.strip("/") else b""
        with self._meta.read() as t:
            return {k: (n, b) for k, n, b in t.version_totals(lo, _next_prefix(lo))}

    # -- retention ---------------------------------------------------------------------
    def _target(self, t: Txn, raw: bytes, vid: str | None) -> Inode:
        _, node, _ = self._live(t, raw)
        if node is not None and (vid is None or versions.vid_of(t, node) == vid):
            return node
        if vid is None:
            raise NotFound(f"/{names.decode(raw)} not found")
        row = t.version_by_vid(raw, vid)
        if row is None or not row.ino:
            raise NotFound(f"no version {vid!r} of /{names.decode(raw)}")
        return ns.get(t, row.ino, kept=True)

    def retention(self, path: str, vid: str | None = None) -> Retention:
        raw = _raw(path)
        with self._meta.read() as t:
            return retention.get(t, self._target(t, raw, vid))

    def set_retention(self, path: str, vid: str | None, mode: str | None, until_ns: int = 0, *,
                      bypass_governance: bool = False) -> Retention:
        """Set a retention on a version (the live file when ``vid`` is None); see :mod:`core.fs.retention`."""
        raw = _raw(path)

        def apply(t: Txn) -> Retention:
            node = self._target(t, raw, vid)
            retention.set_retention(t, self.cred, node, mode, until_ns, bypass=bypass_governance)
            return retention.get(t, node)
        return self._write(apply)

    def set_legal_hold(self, path: str, vid: str | None, on: bool) -> Retention:
        raw = _raw(path)

        def apply(t: Txn) -> Retention:
            node = self._target(t, raw, vid)
            retention.set_hold(t, self.cred, node, on)
            return retention.get(t, node)
        return self._write(apply)

    def locked(self, ino: int) -> bool:
        """Whether a file's content is under retention or a legal hold now."""
        with self._meta.read() as t:
            node = ns.get(t, ino, kept=True)  # a kept version's lock too (it says nothing about its content)
            return bool(node.flags & LOCKED) and retention.get(t, node).locked()


def _next_prefix(lo: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``lo`` (None: no bound)."""
    b = bytearray(lo)
    while b and b[-1] == 0xFF:
        b.pop()
    if not b:
        return None
    b[-1] += 1
    return bytes(b)


__all__ = ["UNSET", "TreePolicy", "VersionInfo", "VersionOps"]
