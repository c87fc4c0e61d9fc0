"""Namespace operations as transaction functions (POSIX rules live here).

Each function takes a :class:`Txn` and runs inside one metadata write
transaction, so checks and changes are atomic even with several processes.
"""

from __future__ import annotations

import random
import time

from core.errors import (
    CrossDevice,
    Exists,
    InvalidArgument,
    IsADirectory,
    NotADirectory,
    NotEmpty,
    NotFound,
    NotPermitted,
    Stale,
    TooManyLinks,
)
from core.fs import acl as A
from core.fs import perm, versions
from core.fs.types import Cred
from core.meta.txn import Txn
from core.meta.types import DIR, HAS_ACL, KEPT, LNK, REG, Inode

ROOT = 1
LINK_MAX = 65000
VERIFIER_XATTR = A.RESERVED_PREFIX + "createverf"  # an exclusive create's verifier (see FileSystem.create)


def now_ns() -> int:
    return time.time_ns()


def get(t: Txn, ino: int, gen: int | None = None, *, kept: bool = False) -> Inode:
    """The inode ``ino`` (of generation ``gen``); a removed one kept as a version or in the trash only with
    ``kept`` (a versions view), else it is :class:`Stale` as a deleted file is."""
    node = t.inode(ino)
    if node is None or (gen is not None and node.gen != gen) or (node.flags & KEPT and not kept):
        raise Stale(f"inode {ino} no longer exists")
    return node


def get_dir(t: Txn, ino: int) -> Inode:
    node = get(t, ino)
    if node.type != DIR:
        raise NotADirectory(f"inode {ino} is not a directory")
    return node


def new_inode(kind: int, mode: int, uid: int, gid: int, *, parent: int = 0, size: int = 0,
              symlink: bytes | None = None, rdev: int = 0, ts: int | None = None) -> Inode:
    ts = ts or now_ns()
    nlink = 2 if kind == DIR else 1
    return Inode(0, random.getrandbits(31) | 1, kind, mode & 0o7777, uid, gid, nlink, size, rdev,
                 ts, ts, ts, ts, parent if kind == DIR else 0, symlink, None)


def make_root(t: Txn, uid: int = 0, gid: int = 0, mode: int = 0o755) -> None:
    if t.inode(ROOT) is None:
        node = new_inode(DIR, mode, uid, gid, parent=ROOT)
        node.ino = ROOT
        t.insert_inode(node)


def _touch_dir(t: Txn, d: Inode, ts: int, nlink_delta: int = 0) -> None:
    d.mtime = d.ctime = ts
    d.nlink += nlink_delta
    t.update_inode(d)


def find(t: Txn, parent: int, name: bytes, fold: bool = False) -> tuple[int, int, bytes] | None:
    """(ino, type, stored name) of ``name`` in ``parent``: exactly, or under case folding if ``fold``."""
    if fold:
        hit = t.lookup_folded(parent, name)
        return None if hit is None else (hit[0], hit[1], hit[3])
    exact = t.lookup(parent, name)
    return None if exact is None else (exact[0], exact[1], name)


def add_entry(t: Txn, cred: Cred, parent: int, name: bytes, node: Inode, *, exclusive: bool = True,
              acl: A.Acl | None = None, fold: bool = False) -> Inode:
    """Insert a new inode under ``parent`` (create, mkdir, symlink, mknod).

    The inode's group and mode follow the directory (setgid, inherited ACL) unless ``acl`` is given.
    With ``fold`` an entry whose name differs only by case counts as the same name (it exists).
    """
    d = get_dir(t, parent)
    perm.may_search(t, cred, d)
    hit = find(t, parent, name, fold)
    if hit is not None:
        existing = get(t, hit[0])
        if exclusive or node.type != REG:
            raise Exists(f"{name.decode(errors='replace')!r} exists")
        if existing.type == DIR:
            raise IsADirectory(f"{name.decode(errors='replace')!r} is a directory")
        return existing
    perm.may_add(t, cred, d, node.type == DIR)
    inherited = perm.new_entry(t, cred, d, node)
    if acl is not None:
        node.mode = (node.mode & 0o7000) | A.to_mode(acl, node.type == DIR)
    if node.type == DIR:
        node.parent = parent
    own = acl if acl is not None else inherited
    if own is not None:
        node.flags |= HAS_ACL
    t.insert_inode(node)
    t.add_dentry(parent, name, node.ino, node.type)
    if own is not None:
        perm.store_acl(t, node, own)
    if node.type == REG:
        versions.stamp(t, parent, node)
    _touch_dir(t, d, node.ctime, 1 if node.type == DIR else 0)
    return node


