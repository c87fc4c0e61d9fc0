"""S3 Object Lock: the bucket's lock configuration, per-version retention and legal hold, and the lock
headers of PutObject / CopyObject / CreateMultipartUpload / HEAD / GET.

core.fs does the enforcing (:mod:`core.fs.retention`): a version under retention or a legal hold cannot
be deleted, purged or overwritten in place by any protocol, and core applies a bucket's default retention
to every new whole file itself.  This module only speaks S3 to it:

* ``PUT /bucket?object-lock`` stores core's lock JSON ``{"enabled": true, "mode": GOVERNANCE|COMPLIANCE|null,
  "days": N|null, "years": N|null}`` with ``set_tree_policy(lock=...)`` (versioning must be enabled: 409
  InvalidBucketState otherwise); a bucket created with ``x-amz-bucket-object-lock-enabled: true`` gets
  versioning and ``{"enabled": true}`` at once.
* ``?retention`` and ``?legal-hold`` on a key (optionally ``versionId``) set and read a version's retention
  and hold through ``fs.set_retention`` / ``fs.set_legal_hold`` / ``fs.retention`` as the caller (core lets
  the object's owner, or the admin, set them).  Every one answers 400 InvalidRequest on a bucket without an
  Object Lock configuration, as AWS does.
* Shortening or removing a GOVERNANCE retention needs ``x-amz-bypass-governance-retention: true`` *and*
  s3:BypassGovernanceRetention (:func:`may_bypass`: the admin, the bucket's owner unless its policy denies
  it, or anyone its policy allows); the call then runs through the admin view, since core lets only the
  admin bypass.  A COMPLIANCE retention cannot be shortened by anyone.  Legal hold: S3 keeps no record of a
  hold turned OFF, so GetObjectLegalHold answers OFF for any version without one.
* HEAD/GET answer ``x-amz-object-lock-mode`` / ``-retain-until-date`` / ``-legal-hold`` for objects in
  lock-enabled buckets; whether a bucket has a lock configuration is cached per process (enabled: for
  good, since S3 cannot turn Object Lock off; not enabled: for :data:`NEGATIVE_TTL_S`).
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from core.errors import CoreError, NotFound
from core.fs import Attr, FileSystem
from protocols.s3 import xmlio
from protocols.s3.body import read_body
from protocols.s3.context import Ctx
from protocols.s3.errors import S3Error, from_core
from protocols.s3.policy import Decision, PolicyRequest, evaluate
from protocols.s3.policy_actions import resource_arn

MODES = ("GOVERNANCE", "COMPLIANCE")
BYPASS_HEADER = "x-amz-bypass-governance-retention"
NEGATIVE_TTL_S = 2.0
MAX_DAYS = 36500
MAX_YEARS = 100
_LOCKED: set[int] = set()  # bucket inos known to have Object Lock (it cannot be turned off)
_UNLOCKED: dict[int, float] = {}  # bucket ino -> until when "no lock configuration" is believed


def _xml(data: bytes) -> Response:
    return Response(data, media_type="application/xml")


def malformed(msg: str = "The XML you provided was not well-formed or did not validate against our "
              "published schema") -> S3Error:
    return S3Error("MalformedXML", msg, 400)


def missing_config() -> S3Error:
    return S3Error("InvalidRequest", "Bucket is missing Object Lock Configuration", 400)


def store_path(ctx: Ctx, bucket: str, key: str) -> str:
    """The core.fs path of ``bucket/key`` (S3's root directory may be below the store's root)."""
    root = ctx.s3.service.root_path.strip("/")
    return "/" + "/".join(p for p in (root, bucket, key) if p)


# -- the bucket's configuration --------------------------------------------------------------
def bucket_lock(ctx: Ctx, bucket: str) -> dict[str, Any] | None:
    """The bucket's Object Lock configuration (core's JSON), None when it has none."""
    b = ctx.s3.bucket(bucket)
    cfg = ctx.s3.admin.tree_policy(b.ino).lock
    if not cfg or not cfg.get("enabled"):
        _UNLOCKED[b.ino] = time.monotonic() + NEGATIVE_TTL_S
        return None
    _LOCKED.add(b.ino)
    return cfg


def _require(ctx: Ctx, bucket: str) -> dict[str, Any]:
    cfg = bucket_lock(ctx, bucket)
    if cfg is None:
        raise missing_config()
    return cfg


def on_create(ctx: Ctx, ino: int) -> None:
    """CreateBucket: ``x-amz-bucket-object-lock-enabled: true`` turns versioning and Object Lock on."""
    if (ctx.h("x-amz-bucket-object-lock-enabled") or "").strip().lower() != "true":
        return
    ctx.s3.admin.set_tree_policy(ino, versioning="enabled",
                                 lock={"enabled": True, "mode": None, "days": None, "years": None})
    _LOCKED.add(ino)


def _positive(text: str | None, what: str, most: int) -> int | None:
    if text is None:
        return None
    try:
        n = int(text.strip())
    except ValueError:
        raise malformed() from None
    if not 0 < n <= most:
        raise S3Error("InvalidArgument", f"Default retention period must be a positive integer value "
                      f"({what}: 1 to {most})", 400)
    return n


def parse_config(body: bytes) -> dict[str, Any]:
    """An ``ObjectLockConfiguration`` document as core's lock JSON.

    >>> parse_config(b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled>"
    ...              b"<Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>3</Days></DefaultRetention></Rule>"
    ...              b"</ObjectLockConfiguration>")
    {'enabled': True, 'mode': 'GOVERNANCE', 'days': 3, 'years': None}
    """
    root = xmlio.parse(body)
    if root.tag != "ObjectLockConfiguration" or xmlio.text(root, "ObjectLockEnabled") != "Enabled":
        raise malformed()
    cfg: dict[str, Any] = {"enabled": True, "mode": None, "days": None, "years": None}
    rule = root.find("Rule")
    if rule is None:
        return cfg
    dr = rule.find("DefaultRetention")
    if dr is None:
        raise malformed()
    mode, days, years = xmlio.text(dr, "Mode"), xmlio.text(dr, "Days"), xmlio.text(dr, "Years")
    if mode not in MODES or (days is None) == (years is None):
        raise malformed()
    cfg.update(mode=mode, days=_positive(days, "Days", MAX_DAYS), years=_positive(years, "Years", MAX_YEARS))
    return cfg


def config_xml(cfg: dict[str, Any]) -> bytes:
    inner = xmlio.el("ObjectLockEnabled", "Enabled")
    if cfg.get("mode"):
        period = xmlio.el("Days", cfg["days"]) if cfg.get("days") else xmlio.el("Years", cfg.get("years"))
        inner += f"<Rule><DefaultRetention>{xmlio.el('Mode', cfg['mode'])}{period}</DefaultRetention></Rule>"
    return xmlio.doc("ObjectLockConfiguration", inner)


async def put_config(ctx: Ctx) -> Response:
    raw = bytearray()
    await read_body(ctx.request, ctx.auth, ctx.headers, raw.extend)
    cfg = parse_config(bytes(raw))

    def apply() -> None:
        b = ctx.s3.bucket(ctx.bucket)
        if ctx.s3.admin.tree_policy(b.ino).versioning != "enabled":
            raise S3Error("InvalidBucketState", "Versioning must be 'Enabled' on the bucket to apply a Object Lock "
                          "configuration", 409, extra={"BucketName": ctx.bucket})
        ctx.s3.fs.set_tree_policy(b.ino, lock=cfg)  # authz: the bucket's owner, a policy grant or the admin
        _LOCKED.add(b.ino)
    await ctx.run(apply)
    return Response(status_code=200)


async def get_config(ctx: Ctx) -> Response:
    cfg = await ctx.run(bucket_lock, ctx, ctx.bucket)
    if cfg is None:
        raise S3Error("ObjectLockConfigurationNotFoundError", "Object Lock configuration does not exist for this "
                      "bucket", 404, extra={"BucketName": ctx.bucket})
    return _xml(config_xml(cfg))


# -- bypassing a governance retention ---------------------------------------------------------------
def may_bypass(ctx: Ctx, key: str | None = None) -> bool:
    """Does the caller have s3:BypassGovernanceRetention on ``bucket/key``?  The admin does; a bucket
    policy's explicit Deny refuses it; its Allow grants it; otherwise the bucket's owner has it."""
    user = ctx.auth.user
    if user is None:
        return False
    if user.cred.admin:
        return True
    info = ctx.bucket_info
    if info is None:
        return False
    if info.policy is not None and ctx.facts is not None:
        req = PolicyRequest(user.name, frozenset(user.user.groups), "s3:BypassGovernanceRetention",
                            resource_arn(ctx.bucket, key if key is not None else ctx.route.key), ctx.facts.context())
        dec = evaluate(info.policy, req, restrict_public=info.pab.restrict_public_buckets)
        if dec is Decision.DENY:
            return False
        if dec is Decision.ALLOW:
            return True
    return user.cred.uid == info.owner


def bypass_asked(ctx: Ctx) -> bool:
    return (ctx.h(BYPASS_HEADER) or "").strip().lower() == "true"


def bypass_view(ctx: Ctx, key: str | None = None) -> FileSystem | None:
    """The view to delete or shorten a GOVERNANCE-locked version with: the admin view when the request asks
    to bypass and the caller may; None otherwise (use the caller's view, without bypass)."""
    return ctx.s3.admin if bypass_asked(ctx) and may_bypass(ctx, key) else None


# -- retention and legal hold of one version --------------------------------------------------------
def parse_date(text: str | None) -> int:
    """An ISO 8601 time as ns since the epoch (no zone: UTC).

    >>> parse_date("2030-01-02T03:04:05Z") == parse_date("2030-01-02T03:04:05.000+00:00")
    True
    """
    if not text:
        raise malformed()
    try:
        dt = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise S3Error("InvalidArgument", f"Invalid date {text!r}: expected ISO 8601", 400) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.UTC)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def _future(until_ns: int) -> int:
    if until_ns <= time.time_ns():
        raise S3Error("InvalidArgument", "The retain until date must be in the future!", 400)
    return until_ns


