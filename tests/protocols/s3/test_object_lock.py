"""S3 Object Lock through boto3 and aws-cli: the bucket's configuration, retention and legal hold of
versions, the lock headers of writes and reads, governance bypass (with and without the permission),
compliance, and what a locked version survives."""

from __future__ import annotations

import datetime
import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.protocols.s3.conftest import S3Server, cli
from tests.protocols.s3.test_clients import BIN

pytestmark = pytest.mark.timeout(180)
_n = iter(range(10**6))


def code(fn: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(ClientError) as e:
        fn(*args, **kw)
    return str(e.value.response["Error"]["Code"])


def status(fn: Any, *args: Any, **kw: Any) -> int:
    with pytest.raises(ClientError) as e:
        fn(*args, **kw)
    return int(e.value.response["ResponseMetadata"]["HTTPStatusCode"])


def later(**kw: float) -> datetime.datetime:
    return (datetime.datetime.now(datetime.UTC) + datetime.timedelta(**kw)).replace(microsecond=0)


@pytest.fixture(scope="module")
def others(s3: S3Server) -> Iterator[dict[str, Any]]:
    """lockbob and lockcarol: users who are not the buckets' owner (the default client's user)."""
    out: dict[str, Any] = {}
    for name in ("lockbob", "lockcarol"):
        u = json.loads(cli(s3.data, "user", "add", name, "--json"))
        out[name] = boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=u["access_key"],
                                 aws_secret_access_key=u["secret_key"], region_name="us-east-1",
                                 config=Config(retries={"max_attempts": 1}))
    time.sleep(1.2)  # the server's identity cache follows changes within 1 s
    yield out


@pytest.fixture
def c(s3: S3Server) -> Any:
    return s3.client(retries={"max_attempts": 1})


@pytest.fixture
def locked(c: Any) -> str:
    name = f"lock{next(_n)}-{time.time_ns() % 10**9}"
    c.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def test_bucket_created_with_object_lock(c: Any, locked: str) -> None:
    assert c.get_bucket_versioning(Bucket=locked)["Status"] == "Enabled"
    assert c.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"] == {"ObjectLockEnabled":
                                                                                        "Enabled"}
    r = c.put_object(Bucket=locked, Key="k", Body=b"x")
    assert r["VersionId"] != "null"
    h = c.head_object(Bucket=locked, Key="k")
    assert h["ObjectLockLegalHoldStatus"] == "OFF" and "ObjectLockMode" not in h
    # a bucket with Object Lock keeps versioning on
    assert code(c.put_bucket_versioning, Bucket=locked,
                VersioningConfiguration={"Status": "Suspended"}) == "InvalidBucketState"


def test_lock_configuration_put_get_and_errors(c: Any, bucket: str, locked: str) -> None:
    assert code(c.get_object_lock_configuration, Bucket=bucket) == "ObjectLockConfigurationNotFoundError"
    cfg = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}}
    with pytest.raises(ClientError) as e:
        c.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=cfg)
    assert e.value.response["Error"]["Code"] == "InvalidBucketState"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    c.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration=cfg)
    assert c.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"] == cfg
    years = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 2}}}
    c.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration=years)
    assert c.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"] == years
    for bad in ({"Mode": "GOVERNANCE", "Days": 1, "Years": 1}, {"Mode": "SOMETIMES", "Days": 1},
                {"Mode": "GOVERNANCE"}, {"Days": 3}):
        assert code(c.put_object_lock_configuration, Bucket=locked, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": bad}}) == "MalformedXML", bad
    assert code(c.put_object_lock_configuration, Bucket=locked, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 0}}}) == \
        "InvalidArgument"
    assert c.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"] == years  # unchanged
    # an existing bucket gets Object Lock once versioning is enabled
    c.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    c.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    assert c.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"] == {"ObjectLockEnabled":
                                                                                        "Enabled"}


