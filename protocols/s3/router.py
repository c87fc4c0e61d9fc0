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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from protocols.s3.errors import S3Error


@dataclass(frozen=True)
class Route:
    op: str
    bucket: str | None = None
    key: str | None = None


_BUCKET_GET = [("location", "GetBucketLocation"), ("versioning", "GetBucketVersioning"),
               ("versions", "ListObjectVersions"), ("uploads", "ListMultipartUploads"),
               ("acl", "GetBucketAcl"), ("policy", "GetBucketPolicy"), ("lifecycle", "GetBucketLifecycle"),
               ("cors", "GetBucketCors"), ("encryption", "GetBucketEncryption"),
               ("tagging", "GetBucketTagging"), ("object-lock", "GetObjectLockConfiguration"),
               ("website", "GetBucketWebsite"), ("logging", "GetBucketLogging"),
               ("replication", "GetBucketReplication"), ("ownershipControls", "GetBucketOwnershipControls"),
               ("notification", "GetBucketNotification"), ("requestPayment", "GetBucketRequestPayment"),
               ("accelerate", "GetBucketAccelerate")]


def split_host(host: str, domain: str | None) -> str | None:
    """The bucket named by a virtual-host-style Host header, if any."""
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
        bucket = unquote(parts[0]) or None
        key_raw = parts[1] if len(parts) > 1 else ""
    key = unquote(key_raw) if key_raw else None
    if bucket is None:
        if method in ("GET", "HEAD"):
            return Route("ListBuckets")
        raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)
    return _bucket_route(method, query, bucket) if key is None else _object_route(method, query, bucket, key)


def _bucket_route(method: str, q: Mapping[str, str], bucket: str) -> Route:
    if method == "GET":
        for name, op in _BUCKET_GET:
            if name in q:
                return Route(op, bucket)
        return Route("ListObjectsV2" if q.get("list-type") == "2" else "ListObjects", bucket)
    if method == "HEAD":
        return Route("HeadBucket", bucket)
    if method == "PUT":
        for name, op in (("acl", "PutBucketAcl"), ("versioning", "PutBucketVersioning"),
                         ("tagging", "PutBucketTagging"), ("policy", "PutBucketPolicy"),
                         ("lifecycle", "PutBucketLifecycle"), ("cors", "PutBucketCors")):
            if name in q:
                return Route(op, bucket)
        return Route("CreateBucket", bucket)
    if method == "DELETE":
        for name, op in (("policy", "DeleteBucketPolicy"), ("tagging", "DeleteBucketTagging"),
                         ("cors", "DeleteBucketCors"), ("lifecycle", "DeleteBucketLifecycle")):
            if name in q:
                return Route(op, bucket)
        return Route("DeleteBucket", bucket)
    if method == "POST" and "delete" in q:
        return Route("DeleteObjects", bucket)
    raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)


def _object_route(method: str, q: Mapping[str, str], bucket: str, key: str) -> Route:
    if method == "PUT":
        if "partNumber" in q and "uploadId" in q:
            return Route("UploadPart", bucket, key)
        if "tagging" in q:
            return Route("PutObjectTagging", bucket, key)
        if "acl" in q:
            return Route("PutObjectAcl", bucket, key)
        return Route("PutObject", bucket, key)
    if method == "GET":
        if "uploadId" in q:
            return Route("ListParts", bucket, key)
        if "tagging" in q:
            return Route("GetObjectTagging", bucket, key)
        if "acl" in q:
            return Route("GetObjectAcl", bucket, key)
        if "attributes" in q:
            return Route("GetObjectAttributes", bucket, key)
        return Route("GetObject", bucket, key)
    if method == "HEAD":
        return Route("HeadObject", bucket, key)
    if method == "DELETE":
        if "uploadId" in q:
            return Route("AbortMultipartUpload", bucket, key)
        if "tagging" in q:
            return Route("DeleteObjectTagging", bucket, key)
        return Route("DeleteObject", bucket, key)
    if method == "POST":
        if "uploads" in q:
            return Route("CreateMultipartUpload", bucket, key)
        if "uploadId" in q:
            return Route("CompleteMultipartUpload", bucket, key)
    raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)
