"""GF(2^8) arithmetic and Reed–Solomon matrices (pure Python, small and exact).

The field uses the polynomial x^8+x^4+x^3+x^2+1 (0x11D), the same as ISA-L, so
the matrices built here drive both the numpy reference coder and ISA-L.

The encoding matrix is systematic: rows 0..k-1 are the identity (data cells are
stored as they are) and rows k..n-1 are a Cauchy matrix, ``1 / (i ^ j)`` for
parity row ``i`` and data column ``j`` — any k rows of it are invertible, so any
k surviving cells of a stripe recover the rest.
"""

from __future__ import annotations

POLY = 0x11D

EXP: list[int] = [0] * 512
LOG: list[int] = [0] * 256


def _init() -> None:
    x = 1
    for i in range(255):
        EXP[i] = x
        LOG[x] = i
        x <<= 1
        if x & 0x100:
            x ^= POLY
    for i in range(255, 512):
        EXP[i] = EXP[i - 255]


_init()


def mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def inv(a: int) -> int:
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(2^8)")
    return EXP[255 - LOG[a]]


Matrix = list[list[int]]


def cauchy_matrix(k: int, m: int) -> Matrix:
    """The (k+m) x k systematic encoding matrix (identity over Cauchy)."""
    if k < 1 or m < 0 or k + m > 255:
        raise ValueError(f"unsupported geometry {k}+{m}")
    rows: Matrix = [[1 if i == j else 0 for j in range(k)] for i in range(k)]
    if k == 1:  # mirroring: every parity cell is a plain copy of the data cell
        return rows + [[1] for _ in range(m)]
    for i in range(k, k + m):
        rows.append([inv(i ^ j) for j in range(k)])
    return rows


def invert(matrix: Matrix) -> Matrix:
    """Gauss–Jordan inversion of a square matrix over GF(2^8)."""
    n = len(matrix)
    a = [list(row) + [1 if i == j else 0 for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if a[r][col]), None)
        if pivot is None:
            raise ValueError("matrix is singular")
        a[col], a[pivot] = a[pivot], a[col]
        f = inv(a[col][col])
        a[col] = [mul(f, v) for v in a[col]]
        for r in range(n):
            if r != col and a[r][col]:
                g = a[r][col]
                a[r] = [v ^ mul(g, p) for v, p in zip(a[r], a[col], strict=True)]
    return [row[n:] for row in a]


def matmul(a: Matrix, b: Matrix) -> Matrix:
    out: Matrix = []
    for row in a:
        res = [0] * len(b[0])
        for j, coef in enumerate(row):
            if coef:
                for c, v in enumerate(b[j]):
                    res[c] ^= mul(coef, v)
        out.append(res)
    return out


def decode_rows(k: int, m: int, have: list[int], want: list[int]) -> Matrix:
    """Rows that compute cells ``want`` from the k cells ``have``.

    ``have`` must name exactly k distinct cell indices (0..k+m-1).  The result
    has one row of k coefficients per wanted cell, applied to ``have`` in order.
    """
    if len(have) != k:
        raise ValueError(f"need exactly {k} cells to decode, got {len(have)}")
    enc = cauchy_matrix(k, m)
    sub_inv = invert([enc[i] for i in have])
    return matmul([enc[w] for w in want], sub_inv)
