"""Property-based: random sequences of fs operations against an in-memory model."""

from __future__ import annotations

import itertools

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from core.errors import CoreError
from core.store import Store, init_store, open_store
from gateway.cluster.postgres import LocalPostgres

NAMES = st.sampled_from(["a", "b"])
DIRS = st.sampled_from(["/", "/x", "/x/y", "/z"])
# sizes around the inline threshold (16 KiB) and the stripe (256 KiB in these tests)
BLOB = st.tuples(st.binary(min_size=1, max_size=64), st.sampled_from([1, 7, 300, 1000, 5000])).map(
    lambda t: (t[0] * t[1])[:300_000])


class FsModel(RuleBasedStateMachine):
    """Model: path -> bytes for files, path -> None for directories."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile
        self.tmp = tempfile.mkdtemp()
        init_store(self.tmp + "/s", targets=[f"mem:{i}" for i in range(6)], cell=64 * 1024, meta_url=self.meta_url())
        self.store: Store = open_store(self.tmp + "/s")
        self.fs = self.store.fs
        self.model: dict[str, bytes | None] = {"/": None}
        for d in ("/x", "/x/y", "/z"):
            self.fs.makedirs(d)
            self.model[d] = None

    def meta_url(self) -> str | None:
        return None  # SQLite

    def teardown(self) -> None:
        self.store.close()

    @staticmethod
    def _join(d: str, n: str) -> str:
        return (d.rstrip("/") + "/" + n) if d != "/" else "/" + n

    def _expect_ok(self, op: str, ok: bool, fn: object) -> None:
        try:
            assert callable(fn)
            fn()
        except CoreError as e:
            assert not ok, f"{op} failed unexpectedly: {e!r}"
            return
        assert ok, f"{op} succeeded but the model says it must fail"

    @rule(d=DIRS, n=NAMES, data=BLOB)
    def put(self, d: str, n: str, data: bytes) -> None:
        p = self._join(d, n)
        ok = d in self.model and self.model.get(p, b"") is not None
        parent = self.fs.resolve(d).ino if d in self.model else 0
        self._expect_ok("put", ok, lambda: self.fs.write_file(parent, n, data))
        if ok:
            self.model[p] = data

    @rule(d=DIRS, n=NAMES, off=st.integers(0, 300_000), data=BLOB)
    def write_at(self, d: str, n: str, off: int, data: bytes) -> None:
        p = self._join(d, n)
        if not isinstance(self.model.get(p), bytes):
            return
        with self.fs.open(self.fs.resolve(p).ino, write=True) as h:
            h.write(off, data)
        cur = bytearray(self.model[p] or b"")
        if data:
            if len(cur) < off:
                cur.extend(bytes(off - len(cur)))
            cur[off:off + len(data)] = data
        self.model[p] = bytes(cur)

    @rule(d=DIRS, n=NAMES, size=st.integers(0, 300_000))
    def truncate(self, d: str, n: str, size: int) -> None:
        p = self._join(d, n)
        if not isinstance(self.model.get(p), bytes):
            return
        self.fs.setattr(self.fs.resolve(p).ino, size=size)
        cur = self.model[p] or b""
        self.model[p] = cur[:size] + bytes(max(0, size - len(cur)))

    @rule(d=DIRS, n=NAMES)
    def mkdir(self, d: str, n: str) -> None:
        p = self._join(d, n)
        ok = d in self.model and self.model[d] is None and p not in self.model
        parent = self.fs.resolve(d).ino if d in self.model else 0
        self._expect_ok("mkdir", ok, lambda: self.fs.mkdir(parent, n))
        if ok:
            self.model[p] = None

    @rule(d=DIRS, n=NAMES)
    def remove(self, d: str, n: str) -> None:
        p = self._join(d, n)
        if p not in self.model or p in ("/x", "/x/y", "/z"):
            return
        parent = self.fs.resolve(d).ino
        if self.model[p] is None:
            ok = not any(k.startswith(p + "/") for k in self.model)
            self._expect_ok("rmdir", ok, lambda: self.fs.rmdir(parent, n))
        else:
            ok = True
            self.fs.unlink(parent, n)
        if ok:
            del self.model[p]

    @rule(sd=DIRS, sn=NAMES, dd=DIRS, dn=NAMES)
    def rename(self, sd: str, sn: str, dd: str, dn: str) -> None:
        src, dst = self._join(sd, sn), self._join(dd, dn)
        if src not in self.model or dd not in self.model or src in ("/x", "/x/y", "/z"):
            return
        is_dir = self.model[src] is None
        ok = True
        if dst == src:
            ok = True
        elif is_dir and (dst + "/").startswith(src + "/"):
            ok = False
        elif dst in self.model:
            if is_dir != (self.model[dst] is None) or (is_dir and any(k.startswith(dst + "/") for k in self.model)):
                ok = False
            elif dst in ("/x", "/x/y", "/z"):
                return
        sp, dp = self.fs.resolve(sd).ino, self.fs.resolve(dd).ino
        self._expect_ok("rename", ok, lambda: self.fs.rename(sp, sn, dp, dn))
        if ok and dst != src:
            moved = {k: v for k, v in self.model.items() if k == src or k.startswith(src + "/")}
            for k in moved:
                del self.model[k]
            for k, v in moved.items():
                self.model[dst + k[len(src):]] = v

    @precondition(lambda self: True)
    @invariant()
    def matches(self) -> None:
        for p, v in self.model.items():
            a = self.fs.resolve(p)
            if v is None:
                assert a.is_dir, p
                kids = sorted(k.rsplit("/", 1)[1] for k in self.model
                              if k != p and k.rsplit("/", 1)[0] == (p if p != "/" else ""))
                assert sorted(e.name for e in self.fs.listdir(a.ino)) == kids, p
            else:
                assert a.is_file and a.size == len(v), p
                assert self.fs.read(a.ino, 0, len(v) + 10) == v, p


FsModel.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestFsModel = FsModel.TestCase


class PgFsModel(FsModel):
    """The same model with the metadata in PostgreSQL (a fresh database per example)."""

    server: LocalPostgres | None = None
    _dbs = itertools.count()

    def meta_url(self) -> str | None:
        assert self.server is not None
        self.db = f"model_{next(self._dbs)}"
        return self.server.create_database(self.db)

    def teardown(self) -> None:
        super().teardown()
        assert self.server is not None
        self.server.drop_database(self.db)


def test_fs_model_on_postgresql(pg_server: LocalPostgres) -> None:
    PgFsModel.server = pg_server
    try:
        run_state_machine_as_test(PgFsModel, settings=settings(max_examples=12, stateful_step_count=20,
                                                               deadline=None))
    finally:
        PgFsModel.server = None
