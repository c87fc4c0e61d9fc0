"""S3 bucket versioning with boto3: Put/GetBucketVersioning, version ids on writes, GET/HEAD/DELETE by
version, delete markers, the null version under suspended versioning (the AWS user guide's examples step by
step), ListObjectVersions (order, delimiter, paging, EncodingType=url), DeleteObjects with versions, copies
from a version, and retention bypass."""

from __future__ import annotations

import json
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.protocols.s3.conftest import S3Server, cli

pytestmark = pytest.mark.timeout(300)
MiB = 1024 * 1024
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def code(e: pytest.ExceptionInfo[ClientError]) -> str:
    return str(e.value.response["Error"]["Code"])


def headers(e: pytest.ExceptionInfo[ClientError]) -> dict[str, str]:
    return dict(e.value.response["ResponseMetadata"]["HTTPHeaders"])


def enable(c: Any, bucket: str, status: str = "Enabled") -> None:
    c.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def body(c: Any, bucket: str, key: str, vid: str | None = None) -> bytes:
    kw = {"VersionId": vid} if vid else {}
    return bytes(c.get_object(Bucket=bucket, Key=key, **kw)["Body"].read())


RAW: list[bytes] = []  # the bodies of ListObjectVersions answers (boto3 splits versions from markers)


def _capture(http_response: Any, **_: Any) -> None:
    RAW.append(http_response.content)


def listing(c: Any, bucket: str, **kw: Any) -> list[tuple[str, str, bool, str]]:
    """(key, version id, IsLatest, 'v' or 'dm') of every entry in the server's order, all pages."""
    c.meta.events.register("after-call.s3.ListObjectVersions", _capture, unique_id="test-versioning-raw")
    RAW.clear()
    for _ in c.get_paginator("list_object_versions").paginate(Bucket=bucket, **kw):
        pass
    out: list[tuple[str, str, bool, str]] = []
    for raw in RAW:
        root = ET.fromstring(raw)
        url = root.findtext(f"{NS}EncodingType") == "url"
        for el in root:
            tag = el.tag.removeprefix(NS)
            if tag in ("Version", "DeleteMarker"):
                key = el.findtext(f"{NS}Key") or ""
                out.append((urllib.parse.unquote_plus(key) if url else key, el.findtext(f"{NS}VersionId") or "",
                            el.findtext(f"{NS}IsLatest") == "true", "v" if tag == "Version" else "dm"))
    return out


@pytest.fixture(scope="module")
def other(s3: S3Server) -> Iterator[Any]:
    """A second, ordinary user (owns nothing)."""
    u = json.loads(cli(s3.data, "user", "add", "vother", "--json"))
    time.sleep(1.2)  # the server's identity cache follows changes within 1 s
    yield boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=u["access_key"],
                       aws_secret_access_key=u["secret_key"], region_name="us-east-1",
                       config=Config(retries={"max_attempts": 1}))


def test_bucket_versioning_configuration(s3: S3Server, bucket: str, other: Any) -> None:
    c = s3.client()
    assert "Status" not in c.get_bucket_versioning(Bucket=bucket)  # never enabled: no Status
    enable(c, bucket)
    assert c.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    enable(c, bucket, "Suspended")
    assert c.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    with pytest.raises(ClientError) as e:
        c.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"},
                                MFA="serial 123456")
    assert code(e) == "NotImplemented" and "MFA delete is not supported" in e.value.response["Error"]["Message"]
    c.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Disabled"})
    with pytest.raises(ClientError) as e:
        c.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Off"})
    assert code(e) == "IllegalVersioningConfigurationException"
    with pytest.raises(ClientError) as e:  # the bucket owner's (or a policy's) business
        other.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        other.get_bucket_versioning(Bucket=bucket)
    assert code(e) == "AccessDenied"
    assert c.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    with pytest.raises(ClientError) as e:
        c.get_bucket_versioning(Bucket="no-such-bucket-v")
    assert code(e) == "NoSuchBucket"


