"""SQLite MetaStore: WAL mode, synchronous=FULL (NORMAL for a batch of only non-durable writes), group commit.

Several processes share one database file: SQLite's WAL lets readers run while
one writer commits, and ``busy_timeout`` makes writers queue rather than fail
with "database is locked".  Within a process one writer thread batches all
pending writes into a single ``BEGIN IMMEDIATE … COMMIT`` (one fsync).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import queue
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

from core.errors import StoreError
from core.meta.schema import MIGRATIONS, SCHEMA_VERSION
from core.meta.store import take_batch
from core.meta.txn import Txn

T = TypeVar("T")
BUSY_TIMEOUT_MS = 120_000
MAX_BATCH = 512


_FORKS = [0]  # bumped in every forked child: a cheap "did we fork?" (os.getpid() is a system call per query)
os.register_at_fork(after_in_child=lambda: _FORKS.__setitem__(0, _FORKS[0] + 1))


def _connect(path: str, busy_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=busy_ms / 1000, isolation_level=None,
                           check_same_thread=False, cached_statements=256)
    conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("PRAGMA secure_delete = ON")  # deleted rows leave no readable remains (Debian's default too)
    return conn


def _busy(e: sqlite3.OperationalError) -> bool:
    return "locked" in str(e) or "busy" in str(e)


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE with our own fine-grained wait.

    SQLite's built-in busy handler sleeps in whole milliseconds that grow to
    100 ms; with several writer processes (uvicorn workers, NFS and SMB
    servers) that turns brief lock hand-overs into long stalls.  The writer
    connection therefore has a zero busy timeout and retries here from 50 µs,
    with jitter so processes do not retry in lockstep.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.00005
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as e:
            if not _busy(e) or time.monotonic() > deadline:
                raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 1.5, 0.005)


def _commit(conn: sqlite3.Connection) -> None:
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("COMMIT")
            return
        except sqlite3.OperationalError as e:
            if not _busy(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.0005)


class SqliteMeta:
    def __init__(self, path: str, *, create: bool = False) -> None:
        if not create and not os.path.exists(path):
            raise StoreError(f"no metadata database at {path}")
        self.path = path
        self._local = threading.local()
        self._pid = os.getpid()
        self._forks = _FORKS[0]
        self._q: queue.SimpleQueue[tuple[Callable[[Txn], Any], Future[Any], bool] | None] = queue.SimpleQueue()
        self._full = True   # the writer connection's synchronous setting
        self._writer: threading.Thread | None = None
        self._wlock = threading.Lock()
        self._closed = False
        conn = _connect(path)
        try:
            self._migrate(conn)
        finally:
            conn.close()

    # -- schema ---------------------------------------------------------------------
    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        _begin_immediate(conn)
        try:
            has = conn.execute("SELECT name FROM sqlite_master WHERE name = 'info'").fetchone()
            version = 0
            if has:
                row = conn.execute("SELECT value FROM info WHERE key = 'schema_version'").fetchone()
                version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(f"metadata schema {version} is newer than this Tessera ({SCHEMA_VERSION})")
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for step in MIGRATIONS[v]:
                    if isinstance(step, str):
                        conn.execute(step)
                    else:
                        step(conn)
                conn.execute("INSERT INTO info (key, value) VALUES ('schema_version', ?) "
                             "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(v),))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def checkpoint(self) -> None:
        """Copy the WAL into the database and empty it (so no old page versions linger in -wal)."""
        self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- connections ----------------------------------------------------------------
    def _after_fork(self) -> None:
        if _FORKS[0] != self._forks:  # a forked child: nothing of the parent's is usable
            self._forks = _FORKS[0]
            self._pid = os.getpid()
            self._local = threading.local()
            self._q = queue.SimpleQueue()
            self._writer = None
            self._wlock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        self._after_fork()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreError("metadata store is closed")
            conn = _connect(self.path)
            self._local.conn = conn
        return conn

    def peek(self) -> Txn:
        """A Txn for one statement in autocommit mode (atomic by itself, no BEGIN/COMMIT)."""
        return Txn(self._conn())

    @contextmanager
    def read(self) -> Iterator[Txn]:
        conn = self._conn()
        if conn.in_transaction:  # nested read on this thread: reuse the snapshot
            yield Txn(conn)
            return
        conn.execute("BEGIN")
        try:
            yield Txn(conn)
        finally:
            conn.execute("COMMIT")

    # -- group-committed writes -----------------------------------------------------
    def write(self, fn: Callable[[Txn], T], durable: bool = True) -> T:
        self._after_fork()
        if threading.current_thread() is self._writer:
            return fn(self._wtxn)
        if self._closed:
            raise StoreError("metadata store is closed")
        fut: Future[T] = Future()
        self._ensure_writer()
        self._q.put((fn, fut, durable))
        return fut.result()

    def sync(self) -> None:
        """Make every write committed so far durable.

        An empty transaction writes no WAL frame, so it would not sync anything: once the writes queued
        before are committed, the WAL file itself is fsynced (what a checkpoint already moved into the
        database file was synced by that checkpoint).
        """
        self.write(lambda t: None)
        try:
            fd = os.open(self.path + "-wal", os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _ensure_writer(self) -> None:
        with self._wlock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_loop, name="meta-writer", daemon=True)
                self._writer.start()

    def _write_loop(self) -> None:
        conn = _connect(self.path, busy_ms=0)
        self._full = True
        self._wtxn = Txn(conn)
        try:
            while True:
                item = self._q.get()
                if item is None:
                    return
                batch = take_batch(self._q, item, MAX_BATCH)
                self._commit(conn, batch)
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[tuple[Callable[[Txn], Any], Future[Any], bool]]) -> None:
        results: list[tuple[Future[Any], Any, BaseException | None]] = []
        full = any(durable for _, _, durable in batch)
        try:
            if full != self._full:  # WAL + NORMAL: committed frames survive a killed process, not a power cut
                conn.execute(f"PRAGMA synchronous = {'FULL' if full else 'NORMAL'}")
                self._full = full
            _begin_immediate(conn)
            for fn, fut, _ in batch:
                conn.execute("SAVEPOINT op")
                self._wtxn.memo.clear()  # what one operation remembered (core.fs.versions) is its own
                try:
                    res = fn(self._wtxn)
                    conn.execute("RELEASE op")
                    results.append((fut, res, None))
                except BaseException as e:  # the op failed: undo just it
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    results.append((fut, None, e))
            _commit(conn)
        except BaseException as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for _, fut, _ in batch:
                if not fut.done():
                    fut.set_exception(e)
            return
        for fut, res, err in results:
            if err is not None:
                fut.set_exception(err)
            else:
                fut.set_result(res)

    def leader(self, name: str) -> FileLeaderLock | None:
        """Become the one process running job ``name``: an flock on ``<db>.leader-<hash>`` beside the
        database (released when this process dies); None if another process (or another holder in this
        one) has it."""
        path = f"{self.path}.leader-{hashlib.sha256(name.encode()).hexdigest()[:16]}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return FileLeaderLock(fd, self._forks)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if os.getpid() == self._pid and self._writer is not None and self._writer.is_alive():
            self._q.put(None)
            self._writer.join(timeout=10)
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class FileLeaderLock:
    """An flock held on an open file: the kernel drops it when the holder's process dies.  A forked child
    closes its copy of the descriptor (see _drop_inherited_leaders), so the lock stays its holder's alone."""

    def __init__(self, fd: int, forks: int) -> None:
        self._fd: int | None = fd
        self._forks = forks
        _LEADERS.add(self)

    def held(self) -> bool:
        return self._fd is not None and _FORKS[0] == self._forks  # a forked child does not hold it

    def release(self) -> None:
        if self._fd is not None:
            if _FORKS[0] == self._forks:
                os.close(self._fd)  # closing the last descriptor of the open file releases the lock
            self._fd = None

    def __enter__(self) -> FileLeaderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


_LEADERS: weakref.WeakSet[FileLeaderLock] = weakref.WeakSet()


def _drop_inherited_leaders() -> None:
    for lk in list(_LEADERS):
        if lk._fd is not None:
            try:
                os.close(lk._fd)  # the parent's descriptor stays open: its lock stays held
            except OSError:
                pass
            lk._fd = None


os.register_at_fork(after_in_child=_drop_inherited_leaders)
