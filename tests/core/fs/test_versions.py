"""Versions, the trash can and retention in core.fs (SQLite and PostgreSQL metadata)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from core.errors import Exists, InvalidArgument, Locked, NotFound, NotPermitted, PermissionDenied, Stale
from core.fs import Cred, FileSystem
from core.store import Store

ALICE = Cred(1000, 1000, name="alice")
BOB = Cred(1001, 1001, name="bob")
DAY = 86400 * 10**9


def _read(fs: FileSystem, ino: int) -> bytes:
    v = fs.reading_versions()
    return v.read(ino, 0, v.getattr(ino).size)


def _bucket(fs: FileSystem, name: str = "b", versioning: str | None = None, days: float | None = None) -> int:
    d = fs.mkdir(fs.root, name, 0o777)
    fs.set_tree_policy(d.ino, versioning=versioning, trash_days=days)
    return d.ino


def test_trash_keeps_deleted_and_overwritten_files(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, days=1)
    fs.write_file(b, "k", b"one")
    fs.write_file(b, "k", b"two")  # overwrite: the old content goes to the trash
    fs.unlink(b, "k")
    vs = fs.versions("/b/k")
    assert [(v.kind, v.reason) for v in vs] == [("trash", "delete"), ("trash", "overwrite")]
    assert [_read(fs, v.ino) for v in vs] == [b"two", b"one"]
    assert all(v.vid == "null" and v.by_name == "root" for v in vs)
    assert vs[0].expires_ns is not None and vs[0].expires_ns - vs[0].replaced_ns == DAY
    assert [v.path for v in fs.trash("/b")] == ["/b/k"]
    fs.trash_restore("/b/k")
    assert fs.read(fs.lookup(b, "k").ino, 0, 10) == b"two"
    fs.unlink(b, "k")
    fs.write_file(b, "k", b"three")
    with pytest.raises(Exists):  # something lives there now
        fs.trash_restore("/b/k")
    fs.trash_restore("/b/k", to="/b/k.restored")
    assert fs.read(fs.lookup(b, "k.restored").ino, 0, 10) == b"two"


def test_deleted_inode_is_stale_outside_a_versions_view(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, days=1)
    a = fs.write_file(b, "k", b"x" * 100_000)
    fs.unlink(b, "k")
    with pytest.raises(Stale):
        fs.getattr(a.ino)
    with pytest.raises(Stale):
        fs.write(a.ino, 0, b"y")
    assert fs.reading_versions().getattr(a.ino).size == 100_000
    with pytest.raises(Stale):  # a versions view reads, never writes
        fs.reading_versions().write(a.ino, 0, b"y")


def test_no_policy_deletes_for_good(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, days=0)
    fs.write_file(b, "k", b"one")
    fs.unlink(b, "k")
    assert fs.versions("/b/k") == []


def test_enabled_versioning_markers_and_settle(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, versioning="enabled", days=0)
    v1 = fs.version_id(fs.write_file(b, "k", b"one").ino)
    v2 = fs.version_id(fs.write_file(b, "k", b"two").ino)
    assert v1 != "null" and v2 != "null" and v1 < v2
    vs = fs.versions("/b/k")
    assert [(v.kind, v.vid, v.latest) for v in vs] == [("current", v2, True), ("version", v1, False)]
    fs.unlink(b, "k")  # a delete adds a marker; the content stays a version
    vs = fs.versions("/b/k")
    assert [v.kind for v in vs] == ["marker", "version", "version"] and vs[0].latest
    marker = vs[0].vid
    fs.delete_version("/b/k", marker)  # deleting the marker brings the newest version back
    assert fs.read(fs.lookup(b, "k").ino, 0, 10) == b"two"
    assert fs.version_id(fs.lookup(b, "k").ino) == v2
    fs.delete_version("/b/k", v2)  # deleting the current version: the previous one becomes current
    assert fs.read(fs.lookup(b, "k").ino, 0, 10) == b"one"
    assert [v.vid for v in fs.versions("/b/k")] == [v1]
    with pytest.raises(NotFound):
        fs.delete_version("/b/k", "nope")


def test_suspended_versioning_null_version(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, versioning="enabled", days=0)
    v1 = fs.version_id(fs.write_file(b, "k", b"one").ino)
    fs.set_tree_policy(b, versioning="suspended")
    a = fs.write_file(b, "k", b"two")
    assert fs.version_id(a.ino) == "null"
    fs.write_file(b, "k", b"three")  # replaces the null version: it is not kept
    vs = fs.versions("/b/k")
    assert [(v.kind, v.vid) for v in vs] == [("current", "null"), ("version", v1)]
    fs.unlink(b, "k")  # a null marker; the null content goes
    vs = fs.versions("/b/k")
    assert [(v.kind, v.vid) for v in vs] == [("marker", "null"), ("version", v1)]
    with pytest.raises(InvalidArgument):
        fs.set_tree_policy(b, versioning="off")


def test_truncate_to_zero_keeps_a_version(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, versioning="enabled")
    a = fs.write_file(b, "k", b"A" * 300_000)
    v1 = fs.version_id(a.ino)
    with fs.open(a.ino, write=True, truncate=True) as h:
        h.write(0, b"new")
    assert fs.getattr(a.ino).size == 3  # same inode, new content
    vs = fs.versions("/b/k")
    assert [(v.kind, v.reason) for v in vs] == [("current", ""), ("version", "truncate")]
    assert vs[1].vid == v1 and vs[0].vid != v1
    assert _read(fs, vs[1].ino) == b"A" * 300_000


def test_restore_version_shares_data_and_keeps_current(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, versioning="enabled")
    fs.write_file(b, "k", b"good" * 50_000)
    fs.write_file(b, "k", b"bad")
    fs.restore_version("/b/k")
    assert fs.read(fs.lookup(b, "k").ino, 0, 10) == b"goodgoodgo"
    assert [v.kind for v in fs.versions("/b/k")] == ["current", "version", "version"]
    fs.restore_version("/b/k", to="/b/copy")
    assert fs.getattr(fs.lookup(b, "copy").ino).size == 3  # the newest kept version: "bad"


def test_directory_restores_with_its_contents(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, days=1)
    d = fs.mkdir(b, "d")
    e = fs.mkdir(d.ino, "e")
    fs.write_file(d.ino, "f", b"f")
    fs.write_file(e.ino, "g", b"g")
    fs.unlink(e.ino, "g")
    fs.rmdir(d.ino, "e")
    fs.unlink(d.ino, "f")
    fs.rmdir(b, "d")
    assert {v.path for v in fs.trash("/b")} == {"/b/d", "/b/d/e", "/b/d/f", "/b/d/e/g"}
    fs.trash_restore("/b/d")
    assert fs.read(fs.resolve("/b/d/e/g").ino, 0, 5) == b"g"
    assert fs.read(fs.resolve("/b/d/f").ino, 0, 5) == b"f"
    assert fs.trash("/b") == []


def test_restore_checks_permissions(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, days=1)
    priv = fs.mkdir(b, "priv", 0o700)
    fs.write_file(priv.ino, "k", b"secret", mode=0o600)
    fs.unlink(priv.ino, "k")
    with pytest.raises((PermissionDenied, NotPermitted)):  # she cannot reach where it was
        fs.as_user(ALICE).trash_restore("/b/priv/k", to="/b/stolen")
    with pytest.raises((PermissionDenied, NotPermitted)):
        fs.as_user(ALICE).restore_version("/b/priv/k", to="/b/stolen")
    fs.setattr(priv.ino, mode=0o777)
    with pytest.raises((PermissionDenied, NotPermitted)):  # reachable now, but not hers and not readable
        fs.as_user(ALICE).restore_version("/b/priv/k", to="/b/stolen")
    fs.as_user(ALICE).write_file(priv.ino, "mine", b"m")
    fs.as_user(ALICE).unlink(priv.ino, "mine")
    fs.as_user(ALICE).trash_restore("/b/priv/mine")
    assert fs.lookup(priv.ino, "mine").uid == ALICE.uid


def test_retention_refuses_removal_and_writes(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, days=1)
    a = fs.write_file(b, "k", b"keep")
    fs.write_file(b, "other", b"o")
    fs.set_retention("/b/k", None, "COMPLIANCE", time.time_ns() + DAY)
    ops: list[Callable[[], object]] = [
           lambda: fs.unlink(b, "k"), lambda: fs.write(a.ino, 0, b"x"), lambda: fs.setattr(a.ino, size=0),
           lambda: fs.write_file(b, "k", b"new"), lambda: fs.open(a.ino, write=True),
           lambda: fs.rename(b, "other", b, "k"), lambda: fs.as_user(ALICE).set_retention("/b/k", None, None)]
    for op in ops:
        with pytest.raises((Locked, NotPermitted)):
            op()
    with pytest.raises(Locked):  # compliance: not even the admin shortens it
        fs.set_retention("/b/k", None, "COMPLIANCE", time.time_ns() + 10**9, bypass_governance=True)
    fs.rename(b, "k", b, "k2")  # a new name keeps the content: allowed
    assert fs.locked(fs.lookup(b, "k2").ino) and fs.read(a.ino, 0, 10) == b"keep"
    fs.set_retention("/b/k2", None, "COMPLIANCE", time.time_ns() + 2 * DAY)  # extending is allowed


def test_governance_bypass_and_legal_hold(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, versioning="enabled")
    fs.write_file(b, "k", b"v1")
    vid = fs.version_id(fs.lookup(b, "k").ino)
    fs.write_file(b, "k", b"v2", keep_locked=True)
    fs.set_retention("/b/k", vid, "GOVERNANCE", time.time_ns() + DAY)
    with pytest.raises(Locked):
        fs.delete_version("/b/k", vid)
    fs.delete_version("/b/k", vid, bypass_governance=True)  # the admin bypasses governance
    v2 = fs.version_id(fs.lookup(b, "k").ino)
    fs.set_legal_hold("/b/k", None, True)
    with pytest.raises(Locked):
        fs.delete_version("/b/k", v2, bypass_governance=True)  # a hold is not bypassed
    with pytest.raises(Locked):
        fs.unlink(b, "k")  # POSIX protocols: refused even where versioning would keep it
    fs.set_legal_hold("/b/k", None, False)
    fs.unlink(b, "k")


def test_locked_current_replaced_in_versioned_tree_with_keep_locked(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, versioning="enabled")
    fs.write_file(b, "k", b"v1")
    fs.set_retention("/b/k", None, "COMPLIANCE", time.time_ns() + DAY)
    fs.write_file(b, "k", b"v2", keep_locked=True)  # S3 PUT: a new version; the locked one stays
    old = fs.versions("/b/k")[1]
    assert _read(fs, old.ino) == b"v1"
    with pytest.raises(Locked):
        fs.purge_versions("/b/k")


def test_unlink_keep_locked_adds_a_marker_over_a_locked_version(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, versioning="enabled")
    fs.write_file(b, "k", b"v1")
    fs.set_retention("/b/k", None, "COMPLIANCE", time.time_ns() + DAY)
    with pytest.raises(Locked):
        fs.unlink(b, "k")  # POSIX protocols: refused
    fs.unlink(b, "k", keep_locked=True)  # S3 DELETE: a delete marker; the locked version stays
    assert [v.kind for v in fs.versions("/b/k")] == ["marker", "version"]
    assert _read(fs, fs.versions("/b/k")[1].ino) == b"v1"


def test_add_marker_over_a_deleted_path(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, versioning="enabled")
    fs.write_file(b, "k", b"v1")
    assert fs.add_marker("/b/k") is None  # a live file: delete it instead
    fs.unlink(b, "k")
    m = fs.add_marker("/b/k")
    assert m is not None and m.kind == "marker" and m.latest and m.vid != "null"
    assert [v.kind for v in fs.versions("/b/k")] == ["marker", "marker", "version"]
    assert fs.versions("/b/k")[0].vid == m.vid
    assert fs.add_marker("/b/gone/k") is None  # no directory there
    fs.set_tree_policy(b, versioning="suspended")
    assert fs.add_marker("/b/k") is not None and fs.add_marker("/b/k") is not None
    assert [(v.kind, v.vid == "null") for v in fs.versions("/b/k")] == [("marker", True), ("marker", False),
                                                                        ("marker", False), ("version", False)]
    fs.setattr(b, mode=0o755)
    with pytest.raises(PermissionDenied):  # what removing a file there needs
        fs.as_user(BOB).add_marker("/b/k")
    _bucket(fs, "plain")
    assert fs.add_marker("/plain/k") is None  # versioning off: nothing to mark


def test_gc_keeps_version_data_until_purged(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, versioning="enabled")
    big = bytes(range(256)) * 4096
    fs.write_file(b, "k", big)
    fs.write_file(b, "k", b"small")
    mem_store.collect(seal=True)
    v = fs.versions("/b/k")[1]
    assert _read(fs, v.ino) == big
    assert fs.purge_versions("/b/k") == 1
    rep = mem_store.collect(seal=True)
    assert rep.deleted_segments >= 1


def test_expire_trash_by_age_and_cap(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, days=1)
    for i in range(5):
        fs.write_file(b, f"k{i}", b"x" * 1000)
        fs.unlink(b, f"k{i}")
    assert fs.expire_trash() == (0, 0)
    assert fs.expire_trash(time.time_ns() + 2 * DAY) == (5, 5000)
    fs.set_tree_policy(b, trash_bytes=2500)
    for i in range(5):
        fs.write_file(b, f"k{i}", b"x" * 1000)
        fs.unlink(b, f"k{i}")
    n, nbytes = fs.expire_trash()
    assert (n, nbytes) == (3, 3000)
    assert {v.path for v in fs.trash("/b")} == {"/b/k3", "/b/k4"}  # the oldest went first
    assert fs.version_usage("/b") == {"trash": (2, 2000)}
    assert fs.trash_empty("/b")[:2] == (2, 2000)


def test_policy_inherits_and_store_default(mem_store: Store) -> None:
    fs = mem_store.fs
    fs.set_trash_default(2.0, 0)
    b = _bucket(fs)
    sub = fs.mkdir(b, "sub")
    pol = fs.tree_policy(sub.ino)
    assert (pol.versioning, pol.trash_days, pol.own_trash_days) == ("off", 2.0, None)
    fs.set_tree_policy(b, versioning="enabled", trash_days=0)
    pol = fs.tree_policy(sub.ino)
    assert (pol.versioning, pol.trash_days) == ("enabled", 0.0)
    with pytest.raises(NotPermitted):
        fs.as_user(BOB).set_tree_policy(b, trash_days=3)


def test_system_directories_keep_nothing(mem_store: Store) -> None:
    fs = mem_store.fs
    fs.set_trash_default(1.0)
    sd = fs.system_dir("parts")
    fs.write_file(sd, "p1", b"x")
    fs.unlink(sd, "p1")
    assert fs.version_usage("/") == {}


def test_locked_reads_a_kept_version_and_purge_by_row(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, versioning="enabled")
    fs.write_file(b, "k", b"v1")
    fs.set_legal_hold("/b/k", None, True)
    fs.write_file(b, "k", b"v2", keep_locked=True)
    fs.unlink(b, "k")
    fs.write_file(b, "k", b"v3")
    marker, old = fs.versions("/b/k")[1], fs.versions("/b/k")[3]
    assert fs.reading_versions().locked(old.ino) and not fs.locked(fs.lookup(b, "k").ino)
    assert fs.purge_versions("/b/k", rows=[marker.row]) == 1  # only that row
    assert [v.kind for v in fs.versions("/b/k")] == ["current", "version", "version"]
    with pytest.raises(Locked):
        fs.purge_versions("/b/k", rows=[old.row])


def test_open_a_kept_version_through_a_versions_view(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, versioning="enabled")
    fs.write_file(b, "k", b"old" * 100_000)
    fs.write_file(b, "k", b"new")
    v = fs.versions("/b/k")[1]
    with fs.reading_versions().open(v.ino) as h:
        assert h.read(0, 6) == b"oldold" and h.size() == 300_000
    with pytest.raises(Stale):
        fs.open(v.ino)
    with pytest.raises(Stale):
        fs.reading_versions().open(v.ino, write=True)
