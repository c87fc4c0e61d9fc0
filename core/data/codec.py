"""The erasure-coding seam: a tiny interface and two coders behind it.

* :class:`IsalCodec` — ISA-L's ``ec_encode_data`` through ctypes (the library
  ships inside the pyeclib wheel).  10+ GB/s per core; ctypes releases the GIL
  during the call, so several threads encode in parallel.
* :class:`NumpyCodec` — table-driven GF(2^8) in numpy.  Slow, obviously right:
  the test oracle for the fast coder.

Both use the same systematic Cauchy matrix (:mod:`core.data.gf`), so their
parity is byte-identical.  Buffers are any writable/readable buffer objects of
at least ``length`` bytes; cells are never copied by the coder.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

import numpy as np

from core.data import gf

Buffer = bytes | bytearray | memoryview


class Codec(Protocol):
    k: int
    m: int

    def encode(self, data: Sequence[Buffer], parity: Sequence[Buffer], length: int) -> None:
        """Compute the m parity cells from the k data cells (first ``length`` bytes)."""

    def reconstruct(
        self, have: Sequence[int], cells: Sequence[Buffer], want: Sequence[int],
        out: Sequence[Buffer], length: int,
    ) -> None:
        """Compute cells ``want`` into ``out`` from the k cells ``have`` (``cells``)."""


def _addr(buf: Buffer) -> int:
    return int(np.frombuffer(buf, dtype=np.uint8).ctypes.data)


class NumpyCodec:
    """Reference coder: exact GF(2^8) arithmetic with numpy lookup tables."""

    def __init__(self, k: int, m: int) -> None:
        self.k, self.m = k, m
        self._enc = gf.cauchy_matrix(k, m)

    @staticmethod
    @lru_cache(maxsize=1)
    def _mul_table() -> np.ndarray:
        t = np.zeros((256, 256), dtype=np.uint8)
        for a in range(256):
            for b in range(256):
                t[a, b] = gf.mul(a, b)
        return t

    def _apply(self, rows: gf.Matrix, src: Sequence[Buffer], out: Sequence[Buffer], n: int) -> None:
        table = self._mul_table()
        arrays = [np.frombuffer(s, dtype=np.uint8, count=n) for s in src]
        for row, dst in zip(rows, out, strict=True):
            acc = np.zeros(n, dtype=np.uint8)
            for coef, arr in zip(row, arrays, strict=True):
                if coef:
                    acc ^= table[coef][arr]
            np.frombuffer(dst, dtype=np.uint8, count=n)[:] = acc

    def encode(self, data: Sequence[Buffer], parity: Sequence[Buffer], length: int) -> None:
        self._apply(self._enc[self.k:], data, parity, length)

    def reconstruct(
        self, have: Sequence[int], cells: Sequence[Buffer], want: Sequence[int],
        out: Sequence[Buffer], length: int,
    ) -> None:
        rows = gf.decode_rows(self.k, self.m, list(have), list(want))
        self._apply(rows, cells, out, length)


def _find_isal() -> str | None:
    override = os.environ.get("TESSERA_ISAL")
    if override:
        return override
    try:
        import pyeclib
    except ImportError:
        return None
    base = os.path.dirname(os.path.dirname(pyeclib.__file__))
    hits = sorted(glob.glob(os.path.join(base, "pyeclib.libs", "libisal*.so*")))
    if hits:
        return hits[0]
    for name in ("libisal.so.2", "libisal.so"):
        try:
            ctypes.CDLL(name)
            return name
        except OSError:
            continue
    return None


_lib_lock = threading.Lock()
_lib: ctypes.CDLL | None = None


def _isal() -> ctypes.CDLL:
    global _lib
    with _lib_lock:
        if _lib is None:
            path = _find_isal()
            if path is None:
                raise RuntimeError("ISA-L not found: install pyeclib (it bundles libisal)")
            lib = ctypes.CDLL(path)
            lib.ec_init_tables.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
            lib.ec_init_tables.restype = None
            lib.ec_encode_data.argtypes = [
                ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                ctypes.c_void_p, ctypes.c_void_p,
            ]
            lib.ec_encode_data.restype = None
            _lib = lib
        return _lib


class IsalCodec:
    """ISA-L Reed–Solomon over the shared Cauchy matrix."""

    def __init__(self, k: int, m: int) -> None:
        self.k, self.m = k, m
        self._lib = _isal()
        self._enc_tables = self._tables(gf.cauchy_matrix(k, m)[k:]) if m else None
        self._dec_cache: dict[tuple[tuple[int, ...], tuple[int, ...]], ctypes.Array[ctypes.c_ubyte]] = {}
        self._lock = threading.Lock()

    def _tables(self, rows: gf.Matrix) -> ctypes.Array[ctypes.c_ubyte]:
        flat = bytes(v for row in rows for v in row)
        coef = (ctypes.c_ubyte * len(flat)).from_buffer_copy(flat)
        tables = (ctypes.c_ubyte * (32 * self.k * len(rows)))()
        self._lib.ec_init_tables(self.k, len(rows), coef, tables)
        return tables

    def _run(self, tables: ctypes.Array[ctypes.c_ubyte], src: Sequence[Buffer],
             dst: Sequence[Buffer], length: int) -> None:
        if length <= 0 or not dst:
            return
        for b in (*src, *dst):
            if len(b) < length:
                raise ValueError("buffer shorter than the coded length")
        srcp = (ctypes.c_void_p * len(src))(*[_addr(b) for b in src])
        dstp = (ctypes.c_void_p * len(dst))(*[_addr(b) for b in dst])
        self._lib.ec_encode_data(length, self.k, len(dst), tables, srcp, dstp)

    def encode(self, data: Sequence[Buffer], parity: Sequence[Buffer], length: int) -> None:
        if self._enc_tables is None:
            return
        self._run(self._enc_tables, data, parity, length)

    def reconstruct(
        self, have: Sequence[int], cells: Sequence[Buffer], want: Sequence[int],
        out: Sequence[Buffer], length: int,
    ) -> None:
        key = (tuple(have), tuple(want))
        with self._lock:
            tables = self._dec_cache.get(key)
            if tables is None:
                tables = self._tables(gf.decode_rows(self.k, self.m, list(have), list(want)))
                if len(self._dec_cache) > 256:
                    self._dec_cache.clear()
                self._dec_cache[key] = tables
        self._run(tables, cells, out, length)


def make_codec(k: int, m: int, *, kind: str = "isal") -> Codec:
    """The coder for a geometry: ISA-L by default, numpy when asked (tests)."""
    if kind == "numpy":
        return NumpyCodec(k, m)
    return IsalCodec(k, m)