def created_with(t: Txn, cred: Cred, parent: int, name: bytes, verifier: bytes) -> Inode | None:
    """The regular file ``parent/name`` if an exclusive create with ``verifier`` made it (a retried create)."""
    perm.may_search(t, cred, get_dir(t, parent))
    hit = t.lookup(parent, name)
    if hit is None:
        return None
    node = get(t, hit[0])
    return node if node.type == REG and t.xattr(node.ino, VERIFIER_XATTR) == verifier else None


def link(t: Txn, cred: Cred, ino: int, parent: int, name: bytes) -> Inode:
    node = get(t, ino)
    if node.type == DIR:
        raise NotPermitted("hard links to directories are not allowed")
    if node.nlink >= LINK_MAX:
        raise TooManyLinks("too many links")
    d = get_dir(t, parent)
    perm.may_add(t, cred, d, False)
    if cred.uid != node.uid:  # protected hard links, as Linux: a link to another's file needs read+write on it
        perm.need(t, cred, node, A.READ_DATA | A.WRITE_DATA, "link to another user's file")
    if t.lookup(parent, name) is not None:
        raise Exists(f"{name.decode(errors='replace')!r} exists")
    ts = now_ns()
    t.add_dentry(parent, name, ino, node.type)
    node.nlink += 1
    node.ctime = ts
    t.update_inode(node)
    _touch_dir(t, d, ts)
    return node


def _drop_link(t: Txn, node: Inode, ts: int, cred: Cred | None = None, parent: int = 0, name: bytes = b"",
               reason: str = "delete", keep_locked: bool = False) -> bool:
    """One name of ``node`` (``parent/name``) went away; when none remain it is kept as a version or in the
    trash (:mod:`core.fs.versions`, given ``cred``) or deleted.  True if it left the namespace."""
    if node.type == DIR:
        if cred is None or not versions.retire(t, cred, parent, name, node, reason, ts):
            t.delete_inode(node.ino)
        return True
    node.nlink -= 1
    node.ctime = ts
    if node.nlink <= 0:
        if cred is None or not versions.retire(t, cred, parent, name, node, reason, ts, keep_locked=keep_locked):
            t.delete_inode(node.ino)
        return True
    t.update_inode(node)
    return False


def _check_removable(t: Txn, node: Inode, name: bytes, *, as_dir: bool) -> None:
    """May ``node`` (called ``name``) go as a directory (rmdir, or replaced by a directory) or as a non-directory?"""
    shown = repr(name.decode(errors="replace"))
    if as_dir:
        if node.type != DIR:
            raise NotADirectory(f"{shown} is not a directory")
        if t.has_children(node.ino):
            raise NotEmpty(f"{shown} is not empty")
    elif node.type == DIR:
        raise IsADirectory(f"{shown} is a directory")


def unlink(t: Txn, cred: Cred, parent: int, name: bytes, *, want_dir: bool = False, reason: str = "",
           keep_locked: bool = False) -> Inode:
    """Remove ``name`` (rmdir when ``want_dir``); returns the inode as it was.  ``reason`` is what the
    trash/versions record ('delete', 'rmdir', 'overwrite'); ``keep_locked``: a locked file may go where
    versioning keeps it (S3)."""
    d = get_dir(t, parent)
    perm.may_search(t, cred, d)
    hit = t.lookup(parent, name)
    if hit is None:
        raise NotFound(f"{name.decode(errors='replace')!r} not found")
    node = get(t, hit[0])
    _check_removable(t, node, name, as_dir=want_dir)
    perm.may_remove(t, cred, d, node)
    ts = now_ns()
    t.remove_dentry(parent, name, ts)
    _drop_link(t, node, ts, cred, parent, name, reason or ("rmdir" if want_dir else "delete"), keep_locked)
    _touch_dir(t, d, ts, -1 if node.type == DIR else 0)
    return node


