"""Whole-object checksums of multipart uploads: CRC combination and the checksum-type rules."""

from __future__ import annotations

import base64
import os

import pytest
from awscrt import checksums as crt

from protocols.s3 import checksums
from protocols.s3.errors import S3Error

CRCS = {"CRC32": (crt.crc32, 4), "CRC32C": (crt.crc32c, 4), "CRC64NVME": (crt.crc64nvme, 8)}


@pytest.mark.parametrize("algo", sorted(CRCS))
def test_full_object_crc_is_the_crc_of_the_whole(algo: str) -> None:
    fn, width = CRCS[algo]
    parts = [os.urandom(n) for n in (0, 1, 4096, 100_003, 7)]
    given = [(base64.b64encode(fn(p).to_bytes(width, "big")).decode(), len(p)) for p in parts]
    whole = base64.b64encode(fn(b"".join(parts)).to_bytes(width, "big")).decode()
    assert checksums.full_object(algo, given) == whole
    a, b = os.urandom(300), os.urandom(5000)
    assert checksums.crc_combine_py(algo, fn(a), fn(b), len(b)) == fn(a + b)  # the pure-Python fallback


def test_checksum_type_rules() -> None:
    assert checksums.upload_type("CRC32", None) == "COMPOSITE"
    assert checksums.upload_type("CRC64NVME", None) == "FULL_OBJECT"
    assert checksums.upload_type("CRC32C", "FULL_OBJECT") == "FULL_OBJECT"
    for algo, kind in (("SHA256", "FULL_OBJECT"), ("SHA1", "FULL_OBJECT"), ("CRC64NVME", "COMPOSITE"),
                       (None, "COMPOSITE"), ("CRC32", "PARTIAL")):
        with pytest.raises(S3Error) as e:
            checksums.upload_type(algo, kind)
        assert e.value.code == "InvalidRequest"
    with pytest.raises(S3Error):
        checksums.full_object("SHA256", [("AAAA", 3)])
