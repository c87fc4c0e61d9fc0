"""Security descriptors <-> core ACLs: impacket's SD structures on both sides, a real store's decision, fuzz."""

from __future__ import annotations

import random
import re
import struct
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from impacket.ldap import ldaptypes as lt  # type: ignore[import-untyped]

from core.errors import PermissionDenied
from core.fs import acl as A
from core.store import Store
from protocols.smb import security as S
from protocols.smb.status import NtStatus

OWNER_UID, OWNER_GID = 1000, 1000
OWNER_SID, GROUP_SID = "S-1-22-1-1000", "S-1-22-2-1000"


class UnixResolver:
    """Samba's S-1-22 forms only: every uid and gid has a SID."""

    def sid_of_uid(self, uid: int) -> str:
        return f"S-1-22-1-{uid}"

    def sid_of_gid(self, gid: int) -> str:
        return f"S-1-22-2-{gid}"

    def id_of_sid(self, sid: str) -> tuple[S.IdKind, int] | None:
        m = re.fullmatch(r"S-1-22-([12])-(\d{1,10})", sid)
        if m is None or int(m[2]) >= 2**32:
            return None
        return ("uid" if m[1] == "1" else "gid"), int(m[2])


R = UnixResolver()


# -- impacket helpers ---------------------------------------------------------------------------
def imp_sid(text: str) -> lt.LDAP_SID:
    s = lt.LDAP_SID()
    s.fromCanonical(text)
    return s


def imp_ace(typ: int, flags: int, mask: int, sid: str) -> lt.ACE:
    ace = lt.ACE()
    ace["AceType"], ace["AceFlags"] = typ, flags
    body = lt.ACCESS_ALLOWED_ACE() if typ == 0 else lt.ACCESS_DENIED_ACE()
    body["Mask"] = lt.ACCESS_MASK()
    body["Mask"]["Mask"] = mask
    body["Sid"] = imp_sid(sid)
    ace["Ace"] = body
    return ace


def imp_sd(owner: str | None, group: str | None, aces: list[lt.ACE] | None, control: int = 0x8004) -> bytes:
    sd = lt.SR_SECURITY_DESCRIPTOR()
    sd["Revision"], sd["Sbz1"], sd["Control"], sd["Sacl"] = b"\x01", b"\x00", control, b""
    sd["OwnerSid"] = imp_sid(owner) if owner else b""
    sd["GroupSid"] = imp_sid(group) if group else b""
    if aces is None:
        sd["Dacl"] = b""
    else:
        dacl = lt.ACL()
        dacl["AclRevision"], dacl["Sbz1"], dacl["Sbz2"] = 2, 0, 0
        dacl.aces = aces
        sd["Dacl"] = dacl
    return bytes(sd.getData())


def imp_parse(raw: bytes) -> tuple[lt.SR_SECURITY_DESCRIPTOR, list[tuple[int, int, int, str]]]:
    sd = lt.SR_SECURITY_DESCRIPTOR(data=raw)
    aces = [(a["AceType"], a["AceFlags"], a["Ace"]["Mask"]["Mask"], a["Ace"]["Sid"].formatCanonical())
            for a in sd["Dacl"].aces] if sd["OffsetDacl"] else []
    return sd, aces


# -- SIDs -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["S-1-1-0", "S-1-5-21-1-2-3-1000", "S-1-22-2-4294967295", "S-1-5"])
def test_sid_round_trip_and_impacket_agrees(text: str) -> None:
    raw = S.sid_to_bytes(text)
    assert raw == imp_sid(text).getData()
    assert S.sid_from_bytes(raw) == (text, len(raw))
    assert lt.LDAP_SID(data=raw).formatCanonical() == text


def test_sid_large_authority_is_hex() -> None:
    raw = S.sid_to_bytes("S-1-0x123456789ABC-5")
    assert raw[2:8] == bytes.fromhex("123456789ABC")
    assert S.sid_from_bytes(raw)[0] == "S-1-0x123456789ABC-5"


