"""Which policies are public (GetBucketPolicyStatus, BlockPublicPolicy), and RestrictPublicBuckets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocols.s3.policy import Decision, PolicyRequest, evaluate, is_public, parse_policy, resource_arn

B = "pics"
OBJ = f"arn:aws:s3:::{B}/*"
BUCKET = f"arn:aws:s3:::{B}"


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(principal: Any = "*", action: Any = "s3:GetObject", resource: Any = OBJ, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": resource, **extra}


def cond(c: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return allow(Condition=c, **kw)


PUBLIC = [
    allow(),
    allow({"AWS": "*"}),
    allow({"AWS": ["ann", "*"]}),
    allow(action="s3:*", resource=[BUCKET, OBJ]),
    allow(action="s3:ListBucket", resource=BUCKET),
    allow(action="s3:PutObject"),
    allow(action="s3:AbortMultipartUpload"),
    allow(action="s3:Delete*"),
    {"Effect": "Allow", "NotPrincipal": {"AWS": "ann"}, "Action": "s3:GetObject", "Resource": OBJ},
    {"Effect": "Allow", "Principal": "*", "NotAction": "s3:PutObject", "Resource": OBJ},
    cond({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}),
    cond({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "0.0.0.0/1"]}}),
    cond({"IpAddress": {"aws:SourceIp": "2001::/16"}}),
    cond({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
    cond({"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}),
    cond({"StringLike": {"aws:SourceVpc": "vpc-*"}}),
    cond({"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}),
    cond({"ForAllValues:StringEquals": {"aws:SourceAccount": "123456789012"}}),
    cond({"StringEquals": {"aws:username": "${aws:username}"}}),
    cond({"Bool": {"aws:SecureTransport": "true"}}),
    cond({"StringEquals": {"s3:prefix": "public/"}}, action="s3:ListBucket", resource=BUCKET),
]
NOT_PUBLIC = [
    allow({"AWS": "ann"}),
    allow({"AWS": "arn:aws:iam:::group/staff"}),
    allow({"AWS": "arn:aws:iam::123456789012:root"}),
    allow({"CanonicalUser": "ann"}),
    {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [BUCKET, OBJ]},
    {"Effect": "Allow", "NotPrincipal": "*", "Action": "s3:GetObject", "Resource": OBJ},
    allow(action="s3:CreateBucket", resource=BUCKET),  # no "bad action"
    cond({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
    cond({"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]}}),
    cond({"StringEquals": {"aws:SourceVpc": "vpc-1a2b3c"}}),
    cond({"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c"}}),
    cond({"StringEquals": {"aws:SourceAccount": "123456789012"}}),
    cond({"ArnEquals": {"aws:SourceArn": "arn:aws:cloudtrail:us-east-1:123:trail/t"}}),
    cond({"StringEquals": {"aws:SourceOwner": "123456789012"}}),
    cond({"StringEquals": {"aws:PrincipalAccount": "123456789012"}}),
    cond({"StringEquals": {"aws:userid": "AIDAEXAMPLE"}}),
    cond({"StringEquals": {"aws:username": "ann"}}),
    cond({"ForAnyValue:StringEquals": {"aws:SourceVpc": ["vpc-1", "vpc-2"]}}),
    cond({"StringEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:r:1:key/k"}}),
]


@pytest.mark.parametrize("statement", PUBLIC, ids=[json.dumps(s)[:90] for s in PUBLIC])
def test_public(statement: dict[str, Any]) -> None:
    assert is_public(parse_policy(policy(statement), B))
    # one public statement among private ones makes the policy public
    assert is_public(parse_policy(policy(allow({"AWS": "ann"}), statement), B))


@pytest.mark.parametrize("statement", NOT_PUBLIC, ids=[json.dumps(s)[:90] for s in NOT_PUBLIC])
def test_not_public(statement: dict[str, Any]) -> None:
    assert not is_public(parse_policy(policy(statement), B))


def test_restrict_public_buckets_stops_anonymous_use_of_public_grants() -> None:
    p = parse_policy(policy(allow(), allow({"AWS": "arn:aws:iam::123456789012:root"}, action="s3:PutObject"),
                            cond({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, action="s3:ListBucket",
                                 resource=BUCKET),
                            {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": OBJ}), B)

    def d(user: str | None, action: str, key: str | None = "k", restrict: bool = True) -> Decision:
        req = PolicyRequest(user, frozenset(), action, resource_arn(B, key), {"aws:SourceIp": ["10.0.0.1"]})
        return evaluate(p, req, restrict_public=restrict)

    assert d(None, "s3:GetObject", restrict=False) is Decision.ALLOW
    assert d(None, "s3:GetObject") is Decision.NONE  # public grant, anonymous: ignored
    assert d("ann", "s3:GetObject") is Decision.ALLOW  # signed-in users of the store keep it
    assert d(None, "s3:ListBucket", None) is Decision.ALLOW  # a non-public (CIDR-limited) grant still applies
    assert d("ann", "s3:PutObject") is Decision.ALLOW
    assert d(None, "s3:DeleteObject") is Decision.DENY  # denies always apply
