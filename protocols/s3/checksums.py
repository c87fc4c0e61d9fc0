"""S3 additional checksums: CRC32, CRC32C, CRC64NVME, SHA1, SHA256 (and MD5 for ETags).

CRCs come from awscrt (C speed, the same code the AWS SDKs use).  Values are
base64 of the big-endian digest, as S3 sends them.  A multipart object gets one
of two checksum types, chosen when the upload is created:

- ``COMPOSITE`` (CRC32, CRC32C, SHA1, SHA256): the checksum of the concatenated
  part digests, then ``-N`` for N parts;
- ``FULL_OBJECT`` (CRC32, CRC32C, CRC64NVME): the CRC of the whole object, which
  is combined from the part CRCs and sizes without reading the data again.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

from awscrt import checksums as _crt

from protocols.s3.errors import S3Error

ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
COMPOSITE, FULL_OBJECT = "COMPOSITE", "FULL_OBJECT"
TYPES = {COMPOSITE: ("CRC32", "CRC32C", "SHA1", "SHA256"), FULL_OBJECT: ("CRC32", "CRC32C", "CRC64NVME")}
# reflected polynomial and width of each CRC (all three start from and finish with all ones)
_POLY = {"CRC32": (0xEDB88320, 32), "CRC32C": (0x82F63B78, 32), "CRC64NVME": (0x9A6C9329AC4BC9B5, 64)}
_CRT_COMBINE = {"CRC32": "combine_crc32", "CRC32C": "combine_crc32c", "CRC64NVME": "combine_crc64nvme"}


class _Crc:
    def __init__(self, fn: Callable[..., int], width: int) -> None:
        self.fn, self.width, self.value = fn, width, 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self.value = self.fn(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(self.width, "big")


class Hasher:
    def __init__(self, algo: str) -> None:
        self.algo = algo
        if algo == "CRC32":
            self._h: _Crc | hashlib._Hash = _Crc(_crt.crc32, 4)
        elif algo == "CRC32C":
            self._h = _Crc(_crt.crc32c, 4)
        elif algo == "CRC64NVME":
            self._h = _Crc(_crt.crc64nvme, 8)
        elif algo == "SHA1":
            self._h = hashlib.sha1()
        elif algo == "SHA256":
            self._h = hashlib.sha256()
        else:
            raise S3Error("InvalidRequest", f"Unsupported checksum algorithm {algo!r}", 400)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)

    def digest(self) -> bytes:
        return self._h.digest()

    def b64(self) -> str:
        return base64.b64encode(self.digest()).decode()


def header_name(algo: str) -> str:
    return f"x-amz-checksum-{algo.lower()}"


def composite(algo: str, part_b64: list[str]) -> str:
    """The multipart checksum: the algorithm over the parts' raw digests, then ``-N``."""
    h = Hasher(algo)
    for v in part_b64:
        h.update(base64.b64decode(v))
    return f"{h.b64()}-{len(part_b64)}"


def invalid(message: str) -> S3Error:
    return S3Error("InvalidRequest", message, 400)


def upload_type(algo: str | None, requested: str | None) -> str:
    """The checksum type of a new multipart upload ('' when it has no checksum algorithm).

    >>> upload_type("SHA256", None), upload_type("CRC64NVME", None), upload_type("CRC32", "full_object")
    ('COMPOSITE', 'FULL_OBJECT', 'FULL_OBJECT')
    >>> upload_type(None, None)
    ''
    """
    if not requested:
        return "" if not algo else FULL_OBJECT if algo not in TYPES[COMPOSITE] else COMPOSITE
    kind = requested.strip().upper()
    if kind not in TYPES:
        raise invalid("Value for x-amz-checksum-type header is invalid.")
    if not algo:
        raise invalid("The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.")
    if algo not in TYPES[kind]:
        raise invalid(f"The {kind} checksum type cannot be used with the {algo.lower()} checksum algorithm.")
    return kind


def _crt_combine(algo: str) -> Callable[[int, int, int], int] | None:
    fn: Callable[[int, int, int], int] | None = getattr(_crt, _CRT_COMBINE[algo], None)
    return fn


def _mulmod(a: int, b: int, poly: int, top: int) -> int:
    """a * b modulo the (reflected) CRC polynomial; ``top`` is the bit that stands for x^0."""
    p = 0
    m = top
    while m:
        if a & m:
            p ^= b
        b = (b >> 1) ^ poly if b & 1 else b >> 1
        m >>= 1
    return p


def crc_combine_py(algo: str, crc1: int, crc2: int, len2: int) -> int:
    """The CRC of A+B from CRC(A), CRC(B) and len(B) (zlib's method): pure Python, for awscrt without it.

    >>> from awscrt.checksums import crc32c
    >>> crc_combine_py("CRC32C", crc32c(b"hello "), crc32c(b"world"), 5) == crc32c(b"hello world")
    True
    """
    poly, width = _POLY[algo]
    top = 1 << (width - 1)
    x = top >> 1  # the polynomial x
    shift = top  # x^0; becomes x^(8 * len2)
    n = len2 * 8
    while n:
        if n & 1:
            shift = _mulmod(x, shift, poly, top)
        x = _mulmod(x, x, poly, top)
        n >>= 1
    return _mulmod(shift, crc1, poly, top) ^ crc2


def full_object(algo: str, parts: list[tuple[str, int]]) -> str:
    """The whole object's CRC (base64) from its parts' (base64 CRC, size), in order."""
    if algo not in _POLY:
        raise invalid(f"The FULL_OBJECT checksum type cannot be used with the {algo.lower()} checksum algorithm.")
    width = _POLY[algo][1] // 8
    fn = _crt_combine(algo)
    acc = 0
    for value, size in parts:
        crc = int.from_bytes(base64.b64decode(value), "big")
        acc = fn(acc, crc, size) if fn is not None else crc_combine_py(algo, acc, crc, size)
    return base64.b64encode(acc.to_bytes(width, "big")).decode()


def matches(kind: str, computed: str, given: str) -> bool:
    """Whether a client's whole-upload checksum names the computed one.

    A composite value may come with or without its ``-N`` suffix; a given suffix must be right.

    >>> [matches("COMPOSITE", "abc=-3", given) for given in ("abc=-3", "abc=", "abc=-2")]
    [True, True, False]
    >>> matches("FULL_OBJECT", "abc=", "abc="), matches("FULL_OBJECT", "abc=", "abc=-1")
    (True, False)
    """
    given = given.strip()
    if kind != COMPOSITE:
        return given == computed
    return given == computed or given == computed.rsplit("-", 1)[0]


def mismatch(algo: str) -> S3Error:
    return S3Error("BadDigest", f"The {algo} you specified did not match the calculated checksum.", 400)
