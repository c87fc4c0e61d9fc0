"""Range math between file offsets, chunks and slices.

A file is split into chunks of CHUNK bytes; each chunk holds a list of slices
``(off, len, segment, seg_off)`` where a later slice (higher id) wins where
they overlap.  :func:`resolve` paints them newest-first into the visible
pieces of a range; :func:`to_slices` cuts a written file range at chunk
boundaries.  Worked example (CHUNK = 100 for readability)::

    slices of chunk 0, oldest first:  A = [0, 60) from seg 1 @ 0
                                      B = [40, 100) from seg 2 @ 500
    resolve(0..100) -> [0, 40) seg 1 @ 0, [40, 100) seg 2 @ 500
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.meta.types import Slice

CHUNK = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Piece:
    """File bytes [off, off+len): from a segment, or a hole (segment 0)."""

    off: int
    len: int
    segment: int
    seg_off: int


def resolve(slices: Iterable[Slice], start: int, end: int, chunk: int = CHUNK) -> list[Piece]:
    """Visible pieces of file range [start, end), holes included, in order.

    >>> s = [Slice(1, 0, 0, 60, 1, 0), Slice(2, 0, 40, 60, 2, 500)]
    >>> [(p.off, p.len, p.segment, p.seg_off) for p in resolve(s, 0, 100, chunk=100)]
    [(0, 40, 1, 0), (40, 60, 2, 500)]
    >>> [(p.off, p.len, p.segment) for p in resolve(s[:1], 50, 80, chunk=100)]
    [(50, 10, 1), (60, 20, 0)]
    """
    uncovered: list[tuple[int, int]] = [(start, end)]
    found: list[Piece] = []
    for s in sorted(slices, key=lambda s: s.id, reverse=True):
        lo = s.chunk * chunk + s.off
        hi = lo + s.len
        nxt: list[tuple[int, int]] = []
        for a, b in uncovered:
            if hi <= a or lo >= b:
                nxt.append((a, b))
                continue
            x, y = max(a, lo), min(b, hi)
            found.append(Piece(x, y - x, s.segment, s.seg_off + (x - lo)))
            if a < x:
                nxt.append((a, x))
            if y < b:
                nxt.append((y, b))
        uncovered = nxt
        if not uncovered:
            break
    found.extend(Piece(a, b - a, 0, 0) for a, b in uncovered)
    return sorted(found, key=lambda p: p.off)


def to_slices(file_off: int, length: int, segment: int, seg_off: int,
              chunk: int = CHUNK) -> list[tuple[int, int, int, int, int]]:
    """(chunk, off, len, segment, seg_off) rows for a written range.

    >>> to_slices(90, 30, 7, 1000, chunk=100)
    [(0, 90, 10, 7, 1000), (1, 0, 20, 7, 1010)]
    """
    out = []
    done = 0
    while done < length:
        pos = file_off + done
        c, off = divmod(pos, chunk)
        n = min(chunk - off, length - done)
        out.append((c, off, n, segment, seg_off + done))
        done += n
    return out


def chunks_of(start: int, end: int, chunk: int = CHUNK) -> tuple[int, int]:
    """First and last chunk index touching [start, end) (end > start)."""
    return start // chunk, (end - 1) // chunk
