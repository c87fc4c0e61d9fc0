"""Retention (object lock) and legal hold: enforced here for every protocol.

A version (the live file or a kept one) may carry a retention — mode GOVERNANCE or COMPLIANCE and a
retain-until time — and a legal hold, kept as reserved xattrs of its inode; the inode's ``LOCKED`` flag
says it may carry either, so the many files without one are checked with no extra lookup.

While a retention is in force or a hold is on, the content cannot be destroyed: no unlink or rename
over it that would drop it, no truncate, no write in place, no purge of the version.  Replacing the live
file is allowed only where versioning keeps the old content (S3 PUT or DELETE in a versioned bucket: the
locked version stays, noncurrent, and still locked).  COMPLIANCE cannot be shortened or removed by
anyone until it expires; GOVERNANCE can by the admin when the caller asks to bypass it (S3's
``x-amz-bypass-governance-retention``; the S3 layer checks s3:BypassGovernanceRetention first).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from core.errors import InvalidArgument, Locked, NotPermitted, Stale
from core.fs.types import Cred
from core.meta.txn import Txn
from core.meta.types import LOCKED, Inode

RETENTION_XATTR = "system.tessera.retention"
HOLD_XATTR = "system.tessera.hold"
MODES = ("GOVERNANCE", "COMPLIANCE")


@dataclass(frozen=True, slots=True)
class Retention:
    mode: str | None = None   # GOVERNANCE / COMPLIANCE, None = none set
    until_ns: int = 0
    hold: bool = False

    def active(self, now: int | None = None) -> bool:
        return self.mode is not None and self.until_ns > (now or time.time_ns())

    def locked(self, now: int | None = None) -> bool:
        return self.hold or self.active(now)


def get(t: Txn, node: Inode) -> Retention:
    if not node.flags & LOCKED:
        return Retention()
    vals = t.xattr_values(node.ino, [RETENTION_XATTR, HOLD_XATTR])
    mode, until = None, 0
    if RETENTION_XATTR in vals:
        d = json.loads(vals[RETENTION_XATTR])
        mode, until = str(d["mode"]), int(d["until"])
    return Retention(mode, until, vals.get(HOLD_XATTR) == b"1")


def check(t: Txn, node: Inode, what: str, *, bypass: Cred | None = None) -> None:
    """Refuse ``what`` (an operation that would destroy this content) while it is locked.  ``bypass``: the
    admin asking to bypass a GOVERNANCE retention (never a COMPLIANCE one or a legal hold)."""
    if not node.flags & LOCKED:
        return
    r = get(t, node)
    if r.hold:
        raise Locked(f"cannot {what}: the file is under a legal hold")
    if r.active():
        if r.mode == "GOVERNANCE" and bypass is not None and bypass.admin:
            return
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.until_ns / 1e9))
        raise Locked(f"cannot {what}: the file is under {r.mode.lower() if r.mode else ''} retention until {until}")


def check_write(t: Txn, node: Inode) -> None:
    """A write in place: refused on a kept version (read-only, as a snapshot) and on locked content."""
    if node.nlink <= 0 and node.type != 2:
        raise Stale("the file was removed (a kept version is read-only)")
    check(t, node, "write to it")


def set_retention(t: Txn, cred: Cred, node: Inode, mode: str | None, until_ns: int, *, bypass: bool) -> None:
    """Set, extend, shorten or remove (``mode`` None) a retention, as S3 PutObjectRetention allows."""
    if mode is not None and mode not in MODES:
        raise InvalidArgument(f"retention mode must be one of {', '.join(MODES)}")
    now = time.time_ns()
    if mode is not None and until_ns <= now:
        raise InvalidArgument("the retain-until date must be in the future")
    if not cred.admin and cred.uid != node.uid:
        raise NotPermitted("only the owner may set a retention")
    cur = get(t, node)
    if cur.active(now):
        weaker = mode is None or until_ns < cur.until_ns or (cur.mode == "COMPLIANCE" and mode != "COMPLIANCE")
        if weaker:
            if cur.mode == "COMPLIANCE":
                raise Locked("a compliance retention can only be extended until it expires")
            if not (bypass and cred.admin):
                raise Locked("shortening or removing a governance retention needs the bypass permission")
    if mode is None:
        t.remove_xattr(node.ino, RETENTION_XATTR)
    else:
        t.set_xattr(node.ino, RETENTION_XATTR, json.dumps({"mode": mode, "until": until_ns}).encode())
        node.flags |= LOCKED
        t.update_inode(node)


def set_hold(t: Txn, cred: Cred, node: Inode, on: bool) -> None:
    if not cred.admin and cred.uid != node.uid:
        raise NotPermitted("only the owner may set a legal hold")
    if on:
        t.set_xattr(node.ino, HOLD_XATTR, b"1")
        node.flags |= LOCKED
        t.update_inode(node)
    else:
        t.remove_xattr(node.ino, HOLD_XATTR)