def _call(ctx: Ctx, fn: Any, *args: Any, **kw: Any) -> Any:
    vid = ctx.q.get("versionId")
    try:
        return fn(*args, **kw)
    except NotFound:
        if vid:
            raise S3Error("NoSuchVersion", "The specified version does not exist.", 404,
                          extra={"Key": ctx.key, "VersionId": vid}) from None
        raise from_core(NotFound(""), ctx.key) from None
    except CoreError as e:
        raise from_core(e, ctx.key) from None


async def put_retention(ctx: Ctx) -> Response:
    raw = bytearray()
    await read_body(ctx.request, ctx.auth, ctx.headers, raw.extend)
    root = xmlio.parse(bytes(raw))
    if root.tag != "Retention":
        raise malformed()
    mode, date = xmlio.text(root, "Mode"), xmlio.text(root, "RetainUntilDate")
    if (mode is None) != (date is None) or (mode is not None and mode not in MODES):
        raise malformed()
    until = _future(parse_date(date)) if mode is not None else 0

    def apply() -> None:
        _require(ctx, ctx.bucket)
        view = bypass_view(ctx)
        fs = view if view is not None else ctx.s3.fs
        if view is not None and not ctx.s3.cred.admin and _owner(ctx) != ctx.s3.cred.uid:
            raise S3Error("AccessDenied", "Access Denied", 403)  # core's rule, which the admin view skips
        _call(ctx, fs.set_retention, store_path(ctx, ctx.bucket, ctx.key), ctx.q.get("versionId"), mode, until,
              bypass_governance=view is not None)
    await ctx.run(apply)
    return Response(status_code=200)


