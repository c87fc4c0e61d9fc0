"""The Condition element of the AWS policy language: operators parsed once, evaluated per request.

A condition block ``{"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "::1"]}}`` becomes one
:class:`Condition` per (operator, key). The rules, as IAM documents them:

- operators AND together, keys under one operator AND together, values of one key OR together
  (NOR for a negated operator such as ``StringNotEquals`` or ``NotIpAddress``);
- a key absent from the request makes the condition false, except that negated operators,
  ``...IfExists`` operators and ``ForAllValues:`` are then true, and ``Null`` tests presence;
- ``ForAnyValue:`` / ``ForAllValues:`` compare each of a multi-valued key's values.

>>> c = parse_block({"StringLike": {"s3:prefix": ["home/${aws:username}/*", "public/*"]}}, variables=True)
>>> check_all(c, {"s3:prefix": ["home/ann/x"], "aws:username": ["ann"]})
True
>>> check_all(c, {"s3:prefix": ["home/bob/x"], "aws:username": ["ann"]})
False
>>> check_all(parse_block({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}), {})
True
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from protocols.s3.policy_match import Context, Glob, lookup, norm_key


class PolicyError(Exception):
    """An invalid policy; ``reason`` is the MalformedPolicy message sent to the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Kind(enum.Enum):
    STRING = "string"
    STRING_CI = "string-ignore-case"
    LIKE = "like"
    NUMERIC = "numeric"
    DATE = "date"
    BOOL = "bool"
    BINARY = "binary"
    IP = "ip"
    NULL = "null"


# operator -> (kind, comparison, negated); comparison names one of _COMPARE's entries
_OPS: dict[str, tuple[Kind, str, bool]] = {
    "StringEquals": (Kind.STRING, "eq", False), "StringNotEquals": (Kind.STRING, "eq", True),
    "StringEqualsIgnoreCase": (Kind.STRING_CI, "eq", False),
    "StringNotEqualsIgnoreCase": (Kind.STRING_CI, "eq", True),
    "StringLike": (Kind.LIKE, "eq", False), "StringNotLike": (Kind.LIKE, "eq", True),
    "ArnEquals": (Kind.LIKE, "eq", False), "ArnLike": (Kind.LIKE, "eq", False),
    "ArnNotEquals": (Kind.LIKE, "eq", True), "ArnNotLike": (Kind.LIKE, "eq", True),
    "NumericEquals": (Kind.NUMERIC, "eq", False), "NumericNotEquals": (Kind.NUMERIC, "eq", True),
    "NumericLessThan": (Kind.NUMERIC, "lt", False), "NumericLessThanEquals": (Kind.NUMERIC, "le", False),
    "NumericGreaterThan": (Kind.NUMERIC, "gt", False), "NumericGreaterThanEquals": (Kind.NUMERIC, "ge", False),
    "DateEquals": (Kind.DATE, "eq", False), "DateNotEquals": (Kind.DATE, "eq", True),
    "DateLessThan": (Kind.DATE, "lt", False), "DateLessThanEquals": (Kind.DATE, "le", False),
    "DateGreaterThan": (Kind.DATE, "gt", False), "DateGreaterThanEquals": (Kind.DATE, "ge", False),
    "Bool": (Kind.BOOL, "eq", False),
    "BinaryEquals": (Kind.BINARY, "eq", False),
    "IpAddress": (Kind.IP, "in", False), "NotIpAddress": (Kind.IP, "in", True),
    "Null": (Kind.NULL, "eq", False),
}
_COMPARE: dict[str, Callable[[object, object], bool]] = {
    "eq": lambda a, b: a == b,
    "lt": lambda a, b: a < b,  # type: ignore[operator]
    "le": lambda a, b: a <= b,  # type: ignore[operator]
    "gt": lambda a, b: a > b,  # type: ignore[operator]
    "ge": lambda a, b: a >= b,  # type: ignore[operator]
    "in": lambda a, b: a in b,  # type: ignore[operator]
}
_KEY = re.compile(r"^[A-Za-z0-9-]+:[A-Za-z0-9_.:-]+(/.+)?$", re.DOTALL)
_QUALIFIERS = ("ForAnyValue", "ForAllValues")
MAX_VALUES = 1000

Value = Glob | Decimal | dt.datetime | ipaddress.IPv4Network | ipaddress.IPv6Network | bool | str


def parse_number(s: str) -> Decimal | None:
    """A finite number, or None.

    >>> parse_number("1e3"), parse_number("x"), parse_number("NaN")
    (Decimal('1E+3'), None, None)
    """
    try:
        d = Decimal(s.strip())
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def parse_date(s: str) -> dt.datetime | None:
    """An ISO 8601 date/time or a count of seconds since the epoch, as an aware UTC datetime.

    >>> parse_date("2024-02-01T10:00:00Z") == parse_date("1706781600")
    True
    >>> parse_date("tomorrow") is None
    True
    """
    s = s.strip()
    try:
        if re.fullmatch(r"-?\d{1,12}(\.\d+)?", s):
            return dt.datetime.fromtimestamp(float(s), dt.UTC)
        d = dt.datetime.fromisoformat(s)
    except (ValueError, OverflowError, OSError):
        return None
    return d.replace(tzinfo=dt.UTC) if d.tzinfo is None else d


