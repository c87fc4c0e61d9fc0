"""S3 bucket policies: the AWS policy language, parsed and validated as S3 does, and evaluated.

Pure functions, no I/O. The handler stores the policy's text as given, answers an invalid one
with ``MalformedPolicy`` and the :class:`PolicyError`'s reason, and asks :func:`evaluate` about
each request::

    policy = parse_policy(body, bucket)            # PutBucketPolicy
    d = evaluate(policy, PolicyRequest("ann", frozenset({"staff"}), "s3:GetObject",
                                       resource_arn(bucket, key), {"aws:SourceIp": ["10.0.0.7"]}))

Principals are our users: ``"*"`` (everyone, anonymous included), ``{"AWS": ...}`` with
``arn:aws:iam:::user/NAME`` (Ceph RGW's spelling), ``arn:aws:iam::ACCOUNT:user/NAME``, a bare
``NAME``, ``arn:aws:iam:::group/NAME`` for a group, ``arn:aws:iam::ACCOUNT:root`` (every
signed-in user: the store is one account), and ``{"CanonicalUser": NAME}`` (our canonical ID is
the user name). ``Service`` principals are accepted and match no request. A bare name is a
user's, even when it is all digits (AWS would read twelve digits as an account).

The request path uses :func:`load_policy` (parsed once per process) and :func:`request_keys`
(the condition keys of a request); PutBucketPolicy uses :func:`parse_policy` with ``known``.

>>> p = parse_policy('''{"Version": "2012-10-17", "Statement": [
...   {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pics/pub/*"},
...   {"Effect": "Deny", "Principal": {"AWS": "mallory"}, "Action": "s3:*", "Resource": "arn:aws:s3:::pics/*"}]}''',
...   "pics")
>>> evaluate(p, PolicyRequest(None, frozenset(), "s3:GetObject", "arn:aws:s3:::pics/pub/a.jpg"))
<Decision.ALLOW: 'allow'>
>>> evaluate(p, PolicyRequest("mallory", frozenset(), "s3:GetObject", "arn:aws:s3:::pics/pub/a.jpg"))
<Decision.DENY: 'deny'>
>>> evaluate(p, PolicyRequest("ann", frozenset(), "s3:PutObject", "arn:aws:s3:::pics/pub/a.jpg"))
<Decision.NONE: 'none'>
>>> is_public(p)
True
"""

from __future__ import annotations

import enum
import functools
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from protocols.s3.policy_actions import ACTIONS, KNOWN, KNOWN_LOWER, Level, OpAction, iam_action, resource_arn
from protocols.s3.policy_cond import Condition, PolicyError, parse_block
from protocols.s3.policy_match import Context, Glob, norm_key
from protocols.s3.policy_public import statement_is_public

__all__ = ["ACTIONS", "Decision", "Effect", "Level", "OpAction", "Policy", "PolicyError", "PolicyRequest",
           "Principal", "Statement", "evaluate", "iam_action", "is_public", "load_policy", "parse_policy",
           "request_keys", "resource_arn"]

MAX_POLICY = 20 * 1024
VERSIONS = ("2012-10-17", "2008-10-17")
NOT_JSON = "Policies must be valid JSON and the first byte must be '{'"
_TOP = {"Version", "Id", "Statement"}
_STMT = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource",
         "Condition"}
_NAME = r"[\w+=,.@-]{1,64}"
_IAM_ARN = re.compile(rf"^arn:aws:iam::([A-Za-z0-9_-]{{0,64}}):(?:(root)|(user|group)/(?:[\w+=,.@-]+/)*({_NAME}))$",
                      re.ASCII)
_BARE = re.compile(rf"^{_NAME}$", re.ASCII)
_ACTION = re.compile(r"^s3:[A-Za-z*?]+$|^\*$", re.ASCII | re.IGNORECASE)
ARN_PREFIX = "arn:aws:s3:::"


class Effect(enum.Enum):
    ALLOW = "Allow"
    DENY = "Deny"


class Decision(enum.Enum):
    """What a policy says about a request: an explicit deny, an allow, or nothing (no statement applies)."""

    ALLOW = "allow"
    DENY = "deny"
    NONE = "none"


@dataclass(frozen=True)
class Principal:
    """Who a Principal element names. ``account`` = every signed-in user (``...:root``)."""

    everyone: bool = False
    account: bool = False
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    def matches(self, user: str | None, groups: frozenset[str]) -> bool:
        if self.everyone:
            return True
        if user is None:
            return False
        return self.account or user in self.users or not self.groups.isdisjoint(groups)


