"""boto3 with its default settings (checksums included) over HTTP and HTTPS."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tests.protocols.s3.conftest import S3Server

MiB = 1024 * 1024


def code(e: pytest.ExceptionInfo[ClientError]) -> str:
    return str(e.value.response["Error"]["Code"])


@pytest.mark.parametrize("tls", [False, True])
def test_roundtrip_http_and_https(s3: S3Server, s3tls: S3Server, tls: bool) -> None:
    srv = s3tls if tls else s3
    c = srv.client()
    name = f"rt-{int(tls)}"
    c.create_bucket(Bucket=name)
    for size in (0, 5, 100_000, 9 * MiB + 7):
        body = os.urandom(size)
        r = c.put_object(Bucket=name, Key=f"obj-{size}", Body=body, Metadata={"color": "blue"},
                         ContentType="text/x-test")
        assert r["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        got = c.get_object(Bucket=name, Key=f"obj-{size}")
        assert got["Body"].read() == body and got["ContentLength"] == size
        assert got["Metadata"] == {"color": "blue"} and got["ContentType"] == "text/x-test"
    data = os.urandom(20 * MiB + 3)
    c.upload_fileobj(io.BytesIO(data), name, "multi/part.bin",
                     Config=TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB))
    out = io.BytesIO()
    c.download_fileobj(name, "multi/part.bin", out, Config=TransferConfig(multipart_threshold=4 * MiB))
    assert out.getvalue() == data
    assert c.head_object(Bucket=name, Key="multi/part.bin")["ETag"].endswith('-3"')


def test_buckets(s3: S3Server) -> None:
    c = s3.client()
    c.create_bucket(Bucket="bk-ops", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert "bk-ops" in [b["Name"] for b in c.list_buckets()["Buckets"]]
    c.head_bucket(Bucket="bk-ops")
    assert c.get_bucket_location(Bucket="bk-ops")["LocationConstraint"] in (None, "")
    assert "Status" not in c.get_bucket_versioning(Bucket="bk-ops")
    with pytest.raises(ClientError) as e:
        c.create_bucket(Bucket="bk-ops")
    assert code(e) == "BucketAlreadyOwnedByYou"
    with pytest.raises(ClientError) as e:
        c.create_bucket(Bucket="Bad_Name")
    assert code(e) == "InvalidBucketName"
    c.put_object(Bucket="bk-ops", Key="x", Body=b"1")
    with pytest.raises(ClientError) as e:
        c.delete_bucket(Bucket="bk-ops")
    assert code(e) == "BucketNotEmpty"
    c.delete_object(Bucket="bk-ops", Key="x")
    c.delete_bucket(Bucket="bk-ops")
    with pytest.raises(ClientError) as e:
        c.head_bucket(Bucket="bk-ops")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        c.list_objects_v2(Bucket="no-such-bucket")
    assert code(e) == "NoSuchBucket"


def test_ranges_and_conditionals(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    body = bytes(range(256)) * 40
    etag = c.put_object(Bucket=bucket, Key="r", Body=body)["ETag"]
    assert c.get_object(Bucket=bucket, Key="r", Range="bytes=10-19")["Body"].read() == body[10:20]
    r = c.get_object(Bucket=bucket, Key="r", Range="bytes=-5")
    assert r["Body"].read() == body[-5:] and r["ContentRange"] == f"bytes {len(body) - 5}-{len(body) - 1}/{len(body)}"
    assert c.get_object(Bucket=bucket, Key="r", Range="bytes=10000-")["Body"].read() == body[10000:]
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=bucket, Key="r", Range="bytes=999999-")
    assert code(e) == "InvalidRange"
    assert c.get_object(Bucket=bucket, Key="r", IfMatch=etag)["Body"].read() == body
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=bucket, Key="r", IfMatch='"nope"')
    assert code(e) == "PreconditionFailed"
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=bucket, Key="r", IfNoneMatch=etag)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    future = datetime.now(UTC) + timedelta(days=1)
    past = datetime.now(UTC) - timedelta(days=1)
    with pytest.raises(ClientError) as e:
        c.head_object(Bucket=bucket, Key="r", IfModifiedSince=future)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=bucket, Key="r", IfUnmodifiedSince=past)
    assert code(e) == "PreconditionFailed"
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=bucket, Key="r", Body=b"x", IfNoneMatch="*")
    assert code(e) == "PreconditionFailed"
    c.put_object(Bucket=bucket, Key="new", Body=b"x", IfNoneMatch="*")
    assert c.get_object(Bucket=bucket, Key="r", PartNumber=1)["Body"].read() == body


def test_copy_object(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    body = os.urandom(3 * MiB)
    etag = c.put_object(Bucket=bucket, Key="src dir/a+b ü.bin", Body=body, Metadata={"k": "v"})["ETag"]
    r = c.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "src dir/a+b ü.bin"})
    assert r["CopyObjectResult"]["ETag"] == etag
    got = c.get_object(Bucket=bucket, Key="copy")
    assert got["Body"].read() == body and got["Metadata"] == {"k": "v"}
    c.copy_object(Bucket=bucket, Key="copy2", CopySource=f"{bucket}/src dir/a+b ü.bin",
                  MetadataDirective="REPLACE", Metadata={"n": "1"}, ContentType="x/y")
    h = c.head_object(Bucket=bucket, Key="copy2")
    assert h["Metadata"] == {"n": "1"} and h["ContentType"] == "x/y"
    with pytest.raises(ClientError) as e:
        c.copy_object(Bucket=bucket, Key="copy3", CopySource={"Bucket": bucket, "Key": "copy"},
                      CopySourceIfMatch='"wrong"')
    assert code(e) == "PreconditionFailed"
    with pytest.raises(ClientError) as e:
        c.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "copy"})
    assert code(e) == "InvalidRequest"
    small = c.put_object(Bucket=bucket, Key="small", Body=b"tiny")["ETag"]
    assert c.copy_object(Bucket=bucket, Key="small2", CopySource=f"{bucket}/small")["CopyObjectResult"]["ETag"] == small


def test_listing_order_and_pagination(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    keys = ["a/b", "a-c", "a/b/c", "a0", "b", "a/x/y/z", "dir/", "é", "a b"]
    for k in keys:
        if k == "a/b":
            continue  # 'a/b' is a prefix of 'a/b/c': it cannot also be an object here
        c.put_object(Bucket=bucket, Key=k, Body=b"" if k.endswith("/") else k.encode())
    keys.remove("a/b")
    want = sorted(keys, key=lambda k: k.encode())
    got = [o["Key"] for o in c.list_objects_v2(Bucket=bucket)["Contents"]]
    assert got == want  # S3 order: 'a b' < 'a-c' < 'a/b/c' < 'a/x/y/z' < 'a0'
    pages = []
    for p in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2}):
        pages += [o["Key"] for o in p.get("Contents", [])]
    assert pages == want
    v1 = []
    for p in c.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 3}):
        v1 += [o["Key"] for o in p.get("Contents", [])]
    assert v1 == want
    r = c.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "dir/"]
    assert [o["Key"] for o in r["Contents"]] == ["a b", "a-c", "a0", "b", "é"]
    r = c.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/b/", "a/x/"]
    assert [o["Key"] for o in c.list_objects_v2(Bucket=bucket, StartAfter="a/b/c")["Contents"]][:1] == ["a/x/y/z"]
    r = c.list_objects_v2(Bucket=bucket, Prefix="a", MaxKeys=2, Delimiter="/")
    assert r["IsTruncated"] and r["KeyCount"] == 2
    r = c.list_objects_v2(Bucket=bucket, EncodingType="url", Prefix="a b")
    assert [o["Key"] for o in r["Contents"]] == ["a%20b"]  # asked for explicitly: boto3 leaves it encoded
    r = c.list_objects_v2(Bucket=bucket, FetchOwner=True, Prefix="b")
    assert r["Contents"][0]["Owner"]["DisplayName"] == "tester"
    v = c.list_object_versions(Bucket=bucket, Prefix="b")
    assert [(x["Key"], x["VersionId"], x["IsLatest"]) for x in v["Versions"]] == [("b", "null", True)]


def test_delete_objects_and_implicit_dirs(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    for k in ("d/e/f1", "d/e/f2", "d/g", "keep/"):
        c.put_object(Bucket=bucket, Key=k, Body=b"" if k.endswith("/") else b"x")
    r = c.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d/e/f1"}, {"Key": "d/e/f2"},
                                                            {"Key": "missing"}], "Quiet": False})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["d/e/f1", "d/e/f2", "missing"]
    assert [o["Key"] for o in c.list_objects_v2(Bucket=bucket)["Contents"]] == ["d/g", "keep/"]
    r = c.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d/g"}], "Quiet": True})
    assert "Deleted" not in r and "Errors" not in r
    assert [o["Key"] for o in c.list_objects_v2(Bucket=bucket)["Contents"]] == ["keep/"]
    c.put_object(Bucket=bucket, Key="keep/inner", Body=b"1")
    c.delete_object(Bucket=bucket, Key="keep/inner")
    assert [o["Key"] for o in c.list_objects_v2(Bucket=bucket)["Contents"]] == ["keep/"]  # marker stays


def test_tagging(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    c.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="a=1&b=two")
    assert c.head_object(Bucket=bucket, Key="t")["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "2"
    tags = {t["Key"]: t["Value"] for t in c.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]}
    assert tags == {"a": "1", "b": "two"}
    c.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "z", "Value": "9"}]})
    assert c.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "z", "Value": "9"}]
    c.delete_object_tagging(Bucket=bucket, Key="t")
    assert c.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []


@pytest.mark.parametrize("algo", ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"])
def test_checksums(s3: S3Server, bucket: str, algo: str) -> None:
    c = s3.client()
    body = os.urandom(300_000)
    r = c.put_object(Bucket=bucket, Key=f"c-{algo}", Body=body, ChecksumAlgorithm=algo)
    value = r[f"Checksum{algo}"]
    got = c.get_object(Bucket=bucket, Key=f"c-{algo}", ChecksumMode="ENABLED")
    assert got["Body"].read() == body and got[f"Checksum{algo}"] == value
    if algo in ("SHA1", "SHA256"):
        assert base64.b64decode(value) == hashlib.new(algo.lower(), body).digest()


def test_wrong_checksum_and_md5_are_refused(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=bucket, Key="bad", Body=b"hello", ContentMD5=base64.b64encode(b"0" * 16).decode())
    assert code(e) == "BadDigest"
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=bucket, Key="bad", Body=b"hello", ChecksumSHA256=base64.b64encode(b"1" * 32).decode())
    assert code(e) == "BadDigest"
    with pytest.raises(ClientError) as e:
        c.head_object(Bucket=bucket, Key="bad")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404  # nothing stored


def test_multipart_api(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    up = c.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32C")["UploadId"]
    p1, p2 = os.urandom(5 * MiB), os.urandom(MiB + 5)
    e1 = c.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=p1, ChecksumAlgorithm="CRC32C")
    e2 = c.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=2, Body=p2, ChecksumAlgorithm="CRC32C")
    parts = c.list_parts(Bucket=bucket, Key="mp", UploadId=up)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 5 * MiB), (2, MiB + 5)]
    assert [u["UploadId"] for u in c.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [up]
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 2, "ETag": e2["ETag"]}, {"PartNumber": 1, "ETag": e1["ETag"]}]})
    assert code(e) == "InvalidPartOrder"
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": '"0000"'}]})
    assert code(e) == "InvalidPart"
    r = c.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": e1["ETag"], "ChecksumCRC32C": e1["ChecksumCRC32C"]},
        {"PartNumber": 2, "ETag": e2["ETag"], "ChecksumCRC32C": e2["ChecksumCRC32C"]}]})
    md5s = hashlib.md5(bytes.fromhex(e1["ETag"].strip('"')) + bytes.fromhex(e2["ETag"].strip('"'))).hexdigest()
    assert r["ETag"] == f'"{md5s}-2"' and r["ChecksumCRC32C"].endswith("-2")
    got = c.get_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    assert got["Body"].read() == p1 + p2
    assert c.get_object(Bucket=bucket, Key="mp", PartNumber=2)["Body"].read() == p2
    assert c.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    with pytest.raises(ClientError) as e:
        c.list_parts(Bucket=bucket, Key="mp", UploadId=up)
    assert code(e) == "NoSuchUpload"


def test_multipart_copy_abort_and_small_parts(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    src = os.urandom(7 * MiB)
    c.put_object(Bucket=bucket, Key="src", Body=src)
    up = c.create_multipart_upload(Bucket=bucket, Key="joined")["UploadId"]
    a = c.upload_part_copy(Bucket=bucket, Key="joined", UploadId=up, PartNumber=1,
                           CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=f"bytes=0-{5 * MiB - 1}")
    b = c.upload_part_copy(Bucket=bucket, Key="joined", UploadId=up, PartNumber=2,
                           CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange="bytes=100-199")
    parts = [{"PartNumber": 1, "ETag": a["CopyPartResult"]["ETag"]},
             {"PartNumber": 2, "ETag": b["CopyPartResult"]["ETag"]}]
    c.complete_multipart_upload(Bucket=bucket, Key="joined", UploadId=up, MultipartUpload={"Parts": parts})
    assert c.get_object(Bucket=bucket, Key="joined")["Body"].read() == src[:5 * MiB] + src[100:200]
    up = c.create_multipart_upload(Bucket=bucket, Key="tiny")["UploadId"]
    t1 = c.upload_part(Bucket=bucket, Key="tiny", UploadId=up, PartNumber=1, Body=b"small")
    t2 = c.upload_part(Bucket=bucket, Key="tiny", UploadId=up, PartNumber=2, Body=b"parts")
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(Bucket=bucket, Key="tiny", UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": t1["ETag"]}, {"PartNumber": 2, "ETag": t2["ETag"]}]})
    assert code(e) == "EntityTooSmall"
    c.abort_multipart_upload(Bucket=bucket, Key="tiny", UploadId=up)
    with pytest.raises(ClientError) as e:
        c.abort_multipart_upload(Bucket=bucket, Key="tiny", UploadId=up)
    assert code(e) == "NoSuchUpload"


def test_presigned_urls_v4_and_v2(s3: S3Server, bucket: str) -> None:
    c4 = s3.client(signature_version="s3v4")
    c4.put_object(Bucket=bucket, Key="p", Body=b"presigned")
    url = c4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    assert "X-Amz-Signature" in url
    assert urllib.request.urlopen(url).read() == b"presigned"
    cdef = s3.client()  # boto3's default for a custom endpoint
    url = cdef.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    assert urllib.request.urlopen(url).read() == b"presigned"
    c2 = s3.client(signature_version="s3")
    url = c2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    assert "Signature=" in url and "AWSAccessKeyId" in url
    assert urllib.request.urlopen(url).read() == b"presigned"
    put = c4.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up"}, ExpiresIn=60)
    urllib.request.urlopen(urllib.request.Request(put, data=b"via url", method="PUT"))
    assert c4.get_object(Bucket=bucket, Key="up")["Body"].read() == b"via url"
    expired = c4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=1)
    time.sleep(2)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(expired)
    assert e.value.code == 403 and b"expired" in e.value.read()
    tampered = url.replace("Signature=", "Signature=x")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(tampered)
    assert e.value.code == 403


def test_sigv2_headers(s3: S3Server, bucket: str) -> None:
    c2 = s3.client(signature_version="s3")
    c2.put_object(Bucket=bucket, Key="v2/key with space", Body=b"old client")
    assert c2.get_object(Bucket=bucket, Key="v2/key with space")["Body"].read() == b"old client"
    assert [o["Key"] for o in c2.list_objects(Bucket=bucket, Prefix="v2/")["Contents"]] == ["v2/key with space"]


def test_virtual_host_style(s3: S3Server, bucket: str) -> None:
    import botocore.client
    c = s3.client(s3={"addressing_style": "virtual"})

    def to_loopback(request: botocore.awsrequest.AWSPreparedRequest, **kw: object) -> None:
        # <bucket>.s3.localtest does not resolve here: keep the Host header, send to 127.0.0.1
        host = request.url.split("/")[2]
        if host.startswith(f"{bucket}."):
            request.headers["Host"] = f"{bucket}.s3.localtest:{s3.endpoint.rsplit(':', 1)[1]}"
            request.url = request.url.replace(host, s3.endpoint.split("/")[2], 1)
    c.meta.events.register("before-send.s3", to_loopback)
    c2 = s3.client(s3={"addressing_style": "virtual"})
    del c2
    c.meta.config.s3 = {"addressing_style": "virtual"}
    assert isinstance(c, botocore.client.BaseClient)
    c.put_object(Bucket=bucket, Key="vh/obj", Body=b"virtual")
    assert c.get_object(Bucket=bucket, Key="vh/obj")["Body"].read() == b"virtual"
    assert s3.client().get_object(Bucket=bucket, Key="vh/obj")["Body"].read() == b"virtual"


def test_abandoned_uploads_expire(s3: S3Server, bucket: str) -> None:
    import time as _time

    from core.store import open_store
    from protocols.s3.multipart import expire_uploads
    c = s3.client()
    old = c.create_multipart_upload(Bucket=bucket, Key="abandoned")["UploadId"]
    c.upload_part(Bucket=bucket, Key="abandoned", UploadId=old, PartNumber=1, Body=b"x" * 1000)
    with open_store(str(s3.data)) as st:
        assert expire_uploads(st.fs, 3600) == 0  # young: kept
        assert expire_uploads(st.fs, 3600, now_ns=_time.time_ns() + 7200 * 10**9) >= 1
    with pytest.raises(ClientError) as e:
        c.list_parts(Bucket=bucket, Key="abandoned", UploadId=old)
    assert code(e) == "NoSuchUpload"