def _owner(ctx: Ctx) -> int:
    """The uid of the version a ?retention request names (seen as the caller)."""
    vid = ctx.q.get("versionId")
    for v in _call(ctx, ctx.s3.fs.versions, store_path(ctx, ctx.bucket, ctx.key)):
        if (v.kind == "current" if vid is None else v.vid == vid and v.kind != "trash") and v.ino:
            return int(v.uid)
    return int(_call(ctx, ctx.s3.fs.version, store_path(ctx, ctx.bucket, ctx.key), vid or "").uid)


async def get_retention(ctx: Ctx) -> Response:
    def read() -> Any:
        _require(ctx, ctx.bucket)
        return _call(ctx, ctx.s3.fs.retention, store_path(ctx, ctx.bucket, ctx.key), ctx.q.get("versionId"))
    r = await ctx.run(read)
    if r.mode is None:
        raise S3Error("NoSuchObjectLockConfiguration", "The specified object does not have a ObjectLock "
                      "configuration", 404)
    return _xml(xmlio.doc("Retention", xmlio.el("Mode", r.mode) + xmlio.el("RetainUntilDate", xmlio.iso(r.until_ns))))


async def put_legal_hold(ctx: Ctx) -> Response:
    raw = bytearray()
    await read_body(ctx.request, ctx.auth, ctx.headers, raw.extend)
    root = xmlio.parse(bytes(raw))
    status = xmlio.text(root, "Status")
    if root.tag != "LegalHold" or status not in ("ON", "OFF"):
        raise malformed()

    def apply() -> None:
        _require(ctx, ctx.bucket)
        _call(ctx, ctx.s3.fs.set_legal_hold, store_path(ctx, ctx.bucket, ctx.key), ctx.q.get("versionId"),
              status == "ON")
    await ctx.run(apply)
    return Response(status_code=200)


async def get_legal_hold(ctx: Ctx) -> Response:
    def read() -> Any:
        _require(ctx, ctx.bucket)
        return _call(ctx, ctx.s3.fs.retention, store_path(ctx, ctx.bucket, ctx.key), ctx.q.get("versionId"))
    r = await ctx.run(read)
    return _xml(xmlio.doc("LegalHold", xmlio.el("Status", "ON" if r.hold else "OFF")))


