"""The identity service: users, keys, groups, credentials and SIDs."""

from __future__ import annotations

import pytest

from core import identity
from core.errors import Exists, InvalidArgument, NotEmpty, NotFound
from core.fs.types import Cred
from core.identity import Group, Identity, User
from core.store import Store


@pytest.fixture
def ident(mem_store: Store) -> Identity:
    return mem_store.identity


def test_users(ident: Identity) -> None:
    u, pair = ident.add_user("alice", "pw")
    assert pair is not None and u.uid >= 1000 and u.gid == u.uid and not u.admin
    assert pair.access_key.startswith("TSR") and len(pair.secret_key) >= 30
    assert u.nt_hash == identity.nt_hash("pw") and u.has_password
    assert ident.check_password("alice", "pw") and not ident.check_password("alice", "no")
    assert not ident.check_password("nobody", "pw")
    b, _ = ident.add_user("bob", admin=True)
    assert b.uid == u.uid + 1 and b.nt_hash is None and b.admin and b.rid == u.rid + 1
    assert ident.user("alice") == u and ident.user("carol") is None
    assert ident.user_by_uid(b.uid) == b
    with pytest.raises(Exists):
        ident.add_user("alice")
    with pytest.raises(Exists, match="uid"):
        ident.add_user("dave", uid=u.uid)
    for bad in ("bad name", "", "-x", ".x", "a" * 65, "a/b"):
        with pytest.raises(InvalidArgument):
            ident.add_user(bad)
    with pytest.raises(InvalidArgument):
        ident.add_user("eve", uid=65534)  # the anonymous uid
    with pytest.raises(InvalidArgument):
        ident.add_user("eve", uid=-1)
    assert [x.name for x in ident.users()] == ["alice", "bob"]
    ident.remove_user("alice")
    with pytest.raises(NotFound):
        ident.remove_user("alice")
    assert ident.lookup_key(pair.access_key) is None
    assert [k.user for k in ident.access_keys()] == ["bob"]


def test_given_ids_and_no_key(ident: Identity) -> None:
    u, pair = ident.add_user("svc", uid=5000, gid=100, key=False)
    assert (u.uid, u.gid, pair) == (5000, 100, None) and ident.access_keys("svc") == []
    nxt, _ = ident.add_user("next")
    assert nxt.uid == 5001  # past every id in use
    with pytest.raises(InvalidArgument, match="both"):
        ident.add_user("half", access_key="AKIAIOSFODNN7EXAMPLE")


def test_lookup_key_gives_user_secret_and_cred(ident: Identity) -> None:
    g = ident.add_group("staff")
    u, pair = ident.add_user("alice", groups=["staff"])
    assert pair is not None
    m = ident.lookup_key(pair.access_key)
    assert m is not None and m.secret_key == pair.secret_key and m.user == u
    assert (m.name, m.uid, m.gid) == ("alice", u.uid, u.gid)  # what the old user record offered
    assert m.cred == Cred(u.uid, u.gid, frozenset({g.gid}), False, "alice")
    assert ident.cred_for("alice") == m.cred
    with pytest.raises(NotFound):
        ident.cred_for("ghost")
    assert ident.lookup_key("AKIANOSUCHKEY0000000") is None


def test_key_rotation(ident: Identity) -> None:
    _, first = ident.add_user("alice")
    assert first is not None
    second = ident.add_key("alice")
    both = ident.access_keys("alice")
    assert [k.access_key for k in both] == [first.access_key, second.access_key]
    assert all(ident.lookup_key(k.access_key) is not None for k in both)  # both work during the switch
    ident.disable_key("alice", first.access_key)
    assert ident.lookup_key(first.access_key) is None and ident.lookup_key(second.access_key) is not None
    assert [k.status for k in ident.access_keys("alice")] == ["disabled", "active"]
    ident.enable_key("alice", first.access_key)
    assert ident.lookup_key(first.access_key) is not None
    ident.remove_key("alice", first.access_key)
    assert ident.lookup_key(first.access_key) is None
    assert ident.key_pair("alice", second.access_key) == second
    ident.add_user("bob")
    with pytest.raises(NotFound):  # a key is managed through its own user only
        ident.remove_key("bob", second.access_key)
    with pytest.raises(NotFound):
        ident.disable_key("alice", "AKIANOSUCHKEY0000000")
    with pytest.raises(NotFound):
        ident.add_key("ghost")
    with pytest.raises(NotFound):
        ident.access_keys("ghost")


