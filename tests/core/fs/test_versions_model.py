"""Property-based: versioned trees against an in-memory model (issue 13).

Five trees, each with its own policy, two keys each:

=========  ===============================================  =========
tree       versioning                                       trash
=========  ===============================================  =========
``/ven``   enabled                                          1 day
``/vsus``  enabled, then suspended (``k`` has an enabled       1 day
           version, ``j`` a kept ``null`` version; the
           ``flip`` rule toggles enabled/suspended)
``/vsu0``  the same with no trash                           off
``/tr``    off                                              1 day
``/pl``    off                                              off
=========  ===============================================  =========

Rules: whole-file puts (``write_file``), truncate-to-zero then write (``open(truncate=True)`` or
``setattr(size=0)``), deletes, renames over another key (in the tree or from another tree),
``restore_version``, ``trash_restore``, ``purge_versions``, ``delete_version`` (of the live file, a kept
version, a marker, an unknown id), ``trash_empty``, trash expiry with a fake ``now`` (a time taken between
two earlier steps, so exactly the trash rows made before it expire), lifecycle passes
(:mod:`core.fs.lifecycle`: NewerNoncurrentVersions 0-2, lone delete markers, expiry of current versions)
and segment GC.  The model re-implements the documented rules of :mod:`core.fs.versions` (what each policy
keeps, suspended versioning's ``null`` handling, S3's "the newest version becomes current again" on
deleting the current one or a marker).

Version ids are random, so the model learns a fresh id from the store right after the step that made
it (and checks it is new and sorts after every other id of the path).  After every step the store must
match: ``fs.versions(path)`` (kind, id, latest, reason, size, newest first), the bytes of every kept
version read through ``fs.reading_versions()``, the live file, and ``version_usage`` of each tree.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import time
from dataclasses import dataclass, field

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from core.errors import Exists, NotFound
from core.fs import lifecycle
from core.store import Store, init_store, open_store
from gateway.cluster.postgres import LocalPostgres

NULL = "null"
DAY = 86400 * 10**9
UNKNOWN = "?"  # a fresh id the store made; learned right after the step

TREES = {"ven": ("enabled", 1.0), "vsus": ("suspended", 1.0), "vsu0": ("suspended", 0.0), "tr": ("off", 1.0),
         "pl": ("off", 0.0)}
TREE = st.sampled_from(sorted(TREES))
KEY = st.sampled_from(["k", "j"])
# around the inline threshold (16 KiB) and the stripe (4 x 64 KiB cells)
BLOB = st.tuples(st.binary(min_size=1, max_size=32), st.sampled_from([0, 1, 9, 700, 9000])).map(
    lambda t: (t[0] * t[1])[:300_000])


@dataclass
class Row:
    kind: str             # version / marker / trash
    vid: str
    data: bytes | None    # None: a marker
    reason: str
    step: int             # the step that made it (trash expiry)


@dataclass
class Key:
    live: tuple[str, bytes] | None = None   # (vid, bytes)
    rows: list[Row] = field(default_factory=list)  # newest first


class VersionsModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp()
        init_store(self.tmp + "/s", targets=[f"mem:{i}" for i in range(6)], cell=64 * 1024,
                   shard_bytes=8 * 64 * 1024, meta_url=self.meta_url())
        self.store: Store = open_store(self.tmp + "/s")
        self.fs = self.store.fs
        self.clock: list[int] = []
        self.step = 0
        self.policy: dict[str, tuple[str, float]] = {}
        self.dirs: dict[str, int] = {}
        self.keys: dict[str, Key] = {}
        for name, (state, days) in TREES.items():
            d = self.fs.mkdir(self.fs.root, name, 0o777)
            self.dirs[name] = d.ino
            first = "enabled" if state == "suspended" else state
            self.fs.set_tree_policy(d.ino, versioning=None if first == "off" else first, trash_days=days)
            self.policy[name] = (first, days)
            for k in ("k", "j"):
                self.keys[f"{name}/{k}"] = Key()
            if state == "suspended":  # k: an enabled version; j: a null version kept by versioning
                self._tick()
                self._put(name, "k", b"from the enabled days")
                self._flip(name)
                self._put(name, "j", b"null, made while suspended")
                self._flip(name)
                self._put(name, "j", b"enabled again")
                self._flip(name)

    def meta_url(self) -> str | None:
        return None  # SQLite

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- the model's rules ------------------------------------------------------------
    def _tick(self) -> None:
        self.step = len(self.clock)
        self.clock.append(time.time_ns())

    def _drop_null(self, key: Key, days: float) -> None:
        front: list[Row] = []
        rest: list[Row] = []
        for r in key.rows:
            if r.vid != NULL or r.kind == "trash":
                rest.append(r)
            elif r.kind != "marker" and days > 0:
                front.insert(0, Row("trash", r.vid, r.data, r.reason, self.step))  # re-added: newest
        key.rows = front + rest

    def _retire(self, tree: str, key: Key, vid: str, data: bytes, reason: str) -> None:
        state, days = self.policy[tree]
        add: list[Row] = []
        if state == "enabled":
            add.append(Row("version", vid, data, reason, self.step))
        elif state == "suspended":
            self._drop_null(key, days)
            if vid != NULL:
                add.append(Row("version", vid, data, reason, self.step))
            elif days > 0:
                add.append(Row("trash", vid, data, reason, self.step))
        elif days > 0:
            add.append(Row("trash", vid, data, reason, self.step))
        if reason == "delete" and state != "off":
            add.append(Row("marker", UNKNOWN if state == "enabled" else NULL, None, reason, self.step))
        key.rows = list(reversed(add)) + key.rows

    def _stamp(self, tree: str) -> str:
        return UNKNOWN if self.policy[tree][0] == "enabled" else NULL

    def _settle(self, key: Key) -> None:
        rows = [r for r in key.rows if r.kind in ("version", "marker")]
        if key.live is None and rows and rows[0].kind == "version":
            key.rows.remove(rows[0])
            assert rows[0].data is not None
            key.live = (rows[0].vid, rows[0].data)

    def _learn(self, tree: str, k: str) -> None:
        """Fill in the ids the store just made (the live file's, a marker's) and check they are fresh."""
        key = self.keys[f"{tree}/{k}"]
        got = self.fs.versions(f"/{tree}/{k}")
        want = ([key.live[0]] if key.live else []) + [r.vid for r in key.rows]
        assert len(got) == len(want), (got, key)
        known = [v for v in want if v not in (UNKNOWN, NULL)]
        for i, v in enumerate(want):
            if v != UNKNOWN:
                continue
            new = got[i].vid
            assert new != NULL and new not in known and all(new > o for o in known), (new, known)
            known.append(new)
            if i == 0 and key.live is not None:
                key.live = (new, key.live[1])
            else:
                key.rows[i - (1 if key.live else 0)].vid = new

    def _put(self, tree: str, k: str, data: bytes) -> None:
        key = self.keys[f"{tree}/{k}"]
        self.fs.write_file(self.dirs[tree], k, data)
        if key.live is not None:
            self._retire(tree, key, key.live[0], key.live[1], "overwrite")
        key.live = (self._stamp(tree), data)
        self._learn(tree, k)

    # -- rules ------------------------------------------------------------------------
    @rule(tree=TREE, k=KEY, data=BLOB)
    def put(self, tree: str, k: str, data: bytes) -> None:
        self._tick()
        self._put(tree, k, data)

    @rule(tree=TREE, k=KEY, data=BLOB, via_open=st.booleans())
    def truncate_and_write(self, tree: str, k: str, data: bytes, via_open: bool) -> None:
        self._tick()
        key = self.keys[f"{tree}/{k}"]
        if key.live is None:
            return
        ino = self.fs.lookup(self.dirs[tree], k).ino
        if via_open:
            with self.fs.open(ino, write=True, truncate=True) as h:
                if data:
                    h.write(0, data)
        else:
            self.fs.setattr(ino, size=0)
            if data:
                self.fs.write(ino, 0, data, stable=True)
        vid, old = key.live
        state, days = self.policy[tree]
        if old:
            if state == "suspended" and vid == NULL and days <= 0:
                self._drop_null(key, days)
            elif state != "off" or days > 0:
                self._retire(tree, key, vid, old, "truncate")
                vid = self._stamp(tree)
        key.live = (vid, data)
        self._learn(tree, k)

    @rule(tree=TREE, k=KEY)
    def delete(self, tree: str, k: str) -> None:
        self._tick()
        key = self.keys[f"{tree}/{k}"]
        if key.live is None:
            with pytest.raises(NotFound):
                self.fs.unlink(self.dirs[tree], k)
            return
        self.fs.unlink(self.dirs[tree], k)
        vid, data = key.live
        key.live = None
        self._retire(tree, key, vid, data, "delete")
        self._learn(tree, k)

    @rule(tree=TREE, src=KEY)
    def rename_over(self, tree: str, src: str) -> None:
        self._tick()
        self._rename(tree, src, tree, "j" if src == "k" else "k")

    @rule(src_tree=TREE, dst_tree=TREE, k=KEY)
    def rename_across(self, src_tree: str, dst_tree: str, k: str) -> None:
        """A file moves to another tree with its version id (a versioned file into an unversioned tree)."""
        self._tick()
        if src_tree != dst_tree:
            self._rename(src_tree, k, dst_tree, k)

    def _rename(self, st: str, sk: str, dt: str, dk: str) -> None:
        s, d = self.keys[f"{st}/{sk}"], self.keys[f"{dt}/{dk}"]
        if s.live is None:
            return
        self.fs.rename(self.dirs[st], sk, self.dirs[dt], dk)
        if d.live is not None:
            self._retire(dt, d, d.live[0], d.live[1], "rename")
        d.live, s.live = s.live, None

    @rule(tree=TREE, k=KEY, pick=st.integers(0, 7))
    def restore_version(self, tree: str, k: str, pick: int) -> None:
        self._tick()
        key = self.keys[f"{tree}/{k}"]
        choices: list[str | None] = [None, *sorted({r.vid for r in key.rows if r.data is not None})]
        vid = choices[pick % len(choices)] if pick < 6 else "nope"
        src = [r for r in key.rows if r.data is not None and (vid is None or r.vid == vid)]
        if not src:
            with pytest.raises(NotFound):
                self.fs.restore_version(f"/{tree}/{k}", vid)
            return
        self.fs.restore_version(f"/{tree}/{k}", vid)
        data = src[0].data
        assert data is not None
        if key.live is not None:
            self._retire(tree, key, key.live[0], key.live[1], "overwrite")
        key.live = (self._stamp(tree), data)
        self._learn(tree, k)

    @rule(tree=TREE, k=KEY)
    def trash_restore(self, tree: str, k: str) -> None:
        self._tick()
        key = self.keys[f"{tree}/{k}"]
        src = [r for r in key.rows if r.data is not None and r.reason == "delete"]
        if not src:
            with pytest.raises(NotFound):
                self.fs.trash_restore(f"/{tree}/{k}")
        elif key.live is not None:
            with pytest.raises(Exists):
                self.fs.trash_restore(f"/{tree}/{k}")
        else:
            self.fs.trash_restore(f"/{tree}/{k}")
            key.rows.remove(src[0])
            assert src[0].data is not None
            key.live = (src[0].vid, src[0].data)

    @rule(tree=TREE, k=KEY, pick=st.integers(0, 7))
    def purge(self, tree: str, k: str, pick: int) -> None:
        self._tick()
        key = self.keys[f"{tree}/{k}"]
        choices = sorted({r.vid for r in key.rows})
        vids = None if pick >= 6 or not choices else [choices[pick % len(choices)]]
        n = self.fs.purge_versions(f"/{tree}/{k}", vids)
        gone = [r for r in key.rows if vids is None or r.vid in vids]
        assert n == len(gone)
        key.rows = [r for r in key.rows if r not in gone]

    @rule(tree=TREE, k=KEY, pick=st.integers(0, 9))
    def delete_version(self, tree: str, k: str, pick: int) -> None:
        """S3 DELETE ?versionId: the current version, a noncurrent one, a marker, or an unknown id."""
        self._tick()
        key = self.keys[f"{tree}/{k}"]
        choices = sorted(({key.live[0]} if key.live else set()) | {r.vid for r in key.rows})
        vid = choices[pick % len(choices)] if choices and pick < 8 else "nope"
        if key.live is not None and key.live[0] == vid:
            self.fs.delete_version(f"/{tree}/{k}", vid)
            key.live = None
            self._settle(key)
            return
        hit = [r for r in key.rows if r.vid == vid]
        if not hit:
            with pytest.raises(NotFound):
                self.fs.delete_version(f"/{tree}/{k}", vid)
            return
        self.fs.delete_version(f"/{tree}/{k}", vid)
        key.rows.remove(hit[0])
        self._settle(key)

    @rule(at=st.integers(0, 10**6), everything=st.booleans())
    def expire_trash(self, at: int, everything: bool) -> None:
        """Expire with a fake now: the trash rows made before step ``b`` (b = every step when ``everything``)."""
        self._tick()
        b = self.step if everything else at % (self.step + 1)
        n, nbytes = self.fs.expire_trash(self.clock[b] + DAY)
        gone = 0
        size = 0
        for key in self.keys.values():
            old = [r for r in key.rows if r.kind == "trash" and r.step < b]
            gone += len(old)
            size += sum(len(r.data or b"") for r in old)
            key.rows = [r for r in key.rows if r not in old]
        assert (n, nbytes) == (gone, size)

    @rule(tree=TREE, newer=st.sampled_from([None, 0, 1, 2]), markers=st.booleans(), expire=st.booleans())
    def lifecycle_run(self, tree: str, newer: int | None, markers: bool, expire: bool) -> None:
        """One lifecycle pass with a rule on ``tree``: keep ``newer`` noncurrent versions (S3's
        NewerNoncurrentVersions; None: no noncurrent rule), remove lone delete markers, and (``expire``)
        expire every current version (1 day, with ``now`` 10 days ahead).  The pass plans on the state before
        it and then applies: expiries first (each an ordinary delete), then the planned purges by row (a row
        an expiry dropped or moved to the trash meanwhile is skipped)."""
        self._tick()
        cfg = {"id": "r", "newer_noncurrent": newer, "expired_object_delete_marker": markers,
               "expire_days": 1 if expire else None}
        self.fs.set_tree_policy(self.dirs[tree], lifecycle=[cfg])
        try:
            rep = lifecycle.run(self.fs, now_ns=time.time_ns() + 10 * DAY)
        finally:
            self.fs.set_tree_policy(self.dirs[tree], lifecycle=None)
        assert rep.errors == []
        plan: list[tuple[str, Row]] = []  # (what, row) per key, planned on the state before the pass
        expiring: list[str] = []
        for k in ("k", "j"):
            key = self.keys[f"{tree}/{k}"]
            if expire and key.live is not None:
                expiring.append(k)
            if not any(r.kind in ("version", "marker") for r in key.rows):
                continue
            vs: list[Row | None] = [None] if key.live else []
            vs += [r for r in key.rows if r.kind != "trash"]
            left = list(vs)
            for nc, v in enumerate(vs[1:]):
                assert v is not None
                if newer is not None and nc >= newer:
                    plan.append(("noncurrent", v))
                    left = [x for x in left if x is not v]
            if len(left) == 1 and left[0] is not None and left[0].kind == "marker" and (markers or expire):
                plan.append(("marker", left[0]))
        for k in expiring:
            key = self.keys[f"{tree}/{k}"]
            assert key.live is not None
            vid, data = key.live
            key.live = None
            self._retire(tree, key, vid, data, "delete")
        done = {"noncurrent": 0, "marker": 0}
        for what, row in plan:
            for key in self.keys.values():
                if any(r is row for r in key.rows):
                    key.rows = [r for r in key.rows if r is not row]
                    done[what] += 1
        for k in expiring:
            self._learn(tree, k)
        assert (rep.expired, rep.noncurrent, rep.markers) == (len(expiring), done["noncurrent"], done["marker"])

    @rule(tree=TREE)
    def trash_empty(self, tree: str) -> None:
        self._tick()
        got = self.fs.trash_empty("/" + tree)
        gone = [r for k in ("k", "j") for r in self.keys[f"{tree}/{k}"].rows if r.kind == "trash"]
        assert got == (len(gone), sum(len(r.data or b"") for r in gone), 0)
        for k in ("k", "j"):
            key = self.keys[f"{tree}/{k}"]
            key.rows = [r for r in key.rows if r.kind != "trash"]

    @rule()
    def gc(self) -> None:
        self._tick()
        self.store.collect(seal=True)

    @rule(tree=st.sampled_from(["vsus", "vsu0"]))
    def flip(self, tree: str) -> None:
        self._tick()
        self._flip(tree)

    def _flip(self, tree: str) -> None:
        state, days = self.policy[tree]
        new = "enabled" if state == "suspended" else "suspended"
        self.fs.set_tree_policy(self.dirs[tree], versioning=new)
        self.policy[tree] = (new, days)

    # -- the check --------------------------------------------------------------------
    @invariant()
    def matches(self) -> None:
        rv = self.fs.reading_versions()
        for path, key in self.keys.items():
            got = self.fs.versions("/" + path)
            want: list[tuple[str, str, bool, str, int]] = []
            if key.live is not None:
                want.append(("current", key.live[0], True, "", len(key.live[1])))
            for i, r in enumerate(key.rows):
                latest = key.live is None and i == 0 and r.kind == "marker"
                want.append((r.kind, r.vid, latest, r.reason, len(r.data or b"")))
            assert [(v.kind, v.vid, v.latest, v.reason, v.size) for v in got] == want, path
            datas = ([key.live[1]] if key.live else []) + [r.data for r in key.rows]
            for v, data in zip(got, datas, strict=True):
                if data is None:
                    assert v.ino == 0
                    continue
                assert rv.getattr(v.ino).size == len(data)
                assert rv.read(v.ino, 0, len(data) + 10) == data, (path, v)
            tree, k = path.split("/")
            if key.live is None:
                with pytest.raises(NotFound):
                    self.fs.lookup(self.dirs[tree], k)
            else:
                a = self.fs.lookup(self.dirs[tree], k)
                assert self.fs.read(a.ino, 0, a.size + 10) == key.live[1]
                assert self.fs.version_id(a.ino) == key.live[0]
        for tree in TREES:  # space accounting: what versions, markers and the trash hold, per tree
            usage: dict[str, tuple[int, int]] = {}
            for k in ("k", "j"):
                for r in self.keys[f"{tree}/{k}"].rows:
                    n, b = usage.get(r.kind, (0, 0))
                    usage[r.kind] = (n + 1, b + len(r.data or b""))
            assert self.fs.version_usage("/" + tree) == usage, tree


VersionsModel.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
TestVersionsModel = VersionsModel.TestCase


class PgVersionsModel(VersionsModel):
    """The same model with the metadata in PostgreSQL (a fresh database per example)."""

    server: LocalPostgres | None = None
    _dbs = itertools.count()

    def meta_url(self) -> str | None:
        assert self.server is not None
        self.db = f"vmodel_{next(self._dbs)}"
        return self.server.create_database(self.db)

    def teardown(self) -> None:
        super().teardown()
        assert self.server is not None
        self.server.drop_database(self.db)


def test_versions_model_on_postgresql(pg_server: LocalPostgres) -> None:
    PgVersionsModel.server = pg_server
    try:
        run_state_machine_as_test(PgVersionsModel, settings=settings(max_examples=10, stateful_step_count=25,
                                                                     deadline=None))
    finally:
        PgVersionsModel.server = None
