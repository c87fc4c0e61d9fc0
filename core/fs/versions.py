"""Versions and the trash can: what core.fs keeps when content is replaced or removed.

One mechanism for every protocol.  Each directory tree (a bucket, an export, a share, any directory)
has a *policy*: a versioning state (``off``/``enabled``/``suspended``, as S3) and a trash policy (keep
for N days and/or up to N bytes; 0 days = no trash).  A tree's own settings live in the ``trees`` table;
unset fields are inherited from the nearest ancestor that sets them, then from the store default
(``info`` ``trash_days``/``trash_bytes``: 1 day for new stores, as JuiceFS).

When content stops being current — an overwrite (a whole-file replace such as S3 PUT), a truncate to
zero, a delete, a rename over it, an rmdir — :func:`retire` decides, in the same transaction:

=============  =====================================================================================
versioning     what is kept
=============  =====================================================================================
enabled        the old content as a noncurrent ``version`` (its version id, kept until purged); a
               delete also adds a ``marker`` (a delete marker, S3's) with a fresh id
suspended      a non-null version as above; the ``null`` one goes to the trash (or away with no trash)
               and so does any older noncurrent ``null`` row of that path; a delete adds a ``null``
               marker
off            the old content as ``trash`` (expires after trash_days), or nothing with no trash
=============  =====================================================================================

Keeping is metadata only: the inode keeps its slices (and xattrs) and loses its name; a ``versions``
row records where it was, when, by whom, and why.  A truncate to zero first moves the slices to a fresh
inode (the live file keeps its number, so open handles stay valid).  Segment GC counts slice references,
so data is freed only when no version refers to it any more.

Version ids: the live file's is the reserved xattr ``system.tessera.vid``, set when a file is created or
replaced in a tree with versioning enabled; a file without one is the ``null`` version (it was made while
versioning was off or suspended).  Ids sort by creation time.

Paths are recorded from the store root at the time (``b'/'``-joined, no leading slash).  A version stays
at the path it had: renaming a directory later does not move its files' old versions.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field

from core.errors import InvalidArgument
from core.fs import retention
from core.fs.types import Cred
from core.meta.txn import Txn
from core.meta.types import DIR, KEPT, LNK, LOCKED, REG, Inode
from core.meta.vtxn import TreeRow, VersionRow

VID_XATTR = "system.tessera.vid"
NULL = "null"
STATES = ("off", "enabled", "suspended")
DAY_NS = 86400 * 1_000_000_000
KEPT_TYPES = (REG, LNK, DIR)


@dataclass(slots=True)
class Policy:
    """The effective policy of one directory."""

    path: bytes                 # the directory's path from the root (b'' = the root)
    versioning: str = "off"
    versioning_tree: int = 0    # the tree that set it (0 = the store default)
    trash_days: float = 0.0
    trash_bytes: int = 0
    trash_tree: int = 0
    lock: str | None = None     # object-lock configuration (JSON) of the nearest tree that has one
    lock_tree: int = 0
    chain: list[int] = field(default_factory=list)  # the directory and its ancestors, nearest first

    @property
    def keeps(self) -> bool:
        return self.versioning != "off" or self.trash_days > 0


def new_vid(ts: int | None = None) -> str:
    """A fresh version id: sortable by time, unique (48 random bits)."""
    return f"{ts or time.time_ns():016x}{secrets.randbits(48):012x}"


def join(parent: bytes, name: bytes) -> bytes:
    return parent + b"/" + name if parent else name


def policy(t: Txn, dir_ino: int) -> Policy | None:
    """The effective policy of directory ``dir_ino``; None when no path reaches it (a system directory).
    Two statements, remembered for the rest of the operation (``t.memo``)."""
    key = ("policy", dir_ino)
    if key in t.memo:
        return t.memo[key]  # type: ignore[no-any-return]
    chain, trees, info = t.ancestry_trees(dir_ino)
    if chain is None:
        t.memo[key] = None
        return None
    inos = [i for i, _, _ in chain] + [1]
    pol = Policy(b"/".join(n for _, _, n in reversed(chain)), chain=inos)
    got_v = got_d = got_b = got_l = False
    for i in inos:
        tr = trees.get(i)
        if tr is None:
            continue
        if not got_v and tr.versioning is not None:
            pol.versioning, pol.versioning_tree, got_v = tr.versioning, i, True
        if not got_d and tr.trash_days is not None:
            pol.trash_days, pol.trash_tree, got_d = tr.trash_days, i, True
        if not got_b and tr.trash_bytes is not None:
            pol.trash_bytes, got_b = tr.trash_bytes, True
        if not got_l and tr.lock is not None:
            pol.lock, pol.lock_tree, got_l = tr.lock, i, True
    if not got_d:
        pol.trash_days = float(info.get("trash_days") or 0)
    if not got_b:
        pol.trash_bytes = int(info.get("trash_bytes") or 0)
    t.memo[key] = pol
    return pol


def tree_row(t: Txn, ino: int) -> TreeRow:
    return t.trees_of([ino]).get(ino) or TreeRow(ino, None, None, None, None, None)


def vid_of(t: Txn, node: Inode) -> str:
    v = t.xattr(node.ino, VID_XATTR)
    return NULL if v is None else v.decode()


def stamp(t: Txn, parent: int, node: Inode, pol: Policy | None = None) -> str:
    """Give a file that just became current under ``parent`` its version id (enabled trees only)."""
    if node.type != REG:
        return NULL
    if pol is None:
        if not t.any_versioned_tree():
            return NULL
        pol = policy(t, parent)
    if pol is None or pol.versioning != "enabled":
        t.remove_xattr(node.ino, VID_XATTR)
        return NULL
    vid = new_vid()
    t.set_xattr(node.ino, VID_XATTR, vid.encode())
    return vid


def _row(pol: Policy, name: bytes, node: Inode | None, vid: str, kind: str, reason: str, cred: Cred, ts: int,
         parent: int) -> VersionRow:
    expires = ts + round(pol.trash_days * DAY_NS) if kind == "trash" else None
    tree = pol.trash_tree if kind == "trash" else pol.versioning_tree
    if node is None:
        return VersionRow(0, join(pol.path, name), vid, 0, kind, reason, tree, parent, REG, 0, cred.uid, ts, ts,
                          cred.uid, cred.name, expires)
    return VersionRow(0, join(pol.path, name), vid, node.ino, kind, reason, tree, parent, node.type, node.size,
                      node.uid, node.mtime, ts, cred.uid, cred.name, expires)


def purge_row(t: Txn, row: VersionRow) -> None:
    """Forget a kept row and its inode (its slices go, so GC may free the data)."""
    t.drop_version_row(row.id)
    if row.ino and t.lookup_any_name(row.ino) is None:  # one row per kept inode (a relink drops its row)
        t.delete_inode(row.ino)


def _drop_null(t: Txn, pol: Policy, path: bytes, cred: Cred, ts: int) -> None:
    """Suspended versioning: the path's noncurrent ``null`` version or marker makes way (to the trash)."""
    for r in t.versions_at(path):
        if r.vid != NULL or r.kind == "trash":
            continue
        if r.kind == "marker" or pol.trash_days <= 0:
            purge_row(t, r)
        else:
            t.drop_version_row(r.id)
            t.add_version(VersionRow(0, r.path, r.vid, r.ino, "trash", r.reason, pol.trash_tree, r.parent,
                                     r.type, r.size, r.uid, r.mtime, ts, cred.uid, cred.name,
                                     ts + round(pol.trash_days * DAY_NS)))


