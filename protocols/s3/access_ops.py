"""Access configuration operations: bucket policy, policy status, public access block, ACLs.

Policies and access blocks are S3's own records on the bucket directory (protocols/s3/authz.py
evaluates them); ACLs are the core ACLs of the bucket directory and object files
(protocols/s3/grants.py), so NFS, SMB and the PyTorch adapter see the same grants.
"""

from __future__ import annotations

from starlette.responses import Response

from core.errors import NoAttribute
from core.fs import Attr
from protocols.s3 import acl as s3acl
from protocols.s3 import authz, grants, pab, xmlio
from protocols.s3.body import read_body
from protocols.s3.context import Ctx
from protocols.s3.errors import S3Error, no_such_bucket
from protocols.s3.policy import PolicyError, is_public, parse_policy


def _xml(data: bytes, status: int = 200) -> Response:
    return Response(data, status_code=status, media_type="application/xml")


def _info(ctx: Ctx) -> authz.BucketInfo:
    if ctx.bucket_info is None:
        raise no_such_bucket(ctx.bucket)
    return ctx.bucket_info


async def _body(ctx: Ctx) -> bytes:
    raw = bytearray()
    await read_body(ctx.request, ctx.auth, ctx.headers, raw.extend)
    return bytes(raw)


# -- bucket policy ------------------------------------------------------------------------------
async def get_policy(ctx: Ctx) -> Response:
    info = _info(ctx)
    if info.policy is None:
        raise S3Error("NoSuchBucketPolicy", "The bucket policy does not exist", 404, extra={"BucketName": ctx.bucket})
    return Response(info.policy.text, media_type="application/json")


async def put_policy(ctx: Ctx) -> Response:
    info = _info(ctx)
    body = await _body(ctx)
    ident = ctx.s3.service.volume.identity

    def known(kind: str, name: str) -> bool:
        return (ident.user(name) if kind == "user" else ident.group(name)) is not None
    try:
        policy = parse_policy(body, ctx.bucket, known=known)
    except PolicyError as e:
        raise S3Error("MalformedPolicy", e.reason, 400) from None
    if info.pab.block_public_policy and is_public(policy):
        raise S3Error("AccessDenied", "Access Denied: the bucket's public access block forbids public policies",
                      403)
    await ctx.run(ctx.s3.admin.setxattr, info.ino, authz.POLICY_XATTR, policy.text.encode())
    return Response(status_code=204)


async def _drop(ctx: Ctx, record: str) -> Response:
    """Delete one of S3's records on the bucket (idempotent, 204 as on AWS)."""
    info = _info(ctx)

    def drop() -> None:
        try:
            ctx.s3.admin.removexattr(info.ino, record)
        except NoAttribute:
            pass
    await ctx.run(drop)
    return Response(status_code=204)


async def delete_policy(ctx: Ctx) -> Response:
    return await _drop(ctx, authz.POLICY_XATTR)


async def policy_status(ctx: Ctx) -> Response:
    info = _info(ctx)
    if info.policy is None:
        raise S3Error("NoSuchBucketPolicy", "The bucket policy does not exist", 404, extra={"BucketName": ctx.bucket})
    public = "true" if is_public(info.policy) else "false"
    return _xml(xmlio.doc("PolicyStatus", xmlio.el("IsPublic", public)))


# -- public access block ------------------------------------------------------------------------
async def get_pab(ctx: Ctx) -> Response:
    info = _info(ctx)
    try:
        await ctx.run(ctx.s3.admin.getxattr, info.ino, authz.PAB_XATTR)
    except NoAttribute:
        raise S3Error("NoSuchPublicAccessBlockConfiguration", "The public access block configuration was not found",
                      404, extra={"BucketName": ctx.bucket}) from None
    return _xml(pab.render_pab(info.pab))


async def put_pab(ctx: Ctx) -> Response:
    info = _info(ctx)
    cfg = pab.parse_pab(await _body(ctx))
    await ctx.run(ctx.s3.admin.setxattr, info.ino, authz.PAB_XATTR, cfg.to_json().encode())
    return Response(status_code=200)


