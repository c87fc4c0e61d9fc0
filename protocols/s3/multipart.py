"""Multipart uploads.  Parts are files in a hidden system directory (layout in ``uploads``);
Complete (``complete``) joins them with ``core.fs.concat`` (slices re-pointed, no data copied) and
renames the result into place atomically."""

from __future__ import annotations

import hashlib
import json
import time
import uuid

from starlette.responses import Response

from core.fs import FileSystem, acl
from protocols.s3 import authz, checksums, lock, uploads, xmlio
from protocols.s3.body import checksum_algo, read_body
from protocols.s3.complete import complete
from protocols.s3.context import Ctx
from protocols.s3.errors import S3Error
from protocols.s3.objects import (
    check_conditions,
    copy_source,
    owner_xml,
    quoted,
    read_source,
    request_meta,
    upload_response,
)

MAX_PARTS = 10000
MAX_COPY_PART = 5 * 1024**3


def _part_no(ctx: Ctx) -> int:
    try:
        n = int(ctx.q.get("partNumber", ""))
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_PARTS:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive", 400)
    return n


async def create(ctx: Ctx) -> Response:
    await ctx.run(ctx.s3.bucket, ctx.bucket)
    from protocols.s3.keys import key_parts
    key_parts(ctx.key)
    if ctx.key.endswith("/"):
        raise S3Error("InvalidArgument", "A key ending in '/' is a directory and cannot hold data", 400)
    algo, _, _ = checksum_algo(ctx.headers)
    if algo is not None and algo not in checksums.ALGORITHMS:
        raise checksums.invalid(f"Checksum algorithm {algo!r} is not supported")
    kind = checksums.upload_type(algo, ctx.h("x-amz-checksum-type"))
    meta = request_meta(ctx, "", 0, 0, None)
    upload_id = uuid.uuid4().hex
    info = {"v": uploads.VERSION, "bucket": ctx.bucket, "key": ctx.key, "initiated": time.time_ns(),
            "meta": meta.encode().decode(), "algorithm": algo or "", "type": kind,
            "user": ctx.s3.cred.name, "uid": ctx.s3.cred.uid}
    info.update(lock.upload_fields(await ctx.run(lock.from_headers, ctx)))  # applied by Complete
    fs = ctx.s3.admin  # uploads are S3's bookkeeping; who may touch one is decided here (_may_use)

    def make() -> None:
        _may_write_bucket(ctx)
        d = fs.mkdir(uploads.root(fs), upload_id, 0o700)
        fs.setxattr(d.ino, uploads.UPLOAD, json.dumps(info).encode())
    await ctx.run(make)
    extra = xmlio.el("ChecksumAlgorithm", algo) + xmlio.el("ChecksumType", kind) if algo else ""
    headers = {"x-amz-checksum-algorithm": algo, "x-amz-checksum-type": kind} if algo else {}
    return Response(xmlio.doc("InitiateMultipartUploadResult", xmlio.el("Bucket", ctx.bucket) +
                              xmlio.el("Key", ctx.key) + xmlio.el("UploadId", upload_id) + extra),
                    media_type="application/xml", headers=headers)


def _may_write_bucket(ctx: Ctx) -> None:
    """CreateMultipartUpload: the caller must be able to add objects to the bucket (checked again,
    by core.fs, when Complete places the object)."""
    c = ctx.s3.cred
    b = ctx.s3.bucket(ctx.bucket)
    want = acl.ADD_FILE | acl.EXECUTE
    if not c.admin and ctx.s3.fs.access(b.ino, want) != want:
        raise S3Error("AccessDenied", "Access Denied", 403)


async def upload_part(ctx: Ctx) -> Response:
    if ctx.h("x-amz-copy-source"):
        return await upload_part_copy(ctx)
    part = _part_no(ctx)
    d, info = await ctx.run(uploads.active, ctx.s3.admin, ctx.q.get("uploadId", ""), ctx.bucket, ctx.key)
    authz.may_use_upload(ctx.s3.cred, info, ctx.bucket_info)
    fs = ctx.s3.admin
    stager = fs.stager()
    try:
        body = await read_body(ctx.request, ctx.auth, ctx.headers, stager.write)
        pm = {"etag": body.md5, "size": body.size, "checksum": list(body.checksum) if body.checksum else None}
        await ctx.run(lambda: fs.write_file(d, f"{part:05d}", stager, xattrs={uploads.PART: json.dumps(pm).encode()}))
    except BaseException:
        stager.abort()
        raise
    return upload_response(body)