@pytest.mark.parametrize("text", ["bogus", "S-2-1-0", "S-1-1-4294967296", "S-1-" + "-1" * 16, "S-1-281474976710656"])
def test_bad_sid_text(text: str) -> None:
    with pytest.raises(S.SecurityError) as e:
        S.sid_to_bytes(text)
    assert e.value.status == NtStatus.INVALID_SID


@pytest.mark.parametrize("raw", [b"", b"\x01\x01\0\0\0\0\0\x01", b"\x02\x00\0\0\0\0\0\x01", b"\x01\x10" + bytes(70)])
def test_bad_sid_bytes(raw: bytes) -> None:
    with pytest.raises(S.SecurityError) as e:
        S.sid_from_bytes(raw)
    assert e.value.status == NtStatus.INVALID_SID


@given(st.integers(0, 2**48 - 1), st.lists(st.integers(0, 2**32 - 1), max_size=15))
def test_sid_round_trip_any(auth: int, subs: list[int]) -> None:
    a = str(auth) if auth < 2**32 else f"0x{auth:012X}"
    text = "S-1-" + a + "".join(f"-{s}" for s in subs)
    assert S.sid_from_bytes(S.sid_to_bytes(text)) == (text, 8 + 4 * len(subs))


# -- core ACL -> SD, read by impacket --------------------------------------------------------------
def test_mode_file_shows_owner_group_and_allows() -> None:
    raw = S.file_descriptor(None, uid=OWNER_UID, gid=OWNER_GID, mode=0o640, is_dir=False, want=S.ALL_INFO,
                            resolver=R)
    sd, aces = imp_parse(raw)
    assert sd["OwnerSid"].formatCanonical() == OWNER_SID and sd["GroupSid"].formatCanonical() == GROUP_SID
    assert sd["Control"] == S.SE_SELF_RELATIVE | S.SE_DACL_PRESENT and sd["OffsetSacl"] == 0
    assert [(t, f, s) for t, f, _, s in aces] == [(0, 0, OWNER_SID), (0, 0, GROUP_SID), (0, 0, S.EVERYONE_SID)]
    assert aces[0][2] == A.R_MASK | A.W_MASK | A.OWNER_ALWAYS
    assert aces[1][2] == A.R_MASK | A.ALWAYS and aces[2][2] == A.ALWAYS


@pytest.mark.parametrize("want", [S.OWNER_SECURITY_INFORMATION, S.GROUP_SECURITY_INFORMATION,
                                  S.DACL_SECURITY_INFORMATION, S.ALL_INFO | S.SACL_SECURITY_INFORMATION])
def test_only_the_parts_asked_for(want: int) -> None:
    raw = S.to_descriptor(A.from_mode(0o755, True), OWNER_SID, GROUP_SID, want, R)
    _, _, c, o_owner, o_group, o_sacl, o_dacl = struct.unpack_from("<BBHIIII", raw)
    assert bool(o_owner) == bool(want & 1) and bool(o_group) == bool(want & 2) and o_sacl == 0
    assert bool(o_dacl) == bool(want & 4) == bool(c & S.SE_DACL_PRESENT)


def test_flags_specials_and_control_bits() -> None:
    acl = [A.Ace(A.ALLOW, A.OWNER, A.FULL_MASK, A.FILE_INHERIT | A.DIRECTORY_INHERIT),
           A.Ace(A.ALLOW, A.GROUP, A.R_MASK, A.FILE_INHERIT | A.INHERIT_ONLY),
           A.Ace(A.ALLOW, A.Who.group(50), A.R_MASK, A.DIRECTORY_INHERIT | A.NO_PROPAGATE_INHERIT | A.INHERITED)]
    sd, aces = imp_parse(S.to_descriptor(acl, OWNER_SID, GROUP_SID, S.DACL_SECURITY_INFORMATION, R, protected=True))
    assert sd["Control"] == 0x8004 | S.SE_DACL_AUTO_INHERITED | S.SE_DACL_PROTECTED
    assert [(f, s) for _, f, _, s in aces] == [
        (0, OWNER_SID), (0x1 | 0x2 | 0x8, S.CREATOR_OWNER_SID), (0x1 | 0x8, S.CREATOR_GROUP_SID),
        (0x2 | 0x4 | 0x10, "S-1-22-2-50")]


