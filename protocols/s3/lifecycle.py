"""S3 bucket lifecycle configuration: Put/Get/DeleteBucketLifecycleConfiguration (``?lifecycle``).

The rules are core's: ``fs.set_tree_policy(bucket, lifecycle=[rule, ...])`` stores them on the bucket's
directory and core's lifecycle engine (core/fs/lifecycle.py, run by the maintenance loop) applies them.
This module translates AWS's XML to that rule format and back, and validates as AWS does.  One rule::

    {"id": str, "enabled": bool, "prefix": str ("" = every key), "tags": {key: value} (all must match),
     "size_gt": int|null, "size_lt": int|null, "expire_days": int|null,
     "expire_date": "YYYY-MM-DDT00:00:00Z"|null, "expired_object_delete_marker": bool,
     "noncurrent_days": int|null, "newer_noncurrent": int|null, "abort_multipart_days": int|null}

XML accepted: ``Rule`` with ``ID``, ``Status``, a ``Filter`` (``Prefix`` | ``Tag`` | ``ObjectSizeGreaterThan``
| ``ObjectSizeLessThan`` | ``And`` of ``Prefix``, ``Tag``\\ s and sizes) or the legacy top-level ``Prefix``,
``Expiration`` (``Days`` | ``Date`` | ``ExpiredObjectDeleteMarker``), ``NoncurrentVersionExpiration``
(``NoncurrentDays``, ``NewerNoncurrentVersions``) and ``AbortIncompleteMultipartUpload``
(``DaysAfterInitiation``).  Transitions answer 501 NotImplemented: Tessera has one storage class.
Get renders the stored rules in the Filter form (a rule without an ID gets a generated one when put, as
AWS does), so a legacy ``Prefix`` comes back as ``Filter/Prefix``.
"""

from __future__ import annotations

import datetime
import secrets
import xml.etree.ElementTree as ET
from typing import Any

from starlette.responses import Response

from protocols.s3 import xmlio
from protocols.s3.body import read_body
from protocols.s3.context import Ctx
from protocols.s3.errors import S3Error

MAX_RULES = 1000
MAX_ID = 255
MAX_NEWER = 100
ACTIONS = ("Expiration", "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload")
TRANSITIONS = ("Transition", "NoncurrentVersionTransition")
KNOWN = {"ID", "Status", "Filter", "Prefix", *ACTIONS, *TRANSITIONS}


def malformed(msg: str = "The XML you provided was not well-formed or did not validate against our "
              "published schema") -> S3Error:
    return S3Error("MalformedXML", msg, 400)


def invalid(msg: str) -> S3Error:
    return S3Error("InvalidArgument", msg, 400)


def _one(e: ET.Element, tag: str) -> ET.Element | None:
    found = e.findall(tag)
    if len(found) > 1:
        raise malformed()
    return found[0] if found else None


def _int(e: ET.Element | None, tag: str) -> int | None:
    if e is None:
        return None
    c = _one(e, tag)
    if c is None:
        return None
    try:
        return int((c.text or "").strip())
    except ValueError:
        raise malformed() from None


def _positive(n: int | None, what: str) -> int | None:
    if n is not None and n <= 0:
        raise invalid(f"'{what}' must be a positive integer")
    return n


def _date(text: str) -> str:
    """An Expiration Date: ISO 8601 at midnight UTC, stored as ``YYYY-MM-DDT00:00:00Z``.

    >>> _date("2030-01-02T00:00:00.000Z"), _date("2030-01-02")
    ('2030-01-02T00:00:00Z', '2030-01-02T00:00:00Z')
    """
    try:
        dt = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"Invalid date {text!r}: expected ISO 8601") from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(datetime.UTC)
    if (dt.hour, dt.minute, dt.second, dt.microsecond) != (0, 0, 0, 0):
        raise invalid("'Date' must be at midnight GMT")
    return dt.strftime("%Y-%m-%dT00:00:00Z")


def _tag(e: ET.Element) -> tuple[str, str]:
    key, value = xmlio.text(e, "Key"), xmlio.text(e, "Value", "")
    if not key or len(key) > 128 or len(value or "") > 256:
        raise invalid("Each Tag needs a Key (up to 128 characters) and a Value of up to 256")
    return key, value or ""


def _filter(f: ET.Element, rule: dict[str, Any]) -> None:
    """A Filter: exactly one of Prefix, Tag, a size bound or And."""
    parts = [c for c in f if isinstance(c.tag, str)]
    if len(parts) > 1:
        raise malformed("Filter may contain only one of Prefix, Tag, ObjectSizeGreaterThan, ObjectSizeLessThan "
                        "or And")
    if not parts:
        return
    p = parts[0]
    if p.tag == "And":
        items = [c for c in p if isinstance(c.tag, str)]
        if any(c.tag not in ("Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan") for c in items):
            raise malformed()
        rule["prefix"] = xmlio.text(p, "Prefix", "") or ""
        for t in p.findall("Tag"):
            k, v = _tag(t)
            if k in rule["tags"]:
                raise invalid("Duplicate Tag Keys are not allowed.")
            rule["tags"][k] = v
        rule["size_gt"], rule["size_lt"] = _int(p, "ObjectSizeGreaterThan"), _int(p, "ObjectSizeLessThan")
    elif p.tag == "Prefix":
        rule["prefix"] = p.text or ""
    elif p.tag == "Tag":
        k, v = _tag(p)
        rule["tags"][k] = v
    elif p.tag == "ObjectSizeGreaterThan":
        rule["size_gt"] = _int(f, "ObjectSizeGreaterThan")
    elif p.tag == "ObjectSizeLessThan":
        rule["size_lt"] = _int(f, "ObjectSizeLessThan")
    else:
        raise malformed()


