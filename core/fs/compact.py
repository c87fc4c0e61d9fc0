"""Compaction: rewrite chunks whose slices are fragmented or sit in mostly-dead segments.

A chunk is rewritten by reading its visible bytes (newest-wins resolved),
writing them to fresh stripes, and replacing the chunk's slice list in one
transaction — only if the list is still the one that was read (otherwise a
writer got there first and the chunk is left for the next pass).  Holes stay
holes.  Afterwards the old segments' space is unreferenced and GC deletes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.data.store import Extent
from core.errors import CoreError
from core.fs.extents import Piece, resolve, to_slices
from core.fs.fs import FileSystem
from core.meta.txn import Txn


@dataclass
class CompactReport:
    chunks: int = 0
    bytes_rewritten: int = 0
    skipped: int = 0  # changed under us; next pass


def compact_chunk(fs: FileSystem, ino: int, chunk: int) -> int:
    """Rewrite one chunk; returns bytes rewritten (0 if skipped)."""
    with fs._meta.read() as t:
        node = t.inode(ino)
        if node is None or node.inline_data is not None:
            return 0
        slices = t.slices(ino, chunk, chunk)
    start = chunk * fs.chunk
    end = min(start + fs.chunk, node.size)
    if not slices or end <= start:
        return 0
    ids = sorted(s.id for s in slices)
    rows: list[tuple[int, int, int, int, int]] = []
    exts: list[Extent] = []
    written = 0
    runs: list[list[Piece]] = []  # adjacent data pieces, written as one
    for p in resolve(slices, start, end, fs.chunk):
        if p.segment == 0:
            continue
        if runs and runs[-1][-1].off + runs[-1][-1].len == p.off:
            runs[-1].append(p)
        else:
            runs.append([p])
    for run in runs:
        base = run[0].off
        buf = bytearray(run[-1].off + run[-1].len - base)
        view = memoryview(buf)
        for p in run:
            fs._data.read_into(p.segment, p.seg_off, view[p.off - base: p.off - base + p.len])
        pos = base
        for e in fs._data.write(buf):
            rows += to_slices(pos, e.length, e.segment, e.seg_off, fs.chunk)
            exts.append(e)
            pos += e.length
        view.release()
        written += len(buf)
    fs._data.sync({e.segment for e in exts})
    marks = fs._data.stripe_marks(exts, fs._data.geo.stripe_data)

    def swap(t: Txn) -> bool:
        now = sorted(s.id for s in t.slices(ino, chunk, chunk))
        if now != ids:
            return False
        for sid in ids:
            t.delete_slice(sid)
        t.add_slices(ino, rows)
        for seg, hi in marks.items():
            t.bump_stripes(seg, hi)
        return True
    return written if fs._meta.write(swap) else 0


def compact(fs: FileSystem, *, min_slices: int = 16, relocate_below: float = 0.5) -> CompactReport:
    """Rewrite fragmented chunks and chunks pinning mostly-dead sealed segments."""
    rep = CompactReport()
    with fs._meta.read() as t:
        todo = {(ino, c) for ino, c, _ in t.chunk_stats(min_slices)}
        live = t.segment_live_bytes()
        sealed = t.segments("state = 'sealed'")
        sd = fs._data.geo.stripe_data
        sparse = [s.id for s in sealed
                  if s.nstripes and live.get(s.id, 0) < relocate_below * s.nstripes * sd and s.id in live]
        for sid in sparse:
            for ino, c in t.all("SELECT DISTINCT ino, chunk FROM slices WHERE segment = ?", (sid,)):
                todo.add((int(ino), int(c)))
    for ino, c in sorted(todo):
        try:
            n = compact_chunk(fs, ino, c)
        except CoreError:
            rep.skipped += 1
            continue
        if n:
            rep.chunks += 1
            rep.bytes_rewritten += n
        else:
            rep.skipped += 1
    return rep
