"""The permission decision of core.fs: one place, for every protocol.

Each check runs inside the metadata transaction of the operation it guards, with
the caller's :class:`~core.fs.types.Cred`.  An inode with an ACL (core.fs.acl) is
decided by its ACL; one without by its mode bits, owner/group/other as POSIX
does.  ``admin`` credentials pass every check (root on a local file system).

Rules beyond plain access masks, as Linux applies them:

- removing or renaming away an entry needs search + delete-child on its
  directory (or DELETE on the entry itself, NFSv4/NT style); in a sticky
  directory only the entry's owner, the directory's owner or an admin may;
- moving a directory to another parent also needs write on the directory
  itself (its ``..`` changes);
- chmod and utimes with explicit times: owner or admin; chown to another
  user: admin only; chgrp: the owner, to a group it belongs to;
- a new entry in a setgid directory takes the directory's group (and a new
  subdirectory the setgid bit); otherwise the caller's primary group.
"""

from __future__ import annotations

import functools
import stat

from core.errors import NotPermitted, PermissionDenied
from core.fs import acl as A
from core.fs.types import Cred
from core.meta.txn import Txn
from core.meta.types import DIR, HAS_ACL, Inode


def acl_of(t: Txn, node: Inode) -> A.Acl | None:
    """The inode's stored ACL (one lookup, only for inodes flagged as having one)."""
    if not node.flags & HAS_ACL:
        return None
    raw = t.xattr(node.ino, A.ACL_XATTR)
    return list(_decoded(raw)) if raw else None


@functools.lru_cache(maxsize=4096)
def _decoded(raw: bytes) -> tuple[A.Ace, ...]:
    """ACLs repeat (inherited down a tree): decode each distinct one once per process."""
    return tuple(A.decode(raw))


def store_acl(t: Txn, node: Inode, acl: A.Acl | None) -> None:
    """Set or drop the inode's ACL and its flag (the caller writes the inode)."""
    if acl is None:
        t.remove_xattr(node.ino, A.ACL_XATTR)
        node.flags &= ~HAS_ACL
    else:
        t.set_xattr(node.ino, A.ACL_XATTR, A.encode(acl))
        node.flags |= HAS_ACL


def mode_granted(cred: Cred, node: Inode, want: int) -> int:
    is_dir = node.type == DIR
    if cred.uid == node.uid:
        bits, extra = (node.mode >> 6) & 7, A.OWNER_ALWAYS
    elif cred.in_group(node.gid):
        bits, extra = (node.mode >> 3) & 7, A.ALWAYS
    else:
        bits, extra = node.mode & 7, A.ALWAYS
    return (A.rwx_mask(bits, is_dir) | extra) & want


def granted(t: Txn, cred: Cred, node: Inode, want: int) -> int:
    """The subset of ``want`` that ``cred`` may do to ``node`` (the ACCESS question)."""
    if cred.admin:
        return want
    acl = acl_of(t, node)
    if acl is None:
        return mode_granted(cred, node, want)
    always = A.OWNER_ALWAYS if cred.uid == node.uid else A.ALWAYS
    return (A.evaluate(acl, cred.uid, cred.in_group, node.uid, node.gid, want) | always) & want


def need(t: Txn, cred: Cred, node: Inode, want: int, what: str = "") -> None:
    if cred.admin:
        return
    if granted(t, cred, node, want) != want:
        raise PermissionDenied(f"permission denied{': ' + what if what else ''}")


def may_search(t: Txn, cred: Cred, d: Inode) -> None:
    need(t, cred, d, A.EXECUTE, "search the directory")


def may_add(t: Txn, cred: Cred, d: Inode, is_dir: bool) -> None:
    need(t, cred, d, A.EXECUTE | (A.ADD_SUBDIRECTORY if is_dir else A.ADD_FILE), "add an entry to the directory")


def may_remove(t: Txn, cred: Cred, d: Inode, node: Inode) -> None:
    """May ``cred`` remove ``node`` from directory ``d`` (unlink, rmdir, rename away, replace)?"""
    if cred.admin:
        return
    need(t, cred, d, A.EXECUTE, "search the directory")
    if not granted(t, cred, d, A.DELETE_CHILD) and not granted(t, cred, node, A.DELETE):
        raise PermissionDenied("permission denied: remove an entry of the directory")
    if d.mode & stat.S_ISVTX and cred.uid not in (d.uid, node.uid):
        raise NotPermitted("the directory is sticky: only the entry's owner may remove it")


def may_reparent(t: Txn, cred: Cred, node: Inode) -> None:
    """A directory moving to another parent rewrites its '..': write on it is needed."""
    if node.type == DIR:
        need(t, cred, node, A.WRITE_DATA, "move a directory to another parent")


def owner_or_admin(cred: Cred, node: Inode, what: str) -> None:
    if not cred.admin and cred.uid != node.uid:
        raise NotPermitted(f"only the owner may {what}")


def check_chown(cred: Cred, node: Inode, uid: int | None, gid: int | None) -> None:
    if cred.admin:
        return
    if uid is not None and uid != node.uid:
        raise NotPermitted("only an admin may give a file to another user")
    if gid is not None and gid != node.gid:
        owner_or_admin(cred, node, "change the group")
        if not cred.in_group(gid):
            raise NotPermitted(f"you are not a member of group {gid}")


def chmod_bits(cred: Cred, node: Inode, mode: int) -> int:
    """Mode bits as stored after chmod: setgid dropped on a file whose group the caller is not in."""
    owner_or_admin(cred, node, "change the mode")
    mode &= 0o7777
    if not cred.admin and node.type != DIR and not cred.in_group(node.gid):
        mode &= ~stat.S_ISGID
    return mode


def new_entry(t: Txn, cred: Cred, d: Inode, node: Inode) -> A.Acl | None:
    """Fix a new inode's group and mode from its directory (setgid, inherited ACL); returns its ACL."""
    if d.mode & stat.S_ISGID:
        node.gid = d.gid
        if node.type == DIR:
            node.mode |= stat.S_ISGID
    elif not cred.admin and not cred.in_group(node.gid):
        node.gid = cred.gid
    parent_acl = acl_of(t, d)
    if not A.inheritable(parent_acl):
        return None
    inherited = A.inherit(parent_acl or [], node.type == DIR)
    if inherited is not None:
        special = node.mode & 0o7000
        node.mode = special | (A.to_mode(inherited, node.type == DIR) & node.mode & 0o777)
    return inherited