def test_versions_put_get_head_and_list(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    r0 = c.put_object(Bucket=bucket, Key="k", Body=b"before")  # made before versioning: the null version
    assert "VersionId" not in r0
    assert "VersionId" not in c.head_object(Bucket=bucket, Key="k")
    enable(c, bucket)
    assert c.head_object(Bucket=bucket, Key="k")["VersionId"] == "null"
    v1 = c.put_object(Bucket=bucket, Key="k", Body=b"one", Tagging="t=1")["VersionId"]
    v2 = c.put_object(Bucket=bucket, Key="k", Body=b"two", Metadata={"n": "2"})["VersionId"]
    assert len({v1, v2, "null"}) == 3
    t = c.get_object_tagging(Bucket=bucket, Key="k", VersionId=v1)
    assert t["TagSet"] == [{"Key": "t", "Value": "1"}] and t["VersionId"] == v1
    assert c.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    r = c.put_object_tagging(Bucket=bucket, Key="k", VersionId=v1, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    assert r["VersionId"] == v1
    assert c.get_object_tagging(Bucket=bucket, Key="k", VersionId=v1)["TagSet"] == [{"Key": "a", "Value": "b"}]
    assert c.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []  # the current version is untouched
    c.delete_object_tagging(Bucket=bucket, Key="k", VersionId=v1)
    assert c.get_object_tagging(Bucket=bucket, Key="k", VersionId=v1)["TagSet"] == []
    c.put_object_tagging(Bucket=bucket, Key="k", VersionId=v1, Tagging={"TagSet": [{"Key": "t", "Value": "1"}]})
    assert body(c, bucket, "k") == b"two"
    assert body(c, bucket, "k", v1) == b"one" and body(c, bucket, "k", "null") == b"before"
    assert c.get_object(Bucket=bucket, Key="k", VersionId=v1)["VersionId"] == v1
    g = c.get_object(Bucket=bucket, Key="k")
    assert g["VersionId"] == v2 and g["Metadata"] == {"n": "2"}
    h = c.head_object(Bucket=bucket, Key="k", VersionId=v1)
    assert h["VersionId"] == v1 and h["ContentLength"] == 3 and h["Metadata"] == {}
    assert c.get_object(Bucket=bucket, Key="k", VersionId=v1, Range="bytes=1-")["Body"].read() == b"ne"
    assert listing(c, bucket) == [("k", v2, True, "v"), ("k", v1, False, "v"), ("k", "null", False, "v")]
    vs = c.list_object_versions(Bucket=bucket)["Versions"]
    assert [v["Size"] for v in vs] == [3, 3, 6] and vs[0]["StorageClass"] == "STANDARD"
    assert vs[1]["ETag"] == '"f97c5d29941bfb1b2fdab0874906ab82"'  # md5("one")
    assert vs[0]["Owner"]["DisplayName"] == "tester"
    # ListObjects shows only the current version
    assert [o["Key"] for o in c.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]


def test_version_id_errors(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    enable(c, bucket)
    c.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=bucket, Key="k", VersionId="0" * 28)
    assert code(e) == "NoSuchVersion" and e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=bucket, Key="k", VersionId="not-a-version")
    assert code(e) == "InvalidArgument"
    with pytest.raises(ClientError) as e:
        c.head_object(Bucket=bucket, Key="k", VersionId="0" * 28)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=bucket, Key="nope", VersionId="null")
    assert code(e) == "NoSuchVersion"
    with pytest.raises(ClientError) as e:
        c.delete_object(Bucket=bucket, Key="k", VersionId="bad id")
    assert code(e) == "InvalidArgument"
    c.delete_object(Bucket=bucket, Key="k", VersionId="0" * 28)  # no such version: a delete is idempotent
    assert body(c, bucket, "k") == b"x"


