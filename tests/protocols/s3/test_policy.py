"""Bucket policies: what S3 accepts and refuses (with its reason), and what a policy decides."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from protocols.s3 import router
from protocols.s3.errors import S3Error
from protocols.s3.policy import (
    ACTIONS,
    Decision,
    PolicyError,
    PolicyRequest,
    evaluate,
    iam_action,
    load_policy,
    parse_policy,
    request_keys,
    resource_arn,
)
from protocols.s3.policy_actions import KNOWN, Level
from protocols.s3.policy_match import Glob
from protocols.s3.router import route

B = "pics"
BUCKET = f"arn:aws:s3:::{B}"
OBJ = f"arn:aws:s3:::{B}/*"
GROUPS = {"ann": frozenset({"staff"}), "bob": frozenset({"dev"}), "carol": frozenset()}


def doc(*statements: dict[str, Any], version: str | None = "2012-10-17", **top: Any) -> str:
    d: dict[str, Any] = {"Statement": list(statements), **top}
    if version is not None:
        d["Version"] = version
    return json.dumps(d)


def stmt(effect: str = "Allow", principal: Any = "*", action: Any = "s3:GetObject", resource: Any = OBJ,
         **extra: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"Effect": effect, "Principal": principal, "Action": action, "Resource": resource}
    s.update(extra)
    return s


def decide(policy_text: str, user: str | None, action: str = "s3:GetObject", key: str | None = "a.jpg",
           ctx: dict[str, list[str]] | None = None, **kw: Any) -> Decision:
    p = parse_policy(policy_text, B)
    req = PolicyRequest(user, GROUPS.get(user or "", frozenset()), action, resource_arn(B, key), ctx or {})
    return evaluate(p, req, **kw)


def reason(text: str | bytes, **kw: Any) -> str:
    with pytest.raises(PolicyError) as e:
        parse_policy(text, B, **kw)
    return e.value.reason


# -- what parses ------------------------------------------------------------------------------

def test_aws_documentation_examples_parse() -> None:
    examples = [
        doc(stmt(action=["s3:GetObject", "s3:GetObjectVersion"])),
        doc(stmt(action="s3:*", resource=[BUCKET, OBJ],
                 Condition={"IpAddress": {"aws:SourceIp": ["54.240.143.0/24", "2001:DB8:1234:5678::/64"]},
                            "NotIpAddress": {"aws:SourceIp": ["54.240.143.128/30"]}})),
        doc(stmt(principal={"AWS": ["arn:aws:iam::123456789012:root"]}, action="s3:PutObject",
                 Condition={"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}})),
        doc(stmt(effect="Deny", action="s3:*", resource=[BUCKET, OBJ],
                 Condition={"Bool": {"aws:SecureTransport": "false"}}), Id="ExamplePolicy"),
        doc(stmt(principal={"AWS": "arn:aws:iam:::user/fred"}, action="s3:ListBucket", resource=BUCKET,
                 Condition={"StringLike": {"s3:prefix": ["home/${aws:username}/*", ""]}})),
    ]
    for text in examples:
        p = parse_policy(text, B)
        assert p.text == text and p.version == "2012-10-17"
    assert parse_policy(examples[3], B).id == "ExamplePolicy"


def test_statement_as_object_version_defaults_and_bytes() -> None:
    p = parse_policy(json.dumps({"Statement": stmt()}).encode(), B)
    assert p.version == "2008-10-17" and len(p.statements) == 1
    assert parse_policy(doc(stmt(), version="2008-10-17"), B).version == "2008-10-17"
    assert parse_policy("  \n" + doc(stmt()), B).statements[0].effect.value == "Allow"


def test_numbers_and_booleans_are_condition_values() -> None:
    p = doc(stmt(action="s3:ListBucket", resource=BUCKET,
                 Condition={"NumericLessThanEquals": {"s3:max-keys": 10}, "Bool": {"aws:SecureTransport": True}}))
    ctx = {"s3:max-keys": ["10"], "aws:SecureTransport": ["true"]}
    assert decide(p, None, "s3:ListBucket", None, ctx) is Decision.ALLOW
    assert decide(p, None, "s3:ListBucket", None, {**ctx, "s3:max-keys": ["11"]}) is Decision.NONE


# -- what is refused, and why -----------------------------------------------------------------

NOT_JSON = "Policies must be valid JSON and the first byte must be '{'"
MALFORMED: list[tuple[str | bytes, str]] = [
    (b"", NOT_JSON), (b"not json", NOT_JSON), ("[1]", NOT_JSON), ('{"Statement": ', NOT_JSON),
    (b"\xff{}", NOT_JSON), ('{"Statement": NaN}', NOT_JSON), (doc(stmt()).encode("utf-16"), NOT_JSON),
    ('{"Version": "2012-10-17"}', "Missing required field Statement"),
    (doc(stmt(), Extra=1), "Unknown field Extra"),
    (doc(stmt(), version="2012-10-18"), "The policy must contain a valid version string"),
    (doc(stmt(), Id=7), "Id must be a string"),
    ('{"Statement": []}', "Could not parse the policy: Statement is empty!"),
    ('{"Statement": "x"}', "Statement must be an object or a list of objects"),
    (doc(stmt(effect="allow")), "Invalid effect: allow"),
    (doc({"Principal": "*", "Action": "s3:GetObject", "Resource": OBJ}), "Missing required field Effect"),
    (doc({**stmt(), "Sid": 3}), "Sid must be a string"),
    (doc({**stmt(), "sid": "x"}), "Unknown field sid"),
    (doc({**stmt(), "Sid": "a"}, {**stmt(), "Sid": "a"}), "Statement IDs (SID) in a single policy must be unique"),
    ('{"Statement": [{"Effect": "Allow", "Effect": "Deny"}]}', "Duplicate field Effect"),
    (doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": OBJ}), "Missing required field Principal"),
    (doc({**stmt(), "NotPrincipal": "*"}), "Statement can not contain both Principal and NotPrincipal"),
    (doc(stmt(principal="ann")), "Invalid principal in policy"),
    (doc(stmt(principal=["*"])), "Invalid principal in policy"),
    (doc(stmt(principal={})), "Invalid principal in policy"),
    (doc(stmt(principal={"AWS": []})), "Invalid principal in policy"),
    (doc(stmt(principal={"AWS": "arn:aws:iam::*:user/x"})), "Invalid principal in policy"),
    (doc(stmt(principal={"AWS": "arn:aws:iam::123456789012:user/a*"})), "Invalid principal in policy"),
    (doc(stmt(principal={"AWS": "arn:aws:iam::123456789012:role/admin"})), "Invalid principal in policy"),
    (doc(stmt(principal={"AWS": "arn:aws:sts::123456789012:assumed-role/r/s"})), "Invalid principal in policy"),
    (doc(stmt(principal={"AWS": "has space"})), "Invalid principal in policy"),
    (doc(stmt(principal={"AWS": 123})), "Invalid principal in policy"),
    (doc(stmt(principal={"Federated": "cognito-identity.amazonaws.com"})), "Invalid principal in policy"),
    (doc(stmt(principal={"CanonicalUser": "a/b"})), "Invalid principal in policy"),
    (doc({"Effect": "Allow", "Principal": "*", "Resource": OBJ}), "Missing required field Action"),
    (doc({**stmt(), "NotAction": "s3:PutObject"}), "Statement can not contain both Action and NotAction"),
    (doc(stmt(action="GetObject")), "Policy has invalid action"),
    (doc(stmt(action="s3:GetObjectt")), "Policy has invalid action"),
    (doc(stmt(action="s3:Foo*")), "Policy has invalid action"),
    (doc(stmt(action="ec2:RunInstances")), "Policy has invalid action"),
    (doc(stmt(action="s3:Get Object")), "Policy has invalid action"),
    (doc(stmt(action=[])), "Policy has invalid action"),
    (doc(stmt(action=[5])), "Policy has invalid action"),
    (doc(stmt(action={"s3": "GetObject"})), "Policy has invalid action"),
    (doc({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}), "Missing required field Resource"),
    (doc(stmt(resource="*")), "Policy has invalid resource"),
    (doc(stmt(resource="arn:aws:s3:::*")), "Policy has invalid resource"),
    (doc(stmt(resource="arn:aws:s3:::pi*")), "Policy has invalid resource"),
    (doc(stmt(resource="arn:aws:s3:::other/*")), "Policy has invalid resource"),
    (doc(stmt(resource="arn:aws:s3:::picsx/*")), "Policy has invalid resource"),
    (doc(stmt(resource=[OBJ, "arn:aws:s3:::other/*"])), "Policy has invalid resource"),
    (doc(stmt(resource="pics/*")), "Policy has invalid resource"),
    (doc(stmt(resource="arn:aws:s3:::${aws:username}/*")), "Policy has invalid resource"),
    (doc(stmt(resource=[])), "Policy has invalid resource"),
    (doc(stmt(resource=BUCKET)), "Action does not apply to any resource(s) in statement"),
    (doc(stmt(action="s3:ListBucket", resource=OBJ)), "Action does not apply to any resource(s) in statement"),
    (doc(stmt(action="s3:ListAllMyBuckets", resource=[BUCKET, OBJ])),
     "Action does not apply to any resource(s) in statement"),
    (doc(stmt(Condition={"StringEqualz": {"s3:prefix": "a"}})), "Invalid Condition operator: StringEqualz"),
    (doc(stmt(Condition={"ForSomeValues:StringEquals": {"s3:prefix": "a"}})),
     "Invalid Condition operator: ForSomeValues:StringEquals"),
    (doc(stmt(Condition={"NullIfExists": {"s3:prefix": "true"}})), "Invalid Condition operator: NullIfExists"),
    (doc(stmt(Condition={"IfExists": {"s3:prefix": "a"}})), "Invalid Condition operator: IfExists"),
    (doc(stmt(Condition="x")), "Condition must be an object of operators"),
    (doc(stmt(Condition={"StringEquals": "x"})),
     "Invalid Condition block for StringEquals: an object of condition keys is required"),
    (doc(stmt(Condition={"StringEquals": {"prefix": "a"}})), "Policy has an invalid condition key: prefix"),
    (doc(stmt(Condition={"StringEquals": {"s3:prefix": {"a": "b"}}})),
     "Invalid Condition value for StringEquals: values must be strings, numbers or booleans"),
    (doc(stmt(Condition={"StringEquals": {"s3:prefix": []}})),
     "Invalid Condition value for StringEquals: a value or a list of values is required"),
    (doc(stmt(Condition={"NumericEquals": {"s3:max-keys": "ten"}})),
     "Invalid Condition value for NumericEquals: 'ten'"),
    (doc(stmt(Condition={"NumericEquals": {"s3:max-keys": "Infinity"}})),
     "Invalid Condition value for NumericEquals: 'Infinity'"),
    (doc(stmt(Condition={"IpAddress": {"aws:SourceIp": "999.1.1.1/8"}})),
     "Invalid Condition value for IpAddress: '999.1.1.1/8'"),
    (doc(stmt(Condition={"DateLessThan": {"aws:CurrentTime": "tomorrow"}})),
     "Invalid Condition value for DateLessThan: 'tomorrow'"),
    (doc(stmt(Condition={"Bool": {"aws:SecureTransport": "yes"}})), "Invalid Condition value for Bool: 'yes'"),
    (doc(stmt(Condition={"Null": {"s3:prefix": ["true", "false"]}})),
     "Invalid Condition value for Null: one of true or false is required"),
    (doc(stmt(resource="arn:aws:s3:::pics/" + "x" * 21000)), "Policy exceeds the maximum allowed document size."),
    (b" " * 90000 + b"{}", "Policy exceeds the maximum allowed document size."),
]


@pytest.mark.parametrize(("text", "why"), MALFORMED, ids=[w[:40] + str(i) for i, (_, w) in enumerate(MALFORMED)])
def test_malformed_policy_reason(text: str | bytes, why: str) -> None:
    assert reason(text) == why


def test_whitespace_does_not_count_towards_the_size_limit() -> None:
    text = doc(stmt(resource=f"arn:aws:s3:::pics/{'x' * 19000}"))
    padded = text.replace(",", "," + " " * 1000)
    assert len(padded.encode()) > 20 * 1024
    assert parse_policy(padded, B).statements


def test_unknown_principals_refused_when_the_caller_says_who_exists() -> None:
    users, groups = {"ann", "bob"}, {"staff"}

    def known(kind: str, name: str) -> bool:
        return name in (users if kind == "user" else groups)

    ok = doc(stmt(principal={"AWS": ["ann", "arn:aws:iam:::user/bob", "arn:aws:iam:::group/staff", "*"]}))
    assert parse_policy(ok, B, known=known).statements
    for who in ("zed", "arn:aws:iam:::user/zed", "arn:aws:iam::123456789012:group/nobody"):
        assert reason(doc(stmt(principal={"AWS": who})), known=known) == "Invalid principal in policy"
    assert reason(doc(stmt(principal={"CanonicalUser": "zed"})), known=known) == "Invalid principal in policy"


# -- principals -------------------------------------------------------------------------------

PRINCIPALS: list[tuple[Any, set[str | None]]] = [
    ("*", {None, "ann", "bob", "carol"}),
    ({"AWS": "*"}, {None, "ann", "bob", "carol"}),
    ({"AWS": ["*"]}, {None, "ann", "bob", "carol"}),
    ({"AWS": "arn:aws:iam:::user/ann"}, {"ann"}),
    ({"AWS": "arn:aws:iam::123456789012:user/ann"}, {"ann"}),
    ({"AWS": "arn:aws:iam::tenant1:user/division/ann"}, {"ann"}),
    ({"AWS": "ann"}, {"ann"}),
    ({"AWS": ["ann", "bob"]}, {"ann", "bob"}),
    ({"AWS": "arn:aws:iam:::group/staff"}, {"ann"}),
    ({"AWS": "arn:aws:iam::123456789012:group/dev"}, {"bob"}),
    ({"AWS": "arn:aws:iam::123456789012:root"}, {"ann", "bob", "carol"}),
    ({"CanonicalUser": "carol"}, {"carol"}),
    ({"Service": "logging.s3.amazonaws.com"}, set()),
    ({"AWS": "carol", "Service": "logging.s3.amazonaws.com"}, {"carol"}),
]
REQUESTERS: list[str | None] = [None, "ann", "bob", "carol"]


@pytest.mark.parametrize(("principal", "matched"), PRINCIPALS, ids=[json.dumps(p) for p, _ in PRINCIPALS])
@pytest.mark.parametrize("effect", ["Allow", "Deny"])
def test_principal_matrix(principal: Any, matched: set[str | None], effect: str) -> None:
    text = doc(stmt(effect=effect, principal=principal))
    hit = Decision.ALLOW if effect == "Allow" else Decision.DENY
    for who in REQUESTERS:
        assert decide(text, who) is (hit if who in matched else Decision.NONE), who


@pytest.mark.parametrize(("principal", "matched"), PRINCIPALS, ids=[json.dumps(p) for p, _ in PRINCIPALS])
def test_not_principal_is_everyone_else(principal: Any, matched: set[str | None]) -> None:
    text = doc({"Effect": "Deny", "NotPrincipal": principal, "Action": "s3:GetObject", "Resource": OBJ})
    for who in REQUESTERS:
        assert decide(text, who) is (Decision.NONE if who in matched else Decision.DENY), who


# -- actions ----------------------------------------------------------------------------------

ACTION_CASES: list[tuple[Any, set[str]]] = [
    ("s3:*", {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectAcl"}),
    ("*", {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectAcl"}),
    ("s3:Get*", {"s3:GetObject", "s3:GetObjectAcl"}),
    ("s3:GetObject", {"s3:GetObject"}),
    ("S3:getOBJECT", {"s3:GetObject"}),
    ("s3:?utObject", {"s3:PutObject"}),
    ("s3:*Object", {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}),
    (["s3:PutObject", "s3:DeleteObject"], {"s3:PutObject", "s3:DeleteObject"}),
]
OBJECT_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectAcl"]


@pytest.mark.parametrize(("action", "matched"), ACTION_CASES, ids=[json.dumps(a) for a, _ in ACTION_CASES])
def test_action_matrix(action: Any, matched: set[str]) -> None:
    text = doc(stmt(action=action))
    not_text = doc({"Effect": "Allow", "Principal": "*", "NotAction": action, "Resource": OBJ})
    for a in OBJECT_ACTIONS:
        assert decide(text, "ann", a) is (Decision.ALLOW if a in matched else Decision.NONE), a
        assert decide(text, "ann", a.upper()) is decide(text, "ann", a)
        assert decide(not_text, "ann", a) is (Decision.NONE if a in matched else Decision.ALLOW), a


# -- resources --------------------------------------------------------------------------------

RESOURCE_CASES: list[tuple[Any, set[str | None]]] = [
    (OBJ, {"a.jpg", "pub/a.jpg", "pub/x/y", "abc", "pub/", "PUB/a.jpg"}),
    (f"{BUCKET}/pub/*", {"pub/a.jpg", "pub/x/y", "pub/"}),
    (f"{BUCKET}/pub/", {"pub/"}),
    (f"{BUCKET}/a?c", {"abc"}),
    (f"{BUCKET}/*.jpg", {"a.jpg", "pub/a.jpg", "PUB/a.jpg"}),
    (f"{BUCKET}*", {"a.jpg", "pub/a.jpg", "pub/x/y", "abc", "pub/", "PUB/a.jpg", None}),
    ([BUCKET, f"{BUCKET}/abc"], {"abc", None}),
]
KEYS: list[str | None] = ["a.jpg", "pub/a.jpg", "pub/x/y", "abc", "pub/", "PUB/a.jpg", None]


@pytest.mark.parametrize(("resource", "matched"), RESOURCE_CASES, ids=[json.dumps(r) for r, _ in RESOURCE_CASES])
def test_resource_matrix(resource: Any, matched: set[str | None]) -> None:
    text = doc(stmt(action="s3:*", resource=resource))
    not_text = doc({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "NotResource": resource})
    for key in KEYS:
        want = Decision.ALLOW if key in matched else Decision.NONE
        assert decide(text, "ann", "s3:ListBucket" if key is None else "s3:GetObject", key) is want, key
        flipped = Decision.NONE if key in matched else Decision.ALLOW
        assert decide(not_text, "ann", "s3:GetObject", key) is flipped, key


def test_decision_order_deny_beats_allow_then_allow_then_none() -> None:
    text = doc(stmt(action="s3:*", resource=[BUCKET, OBJ]),
               stmt(effect="Deny", principal={"AWS": "bob"}, action="s3:Delete*", resource=f"{BUCKET}/keep/*"))
    assert decide(text, "bob", "s3:DeleteObject", "keep/x") is Decision.DENY
    assert decide(text, "bob", "s3:DeleteObject", "tmp/x") is Decision.ALLOW
    assert decide(text, "ann", "s3:DeleteObject", "keep/x") is Decision.ALLOW
    only_deny = doc(stmt(effect="Deny", action="s3:PutObject"))
    assert decide(only_deny, "ann", "s3:GetObject") is Decision.NONE
    assert decide(only_deny, None, "s3:PutObject") is Decision.DENY


def test_policy_variables_in_resources() -> None:
    text = doc(stmt(principal={"AWS": "arn:aws:iam::123456789012:root"}, action="s3:*",
                    resource=[f"{BUCKET}/home/${{aws:username}}/*", f"{BUCKET}/lit/${{*}}/x${{?}}"]))
    assert decide(text, "ann", key="home/ann/notes.txt") is Decision.ALLOW
    assert decide(text, "ann", key="home/bob/notes.txt") is Decision.NONE
    assert decide(text, "ann", key="lit/*/x?") is Decision.ALLOW
    assert decide(text, "ann", key="lit/any/xy") is Decision.NONE  # ${*} and ${?} are literal characters
    # the user name is literal text: a '*' in it is no wildcard
    p = parse_policy(text, B)
    star = PolicyRequest("a*", frozenset(), "s3:GetObject", resource_arn(B, "home/ab/x"))
    assert evaluate(p, star) is Decision.NONE
    assert evaluate(p, PolicyRequest("a*", frozenset(), "s3:GetObject", resource_arn(B, "home/a*/x"))) \
        is Decision.ALLOW


def test_policy_variables_only_in_2012_10_17_and_with_defaults() -> None:
    old = doc(stmt(resource=f"{BUCKET}/home/${{aws:username}}/*"), version="2008-10-17")
    assert decide(old, "ann", key="home/ann/x") is Decision.NONE
    assert decide(old, "ann", key="home/${aws:username}/x") is Decision.ALLOW
    dflt = doc(stmt(resource=f"{BUCKET}/home/${{aws:username, 'guest'}}/*"))
    assert decide(dflt, None, key="home/guest/x") is Decision.ALLOW
    assert decide(dflt, "ann", key="home/guest/x") is Decision.NONE
    # a variable without a value matches nothing, for Allow and for Deny alike
    deny = doc(stmt(effect="Deny", resource=f"{BUCKET}/home/${{aws:username}}/*"))
    assert decide(deny, None, key="home/x/y") is Decision.NONE


def test_hostile_wildcards_take_linear_time() -> None:
    text = doc(stmt(resource=f"{BUCKET}/" + "*a" * 2000 + "*b"))
    p = parse_policy(text, B)
    req = PolicyRequest("ann", frozenset(), "s3:GetObject", resource_arn(B, "a" * 1024))
    start = time.perf_counter()
    assert evaluate(p, req) is Decision.NONE
    assert time.perf_counter() - start < 1.0
    assert Glob.parse("*a" * 2000 + "*").matches("a" * 2000)


# -- the operation table ----------------------------------------------------------------------

def _router_ops() -> set[str]:
    """Every operation name the router's tables can produce."""
    ops = {route("GET", "/", {}, "h").op}
    for method in ("GET", "HEAD", "PUT", "POST", "DELETE"):
        queries: list[dict[str, str]] = [{}, {"list-type": "2"}, {"zzz": ""}]
        queries += [{name: ""} for name in router._BUCKET_SUB] + [{name: "", "id": "x"} for name in router._BUCKET_SUB]
        queries += [{name: ""} for subs in router._OBJECT_SUB.values() for name, _ in subs]
        for path in ("/b", "/b/k"):
            for q in queries:
                try:
                    ops.add(route(method, path, q, "h").op)
                except S3Error:
                    pass
    return ops