@pytest.mark.parametrize("ak, sk", [
    ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),  # AWS
    ("0555b35654ad1656d804", "h7GhxuBLTrlhVUyxSPUKUV8r/2EI4ngqJxD7iBdBYLhwluN30JaT3Q=="),  # Ceph RGW (lower hex)
    ("B5R0T4TBXG1EHXU4ZQ8X", "tZ6ePFXo3qkXjP7yJ2zR9wG6BmU4nS8cQ1dV5hK0"),  # Ceph RGW (upper)
    ("minioadmin", "minioadmin"),  # MinIO root defaults
    ("my-app.key_1", "12345678"),  # MinIO: letters, digits, . _ -; secret 8+
])
def test_import_keys_other_servers_issue(ident: Identity, ak: str, sk: str) -> None:
    ident.add_user("alice", key=False)
    ident.add_key("alice", ak, sk)
    m = ident.lookup_key(ak)
    assert m is not None and m.secret_key == sk


@pytest.mark.parametrize("ak, sk", [
    ("ab", "12345678"), ("a" * 129, "12345678"), ("AK/SLASH00000000", "12345678"), ("AK:COLON0000000", "12345678"),
    ("AK=EQ0000000000", "12345678"), ("AK SPACE0000000", "12345678"), ("AKIAIOSFODNN7EXAMPLE", "1234567"),
    ("AKIAIOSFODNN7EXAMPLE", "has space in it"), ("AKIAIOSFODNN7EXAMPLE", "x" * 129),
    ("AKIAIOSFODNN7EXAMPLE", "non-ascii-é-secret"),
])
def test_bad_imported_keys_refused(ident: Identity, ak: str, sk: str) -> None:
    ident.add_user("alice", key=False)
    with pytest.raises(InvalidArgument, match="key"):
        ident.add_key("alice", ak, sk)
    assert ident.access_keys("alice") == []


def test_key_clashes(ident: Identity) -> None:
    ident.add_user("alice", access_key="AKIAIOSFODNN7EXAMPLE", secret_key="secret-1234")
    with pytest.raises(Exists, match="another user"):
        ident.add_user("bob", access_key="AKIAIOSFODNN7EXAMPLE", secret_key="secret-1234")
    assert ident.user("bob") is None  # nothing half-made
    with pytest.raises(Exists):
        ident.add_key("alice", "AKIAIOSFODNN7EXAMPLE", "secret-1234")


def test_modify_user(ident: Identity) -> None:
    staff, ops = ident.add_group("staff", gid=3000), ident.add_group("ops", gid=3001)
    u, _ = ident.add_user("alice", "old")
    m = ident.modify_user("alice", uid=2000, gid="staff", groups=["ops", "3000"], admin=True, password="new")
    assert (m.uid, m.gid, m.groups, m.gids, m.admin) == (2000, staff.gid, ("ops", "staff"),
                                                          frozenset({3000, 3001}), True)
    assert m.rid == u.rid and m.sid == u.sid  # the SID follows the account, not the uid
    assert ident.check_password("alice", "new") and not ident.check_password("alice", "old")
    assert ident.cred_for("alice") == Cred(2000, 3000, frozenset({3000, 3001}), True, "alice")
    m2 = ident.modify_user("alice", groups=[], admin=False, clear_password=True)
    assert m2.groups == () and not m2.admin and not m2.has_password and m2.uid == 2000
    assert ident.modify_user("alice").uid == 2000  # nothing given: nothing changes
    ident.add_user("bob")
    with pytest.raises(Exists, match="uid 2000"):
        ident.modify_user("bob", uid=2000)
    with pytest.raises(NotFound, match="no group"):
        ident.modify_user("bob", groups=["nope"])
    with pytest.raises(NotFound, match="no group"):
        ident.modify_user("bob", gid="nope")
    with pytest.raises(NotFound):
        ident.modify_user("ghost", admin=True)
    with pytest.raises(InvalidArgument):
        ident.modify_user("bob", password="")
    assert ops.gid == 3001


