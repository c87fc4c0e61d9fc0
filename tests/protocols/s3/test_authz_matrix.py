"""The access matrix of issue 9: owner / group member / other user / admin / anonymous x read, write,
delete, list, ACL and policy operations x policy and ACL variants, through S3 (boto3 and plain HTTP),
and the same decision through core.fs with the same credentials wherever S3 adds nothing on top."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from core.errors import CoreError
from core.fs import ANONYMOUS, Cred, open_volume
from tests.protocols.s3.conftest import S3Server, cli

WHO = ("owner", "member", "other", "admin", "anon")
OPS = ("get", "put", "delete", "list", "get_acl", "put_policy")
Y, N = True, False

# variant -> principal -> allowed, in OPS order
EXPECT: dict[str, dict[str, tuple[bool, ...]]] = {
    "private": {"owner": (Y, Y, Y, Y, Y, Y), "member": (N,) * 6, "other": (N,) * 6, "admin": (Y,) * 6,
                "anon": (N,) * 6},
    "group": {"owner": (Y, Y, Y, Y, Y, Y), "member": (Y, Y, Y, Y, N, N), "other": (N,) * 6, "admin": (Y,) * 6,
              "anon": (N,) * 6},
    "public-read": {"owner": (Y, Y, Y, Y, Y, Y), "member": (Y, N, N, Y, N, N), "other": (Y, N, N, Y, N, N),
                    "admin": (Y,) * 6, "anon": (Y, N, N, Y, N, N)},
    "grant-other": {"owner": (Y, Y, Y, Y, Y, Y), "member": (N,) * 6, "other": (Y, N, N, Y, Y, N),
                    "admin": (Y,) * 6, "anon": (N,) * 6},
    "policy-other": {"owner": (Y, Y, Y, Y, Y, Y), "member": (N,) * 6, "other": (Y, Y, Y, Y, N, N),
                     "admin": (Y,) * 6, "anon": (N,) * 6},
    "policy-deny": {"owner": (N, N, N, Y, Y, Y), "member": (N,) * 6, "other": (N,) * 6, "admin": (Y,) * 6,
                    "anon": (N,) * 6},
}
USER_OF = {"owner": "mx-owner", "member": "mx-member", "other": "mx-other", "admin": "mx-admin"}


@pytest.fixture(scope="module")
def clients(s3: S3Server) -> Iterator[dict[str, Any]]:
    cli(s3.data, "group", "add", "mxteam")
    out: dict[str, Any] = {}
    for who, name in USER_OF.items():
        u = json.loads(cli(s3.data, "user", "add", name, "--json", *(["--admin"] if who == "admin" else [])))
        out[who] = boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=u["access_key"],
                                aws_secret_access_key=u["secret_key"], region_name="us-east-1",
                                config=Config(retries={"max_attempts": 1}))
    for name in ("mx-owner", "mx-member"):
        cli(s3.data, "group", "adduser", "mxteam", name)
    time.sleep(1.2)  # the server's identity cache follows changes within 1 s
    yield out


def _policy(bucket: str, effect: str, principal: object, actions: list[str]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": effect, "Principal": principal, "Action": actions,
         "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]})


def variant_policy(bucket: str, variant: str) -> str:
    """The variant's bucket policy; put_policy puts it again, so the matrix stays what it tests."""
    if variant == "policy-other":
        return _policy(bucket, "Allow", {"AWS": "mx-other"}, ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                                               "s3:ListBucket"])
    if variant == "policy-deny":
        return _policy(bucket, "Deny", "*", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"])
    return _policy(bucket, "Deny", {"AWS": "mx-member"}, ["s3:PutObjectTagging"])  # changes nothing tested


def setup_variant(s3: S3Server, owner: Any, variant: str) -> str:
    bucket = f"mx-{variant}"
    owner.create_bucket(Bucket=bucket)
    owner.put_object(Bucket=bucket, Key="obj", Body=b"data")
    for who in WHO:
        owner.put_object(Bucket=bucket, Key=f"victim-{who}", Body=b"x")
    if variant == "group":  # shared through the file system: group mxteam, group-writable
        with open_volume(str(s3.data)) as vol:
            team = vol.identity.group("mxteam")
            assert team is not None
            for path, mode in ((f"/{bucket}", 0o2770), (f"/{bucket}/obj", 0o660)):
                vol.fs.setattr(vol.fs.resolve(path).ino, gid=team.gid, mode=mode)
            for who in WHO:
                vol.fs.setattr(vol.fs.resolve(f"/{bucket}/victim-{who}").ino, gid=team.gid, mode=0o660)
    elif variant == "public-read":
        owner.put_bucket_acl(Bucket=bucket, ACL="public-read")
        owner.put_object_acl(Bucket=bucket, Key="obj", ACL="public-read")
    elif variant == "grant-other":
        owner.put_bucket_acl(Bucket=bucket, GrantRead='id="mx-other"', GrantReadACP='id="mx-other"')
        owner.put_object_acl(Bucket=bucket, Key="obj", GrantRead='id="mx-other"')
    elif variant.startswith("policy-"):
        owner.put_bucket_policy(Bucket=bucket, Policy=variant_policy(bucket, variant))
    return bucket


def s3_op(s3: S3Server, client: Any, op: str, bucket: str, who: str, policy: str) -> bool:
    """Run one operation as ``who``; True when S3 allowed it, False on AccessDenied."""
    if client is None:
        path, method, body = {
            "get": ("/obj", "GET", None), "put": (f"/new-{who}", "PUT", b"n"), "delete": (f"/victim-{who}", "DELETE",
                                                                                   None),
            "list": ("?list-type=2", "GET", None), "get_acl": ("?acl", "GET", None),
            "put_policy": ("?policy", "PUT", policy.encode())}[op]
        r = requests.request(method, f"{s3.endpoint}/{bucket}{path}", data=body, timeout=10)
        assert r.status_code < 300 or r.status_code == 403, (op, r.status_code, r.text)
        return r.status_code < 300
    calls: dict[str, Callable[[], object]] = {
        "get": lambda: client.get_object(Bucket=bucket, Key="obj")["Body"].read(),
        "put": lambda: client.put_object(Bucket=bucket, Key=f"new-{who}", Body=b"n"),
        "delete": lambda: client.delete_object(Bucket=bucket, Key=f"victim-{who}"),
        "list": lambda: client.list_objects_v2(Bucket=bucket),
        "get_acl": lambda: client.get_bucket_acl(Bucket=bucket),
        "put_policy": lambda: client.put_bucket_policy(Bucket=bucket, Policy=policy)}
    try:
        calls[op]()
        return True
    except ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDenied", (op, who, e.response["Error"])
        return False


@pytest.mark.parametrize("variant", list(EXPECT))
def test_matrix(s3: S3Server, clients: dict[str, Any], variant: str) -> None:
    bucket = setup_variant(s3, clients["owner"], variant)
    policy = variant_policy(bucket, variant)
    got = {who: tuple(s3_op(s3, clients.get(who), op, bucket, who, policy) for op in OPS) for who in WHO}
    wrong = {who: {op: (g, e) for op, g, e in zip(OPS, got[who], EXPECT[variant][who], strict=True) if g != e}
             for who in WHO}
    assert not any(wrong.values()), f"{variant}: (got, expected) {wrong}"
    listing = [b["Name"] for b in clients["other"].list_buckets()["Buckets"]]  # nothing leaks through listings
    assert (bucket in listing) == EXPECT[variant]["other"][OPS.index("list")]


@pytest.mark.parametrize("variant", ["private", "group", "public-read", "grant-other"])
def test_core_makes_the_same_decision(s3: S3Server, clients: dict[str, Any], variant: str) -> None:
    """Where S3 adds no policy, S3's read and list decisions are core.fs's for the same credential."""
    bucket = f"mx-{variant}"
    with open_volume(str(s3.data)) as vol:
        for who in WHO:
            cred: Cred = ANONYMOUS if who == "anon" else vol.identity.cred_for(USER_OF[who])
            fs = vol.fs.as_user(cred)
            expect = dict(zip(OPS, EXPECT[variant][who], strict=True))
            assert _ok(lambda f=fs: f.read(f.resolve(f"/{bucket}/obj").ino, 0, 4)) == expect["get"], (variant, who)
            assert _ok(lambda f=fs: f.readdir(f.resolve(f"/{bucket}").ino)) == expect["list"], (variant, who)


def _ok(fn: Callable[..., object]) -> bool:
    try:
        fn()
        return True
    except CoreError:
        return False
