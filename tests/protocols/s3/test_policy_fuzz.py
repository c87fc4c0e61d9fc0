"""Fuzz: the policy parser raises nothing but PolicyError, and what it accepts evaluates without error."""

from __future__ import annotations

import json
import re
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, example, given, settings

from protocols.s3.policy import Decision, PolicyError, PolicyRequest, evaluate, is_public, parse_policy
from protocols.s3.policy_match import Glob

B = "pics"
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
atoms = st.sampled_from([
    "*", "s3:*", "s3:GetObject", "s3:Get*", "s3:?utObject", "S3:LISTBUCKET", "ec2:*", "", "arn:aws:s3:::pics",
    "arn:aws:s3:::pics/*", "arn:aws:s3:::pics/${aws:username}/*", "arn:aws:s3:::pics/${*}${", "arn:aws:s3:::other",
    "arn:aws:iam:::user/ann", "arn:aws:iam::1:root", "arn:aws:iam:::group/g", "ann", "10.0.0.0/8", "::1", "true",
    "2024-01-01T00:00:00Z", "1700000000", "${aws:username, 'x'}", "${", "a*?b",
])
values = atoms | st.lists(atoms, max_size=3) | json_values
operators = st.sampled_from([
    "StringEquals", "StringNotLike", "StringEqualsIgnoreCase", "ForAnyValue:StringLike", "ForAllValues:StringEquals",
    "NumericLessThan", "DateGreaterThan", "Bool", "IpAddress", "NotIpAddressIfExists", "Null", "ArnLike", "Bogus",
])
keys = st.sampled_from(["aws:SourceIp", "s3:prefix", "aws:username", "aws:CurrentTime", "s3:max-keys",
                        "s3:ExistingObjectTag/t", "aws:SecureTransport", "nocolon"])
conditions = st.dictionaries(operators, st.dictionaries(keys, values, max_size=3), max_size=3) | json_values
principals = st.sampled_from(["*", {"AWS": "*"}, {"AWS": ["ann", "arn:aws:iam:::group/g"]}, {"CanonicalUser": "ann"},
                              {"Service": "x"}, "ann"]) | json_values
fields = st.sampled_from(["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource",
                          "NotResource", "Condition", "Other"])