def test_canonical_order_where_it_is_safe() -> None:
    acl = [A.Ace(A.ALLOW, A.EVERYONE, A.R_MASK, A.INHERITED), A.Ace(A.ALLOW, A.Who.user(5), A.W_MASK),
           A.Ace(A.DENY, A.Who.user(6), A.W_MASK)]
    _, aces = imp_parse(S.to_descriptor(acl, OWNER_SID, GROUP_SID, S.DACL_SECURITY_INFORMATION, R))
    assert [(t, s) for t, _, _, s in aces] == [(1, "S-1-22-1-6"), (0, "S-1-22-1-5"), (0, S.EVERYONE_SID)]
    unsafe = [A.Ace(A.ALLOW, A.Who.group(7), A.W_MASK), A.Ace(A.DENY, A.Who.user(6), A.W_MASK)]
    assert S.canonical(unsafe) == unsafe  # user 6 may be in group 7: the deny stays second


aces_st = st.lists(st.builds(
    A.Ace, st.sampled_from(list(A.AceType)),
    st.one_of(st.sampled_from([A.OWNER, A.GROUP, A.EVERYONE]), st.builds(A.Who.user, st.integers(1, 4)),
              st.builds(A.Who.group, st.integers(1, 4))),
    st.sampled_from([A.READ_DATA, A.WRITE_DATA, A.READ_DATA | A.WRITE_DATA, A.EXECUTE]),
    st.sampled_from([0, A.INHERITED, A.FILE_INHERIT, A.DIRECTORY_INHERIT | A.INHERIT_ONLY])), max_size=6)


def _decisions(acl: A.Acl, here: tuple[tuple[int, int], ...] = ((1, 1), (2, 3))) -> list[int]:
    """Every caller's access to the inode (owned as ``here`` says) and to new children owned by anyone."""
    want = A.READ_DATA | A.WRITE_DATA | A.EXECUTE
    out = []
    for uid in range(1, 5):
        for gids in ({1}, {2, 3}, set()):
            for owner, group in here:
                out.append(A.evaluate(acl, uid, gids.__contains__, owner, group, want))
            for owner, group in ((1, 1), (2, 3)):
                for is_dir in (False, True):
                    child = A.inherit(acl, is_dir) or []
                    out.append(A.evaluate(child, uid, gids.__contains__, owner, group, want))
    return out


@given(aces_st)
def test_canonical_never_changes_a_decision(acl: A.Acl) -> None:
    assert _decisions(S.canonical(acl)) == _decisions(acl)


@given(aces_st)
def test_round_trip_keeps_every_decision(acl: A.Acl) -> None:
    raw = S.to_descriptor(acl, "S-1-22-1-1", "S-1-22-2-1", S.ALL_INFO, R)
    got = S.from_descriptor(raw, R, 1, 1)
    assert (got.uid, got.gid) == (1, 1) and got.acl is not None
    assert _decisions(got.acl, ((1, 1),)) == _decisions(acl, ((1, 1),))  # the owner's SID: OWNER@ for this file
    assert got.dropped == tuple(S.CREATOR_OWNER_SID if a.who == A.OWNER else S.CREATOR_GROUP_SID
                                for a in acl if a.who.special and a.who != A.EVERYONE
                                and a.flags & A.INHERIT_ONLY and not a.flags & 3)


