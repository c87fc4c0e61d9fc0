"""The MetaStore interface: snapshot reads and group-committed writes.

``read()`` gives a Txn over a consistent snapshot on this thread's connection.
``write(fn)`` runs ``fn(txn)`` inside a write transaction and returns its
result once the transaction is durable.  ``write(fn, durable=False)`` returns
once it is committed and survives the process being killed, but not yet a power
loss: for state that dies with the process anyway (locks, share modes) and for
protocols whose clients ask for durability explicitly (SMB: FLUSH); the next
durable commit (or :meth:`sync`) makes it durable too.  Writes from many threads are batched
into one transaction (one fsync) by a single writer thread; each ``fn`` runs
under its own savepoint, so one failing operation never takes the others down.
``fn`` must only touch the database: it may run on another thread, and on
PostgreSQL it may run more than once (a serialization conflict re-runs the batch).

``leader(name)`` makes this process the one of the whole store (the cluster)
that runs job ``name`` (scrub, rebuild, GC): a :class:`LeaderLock`, or None if
another process holds it.  The lock goes with its holder (process death, or on
PostgreSQL its session); ``held()`` says whether it is still ours.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

from core.meta.txn import Txn

T = TypeVar("T")


class LeaderLock(Protocol):
    def held(self) -> bool: ...
    def release(self) -> None: ...


class MetaStore(Protocol):
    def read(self) -> AbstractContextManager[Txn]: ...
    def peek(self) -> Txn: ...
    def write(self, fn: Callable[[Txn], T], durable: bool = True) -> T: ...
    def sync(self) -> None: ...
    def leader(self, name: str) -> LeaderLock | None: ...
    def close(self) -> None: ...


Item = TypeVar("Item")


def take_batch(q: queue.SimpleQueue[Item | None], first: Item, limit: int) -> list[Item]:
    """``first`` and whatever else is queued (up to ``limit``), for one group commit.  A ``None`` (the
    writer's stop signal) ends the batch and is put back for the writer loop to see next."""
    batch = [first]
    while len(batch) < limit:
        try:
            nxt = q.get_nowait()
        except queue.Empty:
            break
        if nxt is None:
            q.put(None)
            break
        batch.append(nxt)
    return batch