def _sizes(rule: dict[str, Any]) -> None:
    gt, lt = rule["size_gt"], rule["size_lt"]
    if gt is not None and gt < 0:
        raise invalid("'ObjectSizeGreaterThan' must be a non-negative integer")
    if lt is not None and lt <= 0:
        raise invalid("'ObjectSizeLessThan' must be a positive integer")
    if gt is not None and lt is not None and gt >= lt:
        raise S3Error("InvalidRequest", "ObjectSizeGreaterThan must be less than ObjectSizeLessThan", 400)


def _expiration(e: ET.Element, rule: dict[str, Any]) -> None:
    days, date, marker = _one(e, "Days"), _one(e, "Date"), _one(e, "ExpiredObjectDeleteMarker")
    if sum(x is not None for x in (days, date, marker)) != 1:
        raise malformed("Expiration takes exactly one of Days, Date or ExpiredObjectDeleteMarker")
    if days is not None:
        rule["expire_days"] = _positive(_int(e, "Days"), "Days")
    elif date is not None:
        rule["expire_date"] = _date(date.text or "")
    elif marker is not None:
        value = (marker.text or "").strip().lower()
        if value not in ("true", "false"):
            raise malformed()
        rule["expired_object_delete_marker"] = value == "true"


def parse_rule(r: ET.Element) -> dict[str, Any]:
    """One ``Rule`` element as a core rule."""
    unknown = [c.tag for c in r if isinstance(c.tag, str) and c.tag not in KNOWN]
    if unknown:
        raise malformed(f"Unknown element {unknown[0]} in a lifecycle Rule")
    if any(r.find(t) is not None for t in TRANSITIONS):
        raise S3Error("NotImplemented", "Lifecycle transitions are not supported: Tessera has a single storage "
                      "class (STANDARD); use Expiration instead", 501)
    rid = xmlio.text(r, "ID")
    if rid is not None and len(rid) > MAX_ID:
        raise invalid(f"ID length should not exceed allowed limit of {MAX_ID}")
    status = xmlio.text(r, "Status")
    if status not in ("Enabled", "Disabled"):
        raise malformed("Status must be Enabled or Disabled")
    rule: dict[str, Any] = {"id": rid or secrets.token_hex(16), "enabled": status == "Enabled", "prefix": "",
                            "tags": {}, "size_gt": None, "size_lt": None, "expire_days": None, "expire_date": None,
                            "expired_object_delete_marker": False, "noncurrent_days": None, "newer_noncurrent": None,
                            "abort_multipart_days": None}
    f, legacy = _one(r, "Filter"), _one(r, "Prefix")
    if (f is None) == (legacy is None):
        raise malformed("A Rule needs either a Filter or a Prefix, not both")
    if f is not None:
        _filter(f, rule)
    else:
        assert legacy is not None
        rule["prefix"] = legacy.text or ""
    _sizes(rule)
    exp, nve = _one(r, "Expiration"), _one(r, "NoncurrentVersionExpiration")
    abort = _one(r, "AbortIncompleteMultipartUpload")
    if exp is None and nve is None and abort is None:
        raise invalid("At least one action needs to be specified in a rule")
    if exp is not None:
        _expiration(exp, rule)
    if nve is not None:
        rule["noncurrent_days"] = _positive(_int(nve, "NoncurrentDays"), "NoncurrentDays")
        newer = _int(nve, "NewerNoncurrentVersions")
        if newer is not None and not 0 < newer <= MAX_NEWER:
            raise invalid(f"'NewerNoncurrentVersions' must be between 1 and {MAX_NEWER}")
        rule["newer_noncurrent"] = newer
        if rule["noncurrent_days"] is None:
            raise malformed("NoncurrentVersionExpiration needs NoncurrentDays")
    if abort is not None:
        days = _positive(_int(abort, "DaysAfterInitiation"), "DaysAfterInitiation")
        if days is None:
            raise malformed("AbortIncompleteMultipartUpload needs DaysAfterInitiation")
        rule["abort_multipart_days"] = days
    if rule["tags"] and rule["expired_object_delete_marker"]:
        raise S3Error("InvalidRequest", "ExpiredObjectDeleteMarker cannot be specified with tags.", 400)
    if rule["tags"] and abort is not None:
        raise S3Error("InvalidRequest", "AbortIncompleteMultipartUpload cannot be specified with Tags.", 400)
    return rule


