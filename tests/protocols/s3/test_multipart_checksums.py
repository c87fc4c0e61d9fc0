"""Whole-upload checksums of multipart uploads, in AWS's two forms: COMPOSITE (the checksum of the part
checksums, '-N') and FULL_OBJECT (the CRC of the whole object), sent by boto3, s3transfer and aws-cli."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from awscrt import checksums as crt
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tests.protocols.s3.conftest import S3Server
from tests.protocols.s3.test_clients import aws

MiB = 1024 * 1024
CRC = {"CRC32": (crt.crc32, 4), "CRC32C": (crt.crc32c, 4), "CRC64NVME": (crt.crc64nvme, 8)}


def crc_b64(algo: str, data: bytes) -> str:
    fn, width = CRC[algo]
    return base64.b64encode(fn(data).to_bytes(width, "big")).decode()


def code(e: pytest.ExceptionInfo[ClientError]) -> str:
    return str(e.value.response["Error"]["Code"])


def _parts(c: Any, bucket: str, key: str, up: str, algo: str) -> tuple[list[dict[str, Any]], bytes]:
    data = [os.urandom(5 * MiB), os.urandom(3333)]
    parts = []
    for n, d in enumerate(data, 1):
        r = c.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n, Body=d, ChecksumAlgorithm=algo)
        parts.append({"PartNumber": n, "ETag": r["ETag"], f"Checksum{algo}": r[f"Checksum{algo}"]})
    return parts, b"".join(data)


def test_composite_checksum_of_the_whole_upload(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    up = c.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="SHA256")["UploadId"]
    parts, data = _parts(c, bucket, "k", up, "SHA256")
    raw = b"".join(base64.b64decode(p["ChecksumSHA256"]) for p in parts)
    whole = base64.b64encode(hashlib.sha256(raw).digest()).decode() + "-2"
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode() + "-2"
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=up, MultipartUpload={"Parts": parts},
                                    ChecksumSHA256=wrong)
    assert code(e) == "BadDigest"
    with pytest.raises(ClientError) as e:  # the upload is COMPOSITE
        c.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=up, MultipartUpload={"Parts": parts},
                                    ChecksumSHA256=whole, ChecksumType="FULL_OBJECT")
    assert code(e) == "InvalidRequest"
    r = c.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=up, MultipartUpload={"Parts": parts},
                                    ChecksumSHA256=whole, ChecksumType="COMPOSITE")
    assert r["ChecksumSHA256"] == whole and r["ChecksumType"] == "COMPOSITE"
    h = c.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert h["ChecksumSHA256"] == whole and h["ChecksumType"] == "COMPOSITE" and h["ContentLength"] == len(data)


@pytest.mark.parametrize("algo", sorted(CRC))
def test_full_object_checksum(s3: S3Server, bucket: str, algo: str) -> None:
    c = s3.client()
    kind = {} if algo == "CRC64NVME" else {"ChecksumType": "FULL_OBJECT"}  # CRC64NVME is always FULL_OBJECT
    r = c.create_multipart_upload(Bucket=bucket, Key=algo, ChecksumAlgorithm=algo, **kind)
    assert r["ChecksumType"] == "FULL_OBJECT"
    up = r["UploadId"]
    parts, data = _parts(c, bucket, algo, up, algo)
    whole = crc_b64(algo, data)
    done = {"Bucket": bucket, "Key": algo, "UploadId": up, "MultipartUpload": {"Parts": parts}}
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(**done, **{f"Checksum{algo}": crc_b64(algo, data[:-1])})
    assert code(e) == "BadDigest"
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(**done, **{f"Checksum{algo}": whole}, MpuObjectSize=len(data) + 1)
    assert code(e) == "InvalidRequest"
    r = c.complete_multipart_upload(**done, **{f"Checksum{algo}": whole}, ChecksumType="FULL_OBJECT",
                                    MpuObjectSize=len(data))
    assert r[f"Checksum{algo}"] == whole and r["ChecksumType"] == "FULL_OBJECT"
    got = c.get_object(Bucket=bucket, Key=algo, ChecksumMode="ENABLED")  # botocore checks the body against it
    assert got["Body"].read() == data
    assert got[f"Checksum{algo}"] == whole and got["ChecksumType"] == "FULL_OBJECT"


def test_checksum_type_must_fit_the_algorithm(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    for algo, kind in (("SHA256", "FULL_OBJECT"), ("CRC64NVME", "COMPOSITE")):
        with pytest.raises(ClientError) as e:
            c.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm=algo, ChecksumType=kind)
        assert code(e) == "InvalidRequest"


def test_s3transfer_full_object_checksum(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    data = os.urandom(11 * MiB)
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    c.upload_fileobj(io.BytesIO(data), bucket, "t", Config=cfg, ExtraArgs={"ChecksumCRC32": crc_b64("CRC32", data)})
    h = c.head_object(Bucket=bucket, Key="t", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == crc_b64("CRC32", data) and h["ChecksumType"] == "FULL_OBJECT"
    with pytest.raises(ClientError) as e:  # a wrong whole-object CRC fails the upload
        c.upload_fileobj(io.BytesIO(data), bucket, "t2", Config=cfg,
                         ExtraArgs={"ChecksumCRC32": crc_b64("CRC32", data[1:])})
    assert code(e) == "BadDigest"


def test_aws_cli_crc64nvme_multipart(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    f = tmp_path / "big"
    data = os.urandom(9 * MiB)  # over aws-cli's 8 MiB multipart threshold
    f.write_bytes(data)
    aws(s3, "s3", "cp", "--checksum-algorithm", "CRC64NVME", str(f), f"s3://{bucket}/cli")
    head = json.loads(aws(s3, "s3api", "head-object", "--bucket", bucket, "--key", "cli", "--checksum-mode",
                          "ENABLED"))
    assert head["ChecksumCRC64NVME"] == crc_b64("CRC64NVME", data) and head["ChecksumType"] == "FULL_OBJECT"
    assert head["ETag"].endswith('-2"')