def test_delete_markers(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    enable(c, bucket)
    v1 = c.put_object(Bucket=bucket, Key="d/k", Body=b"one")["VersionId"]
    v2 = c.put_object(Bucket=bucket, Key="d/k", Body=b"two")["VersionId"]
    r = c.delete_object(Bucket=bucket, Key="d/k")
    assert r["DeleteMarker"] is True
    dm = r["VersionId"]
    assert dm not in (v1, v2)
    for fn in (c.get_object, c.head_object):
        with pytest.raises(ClientError) as e:
            fn(Bucket=bucket, Key="d/k")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert headers(e)["x-amz-delete-marker"] == "true" and headers(e)["x-amz-version-id"] == dm
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=bucket, Key="d/k")
    assert code(e) == "NoSuchKey"
    with pytest.raises(ClientError) as e:  # a delete marker by id: 405
        c.get_object(Bucket=bucket, Key="d/k", VersionId=dm)
    assert code(e) == "MethodNotAllowed" and headers(e)["x-amz-delete-marker"] == "true"
    with pytest.raises(ClientError) as e:
        c.head_object(Bucket=bucket, Key="d/k", VersionId=dm)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 405
    assert c.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert listing(c, bucket) == [("d/k", dm, True, "dm"), ("d/k", v2, False, "v"), ("d/k", v1, False, "v")]
    assert body(c, bucket, "d/k", v1) == b"one"  # the key's directory is gone; its versions stay
    r = c.delete_object(Bucket=bucket, Key="d/k", VersionId=dm)  # removing the marker brings v2 back
    assert r["DeleteMarker"] is True and r["VersionId"] == dm
    assert body(c, bucket, "d/k") == b"two"
    assert c.head_object(Bucket=bucket, Key="d/k")["VersionId"] == v2
    r = c.delete_object(Bucket=bucket, Key="d/k", VersionId=v2)  # the current version: v1 becomes current
    assert r["VersionId"] == v2 and "DeleteMarker" not in r
    assert body(c, bucket, "d/k") == b"one"
    assert listing(c, bucket) == [("d/k", v1, True, "v")]
    c.delete_object(Bucket=bucket, Key="d/k", VersionId=v1)
    assert listing(c, bucket) == [] and c.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    # a version whose directory is now an object's name still goes
    v3 = c.put_object(Bucket=bucket, Key="d/k", Body=b"three")["VersionId"]
    dm2 = c.delete_object(Bucket=bucket, Key="d/k")["VersionId"]
    vd = c.put_object(Bucket=bucket, Key="d", Body=b"file")["VersionId"]
    c.delete_object(Bucket=bucket, Key="d/k", VersionId=v3)
    assert listing(c, bucket) == [("d", vd, True, "v"), ("d/k", dm2, True, "dm")]


def test_delete_without_a_live_object_adds_a_marker(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    enable(c, bucket)
    r = c.delete_object(Bucket=bucket, Key="never/was")  # S3 adds a marker whether or not the key exists
    assert r["DeleteMarker"] is True
    m1 = r["VersionId"]
    v = c.put_object(Bucket=bucket, Key="k", Body=b"1")["VersionId"]
    m2 = c.delete_object(Bucket=bucket, Key="k")["VersionId"]
    m3 = c.delete_object(Bucket=bucket, Key="k")["VersionId"]  # a marker on a marker
    assert len({m1, m2, m3}) == 3
    assert listing(c, bucket) == [("k", m3, True, "dm"), ("k", m2, False, "dm"), ("k", v, False, "v"),
                                  ("never/was", m1, True, "dm")]
    assert c.list_objects_v2(Bucket=bucket).get("KeyCount") == 0  # no directory stays behind
    r = c.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "gone"}]})
    assert r["Deleted"][0]["DeleteMarker"] is True
    enable(c, bucket, "Suspended")
    assert c.delete_object(Bucket=bucket, Key="k")["VersionId"] == "null"
    assert c.delete_object(Bucket=bucket, Key="k")["VersionId"] == "null"  # the null marker is replaced
    assert [e[1] for e in listing(c, bucket, Prefix="k")] == ["null", m3, m2, v]


def test_suspended_versioning_and_the_null_version(s3: S3Server, bucket: str) -> None:
    """The user guide's 'Working with objects in a versioning-suspended bucket', step by step."""
    c = s3.client()
    enable(c, bucket)
    v1 = c.put_object(Bucket=bucket, Key="photo.gif", Body=b"v1")["VersionId"]
    enable(c, bucket, "Suspended")
    # adding objects: a PUT stores the null version
    r = c.put_object(Bucket=bucket, Key="photo.gif", Body=b"null-1")
    assert r["VersionId"] == "null"
    assert listing(c, bucket) == [("photo.gif", "null", True, "v"), ("photo.gif", v1, False, "v")]
    # another PUT replaces the null version (it is not kept as a version)
    assert c.put_object(Bucket=bucket, Key="photo.gif", Body=b"null-2")["VersionId"] == "null"
    assert listing(c, bucket) == [("photo.gif", "null", True, "v"), ("photo.gif", v1, False, "v")]
    assert body(c, bucket, "photo.gif", "null") == b"null-2" and body(c, bucket, "photo.gif", v1) == b"v1"
    # deleting: a null delete marker replaces the null version
    r = c.delete_object(Bucket=bucket, Key="photo.gif")
    assert r["DeleteMarker"] is True and r["VersionId"] == "null"
    assert listing(c, bucket) == [("photo.gif", "null", True, "dm"), ("photo.gif", v1, False, "v")]
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=bucket, Key="photo.gif")
    assert code(e) == "NoSuchKey" and headers(e)["x-amz-version-id"] == "null"
    # a version id deletes that version, even while suspended
    c.delete_object(Bucket=bucket, Key="photo.gif", VersionId="null")
    assert body(c, bucket, "photo.gif") == b"v1"
    # an object whose current version has an id: a PUT adds the null version, the id stays
    assert c.put_object(Bucket=bucket, Key="photo.gif", Body=b"null-3")["VersionId"] == "null"
    assert listing(c, bucket) == [("photo.gif", "null", True, "v"), ("photo.gif", v1, False, "v")]
    # enabled again: new ids; the null version stays a noncurrent version
    enable(c, bucket)
    v3 = c.put_object(Bucket=bucket, Key="photo.gif", Body=b"v3")["VersionId"]
    assert listing(c, bucket) == [("photo.gif", v3, True, "v"), ("photo.gif", "null", False, "v"),
                                  ("photo.gif", v1, False, "v")]
    assert body(c, bucket, "photo.gif", "null") == b"null-3"


