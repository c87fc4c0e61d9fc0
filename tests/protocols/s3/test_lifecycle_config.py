"""Put/Get/DeleteBucketLifecycleConfiguration through boto3 and aws-cli: AWS's XML in and out, the
validation AWS does, and the rules core.fs stores for its lifecycle engine (read back through core.fs)."""

from __future__ import annotations

import datetime
import json
import subprocess
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from core.fs import open_volume
from protocols.s3 import lifecycle
from protocols.s3.errors import S3Error
from tests.protocols.s3.conftest import S3Server, cli
from tests.protocols.s3.test_clients import BIN

pytestmark = pytest.mark.timeout(180)


def code(fn: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(ClientError) as e:
        fn(*args, **kw)
    return str(e.value.response["Error"]["Code"])


def put(c: Any, bucket: str, *rules: dict[str, Any]) -> None:
    c.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": list(rules)})


def core_rules(s3: S3Server, bucket: str) -> list[dict[str, Any]]:
    vol = open_volume(str(s3.data))  # another process's view of the store, as the lifecycle engine's
    try:
        return list(vol.fs.tree_policy(vol.fs.resolve(f"/{bucket}").ino).lifecycle or [])
    finally:
        vol.close()


MIDNIGHT = datetime.datetime(2031, 3, 1, tzinfo=datetime.UTC)


def test_put_get_delete_roundtrip(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    assert code(c.get_bucket_lifecycle_configuration, Bucket=bucket) == "NoSuchLifecycleConfiguration"
    rules = [
        {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 30}},
        {"ID": "tagged", "Filter": {"Tag": {"Key": "tmp", "Value": "yes"}}, "Status": "Disabled",
         "Expiration": {"Date": MIDNIGHT}},
        {"ID": "and", "Filter": {"And": {"Prefix": "data/", "Tags": [{"Key": "a", "Value": "1"},
                                                                      {"Key": "b", "Value": "2"}],
                                         "ObjectSizeGreaterThan": 10, "ObjectSizeLessThan": 5000}},
         "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 7, "NewerNoncurrentVersions": 3}},
        {"ID": "markers", "Filter": {"Prefix": ""}, "Status": "Enabled",
         "Expiration": {"ExpiredObjectDeleteMarker": True},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}},
        {"ID": "big", "Filter": {"ObjectSizeGreaterThan": 1000000}, "Status": "Enabled",
         "Expiration": {"Days": 1}},
    ]
    put(c, bucket, *rules)
    assert c.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == rules
    got = {r["id"]: r for r in core_rules(s3, bucket)}
    assert got["logs"] == {"id": "logs", "enabled": True, "prefix": "logs/", "tags": {}, "size_gt": None,
                           "size_lt": None, "expire_days": 30, "expire_date": None,
                           "expired_object_delete_marker": False, "noncurrent_days": None, "newer_noncurrent": None,
                           "abort_multipart_days": None}
    assert (got["tagged"]["enabled"], got["tagged"]["tags"], got["tagged"]["expire_date"]) == \
        (False, {"tmp": "yes"}, "2031-03-01T00:00:00Z")
    assert (got["and"]["prefix"], got["and"]["tags"], got["and"]["size_gt"], got["and"]["size_lt"],
            got["and"]["noncurrent_days"], got["and"]["newer_noncurrent"]) == ("data/", {"a": "1", "b": "2"}, 10,
                                                                               5000, 7, 3)
    assert got["markers"]["expired_object_delete_marker"] is True and got["markers"]["abort_multipart_days"] == 2
    # a put replaces the whole configuration
    put(c, bucket, rules[0])
    assert c.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == [rules[0]]
    c.delete_bucket_lifecycle(Bucket=bucket)
    assert code(c.get_bucket_lifecycle_configuration, Bucket=bucket) == "NoSuchLifecycleConfiguration"
    assert core_rules(s3, bucket) == []
    c.delete_bucket_lifecycle(Bucket=bucket)  # idempotent


def test_legacy_prefix_and_generated_id(s3: S3Server, bucket: str) -> None:
    body = (b'<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><Prefix>old/</Prefix>'
            b"<Status>Enabled</Status><Expiration><Days>3</Days></Expiration></Rule></LifecycleConfiguration>")
    rules = lifecycle.parse(body)
    assert rules[0]["prefix"] == "old/" and len(rules[0]["id"]) == 32
    c = s3.client()
    c.put_bucket_lifecycle(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"Prefix": "old/", "Status": "Enabled", "Expiration": {"Days": 3}}]})  # the deprecated API: top-level Prefix
    got = c.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert got[0]["Filter"] == {"Prefix": "old/"} and got[0]["Expiration"] == {"Days": 3} and got[0]["ID"]


