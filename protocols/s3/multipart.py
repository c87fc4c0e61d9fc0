"""Multipart uploads.  Parts are files in a hidden system directory; Complete
joins them with ``core.fs.concat`` (slices re-pointed, no data copied) and
renames the result into place atomically."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.parse
import uuid

from starlette.responses import Response

from core.errors import CoreError, NoAttribute, NotFound
from core.fs.fs import FileSystem
from core.fs.types import Attr
from protocols.s3 import checksums, objmeta, xmlio
from protocols.s3.body import checksum_algo, read_body
from protocols.s3.context import Ctx
from protocols.s3.errors import S3Error, from_core
from protocols.s3.objects import copy_source, owner_xml, parse_range, quoted, request_meta, upload_response
from protocols.s3.objmeta import ObjMeta

UPLOAD = "tessera.s3.upload"
PART = "tessera.s3.part"
MAX_PARTS = 10000


def _uploads(fs: FileSystem) -> int:
    return fs.system_dir("s3-uploads")


def _no_upload(upload_id: str) -> S3Error:
    return S3Error("NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the "
                   "upload may have been aborted or completed.", 404, extra={"UploadId": upload_id})


def _upload(ctx: Ctx, upload_id: str) -> tuple[int, dict[str, object]]:
    fs = ctx.s3.fs
    if not upload_id or "/" in upload_id or upload_id.startswith("."):
        raise _no_upload(upload_id)
    try:
        d = fs.lookup(_uploads(fs), upload_id)
        info: dict[str, object] = json.loads(fs.getxattr(d.ino, UPLOAD))
    except (CoreError, ValueError):
        raise _no_upload(upload_id) from None
    if info.get("bucket") != ctx.bucket or info.get("key") != ctx.key:
        raise _no_upload(upload_id)
    return d.ino, info


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
    meta = request_meta(ctx, "", 0, 0, None)
    upload_id = uuid.uuid4().hex
    info = {"bucket": ctx.bucket, "key": ctx.key, "initiated": time.time_ns(), "meta": meta.encode().decode(),
            "algorithm": algo or "", "user": ctx.auth.user.name if ctx.auth.user else ""}
    fs = ctx.s3.fs

    def make() -> None:
        d = fs.mkdir(_uploads(fs), upload_id, 0o700)
        fs.setxattr(d.ino, UPLOAD, json.dumps(info).encode())
    await ctx.run(make)
    extra = xmlio.el("ChecksumAlgorithm", algo) if algo else ""
    headers = {"x-amz-checksum-algorithm": algo} if algo else {}
    return Response(xmlio.doc("InitiateMultipartUploadResult", xmlio.el("Bucket", ctx.bucket) +
                              xmlio.el("Key", ctx.key) + xmlio.el("UploadId", upload_id) + extra),
                    media_type="application/xml", headers=headers)


async def upload_part(ctx: Ctx) -> Response:
    if ctx.h("x-amz-copy-source"):
        return await upload_part_copy(ctx)
    part = _part_no(ctx)
    d, _ = await ctx.run(_upload, ctx, ctx.q.get("uploadId", ""))
    fs = ctx.s3.fs
    stager = fs.stager()
    try:
        body = await read_body(ctx.request, ctx.auth, ctx.headers, stager.write)
        pm = {"etag": body.md5, "size": body.size, "checksum": list(body.checksum) if body.checksum else None}
        await ctx.run(lambda: fs.write_file(d, f"{part:05d}", stager, xattrs={PART: json.dumps(pm).encode()}))
    except BaseException:
        stager.abort()
        raise
    return upload_response(body)


async def upload_part_copy(ctx: Ctx) -> Response:
    part = _part_no(ctx)
    d, _ = await ctx.run(_upload, ctx, ctx.q.get("uploadId", ""))
    sb, sk = copy_source(ctx)
    src = await ctx.run(ctx.s3.lookup, sb, sk)
    if not src.is_file:
        raise S3Error("InvalidRequest", "The copy source is a directory", 400)
    start, end = 0, src.size - 1
    rng = ctx.h("x-amz-copy-source-range")
    if rng is not None:
        r = parse_range(rng, src.size) if rng.startswith("bytes=") and not rng[6:].startswith("-") else None
        if r is None:
            raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form bytes=first-last",
                          400)
        start, end = r
    fs = ctx.s3.fs

    def copy() -> str:
        md5 = hashlib.md5()
        stg = fs.stager()
        off = start
        try:
            while off <= end:
                b = fs.read(src.ino, off, min(8 << 20, end + 1 - off))
                if not b:
                    break
                md5.update(b)
                stg.write(b)
                off += len(b)
            pm = {"etag": md5.hexdigest(), "size": stg.size, "checksum": None}
            fs.write_file(d, f"{part:05d}", stg, xattrs={PART: json.dumps(pm).encode()})
        except BaseException:
            stg.abort()
            raise
        return md5.hexdigest()
    etag = await ctx.run(copy)
    return Response(xmlio.doc("CopyPartResult", xmlio.el("LastModified", xmlio.iso(time.time_ns())) +
                              xmlio.el("ETag", quoted(etag))), media_type="application/xml")


def _parts(fs: FileSystem, d: int) -> dict[int, tuple[Attr, dict[str, object]]]:
    out = {}
    for e in fs.listdir(d):
        if e.name.isdigit():
            try:
                out[int(e.name)] = (fs.getattr(e.ino), json.loads(fs.getxattr(e.ino, PART)))
            except (CoreError, ValueError):
                continue
    return out


async def complete(ctx: Ctx) -> Response:
    upload_id = ctx.q.get("uploadId", "")
    d, info = await ctx.run(_upload, ctx, upload_id)
    raw = bytearray()
    await read_body(ctx.request, ctx.auth, ctx.headers, raw.extend)
    root = xmlio.parse(bytes(raw))
    asked: list[tuple[int, str, dict[str, str]]] = []
    for p in root.findall("Part"):
        try:
            n = int(xmlio.text(p, "PartNumber", "") or "")
        except ValueError:
            raise S3Error("MalformedXML", "PartNumber must be an integer", 400) from None
        given = {a: v for a in checksums.ALGORITHMS if (v := xmlio.text(p, f"Checksum{a}"))}
        asked.append((n, (xmlio.text(p, "ETag", "") or "").strip('"'), given))
    if not asked:
        raise S3Error("MalformedXML", "You must specify at least one part", 400)
    if [n for n, _, _ in asked] != sorted({n for n, _, _ in asked}):
        raise S3Error("InvalidPartOrder", "The list of parts was not in ascending order. Parts must be ordered by "
                      "part number.", 400)
    fs = ctx.s3.fs
    have = await ctx.run(_parts, fs, d)
    algo = str(info.get("algorithm") or "")
    inos: list[int] = []
    sizes: list[int] = []
    sums: list[str] = []
    md5s = b""
    for i, (n, etag, psums) in enumerate(asked):
        if n not in have or have[n][1].get("etag") != etag:
            raise S3Error("InvalidPart", "One or more of the specified parts could not be found. The part may not "
                          "have been uploaded, or the specified entity tag may not match the part's entity tag.",
                          400, extra={"PartNumber": str(n)})
        a, pm = have[n]
        if i < len(asked) - 1 and a.size < ctx.settings.min_part_size:
            raise S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.",
                          400, extra={"PartNumber": str(n)})
        stored = pm.get("checksum")
        if algo:
            if not isinstance(stored, list) or stored[0] != algo:
                raise S3Error("InvalidRequest", f"Part {n} was uploaded without a {algo} checksum", 400)
            if algo in psums and psums[algo] != stored[1]:
                raise S3Error("InvalidPart", f"The {algo} of part {n} does not match", 400)
            sums.append(str(stored[1]))
        inos.append(a.ino)
        sizes.append(a.size)
        md5s += bytes.fromhex(etag)
    etag = f"{hashlib.md5(md5s).hexdigest()}-{len(asked)}"
    meta = ObjMeta.decode(str(info["meta"]).encode())
    now = time.time_ns()
    meta.etag, meta.size, meta.mtime, meta.parts = etag, sum(sizes), now, sizes
    if algo:
        meta.checksum = {"algorithm": algo, "value": checksums.composite(algo, sums), "type": "COMPOSITE"}
    parent, name, _ = await ctx.run(ctx.s3.parent_for, ctx.bucket, ctx.key, ctx.auth.user)
    uid, gid = ctx.uid_gid()

    def join() -> None:
        try:
            t = fs.write_file(d, "final", b"", uid=uid, gid=gid)
            fs.concat(t.ino, inos)
            fs.setattr(t.ino, mtime_ns=now)
            fs.setxattr(t.ino, objmeta.XATTR, meta.encode())
            fs.rename(d, "final", parent, name)
        except CoreError as e:
            raise from_core(e, ctx.key) from None
        _remove_upload(fs, upload_id)
    await ctx.run(join)
    loc = f"/{ctx.bucket}/{urllib.parse.quote(ctx.key)}"
    extra = xmlio.el(f"Checksum{algo}", meta.checksum["value"]) if algo else ""
    return Response(xmlio.doc("CompleteMultipartUploadResult", xmlio.el("Location", loc) +
                              xmlio.el("Bucket", ctx.bucket) + xmlio.el("Key", ctx.key) +
                              xmlio.el("ETag", quoted(etag)) + extra), media_type="application/xml")


def _remove_upload(fs: FileSystem, upload_id: str) -> None:
    up = _uploads(fs)
    try:
        d = fs.lookup(up, upload_id)
    except NotFound:
        return
    for e in fs.listdir(d.ino):
        try:
            fs.unlink(d.ino, e.name)
        except CoreError:
            pass
    try:
        fs.removexattr(d.ino, UPLOAD)
    except NoAttribute:
        pass
    fs.rmdir(up, upload_id)


def expire_uploads(fs: FileSystem, older_than_s: float, now_ns: int | None = None) -> int:
    """Remove multipart uploads started more than ``older_than_s`` ago (clients that never
    completed or aborted them); their parts become garbage for GC.  Returns how many."""
    now = time.time_ns() if now_ns is None else now_ns
    cutoff = now - int(older_than_s * 1e9)
    gone = 0
    for e in fs.listdir(_uploads(fs)):
        try:
            info = json.loads(fs.getxattr(e.ino, UPLOAD))
            started = int(info.get("initiated", 0))
        except (CoreError, ValueError):
            started = 0  # half-made upload directory: expire it too
        if started < cutoff:
            try:
                _remove_upload(fs, e.name)
                gone += 1
            except CoreError:
                continue
    return gone


async def abort(ctx: Ctx) -> Response:
    upload_id = ctx.q.get("uploadId", "")
    await ctx.run(_upload, ctx, upload_id)
    await ctx.run(_remove_upload, ctx.s3.fs, upload_id)
    return Response(status_code=204)


async def list_parts(ctx: Ctx) -> Response:
    upload_id = ctx.q.get("uploadId", "")
    d, info = await ctx.run(_upload, ctx, upload_id)
    have = await ctx.run(_parts, ctx.s3.fs, d)
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
    head = (xmlio.el("Bucket", ctx.bucket) + xmlio.el("Key", ctx.key) + xmlio.el("UploadId", upload_id) +
            owner_xml(ctx).replace("Owner>", "Initiator>") + owner_xml(ctx) + "<StorageClass>STANDARD</StorageClass>"
            + xmlio.el("PartNumberMarker", marker) + xmlio.el("NextPartNumberMarker", shown[-1] if shown else 0) +
            xmlio.el("MaxParts", max_parts) + xmlio.el("IsTruncated", "true" if truncated else "false"))
    if info.get("algorithm"):
        head += xmlio.el("ChecksumAlgorithm", str(info["algorithm"]))
    return Response(xmlio.doc("ListPartsResult", head + "".join(body)), media_type="application/xml")


async def list_uploads(ctx: Ctx) -> Response:
    await ctx.run(ctx.s3.bucket, ctx.bucket)
    fs = ctx.s3.fs
    prefix = ctx.q.get("prefix", "")
    key_marker = ctx.q.get("key-marker", "")
    id_marker = ctx.q.get("upload-id-marker", "")
    max_up = min(1000, int(ctx.q.get("max-uploads", "1000") or 1000))

    def collect() -> list[tuple[str, str, int]]:
        out = []
        for e in fs.listdir(_uploads(fs)):
            try:
                info = json.loads(fs.getxattr(e.ino, UPLOAD))
            except (CoreError, ValueError):
                continue
            if info.get("bucket") == ctx.bucket and str(info.get("key", "")).startswith(prefix):
                out.append((str(info["key"]), e.name, int(info.get("initiated", 0))))
        return sorted(out)
    ups = [u for u in await ctx.run(collect) if (u[0], u[1]) > (key_marker, id_marker if key_marker else "")]
    shown, truncated = ups[:max_up], len(ups) > max_up
    body = "".join(f"<Upload>{xmlio.el('Key', k)}{xmlio.el('UploadId', i)}"
                   f"{owner_xml(ctx).replace('Owner>', 'Initiator>')}{owner_xml(ctx)}"
                   f"<StorageClass>STANDARD</StorageClass>{xmlio.el('Initiated', xmlio.iso(t))}</Upload>"
                   for k, i, t in shown)
    head = (xmlio.el("Bucket", ctx.bucket) + xmlio.el("KeyMarker", key_marker) +
            xmlio.el("UploadIdMarker", id_marker) + xmlio.el("Prefix", prefix) + xmlio.el("MaxUploads", max_up) +
            xmlio.el("IsTruncated", "true" if truncated else "false"))
    if truncated and shown:
        head += xmlio.el("NextKeyMarker", shown[-1][0]) + xmlio.el("NextUploadIdMarker", shown[-1][1])
    return Response(xmlio.doc("ListMultipartUploadsResult", head + body), media_type="application/xml")


__all__ = ["abort", "complete", "create", "list_parts", "list_uploads", "upload_part"]
