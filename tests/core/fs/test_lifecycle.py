"""The lifecycle engine (core.fs.lifecycle) against real stores, with a fake clock (``now_ns``)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from core.errors import InvalidArgument
from core.fs import FileSystem
from core.fs import lifecycle as lc
from core.store import Store

DAY = 86400 * 10**9
NOW = time.time_ns()


def _rule(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "r", "enabled": True, "prefix": "", "tags": {}, "size_gt": None, "size_lt": None,
                            "expire_days": None, "expire_date": None, "expired_object_delete_marker": False,
                            "noncurrent_days": None, "newer_noncurrent": None, "abort_multipart_days": None}
    return {**base, **kw}


def _bucket(fs: FileSystem, rules: list[dict[str, Any]], name: str = "b", versioning: str | None = None,
            days: float = 0) -> int:
    d = fs.mkdir(fs.root, name, 0o777)
    fs.set_tree_policy(d.ino, versioning=versioning, trash_days=days, lifecycle=rules)
    return d.ino


def _names(fs: FileSystem, ino: int) -> set[str]:
    return {e.name for e in fs.listdir(ino)}


def _tags_of(fs: FileSystem, ino: int) -> dict[str, str]:
    try:
        return dict(json.loads(fs.getxattr(ino, "user.tags")))
    except Exception:
        return {}


def test_expire_days_rounds_to_midnight_in_an_unversioned_tree(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, [_rule(expire_days=2)])
    midnight = NOW - NOW % DAY
    fs.write_file(b, "old", b"o" * 10, mtime_ns=midnight - DAY + 3600 * 10**9)  # 1:00 yesterday
    fs.write_file(b, "new", b"n")
    # yesterday 1:00 + 2 days = tomorrow 1:00, rounded up to midnight after tomorrow: not due at tomorrow 23:59
    assert lc.run(fs, now_ns=midnight + 2 * DAY - 1).expired == 0
    rep = lc.run(fs, now_ns=midnight + 2 * DAY)
    assert (rep.expired, rep.expired_bytes, rep.errors) == (1, 10, [])
    assert _names(fs, b) == {"new"}
    assert fs.versions("/b/old") == []  # no trash in this tree: a plain delete


def test_expire_in_a_versioned_tree_leaves_a_marker(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, [_rule(expire_days=1)], versioning="enabled")
    fs.write_file(b, "k", b"data")
    rep = lc.run(fs, now_ns=NOW + 2 * DAY)
    assert rep.expired == 1
    assert [v.kind for v in fs.versions("/b/k")] == ["marker", "version"]
    rep = lc.run(fs, now_ns=NOW + 2 * DAY)  # a marker on top of a version: nothing more to do
    assert (rep.expired, rep.markers) == (0, 0)


def test_expire_date_and_trash_keeps_unversioned(mem_store: Store) -> None:
    fs = mem_store.fs
    tomorrow = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(NOW / 1e9 + 86400))
    b = _bucket(fs, [_rule(expire_date=tomorrow)], days=1)
    fs.write_file(b, "k", b"x")
    assert lc.run(fs, now_ns=NOW).expired == 0
    assert lc.run(fs, now_ns=NOW + DAY).expired == 1
    assert [v.kind for v in fs.trash("/b")] == ["trash"]  # the tree's trash keeps it


def test_prefix_size_and_tag_filters(mem_store: Store) -> None:
    fs = mem_store.fs
    rules = [_rule(id="logs", prefix="logs/", expire_days=1), _rule(id="big", size_gt=100, expire_days=1),
             _rule(id="tmp", tags={"t": "tmp"}, size_lt=50, expire_days=1)]
    b = _bucket(fs, rules)
    logs = fs.mkdir(b, "logs", 0o777)
    other = fs.mkdir(b, "other", 0o777)
    fs.write_file(logs.ino, "a", b"a")
    fs.write_file(b, "logs-not", b"a")  # 'logs/' is not a prefix of it
    fs.write_file(other.ino, "big", b"x" * 101)
    fs.write_file(other.ino, "edge", b"x" * 100)  # size_gt is strict
    fs.write_file(other.ino, "tagged", b"t", xattrs={"user.tags": b'{"t": "tmp"}'})
    fs.write_file(other.ino, "tagged-big", b"t" * 60, xattrs={"user.tags": b'{"t": "tmp"}'})
    fs.write_file(other.ino, "wrong-tag", b"t", xattrs={"user.tags": b'{"t": "keep"}'})
    later = NOW + 3 * DAY
    rep = lc.run(fs, now_ns=later, dry_run=True)  # without tags_of a rule with tags matches nothing
    assert {(a.path, a.rule) for a in rep.planned} == {("/b/logs/a", "logs"), ("/b/other/big", "big")}
    rep = lc.run(fs, now_ns=later, tags_of=_tags_of)
    assert rep.expired == 3
    assert _names(fs, logs.ino) == set() and "logs-not" in _names(fs, b)
    assert _names(fs, other.ino) == {"edge", "tagged-big", "wrong-tag"}


def test_noncurrent_days_and_newer_noncurrent(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, [_rule(noncurrent_days=3, newer_noncurrent=2)], versioning="enabled")
    for i in range(6):
        fs.write_file(b, "k", b"v%d" % i)
    vids = [v.vid for v in fs.versions("/b/k")]  # current, then 5 noncurrent, newest first
    assert lc.run(fs, now_ns=NOW + 2 * DAY).noncurrent == 0  # not noncurrent long enough
    rep = lc.run(fs, now_ns=NOW + 4 * DAY)
    assert (rep.noncurrent, rep.noncurrent_bytes) == (3, 6)  # the 2 newest noncurrent ones stay
    assert [v.vid for v in fs.versions("/b/k")] == vids[:3]


def test_newer_noncurrent_alone_and_markers_count_as_noncurrent(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, [_rule(newer_noncurrent=1)], versioning="enabled")
    fs.write_file(b, "k", b"1")
    fs.unlink(b, "k")
    fs.write_file(b, "k", b"2")
    fs.write_file(b, "k", b"3")
    assert [v.kind for v in fs.versions("/b/k")] == ["current", "version", "marker", "version"]
    rep = lc.run(fs, now_ns=NOW)
    assert (rep.noncurrent, rep.noncurrent_bytes) == (2, 1)
    assert [v.kind for v in fs.versions("/b/k")] == ["current", "version"]


def test_expired_object_delete_marker(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, [_rule(noncurrent_days=1), _rule(id="m", expired_object_delete_marker=True)],
                versioning="enabled")
    fs.write_file(b, "gone", b"x")
    fs.unlink(b, "gone")  # a marker over one version
    fs.write_file(b, "kept", b"x")
    fs.unlink(b, "kept")
    assert lc.run(fs, now_ns=NOW).markers == 0  # the version is still there: the marker is not alone
    fs.purge_versions("/b/kept", [v.vid for v in fs.versions("/b/kept") if v.kind == "version"])
    rep = lc.run(fs, now_ns=NOW)  # 'kept' has only its marker left now
    assert (rep.markers, rep.noncurrent) == (1, 0)
    assert fs.versions("/b/kept") == []
    rep = lc.run(fs, now_ns=NOW + 2 * DAY)  # the version goes, then its marker is alone: both in one pass
    assert (rep.noncurrent, rep.markers) == (1, 1)
    assert fs.versions("/b/gone") == []


def test_locked_versions_are_skipped_and_counted(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, [_rule(noncurrent_days=0, expire_days=1)], versioning="enabled")
    fs.write_file(b, "k", b"old")
    fs.set_retention("/b/k", None, "COMPLIANCE", time.time_ns() + 30 * DAY)
    fs.write_file(b, "k", b"new", keep_locked=True)
    fs.write_file(b, "k2", b"x")
    fs.set_legal_hold("/b/k2", None, True)
    rep = lc.run(fs, now_ns=NOW + 2 * DAY)
    # the locked noncurrent version stays; the current versions (k2 locked too) expire into markers: a
    # versioned tree keeps them, as S3 does
    assert (rep.locked, rep.noncurrent, rep.expired, rep.errors) == (1, 0, 2, [])
    assert [v.kind for v in fs.versions("/b/k2")] == ["marker", "version"]
    u = _bucket(fs, [_rule(expire_days=1)], name="u")
    fs.write_file(u, "k", b"x")
    fs.set_legal_hold("/u/k", None, True)
    rep = lc.run(fs, now_ns=NOW + 2 * DAY)  # unversioned: expiring would destroy it
    # /b/k's old version, /b/k2 (noncurrent now, held), /u/k; /b/k's unlocked version (noncurrent since the
    # first pass) goes
    assert (rep.locked, rep.expired, rep.noncurrent, rep.errors) == (3, 0, 1, [])
    assert _names(fs, u) == {"k"}


def test_dry_run_changes_nothing_and_reports_the_same_set(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, [_rule(expire_days=1, noncurrent_days=1, expired_object_delete_marker=True)],
                versioning="enabled")
    for i in range(3):
        fs.write_file(b, f"k{i}", b"one")
        fs.write_file(b, f"k{i}", b"two")
    fs.write_file(b, "m", b"m")
    fs.unlink(b, "m")
    fs.purge_versions("/b/m", [v.vid for v in fs.versions("/b/m") if v.kind == "version"])  # a lone marker
    before = {p: fs.versions(p) for p in ("/b/k0", "/b/k1", "/b/k2", "/b/m")}
    later = NOW + 3 * DAY
    dry = lc.run(fs, now_ns=later, dry_run=True)
    assert {p: fs.versions(p) for p in before} == before
    seen: list[tuple[int, int]] = []
    real = lc.run(fs, now_ns=later, progress=lambda d, t: seen.append((d, t)))
    assert dry.to_json()["planned"] and "planned" not in real.to_json()
    assert {(a.kind, a.path, a.vid) for a in dry.planned} == {
        ("expire", f"/b/k{i}", before[f"/b/k{i}"][0].vid) for i in range(3)} | {
        ("noncurrent", f"/b/k{i}", before[f"/b/k{i}"][1].vid) for i in range(3)} | {
        ("marker", "/b/m", before["/b/m"][0].vid)}
    for k in ("expired", "expired_bytes", "noncurrent", "noncurrent_bytes", "markers", "locked"):
        assert getattr(dry, k) == getattr(real, k), k
    assert (real.expired, real.noncurrent, real.markers) == (3, 3, 1)
    assert seen[-1] == (7, 7)


def test_subtree_rules_win_and_uploads_callback(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, [_rule(expire_days=1), _rule(id="mpu", prefix="x/", abort_multipart_days=2)])
    sub = fs.mkdir(b, "sub", 0o777)
    fs.set_tree_policy(sub.ino, lifecycle=[_rule(enabled=False, expire_days=1)])
    fs.write_file(b, "a", b"a")
    fs.write_file(sub.ino, "s", b"s")
    calls: list[tuple[str, str, int, bool]] = []

    def abort(tree: str, prefix: str, older: int, dry: bool) -> int:
        calls.append((tree, prefix, older, dry))
        return 2
    now = NOW + 3 * DAY
    rep = lc.run(fs, now_ns=now, abort_uploads=abort, dry_run=True)
    assert rep.uploads == 2 and calls == [("/b", "x/", now - now % DAY - 2 * DAY, True)]
    rep = lc.run(fs, now_ns=now, abort_uploads=abort)
    assert (rep.trees, rep.expired, rep.uploads) == (1, 1, 2) and calls[-1][3] is False
    assert _names(fs, b) == {"sub"} and _names(fs, sub.ino) == {"s"}


def test_rules_are_checked(mem_store: Store) -> None:
    with pytest.raises(InvalidArgument):
        lc.parse_rules([_rule(expire_days=-1)])
    with pytest.raises(InvalidArgument):
        lc.parse_rules([_rule(expire_date="tomorrow")])
    with pytest.raises(InvalidArgument):
        lc.parse_rules([_rule(), _rule()])
    with pytest.raises(InvalidArgument):
        lc.parse_rules([{**_rule(), "bogus": 1}])
    fs = mem_store.fs
    _bucket(fs, [{"id": "bad", "expire_days": "x"}])
    rep = lc.run(fs)
    assert rep.trees == 0 and len(rep.errors) == 1 and "/b" in rep.errors[0]


def test_the_newest_kept_version_of_a_key_with_no_live_file_is_not_noncurrent(mem_store: Store) -> None:
    fs = mem_store.fs
    b = _bucket(fs, [_rule(noncurrent_days=0, newer_noncurrent=0)], versioning="enabled")
    fs.write_file(b, "k", b"1")
    fs.write_file(b, "k", b"2")
    fs.unlink(b, "k")
    marker = fs.versions("/b/k")[0]
    fs.purge_versions("/b/k", rows=[marker.row])  # no live file, no marker: the newest version is the latest
    rep = lc.run(fs, now_ns=NOW + 2 * DAY)
    assert rep.noncurrent == 1
    assert [v.kind for v in fs.versions("/b/k")] == ["version"]
    v = fs.versions("/b/k")[0]
    assert fs.reading_versions().read(v.ino, 0, 5) == b"2"
