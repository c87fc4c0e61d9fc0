"""Byte-range locks and share modes, in metadata so every process sees them.

POSIX locks follow POSIX record-lock rules per *owner* (a string the protocol picks,
e.g. an NLM/NFSv4 lock owner or an SMB open): an owner's new lock replaces
its own overlapping ranges, shared locks coexist, an exclusive lock conflicts
with any other owner's lock on overlapping bytes.  Ranges are [start, end)
with ``end = EOF`` for "to end of file".  Entries of processes that died are
swept whenever they would conflict.  SMB locks (stacked, exact unlock, unsigned
64-bit ranges) share the table and conflict with these: :mod:`core.fs.smblocks`.

Share modes follow SMB: an open asks for access (READ/WRITE/DELETE) and
grants sharing; it conflicts when it wants access another open does not
share, or denies sharing of access another open holds.
"""

from __future__ import annotations

from core.errors import InvalidArgument, LockConflict, ShareViolation
from core.fs.types import LockInfo
from core.meta import proc
from core.meta.txn import Row, Txn

EOF_OFF = (1 << 63) - 1


def _range(start: int, length: int) -> tuple[int, int]:
    if start < 0 or length < 0:
        raise InvalidArgument("negative lock range")
    end = EOF_OFF if length == 0 else min(EOF_OFF, start + length)
    return start, end


LOCK_COLS = "id, owner, proc, start_off, end_off, exclusive, smb_start, smb_len"
U64 = 1 << 64


def unsigned(v: int) -> int:
    """A stored (signed 64-bit) SMB offset or length as the unsigned value it stands for."""
    return v + U64 if v < 0 else v


def info(row: Row) -> LockInfo:
    """A locks row (selected as LOCK_COLS): a POSIX lock as POSIX reports it, an SMB lock exactly."""
    _, owner, _, s, e, ex, xs, xl = row
    if xs is not None:
        return LockInfo(str(owner), unsigned(int(xs)), unsigned(int(xl)), bool(ex), smb=True)
    return LockInfo(str(owner), int(s), 0 if int(e) >= EOF_OFF else int(e) - int(s), bool(ex))


def conflict(t: Txn, ino: int, owner: str, start: int, length: int, exclusive: bool) -> LockInfo | None:
    """The first other owner's lock that conflicts with the asked range, if any (SMB locks too: they
    keep a range in the same columns, see :mod:`core.fs.smblocks`)."""
    s, e = _range(start, length)
    rows = t.all(f"SELECT {LOCK_COLS} FROM locks "
                 "WHERE ino = ? AND owner <> ? AND start_off < ? AND end_off > ?", (ino, owner, e, s))
    for row in rows:
        lid, _, p, _, _, ex = row[:6]
        if not (exclusive or ex):
            continue
        if not proc.alive(p):
            t.exec("DELETE FROM locks WHERE id = ?", (lid,))
            continue
        return info(row)
    return None


def lock(t: Txn, ino: int, owner: str, start: int, length: int, exclusive: bool) -> None:
    hit = conflict(t, ino, owner, start, length, exclusive)
    if hit is not None:
        raise LockConflict(f"range held by {hit.owner}")
    s, e = _range(start, length)
    _carve(t, ino, owner, s, e)
    t.exec("INSERT INTO locks (ino, owner, proc, start_off, end_off, exclusive) VALUES (?, ?, ?, ?, ?, ?)",
           (ino, owner, proc.current(), s, e, int(exclusive)))


def unlock(t: Txn, ino: int, owner: str, start: int, length: int) -> None:
    s, e = _range(start, length)
    _carve(t, ino, owner, s, e)


def unlock_all(t: Txn, owner: str) -> None:
    t.exec("DELETE FROM locks WHERE owner = ?", (owner,))


def _carve(t: Txn, ino: int, owner: str, s: int, e: int) -> None:
    """Remove [s, e) from the owner's locks, keeping the parts outside it."""
    rows = t.all("SELECT id, proc, start_off, end_off, exclusive FROM locks WHERE ino = ? AND owner = ? "
                 "AND start_off < ? AND end_off > ? AND smb_len IS NULL", (ino, owner, e, s))
    for lid, p, ls, le, ex in rows:
        t.exec("DELETE FROM locks WHERE id = ?", (lid,))
        for a, b in ((ls, s), (e, le)):
            if a < b:
                t.exec("INSERT INTO locks (ino, owner, proc, start_off, end_off, exclusive) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (ino, owner, p, a, b, ex))




def held(t: Txn, ino: int) -> list[LockInfo]:
    """Every lock on ``ino``, POSIX and SMB, by start (then age)."""
    return [info(r) for r in t.all(f"SELECT {LOCK_COLS} FROM locks WHERE ino = ? ORDER BY start_off, id", (ino,))]


def open_share(t: Txn, ino: int, owner: str, access: int, share: int) -> int:
    rows = t.all("SELECT id, proc, access, share FROM opens WHERE ino = ?", (ino,))
    for oid, p, a, sh in rows:
        if (access & ~sh) or (a & ~share):
            if not proc.alive(p):
                t.exec("DELETE FROM opens WHERE id = ?", (oid,))
                continue
            raise ShareViolation("the file is open with a conflicting share mode")
    rows = t.all("INSERT INTO opens (ino, owner, proc, access, share) VALUES (?, ?, ?, ?, ?) RETURNING id",
                 (ino, owner, proc.current(), access, share))
    return int(rows[0][0])


def close_share(t: Txn, open_id: int) -> None:
    t.exec("DELETE FROM opens WHERE id = ?", (open_id,))
