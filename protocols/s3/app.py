"""The S3 application: authenticate, route, dispatch, map errors to S3 XML.

One catch-all FastAPI route hands every request to :func:`handle`; the pure
router (protocols/s3/router.py) names the operation and one table maps it to
its handler.  Only core.fs is used below this point.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from core.errors import CoreError
from core.fs import Volume, open_volume
from protocols.s3 import (
    access_ops,
    audit,
    authz,
    buckets,
    lifecycle,
    limits,
    listing,
    lock,
    multipart,
    objects,
    version_list,
    versioning,
)
from protocols.s3.auth import authenticate
from protocols.s3.context import Ctx, Settings
from protocols.s3.errors import S3Error, error_xml, from_core
from protocols.s3.router import route, split_host
from protocols.s3.service import S3Service

log = logging.getLogger("tessera.s3")
Handler = Callable[[Ctx], Awaitable[Response]]
MAX_HEADER_BYTES = 16 * 1024

HANDLERS: dict[str, Handler] = {
    "ListBuckets": buckets.list_buckets,
    "CreateBucket": buckets.create_bucket,
    "DeleteBucket": buckets.delete_bucket,
    "HeadBucket": buckets.head_bucket,
    "GetBucketLocation": buckets.location,
    "GetBucketVersioning": versioning.get_bucket_versioning,
    "PutBucketVersioning": versioning.put_bucket_versioning,
    "GetObjectLockConfiguration": lock.get_config,
    "PutObjectLockConfiguration": lock.put_config,
    "GetObjectRetention": lock.get_retention,
    "PutObjectRetention": lock.put_retention,
    "GetObjectLegalHold": lock.get_legal_hold,
    "PutObjectLegalHold": lock.put_legal_hold,
    "GetBucketLifecycle": lifecycle.get,
    "PutBucketLifecycle": lifecycle.put,
    "DeleteBucketLifecycle": lifecycle.delete,
    "GetBucketAcl": lambda c: access_ops.get_acl(c, is_bucket=True),
    "PutBucketAcl": lambda c: access_ops.put_acl(c, is_bucket=True),
    "GetBucketPolicy": access_ops.get_policy,
    "PutBucketPolicy": access_ops.put_policy,
    "DeleteBucketPolicy": access_ops.delete_policy,
    "GetBucketPolicyStatus": access_ops.policy_status,
    "GetPublicAccessBlock": access_ops.get_pab,
    "PutPublicAccessBlock": access_ops.put_pab,
    "DeletePublicAccessBlock": access_ops.delete_pab,
    "ListObjects": lambda c: listing.list_objects(c, v2=False),
    "ListObjectsV2": lambda c: listing.list_objects(c, v2=True),
    "ListObjectVersions": version_list.list_versions,
    "PutObject": objects.put_object,
    "GetObject": objects.get_object,
    "HeadObject": lambda c: objects.get_object(c, head=True),
    "DeleteObject": objects.delete_object,
    "DeleteObjects": objects.delete_objects,
    "GetObjectTagging": objects.get_tagging,
    "PutObjectTagging": objects.put_tagging,
    "DeleteObjectTagging": lambda c: objects.put_tagging(c, delete=True),
    "GetObjectAcl": lambda c: access_ops.get_acl(c, is_bucket=False),
    "PutObjectAcl": lambda c: access_ops.put_acl(c, is_bucket=False),
    "CreateMultipartUpload": multipart.create,
    "UploadPart": multipart.upload_part,
    "CompleteMultipartUpload": multipart.complete,
    "AbortMultipartUpload": multipart.abort,
    "ListParts": multipart.list_parts,
    "ListMultipartUploads": multipart.list_uploads,
}


def _headers(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in request.headers.raw:
        out.setdefault(k.decode("latin-1").lower(), []).append(v.decode("latin-1"))
    return out


DRAIN_MAX = 1024 * 1024


async def _settle_body(request: Request, resp: Response) -> None:
    """An error answered before the body was read: drain a small body so the connection can be
    reused; otherwise tell the client we close it (its unread bytes would corrupt the next request)."""
    if getattr(request.state, "body_read", False) or request.method in ("GET", "HEAD", "DELETE"):
        return
    length = request.headers.get("content-length")
    chunked = "chunked" in request.headers.get("transfer-encoding", "")
    if not chunked and (length is None or length == "0"):
        return
    if length is not None and length.isdigit() and int(length) <= DRAIN_MAX:
        try:
            async for _ in request.stream():
                pass
            return
        except Exception:
            pass
    resp.headers["Connection"] = "close"


def _error(e: S3Error, rid: str, head: bool) -> Response:
    headers = {"x-amz-request-id": rid, **e.headers}
    if e.status == 304:
        return Response(status_code=304, headers=headers)
    body = b"" if head else error_xml(e, rid)
    return Response(body, status_code=e.status, media_type="application/xml", headers=headers)


async def handle(service: S3Service, settings: Settings, request: Request) -> Response:
    rid = os.urandom(8).hex().upper()
    method = request.method
    raw_path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    raw_query = request.scope.get("query_string", b"").decode("latin-1")
    headers = _headers(request)
    started = time.perf_counter()
    op = "?"
    try:
        if sum(len(k) + sum(len(x) for x in v) for k, v in headers.items()) > MAX_HEADER_BYTES:
            raise S3Error("RequestHeaderSectionTooLarge", "Your request header section exceeds the maximum allowed "
                          "size.", 400)
        from protocols.s3.auth import parse_query
        q = dict(parse_query(raw_query))
        host = (headers.get("host") or [""])[0]
        r = route(method, raw_path, q, host, domain=settings.domain)
        op = r.op
        audit.note(request.scope, route=r)
        vb = split_host(host, settings.domain)
        auth = authenticate(method, raw_path, raw_query, headers, service.user,  # user lookups are cached
                            resource_prefix=f"/{vb}" if vb else "")
        audit.note(request.scope, user=auth.user.name if auth.user else None)
        limits.check(r, q, anonymous=auth.user is None)
        request.state.body_cap = limits.body_cap(r)
        handler = HANDLERS.get(r.op)
        if handler is None:
            if r.op.startswith(("GetBucket", "DeleteBucket", "GetObjectLock")):
                handler = buckets.not_configured
            else:
                raise S3Error("NotImplemented", f"{r.op} is not implemented by Tessera", 501)
        facts = authz.RequestFacts(r.op, r.bucket, r.key, request.client.host if request.client else "",
                                   request.url.scheme == "https", q, headers)
        view, info = authz.authorize(service, auth.user, facts)  # inline: WAL reads never wait on writers
        ctx = Ctx(view, request, r, auth, q, headers, rid, settings, info, facts)
        resp = await handler(ctx)
    except S3Error as e:
        if not e.resource:
            e.resource = raw_path
        resp = _error(e, rid, method == "HEAD")
    except CoreError as e:
        err = from_core(e)
        err.resource = raw_path
        resp = _error(err, rid, method == "HEAD")
    except Exception:
        log.exception("S3 request failed", extra={"op": op, "request_id": rid})
        resp = _error(S3Error("InternalError", "We encountered an internal error. Please try again.", 500), rid,
                      method == "HEAD")
    if resp.status_code >= 300:
        await _settle_body(request, resp)
    resp.headers["x-amz-request-id"] = rid
    resp.headers.setdefault("Server", "Tessera")
    log.debug("s3 request", extra={"op": op, "method": method, "status": resp.status_code, "request_id": rid,
                                   "ms": round((time.perf_counter() - started) * 1000, 2)})
    return resp


def create_app(store: Volume, settings: Settings | None = None, root: str = "/", *,
               audit_log: bool = False, bucket_mode: int = 0o700, object_mode: int = 0o600) -> FastAPI:
    s3 = S3Service(store, root, bucket_mode, object_mode)
    cfg = settings or Settings()
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    if audit_log:
        audit.setup()

    async def s3_asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        rec = audit.Recorder(scope, receive, send) if audit_log else None
        if rec is not None:
            receive, send = rec.receive, rec.send
        try:
            resp = await handle(s3, cfg, Request(scope, receive))
            await resp(scope, receive, send)
        finally:
            if rec is not None:
                rec.emit()

    app.mount("/", s3_asgi)  # every path is S3's: one ASGI handler, no per-route dispatch
    app.state.store = store
    app.state.s3_asgi = s3_asgi
    return app


class FastPath:
    """What uvicorn serves: HTTP requests go straight to the S3 handler; everything else
    (lifespan, future non-S3 routes) to the FastAPI app.  Starlette's middleware stack
    costs more per request than a small S3 GET itself on a 2-core box."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.s3 = app.state.s3_asgi

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.s3(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def app_from_env() -> FastPath:
    """Factory for uvicorn workers: each process opens the store itself."""
    data = os.environ["TESSERA_DATA"]
    settings = Settings(region=os.environ.get("TESSERA_S3_REGION", "us-east-1"),
                        domain=os.environ.get("TESSERA_S3_DOMAIN") or None,
                        min_part_size=int(os.environ.get("TESSERA_S3_MIN_PART", str(5 * 1024 * 1024))))
    threads = int(os.environ.get("TESSERA_IO_THREADS", "4"))
    return FastPath(create_app(open_volume(data, threads=threads), settings, os.environ.get("TESSERA_S3_ROOT", "/"),
                               audit_log=audit.enabled_from_env(os.environ),
                               bucket_mode=int(os.environ.get("TESSERA_S3_BUCKET_MODE", "0o700"), 0),
                               object_mode=int(os.environ.get("TESSERA_S3_OBJECT_MODE", "0o600"), 0)))
