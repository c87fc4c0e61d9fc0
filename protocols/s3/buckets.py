"""Bucket operations: list, create, delete, head, location (versioning: protocols/s3/versioning.py)."""

from __future__ import annotations

from starlette.responses import Response

from protocols.s3 import access_ops, grants, listing, lock, xmlio
from protocols.s3.body import read_body
from protocols.s3.context import Ctx
from protocols.s3.errors import S3Error
from protocols.s3.objects import owner_xml


def _xml(data: bytes, status: int = 200) -> Response:
    return Response(data, status_code=status, media_type="application/xml")


async def list_buckets(ctx: Ctx) -> Response:
    if ctx.s3.cred.anonymous:
        raise S3Error("AccessDenied", "Access Denied", 403)
    buckets = await ctx.run(ctx.s3.buckets)
    body = "".join(f"<Bucket>{xmlio.el('Name', n)}{xmlio.el('CreationDate', xmlio.iso(a.btime_ns))}</Bucket>"
                   for n, a in buckets)
    me = owner_xml(ctx.s3.cred.name or str(ctx.s3.cred.uid))
    return _xml(xmlio.doc("ListAllMyBucketsResult", me + f"<Buckets>{body}</Buckets>"))


async def create_bucket(ctx: Ctx) -> Response:
    if ctx.s3.cred.anonymous:
        raise S3Error("AccessDenied", "Access Denied", 403)
    raw = bytearray()
    await read_body(ctx.request, ctx.auth, ctx.headers, raw.extend)
    if raw.strip():
        root = xmlio.parse(bytes(raw))
        loc = xmlio.text(root, "LocationConstraint")
        if loc is not None and not loc.replace("-", "").isalnum():
            raise S3Error("InvalidLocationConstraint", "The specified location-constraint is not valid", 400)

    def make() -> None:
        me = ctx.s3.cred.name or str(ctx.s3.cred.uid)
        acl = access_ops.requested_acl(ctx, me, b"")
        mode = ctx.s3.service.bucket_mode
        core = grants.to_core(acl, mode, is_bucket=True, uid_of=ctx.s3.uid_of) if acl is not None else None
        a = ctx.s3.create_bucket(ctx.bucket, core)
        lock.on_create(ctx, a.ino)  # x-amz-bucket-object-lock-enabled
    await ctx.run(make)
    return Response(status_code=200, headers={"Location": f"/{ctx.bucket}"})


async def delete_bucket(ctx: Ctx) -> Response:
    await ctx.run(ctx.s3.delete_bucket, ctx.bucket)
    return Response(status_code=204)


async def head_bucket(ctx: Ctx) -> Response:
    b = await ctx.run(ctx.s3.bucket, ctx.bucket)
    await ctx.run(listing.may_list, ctx, b.ino)  # as AWS: 403 without s3:ListBucket
    return Response(status_code=200, headers={"x-amz-bucket-region": ctx.settings.region})


async def location(ctx: Ctx) -> Response:
    await ctx.run(ctx.s3.bucket, ctx.bucket)
    region = "" if ctx.settings.region == "us-east-1" else ctx.settings.region
    return _xml(xmlio.doc("LocationConstraint", region).replace(b"<LocationConstraint xmlns", b"<LocationConstraint "
                                                                 b"xmlns", 1))


_MISSING = {
    "GetBucketPolicy": ("NoSuchBucketPolicy", "The bucket policy does not exist"),
    "GetBucketLifecycle": ("NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist"),
    "GetBucketCors": ("NoSuchCORSConfiguration", "The CORS configuration does not exist"),
    "GetBucketEncryption": ("ServerSideEncryptionConfigurationNotFoundError",
                            "The server side encryption configuration was not found"),
    "GetBucketTagging": ("NoSuchTagSet", "The TagSet does not exist"),
    "GetObjectLockConfiguration": ("ObjectLockConfigurationNotFoundError",
                                   "Object Lock configuration does not exist for this bucket"),
    "GetBucketWebsite": ("NoSuchWebsiteConfiguration", "The specified bucket does not have a website configuration"),
    "GetBucketReplication": ("ReplicationConfigurationNotFoundError", "The replication configuration was not found"),
    "GetBucketOwnershipControls": ("OwnershipControlsNotFoundError", "The bucket ownership controls were not found"),
}


async def not_configured(ctx: Ctx) -> Response:
    """Bucket sub-resources Tessera keeps no configuration for."""
    await ctx.run(ctx.s3.bucket, ctx.bucket)
    op = ctx.route.op
    if op in _MISSING:
        code, msg = _MISSING[op]
        raise S3Error(code, msg, 404, extra={"BucketName": ctx.bucket})
    if op == "GetBucketLogging":
        return _xml(xmlio.doc("BucketLoggingStatus", ""))
    if op == "GetBucketNotification":
        return _xml(xmlio.doc("NotificationConfiguration", ""))
    if op == "GetBucketRequestPayment":
        return _xml(xmlio.doc("RequestPaymentConfiguration", "<Payer>BucketOwner</Payer>"))
    if op == "GetBucketAccelerate":
        return _xml(xmlio.doc("AccelerateConfiguration", ""))
    if op.startswith("Delete"):
        return Response(status_code=204)
    raise S3Error("NotImplemented", f"{op} is not implemented by Tessera", 501)