@given(st.lists(st.builds(
    A.Ace, st.sampled_from(list(A.AceType)),
    st.one_of(st.just(A.EVERYONE), st.builds(A.Who.user, st.integers(2000, 2**32 - 1)),
              st.builds(A.Who.group, st.integers(2000, 2**32 - 1))),
    st.integers(0, A.FULL_MASK).map(lambda m: m & A.FULL_MASK), st.sampled_from(
        [0, A.INHERITED, A.FILE_INHERIT | A.DIRECTORY_INHERIT, A.NO_PROPAGATE_INHERIT | A.DIRECTORY_INHERIT,
         A.INHERIT_ONLY | A.FILE_INHERIT | A.INHERITED])), max_size=8))
def test_round_trip_named_entries_exactly(acl: A.Acl) -> None:
    raw = S.to_descriptor(acl, OWNER_SID, GROUP_SID, S.DACL_SECURITY_INFORMATION, R)
    assert S.from_descriptor(raw, R, OWNER_UID, OWNER_GID, S.DACL_SECURITY_INFORMATION) == S.Parsed(
        acl=S.canonical(acl))


# -- SDs built by impacket -> core -----------------------------------------------------------------
def test_impacket_sd_to_core() -> None:
    raw = imp_sd("S-1-22-1-7", "S-1-22-2-8", [
        imp_ace(1, 0, 0x2, "S-1-22-1-9"),
        imp_ace(0, 0, lt.ACCESS_MASK.GENERIC_READ | lt.ACCESS_MASK.MAXIMUM_ALLOWED, "S-1-22-1-7"),
        imp_ace(0, 0x3, 0x1F01FF, "S-1-22-1-7"),
        imp_ace(0, 0x0B, lt.ACCESS_MASK.GENERIC_ALL, S.CREATOR_OWNER_SID),
        imp_ace(0, 0x10 | 0x40, 0x1, "S-1-22-2-8"),
        imp_ace(0, 0, 0x20, S.EVERYONE_SID),
        imp_ace(0, 0, 0x1, "S-1-5-18"),            # SYSTEM: nobody here
        imp_ace(1, 0, 0x1, S.CREATOR_GROUP_SID),   # not inheritable: matches nobody
        imp_ace(0, 0, 0x1, S.OWNER_RIGHTS_SID)])
    got = S.from_descriptor(raw, R, OWNER_UID, OWNER_GID)
    assert (got.uid, got.gid, got.dropped) == (7, 8, ("S-1-5-18", S.CREATOR_GROUP_SID))
    assert got.acl == [
        A.Ace(A.DENY, A.Who.user(9), A.WRITE_DATA),
        A.Ace(A.ALLOW, A.OWNER, S.FILE_GENERIC_READ),             # the new owner's SID, not inheritable
        A.Ace(A.ALLOW, A.Who.user(7), S.FILE_ALL_ACCESS, A.FILE_INHERIT | A.DIRECTORY_INHERIT),
        A.Ace(A.ALLOW, A.OWNER, S.FILE_ALL_ACCESS, A.FILE_INHERIT | A.DIRECTORY_INHERIT | A.INHERIT_ONLY),
        A.Ace(A.ALLOW, A.GROUP, A.READ_DATA, A.INHERITED),
        A.Ace(A.ALLOW, A.EVERYONE, A.EXECUTE),
        A.Ace(A.ALLOW, A.OWNER, A.READ_DATA)]


def test_want_limits_what_is_read() -> None:
    raw = imp_sd("S-1-5-18", None, [imp_ace(0, 0, 1, S.EVERYONE_SID)])
    got = S.from_descriptor(raw, R, OWNER_UID, OWNER_GID, S.DACL_SECURITY_INFORMATION)
    assert got == S.Parsed(acl=[A.Ace(A.ALLOW, A.EVERYONE, A.READ_DATA)])
    assert S.from_descriptor(raw, R, 1, 1, 0) == S.Parsed()


@pytest.mark.parametrize("control", [0x8004, 0x8000])
def test_null_dacl_is_full_access_for_everyone(control: int) -> None:
    got = S.from_descriptor(imp_sd(None, None, None, control), R, 1, 1, S.DACL_SECURITY_INFORMATION)
    assert got.acl == [A.Ace(A.ALLOW, A.EVERYONE, A.FULL_MASK)]


