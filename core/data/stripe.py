"""Stripe I/O: encode and write one stripe, read cells verified, decode when degraded.

These functions take the shard files already opened (or the OSError that
opening raised) so they stay independent of segment bookkeeping.  A cell is
*bad* when its target is missing, the read fails, or any block's crc32c does
not match the trailer; bad cells are recovered from any k good ones.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.data.codec import Codec
from core.data.layout import Geometry, crc32c
from core.data.target import ShardFile
from core.errors import DataUnavailable

ShardGetter = Callable[[int], ShardFile]  # shard index -> open shard (raises OSError)

_ZEROS = bytes(1 << 20)


def block_crcs(cell: bytes | bytearray | memoryview, geo: Geometry) -> bytes:
    """The trailer for a cell: crc32c of every block, zero-padded to the block size."""
    out = []
    n = len(cell)
    zero_crc = crc32c(_ZEROS[: geo.block])
    for b in range(geo.blocks_per_cell):
        lo = b * geo.block
        if lo >= n:
            out.append(zero_crc)
            continue
        part = cell[lo: min(lo + geo.block, n)]
        c = crc32c(part)
        if len(part) < geo.block:
            c = _crc_extend(c, geo.block - len(part))
        out.append(c)
    return struct.pack(f"<{len(out)}I", *out)


def _crc_extend(crc: int, nzeros: int) -> int:
    import crc32c as _c
    return int(_c.crc32c(_ZEROS[:nzeros], crc))


def write_stripe(geo: Geometry, codec: Codec, stripe: int, data: memoryview,
                 shard: ShardGetter) -> list[int]:
    """Encode and write stripe ``stripe`` holding ``data`` (at most k cells).

    Unwritten tails stay sparse holes.  Returns the shard indexes whose write
    failed (the caller decides whether that many losses are acceptable).
    """
    k, m, c = geo.k, geo.m, geo.cell
    n = len(data)
    row = min(c, -(-n // geo.block) * geo.block)  # bytes of each cell that can be non-zero
    cells: list[memoryview] = [data[j * c: min((j + 1) * c, n)] for j in range(k)]
    if m:
        padded: list[bytes | bytearray | memoryview] = []
        for cell in cells:
            if len(cell) == row:
                padded.append(cell)
            else:
                buf = bytearray(row)
                buf[: len(cell)] = cell
                padded.append(buf)
        parity = [bytearray(row) for _ in range(m)]
        codec.encode(padded, parity, row)
        cells.extend(memoryview(p) for p in parity)
    failed: list[int] = []
    base = geo.record_offset(stripe)
    for j, cell in enumerate(cells):
        idx = geo.shard_of(stripe, j)
        trailer = block_crcs(cell, geo)
        try:
            f = shard(idx)
            if len(cell) == c:
                f.pwritev([cell, trailer], base)
            else:
                if len(cell):
                    f.pwritev([cell], base)
                f.pwritev([trailer], base + c)
        except OSError:
            failed.append(idx)
    return failed


def read_cell(geo: Geometry, f: ShardFile, stripe: int, lo_block: int, hi_block: int,
              into: memoryview | None = None) -> memoryview | None:
    """Read blocks [lo_block, hi_block) of a cell and verify them.

    Returns the bytes (``into`` if given, else a new buffer) or None if any
    block fails its checksum or the read fails.  Short reads are zeros.
    """
    span = (hi_block - lo_block) * geo.block
    buf = into if into is not None else memoryview(bytearray(span))
    nblk = hi_block - lo_block
    base = geo.record_offset(stripe)
    try:
        if hi_block == geo.blocks_per_cell:  # the cell's end: read data and whole trailer at once
            trailer = bytearray(geo.trailer_size)
            got = f.preadv([buf, trailer], base + lo_block * geo.block)
            if got < span + len(trailer):
                _zero_tail(buf, trailer, got)
            trailer = trailer[4 * lo_block:]
        else:
            trailer = bytearray(4 * nblk)
            got = f.preadv([buf], base + lo_block * geo.block)
            if got < span:
                buf[got:] = bytes(span - got)
            tg = f.preadv([trailer], base + geo.cell + 4 * lo_block)
            if tg < len(trailer):
                trailer[tg:] = bytes(len(trailer) - tg)
    except OSError:
        return None
    want = struct.unpack(f"<{nblk}I", trailer)
    for i in range(nblk):
        if crc32c(buf[i * geo.block: (i + 1) * geo.block]) != want[i]:
            return None
    return buf


def _zero_tail(buf: memoryview, trailer: bytearray, got: int) -> None:
    if got < len(buf):
        buf[got:] = bytes(len(buf) - got)
        trailer[:] = bytes(len(trailer))
    else:
        t = got - len(buf)
        trailer[t:] = bytes(len(trailer) - t)


@dataclass
class StripeRead:
    """Pieces of one stripe to read: (cell, pos, length, out_off)."""

    stripe: int
    pieces: list[tuple[int, int, int, int]] = field(default_factory=list)


def read_pieces(geo: Geometry, codec: Codec, sr: StripeRead, out: memoryview,
                shard: Callable[[int], ShardFile | None]) -> list[int]:
    """Fill ``out`` with the pieces of one stripe; decode around bad cells.

    Returns the shard indexes found bad (for the repair queue).  Raises
    DataUnavailable if fewer than k good cells remain for a needed range.
    """
    bad: list[tuple[int, int, int, int]] = []
    bad_shards: list[int] = []
    for cell, pos, length, oo in sr.pieces:
        lo, hi = pos // geo.block, -(-(pos + length) // geo.block)
        idx = geo.shard_of(sr.stripe, cell)
        f = shard(idx)
        aligned = pos == lo * geo.block and length == (hi - lo) * geo.block
        dest = out[oo: oo + length] if aligned else None
        got = read_cell(geo, f, sr.stripe, lo, hi, dest) if f is not None else None
        if got is None:
            bad.append((cell, pos, length, oo))
            bad_shards.append(idx)
        elif not aligned:
            off = pos - lo * geo.block
            out[oo: oo + length] = got[off: off + length]
    if bad:
        bad_shards += _decode(geo, codec, sr.stripe, bad, out, shard, set(bad_shards))
    return sorted(set(bad_shards))


def _decode(geo: Geometry, codec: Codec, stripe: int, bad: list[tuple[int, int, int, int]],
            out: memoryview, shard: Callable[[int], ShardFile | None], known_bad: set[int]) -> list[int]:
    lo = min(p // geo.block for _, p, _, _ in bad)
    hi = max(-(-(p + n) // geo.block) for _, p, n, _ in bad)
    have, cells, newly_bad = _gather(geo, stripe, lo, hi, shard, known_bad)
    want = sorted({c for c, _, _, _ in bad})
    bufs = [bytearray((hi - lo) * geo.block) for _ in want]
    codec.reconstruct(have, cells, want, bufs, (hi - lo) * geo.block)
    for cell, pos, length, oo in bad:
        src = bufs[want.index(cell)]
        off = pos - lo * geo.block
        out[oo: oo + length] = src[off: off + length]
    return newly_bad


def _gather(geo: Geometry, stripe: int, lo: int, hi: int, shard: Callable[[int], ShardFile | None],
            known_bad: set[int]) -> tuple[list[int], list[memoryview], list[int]]:
    """Read blocks [lo, hi) of k good cells of ``stripe`` (data cells first)."""
    have: list[int] = []
    cells: list[memoryview] = []
    newly_bad: list[int] = []
    for cell in range(geo.n):
        if len(have) == geo.k:
            break
        idx = geo.shard_of(stripe, cell)
        if idx in known_bad:
            continue
        f = shard(idx)
        got = read_cell(geo, f, stripe, lo, hi) if f is not None else None
        if got is None:
            newly_bad.append(idx)
            continue
        have.append(cell)
        cells.append(got)
    if len(have) < geo.k:
        raise DataUnavailable(
            f"stripe {stripe}: only {len(have)} of {geo.n} cells readable, {geo.k} needed")
    return have, cells, newly_bad


def reconstruct_cells(geo: Geometry, codec: Codec, stripe: int, want_shards: Sequence[int],
                      shard: Callable[[int], ShardFile | None]) -> dict[int, bytes]:
    """Rebuild whole cells (shard index -> cell bytes) of a stripe from k good ones."""
    known_bad = set(want_shards)
    have, cells, _ = _gather(geo, stripe, 0, geo.blocks_per_cell, shard, known_bad)
    want_cells = [geo.cell_of(stripe, s) for s in want_shards]
    bufs = [bytearray(geo.cell) for _ in want_cells]
    codec.reconstruct(have, cells, want_cells, bufs, geo.cell)
    return {s: bytes(b) for s, b in zip(want_shards, bufs, strict=True)}


def write_cell(geo: Geometry, f: ShardFile, stripe: int, cell: bytes) -> None:
    """Write a whole cell and its trailer (repair and rebuild)."""
    f.pwritev([cell, block_crcs(cell, geo)], geo.record_offset(stripe))
