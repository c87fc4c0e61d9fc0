"""Request authentication: SigV4 (header, presigned, streaming) and SigV2 (header, presigned).

:func:`authenticate` is sans-IO: it takes the request line and headers and a
way to look up a secret, and returns who is asking plus how the body must be
verified.  Any region is accepted.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

from core.identity import KeyMatch as User
from protocols.s3 import sigv4
from protocols.s3.chunked import ChunkSigner
from protocols.s3.errors import S3Error
from protocols.s3.router import decode

MAX_SKEW = 15 * 60
MAX_PRESIGN = 7 * 24 * 3600
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAM_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAM_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAM_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING = {STREAM_SIGNED, STREAM_SIGNED_TRAILER, STREAM_UNSIGNED_TRAILER}


@dataclass
class Auth:
    user: User | None  # None: anonymous
    payload: str  # a hex SHA-256 to verify, UNSIGNED-PAYLOAD, or a STREAMING-* mode
    signer: ChunkSigner | None = None


Lookup = Callable[[str], User | None]


def parse_query(raw: str) -> list[tuple[str, str]]:
    """Query pairs decoded with %-escapes only ('+' stays '+', as S3 expects); not UTF-8: InvalidURI.

    >>> parse_query("prefix=a+b%2Fc&delimiter=%2F&acl")
    [('prefix', 'a+b/c'), ('delimiter', '/'), ('acl', '')]
    """
    out = []
    for part in raw.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        out.append((decode(k), decode(v)))
    return out


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two signatures (False, not TypeError, for non-ASCII input)."""
    return a.isascii() and b.isascii() and hmac.compare_digest(a, b)


def _denied(msg: str = "Access Denied") -> S3Error:
    return S3Error("AccessDenied", msg, 403)


def _user(lookup: Lookup, access_key: str) -> User:
    u = lookup(access_key)
    if u is None:
        raise S3Error("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.",
                      403)
    return u


def amz_time(s: str) -> float:
    """Seconds since the epoch of an ISO 8601 basic UTC time, computed in UTC (no local time zone involved).

    >>> amz_time("20130524T000000Z")
    1369353600
    """
    try:
        return calendar.timegm(time.strptime(s, "%Y%m%dT%H%M%SZ"))
    except (ValueError, OverflowError):
        raise S3Error("AccessDenied", f"Invalid date {s!r}", 403) from None


