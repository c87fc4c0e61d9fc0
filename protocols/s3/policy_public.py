"""Whether a bucket policy statement is "public", in the sense of AWS's GetBucketPolicyStatus.

AWS ("The meaning of public", S3 User Guide; PublicAccessBlockConfiguration in the API
reference): a policy is public unless each statement that grants to everyone either limits
access to a set of CIDRs with ``aws:SourceIp`` or grants only to a fixed value of one of
aws:SourceArn, aws:SourceVpc, aws:SourceVpce, aws:SourceOwner, aws:SourceAccount,
s3:x-amz-server-side-encryption-aws-kms-key-id or aws:userid -- or grants no "bad action"
(s3:Get*, s3:List*, s3:AbortMultipartUpload, s3:Delete*, s3:Put*, s3:RestoreObject).

Here, as there:

- only Allow statements count; one granting to ``"*"`` (or ``{"AWS": "*"}``) or using
  NotPrincipal grants to everyone; a named user, group or the account (``...:root``) is fixed;
- a condition fixes the requester only when it must hold: not negated, not ``...IfExists``,
  not ``ForAllValues:`` (all of which pass when the key is absent);
- ``aws:SourceIp`` ranges wider than /8 (IPv4) or /32 (IPv6) are public, as AWS counts them;
- a fixed value has no wildcard and no policy variable; ``aws:username``, ``aws:PrincipalAccount``,
  ``aws:PrincipalArn`` and ``aws:PrincipalOrgID`` also fix the requester (they name who signs).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from protocols.s3.policy_actions import KNOWN_LOWER
from protocols.s3.policy_cond import Condition, Kind
from protocols.s3.policy_match import Glob

if TYPE_CHECKING:
    from protocols.s3.policy import Statement

_BAD = [Glob.parse(p, variables=False, fold=True) for p in
        ("s3:Get*", "s3:List*", "s3:AbortMultipartUpload", "s3:Delete*", "s3:Put*", "s3:RestoreObject")]
BAD_ACTIONS = tuple(sorted(a for a in KNOWN_LOWER if any(b.matches(a) for b in _BAD)))
FIXING_KEYS = frozenset({
    "aws:sourcearn", "aws:sourcevpc", "aws:sourcevpce", "aws:sourceowner", "aws:sourceaccount",
    "s3:x-amz-server-side-encryption-aws-kms-key-id", "aws:userid", "aws:username", "aws:principalaccount",
    "aws:principalarn", "aws:principalorgid",
})


def _narrow(net: object) -> bool:
    if isinstance(net, ipaddress.IPv4Network):
        return net.prefixlen >= 8
    return isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 32


def restricts(c: Condition) -> bool:
    """Whether a condition limits a statement to fixed requesters (CIDRs or fixed values)."""
    if c.if_exists or c.negated or c.qualifier == "ForAllValues":
        return False
    if c.key == "aws:sourceip" and c.kind is Kind.IP:
        return all(_narrow(n) for n in c.values)
    if c.key in FIXING_KEYS and c.kind in (Kind.STRING, Kind.STRING_CI, Kind.LIKE):
        return all(isinstance(v, Glob) and not v.has_wildcards and not v.has_variables for v in c.values)
    return False


def statement_is_public(s: Statement) -> bool:
    if s.effect.value != "Allow":
        return False
    if s.principal.everyone == s.not_principal:  # NotPrincipal "*" names nobody
        return False
    if not any(s.action_matches(a) for a in BAD_ACTIONS):
        return False
    return not any(restricts(c) for c in s.conditions)