def _fill(c: Any, bucket: str) -> dict[str, list[str]]:
    """Keys with several versions and markers, some in directories; their ids newest first."""
    enable(c, bucket)
    ids: dict[str, list[str]] = {}
    for key, n in (("aa", 3), ("a-b", 1), ("a/x", 2), ("a/y/z", 1), ("b", 2), ("c d+e%f€", 2)):
        ids[key] = [c.put_object(Bucket=bucket, Key=key, Body=f"{key}{i}".encode())["VersionId"]
                    for i in range(n)][::-1]
    ids["b"].insert(0, c.delete_object(Bucket=bucket, Key="b")["VersionId"])
    ids["a/y/z"].insert(0, c.delete_object(Bucket=bucket, Key="a/y/z")["VersionId"])
    return ids


def test_list_versions_order_delimiter_and_paging(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    ids = _fill(c, bucket)
    full = listing(c, bucket)
    expect = []
    for key in sorted(ids, key=lambda k: k.encode()):
        for i, vid in enumerate(ids[key]):
            marker = key in ("b", "a/y/z") and i == 0
            expect.append((key, vid, i == 0, "dm" if marker else "v"))
    assert full == expect
    for n in (1, 2, 3):  # tiny pages resume inside a key with KeyMarker + VersionIdMarker
        pages = list(c.get_paginator("list_object_versions").paginate(Bucket=bucket, MaxKeys=n))
        assert len(pages) >= len(expect) // n
        assert all(p["IsTruncated"] for p in pages[:-1]) and not pages[-1]["IsTruncated"]
        assert all(len(p.get("Versions", [])) + len(p.get("DeleteMarkers", [])) <= n for p in pages)
        assert listing(c, bucket, MaxKeys=n) == expect
    p = c.list_object_versions(Bucket=bucket, MaxKeys=2)  # order: a-b, a/x, a/y/z, aa, b, c...
    assert p["NextKeyMarker"] == "a/x" and p["NextVersionIdMarker"] == ids["a/x"][0]
    p = c.list_object_versions(Bucket=bucket, KeyMarker="a/x", VersionIdMarker=ids["a/x"][0], MaxKeys=2)
    assert [(v["Key"], v["VersionId"]) for v in p["Versions"]] == [("a/x", ids["a/x"][1])]
    assert [(m["Key"], m["VersionId"], m["IsLatest"]) for m in p["DeleteMarkers"]] == [("a/y/z", ids["a/y/z"][0],
                                                                                         True)]
    p = c.list_object_versions(Bucket=bucket, KeyMarker="a-b")  # a key marker alone: after that key
    assert min(v["Key"] for v in p["Versions"]) == "a/x"
    # Prefix and Delimiter: a/y/ has only a delete marker and no directory left, and is still a prefix
    p = c.list_object_versions(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [x["Prefix"] for x in p["CommonPrefixes"]] == ["a/y/"]
    assert [(v["Key"], v["VersionId"]) for v in p["Versions"]] == [("a/x", v) for v in ids["a/x"]]
    p = c.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [x["Prefix"] for x in p["CommonPrefixes"]] == ["a/"]
    assert "a/x" not in {v["Key"] for v in p["Versions"]}
    p = c.list_object_versions(Bucket=bucket, Delimiter="/", MaxKeys=2)  # a CommonPrefix counts once
    assert p["IsTruncated"] and p["NextKeyMarker"] == "a/" and [x["Prefix"] for x in p["CommonPrefixes"]] == ["a/"]
    assert "NextVersionIdMarker" not in p
    p = c.list_object_versions(Bucket=bucket, Delimiter="/", KeyMarker="a/")
    assert "CommonPrefixes" not in p and p["Versions"][0]["Key"] == "aa"
    p = c.list_object_versions(Bucket=bucket, Delimiter="-")
    assert [x["Prefix"] for x in p["CommonPrefixes"]] == ["a-"]
    with pytest.raises(ClientError) as e:
        c.list_object_versions(Bucket=bucket, VersionIdMarker=ids["aa"][0])
    assert code(e) == "InvalidArgument"


def test_list_versions_encoding_type_url(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    ids = _fill(c, bucket)
    raw: list[bytes] = []
    c.meta.events.register("after-call.s3.ListObjectVersions",
                           lambda http_response, **kw: raw.append(http_response.content))
    key = "c d+e%f€"
    p = c.list_object_versions(Bucket=bucket, Prefix="c ", KeyMarker="b", MaxKeys=1)  # boto3 asks for url
    assert [(v["Key"], v["VersionId"]) for v in p["Versions"]] == [(key, ids[key][0])]
    assert p["Prefix"] == "c " and p["KeyMarker"] == "b" and p["NextKeyMarker"] == key  # decoded by boto3
    xml = raw[-1].decode()
    enc = urllib.parse.quote(key, safe="/")
    assert f"<Key>{enc}</Key>" in xml and f"<NextKeyMarker>{enc}</NextKeyMarker>" in xml
    assert "<Prefix>c%20</Prefix>" in xml and "<EncodingType>url</EncodingType>" in xml
    p = c.list_object_versions(Bucket=bucket, KeyMarker=key, VersionIdMarker=ids[key][0])
    assert [(v["Key"], v["VersionId"]) for v in p["Versions"]] == [(key, ids[key][1])]
    p = c.list_object_versions(Bucket=bucket, Delimiter=" ")
    assert [x["Prefix"] for x in p["CommonPrefixes"]] == ["c "]
    assert "<Delimiter>%20</Delimiter>" in raw[-1].decode()


def test_unversioned_bucket_lists_null_versions(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    c.put_object(Bucket=bucket, Key="x", Body=b"1")
    c.put_object(Bucket=bucket, Key="x", Body=b"2")  # the old one goes to the trash: not a version
    c.put_object(Bucket=bucket, Key="dir/", Body=b"")
    c.put_object(Bucket=bucket, Key="y", Body=b"3")
    c.delete_object(Bucket=bucket, Key="y")
    assert listing(c, bucket) == [("dir/", "null", True, "v"), ("x", "null", True, "v")]
    assert body(c, bucket, "x", "null") == b"2"
    r = c.delete_object(Bucket=bucket, Key="x")
    assert "DeleteMarker" not in r and "VersionId" not in r


def test_delete_objects_with_versions(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    enable(c, bucket)
    v1 = c.put_object(Bucket=bucket, Key="p", Body=b"1")["VersionId"]
    v2 = c.put_object(Bucket=bucket, Key="p", Body=b"2")["VersionId"]
    c.put_object(Bucket=bucket, Key="q", Body=b"q")
    dm = c.delete_object(Bucket=bucket, Key="p")["VersionId"]
    r = c.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "p", "VersionId": v1}, {"Key": "q"}, {"Key": "p", "VersionId": dm},
        {"Key": "p", "VersionId": "bad"}]})
    got = {(d["Key"], d.get("VersionId")): d for d in r["Deleted"]}
    assert set(got) == {("p", v1), ("q", None), ("p", dm)}
    assert "DeleteMarker" not in got[("p", v1)]
    assert got[("q", None)]["DeleteMarker"] is True and got[("q", None)]["DeleteMarkerVersionId"]
    assert got[("p", dm)]["DeleteMarker"] is True and got[("p", dm)]["DeleteMarkerVersionId"] == dm
    assert [(e["Key"], e["VersionId"], e["Code"]) for e in r["Errors"]] == [("p", "bad", "InvalidArgument")]
    assert body(c, bucket, "p") == b"2" and c.head_object(Bucket=bucket, Key="p")["VersionId"] == v2
    qdm = got[("q", None)]["DeleteMarkerVersionId"]
    assert next(e for e in listing(c, bucket) if e[0] == "q") == ("q", qdm, True, "dm")


def test_copy_from_a_version_and_multipart(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    enable(c, bucket)
    v1 = c.put_object(Bucket=bucket, Key="src", Body=b"first", Metadata={"v": "1"})["VersionId"]
    v2 = c.put_object(Bucket=bucket, Key="src", Body=b"second")["VersionId"]
    r = c.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src", "VersionId": v1})
    assert r["CopySourceVersionId"] == v1 and r["VersionId"] not in (v1, v2)
    g = c.get_object(Bucket=bucket, Key="dst")
    assert g["Body"].read() == b"first" and g["Metadata"] == {"v": "1"} and g["VersionId"] == r["VersionId"]
    r = c.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src", "VersionId": v1})
    assert body(c, bucket, "src") == b"first"  # restoring an old version by copying it over the key
    assert [e[1] for e in listing(c, bucket, Prefix="src")] == [r["VersionId"], v2, v1]
    r = c.copy_object(Bucket=bucket, Key="dst2", CopySource={"Bucket": bucket, "Key": "src"})
    assert r["CopySourceVersionId"] == c.head_object(Bucket=bucket, Key="src")["VersionId"]
    dm = c.delete_object(Bucket=bucket, Key="src")["VersionId"]
    with pytest.raises(ClientError) as e:
        c.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "src", "VersionId": dm})
    assert code(e) == "InvalidRequest"
    with pytest.raises(ClientError) as e:
        c.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "src"})
    assert code(e) == "NoSuchKey"
    with pytest.raises(ClientError) as e:
        c.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "src", "VersionId": "0" * 28})
    assert code(e) == "NoSuchVersion"
    # multipart: Complete answers the new version's id; a part copied from a version
    up = c.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    p1 = c.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"a" * (5 * MiB))["ETag"]
    pc = c.upload_part_copy(Bucket=bucket, Key="mp", UploadId=up, PartNumber=2,
                            CopySource={"Bucket": bucket, "Key": "src", "VersionId": v2})
    assert pc["CopySourceVersionId"] == v2
    r = c.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1}, {"PartNumber": 2, "ETag": pc["CopyPartResult"]["ETag"]}]})
    assert r["VersionId"] == c.head_object(Bucket=bucket, Key="mp")["VersionId"] != "null"
    assert body(c, bucket, "mp")[-6:] == b"second"


