"""NT security descriptors (MS-DTYP 2.4.6, self-relative) <-> the core ACL model (core.fs.acl), sans-IO.

Public interface:

- :func:`sid_to_bytes` / :func:`sid_from_bytes`: the SID codec (MS-DTYP 2.4.2).
- :func:`to_descriptor` (QUERY_INFO SMB2_0_INFO_SECURITY): a core ACL plus the owner and group SIDs
  -> a self-relative SD with the parts ``want`` (a SECURITY_INFORMATION mask) asks for.  No SACL is
  ever answered.  :func:`file_descriptor` does the same from a file's uid, gid and stored ACL (or,
  without one, its mode bits through ``acl.from_mode``): what the server calls with ``getacl``'s
  answer and ``getattr``'s ids.
- :func:`from_descriptor` (SET_INFO SMB2_0_INFO_SECURITY): SD bytes -> :class:`Parsed` (a new owner
  uid, group gid and core ACL, each None when not set); every failure is a :class:`SecurityError`
  carrying the NTSTATUS to answer.
- :class:`SidResolver`: uid/gid <-> SID; :class:`IdentityResolver` adapts ``core.identity.Identity``.

Mapping (NFSv4 ACE <-> NT ACE)
------------------------------
The access mask is the same number both ways; on the way in, GENERIC_* bits become the
FILE_GENERIC_* rights and bits the core cannot hold (MAXIMUM_ALLOWED, ACCESS_SYSTEM_SECURITY)
are dropped.  Flags: FILE_INHERIT = OBJECT_INHERIT 0x1, DIRECTORY_INHERIT = CONTAINER_INHERIT 0x2,
NO_PROPAGATE 0x4, INHERIT_ONLY 0x8; core INHERITED 0x80 <-> NT INHERITED_ACE 0x10.  Who:

- ``EVERYONE@`` <-> Everyone ``S-1-1-0``;
- ``OWNER@``/``GROUP@`` -> the file's owner/group SID; an inherit-only one -> CREATOR OWNER
  ``S-1-3-0`` / CREATOR GROUP ``S-1-3-1``; one that applies here *and* is inherited is shown as the
  two ACEs Windows uses for that (owner SID here, CREATOR OWNER inherit-only);
- coming back, the owner's (group's) SID on a non-inheritable ACE becomes ``OWNER@`` (``GROUP@``),
  on an inheritable ACE the named user (group): the grant follows that person to new files (so a
  named entry for the file's own owner comes back as ``OWNER@``: the same decision for this file);
  OWNER RIGHTS ``S-1-3-4`` becomes ``OWNER@``; CREATOR OWNER/GROUP become inherit-only
  ``OWNER@``/``GROUP@`` (on a non-inheritable ACE they match nobody, as on Windows: skipped);
- users and groups <-> their SIDs through the resolver.

Choices (documented here, tested in tests/protocols/smb/test_security.py):

- An ACE whose SID names nobody in this store (SYSTEM, BUILTIN\\Administrators, Authenticated
  Users, another domain's accounts) is skipped and listed in ``Parsed.dropped`` (the server may log
  it): no Tessera credential carries that SID, so neither an allow nor a deny for it changes any
  decision.  (Authenticated Users is not widened to ``EVERYONE@``: fewer grants, never more.)  Setting an
  owner or group that names nobody (or a group as owner, a user as group) fails with
  INVALID_OWNER / INVALID_PRIMARY_GROUP.
- A NULL DACL (SE_DACL_PRESENT with no DACL, or DACL asked for but not present) grants full access
  to everyone, as Windows does: ``[ALLOW EVERYONE@ FULL_MASK]``.
- ACE types the NT access check skips (audit, alarm, label, resource attribute) are skipped; the
  object and callback *allow* types are skipped (fewer grants, never more); their *deny* types
  fail with INVALID_ACL, since skipping them would grant what the client meant to deny.
- Malformed bytes: INVALID_SECURITY_DESCR (header, offsets, not self-relative), INVALID_ACL (ACL
  or ACE layout, an ACL size not a multiple of 4, more than core's MAX_ACES), INVALID_SID (a SID's layout).
- Order: explicit denies, explicit allows, inherited ACEs (canonical NT order), but an ACE moves
  ahead of another only where the swap cannot change a decision (same type, disjoint masks, two
  different named users, or one applies here and the other only to children); so a mode-derived
  ACL such as 0o604's (``OWNER@`` allow before a ``GROUP@`` deny) is shown in core's order, which
  Windows evaluates the same way core does.
- SE_DACL_AUTO_INHERITED is set when an ACE was inherited; SE_DACL_PROTECTED when the caller says
  so (the core ACL keeps no such bit); ``Parsed.protected`` reports the client's.

>>> sid_from_bytes(sid_to_bytes("S-1-5-21-1-2-3-1000"))
('S-1-5-21-1-2-3-1000', 28)
>>> class R:
...     def sid_of_uid(self, uid: int) -> str: return f"S-1-22-1-{uid}"
...     def sid_of_gid(self, gid: int) -> str: return f"S-1-22-2-{gid}"
...     def id_of_sid(self, sid: str):
...         kind = {"S-1-22-1": "uid", "S-1-22-2": "gid"}.get(sid[:8])
...         return (kind, int(sid[9:])) if kind else None
>>> sd = to_descriptor([A.Ace(A.ALLOW, A.Who.user(7), A.READ_DATA)], "S-1-22-1-1", "S-1-22-2-1", ALL_INFO, R())
>>> from_descriptor(sd, R(), 1, 1).acl == [A.Ace(A.ALLOW, A.Who.user(7), A.READ_DATA)]
True
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol

from core.fs import acl as A
from protocols.smb.status import NtStatus

if TYPE_CHECKING:
    from core.identity import Identity

# SECURITY_INFORMATION (MS-DTYP 2.4.7)
OWNER_SECURITY_INFORMATION = 0x1
GROUP_SECURITY_INFORMATION = 0x2
DACL_SECURITY_INFORMATION = 0x4
SACL_SECURITY_INFORMATION = 0x8
ALL_INFO = OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION

# SECURITY_DESCRIPTOR control bits (MS-DTYP 2.4.6)
SE_DACL_PRESENT = 0x0004
SE_DACL_AUTO_INHERITED = 0x0400
SE_DACL_PROTECTED = 0x1000
SE_SELF_RELATIVE = 0x8000

# ACE types (MS-DTYP 2.4.4.1) and flags
ACCESS_ALLOWED_ACE_TYPE, ACCESS_DENIED_ACE_TYPE = 0x0, 0x1
_SKIPPED_DENY_TYPES = (0x6, 0xA, 0xC)  # object, callback, callback-object denies: refused
OBJECT_INHERIT_ACE, CONTAINER_INHERIT_ACE, NO_PROPAGATE_INHERIT_ACE, INHERIT_ONLY_ACE = 0x1, 0x2, 0x4, 0x8
INHERITED_ACE = 0x10

# well-known SIDs
EVERYONE_SID = "S-1-1-0"
CREATOR_OWNER_SID = "S-1-3-0"
CREATOR_GROUP_SID = "S-1-3-1"
OWNER_RIGHTS_SID = "S-1-3-4"

# generic rights and the file rights they stand for (MS-DTYP 2.4.3, the file object's generic mapping)
GENERIC_READ, GENERIC_WRITE, GENERIC_EXECUTE, GENERIC_ALL = 0x80000000, 0x40000000, 0x20000000, 0x10000000
FILE_GENERIC_READ, FILE_GENERIC_WRITE, FILE_GENERIC_EXECUTE = 0x120089, 0x120116, 0x1200A0
FILE_ALL_ACCESS = 0x1F01FF
_GENERIC = ((GENERIC_READ, FILE_GENERIC_READ), (GENERIC_WRITE, FILE_GENERIC_WRITE),
            (GENERIC_EXECUTE, FILE_GENERIC_EXECUTE), (GENERIC_ALL, FILE_ALL_ACCESS))

_SD_HEAD = struct.Struct("<BBHIIII")
_ACL_HEAD = struct.Struct("<BBHHH")
_ACE_HEAD = struct.Struct("<BBHI")  # type, flags, size, mask
_SID_TEXT = re.compile(r"S-1-(0x[0-9A-Fa-f]{1,12}|\d{1,15})((?:-\d{1,10}){0,15})")

IdKind = Literal["uid", "gid"]


class SecurityError(Exception):
    """A security descriptor that cannot be read or applied; ``status`` is the NTSTATUS to answer."""

    def __init__(self, status: NtStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class SidResolver(Protocol):
    """uid/gid <-> SID for one store."""

    def sid_of_uid(self, uid: int) -> str: ...

    def sid_of_gid(self, gid: int) -> str: ...

    def id_of_sid(self, sid: str) -> tuple[IdKind, int] | None:
        """("uid", N) or ("gid", N); None when the SID names nobody here."""


@dataclass(frozen=True, slots=True)
class IdentityResolver:
    """:class:`SidResolver` over ``core.identity.Identity`` (domain SIDs and Samba's S-1-22 forms)."""

    identity: Identity

    def sid_of_uid(self, uid: int) -> str:
        return self.identity.sid_of_uid(uid)

    def sid_of_gid(self, gid: int) -> str:
        return self.identity.sid_of_gid(gid)

    def id_of_sid(self, sid: str) -> tuple[IdKind, int] | None:
        got = self.identity.id_of_sid(sid)
        if got is None:
            return None
        return ("uid", got[1]) if got[0] == "uid" else ("gid", got[1])


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a SET_INFO security descriptor asks for: each part None when it does not set it."""

    uid: int | None = None
    gid: int | None = None
    acl: A.Acl | None = None
    protected: bool = False           # SE_DACL_PROTECTED: the client wants inheritance blocked
    dropped: tuple[str, ...] = ()     # SIDs of ACEs skipped because they name nobody here


# -- SIDs (MS-DTYP 2.4.2) -----------------------------------------------------------------------
def sid_to_bytes(sid: str) -> bytes:
    """The binary SID of ``S-1-AUTH-SUB...`` (AUTH decimal, or hex ``0x...`` when >= 2**32).

    >>> sid_to_bytes("S-1-1-0").hex()
    '010100000000000100000000'
    """
    m = _SID_TEXT.fullmatch(sid)
    if m is None:
        raise SecurityError(NtStatus.INVALID_SID, f"not a SID: {sid[:80]!r}")
    auth = int(m[1], 0)
    subs = [int(s) for s in m[2].split("-")[1:]]
    if auth >= 2**48 or any(s >= 2**32 for s in subs):
        raise SecurityError(NtStatus.INVALID_SID, f"SID value out of range: {sid[:80]!r}")
    return struct.pack("<BB", 1, len(subs)) + auth.to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)


def sid_from_bytes(buf: bytes, off: int = 0, end: int | None = None) -> tuple[str, int]:
    """(the SID's text, the offset just past it) for the binary SID at ``off``, read within ``end``.

    >>> sid_from_bytes(bytes.fromhex("010100000000000100000000"))
    ('S-1-1-0', 12)
    """
    end = len(buf) if end is None else end
    if off < 0 or off + 8 > end:
        raise SecurityError(NtStatus.INVALID_SID, "SID past the end of its buffer")
    rev, count = buf[off], buf[off + 1]
    stop = off + 8 + 4 * count
    if rev != 1 or count > 15 or stop > end:
        raise SecurityError(NtStatus.INVALID_SID, f"bad SID (revision {rev}, {count} sub-authorities)")
    auth = int.from_bytes(buf[off + 2:off + 8], "big")
    subs = struct.unpack_from(f"<{count}I", buf, off + 8)
    text = str(auth) if auth < 2**32 else f"0x{auth:012X}"
    return "S-1-" + text + "".join(f"-{s}" for s in subs), stop


# -- masks and flags ------------------------------------------------------------------------------
def core_mask(nt_mask: int) -> int:
    """The core access mask of an NT one: generic rights mapped to file rights, other bits dropped.

    >>> hex(core_mask(GENERIC_READ | 0x02000000))
    '0x120089'
    """
    m = nt_mask & A.FULL_MASK
    for generic, specific in _GENERIC:
        if nt_mask & generic:
            m |= specific
    return m


def nt_flags(flags: int) -> int:
    """NT ACE flags of core ACE flags (core INHERITED 0x80 -> INHERITED_ACE 0x10)."""
    return (flags & A.INHERIT_FLAGS) | (INHERITED_ACE if flags & A.INHERITED else 0)


def core_flags(flags: int) -> int:
    """Core ACE flags of NT ones (audit flags 0x40/0x80 dropped: they mean nothing in a DACL)."""
    return (flags & A.INHERIT_FLAGS) | (A.INHERITED if flags & INHERITED_ACE else 0)


# -- core ACL -> SD -------------------------------------------------------------------------------
class NtAce(NamedTuple):
    type: int
    flags: int
    mask: int
    sid: str


def _rank(a: A.Ace) -> int:
    return 2 if a.flags & A.INHERITED else (0 if a.type == A.DENY else 1)


def _commute(a: A.Ace, b: A.Ace) -> bool:
    """May a and b trade places without changing any decision, here or in what children inherit?"""
    if a.type == b.type or not a.mask & b.mask:
        return True
    if a.who.kind == b.who.kind == A.WhoKind.USER and a.who.id != b.who.id:
        return True
    inherits = A.FILE_INHERIT | A.DIRECTORY_INHERIT
    both_here = a.effective and b.effective
    both_down = bool(a.flags & inherits and b.flags & inherits)
    return not both_here and not both_down


def canonical(acl: A.Acl) -> A.Acl:
    """Explicit denies, explicit allows, inherited ACEs, as far as reordering cannot change a decision.

    >>> acl = [A.Ace(A.ALLOW, A.Who.user(1), A.READ_DATA), A.Ace(A.DENY, A.Who.user(2), A.READ_DATA)]
    >>> [a.type.name for a in canonical(acl)]
    ['DENY', 'ALLOW']
    >>> [a.type.name for a in canonical(A.from_mode(0o604, False))]
    ['ALLOW', 'DENY', 'ALLOW']
    """
    out: A.Acl = []
    for a in acl:
        i = len(out)
        while i > 0 and _rank(out[i - 1]) > _rank(a) and _commute(out[i - 1], a):
            i -= 1
        out.insert(i, a)
    return out


def nt_aces(acl: A.Acl, owner_sid: str, group_sid: str, resolver: SidResolver) -> list[NtAce]:
    """The NT ACEs showing ``acl`` on a file owned by owner_sid:group_sid, in canonical order."""
    out: list[NtAce] = []
    for a in canonical(acl):
        typ, flags, mask = int(a.type), nt_flags(a.flags), a.mask
        kind = a.who.kind
        if kind in (A.WhoKind.OWNER, A.WhoKind.GROUP):
            here, creator = ((owner_sid, CREATOR_OWNER_SID) if kind == A.WhoKind.OWNER
                             else (group_sid, CREATOR_GROUP_SID))
            if a.effective:
                out.append(NtAce(typ, flags & ~A.INHERIT_FLAGS, mask, here))
            if flags & (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE):
                out.append(NtAce(typ, flags | INHERIT_ONLY_ACE, mask, creator))
            elif not a.effective:  # inherit-only without inheritance: keep it visible as it is
                out.append(NtAce(typ, flags, mask, creator))
            continue
        if kind == A.WhoKind.EVERYONE:
            sid = EVERYONE_SID
        elif kind == A.WhoKind.USER:
            sid = resolver.sid_of_uid(a.who.id)
        else:
            sid = resolver.sid_of_gid(a.who.id)
        out.append(NtAce(typ, flags, mask, sid))
    return out


def encode_acl(aces: list[NtAce]) -> bytes:
    """An ACL (revision 2) of ACCESS_ALLOWED/ACCESS_DENIED ACEs."""
    body = b"".join(_ACE_HEAD.pack(a.type, a.flags, _ACE_HEAD.size + len(s), a.mask) + s
                    for a in aces for s in [sid_to_bytes(a.sid)])
    size = _ACL_HEAD.size + len(body)
    if size > 0xFFFF:
        raise SecurityError(NtStatus.INVALID_ACL, "ACL larger than 64 KiB")
    return _ACL_HEAD.pack(2, 0, size, len(aces), 0) + body


def to_descriptor(acl: A.Acl, owner_sid: str, group_sid: str, want: int, resolver: SidResolver, *,
                  protected: bool = False) -> bytes:
    """A self-relative SD with the owner, group and DACL as ``want`` asks (never a SACL)."""
    control = SE_SELF_RELATIVE
    owner = sid_to_bytes(owner_sid) if want & OWNER_SECURITY_INFORMATION else b""
    group = sid_to_bytes(group_sid) if want & GROUP_SECURITY_INFORMATION else b""
    dacl = b""
    if want & DACL_SECURITY_INFORMATION:
        control |= SE_DACL_PRESENT | (SE_DACL_PROTECTED if protected else 0)
        if any(a.flags & A.INHERITED for a in acl):
            control |= SE_DACL_AUTO_INHERITED
        dacl = encode_acl(nt_aces(acl, owner_sid, group_sid, resolver))
    offsets, pos = [], _SD_HEAD.size
    for part in (owner, group, dacl):
        offsets.append(pos if part else 0)
        pos += len(part)
    return _SD_HEAD.pack(1, 0, control, offsets[0], offsets[1], 0, offsets[2]) + owner + group + dacl


def file_descriptor(acl: A.Acl | None, *, uid: int, gid: int, mode: int, is_dir: bool, want: int,
                    resolver: SidResolver, protected: bool = False) -> bytes:
    """:func:`to_descriptor` for a file: its stored ACL, or its mode bits' ACL when it has none."""
    shown = acl if acl is not None else A.from_mode(mode, is_dir)
    return to_descriptor(shown, resolver.sid_of_uid(uid), resolver.sid_of_gid(gid), want, resolver,
                         protected=protected)


# -- SD -> core -----------------------------------------------------------------------------------
def _header(raw: bytes) -> tuple[int, int, int, int]:
    if len(raw) < _SD_HEAD.size:
        raise SecurityError(NtStatus.INVALID_SECURITY_DESCR, "security descriptor shorter than its header")
    rev, _, control, o_owner, o_group, _, o_dacl = _SD_HEAD.unpack_from(raw, 0)
    if rev != 1 or not control & SE_SELF_RELATIVE:
        raise SecurityError(NtStatus.INVALID_SECURITY_DESCR, "not a self-relative revision-1 security descriptor")
    for off in (o_owner, o_group, o_dacl):
        if off and not _SD_HEAD.size <= off < len(raw):
            raise SecurityError(NtStatus.INVALID_SECURITY_DESCR, f"offset {off} outside the descriptor")
    return control, o_owner, o_group, o_dacl


def _id_at(raw: bytes, off: int, resolver: SidResolver, kind: IdKind, status: NtStatus) -> int:
    if not off:
        raise SecurityError(status, f"the descriptor sets no {'owner' if kind == 'uid' else 'group'}")
    sid, _ = sid_from_bytes(raw, off)
    got = resolver.id_of_sid(sid)
    if got is None or got[0] != kind:
        raise SecurityError(status, f"{sid} names no {'user' if kind == 'uid' else 'group'} here")
    return got[1]


def _who(sid: str, flags: int, resolver: SidResolver, uid: int, gid: int) -> tuple[A.Who, int] | None:
    """(who, extra core flags) for an ACE's SID; None: it names nobody here."""
    inheritable = flags & (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE)
    if sid == EVERYONE_SID:
        return A.EVERYONE, 0
    if sid == OWNER_RIGHTS_SID:
        return A.OWNER, 0
    if sid in (CREATOR_OWNER_SID, CREATOR_GROUP_SID):
        return ((A.OWNER if sid == CREATOR_OWNER_SID else A.GROUP), A.INHERIT_ONLY) if inheritable else None
    got = resolver.id_of_sid(sid)
    if got is None:
        return None
    kind, n = got
    if kind == "uid":
        return (A.OWNER if n == uid and not inheritable else A.Who.user(n)), 0
    return (A.GROUP if n == gid and not inheritable else A.Who.group(n)), 0


def _acl_at(raw: bytes, off: int, resolver: SidResolver, uid: int, gid: int) -> tuple[A.Acl, list[str]]:
    if off + _ACL_HEAD.size > len(raw):
        raise SecurityError(NtStatus.INVALID_ACL, "ACL header past the end of the descriptor")
    rev, _, size, count, _ = _ACL_HEAD.unpack_from(raw, off)
    end = off + size
    if rev not in (2, 4) or size < _ACL_HEAD.size or size % 4 or end > len(raw):
        raise SecurityError(NtStatus.INVALID_ACL, f"bad ACL (revision {rev}, size {size})")
    out: A.Acl = []
    dropped: list[str] = []
    pos = off + _ACL_HEAD.size
    for _ in range(count):
        if pos + 4 > end:
            raise SecurityError(NtStatus.INVALID_ACL, "ACE past the end of its ACL")
        typ, flags, ace_size = struct.unpack_from("<BBH", raw, pos)
        if ace_size < 4 or pos + ace_size > end:
            raise SecurityError(NtStatus.INVALID_ACL, f"bad ACE size {ace_size}")
        if typ in _SKIPPED_DENY_TYPES:
            raise SecurityError(NtStatus.INVALID_ACL, f"ACE type {typ:#x} (object/callback deny) is not supported")
        if typ in (ACCESS_ALLOWED_ACE_TYPE, ACCESS_DENIED_ACE_TYPE):
            if ace_size < _ACE_HEAD.size + 8:
                raise SecurityError(NtStatus.INVALID_ACL, f"ACE of {ace_size} bytes is too short")
            mask = struct.unpack_from("<I", raw, pos + 4)[0]
            sid, _ = sid_from_bytes(raw, pos + _ACE_HEAD.size, pos + ace_size)
            who = _who(sid, flags, resolver, uid, gid)
            if who is None:
                dropped.append(sid)
            else:
                out.append(A.Ace(A.AceType(typ), who[0], core_mask(mask), core_flags(flags) | who[1]))
        pos += ace_size
    if len(out) > A.MAX_ACES:
        raise SecurityError(NtStatus.INVALID_ACL, f"an ACL holds at most {A.MAX_ACES} entries")
    return out, dropped


def from_descriptor(raw: bytes, resolver: SidResolver, owner_uid: int, owner_gid: int,
                    want: int = ALL_INFO) -> Parsed:
    """What a client's self-relative SD sets, for the parts ``want`` names (the SET_INFO's
    AdditionalInformation); ``owner_uid``/``owner_gid``: the file's current owner and group."""
    raw = bytes(raw)
    control, o_owner, o_group, o_dacl = _header(raw)
    uid = gid = None
    if want & OWNER_SECURITY_INFORMATION:
        uid = _id_at(raw, o_owner, resolver, "uid", NtStatus.INVALID_OWNER)
    if want & GROUP_SECURITY_INFORMATION:
        gid = _id_at(raw, o_group, resolver, "gid", NtStatus.INVALID_PRIMARY_GROUP)
    if not want & DACL_SECURITY_INFORMATION:
        return Parsed(uid, gid)
    protected = bool(control & SE_DACL_PROTECTED)
    if not control & SE_DACL_PRESENT or not o_dacl:  # a NULL DACL: everyone may do anything (Windows)
        return Parsed(uid, gid, [A.Ace(A.ALLOW, A.EVERYONE, A.FULL_MASK)], protected)
    acl, dropped = _acl_at(raw, o_dacl, resolver, owner_uid if uid is None else uid,
                           owner_gid if gid is None else gid)
    return Parsed(uid, gid, acl, protected, tuple(dropped))
