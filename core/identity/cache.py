"""A per-process cache of identity lookups, bounded in staleness and size.

Every identity change bumps ``info.identity_epoch`` in its own transaction.
A process re-reads that counter at most once per ``refresh_s`` (one cheap
statement) and drops everything it cached when it moved, so a change committed
by any process — a key removed or disabled, a user removed, a group changed —
is seen by every other process's lookups within ``refresh_s`` (1 s by default).
The process that made the change drops its cache at once.

No locks: dict reads and writes are atomic under the GIL, and a race costs at
most one extra read of the counter or of a row (safe after fork, too).

>>> epoch = [0]
>>> c = EpochCache(lambda: epoch[0], refresh_s=0.0)
>>> c.get(("k", "a"), lambda: "one"), c.get(("k", "a"), lambda: "two")
('one', 'one')
>>> epoch[0] = 1
>>> c.get(("k", "a"), lambda: "two")
'two'
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
MAX_ENTRIES = 4096


class EpochCache:
    def __init__(self, read_epoch: Callable[[], int], *, refresh_s: float = 1.0,
                 max_entries: int = MAX_ENTRIES) -> None:
        self._read_epoch = read_epoch
        self.refresh_s = refresh_s
        self.max_entries = max_entries
        self._items: dict[Hashable, Any] = {}
        self._epoch: int | None = None
        self._checked = float("-inf")

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        self._validate()
        try:
            value: T = self._items[key]
            return value
        except KeyError:
            pass
        value = load()
        if len(self._items) >= self.max_entries:  # e.g. a client trying random access keys
            self._items = {}
        self._items[key] = value
        return value

    def invalidate(self) -> None:
        """Forget everything and re-read the epoch on the next lookup."""
        self._items = {}
        self._checked = float("-inf")

    def _validate(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.refresh_s:
            return
        epoch = self._read_epoch()
        if epoch != self._epoch:
            self._items = {}
            self._epoch = epoch
        self._checked = now