# mostly valid statements (so evaluation is exercised), and anything-goes ones
good_values = st.sampled_from([
    "10.0.0.0/8", "::1", "2001:db8::/32", "true", "false", "2024-01-01T00:00:00Z", "1700000000", "5", "home/*",
    "${aws:username}", "${aws:username, 'x'}", "a*?b", "${*}", "",
])
good_conditions = st.dictionaries(
    st.sampled_from(["StringEquals", "StringNotLike", "StringEqualsIgnoreCase", "ForAnyValue:StringLike",
                     "ForAllValues:StringEquals", "StringLikeIfExists", "ArnLike", "Bool", "Null"]),
    st.dictionaries(keys.filter(lambda k: k != "nocolon"), st.sampled_from(["true", "false"]) |
                    st.lists(good_values, min_size=1, max_size=3), min_size=1, max_size=2),
    min_size=1, max_size=2,
) | st.sampled_from([{"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "::/0"]}},
                     {"NumericLessThan": {"s3:max-keys": "10"}}, {"DateLessThan": {"aws:CurrentTime": "2030-01-01"}},
                     {"NotIpAddressIfExists": {"aws:SourceIp": "192.0.2.1"}}])
good_statement = st.fixed_dictionaries(
    {"Effect": st.sampled_from(["Allow", "Deny"]),
     "Principal": st.sampled_from(["*", {"AWS": "*"}, {"AWS": ["ann", "arn:aws:iam:::group/g"]},
                                   {"CanonicalUser": "bob"}, {"AWS": "arn:aws:iam::1:root"}]),
     "Action": st.sampled_from(["*", "s3:*", "s3:Get*", "s3:GetObject", ["s3:ListBucket", "s3:PutObject"]]),
     "Resource": st.sampled_from(["arn:aws:s3:::pics*", ["arn:aws:s3:::pics", "arn:aws:s3:::pics/*"],
                                  "arn:aws:s3:::pics/${aws:username}/*", "arn:aws:s3:::pics/a?n/*"])},
    optional={"Condition": good_conditions, "Sid": st.text(max_size=5)},
)
statement = good_statement | st.fixed_dictionaries(
    {"Effect": st.sampled_from(["Allow", "Deny", "allow"]), "Principal": principals, "Action": values,
     "Resource": values},
    optional={"Condition": conditions, "Sid": st.text(max_size=5), "NotAction": values, "Junk": json_values},
) | st.dictionaries(fields, values | conditions, max_size=6)
policies = st.fixed_dictionaries(
    {"Statement": st.lists(statement, max_size=3) | statement},
    optional={"Version": st.sampled_from(["2012-10-17", "2008-10-17", "2020-01-01"]), "Id": st.text(max_size=5)},
)
contexts = st.dictionaries(keys | st.text(max_size=10), st.lists(atoms | st.text(max_size=10), max_size=3),
                           max_size=4)


def _parse(data: str | bytes) -> Any:
    try:
        return parse_policy(data, B)
    except PolicyError as e:
        assert isinstance(e.reason, str) and e.reason
        return None


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    _parse(data)
    _parse(b"{" + data)


@FUZZ
@given(json_values)
def test_arbitrary_json(value: Any) -> None:
    _parse(json.dumps(value))
    _parse(json.dumps({"Statement": value}))


@FUZZ
@given(policies, st.sampled_from([None, "ann", "bob"]), st.sampled_from(["s3:GetObject", "s3:ListBucket"]),
       st.sampled_from(["arn:aws:s3:::pics", "arn:aws:s3:::pics/ann/x", "arn:aws:s3:::pics/*"]), contexts)
def test_policy_shaped_documents(doc: dict[str, Any], user: str | None, action: str, resource: str,
                                 ctx: dict[str, list[str]]) -> None:
    p = _parse(json.dumps(doc))
    if p is None:
        return
    d = evaluate(p, PolicyRequest(user, frozenset({"g"}), action, resource, ctx))
    assert d in (Decision.ALLOW, Decision.DENY, Decision.NONE)
    assert evaluate(p, PolicyRequest(user, frozenset(), action, resource, ctx), restrict_public=True) in Decision
    assert is_public(p) in (True, False)


def test_deep_nesting_and_huge_numbers() -> None:
    assert _parse('{"Statement": ' + "[" * 30000 + "]" * 30000 + "}") is None
    assert _parse('{"Statement": ' + '{"a":' * 30000 + "1" + "}" * 30000 + "}") is None
    assert _parse('{"Id": ' + "9" * 5000 + ', "Statement": []}') is None
    huge = ('{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", '
            '"Resource": "arn:aws:s3:::pics/*", "Condition": {"NumericLessThan": {"s3:max-keys": 1e999}}}}')
    p = _parse(huge)
    assert p is not None

    def d(n: str) -> Decision:
        req = PolicyRequest(None, frozenset(), "s3:GetObject", "arn:aws:s3:::pics/k", {"s3:max-keys": [n]})
        return evaluate(p, req)

    assert d("9" * 999) is Decision.ALLOW  # < 1e999
    assert d("1" + "0" * 999) is Decision.NONE  # = 1e999


def _reference(pattern: str, s: str) -> bool:
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, s, re.DOTALL) is not None


@settings(max_examples=600, deadline=None)
@given(st.text("ab*?/", max_size=12) | st.text("a*?", max_size=8),
       st.text("ab/", max_size=12) | st.text("a", max_size=8))
@example("*a*a", "a")
@example("a*a", "a")
def test_glob_agrees_with_a_regex_reference(pattern: str, s: str) -> None:
    assert Glob.parse(pattern, variables=False).matches(s) is _reference(pattern, s)
    assert Glob.parse(pattern, wildcards=False, variables=False).matches(s) is (pattern == s)
