"""PostgreSQL MetaStore: the same Txn and semantics as :mod:`core.meta.sqlite`, for a cluster.

Connections
    Readers borrow from a psycopg_pool ``ConnectionPool`` (autocommit connections; the URL is passed
    through, so libpq multi-host URLs with ``target_session_attrs=read-write`` follow a failover).
    ``read()`` holds one connection for a ``REPEATABLE READ READ ONLY`` snapshot (a nested read on the
    same thread reuses it); ``peek()`` runs each statement on its own, autocommit, on a borrowed
    connection (or on this thread's open snapshot).  A connection found broken is discarded by the
    pool; opening a snapshot tries the next one, so a restart costs the reads in flight, not the next.
Group commit
    One writer thread per process takes every queued ``write(fn)`` into ONE ``SERIALIZABLE``
    transaction (one commit), each fn under its own savepoint: a failing fn is rolled back alone and
    its caller gets its exception.  Several processes and machines write at once; PostgreSQL's
    serializable isolation turns any interleaving that could lose an update into a serialization
    failure (40001) or deadlock (40P01), and the whole batch runs again: up to BATCH_TRIES times
    with jittered exponential backoff, then each fn alone up to ALONE_TRIES times, then that fn's
    caller gets :class:`core.errors.MetaUnavailable`.  A first try runs optimistically, in parallel with
    every other process; a retry queues on the store's writer lock (a session advisory lock), so
    retried batches never conflict with each other and a hot row (one directory that many nodes
    create in) degrades to one batch at a time, cluster-wide, instead of to failures.  After a
    conflict a process queues its first tries too, for CONTENDED_S.  Re-running is safe because fns
    only touch the database; inodes numbered by ``Txn.insert_inode`` get their number 0 back before a re-run
    (core.fs's other changes to the objects it passes in are recomputed from the database alike).
Durability
    ``durable=False`` batches commit with ``SET LOCAL synchronous_commit = off``: committed and safe
    from a killed client, not yet from a server crash.  Durable batches use the server's setting (with
    Patroni's synchronous standby they survive a failover).  ``sync()`` commits a durable transaction
    that writes WAL (a transactional ``pg_logical_emit_message``), so its commit record is flushed, and
    with it all WAL before it.  An empty transaction flushes nothing, and neither does one that only
    took a transaction id (``txid_current()``): PostgreSQL commits a transaction that wrote no WAL
    asynchronously.
Failures
    A lost connection, a timeout (``statement_timeout``, ``connect_timeout``, TCP keepalives) or a
    server shutdown raises :class:`core.errors.MetaUnavailable` (a StoreError the protocols answer with
    "retry": S3 503, NFS3ERR_JUKEBOX); the next call reconnects.  A batch whose connection broke
    before its COMMIT was sent runs once more on a fresh connection; one that broke during COMMIT
    fails (its outcome is unknown).
Forks
    A forked child never uses nor closes its parent's sessions: their sockets are pointed at
    /dev/null in the child (so nothing the child does can end the parent's sessions) and it opens
    its own pool and writer.
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from core.errors import MetaUnavailable, StoreError
from core.meta.dbapi import PG
from core.meta.pgsql import PgConn, PgLeaderLock, broken, connect_kwargs, is_conflict, migrate, try_leader
from core.meta.store import take_batch
from core.meta.txn import Txn

T = TypeVar("T")
Item = tuple[Callable[[Txn], Any], "Future[Any]", bool]
MAX_BATCH = 512
BATCH_TRIES = 6
ALONE_TRIES = 10
POOL_MAX = 12
WRITER_LOCK = 0x7E55E8A_000002  # session advisory lock queueing batches that conflicted (see _attempt)
CONTENDED_S = 2.0
POOL_QUICK_S = 1.0  # no pooled connection this soon: check that the server is reachable at all
POOL_WAIT_S = 15.0
PROBE_S = 5.0

_FORKS = [0]
_LIVE: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()
_ABANDONED: list[object] = []  # a forked child's copies of its parent's pools and sessions, never finalized


def _after_fork_in_child() -> None:
    _FORKS[0] += 1
    fd = os.open(os.devnull, os.O_RDWR)
    for c in list(_LIVE):
        try:
            sock = c.pgconn.socket
        except Exception:
            continue
        try:
            os.dup2(fd, sock, inheritable=False)
        except OSError:
            pass
        _ABANDONED.append(c)
    os.close(fd)
    _LIVE.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


class _Rows:
    """The result of one peek() statement, fetched before its connection went back to the pool."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows


