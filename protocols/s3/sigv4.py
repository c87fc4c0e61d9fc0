"""AWS Signature Version 4 and 2 math (sans-IO: strings in, signatures out)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
ALGO = "AWS4-HMAC-SHA256"


def _enc(s: str, safe: str = "-_.~") -> str:
    return quote(s, safe=safe)


def canonical_uri(raw_path: str) -> list[str]:
    """Candidate canonical URIs: as sent, and re-encoded the AWS way (clients differ)."""
    norm = _enc(unquote(raw_path), safe="/-_.~")
    return [raw_path] if norm == raw_path else [raw_path, norm]


def canonical_query(pairs: Iterable[tuple[str, str]], *, exclude: str | None = None) -> str:
    items = sorted((_enc(k), _enc(v)) for k, v in pairs if k != exclude)
    return "&".join(f"{k}={v}" for k, v in items)


def canonical_headers(headers: Mapping[str, list[str]], signed: list[str]) -> str:
    out = []
    for name in signed:
        vals = headers.get(name, [])
        out.append(name + ":" + ",".join(" ".join(v.split()) for v in vals) + "\n")
    return "".join(out)


def canonical_request(method: str, uri: str, query: str, headers: Mapping[str, list[str]], signed: list[str],
                      payload_hash: str) -> str:
    return "\n".join([method, uri, query, canonical_headers(headers, signed), ";".join(signed), payload_hash])


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    k = hmac.new(k, region.encode(), hashlib.sha256).digest()
    k = hmac.new(k, service.encode(), hashlib.sha256).digest()
    return hmac.new(k, b"aws4_request", hashlib.sha256).digest()


def sign(key: bytes, string_to_sign: str) -> str:
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def string_to_sign(amz_date: str, scope: str, creq: str) -> str:
    return "\n".join([ALGO, amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])


def chunk_string(amz_date: str, scope: str, prev: str, chunk_sha256: str) -> str:
    return "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY_SHA256, chunk_sha256])


def trailer_string(amz_date: str, scope: str, prev: str, trailer_sha256: str) -> str:
    return "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, prev, trailer_sha256])


# -- Signature Version 2 --------------------------------------------------------------
V2_SUBRESOURCES = {
    "acl", "cors", "delete", "lifecycle", "location", "logging", "notification", "partNumber", "policy",
    "requestPayment", "restore", "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning",
    "versions", "website", "response-cache-control", "response-content-disposition",
    "response-content-encoding", "response-content-language", "response-content-type", "response-expires",
}


def v2_string_to_sign(method: str, headers: Mapping[str, list[str]], date: str, resource: str,
                      query: Iterable[tuple[str, str]]) -> str:
    def h(name: str) -> str:
        return ",".join(headers.get(name, []))
    amz = sorted((k, ",".join(v.strip() for v in vs)) for k, vs in headers.items() if k.startswith("x-amz-"))
    amz_lines = "".join(f"{k}:{v}\n" for k, v in amz)
    sub = sorted((k, v) for k, v in query if k in V2_SUBRESOURCES)
    if sub:
        resource += "?" + "&".join(k if v == "" else f"{k}={v}" for k, v in sub)
    return f"{method}\n{h('content-md5')}\n{h('content-type')}\n{date}\n{amz_lines}{resource}"


def v2_sign(secret: str, sts: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), sts.encode(), hashlib.sha1).digest()).decode()