async def delete_pab(ctx: Ctx) -> Response:
    return await _drop(ctx, authz.PAB_XATTR)


# -- ACLs ---------------------------------------------------------------------------------------
def _target(ctx: Ctx, is_bucket: bool) -> Attr:
    return ctx.s3.bucket(ctx.bucket) if is_bucket else ctx.s3.lookup(ctx.bucket, ctx.key)


def current_acl(ctx: Ctx, a: Attr, is_bucket: bool) -> s3acl.Acl:
    stored, _ = ctx.s3.admin.getacl(a.ino)
    core = stored if _ else None
    return grants.from_core(core, ctx.s3.owner_name(a.uid), is_bucket=is_bucket, name_of=ctx.s3.owner_name)


def _may(ctx: Ctx, acl: s3acl.Acl, a: Attr, perm: s3acl.Permission) -> bool:
    c = ctx.s3.cred
    if c.admin or c.uid == a.uid:  # the admin, a policy grant, or the owner
        return True
    info = ctx.bucket_info
    ignore = info is not None and info.pab.ignore_public_acls
    return s3acl.permits(acl, None if c.anonymous else c.name, perm, ignore_public=ignore)


async def get_acl(ctx: Ctx, *, is_bucket: bool) -> Response:
    def load() -> s3acl.Acl:
        a = _target(ctx, is_bucket)
        acl = current_acl(ctx, a, is_bucket)
        if not _may(ctx, acl, a, s3acl.Permission.READ_ACP):
            raise S3Error("AccessDenied", "Access Denied", 403)
        return acl
    acl = await ctx.run(load)
    return _xml(s3acl.acl_xml(acl))


def requested_acl(ctx: Ctx, owner: str, body: bytes, bucket_owner: str | None = None) -> s3acl.Acl | None:
    """The ACL a request asks for: x-amz-acl / x-amz-grant-* headers, or an AccessControlPolicy body."""
    ident = ctx.s3.service.volume.identity

    def exists(name: str) -> bool:
        return ident.user(name) is not None
    acl = s3acl.acl_from_headers(ctx.headers, owner, bucket_owner, exists)
    if acl is None and body.strip():
        acl = s3acl.parse_acl_xml(body, exists)
        if acl.owner != owner:
            raise S3Error("AccessDenied", "Access Denied: the ACL's Owner is not the resource's owner", 403)
    if acl is not None:
        info = ctx.bucket_info
        if info is not None and info.pab.block_public_acls and s3acl.acl_is_public(acl.grants):
            raise S3Error("AccessDenied", "Access Denied: the bucket's public access block forbids public ACLs", 403)
    return acl


async def put_acl(ctx: Ctx, *, is_bucket: bool) -> Response:
    body = await _body(ctx)

    def apply() -> None:
        a = _target(ctx, is_bucket)
        b_owner = None if is_bucket else ctx.s3.owner_name(ctx.s3.bucket(ctx.bucket).uid)
        acl = requested_acl(ctx, ctx.s3.owner_name(a.uid), body, b_owner)
        if acl is None:
            raise S3Error("MissingSecurityHeader", "Your request was missing a required header", 400,
                          extra={"MissingHeaderName": "x-amz-acl"})
        if not _may(ctx, current_acl(ctx, a, is_bucket), a, s3acl.Permission.WRITE_ACP):
            raise S3Error("AccessDenied", "Access Denied", 403)
        svc = ctx.s3.service
        base = svc.bucket_mode if is_bucket else svc.object_mode  # S3's own modes, whatever an old ACL made
        core = grants.to_core(acl, base, is_bucket=is_bucket, uid_of=ctx.s3.uid_of)
        ctx.s3.admin.setacl(a.ino, core)  # decided above: owner, WRITE_ACP grantee, policy or admin
        if core is None:
            ctx.s3.admin.setattr(a.ino, mode=(a.perm & 0o7000) | base)
    await ctx.run(apply)
    return Response(status_code=200)