def test_every_routed_operation_has_an_action() -> None:
    ops = _router_ops()
    assert {"ListObjectsV2", "UploadPart", "DeleteObjects", "GetBucketAccelerate", "HeadObject"} <= ops
    # not S3 operations a bucket policy governs: answered NotImplemented
    assert ops - ACTIONS.keys() <= {router.UNKNOWN, "CreateSession", "RenameObject"}


@pytest.mark.parametrize(("op", "action", "level"), [
    ("GetObject", "s3:GetObject", Level.OBJECT), ("HeadObject", "s3:GetObject", Level.OBJECT),
    ("ListObjects", "s3:ListBucket", Level.BUCKET), ("ListObjectsV2", "s3:ListBucket", Level.BUCKET),
    ("HeadBucket", "s3:ListBucket", Level.BUCKET), ("ListObjectVersions", "s3:ListBucketVersions", Level.BUCKET),
    ("PutObject", "s3:PutObject", Level.OBJECT), ("CopyObject", "s3:PutObject", Level.OBJECT),
    ("UploadPart", "s3:PutObject", Level.OBJECT), ("CreateMultipartUpload", "s3:PutObject", Level.OBJECT),
    ("CompleteMultipartUpload", "s3:PutObject", Level.OBJECT), ("DeleteObject", "s3:DeleteObject", Level.OBJECT),
    ("DeleteObjects", "s3:DeleteObject", Level.OBJECT),
    ("AbortMultipartUpload", "s3:AbortMultipartUpload", Level.OBJECT),
    ("ListParts", "s3:ListMultipartUploadParts", Level.OBJECT),
    ("ListMultipartUploads", "s3:ListBucketMultipartUploads", Level.BUCKET),
    ("GetObjectTagging", "s3:GetObjectTagging", Level.OBJECT),
    ("PutObjectTagging", "s3:PutObjectTagging", Level.OBJECT),
    ("GetBucketPolicy", "s3:GetBucketPolicy", Level.BUCKET), ("PutBucketPolicy", "s3:PutBucketPolicy", Level.BUCKET),
    ("DeleteBucketPolicy", "s3:DeleteBucketPolicy", Level.BUCKET),
    ("GetBucketPolicyStatus", "s3:GetBucketPolicyStatus", Level.BUCKET),
    ("GetBucketAcl", "s3:GetBucketAcl", Level.BUCKET), ("PutBucketAcl", "s3:PutBucketAcl", Level.BUCKET),
    ("GetObjectAcl", "s3:GetObjectAcl", Level.OBJECT), ("PutObjectAcl", "s3:PutObjectAcl", Level.OBJECT),
    ("PutPublicAccessBlock", "s3:PutBucketPublicAccessBlock", Level.BUCKET),
    ("GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock", Level.BUCKET),
    ("GetBucketLocation", "s3:GetBucketLocation", Level.BUCKET), ("DeleteBucket", "s3:DeleteBucket", Level.BUCKET),
    ("ListBuckets", "s3:ListAllMyBuckets", Level.SERVICE),
])
def test_action_table(op: str, action: str, level: Level) -> None:
    assert (ACTIONS[op].action, ACTIONS[op].level) == (action, level)


