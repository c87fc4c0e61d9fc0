import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.data import gf
from core.data.codec import IsalCodec, NumpyCodec, make_codec

GEOMETRIES = [(1, 0), (1, 1), (1, 2), (2, 1), (4, 2), (8, 3)]


def test_gf_inverse_roundtrip() -> None:
    for a in range(1, 256):
        assert gf.mul(a, gf.inv(a)) == 1


def test_invert_identity() -> None:
    m = gf.cauchy_matrix(4, 2)
    sub = [m[i] for i in (1, 3, 4, 5)]
    prod = gf.matmul(sub, gf.invert(sub))
    assert prod == [[1 if i == j else 0 for j in range(4)] for i in range(4)]


def test_singular_matrix_rejected() -> None:
    with pytest.raises(ValueError):
        gf.invert([[1, 2], [1, 2]])


@pytest.mark.parametrize(("k", "m"), GEOMETRIES)
def test_isal_matches_numpy_oracle(k: int, m: int) -> None:
    length = 65536 + 4096
    data = [bytearray(os.urandom(length)) for _ in range(k)]
    p_fast = [bytearray(length) for _ in range(m)]
    p_ref = [bytearray(length) for _ in range(m)]
    IsalCodec(k, m).encode(data, p_fast, length)
    NumpyCodec(k, m).encode(data, p_ref, length)
    assert p_fast == p_ref
    if k == 1:
        assert all(p == data[0] for p in p_fast)  # mirroring is a plain copy


@pytest.mark.parametrize(("k", "m"), [(2, 1), (4, 2), (8, 3)])
def test_any_k_cells_recover_all(k: int, m: int) -> None:
    length = 4096
    codec = make_codec(k, m)
    cells = [bytearray(os.urandom(length)) for _ in range(k)] + [bytearray(length) for _ in range(m)]
    codec.encode(cells[:k], cells[k:], length)
    n = k + m
    for lost in itertools.combinations(range(n), m):
        have = [i for i in range(n) if i not in lost]
        out = [bytearray(length) for _ in lost]
        codec.reconstruct(have, [cells[i] for i in have], list(lost), out, length)
        assert out == [cells[i] for i in lost]


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(0, 3), st.binary(min_size=1, max_size=3000), st.data())
def test_reconstruct_property(k: int, m: int, seed: bytes, data: st.DataObject) -> None:
    length = len(seed)
    cells = [bytearray(bytes((b + i) % 256 for b in seed)) for i in range(k)]
    cells += [bytearray(length) for _ in range(m)]
    fast, ref = IsalCodec(k, m), NumpyCodec(k, m)
    fast.encode(cells[:k], cells[k:], length)
    have = sorted(data.draw(st.permutations(range(k + m)))[:k])
    want = [i for i in range(k + m) if i not in have]
    out_f = [bytearray(length) for _ in want]
    out_r = [bytearray(length) for _ in want]
    fast.reconstruct(have, [cells[i] for i in have], want, out_f, length)
    ref.reconstruct(have, [cells[i] for i in have], want, out_r, length)
    assert out_f == out_r == [cells[i] for i in want]