def test_unversioned_writes_answer_no_version_id(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    assert "VersionId" not in c.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert "VersionId" not in c.copy_object(Bucket=bucket, Key="k2", CopySource={"Bucket": bucket, "Key": "k"})
    up = c.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    e = c.upload_part(Bucket=bucket, Key="m", UploadId=up, PartNumber=1, Body=b"z")["ETag"]
    r = c.complete_multipart_upload(Bucket=bucket, Key="m", UploadId=up,
                                    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
    assert "VersionId" not in r
    enable(c, bucket, "Suspended")
    assert c.put_object(Bucket=bucket, Key="k", Body=b"y")["VersionId"] == "null"
    assert c.get_object(Bucket=bucket, Key="k2")["VersionId"] == "null"


def test_locked_versions_and_governance_bypass(s3: S3Server, bucket: str, other: Any) -> None:
    c = s3.client()
    enable(c, bucket)
    c.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    with pytest.raises(ClientError) as e:
        enable(c, bucket, "Suspended")
    assert code(e) == "InvalidBucketState"
    v1 = c.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    until = datetime.now(UTC) + timedelta(days=1)
    c.put_object_retention(Bucket=bucket, Key="k", VersionId=v1,
                           Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until})
    v2 = c.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]  # a locked version may be superseded
    dm = c.delete_object(Bucket=bucket, Key="k")["VersionId"]  # and hidden by a delete marker
    assert [e[1] for e in listing(c, bucket)] == [dm, v2, v1]
    with pytest.raises(ClientError) as e:
        c.delete_object(Bucket=bucket, Key="k", VersionId=v1)
    assert code(e) == "AccessDenied"
    c.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": ["vother"]}, "Action": ["s3:DeleteObjectVersion"],
        "Resource": [f"arn:aws:s3:::{bucket}/*"]}]}))
    with pytest.raises(ClientError) as e:  # allowed to delete versions, not to bypass governance
        other.delete_object(Bucket=bucket, Key="k", VersionId=v1, BypassGovernanceRetention=True)
    assert code(e) == "AccessDenied"
    c.delete_object(Bucket=bucket, Key="k", VersionId=v1, BypassGovernanceRetention=True)  # the owner may
    assert [e[1] for e in listing(c, bucket)] == [dm, v2]
    other.delete_object(Bucket=bucket, Key="k", VersionId=dm)
    assert body(c, bucket, "k") == b"two"
