"""Conditional deletes and writes as AWS defines them: a failed condition never deletes or overwrites."""

from __future__ import annotations

import datetime
import os
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.protocols.s3.conftest import S3Server

MiB = 1024 * 1024


def err(e: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    """(status, code, Condition element) of a failed call."""
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"].get("Condition", "")


def exists(c: Any, bucket: str, key: str) -> bool:
    try:
        c.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError:
        return False


def test_delete_if_match(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    etag = c.put_object(Bucket=bucket, Key="k", Body=b"v1")["ETag"]
    with pytest.raises(ClientError) as e:
        c.delete_object(Bucket=bucket, Key="k", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert err(e) == (412, "PreconditionFailed", "If-Match")
    assert exists(c, bucket, "k")  # a wrong ETag deletes nothing
    c.put_object(Bucket=bucket, Key="k", Body=b"v2")  # someone else's newer version
    with pytest.raises(ClientError) as e:
        c.delete_object(Bucket=bucket, Key="k", IfMatch=etag)
    assert err(e)[:2] == (412, "PreconditionFailed")
    assert c.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v2"
    now = c.head_object(Bucket=bucket, Key="k")["ETag"]
    assert c.delete_object(Bucket=bucket, Key="k", IfMatch=now.strip('"'))["ResponseMetadata"][
        "HTTPStatusCode"] == 204
    assert not exists(c, bucket, "k")
    with pytest.raises(ClientError) as e:  # no object: AWS answers 404 to a conditional delete
        c.delete_object(Bucket=bucket, Key="k", IfMatch="*")
    assert err(e)[:2] == (404, "NoSuchKey")
    c.put_object(Bucket=bucket, Key="k", Body=b"v3")
    c.delete_object(Bucket=bucket, Key="k", IfMatch="*")
    assert not exists(c, bucket, "k")


def test_delete_if_size_and_time(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    c.put_object(Bucket=bucket, Key="k", Body=b"12345")
    mtime = c.head_object(Bucket=bucket, Key="k")["LastModified"]
    with pytest.raises(ClientError) as e:
        c.delete_object(Bucket=bucket, Key="k", IfMatchSize=4)
    assert err(e) == (412, "PreconditionFailed", "x-amz-if-match-size")
    with pytest.raises(ClientError) as e:
        c.delete_object(Bucket=bucket, Key="k", IfMatchLastModifiedTime=mtime - datetime.timedelta(seconds=5))
    assert err(e) == (412, "PreconditionFailed", "x-amz-if-match-last-modified-time")
    assert exists(c, bucket, "k")
    c.delete_object(Bucket=bucket, Key="k", IfMatchSize=5, IfMatchLastModifiedTime=mtime)
    assert not exists(c, bucket, "k")
    c.delete_object(Bucket=bucket, Key="k", IfMatchSize=5)  # no object: nothing to do, 204 as AWS documents


def test_delete_objects_per_key_conditions(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    tags = {k: c.put_object(Bucket=bucket, Key=k, Body=k.encode() * 3)["ETag"] for k in ("a", "b", "c", "d")}
    mtime = c.head_object(Bucket=bucket, Key="d")["LastModified"]
    r = c.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "ETag": tags["a"]},
        {"Key": "b", "ETag": tags["a"]},  # b's ETag is not a's
        {"Key": "c", "Size": 2},
        {"Key": "d", "Size": 3, "LastModifiedTime": mtime},
        {"Key": "gone", "ETag": tags["a"]},
    ]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["a", "d"]
    errors = {x["Key"]: x["Code"] for x in r["Errors"]}
    assert errors == {"b": "PreconditionFailed", "c": "PreconditionFailed", "gone": "NoSuchKey"}
    assert exists(c, bucket, "b") and exists(c, bucket, "c")
    assert not exists(c, bucket, "a") and not exists(c, bucket, "d")


def test_put_conditions(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    with pytest.raises(ClientError) as e:  # If-Match needs an object to match
        c.put_object(Bucket=bucket, Key="k", Body=b"x", IfMatch="*")
    assert err(e)[:2] == (404, "NoSuchKey")
    etag = c.put_object(Bucket=bucket, Key="k", Body=b"v1", IfNoneMatch="*")["ETag"]
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=bucket, Key="k", Body=b"v2", IfNoneMatch="*")
    assert err(e) == (412, "PreconditionFailed", "If-None-Match")
    for kw in ({"IfNoneMatch": etag}, {"IfNoneMatch": "*", "IfMatch": etag}):
        with pytest.raises(ClientError) as e:  # AWS implements only If-None-Match: *, alone
            c.put_object(Bucket=bucket, Key="k", Body=b"v2", **kw)
        assert err(e)[:2] == (501, "NotImplemented")
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=bucket, Key="k", Body=b"v2", IfMatch='"ffffffffffffffffffffffffffffffff"')
    assert err(e) == (412, "PreconditionFailed", "If-Match")
    c.put_object(Bucket=bucket, Key="k", Body=b"v2", IfMatch=etag)
    assert c.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v2"


def _upload(c: Any, bucket: str, key: str, data: bytes) -> tuple[str, list[dict[str, Any]]]:
    up = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    r = c.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=1, Body=data)
    return up, [{"PartNumber": 1, "ETag": r["ETag"]}]


def test_complete_conditions(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    old = c.put_object(Bucket=bucket, Key="k", Body=b"old")["ETag"]
    up, parts = _upload(c, bucket, "k", b"new")
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=up, MultipartUpload={"Parts": parts},
                                    IfNoneMatch="*")
    assert err(e) == (412, "PreconditionFailed", "If-None-Match")
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=up, MultipartUpload={"Parts": parts},
                                    IfMatch='"ffffffffffffffffffffffffffffffff"')
    assert err(e) == (412, "PreconditionFailed", "If-Match")
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=up, MultipartUpload={"Parts": parts},
                                    IfNoneMatch=old)
    assert err(e)[:2] == (501, "NotImplemented")
    assert c.get_object(Bucket=bucket, Key="k")["Body"].read() == b"old"  # untouched by the failed ones
    c.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=up, MultipartUpload={"Parts": parts},
                                IfMatch=old)  # the upload survived the failed attempts
    assert c.get_object(Bucket=bucket, Key="k")["Body"].read() == b"new"
    up, parts = _upload(c, bucket, "fresh", b"only if absent")
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(Bucket=bucket, Key="fresh", UploadId=up, MultipartUpload={"Parts": parts},
                                    IfMatch="*")
    assert err(e)[:2] == (404, "NoSuchKey")
    c.complete_multipart_upload(Bucket=bucket, Key="fresh", UploadId=up, MultipartUpload={"Parts": parts},
                                IfNoneMatch="*")
    assert c.get_object(Bucket=bucket, Key="fresh")["Body"].read() == b"only if absent"


def test_get_and_copy_source_conditions(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    etag = c.put_object(Bucket=bucket, Key="src", Body=os.urandom(100))["ETag"]
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=bucket, Key="src", IfMatch='"ffffffffffffffffffffffffffffffff"')
    assert err(e) == (412, "PreconditionFailed", "If-Match")
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=bucket, Key="src", IfNoneMatch=etag)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    up = c.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    with pytest.raises(ClientError) as e:
        c.upload_part_copy(Bucket=bucket, Key="dst", UploadId=up, PartNumber=1,
                           CopySource={"Bucket": bucket, "Key": "src"}, CopySourceIfNoneMatch=etag)
    assert err(e) == (412, "PreconditionFailed", "x-amz-copy-source-If-None-Match")
    assert c.list_parts(Bucket=bucket, Key="dst", UploadId=up).get("Parts", []) == []
    c.upload_part_copy(Bucket=bucket, Key="dst", UploadId=up, PartNumber=1,
                       CopySource={"Bucket": bucket, "Key": "src"}, CopySourceIfMatch=etag)
    assert [p["Size"] for p in c.list_parts(Bucket=bucket, Key="dst", UploadId=up)["Parts"]] == [100]