def parse(body: bytes) -> list[dict[str, Any]]:
    """A ``LifecycleConfiguration`` document as core's rule list.

    >>> parse(b"<LifecycleConfiguration><Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter>"
    ...       b"<Status>Enabled</Status><Expiration><Days>7</Days></Expiration></Rule>"
    ...       b"</LifecycleConfiguration>")[0]["expire_days"]
    7
    """
    root = xmlio.parse(body)
    if root.tag != "LifecycleConfiguration":
        raise malformed()
    rules = [parse_rule(r) for r in root.findall("Rule")]
    if not rules:
        raise malformed("A lifecycle configuration needs at least one Rule")
    if len(rules) > MAX_RULES:
        raise invalid(f"A lifecycle configuration has at most {MAX_RULES} rules")
    ids = [r["id"] for r in rules]
    if len(set(ids)) != len(ids):
        raise invalid("Rule ID must be unique. Found same ID for more than one rule")
    return rules


def _tag_xml(k: str, v: str) -> str:
    return f"<Tag>{xmlio.el('Key', k)}{xmlio.el('Value', v)}</Tag>"


def filter_xml(rule: dict[str, Any]) -> str:
    prefix, tags = rule.get("prefix") or "", dict(rule.get("tags") or {})
    gt, lt = rule.get("size_gt"), rule.get("size_lt")
    conds = (1 if prefix else 0) + len(tags) + (gt is not None) + (lt is not None)
    if conds > 1:
        inner = (xmlio.el("Prefix", prefix) if prefix else "") + "".join(_tag_xml(k, v) for k, v in tags.items())
        inner += (xmlio.el("ObjectSizeGreaterThan", gt) if gt is not None else "")
        inner += xmlio.el("ObjectSizeLessThan", lt) if lt is not None else ""
        return f"<Filter><And>{inner}</And></Filter>"
    if tags:
        return f"<Filter>{''.join(_tag_xml(k, v) for k, v in tags.items())}</Filter>"
    if gt is not None:
        return f"<Filter>{xmlio.el('ObjectSizeGreaterThan', gt)}</Filter>"
    if lt is not None:
        return f"<Filter>{xmlio.el('ObjectSizeLessThan', lt)}</Filter>"
    return f"<Filter>{xmlio.el('Prefix', prefix)}</Filter>"


def rule_xml(rule: dict[str, Any]) -> str:
    out = xmlio.el("ID", rule.get("id", "")) + filter_xml(rule)
    out += xmlio.el("Status", "Enabled" if rule.get("enabled", True) else "Disabled")
    if rule.get("expire_days") is not None:
        out += f"<Expiration>{xmlio.el('Days', rule['expire_days'])}</Expiration>"
    elif rule.get("expire_date"):
        out += f"<Expiration>{xmlio.el('Date', rule['expire_date'])}</Expiration>"
    elif rule.get("expired_object_delete_marker"):
        out += "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"
    if rule.get("noncurrent_days") is not None:
        newer = rule.get("newer_noncurrent")
        out += (f"<NoncurrentVersionExpiration>{xmlio.el('NoncurrentDays', rule['noncurrent_days'])}"
                f"{xmlio.el('NewerNoncurrentVersions', newer) if newer is not None else ''}"
                "</NoncurrentVersionExpiration>")
    if rule.get("abort_multipart_days") is not None:
        out += (f"<AbortIncompleteMultipartUpload>{xmlio.el('DaysAfterInitiation', rule['abort_multipart_days'])}"
                "</AbortIncompleteMultipartUpload>")
    return f"<Rule>{out}</Rule>"


def render(rules: list[dict[str, Any]]) -> bytes:
    return xmlio.doc("LifecycleConfiguration", "".join(rule_xml(r) for r in rules))


async def put(ctx: Ctx) -> Response:
    raw = bytearray()
    await read_body(ctx.request, ctx.auth, ctx.headers, raw.extend)
    rules = parse(bytes(raw))

    def apply() -> None:  # authz: the bucket's owner, a policy grant or the admin (a bucket-level operation)
        ctx.s3.fs.set_tree_policy(ctx.s3.bucket(ctx.bucket).ino, lifecycle=rules)
    await ctx.run(apply)
    return Response(status_code=200)


async def get(ctx: Ctx) -> Response:
    rules = await ctx.run(lambda: ctx.s3.admin.tree_policy(ctx.s3.bucket(ctx.bucket).ino).lifecycle)
    if not rules:
        raise S3Error("NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist", 404,
                      extra={"BucketName": ctx.bucket})
    return Response(render(rules), media_type="application/xml")


async def delete(ctx: Ctx) -> Response:
    await ctx.run(lambda: ctx.s3.fs.set_tree_policy(ctx.s3.bucket(ctx.bucket).ino, lifecycle=None))
    return Response(status_code=204)


__all__ = ["delete", "get", "parse", "put", "render"]
