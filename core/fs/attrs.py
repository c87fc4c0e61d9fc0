"""Extended attributes, ACLs, byte-range locks and share modes of core.fs (a part of FileSystem).

SMB locks have their own calls (``smb_*``, rules in :mod:`core.fs.smblocks`); :meth:`AttrOps.locks`
lists and :meth:`AttrOps.unlock_all` drops both kinds.

Attribute names under ``system.tessera.`` are core's own (the ACL lives there) and are
neither listed nor reachable through the xattr calls; ACLs go through :meth:`getacl`
and :meth:`setacl`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from core.errors import Exists, InvalidArgument, NoAttribute, NotPermitted, PermissionDenied
from core.fs import acl as A
from core.fs import locks as lk
from core.fs import namespace as ns
from core.fs import perm
from core.fs import smblocks as smb
from core.fs.types import READ, WRITE, Cred, LockInfo
from core.meta.store import MetaStore
from core.meta.txn import Txn
from core.meta.types import DIR

XATTR_NAME_MAX = 255
XATTR_VALUE_MAX = 64 * 1024

T = TypeVar("T")


class AttrOps:
    _meta: MetaStore
    cred: Cred
    durable: bool
    kept_ok: bool

    def _write(self, fn: Callable[[Txn], T]) -> T:
        """A metadata write of this view: durable on return unless the view says otherwise (``durable``)."""
        return self._meta.write(fn, durable=self.durable)

    @staticmethod
    def _check_xattr(name: str, value: bytes | None = None) -> None:
        if not name or len(name.encode()) > XATTR_NAME_MAX:
            raise InvalidArgument("invalid extended attribute name")
        if name.startswith(A.RESERVED_PREFIX):
            raise NotPermitted(f"attribute names under {A.RESERVED_PREFIX!r} are reserved")
        if value is not None and len(value) > XATTR_VALUE_MAX:
            raise InvalidArgument(f"extended attribute value over {XATTR_VALUE_MAX} bytes")

    # -- extended attributes --------------------------------------------------------
    def getxattr(self, ino: int, name: str) -> bytes:
        self._check_xattr(name)
        with self._meta.read() as t:
            perm.need(t, self.cred, ns.get(t, ino, kept=self.kept_ok), A.READ_NAMED_ATTRS, "read attributes")
            v = t.xattr(ino, name)
        if v is None:
            raise NoAttribute(f"no attribute {name!r}")
        return v

    def getxattrs(self, ino: int, names: list[str]) -> dict[str, bytes]:
        """Several attributes at once (one snapshot); names that are absent are left out."""
        for n in names:
            self._check_xattr(n)
        with self._meta.read() as t:
            perm.need(t, self.cred, ns.get(t, ino, kept=self.kept_ok), A.READ_NAMED_ATTRS, "read attributes")
            return t.xattr_values(ino, names)

    def setxattr(self, ino: int, name: str, value: bytes, *, create: bool = False,
                 replace: bool = False) -> None:
        self._check_xattr(name, value)

        def apply(t: Txn) -> None:
            node = ns.get(t, ino, kept=self.kept_ok)  # a version's attributes may change (S3 tags), never its bytes
            perm.need(t, self.cred, node, A.WRITE_NAMED_ATTRS, "write attributes")
            cur = t.xattr(ino, name)
            if create and cur is not None:
                raise Exists(f"attribute {name!r} exists")
            if replace and cur is None:
                raise NoAttribute(f"no attribute {name!r}")
            t.set_xattr(ino, name, value)
            node.ctime = time.time_ns()
            t.update_inode(node)
        self._write(apply)

    def listxattr(self, ino: int) -> list[str]:
        with self._meta.read() as t:
            perm.need(t, self.cred, ns.get(t, ino, kept=self.kept_ok), A.READ_NAMED_ATTRS, "list attributes")
            return [n for n in t.xattrs(ino) if not n.startswith(A.RESERVED_PREFIX)]

    def removexattr(self, ino: int, name: str) -> None:
        self._check_xattr(name)

        def apply(t: Txn) -> None:
            node = ns.get(t, ino)
            perm.need(t, self.cred, node, A.WRITE_NAMED_ATTRS, "remove attributes")
            if not t.remove_xattr(ino, name):
                raise NoAttribute(f"no attribute {name!r}")
            node.ctime = time.time_ns()  # as setxattr: caches keyed by ctime see the change
            t.update_inode(node)
        self._write(apply)

    # -- ACLs -----------------------------------------------------------------------
    def getacl(self, ino: int) -> tuple[A.Acl, bool]:
        """The inode's ACL and whether it is stored (False: rendered from the mode bits)."""
        with self._meta.read() as t:
            node = ns.get(t, ino)
            perm.need(t, self.cred, node, A.READ_ACL, "read the ACL")
            acl = perm.acl_of(t, node)
        return (acl, True) if acl is not None else (A.from_mode(node.mode, node.type == DIR), False)

    def setacl(self, ino: int, acl: A.Acl | None) -> None:
        """Replace the ACL (None: drop it, the mode bits decide again); the mode bits follow it."""
        if acl is not None:
            A.validate(acl)

        def apply(t: Txn) -> None:
            node = ns.get(t, ino)
            perm.need(t, self.cred, node, A.WRITE_ACL, "change the ACL")
            perm.store_acl(t, node, acl)
            if acl is not None:
                node.mode = (node.mode & 0o7000) | A.to_mode(acl, node.type == DIR)
            node.ctime = time.time_ns()
            t.update_inode(node)
        self._write(apply)

    # -- locks and share modes ------------------------------------------------------
    def lock(self, ino: int, owner: str, start: int, length: int, exclusive: bool) -> None:
        def apply(t: Txn) -> None:
            node = ns.get(t, ino)
            perm.need(t, self.cred, node, A.WRITE_DATA if exclusive else A.READ_DATA, "lock")
            lk.lock(t, ino, owner, start, length, exclusive)
        self._meta.write(apply, durable=False)

    def unlock(self, ino: int, owner: str, start: int, length: int) -> None:
        self._meta.write(lambda t: lk.unlock(t, ino, owner, start, length), durable=False)

    def unlock_all(self, owner: str) -> None:
        self._meta.write(lambda t: lk.unlock_all(t, owner), durable=False)

    def test_lock(self, ino: int, owner: str, start: int, length: int, exclusive: bool) -> LockInfo | None:
        return self._meta.write(lambda t: lk.conflict(t, ino, owner, start, length, exclusive), durable=False)

    def locks(self, ino: int) -> list[LockInfo]:
        with self._meta.read() as t:
            return lk.held(t, ino)

    # -- SMB byte-range locks (core.fs.smblocks: stacking, exact unlock, 64-bit unsigned ranges) ------
    def smb_lock(self, ino: int, owner: str, offset: int, length: int, exclusive: bool) -> None:
        """Take one SMB lock for the open ``owner`` (stacked on its others); :class:`LockConflict` if a
        lock of any protocol blocks it, :class:`InvalidLockRange` past 2**64, :class:`InvalidArgument`
        on a directory.  The caller needs read or write access to the file (as LockFileEx)."""
        def apply(t: Txn) -> None:
            self._smb_lockable(t, ino)
            smb.lock(t, ino, owner, offset, length, exclusive)
        self._meta.write(apply, durable=False)

    def smb_unlock(self, ino: int, owner: str, offset: int, length: int) -> LockInfo:
        """Drop the open's lock with exactly this range (and return it); :class:`RangeNotLocked` if none."""
        return self._meta.write(lambda t: smb.unlock(t, ino, owner, offset, length), durable=False)

    def smb_test_lock(self, ino: int, owner: str, offset: int, length: int, exclusive: bool) -> LockInfo | None:
        """The lock that would block ``smb_lock`` with these arguments, if any (nothing is taken)."""
        with self._meta.read() as t:
            return smb.conflict(t, ino, owner, offset, length, exclusive, sweep=False)

    def smb_check_io(self, ino: int, owner: str, offset: int, length: int, write: bool) -> LockInfo | None:
        """The lock that blocks a read (or a ``write``) of these bytes by the open ``owner``, if any: SMB
        locks are mandatory, so the SMB layer answers FILE_LOCK_CONFLICT when this is not None."""
        return smb.conflict(self._meta.peek(), ino, owner, offset, length, write, lock_intent=False, sweep=False)

    def _smb_lockable(self, t: Txn, ino: int) -> None:
        node = ns.get(t, ino)
        if node.type == DIR:
            raise InvalidArgument("byte-range locks are not permitted on directories")
        if not perm.granted(t, self.cred, node, A.READ_DATA | A.WRITE_DATA):
            raise PermissionDenied("permission denied: lock")

    def open_share(self, ino: int, owner: str, access: int, share: int) -> int:
        want = (A.READ_DATA if access & READ else 0) | (A.WRITE_DATA if access & WRITE else 0)

        def apply(t: Txn) -> int:
            perm.need(t, self.cred, ns.get(t, ino), want, "open")
            return lk.open_share(t, ino, owner, access, share)
        return self._meta.write(apply, durable=False)

    def close_share(self, open_id: int) -> None:
        self._meta.write(lambda t: lk.close_share(t, open_id), durable=False)