@dataclass(frozen=True)
class Statement:
    effect: Effect
    principal: Principal
    actions: tuple[Glob, ...]
    resources: tuple[Glob, ...]
    conditions: tuple[Condition, ...] = ()
    not_principal: bool = False
    not_action: bool = False
    not_resource: bool = False
    sid: str | None = None

    def action_matches(self, action: str) -> bool:
        return any(g.matches(action) for g in self.actions) != self.not_action

    def applies(self, user: str | None, groups: frozenset[str], action: str, resource: str, ctx: Context) -> bool:
        if self.principal.matches(user, groups) == self.not_principal:
            return False
        if not self.action_matches(action):
            return False
        if any(g.matches(resource, ctx) for g in self.resources) == self.not_resource:
            return False
        return all(c.check(ctx) for c in self.conditions)


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]
    version: str = "2008-10-17"
    id: str | None = None
    text: str = field(default="", compare=False)


@dataclass(frozen=True)
class PolicyRequest:
    """One request as a policy sees it. ``context`` maps condition keys (any case) to their values;
    aws:username, aws:userid and aws:PrincipalType are filled in from ``principal`` when absent."""

    principal: str | None
    groups: frozenset[str]
    action: str
    resource: str
    context: Mapping[str, Sequence[str]] = field(default_factory=dict)


# -- parsing ----------------------------------------------------------------------------------

class _Num(str):
    """A JSON number, kept as the text the policy wrote."""


def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in pairs:
        if k in out:
            raise PolicyError(f"Duplicate field {k[:100]}")
        out[k] = v
    return out


def _no_constant(name: str) -> object:
    raise PolicyError(NOT_JSON)


def _load(text: str | bytes) -> dict[str, object]:
    if isinstance(text, bytes | bytearray):
        if len(text) > 4 * MAX_POLICY:
            raise PolicyError("Policy exceeds the maximum allowed document size.")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyError(NOT_JSON) from None
    if len(text) > 4 * MAX_POLICY:
        raise PolicyError("Policy exceeds the maximum allowed document size.")
    if not text.lstrip(" \t\r\n").startswith("{"):
        raise PolicyError(NOT_JSON)
    try:
        doc = json.loads(text, object_pairs_hook=_pairs, parse_int=_Num, parse_float=_Num,
                         parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise PolicyError(NOT_JSON) from None
    if not isinstance(doc, dict):
        raise PolicyError(NOT_JSON)
    try:  # AWS counts the policy without its whitespace
        size = len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode())
    except RecursionError:
        raise PolicyError(NOT_JSON) from None
    if size > MAX_POLICY:
        raise PolicyError("Policy exceeds the maximum allowed document size.")
    return doc


def _strings(value: object, what: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(i, str) and not isinstance(i, _Num) for i in items):
        raise PolicyError(what)
    return [str(i) for i in items]


Known = Callable[[str, str], bool]


def _aws_principal(value: str, known: Known | None) -> Principal:
    bad = PolicyError("Invalid principal in policy")
    if value == "*":
        return Principal(everyone=True)
    m = _IAM_ARN.match(value)
    if m:
        if m.group(2):
            return Principal(account=True)
        kind, name = m.group(3), m.group(4)
    elif _BARE.match(value):
        kind, name = "user", value
    else:
        raise bad
    if known is not None and not known(kind, name):
        raise bad
    return Principal(users=frozenset({name})) if kind == "user" else Principal(groups=frozenset({name}))


def _principal(value: object, known: Known | None) -> Principal:
    bad = "Invalid principal in policy"
    if value == "*":
        return Principal(everyone=True)
    if not isinstance(value, dict) or not value:
        raise PolicyError(bad)
    parts: list[Principal] = []
    for kind, v in value.items():
        names = _strings(v, bad)
        if kind == "AWS":
            parts += [_aws_principal(n, known) for n in names]
        elif kind == "CanonicalUser":
            if not all(_BARE.match(n) for n in names) or (known and not all(known("user", n) for n in names)):
                raise PolicyError(bad)
            parts.append(Principal(users=frozenset(names)))
        elif kind != "Service":
            raise PolicyError(bad)
    return Principal(everyone=any(p.everyone for p in parts), account=any(p.account for p in parts),
                     users=frozenset().union(*(p.users for p in parts)),
                     groups=frozenset().union(*(p.groups for p in parts)))


