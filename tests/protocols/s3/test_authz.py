"""The access model through S3 with boto3, and the same decisions through core.fs and the PyTorch
adapter: owner / group member / other user / admin / anonymous x read, write, delete, list, ACL and
policy operations."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from core.errors import PermissionDenied
from core.fs import open_volume
from protocols.torch.backend import CoreBackend
from tests.protocols.s3.conftest import S3Server, cli

USERS = ("alice", "bob", "carol", "root2")


@pytest.fixture(scope="module")
def people(s3: S3Server) -> Iterator[dict[str, Any]]:
    """alice owns buckets; bob shares group 'team' with her; carol is nobody to her; root2 is an admin."""
    cli(s3.data, "group", "add", "team")
    out: dict[str, Any] = {}
    for name in USERS:
        extra = ["--admin"] if name == "root2" else []
        u = json.loads(cli(s3.data, "user", "add", name, "--json", *extra))
        out[name] = boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=u["access_key"],
                                 aws_secret_access_key=u["secret_key"], region_name="us-east-1",
                                 config=Config(retries={"max_attempts": 1}))
    cli(s3.data, "group", "adduser", "team", "alice")
    cli(s3.data, "group", "adduser", "team", "bob")
    time.sleep(1.2)  # the server's identity cache follows changes within 1 s
    yield out


def code(e: pytest.ExceptionInfo[ClientError]) -> str:
    return str(e.value.response["Error"]["Code"])


def denied(fn: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(ClientError) as e:
        fn(*args, **kw)
    return code(e)


def anon(s3: S3Server, method: str, path: str, data: bytes | None = None) -> int:
    return requests.request(method, f"{s3.endpoint}{path}", data=data, timeout=10).status_code


def test_bucket_ownership_and_listing(s3: S3Server, people: dict[str, Any]) -> None:
    a, c, r = people["alice"], people["carol"], people["root2"]
    a.create_bucket(Bucket="alices")
    assert code_of(a.create_bucket, "alices") == "BucketAlreadyOwnedByYou"
    assert code_of(c.create_bucket, "alices") == "BucketAlreadyExists"
    assert "alices" in [b["Name"] for b in a.list_buckets()["Buckets"]]
    assert "alices" not in [b["Name"] for b in c.list_buckets()["Buckets"]]  # nothing leaks through listings
    assert "alices" in [b["Name"] for b in r.list_buckets()["Buckets"]]
    assert a.list_buckets()["Owner"]["ID"] == "alice"
    assert anon(s3, "PUT", "/anon-bucket") == 403
    with open_volume(str(s3.data)) as vol:  # the directory NFS and SMB will see
        d = vol.fs.resolve("/alices")
        assert d.uid == vol.identity.user("alice").uid and d.perm == 0o700  # type: ignore[union-attr]


def code_of(fn: Any, bucket: str) -> str:
    return denied(fn, Bucket=bucket)


def test_object_matrix_through_s3_and_core(s3: S3Server, people: dict[str, Any]) -> None:
    a, b, c, r = (people[n] for n in USERS)
    a.create_bucket(Bucket="matrix")
    a.put_object(Bucket="matrix", Key="dir/f.txt", Body=b"alice's")
    assert a.get_object(Bucket="matrix", Key="dir/f.txt")["Body"].read() == b"alice's"
    assert r.get_object(Bucket="matrix", Key="dir/f.txt")["Body"].read() == b"alice's"  # admin
    for who in (b, c):  # group member and other: the bucket is 0700
        assert denied(who.get_object, Bucket="matrix", Key="dir/f.txt") == "AccessDenied"
        assert denied(who.put_object, Bucket="matrix", Key="x", Body=b"x") == "AccessDenied"
        assert denied(who.delete_object, Bucket="matrix", Key="dir/f.txt") == "AccessDenied"
        assert denied(who.list_objects_v2, Bucket="matrix") == "AccessDenied"
        assert denied(who.get_bucket_acl, Bucket="matrix") == "AccessDenied"
        assert denied(who.put_bucket_policy, Bucket="matrix", Policy="{}") == "AccessDenied"
    assert anon(s3, "GET", "/matrix/dir/f.txt") == 403
    assert anon(s3, "GET", "/matrix?list-type=2") == 403
    assert anon(s3, "DELETE", "/matrix/dir/f.txt") == 403
    with open_volume(str(s3.data)) as vol:  # the same decisions through core.fs with the same credentials
        ident = vol.identity
        f = vol.fs.resolve("/matrix/dir/f.txt")
        assert vol.fs.as_user(ident.cred_for("alice")).read(f.ino, 0, 7) == b"alice's"
        for name in ("bob", "carol"):
            with pytest.raises(PermissionDenied):
                vol.fs.as_user(ident.cred_for(name)).resolve("/matrix/dir/f.txt")
    with pytest.raises(PermissionError):  # and through the PyTorch adapter running as carol
        CoreBackend(str(s3.data), user="carol").read("/matrix/dir/f.txt", 0, 7)
    assert CoreBackend(str(s3.data), user="alice").read("/matrix/dir/f.txt", 0, 7) == b"alice's"
    a.delete_object(Bucket="matrix", Key="dir/f.txt")


def test_bucket_policy(s3: S3Server, people: dict[str, Any]) -> None:
    a, b, c = people["alice"], people["bob"], people["carol"]
    a.create_bucket(Bucket="pol")
    a.put_object(Bucket="pol", Key="pub/x", Body=b"x")
    a.put_object(Bucket="pol", Key="secret/y", Body=b"y")
    assert denied(a.get_bucket_policy, Bucket="pol") == "NoSuchBucketPolicy"
    assert denied(a.put_bucket_policy, Bucket="pol", Policy="not json") == "MalformedPolicy"
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam:::user/bob"]}, "Action": ["s3:GetObject"],
         "Resource": "arn:aws:s3:::pol/*"},
        {"Effect": "Allow", "Principal": {"AWS": "bob"}, "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::pol",
         "Condition": {"StringLike": {"s3:prefix": "pub/*"}}},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pol/secret/*"}]}
    a.put_bucket_policy(Bucket="pol", Policy=json.dumps(policy))
    assert json.loads(a.get_bucket_policy(Bucket="pol")["Policy"]) == policy
    assert a.get_bucket_policy_status(Bucket="pol")["PolicyStatus"]["IsPublic"] is False
    assert b.get_object(Bucket="pol", Key="pub/x")["Body"].read() == b"x"  # allowed by the policy
    assert denied(b.get_object, Bucket="pol", Key="secret/y") == "AccessDenied"  # explicit deny wins
    assert denied(a.get_object, Bucket="pol", Key="secret/y") == "AccessDenied"  # even for the owner
    assert [o["Key"] for o in b.list_objects_v2(Bucket="pol", Prefix="pub/")["Contents"]] == ["pub/x"]
    assert denied(b.list_objects_v2, Bucket="pol", Prefix="secret/") == "AccessDenied"  # condition not met
    assert denied(c.get_object, Bucket="pol", Key="pub/x") == "AccessDenied"
    assert denied(b.put_object, Bucket="pol", Key="pub/z", Body=b"z") == "AccessDenied"
    assert denied(b.delete_bucket_policy, Bucket="pol") == "AccessDenied"  # configuration is the owner's
    assert "pol" in [x["Name"] for x in b.list_buckets()["Buckets"]]  # a policy that lets bob list shows it
    a.delete_bucket_policy(Bucket="pol")
    assert denied(b.get_object, Bucket="pol", Key="pub/x") == "AccessDenied"


def test_acls_map_onto_core_acls(s3: S3Server, people: dict[str, Any]) -> None:
    a, c = people["alice"], people["carol"]
    a.create_bucket(Bucket="acls")
    a.put_object(Bucket="acls", Key="k", Body=b"v")
    a.put_bucket_acl(Bucket="acls", GrantRead='id="carol"')
    assert [o["Key"] for o in c.list_objects_v2(Bucket="acls")["Contents"]] == ["k"]
    assert denied(c.get_object, Bucket="acls", Key="k") == "AccessDenied"  # a bucket READ grant lists only
    grants = a.get_bucket_acl(Bucket="acls")["Grants"]
    assert {(g["Grantee"].get("ID"), g["Permission"]) for g in grants} == {("alice", "FULL_CONTROL"),
                                                                          ("carol", "READ")}
    a.put_object_acl(Bucket="acls", Key="k", GrantRead='id="carol"')
    assert c.get_object(Bucket="acls", Key="k")["Body"].read() == b"v"
    with open_volume(str(s3.data)) as vol:  # the grant is the file's ACL: every protocol sees it
        f = vol.fs.resolve("/acls/k")
        acl, stored = vol.fs.getacl(f.ino)
        carol = vol.identity.user("carol")
        assert stored and carol is not None and any(x.who.id == carol.uid for x in acl)
        assert vol.fs.as_user(carol.cred).read(f.ino, 0, 1) == b"v"
    assert denied(c.put_object_acl, Bucket="acls", Key="k", ACL="public-read") == "AccessDenied"
    a.put_bucket_acl(Bucket="acls", ACL="public-read")
    a.put_object_acl(Bucket="acls", Key="k", ACL="public-read")
    assert anon(s3, "GET", "/acls/k") == 200
    assert anon(s3, "PUT", "/acls/new", b"x") == 403
    a.put_bucket_acl(Bucket="acls", ACL="private")
    assert anon(s3, "GET", "/acls/k") == 403
    assert denied(c.list_objects_v2, Bucket="acls") == "AccessDenied"


def test_public_access_block(s3: S3Server, people: dict[str, Any]) -> None:
    a = people["alice"]
    a.create_bucket(Bucket="pab")
    a.put_object(Bucket="pab", Key="k", Body=b"v", ACL="public-read")
    a.put_bucket_acl(Bucket="pab", ACL="public-read")
    assert anon(s3, "GET", "/pab/k") == 200
    assert denied(a.get_public_access_block, Bucket="pab") == "NoSuchPublicAccessBlockConfiguration"
    a.put_public_access_block(Bucket="pab", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    assert a.get_public_access_block(Bucket="pab")["PublicAccessBlockConfiguration"]["IgnorePublicAcls"] is True
    assert anon(s3, "GET", "/pab/k") == 403  # IgnorePublicAcls
    assert denied(a.put_bucket_acl, Bucket="pab", ACL="public-read") == "AccessDenied"  # BlockPublicAcls
    public = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                      "Resource": "arn:aws:s3:::pab/*"}]}
    assert denied(a.put_bucket_policy, Bucket="pab", Policy=json.dumps(public)) == "AccessDenied"
    a.delete_public_access_block(Bucket="pab")
    a.put_bucket_policy(Bucket="pab", Policy=json.dumps(public))
    assert a.get_bucket_policy_status(Bucket="pab")["PolicyStatus"]["IsPublic"] is True


def test_uploads_are_their_initiators(s3: S3Server, people: dict[str, Any]) -> None:
    a, c = people["alice"], people["carol"]
    a.create_bucket(Bucket="ups")
    up = a.create_multipart_upload(Bucket="ups", Key="big")["UploadId"]
    assert denied(c.abort_multipart_upload, Bucket="ups", Key="big", UploadId=up) == "AccessDenied"
    assert denied(c.upload_part, Bucket="ups", Key="big", UploadId=up, PartNumber=1, Body=b"x") == "AccessDenied"
    assert denied(c.create_multipart_upload, Bucket="ups", Key="other") == "AccessDenied"
    parts = [{"PartNumber": 1, "ETag": a.upload_part(Bucket="ups", Key="big", UploadId=up, PartNumber=1,
                                                     Body=b"data")["ETag"]}]
    a.complete_multipart_upload(Bucket="ups", Key="big", UploadId=up, MultipartUpload={"Parts": parts})
    assert a.get_object(Bucket="ups", Key="big")["Body"].read() == b"data"
    with open_volume(str(s3.data)) as vol:
        alice = vol.identity.user("alice")
        assert alice is not None and vol.fs.resolve("/ups/big").uid == alice.uid  # owned by the requester


def test_expected_bucket_owner(s3: S3Server, people: dict[str, Any]) -> None:
    a = people["alice"]
    a.create_bucket(Bucket="expect")
    a.put_object(Bucket="expect", Key="k", Body=b"v", ExpectedBucketOwner="alice")
    assert denied(a.get_object, Bucket="expect", Key="k", ExpectedBucketOwner="carol") == "AccessDenied"


def test_delete_objects_authorizes_each_key(s3: S3Server, people: dict[str, Any]) -> None:
    a = people["alice"]
    a.create_bucket(Bucket="perkey")
    for k in ("pub/a", "secret/b"):
        a.put_object(Bucket="perkey", Key=k, Body=b"x")
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
                                                    "Resource": "arn:aws:s3:::perkey/secret/*"}]}
    a.put_bucket_policy(Bucket="perkey", Policy=json.dumps(deny))
    r = a.delete_objects(Bucket="perkey", Delete={"Objects": [{"Key": "pub/a"}, {"Key": "secret/b"}]})
    assert [d["Key"] for d in r.get("Deleted", [])] == ["pub/a"]
    assert [(e["Key"], e["Code"]) for e in r["Errors"]] == [("secret/b", "AccessDenied")]
    assert a.get_object(Bucket="perkey", Key="secret/b")["Body"].read() == b"x"


def test_copy_source_is_authorized_on_its_own(s3: S3Server, people: dict[str, Any]) -> None:
    """A policy that lets carol write into bob's bucket lends her no read access to alice's objects."""
    a, b, c = people["alice"], people["bob"], people["carol"]
    a.create_bucket(Bucket="src-private")
    a.put_object(Bucket="src-private", Key="secret", Body=b"alice only")
    b.create_bucket(Bucket="dst-open")
    grant = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "carol"},
                                                     "Action": ["s3:PutObject", "s3:GetObject"],
                                                     "Resource": "arn:aws:s3:::dst-open/*"}]}
    b.put_bucket_policy(Bucket="dst-open", Policy=json.dumps(grant))
    c.put_object(Bucket="dst-open", Key="mine", Body=b"carol's")
    assert denied(c.copy_object, Bucket="dst-open", Key="stolen",
                  CopySource={"Bucket": "src-private", "Key": "secret"}) == "AccessDenied"
    up = c.create_multipart_upload(Bucket="dst-open", Key="stolen2")["UploadId"]
    assert denied(c.upload_part_copy, Bucket="dst-open", Key="stolen2", UploadId=up, PartNumber=1,
                  CopySource={"Bucket": "src-private", "Key": "secret"}) == "AccessDenied"
    c.copy_object(Bucket="dst-open", Key="copy", CopySource={"Bucket": "dst-open", "Key": "mine"})
    assert c.get_object(Bucket="dst-open", Key="copy")["Body"].read() == b"carol's"


def test_owner_and_initiator_name_the_real_owner(s3: S3Server, people: dict[str, Any]) -> None:
    a, b = people["alice"], people["bob"]
    a.create_bucket(Bucket="owners")
    grant = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "bob"},
                                                     "Action": ["s3:PutObject", "s3:ListBucket",
                                                                "s3:ListBucketMultipartUploads"],
                                                     "Resource": ["arn:aws:s3:::owners", "arn:aws:s3:::owners/*"]}]}
    a.put_bucket_policy(Bucket="owners", Policy=json.dumps(grant))
    b.put_object(Bucket="owners", Key="bobs", Body=b"b")
    a.put_object(Bucket="owners", Key="alices", Body=b"a")
    listed = b.list_objects_v2(Bucket="owners", FetchOwner=True)["Contents"]
    assert {o["Key"]: o["Owner"]["ID"] for o in listed} == {"alices": "alice", "bobs": "bob"}
    up = b.create_multipart_upload(Bucket="owners", Key="big")["UploadId"]
    ups = a.list_multipart_uploads(Bucket="owners")["Uploads"]
    assert [(u["UploadId"], u["Initiator"]["ID"], u["Owner"]["ID"]) for u in ups] == [(up, "bob", "bob")]
    assert a.list_parts(Bucket="owners", Key="big", UploadId=up)["Initiator"]["ID"] == "bob"


def test_bucket_reads_need_permission(s3: S3Server, people: dict[str, Any]) -> None:
    a, c = people["alice"], people["carol"]
    a.create_bucket(Bucket="quiet")
    a.head_bucket(Bucket="quiet")
    with pytest.raises(ClientError) as e:
        c.head_bucket(Bucket="quiet")
    assert e.value.response["Error"]["Code"] == "403"
    assert anon(s3, "HEAD", "/quiet") == 403
    assert denied(c.get_bucket_location, Bucket="quiet") == "AccessDenied"  # configuration: the owner's
    assert denied(c.get_bucket_versioning, Bucket="quiet") == "AccessDenied"
    a.get_bucket_location(Bucket="quiet")


def test_implicit_directories_need_write_where_they_are_made(s3: S3Server, people: dict[str, Any]) -> None:
    a, c = people["alice"], people["carol"]
    a.create_bucket(Bucket="nested")
    a.put_object(Bucket="nested", Key="old/x", Body=b"x")  # 'old' exists before the grant
    a.put_bucket_acl(Bucket="nested", GrantWrite='id="carol"', GrantRead='id="carol"')
    c.put_object(Bucket="nested", Key="top/y", Body=b"y")  # new prefixes inherit the bucket's grant
    assert denied(c.put_object, Bucket="nested", Key="old/new/y", Body=b"y") == "AccessDenied"
    with open_volume(str(s3.data)) as vol:
        assert [e.name for e in vol.fs.listdir(vol.fs.resolve("/nested/old").ino)] == ["x"]  # nothing made
        assert vol.fs.resolve("/nested/top").uid == vol.fs.resolve("/nested").uid  # owned by the bucket owner
