"""Shard-file byte format and the range math from segment offsets to cells.

Shard file format, version 1
----------------------------
A segment is k+m shard files, one per target, named ``<segment:016x>.<index>``
under the target's ``shards/`` directory.  Every shard file starts with a
4096-byte header and continues with one *record* per stripe::

    offset 0     header (HEADER_SIZE bytes, see :func:`pack_header`)
    offset 4096  record of stripe 0: cell bytes (cell_size) + trailer
    ...          record of stripe s at 4096 + s * record_size

A record is the stripe's cell for this shard followed by its trailer: one
little-endian crc32c per 64 KiB block of the cell (``cell_size // block_size``
of them).  Blocks are checksummed zero-padded to the block size, so a cell
that was only partly written (the tail stripe of a commit) verifies as the
zeros its unwritten part reads back as.  Unwritten regions are sparse holes.

Parity rotates per stripe (RAID-5 style) so reads spread over all targets:
cell ``j`` of stripe ``s`` (data cells 0..k-1, parity k..n-1) lives in shard
``(j + s) % n``.

Segment offsets
---------------
Slices point at a *segment offset*: a byte position in the segment's data
space, where stripe ``s`` holds data bytes ``[s*k*C, (s+1)*k*C)`` and data
cell ``j`` of it holds ``[s*k*C + j*C, s*k*C + (j+1)*C)``.  Worked example with
k=4, C=256 KiB (stripe data 1 MiB)::

    segment offset 2_621_440 + 10  (= 2.5 MiB + 10)
    -> stripe 2 (starts at 2 MiB), 524_298 bytes into the stripe
    -> data cell 2 (524_298 // 262_144), position 10 in the cell
    -> shard (2 + 2) % 6 = 4, file offset 4096 + 2 * record_size + 10
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

import crc32c as _crc

HEADER_SIZE = 4096
MAGIC = b"TSRSHARD"
VERSION = 1
BLOCK_SIZE = 64 * 1024
_HDR = struct.Struct("<8sHHBBBxIIQ16s")  # magic ver hdrlen k m idx pad cell block seg uuid


def crc32c(data: bytes | bytearray | memoryview) -> int:
    return int(_crc.crc32c(data))


@dataclass(frozen=True)
class Geometry:
    """k data + m parity cells of ``cell`` bytes per stripe."""

    k: int
    m: int
    cell: int
    block: int = BLOCK_SIZE

    def __post_init__(self) -> None:
        if self.k < 1 or self.m < 0 or self.k + self.m > 32:
            raise ValueError(f"unsupported geometry {self.k}+{self.m}")
        if self.cell % self.block or self.cell < self.block:
            raise ValueError(f"cell size {self.cell} must be a multiple of {self.block}")

    @property
    def n(self) -> int:
        return self.k + self.m

    @property
    def stripe_data(self) -> int:
        """Data bytes per stripe (k cells)."""
        return self.k * self.cell

    @property
    def blocks_per_cell(self) -> int:
        return self.cell // self.block

    @property
    def trailer_size(self) -> int:
        return 4 * self.blocks_per_cell

    @property
    def record_size(self) -> int:
        return self.cell + self.trailer_size

    def record_offset(self, stripe: int) -> int:
        """File offset of stripe ``stripe``'s record in any shard file."""
        return HEADER_SIZE + stripe * self.record_size

    def shard_of(self, stripe: int, cell: int) -> int:
        """Which shard (target position) holds cell ``cell`` of ``stripe``."""
        return (cell + stripe) % self.n

    def cell_of(self, stripe: int, shard: int) -> int:
        """Which cell of ``stripe`` shard ``shard`` holds (inverse of shard_of)."""
        return (shard - stripe) % self.n

    def split(self, seg_off: int, length: int) -> list[tuple[int, int, int, int, int]]:
        """Split a segment range into per-cell pieces.

        Returns ``(stripe, cell, pos, length, out_off)`` tuples: ``length``
        bytes at position ``pos`` of data cell ``cell`` of ``stripe``, which
        belong at ``out_off`` in the caller's buffer.

        >>> Geometry(2, 1, 65536).split(65536 - 10, 20)
        [(0, 0, 65526, 10, 0), (0, 1, 0, 10, 10)]
        """
        out: list[tuple[int, int, int, int, int]] = []
        done = 0
        while done < length:
            off = seg_off + done
            stripe, r = divmod(off, self.stripe_data)
            cell, pos = divmod(r, self.cell)
            n = min(self.cell - pos, length - done)
            out.append((stripe, cell, pos, n, done))
            done += n
        return out


def pack_header(geo: Geometry, segment: int, index: int, store: uuid.UUID) -> bytes:
    """The 4096-byte shard header: magic, version, geometry, ids, crc32c."""
    body = _HDR.pack(MAGIC, VERSION, HEADER_SIZE, geo.k, geo.m, index, geo.cell, geo.block,
                     segment, store.bytes)
    raw = body + struct.pack("<I", crc32c(body))
    return raw + b"\0" * (HEADER_SIZE - len(raw))


@dataclass(frozen=True)
class ShardHeader:
    geometry: Geometry
    segment: int
    index: int
    store: uuid.UUID


def unpack_header(raw: bytes) -> ShardHeader:
    """Parse and verify a shard header; ValueError if it is not one."""
    if len(raw) < _HDR.size + 4:
        raise ValueError("short shard header")
    body = raw[: _HDR.size]
    (crc,) = struct.unpack_from("<I", raw, _HDR.size)
    if crc32c(body) != crc:
        raise ValueError("shard header checksum mismatch")
    magic, ver, _hl, k, m, idx, cell, block, seg, st = _HDR.unpack(body)
    if magic != MAGIC or ver != VERSION:
        raise ValueError(f"not a version-{VERSION} shard file")
    return ShardHeader(Geometry(k, m, cell, block), seg, idx, uuid.UUID(bytes=st))


def default_geometry(targets: int) -> tuple[int, int]:
    """EC geometry for a target count: 8+3 at 11+, 4+2 at 6+, mirroring below."""
    if targets >= 11:
        return 8, 3
    if targets >= 6:
        return 4, 2
    if targets >= 3:
        return 1, 2
    if targets == 2:
        return 1, 1
    return 1, 0


def parse_ec(text: str) -> tuple[int, int]:
    """Parse ``K+M`` (e.g. ``4+2``)."""
    try:
        k_s, m_s = text.split("+")
        k, m = int(k_s), int(m_s)
    except ValueError:
        raise ValueError(f"invalid EC geometry {text!r}: expected K+M, e.g. 4+2") from None
    if k < 1 or m < 0 or k + m > 32:
        raise ValueError(f"invalid EC geometry {text!r}: need K>=1, M>=0, K+M<=32")
    return k, m