def test_retention_needs_object_lock(c: Any, bucket: str) -> None:
    c.put_object(Bucket=bucket, Key="k", Body=b"x")
    for fn, kw in ((c.put_object_retention, {"Retention": {"Mode": "GOVERNANCE", "RetainUntilDate": later(days=1)}}),
                   (c.get_object_retention, {}), (c.put_object_legal_hold, {"LegalHold": {"Status": "ON"}}),
                   (c.get_object_legal_hold, {})):
        with pytest.raises(ClientError) as e:
            fn(Bucket=bucket, Key="k", **kw)
        assert e.value.response["Error"]["Code"] == "InvalidRequest"
        assert "missing Object Lock Configuration" in e.value.response["Error"]["Message"]
    assert code(c.put_object, Bucket=bucket, Key="j", Body=b"x", ObjectLockMode="GOVERNANCE",
                ObjectLockRetainUntilDate=later(days=1)) == "InvalidRequest"
    assert code(c.head_object, Bucket=bucket, Key="j") == "404"  # refused before anything was written


def test_governance_retention(c: Any, locked: str) -> None:
    v1 = c.put_object(Bucket=locked, Key="g", Body=b"one")["VersionId"]
    assert code(c.get_object_retention, Bucket=locked, Key="g") == "NoSuchObjectLockConfiguration"
    until = later(days=2)
    c.put_object_retention(Bucket=locked, Key="g", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until})
    r = c.get_object_retention(Bucket=locked, Key="g", VersionId=v1)["Retention"]
    assert r == {"Mode": "GOVERNANCE", "RetainUntilDate": until}
    h = c.head_object(Bucket=locked, Key="g")
    assert h["ObjectLockMode"] == "GOVERNANCE" and h["ObjectLockRetainUntilDate"] == until
    assert c.get_object(Bucket=locked, Key="g")["ObjectLockMode"] == "GOVERNANCE"
    c.put_object_retention(Bucket=locked, Key="g", Retention={"Mode": "GOVERNANCE",  # extending: anyone allowed
                                                              "RetainUntilDate": later(days=3)})
    shorter = {"Mode": "GOVERNANCE", "RetainUntilDate": later(days=1)}
    assert code(c.put_object_retention, Bucket=locked, Key="g", Retention=shorter) == "AccessDenied"
    assert code(c.delete_object, Bucket=locked, Key="g", VersionId=v1) == "AccessDenied"
    c.put_object_retention(Bucket=locked, Key="g", Retention=shorter, BypassGovernanceRetention=True)
    assert c.get_object_retention(Bucket=locked, Key="g")["Retention"]["RetainUntilDate"] == \
        shorter["RetainUntilDate"]
    assert code(c.put_object_retention, Bucket=locked, Key="g", Retention={
        "Mode": "GOVERNANCE", "RetainUntilDate": later(days=-1)}) == "InvalidArgument"
    # removing it (an empty Retention) needs the bypass too; then the version can go
    assert code(c.put_object_retention, Bucket=locked, Key="g", Retention={}) == "AccessDenied"
    c.put_object_retention(Bucket=locked, Key="g", Retention={}, BypassGovernanceRetention=True)
    assert code(c.get_object_retention, Bucket=locked, Key="g") == "NoSuchObjectLockConfiguration"
    c.delete_object(Bucket=locked, Key="g", VersionId=v1)
    assert code(c.head_object, Bucket=locked, Key="g") == "404"


def test_governance_delete_with_bypass(c: Any, locked: str) -> None:
    v1 = c.put_object(Bucket=locked, Key="d", Body=b"one", ObjectLockMode="GOVERNANCE",
                      ObjectLockRetainUntilDate=later(days=1))["VersionId"]
    assert code(c.delete_object, Bucket=locked, Key="d", VersionId=v1) == "AccessDenied"
    c.delete_object(Bucket=locked, Key="d", VersionId=v1, BypassGovernanceRetention=True)
    assert not c.list_object_versions(Bucket=locked, Prefix="d").get("Versions")


