"""S3 ACLs: canned ACLs, grant headers and AccessControlPolicy XML as boto3 sends and reads them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import hypothesis.strategies as st
import pytest
from botocore.awsrequest import AWSResponse
from hypothesis import given, settings

from protocols.s3.acl import (
    ALL_USERS,
    AUTHENTICATED_USERS,
    CANNED,
    LOG_DELIVERY,
    Acl,
    Grant,
    Grantee,
    Permission,
    acl_from_headers,
    acl_is_public,
    acl_permission,
    acl_xml,
    canned,
    parse_acl_xml,
    permits,
)
from protocols.s3.errors import S3Error
from protocols.s3.policy import ACTIONS

R, W, RA, WA, FC = (Permission.READ, Permission.WRITE, Permission.READ_ACP, Permission.WRITE_ACP,
                    Permission.FULL_CONTROL)
XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


class Capture:
    """A boto3 client whose requests are captured instead of sent, answered with a given body."""

    def __init__(self) -> None:
        self.client = boto3.client("s3", endpoint_url="http://127.0.0.1:9", aws_access_key_id="AKIDEXAMPLE",
                                   aws_secret_access_key="secret", region_name="us-east-1")
        self.request: Any = None
        self.reply = b""
        self.client.meta.events.register("before-send", self._send)

    def _send(self, request: Any, **_: Any) -> AWSResponse:
        self.request = request
        return AWSResponse(request.url, 200, {}, _Raw(self.reply))

    def headers(self) -> dict[str, str]:
        return {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in self.request.headers.items()}

    def body(self) -> bytes:
        b = self.request.body
        return b if isinstance(b, bytes) else (b or b"") if not hasattr(b, "read") else b.read()


class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


@pytest.fixture
def cap() -> Capture:
    return Capture()


def pairs(acl: Acl) -> list[tuple[str, str]]:
    return [(g.grantee.id, g.permission.value) for g in acl.grants]


# -- canned ACLs ------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "grants"), [
    ("private", [("ann", "FULL_CONTROL")]),
    ("public-read", [("ann", "FULL_CONTROL"), (ALL_USERS, "READ")]),
    ("public-read-write", [("ann", "FULL_CONTROL"), (ALL_USERS, "READ"), (ALL_USERS, "WRITE")]),
    ("authenticated-read", [("ann", "FULL_CONTROL"), (AUTHENTICATED_USERS, "READ")]),
    ("log-delivery-write", [("ann", "FULL_CONTROL"), (LOG_DELIVERY, "WRITE"), (LOG_DELIVERY, "READ_ACP")]),
    ("bucket-owner-read", [("ann", "FULL_CONTROL"), ("bo", "READ")]),
    ("bucket-owner-full-control", [("ann", "FULL_CONTROL"), ("bo", "FULL_CONTROL")]),
])
def test_canned(name: str, grants: list[tuple[str, str]], cap: Capture) -> None:
    cap.client.put_object_acl(Bucket="b", Key="k", ACL=name)
    acl = acl_from_headers(cap.headers(), "ann", "bo")
    assert acl is not None and pairs(acl) == grants
    assert acl.owner == "ann"
    assert acl_is_public(acl.grants) is (name in ("public-read", "public-read-write", "authenticated-read"))


def test_bucket_owner_acls_for_the_bucket_owner_are_private() -> None:
    assert canned("bucket-owner-full-control", "ann", "ann") == canned("private", "ann")
    assert canned("bucket-owner-read", "ann") == canned("private", "ann")
    assert set(CANNED) >= {"private", "public-read"}


def test_unknown_canned_acl() -> None:
    with pytest.raises(S3Error) as e:
        canned("public-everything", "ann")
    assert (e.value.code, e.value.status) == ("InvalidArgument", 400)


# -- grant headers ----------------------------------------------------------------------------

def test_grant_headers_from_boto3(cap: Capture) -> None:
    cap.client.put_bucket_acl(Bucket="b", GrantRead=f'uri="{ALL_USERS}", id="bob"', GrantWrite='id="carol"',
                              GrantReadACP="id=dave", GrantWriteACP='ID="erin"',
                              GrantFullControl=f'uri="{AUTHENTICATED_USERS}"')
    acl = acl_from_headers(cap.headers(), "ann")
    assert acl is not None
    assert set(pairs(acl)) == {(ALL_USERS, "READ"), ("bob", "READ"), ("carol", "WRITE"), ("dave", "READ_ACP"),
                               ("erin", "WRITE_ACP"), (AUTHENTICATED_USERS, "FULL_CONTROL")}
    assert ("ann", "FULL_CONTROL") not in pairs(acl)  # explicit grants replace the whole ACL, as on AWS


def test_no_acl_headers_is_none_and_both_kinds_is_invalid_request() -> None:
    assert acl_from_headers({"content-type": "x"}, "ann") is None
    with pytest.raises(S3Error) as e:
        acl_from_headers({"x-amz-acl": "private", "x-amz-grant-read": 'id="bob"'}, "ann")
    assert (e.value.code, e.value.status) == ("InvalidRequest", 400)


@pytest.mark.parametrize(("value", "code", "message"), [
    ('emailAddress="a@example.com"', "UnresolvableGrantByEmailAddress",
     "The e-mail address you provided does not match any account on record."),
    ('id="bob", emailAddress="a@example.com"', "UnresolvableGrantByEmailAddress",
     "The e-mail address you provided does not match any account on record."),
    ('uri="http://acs.amazonaws.com/groups/global/Everyone"', "InvalidArgument", "Invalid group uri"),
    ('id="no such/user"', "InvalidArgument", "Invalid id"),
    ('id=""', "InvalidArgument", "Invalid id"),
    ('name="bob"', "InvalidArgument", "Argument format not recognized"),
    ("bob", "InvalidArgument", "Argument format not recognized"),
    ("", "InvalidArgument", "Argument format not recognized"),
    ('id="bob" id="carol"', "InvalidArgument", "Argument format not recognized"),
])
def test_bad_grant_header(value: str, code: str, message: str) -> None:
    with pytest.raises(S3Error) as e:
        acl_from_headers({"x-amz-grant-read": value}, "ann")
    assert (e.value.code, e.value.message, e.value.status) == (code, message, 400)


def test_grant_to_unknown_user_refused_when_the_caller_says_who_exists() -> None:
    def exists(name: str) -> bool:
        return name in {"bob"}

    assert acl_from_headers({"x-amz-grant-read": 'id="bob"'}, "ann", user_exists=exists) is not None
    with pytest.raises(S3Error, match="Invalid id"):
        acl_from_headers({"x-amz-grant-read": 'id="zed"'}, "ann", user_exists=exists)


# -- AccessControlPolicy XML ------------------------------------------------------------------

def test_boto3_access_control_policy_body_parses(cap: Capture) -> None:
    cap.client.put_bucket_acl(Bucket="b", AccessControlPolicy={
        "Owner": {"ID": "ann", "DisplayName": "Ann"},
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": "bob"}, "Permission": "WRITE"},
            {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"},
            {"Grantee": {"Type": "CanonicalUser", "ID": "ann"}, "Permission": "FULL_CONTROL"},
        ]})
    acl = parse_acl_xml(cap.body())
    assert acl.owner == "ann"
    assert pairs(acl) == [("bob", "WRITE"), (ALL_USERS, "READ"), ("ann", "FULL_CONTROL")]


def test_boto3_reads_what_we_render(cap: Capture) -> None:
    acl = Acl("ann", (Grant(Grantee("ann"), FC), Grant(Grantee(ALL_USERS, True), R), Grant(Grantee("bob"), WA)))
    cap.reply = acl_xml(acl, display=str.upper)
    got = cap.client.get_bucket_acl(Bucket="b")
    assert got["Owner"] == {"ID": "ann", "DisplayName": "ANN"}
    assert got["Grants"] == [
        {"Grantee": {"Type": "CanonicalUser", "ID": "ann", "DisplayName": "ANN"}, "Permission": "FULL_CONTROL"},
        {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"},
        {"Grantee": {"Type": "CanonicalUser", "ID": "bob", "DisplayName": "BOB"}, "Permission": "WRITE_ACP"},
    ]
    assert parse_acl_xml(cap.reply) == acl


def _policy(grants: str, owner: str = "<Owner><ID>ann</ID></Owner>") -> bytes:
    return (f'<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{owner}'
            f"<AccessControlList>{grants}</AccessControlList></AccessControlPolicy>").encode()


def _grant(grantee: str, perm: str = "READ", xsi_type: str | None = "CanonicalUser") -> str:
    t = f' {XSI} xsi:type="{xsi_type}"' if xsi_type else ""
    return f"<Grant><Grantee{t}>{grantee}</Grantee><Permission>{perm}</Permission></Grant>"


def test_xml_variants_that_parse() -> None:
    assert pairs(parse_acl_xml(_policy(""))) == []
    assert pairs(parse_acl_xml(_policy(_grant("<ID>bob</ID>", xsi_type=None)))) == [("bob", "READ")]
    assert pairs(parse_acl_xml(_policy(_grant(f"<URI>{ALL_USERS}</URI>", xsi_type=None)))) == [(ALL_USERS, "READ")]
    dup = _grant("<ID>bob</ID>") * 2
    assert pairs(parse_acl_xml(_policy(dup))) == [("bob", "READ")]
    no_ns = b"<AccessControlPolicy><Owner><ID>ann</ID></Owner></AccessControlPolicy>"
    assert parse_acl_xml(no_ns) == Acl("ann", ())


MALFORMED = "The XML you provided was not well-formed or did not validate against our published schema"


@pytest.mark.parametrize(("body", "code", "message"), [
    (b"<Other/>", "MalformedACLError", MALFORMED),
    (_policy("", owner=""), "MalformedACLError", MALFORMED),
    (_policy("", owner="<Owner><ID></ID></Owner>"), "MalformedACLError", MALFORMED),
    (_policy(_grant("<ID>bob</ID>", "EVERYTHING")), "MalformedACLError", MALFORMED),
    (_policy(_grant("<ID>bob</ID>", "")), "MalformedACLError", MALFORMED),
    (_policy("<Grant><Permission>READ</Permission></Grant>"), "MalformedACLError", MALFORMED),
    (_policy(_grant("<URI>x</URI>")), "MalformedACLError", MALFORMED),  # CanonicalUser without an ID
    (_policy(_grant("", xsi_type=None)), "MalformedACLError", MALFORMED),
    (_policy(_grant("<URI>http://example.com/g</URI>", xsi_type="Group")), "InvalidArgument", "Invalid group uri"),
    (_policy(_grant("<ID>a b</ID>")), "InvalidArgument", "Invalid id"),
    (_policy(_grant("<EmailAddress>a@b.c</EmailAddress>", xsi_type="AmazonCustomerByEmail")),
     "UnresolvableGrantByEmailAddress", "The e-mail address you provided does not match any account on record."),
    (_policy("".join(_grant(f"<ID>u{i}</ID>") for i in range(101))), "MalformedACLError",
     "An ACL may have at most 100 grants"),
    (b"<AccessControlPolicy><Owner>", "MalformedXML",
     "The XML you provided was not well-formed or did not validate against our published schema."),
])
def test_bad_xml(body: bytes, code: str, message: str) -> None:
    with pytest.raises(S3Error) as e:
        parse_acl_xml(body)
    assert (e.value.code, e.value.message, e.value.status) == (code, message, 400)


def test_entities_refused_in_any_encoding() -> None:
    body = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY e "bob">]>'
            '<AccessControlPolicy><Owner><ID>&e;</ID></Owner></AccessControlPolicy>').encode("utf-16")
    with pytest.raises(S3Error) as e:
        parse_acl_xml(body)
    assert e.value.code == "MalformedXML"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(lambda s: _policy(s)))
def test_fuzz_xml_raises_only_s3_errors(body: bytes) -> None:
    try:
        parse_acl_xml(body)
    except S3Error as e:
        assert e.status == 400


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_grant_header_raises_only_s3_errors(value: str) -> None:
    try:
        acl = acl_from_headers({"x-amz-grant-write": value}, "ann")
        assert acl is not None and acl.grants
    except S3Error as e:
        assert e.status == 400


# -- what an ACL allows -----------------------------------------------------------------------

WHO: list[str | None] = [None, "ann", "bob", "carol"]


@pytest.mark.parametrize(("grants", "allowed"), [
    ([], {("ann", RA), ("ann", WA)}),  # the owner may always read and write the ACL
    ([Grant(Grantee("bob"), R)], {("bob", R), ("ann", RA), ("ann", WA)}),
    ([Grant(Grantee("bob"), FC)], {("bob", p) for p in Permission} | {("ann", RA), ("ann", WA)}),
    ([Grant(Grantee(ALL_USERS, True), R)], {(w, R) for w in WHO} | {("ann", RA), ("ann", WA)}),
    ([Grant(Grantee(AUTHENTICATED_USERS, True), W)], {(w, W) for w in WHO if w} | {("ann", RA), ("ann", WA)}),
    ([Grant(Grantee(LOG_DELIVERY, True), W)], {("ann", RA), ("ann", WA)}),
])
def test_permits_matrix(grants: list[Grant], allowed: set[tuple[str | None, Permission]]) -> None:
    acl = Acl("ann", tuple(grants))
    for who in WHO:
        for perm in Permission:
            assert permits(acl, who, perm) is ((who, perm) in allowed), (who, perm)


def test_ignore_public_acls() -> None:
    acl = canned("public-read-write", "ann")
    assert permits(acl, None, W) and permits(acl, "bob", R)
    assert not permits(acl, None, W, ignore_public=True)
    assert not permits(acl, "bob", R, ignore_public=True)
    assert permits(acl, "ann", R, ignore_public=True)  # the owner's own grant stays


def test_every_object_and_listing_action_maps_to_an_acl_permission() -> None:
    for op in ("GetObject", "HeadObject", "PutObject", "CopyObject", "UploadPart", "CompleteMultipartUpload",
               "DeleteObject", "DeleteObjects", "ListObjects", "ListObjectsV2", "ListObjectVersions", "HeadBucket",
               "ListParts", "AbortMultipartUpload", "ListMultipartUploads", "GetObjectAcl", "PutObjectAcl",
               "GetBucketAcl", "PutBucketAcl", "GetObjectTagging", "PutObjectTagging"):
        assert acl_permission(ACTIONS[op].action) is not None, op
    assert acl_permission("s3:GetObject") == (R, False)
    assert acl_permission("s3:ListBucket") == (R, True)
    assert acl_permission("s3:PutBucketAcl") == (WA, True)
    for op in ("PutBucketPolicy", "GetBucketPolicy", "PutPublicAccessBlock", "DeleteBucket"):
        assert acl_permission(ACTIONS[op].action) is None, op
