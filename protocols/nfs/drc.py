"""The duplicate-request cache: a retried non-idempotent call is not executed twice.

An NFS client retransmits a call when its reply is late or its connection broke. For
idempotent procedures (GETATTR, READ) running it again is harmless; for REMOVE, RENAME,
CREATE or MKDIR the second run would fail (NFS3ERR_NOENT, NFS3ERR_EXIST) although the
first one succeeded. So, as knfsd and NFS-Ganesha do, the server remembers the replies
of recent non-idempotent calls:

* the key is the client's IP address (not its port: a client that reconnects may come
  from a new port and reuse the xid), the xid, the program, version and procedure, the
  record's length and a CRC-32 of the call's header and the first 256 bytes of its
  arguments (an xid reused by another process of the same host does not match);
* a retry of a call still running is dropped (the client retries again later);
* a retry of a finished call gets the cached reply bytes;
* entries live ``ttl`` seconds (120, as knfsd) and at most ``capacity`` are kept (LRU).

>>> drc = Drc(capacity=2)
>>> key = DrcKey("10.0.0.1", 7, 100003, 3, 12, 96, 1234)
>>> drc.begin(key) is None                   # new: run it
True
>>> drc.begin(key)                           # a retry while it runs: drop
<Pending.IN_PROGRESS: 1>
>>> drc.finish(key, b"reply"); drc.begin(key)
b'reply'
"""

from __future__ import annotations

import enum
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .rpc import Buf, Call

CHECKSUM_ARGS = 256


class Pending(enum.Enum):
    IN_PROGRESS = 1


@dataclass(frozen=True, slots=True)
class DrcKey:
    ip: str
    xid: int
    prog: int
    vers: int
    proc: int
    length: int
    crc: int


def make_key(ip: str, call: Call, record: Buf) -> DrcKey:
    """The cache key of ``call`` (decoded from ``record``) from a client at ``ip``."""
    view = memoryview(record)
    crc = zlib.crc32(view[4: call.header_len + CHECKSUM_ARGS])
    return DrcKey(ip, call.xid, call.prog, call.vers, call.proc, len(view), crc)


@dataclass(slots=True)
class _Entry:
    reply: bytes | None     # None while the call runs
    at: float


class Drc:
    """A bounded, time-limited, thread-safe map from :class:`DrcKey` to a reply."""

    def __init__(self, capacity: int = 4096, ttl: float = 120.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[DrcKey, _Entry] = OrderedDict()
        self.hits = 0
        self.drops = 0

    def __len__(self) -> int:
        return len(self._entries)

    def begin(self, key: DrcKey) -> bytes | Pending | None:
        """Look a call up: its cached reply, IN_PROGRESS (drop it) or None (new: run it, then :meth:`finish`)."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            entry = self._entries.get(key)
            if entry is None:
                self._entries[key] = _Entry(None, now)
                while len(self._entries) > self.capacity:
                    self._entries.popitem(last=False)
                return None
            self._entries.move_to_end(key)
            if entry.reply is None:
                self.drops += 1
                return Pending.IN_PROGRESS
            self.hits += 1
            return entry.reply

    def finish(self, key: DrcKey, reply: bytes | None) -> None:
        """Record the reply of a call begun with :meth:`begin`; None forgets it (a retry runs again)."""
        with self._lock:
            if reply is None:
                self._entries.pop(key, None)
            elif key in self._entries:
                self._entries[key] = _Entry(reply, self._clock())
                self._entries.move_to_end(key)

    def _expire(self, now: float) -> None:
        entries = self._entries
        while entries:
            key, entry = next(iter(entries.items()))
            if now - entry.at < self.ttl:
                return
            if entry.reply is None and now - entry.at < 4 * self.ttl:
                return                       # a call still running (stuck?): keep it a while longer
            del entries[key]