def test_empty_dacl_is_no_access() -> None:
    assert S.from_descriptor(imp_sd(None, None, []), R, 1, 1, S.DACL_SECURITY_INFORMATION).acl == []


@pytest.mark.parametrize(("owner", "group", "status"), [
    ("S-1-5-18", "S-1-22-2-1", NtStatus.INVALID_OWNER), ("S-1-22-2-1", "S-1-22-2-1", NtStatus.INVALID_OWNER),
    (None, "S-1-22-2-1", NtStatus.INVALID_OWNER), ("S-1-22-1-1", "S-1-5-32-544", NtStatus.INVALID_PRIMARY_GROUP),
    ("S-1-22-1-1", "S-1-22-1-1", NtStatus.INVALID_PRIMARY_GROUP)])
def test_owner_and_group_that_name_nobody(owner: str | None, group: str, status: NtStatus) -> None:
    with pytest.raises(S.SecurityError) as e:
        S.from_descriptor(imp_sd(owner, group, []), R, 1, 1)
    assert e.value.status == status


def _raw_ace(typ: int, body: bytes) -> bytes:
    return struct.pack("<BBH", typ, 0, 4 + len(body)) + body


def _sd_with_ace_bytes(ace: bytes) -> bytes:
    acl = struct.pack("<BBHHH", 2, 0, 8 + len(ace), 1, 0) + ace
    return struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 20) + acl


def test_object_deny_refused_and_other_types_skipped() -> None:
    sid = S.sid_to_bytes(S.EVERYONE_SID)
    deny_obj = _raw_ace(0x6, struct.pack("<II", 1, 0) + sid)
    with pytest.raises(S.SecurityError) as e:
        S.from_descriptor(_sd_with_ace_bytes(deny_obj), R, 1, 1, S.DACL_SECURITY_INFORMATION)
    assert e.value.status == NtStatus.INVALID_ACL
    for typ in (0x2, 0x5, 0x9, 0x11):  # audit, allowed-object, allowed-callback, label
        got = S.from_descriptor(_sd_with_ace_bytes(_raw_ace(typ, struct.pack("<II", 1, 0) + sid)), R, 1, 1,
                                S.DACL_SECURITY_INFORMATION)
        assert got.acl == []


@pytest.mark.parametrize(("raw", "status"), [
    (b"\x01\x00\x04", NtStatus.INVALID_SECURITY_DESCR),
    (struct.pack("<BBHIIII", 1, 0, 0x0004, 0, 0, 0, 0), NtStatus.INVALID_SECURITY_DESCR),   # not self-relative
    (struct.pack("<BBHIIII", 2, 0, 0x8004, 0, 0, 0, 0), NtStatus.INVALID_SECURITY_DESCR),
    (struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 99), NtStatus.INVALID_SECURITY_DESCR),  # offset outside
    (struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 20) + b"\x02\0\x09\0\0\0\0\0\0", NtStatus.INVALID_ACL),
    (struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 20) + b"\x03\0\x08\0\0\0\0\0", NtStatus.INVALID_ACL),
    (struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 20) + b"\x02\0\x08\0\x01\0\0\0", NtStatus.INVALID_ACL),
    (_sd_with_ace_bytes(_raw_ace(0, struct.pack("<I", 1) + b"\x01\x05" + bytes(10))), NtStatus.INVALID_SID),
    (_sd_with_ace_bytes(_raw_ace(0, b"\x01\0\0\0")), NtStatus.INVALID_ACL),
])
def test_malformed(raw: bytes, status: NtStatus) -> None:
    with pytest.raises(S.SecurityError) as e:
        S.from_descriptor(raw, R, 1, 1, S.DACL_SECURITY_INFORMATION)
    assert e.value.status == status