# -- the lock headers of writes and reads -------------------------------------------------------------
@dataclass(frozen=True)
class Requested:
    """A write's x-amz-object-lock-* headers."""

    mode: str | None = None
    until_ns: int = 0
    hold: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "until": self.until_ns, "hold": self.hold}


def requested(ctx: Ctx) -> Requested | None:
    """The write's lock headers, checked (no I/O: call before the body is read); None when there are none."""
    mode, date = ctx.h("x-amz-object-lock-mode"), ctx.h("x-amz-object-lock-retain-until-date")
    hold = ctx.h("x-amz-object-lock-legal-hold")
    if mode is None and date is None and hold is None:
        return None
    if (mode is None) != (date is None):
        raise S3Error("InvalidArgument", "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both "
                      "be supplied", 400)
    if mode is not None and mode not in MODES:
        raise S3Error("InvalidArgument", "Unknown wormMode directive.", 400)
    if hold is not None and hold not in ("ON", "OFF"):
        raise S3Error("InvalidArgument", "Legal Hold must be either of 'ON' or 'OFF'", 400)
    return Requested(mode, _future(parse_date(date)) if mode is not None else 0,
                     None if hold is None else hold == "ON")


def check(ctx: Ctx, req: Requested | None) -> None:
    """Before the write (in a worker thread): lock headers need a bucket with Object Lock."""
    if req is not None:
        _require(ctx, ctx.bucket)


def from_headers(ctx: Ctx) -> Requested | None:
    """:func:`requested` and :func:`check` at once (in a worker thread)."""
    req = requested(ctx)
    check(ctx, req)
    return req


def upload_fields(req: Requested | None) -> dict[str, Any]:
    """What CreateMultipartUpload keeps in its upload record for Complete (:func:`apply_upload`)."""
    return {} if req is None else {"lock": req.to_json()}


def apply(ctx: Ctx, a: Attr, req: Requested | None) -> None:
    """After a write placed ``a`` (in a worker thread): its requested retention and hold, on that version (by
    its id: a concurrent overwrite cannot redirect them).  The write was the caller's, so this runs through
    the admin view: the request's retention replaces a default GOVERNANCE one even when shorter, as on AWS
    (a default COMPLIANCE one can only be extended)."""
    if req is None or (req.mode is None and not req.hold):
        return
    fs = ctx.s3.admin
    path = store_path(ctx, ctx.bucket, ctx.key)
    try:
        vid = fs.version_id(a.ino)
        if req.mode is not None:
            fs.set_retention(path, vid, req.mode, req.until_ns, bypass_governance=True)
        if req.hold:
            fs.set_legal_hold(path, vid, True)
    except CoreError as e:
        raise from_core(e, ctx.key) from None


def apply_upload(ctx: Ctx, a: Attr, info: dict[str, Any]) -> None:
    """CompleteMultipartUpload: the lock headers its CreateMultipartUpload asked for."""
    d = info.get("lock")
    if isinstance(d, dict):
        apply(ctx, a, Requested(d.get("mode"), int(d.get("until") or 0), d.get("hold")))


def maybe_locked(ctx: Ctx) -> bool:
    """False when this bucket is known (recently) to have no lock configuration: no lookup needed."""
    b = ctx.s3.known.get(ctx.bucket)
    return b is None or b.ino in _LOCKED or _UNLOCKED.get(b.ino, 0.0) <= time.monotonic()


def response_headers(ctx: Ctx) -> dict[str, str]:
    """HEAD/GET (in a worker thread): the version's x-amz-object-lock-* headers, in lock-enabled buckets."""
    try:
        b = ctx.s3.bucket(ctx.bucket)
        if b.ino not in _LOCKED and bucket_lock(ctx, ctx.bucket) is None:
            return {}
        r = ctx.s3.admin.retention(store_path(ctx, ctx.bucket, ctx.key), ctx.q.get("versionId"))
    except (CoreError, S3Error):
        return {}
    h = {"x-amz-object-lock-legal-hold": "ON" if r.hold else "OFF"}
    if r.mode is not None:
        h["x-amz-object-lock-mode"] = r.mode
        h["x-amz-object-lock-retain-until-date"] = xmlio.iso(r.until_ns)
    return h


__all__ = ["apply", "apply_upload", "bypass_view", "check", "from_headers", "get_config", "get_legal_hold",
           "get_retention", "may_bypass", "maybe_locked", "on_create", "put_config", "put_legal_hold", "put_retention",
           "requested", "response_headers", "upload_fields"]
