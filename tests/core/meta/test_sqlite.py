"""SQLite MetaStore: schema versioning, group commit, isolation of failing ops, processes."""

import multiprocessing as mp
import os
import signal
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from core.errors import StoreError
from core.meta.schema import SCHEMA_VERSION
from core.meta.sqlite import SqliteMeta
from core.meta.txn import Txn


def test_schema_version_and_reopen(tmp_path: Path) -> None:
    p = str(tmp_path / "m.db")
    m = SqliteMeta(p, create=True)
    with m.read() as t:
        assert t.info("schema_version") == str(SCHEMA_VERSION)
    m.close()
    m2 = SqliteMeta(p)
    with m2.read() as t:
        assert t.info("schema_version") == str(SCHEMA_VERSION)
    assert sqlite3.connect(p).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    m2.close()


def test_newer_schema_refused(tmp_path: Path) -> None:
    p = str(tmp_path / "m.db")
    SqliteMeta(p, create=True).close()
    c = sqlite3.connect(p)
    c.execute("UPDATE info SET value = '999' WHERE key = 'schema_version'")
    c.commit()
    c.close()
    with pytest.raises(StoreError, match="newer"):
        SqliteMeta(p)


def test_missing_database(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        SqliteMeta(str(tmp_path / "none.db"))


def test_failing_op_does_not_spoil_the_batch(tmp_path: Path) -> None:
    m = SqliteMeta(str(tmp_path / "m.db"), create=True)
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def op(i: int) -> None:
        barrier.wait()

        def fn(t: Txn) -> None:
            t.set_info(f"k{i}", str(i))
            if i % 5 == 0:
                raise ValueError("boom")
        try:
            m.write(fn)
        except ValueError as e:
            errors.append(e)
    ths = [threading.Thread(target=op, args=(i,)) for i in range(20)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert len(errors) == 4
    with m.read() as t:
        for i in range(20):
            assert (t.info(f"k{i}") is None) == (i % 5 == 0)
    m.close()


def test_snapshot_reads(tmp_path: Path) -> None:
    m = SqliteMeta(str(tmp_path / "m.db"), create=True)
    m.write(lambda t: t.set_info("x", "1"))
    with m.read() as t:
        assert t.info("x") == "1"
        m.write(lambda t2: t2.set_info("x", "2"))
        assert t.info("x") == "1"  # still our snapshot
    with m.read() as t:
        assert t.info("x") == "2"
    m.close()


def _proc_writer(path: str, n: int, tag: int) -> None:
    m = SqliteMeta(path)
    for i in range(n):
        m.write(lambda t, i=i: t.set_info(f"p{tag}-{i}", str(i)))
    m.close()


def test_several_processes_write_without_lock_errors(tmp_path: Path) -> None:
    p = str(tmp_path / "m.db")
    SqliteMeta(p, create=True).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_proc_writer, args=(p, 150, i)) for i in range(3)]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join(60)
        assert pr.exitcode == 0
    m = SqliteMeta(p)
    with m.read() as t:
        assert t.one("SELECT COUNT(*) FROM info WHERE key LIKE 'p%'") == (450,)
    m.close()


def _fork_child(m: SqliteMeta, q: "mp.Queue[str]") -> None:
    m.write(lambda t: t.set_info("child", "yes"))
    with m.read() as t:
        q.put(str(t.info("child")))


def test_usable_after_fork(tmp_path: Path) -> None:
    m = SqliteMeta(str(tmp_path / "m.db"), create=True)
    m.write(lambda t: t.set_info("parent", "yes"))  # the writer thread exists before the fork
    ctx = mp.get_context("fork")
    q: mp.Queue[str] = ctx.Queue()
    pr = ctx.Process(target=_fork_child, args=(m, q))
    pr.start()
    assert q.get(timeout=30) == "yes"
    pr.join(30)
    with m.read() as t:
        assert t.info("child") == "yes"
    m.close()


def _kill_after_lazy_write(path: str) -> None:
    m = SqliteMeta(path)
    m.write(lambda t: t.set_info("lazy", "kept"), durable=False)
    os.kill(os.getpid(), signal.SIGKILL)


def test_non_durable_write_survives_kill_9_and_sync_restores_full(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    p = str(tmp_path / "m.db")
    SqliteMeta(p, create=True).close()
    pr = mp.get_context("spawn").Process(target=_kill_after_lazy_write, args=(p,))
    pr.start()
    pr.join(60)
    assert pr.exitcode == -signal.SIGKILL
    m = SqliteMeta(p)
    with m.read() as t:
        assert t.info("lazy") == "kept"
    m.write(lambda t: t.set_info("a", "1"), durable=False)
    assert not m._full  # the writer committed with synchronous=NORMAL
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    m.sync()
    assert p + "-wal" in synced  # the WAL holding the non-durable commit was fsynced
    m.close()


def _sqlite_leader(path: str, q: "mp.Queue[str]") -> None:
    m = SqliteMeta(path)
    lk = m.leader("scrub")
    q.put("leader" if lk is not None else "not")
    import time
    time.sleep(60)


@pytest.mark.timeout(60)
def test_leader_lock_is_exclusive_and_dies_with_its_holder(tmp_path: Path) -> None:
    p = str(tmp_path / "m.db")
    m = SqliteMeta(p, create=True)
    ctx = mp.get_context("fork")
    q: mp.Queue[str] = ctx.Queue()
    child = ctx.Process(target=_sqlite_leader, args=(p, q))
    child.start()
    try:
        assert q.get(timeout=30) == "leader"
        assert m.leader("scrub") is None
        gc = m.leader("gc")
        assert gc is not None and gc.held() and m.leader("gc") is None  # exclusive within a process too
        gc.release()
        assert not gc.held() and m.leader("gc") is not None
    finally:
        os.kill(child.pid or 0, signal.SIGKILL)
        child.join(10)
    lk = m.leader("scrub")  # the kernel dropped the dead holder's lock
    assert lk is not None and lk.held()
    lk.release()
    m.close()


def _sleep_child(up: Any) -> None:
    import time
    up.set()  # fork handlers have run by now
    time.sleep(30)


@pytest.mark.timeout(60)
def test_a_forked_child_does_not_keep_its_parents_leader_lock(tmp_path: Path) -> None:
    m = SqliteMeta(str(tmp_path / "m.db"), create=True)
    lk = m.leader("gc")
    assert lk is not None
    ctx = mp.get_context("fork")
    up = ctx.Event()
    child = ctx.Process(target=_sleep_child, args=(up,))
    child.start()
    try:
        assert up.wait(30)
        lk.release()
        again = m.leader("gc")  # the child's inherited descriptor does not hold it
        assert again is not None
        again.release()
    finally:
        child.kill()
        child.join(10)
    m.close()