def retire(t: Txn, cred: Cred, parent: int, name: bytes, node: Inode, reason: str, ts: int, *,
           keep_locked: bool = False, pol: Policy | None = None) -> bool:
    """``node`` stops being current at ``parent/name`` (its last name went, or ``reason`` 'truncate' moved its
    content to it).  Keep it as the tree's policy says; True if kept (the caller must not delete it).

    A locked node (retention, legal hold) may go only when versioning keeps it and the caller asked
    (``keep_locked``, S3's semantics); otherwise :class:`core.errors.Locked`."""
    if node.flags & LOCKED:
        p = pol or policy(t, parent)
        if not (keep_locked and p is not None and p.versioning == "enabled"):
            retention.check(t, node, "remove or replace it")
        pol = p
    if node.type not in KEPT_TYPES:
        return False
    if pol is None:
        pol = policy(t, parent)
    if pol is None or not pol.keeps:
        return False
    path = join(pol.path, name)
    deleting = reason in ("delete", "rmdir")
    if node.type == DIR:  # directories are not versions: only the trash keeps them (to restore a tree)
        if pol.trash_days <= 0:
            return False
        t.add_version(_row(pol, name, node, NULL, "trash", reason, cred, ts, parent))
        return True
    vid = vid_of(t, node) if t.any_versioned_tree() else NULL  # no versioned tree: no file has an id
    kept = True
    if pol.versioning == "enabled":
        t.add_version(_row(pol, name, node, vid, "version", reason, cred, ts, parent))
    elif pol.versioning == "suspended":
        _drop_null(t, pol, path, cred, ts)
        if vid != NULL:
            t.add_version(_row(pol, name, node, vid, "version", reason, cred, ts, parent))
        elif pol.trash_days > 0:
            t.add_version(_row(pol, name, node, vid, "trash", reason, cred, ts, parent))
        else:
            kept = False
    else:
        t.add_version(_row(pol, name, node, vid, "trash", reason, cred, ts, parent))
    if deleting and pol.versioning != "off":
        marker = new_vid(ts) if pol.versioning == "enabled" else NULL
        t.add_version(_row(pol, name, None, marker, "marker", reason, cred, ts + 1, parent))
    if kept:
        node.nlink = 0
        node.flags |= KEPT
        node.ctime = ts
        t.update_inode(node)
    return kept