@functools.lru_cache(maxsize=1024)
def _action(text: str) -> tuple[Glob, frozenset[Level]]:
    """An action pattern and the levels of the known actions it names (none: invalid)."""
    if not _ACTION.match(text):
        raise PolicyError("Policy has invalid action")
    g = Glob.parse(text, variables=False, fold=True)
    levels = frozenset(KNOWN[name] for low, name in KNOWN_LOWER.items() if g.matches(low))
    if not levels:
        raise PolicyError("Policy has invalid action")
    return g, levels


def _resource(text: str, bucket: str, variables: bool) -> Glob:
    """A resource must lie in this bucket: its fixed text starts with the bucket's ARN."""
    g = Glob.parse(text, variables=variables)
    fixed = g.literal_prefix()
    own = ARN_PREFIX + bucket
    inside = fixed == own or fixed.startswith(own + "/")
    if not text.startswith(ARN_PREFIX) or not inside:
        raise PolicyError("Policy has invalid resource")
    return g


def _reaches(g: Glob, bucket: str, level: Level) -> bool:
    """Whether resource pattern g can name the bucket (BUCKET) or an object in it (OBJECT)."""
    own = ARN_PREFIX + bucket
    if level is Level.SERVICE:
        return False
    rest = g.text[len(own):]
    if level is Level.BUCKET:
        return rest == "" or rest.strip("*") == ""
    return rest.startswith("/") or (rest[:1] in ("*", "$") and rest != "")


def _check_applicable(actions: list[tuple[Glob, frozenset[Level]]], resources: tuple[Glob, ...], bucket: str) -> None:
    """AWS refuses a statement whose action cannot apply to any of its resources."""
    for _, levels in actions:
        if not any(_reaches(r, bucket, lvl) for r in resources for lvl in levels):
            raise PolicyError("Action does not apply to any resource(s) in statement")


def _one_of(stmt: Mapping[str, object], name: str) -> tuple[object, bool]:
    """The value of Name or NotName, and whether it was the Not form."""
    has, has_not = name in stmt, f"Not{name}" in stmt
    if has and has_not:
        raise PolicyError(f"Statement can not contain both {name} and Not{name}")
    if not has and not has_not:
        raise PolicyError(f"Missing required field {name}")
    return (stmt[f"Not{name}"], True) if has_not else (stmt[name], False)


def _statement(raw: object, bucket: str, variables: bool, known: Known | None) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError("Statement must be an object or a list of objects")
    for k in raw:
        if k not in _STMT:
            raise PolicyError(f"Unknown field {k[:100]}")
    sid = raw.get("Sid")
    if sid is not None and (not isinstance(sid, str) or isinstance(sid, _Num)):
        raise PolicyError("Sid must be a string")
    if "Effect" not in raw:
        raise PolicyError("Missing required field Effect")
    if raw["Effect"] not in ("Allow", "Deny"):
        raise PolicyError(f"Invalid effect: {str(raw['Effect'])[:100]}")
    principal, not_principal = _one_of(raw, "Principal")
    actions_raw, not_action = _one_of(raw, "Action")
    resources_raw, not_resource = _one_of(raw, "Resource")
    actions = [_action(a) for a in _strings(actions_raw, "Policy has invalid action")]
    resources = tuple(_resource(r, bucket, variables)
                      for r in _strings(resources_raw, "Policy has invalid resource"))
    if not not_action and not not_resource:
        _check_applicable(actions, resources, bucket)
    conditions = parse_block(raw["Condition"], variables=variables) if "Condition" in raw else ()
    return Statement(Effect(raw["Effect"]), _principal(principal, known), tuple(g for g, _ in actions), resources,
                     conditions,
                     not_principal, not_action, not_resource, sid)


def parse_policy(text: str | bytes, bucket: str, *, known: Known | None = None) -> Policy:
    """Parse and validate a bucket policy for ``bucket``; PolicyError(reason) when it is invalid.

    ``known(kind, name)``, if given, says whether a user or group exists: a policy naming one
    that does not is refused, as AWS refuses unknown principals.

    >>> parse_policy('{"Statement": []}', "b")
    Traceback (most recent call last):
    ...
    protocols.s3.policy_cond.PolicyError: Could not parse the policy: Statement is empty!
    """
    doc = _load(text)
    for k in doc:
        if k not in _TOP:
            raise PolicyError(f"Unknown field {k[:100]}")
    version = doc.get("Version", "2008-10-17")
    if version not in VERSIONS:
        raise PolicyError("The policy must contain a valid version string")
    pid = doc.get("Id")
    if pid is not None and (not isinstance(pid, str) or isinstance(pid, _Num)):
        raise PolicyError("Id must be a string")
    if "Statement" not in doc:
        raise PolicyError("Missing required field Statement")
    raw = doc["Statement"]
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise PolicyError("Could not parse the policy: Statement is empty!")
    statements = tuple(_statement(s, bucket, version == "2012-10-17", known) for s in items)
    sids = [s.sid for s in statements if s.sid]
    if len(sids) != len(set(sids)):
        raise PolicyError("Statement IDs (SID) in a single policy must be unique")
    return Policy(statements, str(version), None if pid is None else str(pid),
                  text if isinstance(text, str) else bytes(text).decode())


