"""The one ACL model: NFSv4-style ACEs per inode, mapped to NT security descriptors by SMB.

An ACL is an ordered list of :class:`Ace`.  Each ACE allows or denies an access
mask (the NFSv4 ACE4_* bits, RFC 8881 §6.2.1.3, which are the same numbers as
the NT FILE_* rights SMB uses) to one *who*: ``OWNER@``, ``GROUP@``,
``EVERYONE@``, a user (uid) or a group (gid).  Inheritance flags say what new
files and directories created below a directory inherit.

Files without an ACL use their mode bits; :func:`from_mode` renders mode bits as
the equivalent ACL (what SMB shows for such a file), and the mode bits of a file
with an ACL are kept consistent with it as RFC 8881 §6.4 describes:

- setting an ACL sets the mode bits from it (:func:`to_mode`);
- chmod rewrites the ``OWNER@``/``GROUP@``/``EVERYONE@`` entries from the new mode
  and masks what named users and groups are allowed by the new group bits
  (:func:`chmod`), so no ACE grants more than ``ls -l`` shows.

Byte format (stored in the inode's reserved attribute ``system.tessera.acl``)
------------------------------------------------------------------------------
Version 1: the magic ``b"TACL"``, a version byte ``1``, a little-endian u16
count, then per ACE 12 bytes ``<BBHII``: type (0 allow, 1 deny), who kind
(0 owner@, 1 group@, 2 everyone@, 3 user, 4 group), flags (u16), access mask
(u32), id (u32: uid or gid; 0 for the special whos).

>>> acl = [Ace(ALLOW, Who.user(1001), READ_DATA | EXECUTE)]
>>> decode(encode(acl)) == acl
True
>>> to_mode(from_mode(0o750, is_dir=False), is_dir=False) == 0o750
True
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from core.errors import InvalidArgument

ACL_XATTR = "system.tessera.acl"
RESERVED_PREFIX = "system.tessera."
MAX_ACES = 1024

# access mask bits (RFC 8881 §6.2.1.3.1; NT: FILE_READ_DATA, ...)
READ_DATA = 0x1          # LIST_DIRECTORY on a directory
WRITE_DATA = 0x2         # ADD_FILE
APPEND_DATA = 0x4        # ADD_SUBDIRECTORY
READ_NAMED_ATTRS = 0x8
WRITE_NAMED_ATTRS = 0x10
EXECUTE = 0x20           # search (traverse) on a directory
DELETE_CHILD = 0x40
READ_ATTRIBUTES = 0x80
WRITE_ATTRIBUTES = 0x100
WRITE_RETENTION = 0x200
WRITE_RETENTION_HOLD = 0x400
DELETE = 0x10000
READ_ACL = 0x20000
WRITE_ACL = 0x40000
WRITE_OWNER = 0x80000
SYNCHRONIZE = 0x100000
FULL_MASK = 0x1F07FF

LIST_DIRECTORY, ADD_FILE, ADD_SUBDIRECTORY = READ_DATA, WRITE_DATA, APPEND_DATA
R_MASK = READ_DATA | READ_NAMED_ATTRS
W_MASK = WRITE_DATA | APPEND_DATA | WRITE_NAMED_ATTRS
X_MASK = EXECUTE
ALWAYS = READ_ATTRIBUTES | READ_ACL | SYNCHRONIZE  # anyone may stat and read the ACL
OWNER_ALWAYS = ALWAYS | WRITE_ATTRIBUTES | WRITE_ACL  # the owner may chmod/set the ACL/touch

# ACE flags (RFC 8881 §6.2.1.4)
FILE_INHERIT = 0x1
DIRECTORY_INHERIT = 0x2
NO_PROPAGATE_INHERIT = 0x4
INHERIT_ONLY = 0x8
IDENTIFIER_GROUP = 0x40
INHERITED = 0x80
INHERIT_FLAGS = FILE_INHERIT | DIRECTORY_INHERIT | NO_PROPAGATE_INHERIT | INHERIT_ONLY
FLAGS_MASK = INHERIT_FLAGS | IDENTIFIER_GROUP | INHERITED


class AceType(IntEnum):
    ALLOW = 0
    DENY = 1


ALLOW, DENY = AceType.ALLOW, AceType.DENY


class WhoKind(IntEnum):
    OWNER = 0     # OWNER@
    GROUP = 1     # GROUP@
    EVERYONE = 2  # EVERYONE@
    USER = 3
    NAMED_GROUP = 4


@dataclass(frozen=True, slots=True)
class Who:
    kind: WhoKind
    id: int = 0

    @staticmethod
    def user(uid: int) -> Who:
        return Who(WhoKind.USER, uid)

    @staticmethod
    def group(gid: int) -> Who:
        return Who(WhoKind.NAMED_GROUP, gid)

    @property
    def special(self) -> bool:
        return self.kind in (WhoKind.OWNER, WhoKind.GROUP, WhoKind.EVERYONE)

    def __str__(self) -> str:
        return {WhoKind.OWNER: "OWNER@", WhoKind.GROUP: "GROUP@", WhoKind.EVERYONE: "EVERYONE@",
                WhoKind.USER: f"user:{self.id}", WhoKind.NAMED_GROUP: f"group:{self.id}"}[self.kind]


OWNER, GROUP, EVERYONE = Who(WhoKind.OWNER), Who(WhoKind.GROUP), Who(WhoKind.EVERYONE)


@dataclass(frozen=True, slots=True)
class Ace:
    type: AceType
    who: Who
    mask: int
    flags: int = 0

    @property
    def effective(self) -> bool:
        """Does this ACE apply to the inode itself (not only to what inherits it)?"""
        return not self.flags & INHERIT_ONLY


Acl = list[Ace]
_HEAD = struct.Struct("<4sBH")
_ACE = struct.Struct("<BBHII")


def validate(acl: Acl) -> None:
    if len(acl) > MAX_ACES:
        raise InvalidArgument(f"an ACL holds at most {MAX_ACES} entries")
    for a in acl:
        if a.mask & ~FULL_MASK or a.flags & ~FLAGS_MASK:
            raise InvalidArgument(f"unknown bits in ACE for {a.who}: mask {a.mask:#x}, flags {a.flags:#x}")
        if not 0 <= a.who.id < 2**32:
            raise InvalidArgument(f"ACE id out of range: {a.who.id}")


def encode(acl: Acl) -> bytes:
    validate(acl)
    out = [_HEAD.pack(b"TACL", 1, len(acl))]
    out += [_ACE.pack(a.type, a.who.kind, a.flags, a.mask, a.who.id) for a in acl]
    return b"".join(out)


def decode(raw: bytes) -> Acl:
    magic, version, count = _HEAD.unpack_from(raw, 0)
    if magic != b"TACL" or version != 1 or len(raw) != _HEAD.size + count * _ACE.size:
        raise InvalidArgument("damaged ACL record")
    out = []
    for i in range(count):
        typ, kind, flags, mask, ident = _ACE.unpack_from(raw, _HEAD.size + i * _ACE.size)
        out.append(Ace(AceType(typ), Who(WhoKind(kind), ident), mask, flags))
    return out


# -- evaluation -----------------------------------------------------------------------------
InGroup = Callable[[int], bool]


def matches(who: Who, uid: int, in_group: InGroup, owner: int, group: int) -> bool:
    """Does ``who`` name the caller (uid, and a gid-membership test) for an inode owned by owner:group?"""
    if who.kind == WhoKind.EVERYONE:
        return True
    if who.kind == WhoKind.OWNER:
        return uid == owner
    if who.kind == WhoKind.GROUP:
        return in_group(group)
    if who.kind == WhoKind.USER:
        return uid == who.id
    return in_group(who.id)


def evaluate(acl: Acl, uid: int, in_group: InGroup, owner: int, group: int, want: int) -> int:
    """The subset of ``want`` the ACL allows, in the RFC 8881 §6.2.1 order: the first ACE that
    decides a bit (allow or deny) wins; bits no ACE decides are denied.

    >>> acl = [Ace(DENY, Who.user(7), WRITE_DATA), Ace(ALLOW, EVERYONE, READ_DATA | WRITE_DATA)]
    >>> evaluate(acl, 7, lambda g: False, 0, 0, READ_DATA | WRITE_DATA) == READ_DATA
    True
    >>> evaluate(acl, 8, lambda g: False, 0, 0, WRITE_DATA) == WRITE_DATA
    True
    """
    allowed = denied = 0
    for a in acl:
        if not a.effective or not matches(a.who, uid, in_group, owner, group):
            continue
        bits = a.mask & want & ~(allowed | denied)
        if not bits:
            continue
        if a.type == ALLOW:
            allowed |= bits
        else:
            denied |= bits
        if (allowed | denied) & want == want:
            break
    return allowed


def rwx_mask(bits: int, is_dir: bool) -> int:
    """The access mask of one rwx triple.

    >>> rwx_mask(0o7, True) & DELETE_CHILD == DELETE_CHILD
    True
    """
    m = 0
    if bits & 4:
        m |= R_MASK
    if bits & 2:
        m |= W_MASK | (DELETE_CHILD if is_dir else 0)
    if bits & 1:
        m |= X_MASK
    return m


def mask_rwx(mask: int) -> int:
    return (4 if mask & READ_DATA else 0) | (2 if mask & WRITE_DATA else 0) | (1 if mask & EXECUTE else 0)


# -- mode bits <-> ACL (RFC 8881 §6.4) ---------------------------------------------------------
def from_mode(mode: int, is_dir: bool) -> Acl:
    """The ACL equivalent to mode bits: allows per class, with denies so that a class never gets
    bits of a later class it does not have itself (mode 0o077 leaves the owner with nothing).

    >>> [str(a.who) + ("+" if a.type == ALLOW else "-") for a in from_mode(0o604, False)]
    ['OWNER@+', 'GROUP@-', 'EVERYONE@+']
    """
    o, g, e = (mode >> 6) & 7, (mode >> 3) & 7, mode & 7
    out: Acl = []
    deny_o = rwx_mask(((g | e) & ~o) & 7, is_dir)
    if deny_o:
        out.append(Ace(DENY, OWNER, deny_o))
    out.append(Ace(ALLOW, OWNER, rwx_mask(o, is_dir) | OWNER_ALWAYS))
    deny_g = rwx_mask((e & ~g) & 7, is_dir)
    if deny_g:
        out.append(Ace(DENY, GROUP, deny_g))
    if g:
        out.append(Ace(ALLOW, GROUP, rwx_mask(g, is_dir) | ALWAYS))
    out.append(Ace(ALLOW, EVERYONE, rwx_mask(e, is_dir) | ALWAYS))
    return out


def _class_bits(acl: Acl, whos: tuple[WhoKind, ...], union_named: bool) -> int:
    allowed = denied = 0
    for a in acl:
        if not a.effective:
            continue
        if a.who.kind in whos:
            bits = a.mask & ~(allowed | denied)
            if a.type == ALLOW:
                allowed |= bits
            else:
                denied |= bits
        elif union_named and a.type == ALLOW and not a.who.special:
            allowed |= a.mask & ~denied
    return mask_rwx(allowed)


def to_mode(acl: Acl, is_dir: bool) -> int:
    """Permission bits (0o777) consistent with an ACL: owner = what OWNER@/EVERYONE@ give the owner,
    group = what GROUP@/EVERYONE@ give the group plus what named users and groups are allowed (the
    POSIX-ACL mask), other = what EVERYONE@ gives.

    >>> oct(to_mode([Ace(ALLOW, OWNER, R_MASK | W_MASK), Ace(ALLOW, Who.user(5), R_MASK)], False))
    '0o640'
    """
    del is_dir
    o = _class_bits(acl, (WhoKind.OWNER, WhoKind.EVERYONE), False)
    g = _class_bits(acl, (WhoKind.GROUP, WhoKind.EVERYONE), True)
    e = _class_bits(acl, (WhoKind.EVERYONE,), False)
    return (o << 6) | (g << 3) | e


def chmod(acl: Acl, mode: int, is_dir: bool) -> Acl:
    """The ACL after chmod: OWNER@/GROUP@/EVERYONE@ entries rewritten from ``mode``; named entries kept,
    their allows masked by the group bits; inherit-only entries (for children) untouched.

    >>> new = chmod([Ace(ALLOW, Who.user(5), R_MASK | W_MASK)], 0o740, False)
    >>> [a.mask & (R_MASK | W_MASK) == R_MASK for a in new if a.who == Who.user(5)]
    [True]
    """
    gmask = rwx_mask((mode >> 3) & 7, is_dir) | ALWAYS
    named: Acl = []
    inherit_only: Acl = []
    for a in acl:
        if not a.effective:
            inherit_only.append(a)
        elif not a.who.special:
            named.append(Ace(a.type, a.who, a.mask & gmask if a.type == ALLOW else a.mask, a.flags))
        elif a.flags & INHERIT_FLAGS:  # an effective special ACE that also passes down: keep the inherit part
            inherit_only.append(Ace(a.type, a.who, a.mask, a.flags | INHERIT_ONLY))
    base = from_mode(mode, is_dir)
    owners = [a for a in base if a.who.kind == WhoKind.OWNER]
    rest = [a for a in base if a.who.kind != WhoKind.OWNER]
    return owners + named + rest + inherit_only


def inherit(parent: Acl, is_dir: bool) -> Acl | None:
    """What a new file or directory inherits from its parent's ACL (RFC 8881 §6.4.3); None: nothing.

    >>> p = [Ace(ALLOW, Who.group(50), R_MASK, FILE_INHERIT | DIRECTORY_INHERIT)]
    >>> inherit(p, False)[0].flags == INHERITED
    True
    >>> inherit(p, True)[0].flags == FILE_INHERIT | DIRECTORY_INHERIT | INHERITED
    True
    """
    out: Acl = []
    for a in parent:
        base = a.flags & ~(INHERIT_FLAGS | INHERITED)
        if not is_dir:
            if a.flags & FILE_INHERIT:
                out.append(Ace(a.type, a.who, a.mask, base | INHERITED))
            continue
        if a.flags & DIRECTORY_INHERIT:
            keep = 0 if a.flags & NO_PROPAGATE_INHERIT else a.flags & (FILE_INHERIT | DIRECTORY_INHERIT)
            out.append(Ace(a.type, a.who, a.mask, base | keep | INHERITED))
        elif a.flags & FILE_INHERIT and not a.flags & NO_PROPAGATE_INHERIT:
            out.append(Ace(a.type, a.who, a.mask, base | FILE_INHERIT | INHERIT_ONLY | INHERITED))
    return out or None


def inheritable(acl: Acl | None) -> bool:
    return bool(acl) and any(a.flags & (FILE_INHERIT | DIRECTORY_INHERIT) for a in acl or ())
