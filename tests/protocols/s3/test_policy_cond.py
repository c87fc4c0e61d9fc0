"""Policy conditions: each operator family, absent keys, IfExists, set qualifiers and variables."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocols.s3.policy import Decision, PolicyRequest, evaluate, parse_policy, resource_arn

B = "pics"
OBJ = f"arn:aws:s3:::{B}/*"
BUCKET = f"arn:aws:s3:::{B}"


def allowed(condition: dict[str, Any], ctx: dict[str, list[str]], user: str | None = "ann",
            version: str = "2012-10-17", action: str = "s3:GetObject") -> bool:
    """Whether an Allow statement with this condition applies to a request with this context."""
    resource = BUCKET if action == "s3:ListBucket" else OBJ
    text = json.dumps({"Version": version, "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": action, "Resource": resource, "Condition": condition}]})
    key = None if action == "s3:ListBucket" else "k"
    d = evaluate(parse_policy(text, B), PolicyRequest(user, frozenset(), action, resource_arn(B, key), ctx))
    assert d is not Decision.DENY
    return d is Decision.ALLOW


# (condition, context, expected) -- context {} means the key is absent from the request
CASES: list[tuple[dict[str, Any], dict[str, list[str]], bool]] = [
    # strings
    ({"StringEquals": {"s3:prefix": "home/"}}, {"s3:prefix": ["home/"]}, True),
    ({"StringEquals": {"s3:prefix": "home/"}}, {"s3:prefix": ["Home/"]}, False),
    ({"StringEquals": {"s3:prefix": "home/"}}, {}, False),
    ({"StringEquals": {"s3:prefix": "h*"}}, {"s3:prefix": ["home/"]}, False),  # no wildcards in Equals
    ({"StringEquals": {"s3:prefix": "h*"}}, {"s3:prefix": ["h*"]}, True),
    ({"StringEquals": {"s3:prefix": ["a", "b"]}}, {"s3:prefix": ["b"]}, True),  # values OR
    ({"StringNotEquals": {"s3:prefix": ["a", "b"]}}, {"s3:prefix": ["b"]}, False),  # negated: NOR
    ({"StringNotEquals": {"s3:prefix": ["a", "b"]}}, {"s3:prefix": ["c"]}, True),
    ({"StringNotEquals": {"s3:prefix": "a"}}, {}, True),  # negated, key absent: true
    ({"StringEqualsIgnoreCase": {"s3:prefix": "HOME/"}}, {"s3:prefix": ["home/"]}, True),
    ({"StringNotEqualsIgnoreCase": {"s3:prefix": "HOME/"}}, {"s3:prefix": ["home/"]}, False),
    ({"StringLike": {"s3:prefix": "home/*"}}, {"s3:prefix": ["home/ann/x"]}, True),
    ({"StringLike": {"s3:prefix": "home/?"}}, {"s3:prefix": ["home/ab"]}, False),
    ({"StringLike": {"s3:prefix": ""}}, {"s3:prefix": [""]}, True),  # ?prefix= (AWS's "list the root" example)
    ({"StringLike": {"s3:prefix": ""}}, {}, False),  # no prefix parameter at all
    ({"StringNotLike": {"s3:prefix": "secret/*"}}, {"s3:prefix": ["secret/x"]}, False),
    ({"StringNotLike": {"s3:prefix": "secret/*"}}, {"s3:prefix": ["public/x"]}, True),
    ({"StringLike": {"s3:delimiter": "/"}}, {"s3:delimiter": ["/"]}, True),
    ({"StringEquals": {"s3:x-amz-acl": "public-read"}}, {"s3:x-amz-acl": ["private"]}, False),
    ({"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:123:topic"}}, {"aws:SourceArn": ["arn:aws:sns:eu:123:topic"]},
     True),
    ({"ArnNotEquals": {"aws:SourceArn": "arn:aws:sns:*:123:topic"}}, {}, True),
    # key names are case-insensitive, tag keys are not
    ({"StringEquals": {"S3:PREFIX": "a"}}, {"s3:prefix": ["a"]}, True),
    ({"StringEquals": {"s3:prefix": "a"}}, {"S3:Prefix": ["a"]}, True),
    ({"StringEquals": {"s3:ExistingObjectTag/Project": "x"}}, {"s3:existingobjecttag/Project": ["x"]}, True),
    ({"StringEquals": {"s3:ExistingObjectTag/Project": "x"}}, {"s3:ExistingObjectTag/project": ["x"]}, False),
    ({"StringEquals": {"s3:RequestObjectTag/team": "a"}}, {"s3:RequestObjectTag/team": ["a"]}, True),
    # unknown keys are absent
    ({"StringEquals": {"aws:NoSuchKey": "a"}}, {}, False),
    ({"StringNotEquals": {"aws:NoSuchKey": "a"}}, {}, True),
    # numbers
    ({"NumericLessThanEquals": {"s3:max-keys": "100"}}, {"s3:max-keys": ["100"]}, True),
    ({"NumericLessThan": {"s3:max-keys": "100"}}, {"s3:max-keys": ["100"]}, False),
    ({"NumericGreaterThan": {"s3:max-keys": "10"}}, {"s3:max-keys": ["11"]}, True),
    ({"NumericGreaterThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": ["9"]}, False),
    ({"NumericEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": ["10.0"]}, True),
    ({"NumericNotEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": ["11"]}, True),
    ({"NumericEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": ["ten"]}, False),  # unparseable request value
    ({"NumericLessThan": {"s3:max-keys": "10"}}, {}, False),
    # dates
    ({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, {"aws:CurrentTime": ["2029-12-31T23:59:59Z"]},
     True),
    ({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, {"aws:CurrentTime": ["2030-01-01T00:00:00Z"]},
     False),
    ({"DateGreaterThanEquals": {"aws:CurrentTime": "2030-01-01"}}, {"aws:CurrentTime": ["2030-01-01T00:00:00Z"]},
     True),
    ({"DateGreaterThan": {"aws:EpochTime": "1700000000"}}, {"aws:EpochTime": ["1700000001"]}, True),
    ({"DateEquals": {"aws:EpochTime": "2023-11-14T22:13:20Z"}}, {"aws:EpochTime": ["1700000000"]}, True),
    ({"DateNotEquals": {"aws:EpochTime": "1700000000"}}, {"aws:EpochTime": ["1700000000"]}, False),
    ({"DateLessThanEquals": {"aws:CurrentTime": "2030-01-01T01:00:00+01:00"}},
     {"aws:CurrentTime": ["2030-01-01T00:00:00Z"]}, True),
    # booleans
    ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": ["true"]}, True),
    ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": ["false"]}, False),
    ({"Bool": {"aws:SecureTransport": "TRUE"}}, {"aws:SecureTransport": ["True"]}, True),
    ({"Bool": {"aws:SecureTransport": "false"}}, {}, False),
    ({"BinaryEquals": {"s3:x-amz-content-sha256": "YWJj"}}, {"s3:x-amz-content-sha256": ["YWJj"]}, True),
    # addresses
    ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": ["10.1.2.3"]}, True),
    ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": ["11.1.2.3"]}, False),
    ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": ["::ffff:10.1.2.3"]}, True),
    ({"IpAddress": {"aws:SourceIp": "10.1.2.3"}}, {"aws:SourceIp": ["10.1.2.3"]}, True),
    ({"IpAddress": {"aws:SourceIp": "10.1.2.3/8"}}, {"aws:SourceIp": ["10.200.0.1"]}, True),  # host bits ignored
    ({"IpAddress": {"aws:SourceIp": ["2001:db8::/32", "192.0.2.0/24"]}}, {"aws:SourceIp": ["2001:db8::5"]}, True),
    ({"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}, {"aws:SourceIp": ["10.0.0.1"]}, False),
    ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": ["garbage"]}, False),
    ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": ["10.9.9.9"]}, False),
    ({"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "::1/128"]}}, {"aws:SourceIp": ["192.0.2.1"]}, True),
    ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {}, False),
    # Null: true = the key is absent
    ({"Null": {"s3:prefix": "true"}}, {}, True),
    ({"Null": {"s3:prefix": "true"}}, {"s3:prefix": ["a"]}, False),
    ({"Null": {"s3:prefix": "false"}}, {"s3:prefix": ["a"]}, True),
    ({"Null": {"s3:prefix": "false"}}, {"s3:prefix": []}, False),
    # IfExists
    ({"StringEqualsIfExists": {"s3:prefix": "a"}}, {}, True),
    ({"StringEqualsIfExists": {"s3:prefix": "a"}}, {"s3:prefix": ["b"]}, False),
    ({"NumericLessThanIfExists": {"s3:max-keys": "5"}}, {"s3:max-keys": ["4"]}, True),
    ({"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}, {}, True),
    # set qualifiers over a multi-valued key
    ({"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": ["a", "b"]}}, {"s3:RequestObjectTagKeys": ["b", "z"]},
     True),
    ({"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": ["a"]}}, {"s3:RequestObjectTagKeys": ["z"]}, False),
    ({"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": ["a"]}}, {}, False),
    ({"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["a", "b"]}}, {"s3:RequestObjectTagKeys": ["a", "b"]},
     True),
    ({"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["a", "b"]}}, {"s3:RequestObjectTagKeys": ["a", "z"]},
     False),
    ({"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["a"]}}, {}, True),  # vacuously true
    ({"ForAnyValue:StringNotLike": {"s3:RequestObjectTagKeys": "a*"}}, {"s3:RequestObjectTagKeys": ["ab", "z"]},
     True),
    ({"ForAllValues:StringNotLike": {"s3:RequestObjectTagKeys": "a*"}}, {"s3:RequestObjectTagKeys": ["ab", "z"]},
     False),
    ({"ForAnyValue:StringLikeIfExists": {"s3:RequestObjectTagKeys": "a*"}}, {}, True),
    # several operators and keys: AND
    ({"StringEquals": {"s3:prefix": "a", "s3:delimiter": "/"}}, {"s3:prefix": ["a"], "s3:delimiter": ["/"]}, True),
    ({"StringEquals": {"s3:prefix": "a", "s3:delimiter": "/"}}, {"s3:prefix": ["a"]}, False),
    ({"StringEquals": {"s3:prefix": "a"}, "Bool": {"aws:SecureTransport": "true"}},
     {"s3:prefix": ["a"], "aws:SecureTransport": ["false"]}, False),
]


@pytest.mark.parametrize(("condition", "ctx", "want"), CASES, ids=[f"{i}-{next(iter(c))}" for i, (c, _, _)
                                                                     in enumerate(CASES)])
def test_condition(condition: dict[str, Any], ctx: dict[str, list[str]], want: bool) -> None:
    assert allowed(condition, ctx) is want


def test_condition_denies_only_when_it_holds() -> None:
    text = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": [BUCKET, OBJ]},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [BUCKET, OBJ],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})
    p = parse_policy(text, B)

    def d(ctx: dict[str, list[str]]) -> Decision:
        return evaluate(p, PolicyRequest(None, frozenset(), "s3:GetObject", resource_arn(B, "k"), ctx))

    assert d({"aws:SecureTransport": ["false"]}) is Decision.DENY
    assert d({"aws:SecureTransport": ["true"]}) is Decision.ALLOW


def test_principal_keys_are_filled_in() -> None:
    assert allowed({"StringEquals": {"aws:username": "ann"}}, {}, user="ann")
    assert not allowed({"StringEquals": {"aws:username": "ann"}}, {}, user="bob")
    assert not allowed({"StringEquals": {"aws:username": "ann"}}, {}, user=None)
    assert allowed({"StringEquals": {"aws:userid": "ann"}}, {}, user="ann")
    assert allowed({"StringEquals": {"aws:PrincipalType": "Anonymous"}}, {}, user=None)
    assert allowed({"StringEquals": {"aws:PrincipalType": "User"}}, {}, user="ann")
    assert allowed({"Null": {"aws:username": "true"}}, {}, user=None)
    # the caller's context wins over the filled-in values
    assert allowed({"StringEquals": {"aws:userid": "AIDA123"}}, {"aws:userid": ["AIDA123"]}, user="ann")


def test_policy_variables_in_condition_values() -> None:
    cond = {"StringLike": {"s3:prefix": ["home/${aws:username}/*", "home/${aws:username}"]}}
    ctx = {"s3:prefix": ["home/ann/docs"]}
    assert allowed(cond, ctx, user="ann", action="s3:ListBucket")
    assert not allowed(cond, ctx, user="bob", action="s3:ListBucket")
    assert not allowed(cond, ctx, user=None, action="s3:ListBucket")  # unresolved: matches nothing
    assert allowed({"StringEquals": {"s3:prefix": "${aws:username}"}}, {"s3:prefix": ["ann"]}, user="ann")
    assert allowed({"StringEquals": {"s3:prefix": "${aws:username, 'anon'}"}}, {"s3:prefix": ["anon"]}, user=None)
    # the older language has no variables: the text is literal
    assert not allowed({"StringEquals": {"s3:prefix": "${aws:username}"}}, {"s3:prefix": ["ann"]}, user="ann",
                       version="2008-10-17")
    assert allowed({"StringEquals": {"s3:prefix": "${aws:username}"}}, {"s3:prefix": ["${aws:username}"]},
                   user="ann", version="2008-10-17")
    # a value that looks like a wildcard is literal after substitution
    assert not allowed({"StringLike": {"s3:prefix": "${aws:username}"}}, {"s3:prefix": ["anything"]}, user="*")
    assert allowed({"StringLike": {"s3:prefix": "${aws:username}"}}, {"s3:prefix": ["*"]}, user="*")


def test_negated_variable_that_cannot_resolve_is_not_a_match() -> None:
    # StringNotEquals with an unresolvable value: nothing to equal, so the negation holds
    assert allowed({"StringNotEquals": {"s3:prefix": "${aws:username}"}}, {"s3:prefix": ["x"]}, user=None)
