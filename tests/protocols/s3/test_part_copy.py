"""UploadPartCopy copies exactly the source range asked for, or nothing: a range outside the source is
InvalidRange, a malformed one InvalidArgument (the cases of Ceph's s3-tests, which AWS passes)."""

from __future__ import annotations

import base64
import os

import pytest
from awscrt.checksums import crc32c
from botocore.exceptions import ClientError

from tests.protocols.s3.conftest import S3Server


def test_part_copy_ranges(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    src = os.urandom(5)
    c.put_object(Bucket=bucket, Key="src", Body=src)
    up = c.create_multipart_upload(Bucket=bucket, Key="dst", ChecksumAlgorithm="CRC32C")["UploadId"]
    source = {"Bucket": bucket, "Key": "src"}
    cases = [(r, "InvalidRange") for r in ("bytes=0-21", "bytes=5-5", "bytes=0-5")] + [
        (r, "InvalidArgument") for r in ("0-2", "bytes=0", "bytes=hello-world", "bytes=0-bar", "bytes=hello-",
                                         "bytes=0-2,3-4", "bytes=3-2", "bytes=-2", "bytes=2-")]
    for rng, want in cases:
        with pytest.raises(ClientError) as e:
            c.upload_part_copy(Bucket=bucket, Key="dst", UploadId=up, PartNumber=1, CopySource=source,
                               CopySourceRange=rng)
        status = e.value.response["ResponseMetadata"]["HTTPStatusCode"]
        assert (e.value.response["Error"]["Code"], status) == (want, 416 if want == "InvalidRange" else 400), rng
    assert c.list_parts(Bucket=bucket, Key="dst", UploadId=up).get("Parts", []) == []  # nothing copied
    r = c.upload_part_copy(Bucket=bucket, Key="dst", UploadId=up, PartNumber=1, CopySource=source,
                           CopySourceRange="bytes=1-4")["CopyPartResult"]
    assert r["ChecksumCRC32C"] == base64.b64encode(crc32c(src[1:5]).to_bytes(4, "big")).decode()
    c.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": r["ETag"], "ChecksumCRC32C": r["ChecksumCRC32C"]}]})
    assert c.get_object(Bucket=bucket, Key="dst")["Body"].read() == src[1:5]