def test_groups(ident: Identity) -> None:
    ident.add_user("alice")
    ident.add_user("bob")
    g = ident.add_group("staff", members=["alice"])
    assert g.members == ("alice",) and g.gid >= 1000
    assert ident.add_to_group("staff", "bob") and not ident.add_to_group("staff", "bob")
    assert ident.group("staff") == Group("staff", g.gid, g.rid, g.sid, ("alice", "bob"), g.created)
    assert ident.group_by_gid(g.gid) == ident.group("staff")
    u = ident.user("bob")
    assert u is not None and u.groups == ("staff",) and g.gid in u.cred.groups
    ident.remove_from_group("staff", "bob")
    with pytest.raises(NotFound, match="not a member"):
        ident.remove_from_group("staff", "bob")
    with pytest.raises(NotFound):
        ident.add_to_group("staff", "ghost")
    with pytest.raises(NotFound):
        ident.add_to_group("nogroup", "bob")
    with pytest.raises(Exists):
        ident.add_group("staff")
    with pytest.raises(Exists, match="gid"):
        ident.add_group("other", gid=g.gid)
    with pytest.raises(InvalidArgument):
        ident.add_group("bad group")
    assert [x.name for x in ident.groups()] == ["staff"] and ident.groups()[0].members == ("alice",)
    ident.modify_user("bob", gid="staff")
    with pytest.raises(NotEmpty, match="primary group of bob"):
        ident.remove_group("staff")
    ident.modify_user("bob", gid=5000)
    ident.remove_group("staff")
    assert ident.group("staff") is None and ident.user("alice").groups == ()  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        ident.remove_group("staff")


def test_new_ids_avoid_every_uid_and_gid(ident: Identity) -> None:
    ident.add_group("big", gid=4000)
    u, _ = ident.add_user("alice")
    assert u.uid == 4001 == u.gid  # its private gid does not land on the group
    assert ident.add_group("next").gid == 4002


def test_sids(ident: Identity, mem_store: Store) -> None:
    d = ident.domain_sid
    parts = d.split("-")
    assert d.startswith("S-1-5-21-") and len(parts) == 7
    u, _ = ident.add_user("alice")
    g = ident.add_group("staff")
    assert u.sid == f"{d}-{u.rid}" and g.sid == f"{d}-{g.rid}" and u.rid != g.rid and u.rid >= 1000
    assert ident.sid_of_user("alice") == u.sid and ident.sid_of_group("staff") == g.sid
    assert ident.sid_of_uid(u.uid) == u.sid and ident.sid_of_uid(7) == "S-1-22-1-7"
    assert ident.sid_of_gid(g.gid) == g.sid and ident.sid_of_gid(7) == "S-1-22-2-7"
    assert ident.lookup_sid(u.sid) == u and ident.lookup_sid(g.sid) == g
    assert ident.lookup_sid(f"S-1-22-1-{u.uid}") == u and ident.lookup_sid("S-1-22-1-9") is None
    assert ident.lookup_sid("S-1-5-21-1-2-3-1000") is None and ident.lookup_sid("junk") is None
    assert ident.id_of_sid(u.sid) == ("uid", u.uid) and ident.id_of_sid(g.sid) == ("gid", g.gid)
    assert ident.id_of_sid("S-1-22-2-42") == ("gid", 42) and ident.id_of_sid("S-1-1-0") is None
    with pytest.raises(NotFound):
        ident.sid_of_user("ghost")
    ident.remove_user("alice")
    v, _ = ident.add_user("alice")
    assert v.rid > g.rid and ident.lookup_sid(u.sid) is None  # RIDs are never reused
    with mem_store._meta.read() as t:
        assert t.info("domain_sid") == d  # kept, not recomputed


def test_records_protocols_use_are_public() -> None:
    fields = set(User.__dataclass_fields__)
    assert {"name", "uid", "gid", "groups", "gids", "admin", "sid", "nt_hash"} <= fields
    assert identity.KeyMatch.__module__ == "core.identity.records"