def test_compliance_cannot_be_shortened(c: Any, locked: str) -> None:
    v1 = c.put_object(Bucket=locked, Key="c", Body=b"one")["VersionId"]
    until = later(days=2)
    c.put_object_retention(Bucket=locked, Key="c", Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until})
    for ret in ({"Mode": "COMPLIANCE", "RetainUntilDate": later(days=1)},
                {"Mode": "GOVERNANCE", "RetainUntilDate": later(days=5)}, {}):
        for bypass in (False, True):
            assert code(c.put_object_retention, Bucket=locked, Key="c", Retention=ret,
                        BypassGovernanceRetention=bypass) == "AccessDenied", (ret, bypass)
    assert code(c.delete_object, Bucket=locked, Key="c", VersionId=v1, BypassGovernanceRetention=True) == \
        "AccessDenied"
    c.put_object_retention(Bucket=locked, Key="c", Retention={"Mode": "COMPLIANCE",
                                                              "RetainUntilDate": later(days=4)})
    assert c.get_object_retention(Bucket=locked, Key="c")["Retention"]["Mode"] == "COMPLIANCE"


def test_bypass_needs_the_permission(s3: S3Server, c: Any, locked: str, others: dict[str, Any]) -> None:
    """lockbob may put retentions (a bucket policy) but not bypass; lockcarol may also bypass."""
    arn = f"arn:aws:s3:::{locked}/*"
    stmts = [{"Effect": "Allow", "Principal": {"AWS": [who]}, "Action": actions, "Resource": arn}
             for who, actions in (("lockbob", ["s3:PutObjectRetention", "s3:GetObjectRetention",
                                               "s3:DeleteObjectVersion", "s3:DeleteObject"]),
                                  ("lockcarol", ["s3:PutObjectRetention", "s3:BypassGovernanceRetention",
                                                 "s3:DeleteObjectVersion"]))]
    c.put_bucket_policy(Bucket=locked, Policy=json.dumps({"Version": "2012-10-17", "Statement": stmts}))
    bob, carol = others["lockbob"], others["lockcarol"]
    v1 = c.put_object(Bucket=locked, Key="p", Body=b"one")["VersionId"]
    c.put_object_retention(Bucket=locked, Key="p", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later(days=3)})
    shorter = {"Mode": "GOVERNANCE", "RetainUntilDate": later(days=1)}
    bob.put_object_retention(Bucket=locked, Key="p", Retention={"Mode": "GOVERNANCE",  # extending is fine
                                                                "RetainUntilDate": later(days=4)})
    assert code(bob.put_object_retention, Bucket=locked, Key="p", Retention=shorter,
                BypassGovernanceRetention=True) == "AccessDenied"
    assert code(bob.delete_object, Bucket=locked, Key="p", VersionId=v1, BypassGovernanceRetention=True) == \
        "AccessDenied"
    assert c.get_object_retention(Bucket=locked, Key="p")["Retention"]["RetainUntilDate"] > later(days=3, hours=12)
    carol.put_object_retention(Bucket=locked, Key="p", Retention=shorter, BypassGovernanceRetention=True)
    assert c.get_object_retention(Bucket=locked, Key="p")["Retention"]["RetainUntilDate"] == \
        shorter["RetainUntilDate"]
    carol.delete_object(Bucket=locked, Key="p", VersionId=v1, BypassGovernanceRetention=True)
    assert code(c.head_object, Bucket=locked, Key="p") == "404"


