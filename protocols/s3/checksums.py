"""S3 additional checksums: CRC32, CRC32C, CRC64NVME, SHA1, SHA256 (and MD5 for ETags).

CRCs come from awscrt (C speed, the same code the AWS SDKs use).  Values are
base64 of the big-endian digest, as S3 sends them; multipart objects get a
*composite* checksum: the checksum of the concatenated part digests, ``-N``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

from awscrt import checksums as _crt

from protocols.s3.errors import S3Error

ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")


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


def mismatch(algo: str) -> S3Error:
    return S3Error("BadDigest", f"The {algo} you specified did not match the calculated checksum.", 400)