def _valid_sds() -> list[bytes]:
    acl = [A.Ace(A.DENY, A.Who.user(3), A.WRITE_DATA), A.Ace(A.ALLOW, A.OWNER, A.FULL_MASK, 3)]
    return [S.to_descriptor(acl, OWNER_SID, GROUP_SID, S.ALL_INFO, R),
            imp_sd("S-1-22-1-7", "S-1-22-2-8", [imp_ace(0, 3, 0x1F01FF, S.CREATOR_OWNER_SID)])]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200), st.tuples(st.sampled_from(_valid_sds()), st.integers(0, 199),
                                                    st.integers(0, 255)).map(lambda t: _flip(*t))),
       st.integers(0, 15))
def test_fuzz_only_security_errors_escape(raw: bytes, want: int) -> None:
    try:
        got = S.from_descriptor(raw, R, 1, 1, want)
    except S.SecurityError as e:
        assert e.status in NtStatus
    else:
        if got.acl is not None:
            A.validate(got.acl)


def _flip(raw: bytes, pos: int, value: int) -> bytes:
    b = bytearray(raw)
    b[pos % len(b)] = value
    return bytes(b[: len(b) - pos // 100])


# -- a real store: the decision core.fs makes for NFS and S3 too ----------------------------------
@pytest.fixture
def people(mem_store: Store) -> Iterator[tuple[Store, S.IdentityResolver]]:
    ident = mem_store.identity
    ident.add_group("studio", gid=600)
    ident.add_user("alice", uid=1001, gid=600, key=False)
    ident.add_user("bob", uid=1002, key=False)
    mem_store.fs.setattr(mem_store.fs.root, mode=0o755)
    yield mem_store, S.IdentityResolver(ident)


def test_store_chmod_shows_sids(people: tuple[Store, S.IdentityResolver]) -> None:
    store, res = people
    fs, ident = store.fs, store.identity
    f = fs.create(fs.root, "f", 0o600, uid=1001, gid=600)
    alice = fs.as_user(ident.cred_for("alice"))
    alice.setattr(f.ino, mode=0o640)
    attr = fs.getattr(f.ino)
    acl, stored = alice.getacl(f.ino)
    raw = S.file_descriptor(acl if stored else None, uid=attr.uid, gid=attr.gid, mode=attr.perm,
                            is_dir=attr.is_dir, want=S.ALL_INFO, resolver=res)
    sd, aces = imp_parse(raw)
    alice_sid, studio_sid = ident.sid_of_user("alice"), ident.sid_of_group("studio")
    assert alice_sid.startswith(ident.domain_sid + "-") and studio_sid.startswith(ident.domain_sid + "-")
    assert (sd["OwnerSid"].formatCanonical(), sd["GroupSid"].formatCanonical()) == (alice_sid, studio_sid)
    assert [(t, s) for t, _, _, s in aces] == [(0, alice_sid), (0, studio_sid), (0, S.EVERYONE_SID)]
    assert aces[1][2] & A.READ_DATA and not aces[1][2] & A.WRITE_DATA and not aces[2][2] & A.READ_DATA


def test_store_grant_and_deny_through_a_descriptor(people: tuple[Store, S.IdentityResolver]) -> None:
    store, res = people
    fs, ident = store.fs, store.identity
    f = fs.write_file(fs.root, "f", b"hello", mode=0o600, uid=1001, gid=600)
    alice, bob = fs.as_user(ident.cred_for("alice")), fs.as_user(ident.cred_for("bob"))
    with pytest.raises(PermissionDenied):
        bob.read(f.ino, 0, 5)
    alice_sid, bob_sid = ident.sid_of_user("alice"), ident.sid_of_user("bob")
    owner_ace = imp_ace(0, 0, 0x1F01FF, alice_sid)
    grant = imp_sd(None, None, [owner_ace, imp_ace(0, 0, lt.ACCESS_MASK.GENERIC_READ, bob_sid)])
    parsed = S.from_descriptor(grant, res, 1001, 600, S.DACL_SECURITY_INFORMATION)
    assert parsed.acl is not None and parsed.acl[0].who == A.OWNER
    alice.setacl(f.ino, parsed.acl)
    assert bob.read(f.ino, 0, 5) == b"hello"
    assert bob.access(f.ino, A.READ_DATA | A.WRITE_DATA) == A.READ_DATA
    deny = imp_sd(None, None, [imp_ace(1, 0, A.READ_DATA, bob_sid), owner_ace,
                               imp_ace(0, 0, lt.ACCESS_MASK.GENERIC_READ, bob_sid)])
    parsed = S.from_descriptor(deny, res, 1001, 600, S.DACL_SECURITY_INFORMATION)
    assert parsed.acl is not None
    alice.setacl(f.ino, parsed.acl)
    with pytest.raises(PermissionDenied):
        bob.read(f.ino, 0, 5)
    assert bob.access(f.ino, A.READ_DATA) == 0 and alice.read(f.ino, 0, 5) == b"hello"
    _, aces = imp_parse(S.file_descriptor(alice.getacl(f.ino)[0], uid=1001, gid=600, mode=0, is_dir=False,
                                          want=S.DACL_SECURITY_INFORMATION, resolver=res))
    assert [(t, s) for t, _, _, s in aces] == [(1, bob_sid), (0, alice_sid), (0, bob_sid)]


def test_store_owner_change_through_a_descriptor(people: tuple[Store, S.IdentityResolver]) -> None:
    store, res = people
    raw = imp_sd(store.identity.sid_of_user("bob"), store.identity.sid_of_group("studio"), None, 0x8000)
    got = S.from_descriptor(raw, res, 1001, 600, S.OWNER_SECURITY_INFORMATION | S.GROUP_SECURITY_INFORMATION)
    assert (got.uid, got.gid, got.acl) == (1002, 600, None)
    with pytest.raises(S.SecurityError) as e:
        S.from_descriptor(imp_sd(store.identity.domain_sid + "-999999", None, None, 0x8000), res, 1, 1,
                          S.OWNER_SECURITY_INFORMATION)
    assert e.value.status == NtStatus.INVALID_OWNER


def test_identity_resolver_with_odd_sids(people: tuple[Store, S.IdentityResolver]) -> None:
    """SIDs of every shape through the real identity service: an answer or a SecurityError, nothing else."""
    store, res = people
    rng = random.Random(11)
    domain = store.identity.domain_sid
    shapes = [lambda: f"{domain}-{rng.choice([0, 999, 1000, 1001, 1002, 2**32 - 1])}",
              lambda: f"S-1-22-{rng.randint(0, 3)}-{rng.randint(0, 2**32 - 1)}",
              lambda: f"S-1-{rng.randint(0, 2**48 - 1)}" + "".join(f"-{rng.randint(0, 2**32 - 1)}"
                                                                     for _ in range(rng.randint(0, 15)))]
    seen = set()
    for _ in range(300):
        sids = [rng.choice(shapes)() for _ in range(3)]
        try:
            raw = imp_sd(None, None, [imp_ace(rng.randint(0, 1), rng.randint(0, 31), 0x1F01FF, s) for s in sids])
        except Exception:  # impacket's fromCanonical takes one-byte authorities only: build ours instead
            aces = b"".join(_raw_ace(0, struct.pack("<I", 1) + S.sid_to_bytes(s)) for s in sids)
            raw = struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 20) + struct.pack(
                "<BBHHH", 2, 0, 8 + len(aces), 3, 0) + aces
        try:
            got = S.from_descriptor(raw, res, 1001, 600, S.DACL_SECURITY_INFORMATION)
        except S.SecurityError as e:
            seen.add(e.status)
            continue
        assert got.acl is not None and len(got.acl) + len(got.dropped) == 3
        seen.add(NtStatus.SUCCESS)
    assert NtStatus.SUCCESS in seen