def copy_range(value: str | None, size: int) -> tuple[int, int]:
    """(first, last) byte of an UploadPartCopy's ``x-amz-copy-source-range`` (None: the whole source).

    Only ``bytes=first-last`` inside the source is valid: another form is InvalidArgument, a range
    that does not fit the source is InvalidRange.

    >>> copy_range("bytes=0-9", 100), copy_range(None, 100), copy_range("bytes=99-99", 100)
    ((0, 9), (0, 99), (99, 99))
    >>> for bad in ("bytes=0-100", "bytes=100-100", "bytes=5-", "bytes=-5", "bytes=3-2", "0-2", "bytes=0-2,4-5"):
    ...     try:
    ...         copy_range(bad, 100)
    ...     except S3Error as e:
    ...         print(bad, e.code, e.status)
    bytes=0-100 InvalidRange 416
    bytes=100-100 InvalidRange 416
    bytes=5- InvalidArgument 400
    bytes=-5 InvalidArgument 400
    bytes=3-2 InvalidArgument 400
    0-2 InvalidArgument 400
    bytes=0-2,4-5 InvalidArgument 400
    """
    if value is None:
        return 0, size - 1
    first, sep, last = value.strip().removeprefix("bytes=").partition("-")
    if not value.strip().startswith("bytes=") or not sep or not (first.isdigit() and last.isdigit()) \
            or int(last) < int(first):
        raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form bytes=first-last "
                      "where first and last are the zero-based offsets of the first and last bytes to copy", 400,
                      extra={"ArgumentName": "x-amz-copy-source-range", "ArgumentValue": value})
    if int(last) >= size:
        raise S3Error("InvalidRange", f"The requested range is not satisfiable: the source object has {size} "
                      "bytes", 416, headers={"Content-Range": f"bytes */{size}"})
    if int(last) - int(first) + 1 > MAX_COPY_PART:
        raise S3Error("InvalidArgument", "A copied part may be at most 5 GiB", 400)
    return int(first), int(last)


async def upload_part_copy(ctx: Ctx) -> Response:
    part = _part_no(ctx)
    fs = ctx.s3.admin
    d, info = await ctx.run(uploads.active, fs, ctx.q.get("uploadId", ""), ctx.bucket, ctx.key)
    authz.may_use_upload(ctx.s3.cred, info, ctx.bucket_info)
    sb, sk, svid = copy_source(ctx)
    source = await ctx.run(read_source, ctx, sb, sk, svid)  # checked as s3:GetObject(Version) on the source
    src, sm = source.attr, source.meta
    check_conditions(ctx, sm.etag, src.mtime_ns, prefix="x-amz-copy-source-")
    start, end = copy_range(ctx.h("x-amz-copy-source-range"), src.size)
    algo = str(info.get("algorithm") or "")
    etag, cs = await ctx.run(_copy_part, source.fs, src.ino, start, end, d, part, algo, fs)
    extra = xmlio.el(f"Checksum{algo}", cs) if algo else ""
    headers = {"x-amz-copy-source-version-id": source.vid} if source.vid is not None else {}
    return Response(xmlio.doc("CopyPartResult", xmlio.el("LastModified", xmlio.iso(time.time_ns())) +
                              xmlio.el("ETag", quoted(etag)) + extra), media_type="application/xml",
                    headers=headers)


def _copy_part(fs: FileSystem, ino: int, start: int, end: int, d: int, part: int, algo: str,
               admin: FileSystem) -> tuple[str, str]:
    """Copy bytes start..end of ``ino`` (read as the caller) into part ``part`` (written by ``admin``):
    (ETag, checksum in the upload's algorithm)."""
    md5 = hashlib.md5()
    summer = checksums.Hasher(algo) if algo else None
    stg = fs.stager()
    off = start
    try:
        while off <= end:
            b = fs.read(ino, off, min(8 << 20, end + 1 - off))
            if not b:
                break
            md5.update(b)
            if summer is not None:
                summer.update(b)
            stg.write(b)
            off += len(b)
        if off != end + 1:
            raise S3Error("InvalidRange", "The copy source changed size while it was copied", 416)
        cs = summer.b64() if summer is not None else ""
        pm = {"etag": md5.hexdigest(), "size": stg.size, "checksum": [algo, cs] if algo else None}
        admin.write_file(d, f"{part:05d}", stg, xattrs={uploads.PART: json.dumps(pm).encode()})
    except BaseException:
        stg.abort()
        raise
    return md5.hexdigest(), cs


async def abort(ctx: Ctx) -> Response:
    upload_id = ctx.q.get("uploadId", "")
    _, info = await ctx.run(uploads.active, ctx.s3.admin, upload_id, ctx.bucket, ctx.key)
    authz.may_use_upload(ctx.s3.cred, info, ctx.bucket_info)
    await ctx.run(uploads.remove, ctx.s3.admin, upload_id)
    return Response(status_code=204)


