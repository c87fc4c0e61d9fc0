import uuid

import pytest

from core.data.layout import (
    HEADER_SIZE,
    Geometry,
    default_geometry,
    pack_header,
    parse_ec,
    unpack_header,
)


def test_split_covers_range_exactly() -> None:
    geo = Geometry(4, 2, 65536)
    pieces = geo.split(100_000, 1_000_000)
    assert sum(p[3] for p in pieces) == 1_000_000
    pos = 100_000
    for stripe, cell, cpos, n, out_off in pieces:
        assert stripe * geo.stripe_data + cell * geo.cell + cpos == pos
        assert out_off == pos - 100_000
        assert 0 <= cell < geo.k and cpos + n <= geo.cell
        pos += n


def test_parity_rotation_is_a_permutation() -> None:
    geo = Geometry(4, 2, 65536)
    for stripe in range(12):
        shards = [geo.shard_of(stripe, c) for c in range(geo.n)]
        assert sorted(shards) == list(range(geo.n))
        assert all(geo.cell_of(stripe, geo.shard_of(stripe, c)) == c for c in range(geo.n))
    # every shard holds parity for some stripe
    assert {geo.shard_of(s, 4) for s in range(6)} == set(range(6))


def test_record_offsets() -> None:
    geo = Geometry(2, 1, 131072)
    assert geo.trailer_size == 8
    assert geo.record_offset(0) == HEADER_SIZE
    assert geo.record_offset(3) == HEADER_SIZE + 3 * (131072 + 8)


def test_header_roundtrip_and_corruption() -> None:
    sid = uuid.uuid4()
    raw = pack_header(Geometry(4, 2, 262144), 77, 3, sid)
    assert len(raw) == HEADER_SIZE
    h = unpack_header(raw)
    assert (h.segment, h.index, h.store, h.geometry.k, h.geometry.m) == (77, 3, sid, 4, 2)
    bad = bytearray(raw)
    bad[20] ^= 1
    with pytest.raises(ValueError):
        unpack_header(bytes(bad))


@pytest.mark.parametrize(("n", "geo"), [(1, (1, 0)), (2, (1, 1)), (3, (1, 2)), (5, (1, 2)), (6, (4, 2)),
                                        (10, (4, 2)), (11, (8, 3)), (20, (8, 3))])
def test_default_geometry(n: int, geo: tuple[int, int]) -> None:
    assert default_geometry(n) == geo


def test_parse_ec() -> None:
    assert parse_ec("8+3") == (8, 3)
    for bad in ("4", "a+b", "0+2", "4+-1", "30+5"):
        with pytest.raises(ValueError):
            parse_ec(bad)


def test_geometry_rejects_bad_cells() -> None:
    with pytest.raises(ValueError):
        Geometry(4, 2, 1000)