@functools.lru_cache(maxsize=256)
def load_policy(text: str, bucket: str) -> Policy:
    """A stored policy, parsed once per process (the request path; users named in it need not exist)."""
    return parse_policy(text, bucket)


_QUERY_KEYS = {"prefix": "s3:prefix", "delimiter": "s3:delimiter", "max-keys": "s3:max-keys",
               "versionId": "s3:versionid"}
_HEADER_KEYS = ("x-amz-acl", "x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-read-acp",
                "x-amz-grant-write-acp", "x-amz-grant-full-control", "x-amz-copy-source", "x-amz-metadata-directive",
                "x-amz-server-side-encryption", "x-amz-storage-class", "x-amz-content-sha256")


def request_keys(*, source_ip: str, secure: bool, now: float, query: Mapping[str, str] | None = None,
                 headers: Mapping[str, str] | None = None, existing_tags: Mapping[str, str] | None = None,
                 request_tags: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """The condition keys of one request, from its facts (``headers`` with lower-case names).
    A key the request does not have is left out, so that conditions see it as absent.

    >>> k = request_keys(source_ip="10.0.0.7", secure=False, now=0, query={"prefix": "", "list-type": "2"},
    ...                  existing_tags={"team": "a"})
    >>> k["aws:SourceIp"], k["aws:SecureTransport"], k["aws:CurrentTime"], k["s3:prefix"]
    (['10.0.0.7'], ['false'], ['1970-01-01T00:00:00Z'], [''])
    >>> k["s3:ExistingObjectTag/team"], "s3:delimiter" in k
    (['a'], False)
    """
    keys: dict[str, list[str]] = {
        "aws:SourceIp": [source_ip], "aws:SecureTransport": ["true" if secure else "false"],
        "aws:CurrentTime": [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))],
        "aws:EpochTime": [str(int(now))],
    }
    for param, key in _QUERY_KEYS.items():
        if query is not None and param in query:
            keys[key] = [query[param]]
    for h in _HEADER_KEYS:
        if headers is not None and h in headers:
            keys[f"s3:{h}"] = [headers[h]]
    for tk, tv in (existing_tags or {}).items():
        keys[f"s3:ExistingObjectTag/{tk}"] = [tv]
    if request_tags is not None:
        for tk, tv in request_tags.items():
            keys[f"s3:RequestObjectTag/{tk}"] = [tv]
        keys["s3:RequestObjectTagKeys"] = list(request_tags)
    return keys


# -- evaluation -------------------------------------------------------------------------------

def request_context(req: PolicyRequest) -> dict[str, Sequence[str]]:
    """The request's condition context with keys normalised and the principal's keys filled in."""
    ctx = {norm_key(k): v for k, v in req.context.items()}
    if req.principal is not None:
        ctx.setdefault("aws:username", [req.principal])
        ctx.setdefault("aws:userid", [req.principal])
    ctx.setdefault("aws:principaltype", ["User" if req.principal is not None else "Anonymous"])
    return ctx


def evaluate(policy: Policy, req: PolicyRequest, *, restrict_public: bool = False) -> Decision:
    """Explicit deny > allow > NONE. ``restrict_public`` (Public Access Block's
    RestrictPublicBuckets) stops public Allow statements from applying to anonymous requests."""
    ctx = request_context(req)
    action = req.action.lower()
    allowed = False
    for s in policy.statements:
        if not s.applies(req.principal, req.groups, action, req.resource, ctx):
            continue
        if s.effect is Effect.DENY:
            return Decision.DENY
        if restrict_public and req.principal is None and statement_is_public(s):
            continue
        allowed = True
    return Decision.ALLOW if allowed else Decision.NONE


def is_public(policy: Policy) -> bool:
    """AWS's "public" (GetBucketPolicyStatus, BlockPublicPolicy): see policy_public."""
    return any(statement_is_public(s) for s in policy.statements)