async def list_parts(ctx: Ctx) -> Response:
    upload_id = ctx.q.get("uploadId", "")
    d, info = await ctx.run(uploads.active, ctx.s3.admin, upload_id, ctx.bucket, ctx.key)
    authz.may_use_upload(ctx.s3.cred, info, ctx.bucket_info)
    have = await ctx.run(uploads.parts, ctx.s3.admin, d)
    try:
        marker = int(ctx.q.get("part-number-marker", "0") or 0)
        max_parts = min(1000, int(ctx.q.get("max-parts", "1000")))
    except ValueError:
        raise S3Error("InvalidArgument", "part-number-marker and max-parts must be integers", 400) from None
    nums = [n for n in sorted(have) if n > marker]
    shown, truncated = nums[:max_parts], len(nums) > max_parts
    body = []
    for n in shown:
        a, pm = have[n]
        cs = pm.get("checksum")
        extra = xmlio.el(f"Checksum{cs[0]}", cs[1]) if isinstance(cs, list) else ""
        body.append(f"<Part>{xmlio.el('PartNumber', n)}{xmlio.el('LastModified', xmlio.iso(a.mtime_ns))}"
                    f"{xmlio.el('ETag', quoted(str(pm['etag'])))}{xmlio.el('Size', a.size)}{extra}</Part>")
    who = str(info.get("user") or "")  # the initiator, who also owns the object Complete makes
    head = (xmlio.el("Bucket", ctx.bucket) + xmlio.el("Key", ctx.key) + xmlio.el("UploadId", upload_id) +
            owner_xml(who, "Initiator") + owner_xml(who) + "<StorageClass>STANDARD</StorageClass>"
            + xmlio.el("PartNumberMarker", marker) + xmlio.el("NextPartNumberMarker", shown[-1] if shown else 0) +
            xmlio.el("MaxParts", max_parts) + xmlio.el("IsTruncated", "true" if truncated else "false"))
    if info.get("algorithm"):
        head += xmlio.el("ChecksumAlgorithm", str(info["algorithm"]))
        head += xmlio.el("ChecksumType", str(info.get("type") or checksums.COMPOSITE))
    return Response(xmlio.doc("ListPartsResult", head + "".join(body)), media_type="application/xml")


async def list_uploads(ctx: Ctx) -> Response:
    b = await ctx.run(ctx.s3.bucket, ctx.bucket)
    if not ctx.s3.cred.admin and not await ctx.run(ctx.s3.fs.access, b.ino, acl.LIST_DIRECTORY):
        raise S3Error("AccessDenied", "Access Denied", 403)
    fs = ctx.s3.admin
    prefix = ctx.q.get("prefix", "")
    key_marker = ctx.q.get("key-marker", "")
    id_marker = ctx.q.get("upload-id-marker", "")
    max_up = min(1000, int(ctx.q.get("max-uploads", "1000") or 1000))

    def collect() -> list[tuple[str, str, int, str]]:
        out = []
        for e in fs.listdir(uploads.root(fs)):
            info = uploads.record(fs, e.ino)
            if (info and not info.get("done") and info.get("bucket") == ctx.bucket
                    and str(info.get("key", "")).startswith(prefix)):
                out.append((str(info["key"]), e.name, int(str(info.get("initiated", 0))), str(info.get("user", ""))))
        return sorted(out)
    ups = [u for u in await ctx.run(collect) if (u[0], u[1]) > (key_marker, id_marker if key_marker else "")]
    shown, truncated = ups[:max_up], len(ups) > max_up
    body = "".join(f"<Upload>{xmlio.el('Key', k)}{xmlio.el('UploadId', i)}"
                   f"{owner_xml(who, 'Initiator')}{owner_xml(who)}"
                   f"<StorageClass>STANDARD</StorageClass>{xmlio.el('Initiated', xmlio.iso(t))}</Upload>"
                   for k, i, t, who in shown)
    head = (xmlio.el("Bucket", ctx.bucket) + xmlio.el("KeyMarker", key_marker) +
            xmlio.el("UploadIdMarker", id_marker) + xmlio.el("Prefix", prefix) + xmlio.el("MaxUploads", max_up) +
            xmlio.el("IsTruncated", "true" if truncated else "false"))
    if truncated and shown:
        head += xmlio.el("NextKeyMarker", shown[-1][0]) + xmlio.el("NextUploadIdMarker", shown[-1][1])
    return Response(xmlio.doc("ListMultipartUploadsResult", head + body), media_type="application/xml")


def expire_uploads(fs: FileSystem, older_than_s: float, now_ns: int | None = None) -> int:
    """Remove uploads started (and records of uploads completed) more than ``older_than_s`` ago."""
    return uploads.expire(fs, older_than_s, now_ns)


__all__ = ["abort", "complete", "create", "expire_uploads", "list_parts", "list_uploads", "upload_part"]
