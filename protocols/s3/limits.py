"""What a request may ask for, checked once it is routed and authenticated, before its handler runs.

- Bodies that are not object data (XML, ACLs, tagging, policies, directory
  markers, CreateBucket) have a size cap per operation; :func:`body_cap` names
  it and ``body.read_body`` refuses a body over it (declared or streamed)
  without buffering it.  Object data (PutObject, UploadPart) has none but S3's.
- Numeric query parameters are numbers (``max-uploads=abc`` is InvalidArgument,
  never an internal error).
- ``response-*`` overrides of GetObject/HeadObject are header values: no
  CR/LF or other control characters, and not for anonymous requests (as on AWS).

>>> from protocols.s3.router import Route
>>> body_cap(Route("PutObject", "b", "k")) is None, body_cap(Route("PutBucketPolicy", "b"))
(True, 20480)
>>> check(Route("ListMultipartUploads", "b"), {"max-uploads": "abc"}, anonymous=False)
Traceback (most recent call last):
protocols.s3.errors.S3Error: max-uploads must be a non-negative integer
"""

from __future__ import annotations

from collections.abc import Mapping

from protocols.s3.errors import S3Error
from protocols.s3.router import Route

KIB, MIB = 1024, 1024 * 1024
DEFAULT_BODY_CAP = 1 * MIB
BODY_CAPS = {
    "PutBucketPolicy": 20 * KIB,  # AWS's limit for a bucket policy
    "DeleteObjects": 2 * MIB,  # 1000 keys of up to 1024 bytes each, XML-escaped
    "CompleteMultipartUpload": 4 * MIB,  # 10,000 parts with ETags and checksums
}
OBJECT_DATA = {"PutObject", "UploadPart"}
NUMERIC = ("max-keys", "max-uploads", "max-parts", "part-number-marker", "partNumber", "max-buckets")
OVERRIDE_OPS = {"GetObject", "HeadObject"}


def body_cap(r: Route) -> int | None:
    """The most bytes a request body of this operation may have; None for object data.

    >>> body_cap(Route("PutObject", "b", "dir/")), body_cap(Route("UploadPart", "b", "k"))
    (1048576, None)
    """
    if r.op in OBJECT_DATA and not (r.key or "").endswith("/"):
        return None
    return BODY_CAPS.get(r.op, DEFAULT_BODY_CAP)


def too_big(cap: int) -> S3Error:
    return S3Error("MaxMessageLengthExceeded", f"Your request was too big: this request's body may have at most "
                   f"{cap} bytes.", 400)


def _is_count(v: str) -> bool:
    return v.isascii() and v.isdigit() and len(v) <= 18


def _header_safe(v: str) -> bool:
    """Printable ASCII, space and tab: what a response header value may carry as is.

    >>> _header_safe("attachment; filename=a.txt"), _header_safe("a\\r\\nSet-Cookie: x"), _header_safe("é")
    (True, False, False)
    """
    return all(" " <= c <= "~" or c == "\t" for c in v)


def check(r: Route, q: Mapping[str, str], anonymous: bool) -> None:
    """Refuse, with S3's error, what no handler should have to parse.

    >>> check(Route("GetObject", "b", "k"), {"response-content-type": "text/plain"}, anonymous=False)
    >>> check(Route("GetObject", "b", "k"), {"response-expires": "x\\r\\ny: z"}, anonymous=False)
    Traceback (most recent call last):
    protocols.s3.errors.S3Error: response-expires is not a valid header value
    >>> check(Route("GetObject", "b", "k"), {"response-content-type": "a"}, anonymous=True)
    Traceback (most recent call last):
    protocols.s3.errors.S3Error: Request specific response headers cannot be used for anonymous GET requests.
    """
    for name in NUMERIC:
        v = q.get(name)
        if v and not _is_count(v):  # empty: the handler's default applies
            raise S3Error("InvalidArgument", f"{name} must be a non-negative integer", 400,
                          extra={"ArgumentName": name, "ArgumentValue": v[:64]})
    if q.get("encoding-type", "url") != "url":
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request", 400,
                      extra={"ArgumentName": "encoding-type"})
    if r.op not in OVERRIDE_OPS:
        return
    overrides = [k for k in q if k.startswith("response-")]
    if overrides and anonymous:
        raise S3Error("InvalidRequest", "Request specific response headers cannot be used for anonymous GET "
                      "requests.", 400)
    for k in overrides:
        if not _header_safe(q[k]):
            raise S3Error("InvalidArgument", f"{k} is not a valid header value", 400,
                          extra={"ArgumentName": k})