def _is_ancestor(t: Txn, anc: int, ino: int) -> bool:
    """True if directory ``anc`` is ``ino`` or one of its ancestors."""
    seen = 0
    while True:
        if ino == anc:
            return True
        if ino == ROOT:
            return False
        node = t.inode(ino)
        if node is None:
            return False
        ino = node.parent
        seen += 1
        if seen > 4096:
            raise TooManyLinks("directory tree too deep or cyclic")


def rename(t: Txn, cred: Cred, sp: int, sn: bytes, dp: int, dn: bytes, *, replace: bool = True) -> Inode | None:
    """Atomically move ``sp/sn`` to ``dp/dn``; returns the inode it replaced, if deleted."""
    sd = get_dir(t, sp)
    dd = sd if dp == sp else get_dir(t, dp)
    perm.may_search(t, cred, sd)
    perm.may_search(t, cred, dd)
    hit = t.lookup(sp, sn)
    if hit is None:
        raise NotFound(f"{sn.decode(errors='replace')!r} not found")
    node = get(t, hit[0])
    if node.type == DIR and dp != sp and _is_ancestor(t, node.ino, dp):
        raise CrossDevice("cannot move a directory into itself")
    perm.may_remove(t, cred, sd, node)
    perm.may_add(t, cred, dd, node.type == DIR)
    if dp != sp:
        perm.may_reparent(t, cred, node)
    ts = now_ns()
    old = t.lookup(dp, dn)
    replaced: Inode | None = None
    if old is not None:
        if old[0] == node.ino:
            return None  # same file (or hard link to it): POSIX says do nothing
        if not replace:
            raise Exists(f"{dn.decode(errors='replace')!r} exists")
        victim = get(t, old[0])
        _check_removable(t, victim, dn, as_dir=node.type == DIR)
        perm.may_remove(t, cred, dd, victim)
        t.remove_dentry(dp, dn, ts)
        if _drop_link(t, victim, ts, cred, dp, dn, "rename"):
            replaced = victim
        if victim.type == DIR:
            dd.nlink -= 1
    t.remove_dentry(sp, sn, ts)
    t.add_dentry(dp, dn, node.ino, node.type)
    node.ctime = ts
    if node.type == DIR and dp != sp:
        node.parent = dp
        sd.nlink -= 1
        dd.nlink += 1
    t.update_inode(node)
    _touch_dir(t, sd, ts)
    if dd is not sd:
        _touch_dir(t, dd, ts)
    return replaced


def walk(t: Txn, cred: Cred, parts: list[bytes], start: int = ROOT, *, fold: bool = False,
         found: list[bytes] | None = None) -> Inode:
    """Resolve path components from ``start`` without following symlinks (search permission on each).

    ``fold`` matches each component case-insensitively (:meth:`Txn.lookup_folded`); ``found``, if
    given, receives the stored name of each component."""
    node = get(t, start)
    for i, part in enumerate(parts):
        if node.type != DIR:
            raise NotADirectory(f"{b'/'.join(parts[:i]).decode(errors='replace')} is not a directory")
        perm.may_search(t, cred, node)
        hit = find(t, node.ino, part, fold)
        if hit is None:
            raise NotFound(f"/{b'/'.join(parts[: i + 1]).decode(errors='replace')} not found")
        if found is not None:
            found.append(hit[2])
        node = get(t, hit[0])
    return node


def check_symlink(target: bytes) -> None:
    if not target or len(target) > 4096 or b"\0" in target:
        raise InvalidArgument("invalid symlink target")


__all__ = ["DIR", "LNK", "REG", "ROOT", "add_entry", "get", "get_dir", "link", "make_root",
           "new_inode", "rename", "unlink", "walk"]