def test_legal_hold(c: Any, locked: str) -> None:
    v1 = c.put_object(Bucket=locked, Key="h", Body=b"one")["VersionId"]
    assert c.get_object_legal_hold(Bucket=locked, Key="h")["LegalHold"] == {"Status": "OFF"}
    c.put_object_legal_hold(Bucket=locked, Key="h", LegalHold={"Status": "ON"})
    assert c.get_object_legal_hold(Bucket=locked, Key="h", VersionId=v1)["LegalHold"] == {"Status": "ON"}
    assert c.head_object(Bucket=locked, Key="h")["ObjectLockLegalHoldStatus"] == "ON"
    for bypass in (False, True):  # a legal hold has no bypass
        assert code(c.delete_object, Bucket=locked, Key="h", VersionId=v1, BypassGovernanceRetention=bypass) == \
            "AccessDenied"
    v2 = c.put_object(Bucket=locked, Key="h", Body=b"two")["VersionId"]  # a new version: the held one stays
    assert c.get_object(Bucket=locked, Key="h", VersionId=v1)["Body"].read() == b"one"
    assert c.get_object_legal_hold(Bucket=locked, Key="h", VersionId=v1)["LegalHold"] == {"Status": "ON"}
    assert c.get_object_legal_hold(Bucket=locked, Key="h", VersionId=v2)["LegalHold"] == {"Status": "OFF"}
    assert code(c.put_object_legal_hold, Bucket=locked, Key="h", LegalHold={"Status": "MAYBE"}) == "MalformedXML"
    c.put_object_legal_hold(Bucket=locked, Key="h", VersionId=v1, LegalHold={"Status": "OFF"})
    c.delete_object(Bucket=locked, Key="h", VersionId=v1)
    assert [v["VersionId"] for v in c.list_object_versions(Bucket=locked, Prefix="h")["Versions"]] == [v2]
    assert code(c.get_object_legal_hold, Bucket=locked, Key="h", VersionId=v1) == "NoSuchVersion"


def test_default_retention_applies_to_new_writes(c: Any, locked: str) -> None:
    c.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    before = datetime.datetime.now(datetime.UTC)
    c.put_object(Bucket=locked, Key="n", Body=b"new")
    r = c.get_object_retention(Bucket=locked, Key="n")["Retention"]
    assert r["Mode"] == "GOVERNANCE"
    assert abs((r["RetainUntilDate"] - before).total_seconds() - 86400) < 60
    c.copy_object(Bucket=locked, Key="copied", CopySource={"Bucket": locked, "Key": "n"})
    assert c.get_object_retention(Bucket=locked, Key="copied")["Retention"]["Mode"] == "GOVERNANCE"
    # explicit headers win over the default
    c.put_object(Bucket=locked, Key="x", Body=b"x", ObjectLockMode="COMPLIANCE",
                 ObjectLockRetainUntilDate=later(days=3), ObjectLockLegalHoldStatus="ON")
    h = c.head_object(Bucket=locked, Key="x")
    assert (h["ObjectLockMode"], h["ObjectLockLegalHoldStatus"]) == ("COMPLIANCE", "ON")
    assert h["ObjectLockRetainUntilDate"] > later(days=2)


def test_locked_version_survives_plain_delete(c: Any, locked: str) -> None:
    v1 = c.put_object(Bucket=locked, Key="s", Body=b"keep me", ObjectLockMode="GOVERNANCE",
                      ObjectLockRetainUntilDate=later(days=1))["VersionId"]
    r = c.delete_object(Bucket=locked, Key="s")
    assert r["DeleteMarker"] is True
    assert code(c.head_object, Bucket=locked, Key="s") == "404"
    vs = c.list_object_versions(Bucket=locked, Prefix="s")
    assert [v["VersionId"] for v in vs["Versions"]] == [v1]
    assert [m["VersionId"] for m in vs["DeleteMarkers"]] == [r["VersionId"]]
    assert c.get_object(Bucket=locked, Key="s", VersionId=v1)["Body"].read() == b"keep me"
    assert c.get_object_retention(Bucket=locked, Key="s", VersionId=v1)["Retention"]["Mode"] == "GOVERNANCE"
    assert code(c.delete_object, Bucket=locked, Key="s", VersionId=v1) == "AccessDenied"
    # an overwrite keeps it too
    c.delete_object(Bucket=locked, Key="s", VersionId=r["VersionId"])  # the marker goes: v1 is current again
    assert c.get_object(Bucket=locked, Key="s")["Body"].read() == b"keep me"
    c.put_object(Bucket=locked, Key="s", Body=b"newer")
    assert c.get_object(Bucket=locked, Key="s", VersionId=v1)["Body"].read() == b"keep me"