def parse_ip(s: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A request's address; an IPv4-mapped IPv6 address counts as the IPv4 address.

    >>> parse_ip("::ffff:10.1.2.3")
    IPv4Address('10.1.2.3')
    """
    try:
        a = ipaddress.ip_address(s.strip())
    except ValueError:
        return None
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        return a.ipv4_mapped
    return a


@dataclass(frozen=True)
class Condition:
    """One (operator, key) pair of a Condition block and its parsed values."""

    operator: str  # as written, e.g. "ForAnyValue:StringLikeIfExists"
    base: str  # e.g. "StringLike"
    key: str  # normalised with norm_key
    values: tuple[Value, ...]
    if_exists: bool = False
    qualifier: str | None = None

    @property
    def kind(self) -> Kind:
        return _OPS[self.base][0]

    @property
    def negated(self) -> bool:
        return _OPS[self.base][2]

    def check(self, ctx: Context) -> bool:
        vals = lookup(ctx, self.key)
        if self.kind is Kind.NULL:
            return (vals is None) == bool(self.values[0])
        if vals is None:
            return self.if_exists or self.negated or self.qualifier == "ForAllValues"
        if self.qualifier == "ForAllValues":
            return all(self._one(v, ctx) for v in vals)
        if self.qualifier == "ForAnyValue" or not self.negated:
            return any(self._one(v, ctx) for v in vals)
        return all(self._one(v, ctx) for v in vals)

    def _one(self, v: str, ctx: Context) -> bool:
        """Whether one request value satisfies the operator (negation included)."""
        hit = any(self._hit(v, pv, ctx) for pv in self.values)
        return not hit if self.negated else hit

    def _hit(self, v: str, pv: Value, ctx: Context) -> bool:
        kind = self.kind
        if isinstance(pv, Glob):
            if kind is Kind.LIKE:
                return pv.matches(v, ctx)
            want = pv.value(ctx)
            if want is None:
                return False
            return want.lower() == v.lower() if kind is Kind.STRING_CI else want == v
        cmp = _COMPARE[_OPS[self.base][1]]
        subject: object
        if kind is Kind.NUMERIC:
            subject = parse_number(v)
        elif kind is Kind.DATE:
            subject = parse_date(v)
        elif kind is Kind.IP:
            subject = parse_ip(v)
        elif kind is Kind.BOOL:
            subject = v.strip().lower() == "true" if v.strip().lower() in ("true", "false") else None
        else:
            subject = v
        return subject is not None and cmp(subject, pv)


def _scalar_values(op: str, raw: object) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    if not items or len(items) > MAX_VALUES:
        raise PolicyError(f"Invalid Condition value for {op}: a value or a list of values is required")
    out: list[str] = []
    for v in items:
        if isinstance(v, bool):
            out.append("true" if v else "false")
        elif isinstance(v, str):
            out.append(v)
        else:
            raise PolicyError(f"Invalid Condition value for {op}: values must be strings, numbers or booleans")
    return out


def _parse_value(base: str, kind: Kind, s: str, variables: bool) -> Value:
    bad = PolicyError(f"Invalid Condition value for {base}: {s[:100]!r}")
    if kind in (Kind.STRING, Kind.STRING_CI, Kind.BINARY):
        return Glob.parse(s, wildcards=False, variables=variables and kind is not Kind.BINARY)
    if kind is Kind.LIKE:
        return Glob.parse(s, variables=variables)
    if kind is Kind.NUMERIC:
        n = parse_number(s)
        if n is None:
            raise bad
        return n
    if kind is Kind.DATE:
        d = parse_date(s)
        if d is None:
            raise bad
        return d
    if kind is Kind.IP:
        try:
            return ipaddress.ip_network(s.strip(), strict=False)
        except ValueError:
            raise bad from None
    if s.strip().lower() not in ("true", "false"):  # Bool and Null
        raise bad
    return s.strip().lower() == "true"


def split_operator(op: str) -> tuple[str | None, str, bool]:
    """(qualifier, base operator, IfExists) of an operator name, or PolicyError.

    >>> split_operator("ForAnyValue:StringLikeIfExists")
    ('ForAnyValue', 'StringLike', True)
    """
    qualifier = None
    rest = op
    if ":" in op:
        qualifier, _, rest = op.partition(":")
        if qualifier not in _QUALIFIERS:
            raise PolicyError(f"Invalid Condition operator: {op[:100]}")
    if_exists = rest.endswith("IfExists") and rest != "IfExists"
    base = rest[: -len("IfExists")] if if_exists else rest
    if base not in _OPS or (base == "Null" and (if_exists or qualifier)):
        raise PolicyError(f"Invalid Condition operator: {op[:100]}")
    return qualifier, base, if_exists


def parse_block(block: object, *, variables: bool = False) -> tuple[Condition, ...]:
    """Parse a statement's Condition element (a JSON object already decoded)."""
    if not isinstance(block, Mapping):
        raise PolicyError("Condition must be an object of operators")
    out: list[Condition] = []
    for op, keys in block.items():
        qualifier, base, if_exists = split_operator(op)
        if not isinstance(keys, Mapping) or not keys:
            raise PolicyError(f"Invalid Condition block for {op[:100]}: an object of condition keys is required")
        kind = _OPS[base][0]
        for key, raw in keys.items():
            if not _KEY.match(key):
                raise PolicyError(f"Policy has an invalid condition key: {key[:100]}")
            strings = _scalar_values(op, raw)
            if kind is Kind.NULL and len(strings) != 1:
                raise PolicyError("Invalid Condition value for Null: one of true or false is required")
            values = tuple(_parse_value(base, kind, s, variables) for s in strings)
            out.append(Condition(op, base, norm_key(key), values, if_exists, qualifier))
    return tuple(out)


def check_all(conditions: Sequence[Condition], ctx: Context) -> bool:
    """All conditions hold (the context's keys already normalised with norm_key)."""
    return all(c.check(ctx) for c in conditions)