class _PeekConn:
    """Each statement on its own (autocommit) on a pooled connection, or on this thread's snapshot."""

    def __init__(self, meta: PgMeta) -> None:
        self.meta = meta

    def execute(self, sql: str, args: Sequence[Any] = (), /) -> _Rows:
        cur = self.meta._reading()
        if cur is not None:
            c = cur.execute(sql, args)
            return _Rows(c.fetchall() if c.description else [], c.rowcount)
        retry = sql.lstrip()[:6].upper() == "SELECT"
        for attempt in range(self.meta.pool_size + 1):
            with self.meta._borrow() as raw:
                conn = PgConn(raw)
                try:
                    c = conn.execute(sql, args)
                    return _Rows(c.fetchall() if c.description else [], c.rowcount)
                except StoreError:
                    if not (retry and broken(raw)) or attempt == self.meta.pool_size:
                        raise
        raise MetaUnavailable("metadata database unreachable")  # pragma: no cover - the loop returns or raises

    def executemany(self, sql: str, rows: Any, /) -> None:
        with self.meta._borrow() as raw:
            PgConn(raw).executemany(sql, rows)


class PgMeta:
    def __init__(self, url: str, *, create: bool = False, pool_size: int = POOL_MAX) -> None:
        self.url = url
        self.pool_size = pool_size
        self._kw = connect_kwargs(url)
        self._forks = _FORKS[0]
        self._pid = os.getpid()
        self._closed = False
        self._reset_process_state()
        raw = self._connect()
        try:
            migrate(raw, create)
        except psycopg.Error as e:
            raise MetaUnavailable(f"metadata database: {e}") from e
        finally:
            raw.close()

    def _reset_process_state(self) -> None:
        self._local = threading.local()
        self._q: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._wlock = threading.Lock()
        self._plock = threading.Lock()
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._wconn: psycopg.Connection[Any] | None = None
        self._wtxn: Txn | None = None
        self._contended_until = 0.0  # monotonic time until which first tries queue too
        self._reachable_until = 0.0  # monotonic time until which a busy pool is not probed again

    def _after_fork(self) -> None:
        if _FORKS[0] != self._forks:  # a forked child: nothing of the parent's is usable
            _ABANDONED.extend(x for x in (self._pool, self._wconn) if x is not None)
            self._forks = _FORKS[0]
            self._pid = os.getpid()
            self._reset_process_state()

    # -- connections ----------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        try:
            raw = psycopg.connect(self.url, **self._kw)
        except psycopg.Error as e:
            raise MetaUnavailable(f"cannot connect to the metadata database: {e}") from e
        _LIVE.add(raw)
        return raw

    def _get_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        self._after_fork()
        pool = self._pool
        if pool is None:
            with self._plock:
                if self._closed:
                    raise StoreError("metadata store is closed")
                if self._pool is None:
                    self._pool = ConnectionPool(self.url, kwargs=self._kw, min_size=1, max_size=self.pool_size,
                                                open=False, timeout=POOL_WAIT_S, configure=_LIVE.add,
                                                name="tessera-meta", reconnect_timeout=60.0)
                    self._pool.open(wait=False)
                pool = self._pool
        return pool

    @contextmanager
    def _borrow(self) -> Iterator[psycopg.Connection[Any]]:
        pool = self._get_pool()
        try:
            raw = pool.getconn(timeout=POOL_QUICK_S)
        except PoolTimeout:  # the pool is busy, or cannot connect: tell which before waiting longer
            if time.monotonic() > self._reachable_until:  # (a busy pool is probed once per PROBE_S)
                self._connect().close()  # raises StoreError at once if the server is unreachable
                self._reachable_until = time.monotonic() + PROBE_S
            try:
                raw = pool.getconn()
            except PoolTimeout as e:
                raise MetaUnavailable(f"no metadata database connection within {POOL_WAIT_S:.0f} s: {e}") from e
        try:
            yield raw
        finally:
            if not broken(raw) and raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                try:
                    raw.execute("ROLLBACK", prepare=False)
                except psycopg.Error:
                    pass
            pool.putconn(raw)

    def _reading(self) -> PgConn | None:
        self._after_fork()
        conn: PgConn | None = getattr(self._local, "conn", None)
        return conn

    # -- reads ----------------------------------------------------------------------
    def peek(self) -> Txn:
        """A Txn whose statements each run on their own (atomic by itself, no snapshot)."""
        if self._closed:
            raise StoreError("metadata store is closed")
        return Txn(_PeekConn(self), PG)

    @contextmanager
    def read(self) -> Iterator[Txn]:
        cur = self._reading()
        if cur is not None:  # nested read on this thread: reuse the snapshot
            yield Txn(cur, PG)
            return
        if self._closed:
            raise StoreError("metadata store is closed")
        for attempt in range(self.pool_size + 1):
            with self._borrow() as raw:
                try:
                    raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", prepare=False)
                except psycopg.Error as e:  # a connection that died while pooled: try the next
                    if not broken(raw) or attempt == self.pool_size:
                        raise MetaUnavailable(f"metadata database: {e}") from e
                    continue
                conn = self._local.conn = PgConn(raw)
                try:
                    yield Txn(conn, PG)
                finally:
                    self._local.conn = None
                    if not broken(raw):
                        try:
                            raw.execute("COMMIT", prepare=False)
                        except psycopg.Error:
                            pass
                return

    # -- group-committed writes -----------------------------------------------------
    def write(self, fn: Callable[[Txn], T], durable: bool = True) -> T:
        self._after_fork()
        if threading.current_thread() is self._writer and self._wtxn is not None:
            return fn(self._wtxn)
        if self._closed:
            raise StoreError("metadata store is closed")
        fut: Future[T] = Future()
        self._ensure_writer()
        self._q.put((fn, fut, durable))
        return fut.result()

    def sync(self) -> None:
        """Make every write committed so far durable: the durable commit of a transaction that wrote WAL
        flushes the WAL up to its commit record (see the module doc)."""
        self.write(_flush_mark)

    def _ensure_writer(self) -> None:
        with self._wlock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_loop, name="meta-writer-pg", daemon=True)
                self._writer.start()

    def _write_loop(self) -> None:
        try:
            while True:
                item = self._q.get()
                if item is None:
                    return
                batch = take_batch(self._q, item, MAX_BATCH)
                self._run(batch)
        finally:
            if self._wconn is not None:
                self._wconn.close()
                self._wconn = None

    def _run(self, batch: list[Item]) -> None:
        """The batch in one transaction; on conflicts again, then each fn alone (see the module doc)."""
        for attempt in range(BATCH_TRIES):
            try:
                _deliver(self._attempt(batch, queued=attempt > 0 or time.monotonic() < self._contended_until))
                return
            except _Again:
                self._contended_until = time.monotonic() + CONTENDED_S
                _backoff(attempt)
            except BaseException as e:
                _fail(batch, e)
                return
        for item in batch:
            for attempt in range(ALONE_TRIES):
                try:
                    _deliver(self._attempt([item], queued=True))
                    break
                except _Again:
                    _backoff(attempt + 2)
                except BaseException as e:
                    _fail([item], e)
                    break
            else:
                _fail([item], MetaUnavailable(f"metadata write gave up after {ALONE_TRIES} serialization conflicts"))

    def _writer_conn(self) -> psycopg.Connection[Any]:
        if self._wconn is not None and broken(self._wconn):
            self._wconn.close()
            self._wconn = None
        if self._wconn is None:
            self._wconn = self._connect()
        return self._wconn

    def _attempt(self, batch: list[Item], queued: bool = False) -> list[tuple[Future[Any], Any, BaseException | None]]:
        """One try of a batch: results, or _Again (conflict; or the connection broke before COMMIT).

        ``queued``: hold the store's writer lock (a session advisory lock, taken before the transaction
        so its snapshot is fresh) around the try: batches that conflicted once queue behind each other
        instead of conflicting again, so a hot row (a directory many processes create in) costs waiting,
        not failures."""
        raw = self._writer_conn()
        conn = PgConn(raw)
        txn = self._wtxn = Txn(conn, PG)
        results: list[tuple[Future[Any], Any, BaseException | None]] = []
        committing = locked = False
        try:
            if queued:
                raw.execute("SELECT pg_advisory_lock(%s)", (WRITER_LOCK,), prepare=False)
                locked = True
            raw.execute("BEGIN ISOLATION LEVEL SERIALIZABLE", prepare=False)
            if not any(durable for _, _, durable in batch):
                raw.execute("SET LOCAL synchronous_commit = off", prepare=False)
            for fn, fut, _ in batch:
                raw.execute("SAVEPOINT op", prepare=False)
                txn.memo.clear()  # what one operation remembered (core.fs.versions) is its own
                try:
                    res = fn(txn)
                except BaseException as e:  # the op failed: undo just it (unless it must all rerun)
                    if conn.conflicted or is_conflict(e) or broken(raw):
                        raise
                    raw.execute("ROLLBACK TO SAVEPOINT op", prepare=False)
                    raw.execute("RELEASE SAVEPOINT op", prepare=False)
                    results.append((fut, None, e))
                    continue
                if conn.conflicted:
                    raise _Again()
                raw.execute("RELEASE SAVEPOINT op", prepare=False)
                results.append((fut, res, None))
            committing = True
            raw.execute("COMMIT", prepare=False)
            return results
        except BaseException as e:
            self._undo(txn, raw)
            if isinstance(e, _Again) or conn.conflicted or is_conflict(e):
                raise _Again() from e
            if broken(raw) and not committing:
                raise _Again() from e  # nothing was committed: run it on a fresh connection
            if isinstance(e, psycopg.Error):
                raise MetaUnavailable(f"metadata database: {e}") from e
            raise
        finally:
            self._wtxn = None
            if locked and not broken(raw):
                try:
                    raw.execute("SELECT pg_advisory_unlock(%s)", (WRITER_LOCK,), prepare=False)
                except psycopg.Error:
                    pass

    @staticmethod
    def _undo(txn: Txn, raw: psycopg.Connection[Any]) -> None:
        for node in txn.inserted:
            node.ino = 0
        if not broken(raw):
            try:
                raw.execute("ROLLBACK", prepare=False)
            except psycopg.Error:
                pass

    # -- leadership -----------------------------------------------------------------
    def leader(self, name: str) -> PgLeaderLock | None:
        """Become the one process of the cluster running job ``name`` (an advisory lock on a session of
        its own); None if another process holds it."""
        return try_leader(self._connect(), name)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if os.getpid() != self._pid:
            return
        if self._writer is not None and self._writer.is_alive():
            self._q.put(None)
            self._writer.join(timeout=30)
        with self._plock:
            if self._pool is not None:
                self._pool.close(timeout=5)
                self._pool = None


class _Again(Exception):
    """This try of a batch must be run again."""


def _flush_mark(t: Txn) -> None:
    t.one("SELECT pg_logical_emit_message(true, 'tessera.sync', '')")


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.5, 0.002 * 2 ** attempt)))


def _deliver(results: list[tuple[Future[Any], Any, BaseException | None]]) -> None:
    for fut, res, err in results:
        if err is not None:
            fut.set_exception(err)
        else:
            fut.set_result(res)


def _fail(batch: list[Item], e: BaseException) -> None:
    if not isinstance(e, StoreError) and isinstance(e, psycopg.Error):
        e = MetaUnavailable(f"metadata database: {e}")
    for _, fut, _ in batch:
        if not fut.done():
            fut.set_exception(e)