def test_table_names_known_actions_at_their_level() -> None:
    for op, a in ACTIONS.items():
        assert KNOWN[a.action] is a.level, op
    assert iam_action("GetObject", version_id="v1") == "s3:GetObjectVersion"
    assert iam_action("PutObject", version_id="v1") == "s3:PutObject"
    assert resource_arn() == "*"


# -- the request path: stored policy + a request's keys ------------------------------------------

def test_home_directories_policy_with_request_keys() -> None:
    """AWS's "home folder" example: list only your own prefix, over TLS, from the office network."""
    text = doc(
        stmt(principal={"AWS": "arn:aws:iam::123456789012:root"}, action="s3:ListBucket", resource=BUCKET,
             Condition={"StringLike": {"s3:prefix": ["", "home/", "home/${aws:username}/*"]},
                        "StringEquals": {"s3:delimiter": "/"}}),
        stmt(principal={"AWS": "arn:aws:iam::123456789012:root"}, action=["s3:GetObject", "s3:PutObject"],
             resource=f"{BUCKET}/home/${{aws:username}}/*"),
        stmt(effect="Deny", action="s3:*", resource=[BUCKET, OBJ],
             Condition={"Bool": {"aws:SecureTransport": "false"}}),
        stmt(effect="Deny", action="s3:*", resource=[BUCKET, OBJ],
             Condition={"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "fd00::/8"]}}),
    )
    p = load_policy(text, B)
    assert load_policy(text, B) is p  # parsed once

    def d(user: str | None, action: str, key: str | None, query: dict[str, str] | None = None,
          secure: bool = True, ip: str = "10.1.1.1") -> Decision:
        keys = request_keys(source_ip=ip, secure=secure, now=time.time(), query=query)
        return evaluate(p, PolicyRequest(user, frozenset(), action, resource_arn(B, key), keys))

    assert d("ann", "s3:ListBucket", None, {"prefix": "home/ann/", "delimiter": "/"}) is Decision.ALLOW
    assert d("ann", "s3:ListBucket", None, {"prefix": "", "delimiter": "/"}) is Decision.ALLOW
    assert d("ann", "s3:ListBucket", None, {"prefix": "home/bob/", "delimiter": "/"}) is Decision.NONE
    assert d("ann", "s3:ListBucket", None, {"prefix": "home/ann/"}) is Decision.NONE  # no delimiter
    assert d("ann", "s3:ListBucket", None, {"delimiter": "/"}) is Decision.NONE  # no prefix parameter
    assert d(None, "s3:ListBucket", None, {"prefix": "", "delimiter": "/"}) is Decision.NONE
    assert d("ann", "s3:PutObject", "home/ann/a.txt") is Decision.ALLOW
    assert d("ann", "s3:PutObject", "home/bob/a.txt") is Decision.NONE
    assert d("ann", "s3:PutObject", "home/ann/a.txt", secure=False) is Decision.DENY
    assert d("ann", "s3:PutObject", "home/ann/a.txt", ip="192.0.2.1") is Decision.DENY
    assert d("ann", "s3:PutObject", "home/ann/a.txt", ip="fd00::1") is Decision.ALLOW


def test_tag_keys_from_request_keys() -> None:
    text = doc(stmt(action="s3:PutObject", Condition={
        "StringEquals": {"s3:RequestObjectTag/team": "red"},
        "ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["team", "env"]}}),
        stmt(action="s3:GetObject", Condition={"StringEquals": {"s3:ExistingObjectTag/public": "yes"}}))
    p = parse_policy(text, B)

    def d(action: str, **kw: Any) -> Decision:
        keys = request_keys(source_ip="127.0.0.1", secure=True, now=0, **kw)
        return evaluate(p, PolicyRequest("ann", frozenset(), action, resource_arn(B, "k"), keys))

    assert d("s3:PutObject", request_tags={"team": "red", "env": "x"}) is Decision.ALLOW
    assert d("s3:PutObject", request_tags={"team": "red", "owner": "x"}) is Decision.NONE
    assert d("s3:PutObject", request_tags={"team": "blue"}) is Decision.NONE
    assert d("s3:PutObject") is Decision.NONE
    assert d("s3:GetObject", existing_tags={"public": "yes"}) is Decision.ALLOW
    assert d("s3:GetObject", existing_tags={"Public": "yes"}) is Decision.NONE
    assert d("s3:GetObject", headers={"x-amz-acl": "private"}) is Decision.NONE
