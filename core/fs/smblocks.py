"""SMB byte-range locks, in the same ``locks`` table as POSIX (NLM, NFSv4) locks, so each sees the other's.

SMB's rules (MS-FSA 2.1.5.8 lock, 2.1.5.9 unlock, 2.1.4.10 conflict) differ from POSIX's:

- Locks of one owner (an SMB *open*: the SMB layer names it, e.g. ``smb:<file id>``, and passes the
  same string to :meth:`~core.fs.FileSystem.unlock_all` on CLOSE) **stack**: they are never merged
  or split.  Two shared locks on the same range are two locks, each needing its own unlock.
- Conflicts, for a lock (``lock_intent``) or a read/write (``io``) over a range that overlaps an
  existing lock: an exclusive lock blocks every other owner; the owner's own exclusive lock blocks
  only a new *exclusive lock* (the owner may read, write and stack shared locks on it); a shared
  lock blocks every exclusive intent (an exclusive lock or a write), the owner's own included.
- Unlock must name exactly the (offset, length) of one of the owner's locks, else
  :class:`~core.errors.RangeNotLocked`; an exclusive one is removed first, else the last shared one.
- Ranges are unsigned 64-bit: ``offset + length`` may reach 2**64 (more is
  :class:`~core.errors.InvalidLockRange`).  Overlap is ``s1 < e2 and s2 < e1`` on half-open ranges,
  which is MS-FSA's last-byte test without its wrap-around: a zero-length range at ``o`` overlaps
  only a lock that holds both byte ``o - 1`` and byte ``o``, so it never conflicts with another
  zero-length range, and the {0, 0} range conflicts with nothing.

Storage.  The table's ``start_off``/``end_off`` are signed 64-bit, with ``end_off = EOF_OFF``
(2**63-1) meaning "to end of file" for POSIX.  An SMB lock keeps its exact ``smb_start``/``smb_len``
(wrapped to signed) for SMB-to-SMB decisions, and a *cell* range in ``start_off``/``end_off`` that
POSIX requests compare against with their unchanged query: bytes below 2**63-2 are themselves, and
every byte at or beyond it collapses into the last cell, 2**63-2, which a POSIX lock "to end of file"
covers.  So a non-empty SMB range stays non-empty, NFS and SMB locks on the same bytes conflict, and
a lock past 2**63 still conflicts with a POSIX lock to end of file; a zero-length SMB lock at ``o``
is stored empty at ``o`` and conflicts with a POSIX range holding ``o - 1`` and ``o``, as above.  An
SMB request reads POSIX rows back exactly (``end_off = EOF_OFF`` as 2**64).

>>> cells(10, 20), cells(5, 5), cells(2**64 - 10, 2**64)
((10, 20), (5, 5), (9223372036854775806, 9223372036854775807))
>>> overlaps((10, 20), (19, 30)), overlaps((10, 20), (20, 30)), overlaps((15, 15), (10, 20))
(True, False, True)
>>> overlaps((10, 10), (10, 20)), overlaps((0, 0), (0, 2**64)), overlaps((7, 7), (7, 7))
(False, False, False)
"""

from __future__ import annotations

from core.errors import InvalidArgument, InvalidLockRange, LockConflict, RangeNotLocked
from core.fs.locks import EOF_OFF, LOCK_COLS, U64, held, info, unsigned
from core.fs.types import LockInfo
from core.meta import proc
from core.meta.txn import Row, Txn

_LAST_CELL = EOF_OFF - 1


def exact_range(offset: int, length: int) -> tuple[int, int]:
    """[start, end) of an SMB lock element; ``end`` may be 2**64."""
    if not (0 <= offset < U64 and 0 <= length < U64):
        raise InvalidArgument("lock offset and length are unsigned 64-bit")
    if offset + length > U64:
        raise InvalidLockRange("the lock range runs past the largest 64-bit offset")
    return offset, offset + length


def cells(s: int, e: int) -> tuple[int, int]:
    """The (start_off, end_off) an exact SMB range is stored as, for POSIX comparisons (see above)."""
    if e == s:
        c = min(s, _LAST_CELL)
        return c, c
    return min(s, _LAST_CELL), min(e - 1, _LAST_CELL) + 1


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _signed(v: int) -> int:
    return v - U64 if v >= 1 << 63 else v


def _exact(row: Row) -> tuple[int, int]:
    """The exact unsigned range of a locks row (POSIX "to end of file" = to 2**64)."""
    _, _, _, s, e, _, xs, xl = row
    if xs is not None:
        start = unsigned(int(xs))
        return start, start + unsigned(int(xl))
    return int(s), U64 if int(e) >= EOF_OFF else int(e)


def conflict(t: Txn, ino: int, owner: str, offset: int, length: int, exclusive: bool, *,
             lock_intent: bool = True, sweep: bool = True) -> LockInfo | None:
    """The first lock that blocks an SMB lock (``lock_intent``) or read/write (``exclusive`` = a write)
    of ``owner`` over [offset, offset+length), by MS-FSA 2.1.4.10; None if nothing does.

    Locks of processes that died are skipped (and deleted when ``sweep``: a write transaction)."""
    want = exact_range(offset, length)
    rows = t.all(f"SELECT {LOCK_COLS} FROM locks WHERE ino = ? ORDER BY id", (ino,))  # a file's locks are few
    for row in rows:
        if not overlaps(want, _exact(row)):
            continue
        mine, held_ex = row[1] == owner, bool(row[5])
        if held_ex and mine and not (exclusive and lock_intent):
            continue  # the owner reads, writes and stacks shared locks over its own exclusive lock
        if not held_ex and not exclusive:
            continue  # shared locks block only exclusive intent
        if not proc.alive(str(row[2])):
            if sweep:
                t.exec("DELETE FROM locks WHERE id = ?", (row[0],))
            continue
        return info(row)
    return None


def lock(t: Txn, ino: int, owner: str, offset: int, length: int, exclusive: bool) -> None:
    """Add one SMB lock (stacked on the owner's others), or :class:`LockConflict`."""
    hit = conflict(t, ino, owner, offset, length, exclusive)
    if hit is not None:
        raise LockConflict(f"range held by {hit.owner}")
    s, e = exact_range(offset, length)
    lo, hi = cells(s, e)
    t.exec("INSERT INTO locks (ino, owner, proc, start_off, end_off, exclusive, smb_start, smb_len) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
           (ino, owner, proc.current(), lo, hi, int(exclusive), _signed(offset), _signed(length)))


def unlock(t: Txn, ino: int, owner: str, offset: int, length: int) -> LockInfo:
    """Remove one of the owner's SMB locks with exactly this range (an exclusive one first, else the
    last shared one, as MS-FSA 2.1.5.9) and return it, or :class:`RangeNotLocked`."""
    exact_range(offset, length)
    rows = t.all(f"SELECT {LOCK_COLS} FROM locks WHERE ino = ? AND owner = ? AND smb_start = ? AND smb_len = ? "
                 "ORDER BY id", (ino, owner, _signed(offset), _signed(length)))
    if not rows:
        raise RangeNotLocked(f"no lock of {owner} at offset {offset}, length {length}")
    victim = next((r for r in rows if r[5]), rows[-1])
    t.exec("DELETE FROM locks WHERE id = ?", (victim[0],))
    return info(victim)


__all__ = ["conflict", "exact_range", "held", "lock", "unlock"]