def add_marker(t: Txn, cred: Cred, parent: int, name: bytes, pol: Policy, ts: int) -> VersionRow:
    """A delete marker at ``parent/name``, which has no live file (S3 DELETE of a deleted key)."""
    if pol.versioning == "suspended":
        _drop_null(t, pol, join(pol.path, name), cred, ts)
    row = _row(pol, name, None, new_vid(ts) if pol.versioning == "enabled" else NULL, "marker", "delete", cred, ts,
               parent)
    t.add_version(row)
    return row


def retire_content(t: Txn, cred: Cred, node: Inode, ts: int) -> None:
    """A truncate to zero of a non-empty file: keep its content as a version (moved to a fresh inode with a
    copy of its attributes and xattrs; the live file keeps its number and gets a new version id)."""
    retention.check(t, node, "truncate it")
    if node.size == 0:
        return
    where = t.lookup_any_name(node.ino)
    if where is None:
        return
    parent, name = where
    pol = policy(t, parent)
    if pol is None or not pol.keeps:
        return
    if pol.versioning == "off" and pol.trash_days <= 0:
        return
    if pol.versioning == "suspended" and vid_of(t, node) == NULL and pol.trash_days <= 0:
        _drop_null(t, pol, join(pol.path, name), cred, ts)
        return
    old = Inode(0, node.gen, REG, node.mode, node.uid, node.gid, 0, node.size, 0, node.atime, node.mtime,
                ts, node.btime, 0, None, node.inline_data, node.flags, node.dos)
    t.insert_inode(old)
    t.move_slices(node.ino, old.ino)
    t.copy_xattrs(node.ino, old.ino)
    node.inline_data = None
    if not retire(t, cred, parent, name, old, "truncate", ts, pol=pol):
        t.delete_inode(old.ino)
    stamp(t, parent, node, pol)


def default_retention(t: Txn, parent: int, node: Inode) -> None:
    """A new whole file (S3 PUT, Complete, copy) in a tree whose object-lock configuration has a default
    retention (``{"mode": ..., "days": N}`` or ``"years"``) gets it."""
    if node.type != REG or not t.any_lock_tree():
        return
    pol = policy(t, parent)
    if pol is None or not pol.lock:
        return
    cfg = json.loads(pol.lock)
    mode, days = cfg.get("mode"), float(cfg.get("days") or 0) + 365 * float(cfg.get("years") or 0)
    if mode and days > 0:
        until = node.mtime + int(days * DAY_NS)
        t.set_xattr(node.ino, retention.RETENTION_XATTR, json.dumps({"mode": mode, "until": until}).encode())
        node.flags |= LOCKED
        t.update_inode(node)


def check_state(state: str) -> str:
    if state not in STATES:
        raise InvalidArgument(f"versioning must be one of {', '.join(STATES)}")
    return state