@pytest.mark.parametrize("rule, want", [
    ({"ID": "x" * 256, "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 1}}, "InvalidArgument"),
    ({"ID": "a", "Filter": {"Prefix": ""}, "Status": "Enabled"}, "InvalidArgument"),  # no action
    ({"ID": "a", "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 0}}, "InvalidArgument"),
    ({"ID": "a", "Filter": {"Prefix": ""}, "Status": "Enabled",
      "Expiration": {"Date": datetime.datetime(2031, 3, 1, 12, tzinfo=datetime.UTC)}}, "InvalidArgument"),
    ({"ID": "a", "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 1, "Date": MIDNIGHT}},
     "MalformedXML"),
    ({"ID": "a", "Filter": {"Prefix": ""}, "Status": "Maybe", "Expiration": {"Days": 1}}, "MalformedXML"),
    ({"ID": "a", "Filter": {"Prefix": "", "Tag": {"Key": "k", "Value": "v"}}, "Status": "Enabled",
      "Expiration": {"Days": 1}}, "MalformedXML"),
    ({"ID": "a", "Filter": {"Prefix": ""}, "Prefix": "", "Status": "Enabled", "Expiration": {"Days": 1}},
     "MalformedXML"),
    ({"ID": "a", "Status": "Enabled", "Expiration": {"Days": 1}}, "MalformedXML"),  # neither Filter nor Prefix
    ({"ID": "a", "Filter": {"Prefix": ""}, "Status": "Enabled",
      "NoncurrentVersionExpiration": {"NoncurrentDays": 0}}, "InvalidArgument"),
    ({"ID": "a", "Filter": {"Prefix": ""}, "Status": "Enabled",
      "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 101}}, "InvalidArgument"),
    ({"ID": "a", "Filter": {"Tag": {"Key": "k", "Value": "v"}}, "Status": "Enabled",
      "Expiration": {"ExpiredObjectDeleteMarker": True}}, "InvalidRequest"),
    ({"ID": "a", "Filter": {"Tag": {"Key": "k", "Value": "v"}}, "Status": "Enabled",
      "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}, "InvalidRequest"),
    ({"ID": "a", "Filter": {"And": {"ObjectSizeGreaterThan": 100, "ObjectSizeLessThan": 100}}, "Status": "Enabled",
      "Expiration": {"Days": 1}}, "InvalidRequest"),
    ({"ID": "a", "Filter": {"Prefix": ""}, "Status": "Enabled",
      "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}, "NotImplemented"),
])
def test_validation(s3: S3Server, bucket: str, rule: dict[str, Any], want: str) -> None:
    c = s3.client(retries={"max_attempts": 1})
    assert code(put, c, bucket, rule) == want
    assert code(c.get_bucket_lifecycle_configuration, Bucket=bucket) == "NoSuchLifecycleConfiguration"


def test_ids_unique_and_rule_count(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    r = {"ID": "same", "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 1}}
    assert code(put, c, bucket, r, {**r, "Filter": {"Prefix": "x/"}}) == "InvalidArgument"
    many = [{**r, "ID": f"r{i}", "Filter": {"Prefix": f"p{i}/"}} for i in range(1001)]
    assert code(put, c, bucket, *many) == "InvalidArgument"
    put(c, bucket, *many[:1000])
    assert len(c.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]) == 1000


def test_parser_refuses_junk() -> None:
    for body in (b"<LifecycleConfiguration/>", b"<Nope><Rule/></Nope>", b"not xml",
                 b"<LifecycleConfiguration><Rule><Filter/><Status>Enabled</Status><Expiration><Days>x</Days>"
                 b"</Expiration></Rule></LifecycleConfiguration>",
                 b"<LifecycleConfiguration><Rule><Filter/><Status>Enabled</Status><Bogus/><Expiration><Days>1"
                 b"</Days></Expiration></Rule></LifecycleConfiguration>"):
        with pytest.raises(S3Error) as e:
            lifecycle.parse(body)
        assert e.value.code == "MalformedXML", body


def test_only_the_owner(s3: S3Server, bucket: str) -> None:
    """Lifecycle configuration is the bucket owner's: another user is refused (authz)."""
    u = json.loads(cli(s3.data, "user", "add", "lcother", "--json"))
    time.sleep(1.2)
    other = boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=u["access_key"],
                         aws_secret_access_key=u["secret_key"], region_name="us-east-1")
    r = {"ID": "a", "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 1}}
    assert code(put, other, bucket, r) == "AccessDenied"
    put(s3.client(), bucket, r)
    assert code(other.get_bucket_lifecycle_configuration, Bucket=bucket) == "AccessDenied"
    assert code(other.delete_bucket_lifecycle, Bucket=bucket) == "AccessDenied"


def aws(s3: S3Server, *args: str) -> str:
    p = subprocess.run([str(BIN / "aws"), "--endpoint-url", s3.endpoint, "--output", "json", *args], env=s3.env(),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_aws_cli(s3: S3Server, bucket: str) -> None:
    cfg = {"Rules": [{"ID": "tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 2},
                      "NoncurrentVersionExpiration": {"NoncurrentDays": 5},
                      "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]}
    aws(s3, "s3api", "put-bucket-lifecycle-configuration", "--bucket", bucket, "--lifecycle-configuration",
        json.dumps(cfg))
    assert json.loads(aws(s3, "s3api", "get-bucket-lifecycle-configuration", "--bucket", bucket)) == cfg
    aws(s3, "s3api", "delete-bucket-lifecycle", "--bucket", bucket)
    p = subprocess.run([str(BIN / "aws"), "--endpoint-url", s3.endpoint, "s3api", "get-bucket-lifecycle-configuration",
                        "--bucket", bucket], env=s3.env(), capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "NoSuchLifecycleConfiguration" in p.stderr
