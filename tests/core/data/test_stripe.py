"""Stripe I/O against in-memory shards: verified reads, degraded decode, never wrong bytes."""

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.data import stripe as sio
from core.data.codec import make_codec
from core.data.layout import Geometry
from core.data.target import MemTarget, ShardFile
from core.errors import DataUnavailable

GEO = Geometry(4, 2, 65536)


def _setup(data: bytes, geo: Geometry = GEO) -> tuple[MemTarget, list[ShardFile]]:
    t = MemTarget(0)
    files = [t.open_shard(1, i, create=True) for i in range(geo.n)]
    codec = make_codec(geo.k, geo.m)
    sd = geo.stripe_data
    for s in range(-(-len(data) // sd)):
        chunk = memoryview(data)[s * sd:(s + 1) * sd]
        assert sio.write_stripe(geo, codec, s, chunk, lambda i: files[i]) == []
    return t, files


def _read(data_len: int, files: list[ShardFile | None], off: int, n: int, geo: Geometry = GEO) -> bytes:
    out = bytearray(n)
    codec = make_codec(geo.k, geo.m)
    for stripe, cell, pos, ln, oo in geo.split(off, n):
        sr = sio.StripeRead(stripe, [(cell, pos, ln, oo)])
        sio.read_pieces(geo, codec, sr, memoryview(out), lambda i: files[i])
    return bytes(out)


def test_roundtrip_partial_stripes() -> None:
    data = os.urandom(3 * GEO.stripe_data + 12345)
    _, files = _setup(data)
    assert _read(len(data), list(files), 0, len(data)) == data
    assert _read(len(data), list(files), 70_000, 200_000) == data[70_000:270_000]


def test_block_crcs_zero_padding() -> None:
    a = sio.block_crcs(b"abc", GEO)
    b = sio.block_crcs(b"abc" + bytes(100), GEO)
    assert a == b and len(a) == GEO.trailer_size


@pytest.mark.parametrize("lost", [(0,), (3,), (0, 1), (2, 5), (4, 5)])
def test_degraded_reads_with_up_to_m_missing(lost: tuple[int, ...]) -> None:
    data = os.urandom(2 * GEO.stripe_data + 5000)
    _, files = _setup(data)
    view: list[ShardFile | None] = [None if i in lost else f for i, f in enumerate(files)]
    assert _read(len(data), view, 0, len(data)) == data
    assert _read(len(data), view, 65530, 70000) == data[65530:135530]


def test_more_than_m_missing_is_an_error() -> None:
    data = os.urandom(GEO.stripe_data)
    _, files = _setup(data)
    view: list[ShardFile | None] = [None, None, None, *files[3:]]
    with pytest.raises(DataUnavailable):
        _read(len(data), view, 0, len(data))


def test_corrupt_cell_is_detected_and_decoded_around() -> None:
    data = os.urandom(GEO.stripe_data)
    t, files = _setup(data)
    shard = t.shards[(1, GEO.shard_of(0, 1))]
    shard.data[4096 + 10] ^= 0xFF  # flip a byte of data cell 1
    out = bytearray(len(data))
    sr = sio.StripeRead(0, [(c, 0, GEO.cell, c * GEO.cell) for c in range(4)])
    bad = sio.read_pieces(GEO, make_codec(4, 2), sr, memoryview(out), lambda i: files[i])
    assert bytes(out) == data
    assert bad == [GEO.shard_of(0, 1)]


def test_reconstruct_cells_rebuilds_parity_too() -> None:
    data = os.urandom(GEO.stripe_data)
    t, files = _setup(data)
    lost = [GEO.shard_of(0, 0), GEO.shard_of(0, 5)]
    orig = {i: bytes(t.shards[(1, i)].data[4096:4096 + GEO.cell]) for i in lost}
    got = sio.reconstruct_cells(GEO, make_codec(4, 2), 0, lost,
                                lambda i: None if i in lost else files[i])
    assert got == orig


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 4))
def test_random_corruption_never_returns_wrong_bytes(seed: int, ncorrupt: int) -> None:
    rnd = random.Random(seed)
    data = rnd.randbytes(GEO.stripe_data * 2)
    t, files = _setup(data)
    hit = rnd.sample(range(GEO.n), ncorrupt)
    for i in hit:  # corrupt a random byte range in stripe 1 of these shards
        sh = t.shards[(1, i)].data
        off = GEO.record_offset(1) + rnd.randrange(GEO.record_size)
        sh[off] ^= rnd.randrange(1, 256)
    try:
        got = _read(len(data), list(files), 0, len(data))
    except DataUnavailable:
        assert ncorrupt > GEO.m  # only allowed when more than m cells are bad
        return
    assert got == data
