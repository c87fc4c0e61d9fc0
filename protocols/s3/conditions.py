"""Conditional writes and deletes, as AWS defines them.

- PutObject and CompleteMultipartUpload: ``If-None-Match: *`` (create only: 412 when the key exists) or
  ``If-Match: <etag>`` (replace only that object: 412 when the ETag differs, 404 NoSuchKey when there is no
  object).  ``If-None-Match`` with anything but ``*``, or both headers at once, is 501 NotImplemented.
- DeleteObject: ``If-Match`` (404 NoSuchKey when there is no object), ``x-amz-if-match-last-modified-time``
  and ``x-amz-if-match-size`` (no object: nothing to delete, 204); DeleteObjects: the same conditions per key
  as the ``ETag``, ``LastModifiedTime`` and ``Size`` of each ``<Object>``.

A failed condition is 412 PreconditionFailed naming the header in ``<Condition>``.  The check and the
delete run in one worker-thread hop; core.fs has no compare-and-delete, so a write landing between the
two is not seen (create-only writes, by contrast, are atomic: an exclusive create or rename).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from core.fs import Attr
from protocols.s3 import objmeta
from protocols.s3.context import Ctx, parse_http_date
from protocols.s3.errors import S3Error

EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def precondition(header: str) -> S3Error:
    return S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412,
                   extra={"Condition": header})


def not_implemented(header: str) -> S3Error:
    return S3Error("NotImplemented", "A header you provided implies functionality that is not implemented", 501,
                   extra={"Header": header})


def etag_match(header: str, etag: str) -> bool:
    """Whether an If-Match / If-None-Match value names ``etag`` (quoted or not, or ``*``).

    >>> etag_match('"abc", "def"', "def"), etag_match("abc", "abc"), etag_match("*", "x"), etag_match("a", "b")
    (True, True, True, False)
    """
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or f'"{etag}"' in tags or etag in tags


def write_conditions(ctx: Ctx) -> bool:
    """Check the form of a write's conditions; True when the write must create (``If-None-Match: *``)."""
    im, inm = ctx.h("if-match"), ctx.h("if-none-match")
    if inm is not None and (inm.strip() != "*" or im is not None):
        raise not_implemented("If-None-Match")
    return inm is not None


def check_write_target(ctx: Ctx) -> None:
    """``If-Match`` / ``If-None-Match: *`` of a write against the object there now (in a worker thread)."""
    im, inm = ctx.h("if-match"), ctx.h("if-none-match")
    if im is None and inm is None:
        return
    try:
        a = ctx.s3.lookup(ctx.bucket, ctx.key)
    except S3Error as e:
        if e.code == "NoSuchKey" and im is None:
            return
        raise
    if im is None:
        raise precondition("If-None-Match")
    if not etag_match(im, _etag(ctx, a)):
        raise precondition("If-Match")


def _etag(ctx: Ctx, a: Attr) -> str:
    return objmeta.load(ctx.s3.fs, a).etag if a.is_file else EMPTY_MD5


@dataclass(frozen=True)
class DeleteIf:
    """The conditions of one delete; all None = unconditional."""

    etag: str | None = None
    mtime_s: int | None = None
    size: int | None = None

    @property
    def any(self) -> bool:
        return self.etag is not None or self.mtime_s is not None or self.size is not None

    def failed(self, a: Attr, etag: str) -> str | None:
        """The header of the first condition that does not hold, or None."""
        if self.etag is not None and not etag_match(self.etag, etag):
            return "If-Match"
        if self.mtime_s is not None and a.mtime_ns // 1_000_000_000 != self.mtime_s:
            return "x-amz-if-match-last-modified-time"
        if self.size is not None and (a.size if a.is_file else 0) != self.size:
            return "x-amz-if-match-size"
        return None


def _size(value: str) -> int:
    n = int(value.strip())
    if n < 0:
        raise ValueError(value)
    return n


def _time(value: str) -> int:
    """Whole seconds of an HTTP date or an ISO 8601 time.

    >>> _time("Wed, 01 Jan 2025 00:00:01 GMT"), _time("2025-01-01T00:00:01.500Z")
    (1735689601, 1735689601)
    """
    v = value.strip()
    try:
        return int(datetime.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return int(parse_http_date(v))


def delete_if_headers(ctx: Ctx) -> DeleteIf:
    """DeleteObject's conditions from its headers."""
    lm, size = ctx.h("x-amz-if-match-last-modified-time"), ctx.h("x-amz-if-match-size")
    try:
        return DeleteIf(ctx.h("if-match"), _time(lm) if lm is not None else None,
                        _size(size) if size is not None else None)
    except ValueError:
        raise S3Error("InvalidArgument", "x-amz-if-match-size must be a whole number of bytes", 400) from None


def delete_if_xml(etag: str | None, mtime: str | None, size: str | None) -> DeleteIf:
    """One DeleteObjects ``<Object>``'s conditions (its ETag, LastModifiedTime and Size)."""
    try:
        return DeleteIf(etag, _time(mtime) if mtime is not None else None,
                        _size(size) if size is not None else None)
    except (ValueError, S3Error):
        raise S3Error("MalformedXML", "LastModifiedTime must be a time and Size a whole number of bytes",
                      400) from None


def delete(ctx: Ctx, key: str, cond: DeleteIf) -> None:
    """Delete ``key`` if ``cond`` holds (in a worker thread)."""
    if cond.any:
        try:
            a = ctx.s3.lookup(ctx.bucket, key)
        except S3Error as e:
            if e.code == "NoSuchKey" and cond.etag is None:
                return  # nothing to delete: size and time conditions answer 204 as AWS documents
            raise
        failed = cond.failed(a, _etag(ctx, a) if cond.etag is not None else "")
        if failed:
            raise precondition(failed)
    ctx.s3.delete(ctx.bucket, key)