def http_time(s: str) -> float | None:
    """Seconds since the epoch of an HTTP (RFC 7231/2822) date; a date without a zone is UTC; None if invalid.

    >>> http_time("Fri, 24 May 2013 00:00:00 GMT"), http_time("Fri, 24 May 2013 00:00:00 -0000"), http_time("x")
    (1369353600.0, 1369353600.0, None)
    """
    try:
        dt = parsedate_to_datetime(s)
        return (dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _skewed(now: float, ts: float) -> S3Error | None:
    if abs(now - ts) > MAX_SKEW:
        return S3Error("RequestTimeTooSkewed", "The difference between the request time and the server's time "
                       "is too large.", 403)
    return None


def authenticate(method: str, raw_path: str, raw_query: str, headers: Mapping[str, list[str]], lookup: Lookup,
                 *, now: float | None = None, resource_prefix: str = "") -> Auth:
    """Who sent this request; raises S3Error when the signature is wrong or stale.

    ``resource_prefix`` is "/bucket" for virtual-host requests (SigV2 signs it; SigV4 must then sign
    the Host header, which names the bucket).
    """
    now = time.time() if now is None else now
    query = parse_query(raw_query)
    qd = dict(query)
    authz = (headers.get("authorization") or [""])[0]
    if authz.startswith(sigv4.ALGO):
        return _v4_header(method, raw_path, query, headers, authz, lookup, now, bool(resource_prefix))
    if qd.get("X-Amz-Algorithm") == sigv4.ALGO:
        return _v4_presigned(method, raw_path, query, headers, lookup, now, bool(resource_prefix))
    if authz.startswith("AWS "):
        return _v2_header(method, raw_path, query, headers, authz, lookup, now, resource_prefix)
    if "AWSAccessKeyId" in qd and "Signature" in qd:
        return _v2_presigned(method, raw_path, query, headers, lookup, now, resource_prefix)
    if authz:
        raise S3Error("AuthorizationHeaderMalformed", "Unsupported Authorization header", 400)
    return Auth(None, UNSIGNED)


def _parse_v4(authz: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in authz[len(sigv4.ALGO):].split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    if not {"Credential", "SignedHeaders", "Signature"} <= set(fields):
        raise S3Error("AuthorizationHeaderMalformed", "The authorization header is malformed", 400)
    return fields


def _scope(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise S3Error("AuthorizationHeaderMalformed", f"Malformed credential {credential!r}", 400)
    return parts[0], parts[1], parts[2], parts[3]


def _verify(method: str, raw_path: str, cquery: str, headers: Mapping[str, list[str]], signed: list[str],
            payload: str, key: bytes, amz_date: str, scope: str, sig: str) -> None:
    for uri in sigv4.canonical_uri(raw_path):
        creq = sigv4.canonical_request(method, uri, cquery, headers, signed, payload)
        if same(sigv4.sign(key, sigv4.string_to_sign(amz_date, scope, creq)), sig):
            return
    raise S3Error("SignatureDoesNotMatch", "The request signature we calculated does not match the signature "
                  "you provided. Check your key and signing method.", 403)


def _check_host_signed(signed: list[str], vhost: bool) -> None:
    """A virtual-host-style request names its bucket in Host: unsigned, the signature would not cover it."""
    if vhost and "host" not in signed:
        raise S3Error("SignatureDoesNotMatch", "Virtual-host-style requests must include 'host' in the signed "
                      "headers", 403)


def _v4_header(method: str, raw_path: str, query: list[tuple[str, str]], headers: Mapping[str, list[str]],
               authz: str, lookup: Lookup, now: float, vhost: bool) -> Auth:
    f = _parse_v4(authz)
    ak, date, region, service = _scope(f["Credential"])
    user = _user(lookup, ak)
    amz_date = (headers.get("x-amz-date") or [""])[0]
    if amz_date:
        ts = amz_time(amz_date)
    else:
        parsed = http_time((headers.get("date") or [""])[0])
        if parsed is None:
            raise S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header", 403)
        ts = parsed
    if (skew := _skewed(now, ts)) is not None:
        raise skew
    amz_date = amz_date or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ts))
    if not amz_date.startswith(date):
        raise S3Error("AuthorizationHeaderMalformed", "The credential date does not match the request date", 400)
    payload = (headers.get("x-amz-content-sha256") or [""])[0]
    if not payload:
        raise S3Error("InvalidRequest", "Missing required header for this request: x-amz-content-sha256", 400)
    signed = f["SignedHeaders"].split(";")
    _check_host_signed(signed, vhost)
    scope = f"{date}/{region}/{service}/aws4_request"
    key = sigv4.signing_key(user.secret_key, date, region, service)
    _verify(method, raw_path, sigv4.canonical_query(query), headers, signed, payload, key, amz_date, scope,
            f["Signature"])
    signer = None
    if payload in (STREAM_SIGNED, STREAM_SIGNED_TRAILER):
        signer = ChunkSigner(key, amz_date, scope, f["Signature"])
    elif payload != UNSIGNED and payload not in STREAMING and (len(payload) != 64 or not _is_hex(payload)):
        raise S3Error("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-* or a "
                      "SHA-256 hex digest", 400)
    return Auth(user, payload, signer)


def _is_hex(s: str) -> bool:
    return bool(s) and all(c in string.hexdigits for c in s)


def _v4_presigned(method: str, raw_path: str, query: list[tuple[str, str]], headers: Mapping[str, list[str]],
                  lookup: Lookup, now: float, vhost: bool) -> Auth:
    q = dict(query)
    try:
        ak, date, region, service = _scope(q["X-Amz-Credential"])
        amz_date, expires = q["X-Amz-Date"], int(q["X-Amz-Expires"])
        signed, sig = q["X-Amz-SignedHeaders"].split(";"), q["X-Amz-Signature"]
    except (KeyError, ValueError):
        raise S3Error("AuthorizationQueryParametersError", "Query-string authentication requires X-Amz-Credential, "
                      "X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature", 400) from None
    if not 0 < expires <= MAX_PRESIGN:
        raise S3Error("AuthorizationQueryParametersError", "X-Amz-Expires must be between 1 and 604800", 400)
    _check_host_signed(signed, vhost)
    user = _user(lookup, ak)
    ts = amz_time(amz_date)
    if now > ts + expires:
        raise _denied("Request has expired")
    if ts - now > MAX_SKEW:
        raise _denied("Request is not valid yet")
    payload = q.get("X-Amz-Content-Sha256", UNSIGNED)
    key = sigv4.signing_key(user.secret_key, date, region, service)
    scope = f"{date}/{region}/{service}/aws4_request"
    _verify(method, raw_path, sigv4.canonical_query(query, exclude="X-Amz-Signature"), headers, signed,
            payload, key, amz_date, scope, sig)
    return Auth(user, UNSIGNED)


def _v2_resources(raw_path: str, prefix: str) -> list[str]:
    """Resources a SigV2 client may have signed: botocore signs '/bucket/' for bucket requests."""
    res = prefix + (raw_path or "/")
    if res.count("/") == 1 and len(res) > 1:
        return [res, res + "/"]
    return [res]


def _v2_check(secret: str, sig: str, method: str, headers: Mapping[str, list[str]], date: str, raw_path: str,
              prefix: str, query: list[tuple[str, str]]) -> None:
    for res in _v2_resources(raw_path, prefix):
        sts = sigv4.v2_string_to_sign(method, headers, date, res, query)
        if same(sigv4.v2_sign(secret, sts), sig):
            return
    raise S3Error("SignatureDoesNotMatch", "The request signature we calculated does not match the signature "
                  "you provided.", 403)


def _v2_header(method: str, raw_path: str, query: list[tuple[str, str]], headers: Mapping[str, list[str]],
               authz: str, lookup: Lookup, now: float, prefix: str) -> Auth:
    try:
        ak, sig = authz[4:].rsplit(":", 1)
    except ValueError:
        raise S3Error("AuthorizationHeaderMalformed", "The authorization header is malformed", 400) from None
    user = _user(lookup, ak.strip())
    ts = http_time((headers.get("x-amz-date") or headers.get("date") or [""])[0])
    if ts is None:
        raise _denied("AWS authentication requires a valid Date or x-amz-date header")
    if (skew := _skewed(now, ts)) is not None:
        raise skew
    date = (headers.get("date") or [""])[0]  # x-amz-date alone: it is signed among the x-amz-* headers
    _v2_check(user.secret_key, sig.strip(), method, headers, date, raw_path, prefix, query)
    return Auth(user, UNSIGNED)


def _v2_presigned(method: str, raw_path: str, query: list[tuple[str, str]], headers: Mapping[str, list[str]],
                  lookup: Lookup, now: float, prefix: str) -> Auth:
    q = dict(query)
    user = _user(lookup, q["AWSAccessKeyId"])
    try:
        expires = int(q.get("Expires", ""))
    except ValueError:
        raise _denied("Invalid Expires") from None
    if now > expires:
        raise _denied("Request has expired")
    if expires - now > MAX_PRESIGN:
        raise S3Error("AuthorizationQueryParametersError", "Expires must be less than a week (604800 seconds) in "
                      "the future", 400)
    _v2_check(user.secret_key, q["Signature"], method, {k: v for k, v in headers.items() if k != "x-amz-date"},
              str(expires), raw_path, prefix, query)
    return Auth(user, UNSIGNED)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