def test_lock_headers_on_writes(c: Any, locked: str) -> None:
    assert code(c.put_object, Bucket=locked, Key="w", Body=b"x", ObjectLockMode="GOVERNANCE") == "InvalidArgument"
    assert code(c.put_object, Bucket=locked, Key="w", Body=b"x", ObjectLockMode="GOVERNANCE",
                ObjectLockRetainUntilDate=later(days=-1)) == "InvalidArgument"
    assert code(c.put_object, Bucket=locked, Key="w", Body=b"x", ObjectLockLegalHoldStatus="MAYBE") == \
        "InvalidArgument"
    assert code(c.head_object, Bucket=locked, Key="w") == "404"
    until = later(days=1)
    up = c.create_multipart_upload(Bucket=locked, Key="mp", ObjectLockMode="GOVERNANCE",
                                   ObjectLockRetainUntilDate=until, ObjectLockLegalHoldStatus="ON")
    part = c.upload_part(Bucket=locked, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"p" * 100)
    c.complete_multipart_upload(Bucket=locked, Key="mp", UploadId=up["UploadId"],
                                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    h = c.head_object(Bucket=locked, Key="mp")
    assert (h["ObjectLockMode"], h["ObjectLockRetainUntilDate"], h["ObjectLockLegalHoldStatus"]) == \
        ("GOVERNANCE", until, "ON")
    c.copy_object(Bucket=locked, Key="mp2", CopySource={"Bucket": locked, "Key": "mp"},
                  ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)
    h = c.head_object(Bucket=locked, Key="mp2")
    assert h["ObjectLockMode"] == "COMPLIANCE" and h["ObjectLockLegalHoldStatus"] == "OFF"  # not the source's


def test_only_the_owner_sets_lock_configuration(c: Any, locked: str, others: dict[str, Any]) -> None:
    bob = others["lockbob"]
    assert code(bob.put_object_lock_configuration, Bucket=locked, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 9}}}) == \
        "AccessDenied"
    assert code(bob.get_object_lock_configuration, Bucket=locked) == "AccessDenied"
    c.put_object(Bucket=locked, Key="o", Body=b"x")
    assert code(bob.put_object_retention, Bucket=locked, Key="o", Retention={
        "Mode": "GOVERNANCE", "RetainUntilDate": later(days=1)}) == "AccessDenied"
    assert code(bob.put_object_legal_hold, Bucket=locked, Key="o", LegalHold={"Status": "ON"}) == "AccessDenied"


def aws(s3: S3Server, *args: str) -> str:
    p = subprocess.run([str(BIN / "aws"), "--endpoint-url", s3.endpoint, "--output", "json", *args], env=s3.env(),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_aws_cli(s3: S3Server, c: Any, locked: str) -> None:
    aws(s3, "s3api", "put-object-lock-configuration", "--bucket", locked, "--object-lock-configuration",
        json.dumps({"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE",
                                                                                  "Days": 7}}}))
    got = json.loads(aws(s3, "s3api", "get-object-lock-configuration", "--bucket", locked))
    assert got["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 7}
    c.put_object(Bucket=locked, Key="cli", Body=b"x")
    until = later(days=10)
    aws(s3, "s3api", "put-object-retention", "--bucket", locked, "--key", "cli", "--retention",
        json.dumps({"Mode": "GOVERNANCE", "RetainUntilDate": until.strftime("%Y-%m-%dT%H:%M:%SZ")}))
    got = json.loads(aws(s3, "s3api", "get-object-retention", "--bucket", locked, "--key", "cli"))
    assert got["Retention"]["Mode"] == "GOVERNANCE"
    assert datetime.datetime.fromisoformat(got["Retention"]["RetainUntilDate"].replace("Z", "+00:00")) == until
    aws(s3, "s3api", "put-object-legal-hold", "--bucket", locked, "--key", "cli", "--legal-hold", "Status=ON")
    assert json.loads(aws(s3, "s3api", "get-object-legal-hold", "--bucket", locked, "--key", "cli")) == \
        {"LegalHold": {"Status": "ON"}}
