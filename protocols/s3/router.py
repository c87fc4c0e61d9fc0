"""Routing: a pure function from a request's method, path, query and host to an endpoint.

>>> route("GET", "/", {}, "localhost:9000").op
'ListBuckets'
>>> r = route("PUT", "/photos/2024/a%20b.jpg", {"partNumber": "1", "uploadId": "u"}, "h")
>>> (r.op, r.bucket, r.key)
('UploadPart', 'photos', '2024/a b.jpg')
>>> route("GET", "/k", {"list-type": "2"}, "photos.s3.local", domain="s3.local").op
'GetObject'
>>> route("GET", "/", {"list-type": "2"}, "photos.s3.local:9000", domain="s3.local").bucket
'photos'

Every sub-resource S3 defines has its own operation name, so an operation
Tessera does not implement answers NotImplemented instead of running another
one (a ``PUT ?encryption`` is never a CreateBucket):

>>> [route("PUT", "/b", {q: ""}, "h").op for q in ("encryption", "ownershipControls", "object-lock", "cors")]
['PutBucketEncryption', 'PutBucketOwnershipControls', 'PutObjectLockConfiguration', 'PutBucketCors']
>>> route("PUT", "/b", {"someday-feature": ""}, "h").op
'UnknownSubresource'
>>> route("PUT", "/b", {"X-Amz-Signature": "s", "x-id": "CreateBucket"}, "h").op
'CreateBucket'
>>> [route("PUT", "/b/k", {q: ""}, "h").op for q in ("retention", "legal-hold", "uploadId")]
['PutObjectRetention', 'PutObjectLegalHold', 'UploadPart']
>>> [route(m, "/b/k", {q: ""}, "h").op for m, q in (("POST", "restore"), ("POST", "select"), ("GET", "torrent"))]
['RestoreObject', 'SelectObjectContent', 'GetObjectTorrent']

Paths must be valid UTF-8 once %-decoded (``%ff`` is not a character):

>>> route("PUT", "/b/%ff", {}, "h")
Traceback (most recent call last):
protocols.s3.errors.S3Error: Couldn't parse the specified URI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from protocols.s3.errors import S3Error

UNKNOWN = "UnknownSubresource"


@dataclass(frozen=True)
class Route:
    op: str
    bucket: str | None = None
    key: str | None = None


# sub-resource -> (GET, PUT, DELETE, POST) operation on a bucket; None: that method has no such operation
_B = tuple[str | None, str | None, str | None, str | None]
_BUCKET_SUB: dict[str, _B] = {
    "acl": ("GetBucketAcl", "PutBucketAcl", None, None),
    "policy": ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy", None),
    "policyStatus": ("GetBucketPolicyStatus", None, None, None),
    "publicAccessBlock": ("GetPublicAccessBlock", "PutPublicAccessBlock", "DeletePublicAccessBlock", None),
    "location": ("GetBucketLocation", None, None, None),
    "versioning": ("GetBucketVersioning", "PutBucketVersioning", None, None),
    "versions": ("ListObjectVersions", None, None, None),
    "uploads": ("ListMultipartUploads", None, None, None),
    "delete": (None, None, None, "DeleteObjects"),
    "lifecycle": ("GetBucketLifecycle", "PutBucketLifecycle", "DeleteBucketLifecycle", None),
    "cors": ("GetBucketCors", "PutBucketCors", "DeleteBucketCors", None),
    "encryption": ("GetBucketEncryption", "PutBucketEncryption", "DeleteBucketEncryption", None),
    "tagging": ("GetBucketTagging", "PutBucketTagging", "DeleteBucketTagging", None),
    "object-lock": ("GetObjectLockConfiguration", "PutObjectLockConfiguration", None, None),
    "website": ("GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite", None),
    "logging": ("GetBucketLogging", "PutBucketLogging", None, None),
    "replication": ("GetBucketReplication", "PutBucketReplication", "DeleteBucketReplication", None),
    "ownershipControls": ("GetBucketOwnershipControls", "PutBucketOwnershipControls",
                          "DeleteBucketOwnershipControls", None),
    "notification": ("GetBucketNotification", "PutBucketNotification", None, None),
    "requestPayment": ("GetBucketRequestPayment", "PutBucketRequestPayment", None, None),
    "accelerate": ("GetBucketAccelerate", "PutBucketAccelerate", None, None),
    "intelligent-tiering": ("ListBucketIntelligentTieringConfigurations",
                            "PutBucketIntelligentTieringConfiguration",
                            "DeleteBucketIntelligentTieringConfiguration", None),
    "analytics": ("ListBucketAnalyticsConfigurations", "PutBucketAnalyticsConfiguration",
                  "DeleteBucketAnalyticsConfiguration", None),
    "metrics": ("ListBucketMetricsConfigurations", "PutBucketMetricsConfiguration",
                "DeleteBucketMetricsConfiguration", None),
    "inventory": ("ListBucketInventoryConfigurations", "PutBucketInventoryConfiguration",
                  "DeleteBucketInventoryConfiguration", None),
    "metadataTable": ("GetBucketMetadataTableConfiguration", None, "DeleteBucketMetadataTableConfiguration",
                      "CreateBucketMetadataTableConfiguration"),
    "session": ("CreateSession", None, None, None),
}
_METHODS = ("GET", "PUT", "DELETE", "POST")
# with an 'id', the configuration families name one configuration, not the list
_BY_ID = {"ListBucketIntelligentTieringConfigurations": "GetBucketIntelligentTieringConfiguration",
          "ListBucketAnalyticsConfigurations": "GetBucketAnalyticsConfiguration",
          "ListBucketMetricsConfigurations": "GetBucketMetricsConfiguration",
          "ListBucketInventoryConfigurations": "GetBucketInventoryConfiguration"}

# per method, in order of precedence: sub-resource -> operation on an object
_OBJECT_SUB: dict[str, list[tuple[str, str]]] = {
    "PUT": [("partNumber", "UploadPart"), ("uploadId", "UploadPart"), ("tagging", "PutObjectTagging"),
            ("acl", "PutObjectAcl"), ("retention", "PutObjectRetention"), ("legal-hold", "PutObjectLegalHold"),
            ("renameObject", "RenameObject"), ("restore", "RestoreObject")],
    "GET": [("uploadId", "ListParts"), ("tagging", "GetObjectTagging"), ("acl", "GetObjectAcl"),
            ("attributes", "GetObjectAttributes"), ("retention", "GetObjectRetention"),
            ("legal-hold", "GetObjectLegalHold"), ("torrent", "GetObjectTorrent")],
    "DELETE": [("uploadId", "AbortMultipartUpload"), ("tagging", "DeleteObjectTagging")],
    "POST": [("uploads", "CreateMultipartUpload"), ("uploadId", "CompleteMultipartUpload"),
             ("restore", "RestoreObject"), ("select", "SelectObjectContent")],
}
_OBJECT_PLAIN = {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}


def _not_allowed() -> S3Error:
    return S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)


def decode(s: str) -> str:
    """%-decode a path or query part; bytes that are not UTF-8 are refused, never replaced.

    >>> decode("a%20b%E2%82%AC")
    'a b€'
    >>> decode("%fe")
    Traceback (most recent call last):
    protocols.s3.errors.S3Error: Couldn't parse the specified URI.
    """
    try:
        return unquote(s, errors="strict")
    except UnicodeDecodeError:
        raise S3Error("InvalidURI", "Couldn't parse the specified URI.", 400) from None


def is_auth_param(name: str) -> bool:
    """Query parameters that sign a request (or name its operation) rather than select a sub-resource.

    >>> [is_auth_param(n) for n in ("X-Amz-Credential", "Signature", "x-id", "acl")]
    [True, True, True, False]
    """
    low = name.lower()
    return low.startswith("x-amz-") or low in ("awsaccesskeyid", "signature", "expires", "x-id")


def split_host(host: str, domain: str | None) -> str | None:
    """The bucket named by a virtual-host-style Host header, if any.

    >>> split_host("photos.s3.local:9000", "s3.local"), split_host("s3.local", "s3.local")
    ('photos', None)
    """
    if not domain:
        return None
    h = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    h = h.lower().rstrip(".")
    suffix = "." + domain.lower()
    if h.endswith(suffix) and len(h) > len(suffix):
        return h[: -len(suffix)]
    return None


def route(method: str, path: str, query: Mapping[str, str], host: str, *, domain: str | None = None) -> Route:
    vbucket = split_host(host, domain)
    raw = path.split("?", 1)[0]
    if vbucket is not None:
        bucket: str | None = vbucket
        key_raw = raw[1:] if raw.startswith("/") else raw
    else:
        parts = raw.lstrip("/").split("/", 1)
        bucket = decode(parts[0]) or None
        key_raw = parts[1] if len(parts) > 1 else ""
    key = decode(key_raw) if key_raw else None
    if bucket is None:
        if method in ("GET", "HEAD"):
            return Route("ListBuckets")
        raise _not_allowed()
    return _bucket_route(method, query, bucket) if key is None else _object_route(method, query, bucket, key)


def _bucket_route(method: str, q: Mapping[str, str], bucket: str) -> Route:
    """
    >>> [_bucket_route("GET", {q: ""}, "b").op for q in ("policyStatus", "publicAccessBlock", "analytics")]
    ['GetBucketPolicyStatus', 'GetPublicAccessBlock', 'ListBucketAnalyticsConfigurations']
    >>> _bucket_route("GET", {"metrics": "", "id": "x"}, "b").op
    'GetBucketMetricsConfiguration'
    >>> _bucket_route("DELETE", {"website": ""}, "b").op, _bucket_route("DELETE", {"nope": ""}, "b").op
    ('DeleteBucketWebsite', 'UnknownSubresource')
    >>> _bucket_route("POST", {}, "b").op, _bucket_route("GET", {"prefix": "a"}, "b").op
    ('PostObject', 'ListObjects')
    """
    if method == "HEAD":
        return Route("HeadBucket", bucket)
    if method not in _METHODS:
        raise _not_allowed()
    col = _METHODS.index(method)
    for name in q:
        ops = _BUCKET_SUB.get(name)
        if ops is None:
            continue
        op = ops[col]
        if op is None:
            raise _not_allowed()
        return Route(_BY_ID.get(op, op) if "id" in q else op, bucket)
    if method == "GET":  # unknown parameters are ignored by a listing, as S3 does
        return Route("ListObjectsV2" if q.get("list-type") == "2" else "ListObjects", bucket)
    if any(not is_auth_param(name) for name in q):  # never another operation than the one asked for
        return Route(UNKNOWN, bucket)
    return Route({"PUT": "CreateBucket", "DELETE": "DeleteBucket", "POST": "PostObject"}[method], bucket)


def _object_route(method: str, q: Mapping[str, str], bucket: str, key: str) -> Route:
    """
    >>> _object_route("PUT", {"tagging": ""}, "b", "k").op, _object_route("HEAD", {"partNumber": "1"}, "b", "k").op
    ('PutObjectTagging', 'HeadObject')
    >>> _object_route("POST", {}, "b", "k")
    Traceback (most recent call last):
    protocols.s3.errors.S3Error: The specified method is not allowed against this resource.
    """
    for name, op in _OBJECT_SUB.get(method, ()):
        if name in q:
            return Route(op, bucket, key)
    plain = _OBJECT_PLAIN.get(method)
    if plain is None:
        raise _not_allowed()
    return Route(plain, bucket, key)
