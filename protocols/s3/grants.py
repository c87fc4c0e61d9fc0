"""S3 ACLs (protocols/s3/acl.py) as core ACLs: one ACL per bucket directory or object file,
seen by every protocol.

The stored core ACL is the mode bits' own ACL (``OWNER@``/``GROUP@``/``EVERYONE@``, which
holds the owner's FULL_CONTROL) followed by one ACE per grant to another grantee:

==============  ===========================================  ========================
permission      on a bucket (its directory)                  on an object (its file)
==============  ===========================================  ========================
READ            list + search (+ inherited by new prefixes)  read data
WRITE           add and remove entries + search              (not applicable)
READ_ACP        read the ACL                                 read the ACL
WRITE_ACP       change the ACL                               change the ACL
FULL_CONTROL    all of the above                             all of the above
==============  ===========================================  ========================

AllUsers is ``EVERYONE@``; AuthenticatedUsers is ``EVERYONE@`` preceded by a deny for
the anonymous uid, so NFS and SMB users (who are all authenticated) get it too.
LogDelivery grants have no principal here and are not stored.

>>> from protocols.s3 import acl as s3acl
>>> core = to_core(s3acl.canned("public-read", "ann"), 0o700, is_bucket=False, uid_of=lambda n: 7)
>>> [(g.grantee.id, g.permission.value) for g in from_core(core, "ann", is_bucket=False, name_of=str).grants]
[('ann', 'FULL_CONTROL'), ('http://acs.amazonaws.com/groups/global/AllUsers', 'READ')]
"""

from __future__ import annotations

from collections.abc import Callable

from core.fs import NOBODY_ID, Ace, Who, WhoKind
from core.fs import Acl as CoreAcl
from core.fs import acl as A
from protocols.s3 import acl as s3acl
from protocols.s3.acl import ALL_USERS, AUTHENTICATED_USERS, Grant, Grantee, Permission
from protocols.s3.errors import S3Error

_BUCKET = {Permission.READ: A.LIST_DIRECTORY | A.EXECUTE | A.READ_NAMED_ATTRS,
           Permission.WRITE: A.ADD_FILE | A.ADD_SUBDIRECTORY | A.DELETE_CHILD | A.EXECUTE | A.WRITE_NAMED_ATTRS,
           Permission.READ_ACP: A.READ_ACL, Permission.WRITE_ACP: A.WRITE_ACL}
_OBJECT = {Permission.READ: A.READ_DATA | A.READ_NAMED_ATTRS, Permission.WRITE: 0,
           Permission.READ_ACP: A.READ_ACL, Permission.WRITE_ACP: A.WRITE_ACL}


def _table(is_bucket: bool) -> dict[Permission, int]:
    t = dict(_BUCKET if is_bucket else _OBJECT)
    t[Permission.FULL_CONTROL] = t[Permission.READ] | t[Permission.WRITE] | t[Permission.READ_ACP] | \
        t[Permission.WRITE_ACP]
    return t


def to_core(acl: s3acl.Acl, mode: int, *, is_bucket: bool, uid_of: Callable[[str], int | None]) -> CoreAcl | None:
    """The core ACL for an S3 ACL on an inode with ``mode``; None when the mode bits say it all."""
    table = _table(is_bucket)
    flags = A.DIRECTORY_INHERIT if is_bucket else 0
    extra: CoreAcl = []
    for g in acl.grants:
        mask = table[g.permission]
        if not mask or (not g.grantee.group and g.grantee.id == acl.owner):
            continue
        if not g.grantee.group:
            uid = uid_of(g.grantee.id)
            if uid is None:
                raise S3Error("InvalidArgument", "Invalid id", 400,
                              extra={"ArgumentName": "CanonicalUser/ID", "ArgumentValue": g.grantee.id})
            extra.append(Ace(A.ALLOW, Who.user(uid), mask, flags))
        elif g.grantee.id == AUTHENTICATED_USERS:
            extra += [Ace(A.DENY, Who.user(NOBODY_ID), mask, flags), Ace(A.ALLOW, A.EVERYONE, mask, flags)]
        elif g.grantee.id == ALL_USERS:
            extra.append(Ace(A.ALLOW, A.EVERYONE, mask, flags))
    if not extra:
        return None
    base = [Ace(a.type, a.who, a.mask, a.flags | flags) for a in A.from_mode(mode, is_bucket)]
    return base + extra


def from_core(acl: CoreAcl | None, owner: str, *, is_bucket: bool, name_of: Callable[[int], str]) -> s3acl.Acl:
    """The S3 ACL a core ACL holds: the owner's FULL_CONTROL, then the grants."""
    out = [Grant(Grantee(owner), Permission.FULL_CONTROL)]
    table = _table(is_bucket)
    anon_denied = False
    for a in acl or []:
        if a.flags & A.INHERIT_ONLY:
            continue
        if a.type == A.DENY:
            anon_denied = anon_denied or a.who == Who.user(NOBODY_ID)
            continue
        if a.who.kind == WhoKind.EVERYONE:
            grantee = Grantee(AUTHENTICATED_USERS if anon_denied else ALL_USERS, True)
        elif a.who.kind == WhoKind.USER:
            grantee = Grantee(name_of(a.who.id))
        else:
            continue  # OWNER@ (listed first), GROUP@ and named groups are not S3 grantees
        # the mode bits' own entries carry the always-granted bits; a grant's ACE carries only its own
        mask = a.mask & ~A.ALWAYS if a.mask & A.READ_ATTRIBUTES else a.mask
        out += [Grant(grantee, p) for p in _perms(mask, table)]
    return s3acl.Acl(owner, tuple(out))


def _perms(mask: int, table: dict[Permission, int]) -> list[Permission]:
    full = table[Permission.FULL_CONTROL]
    if mask & full == full:
        return [Permission.FULL_CONTROL]
    return [p for p in (Permission.READ, Permission.WRITE, Permission.READ_ACP, Permission.WRITE_ACP)
            if table[p] and mask & table[p] == table[p]]
