"""CompleteMultipartUpload: verify the parts and checksums, check the request's conditions, join the parts
into the object with no data copied, and rename it into place.

A Complete repeated with the same parts (an SDK retrying after the first response was lost) is answered
as the first one was, from the record the first one left (see ``uploads``), as long as the object is still
the one it produced; the parts are never joined twice.  A Complete that arrives while another is joining
the same upload waits for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import urllib.parse
from dataclasses import dataclass, field

from starlette.responses import Response

from core.errors import CoreError, Exists
from core.fs import Attr
from protocols.s3 import authz, checksums, conditions, lock, objmeta, uploads, versioning, xmlio
from protocols.s3.body import read_body
from protocols.s3.context import Ctx
from protocols.s3.errors import S3Error, from_core
from protocols.s3.objmeta import ObjMeta

WAIT_STEP_S = 0.1
WAIT_MAX_S = 120.0


@dataclass
class Plan:
    """A Complete request checked against the stored parts: what to join and what the object will be."""

    inos: list[int]
    meta: ObjMeta
    digest: str
    checksum: dict[str, str] = field(default_factory=dict)


def _invalid_part(n: int) -> S3Error:
    return S3Error("InvalidPart", "One or more of the specified parts could not be found. The part may not have "
                   "been uploaded, or the specified entity tag may not match the part's entity tag.", 400,
                   extra={"PartNumber": str(n)})


def _asked(body: bytes) -> list[tuple[int, str, dict[str, str]]]:
    """(part number, ETag, checksums given) of each <Part>, in the request's order."""
    root = xmlio.parse(body)
    asked: list[tuple[int, str, dict[str, str]]] = []
    for p in root.findall("Part"):
        try:
            n = int(xmlio.text(p, "PartNumber", "") or "")
        except ValueError:
            raise S3Error("MalformedXML", "PartNumber must be an integer", 400) from None
        given = {a: v for a in checksums.ALGORITHMS if (v := xmlio.text(p, f"Checksum{a}"))}
        asked.append((n, (xmlio.text(p, "ETag", "") or "").strip().strip('"'), given))
    if not asked:
        raise S3Error("MalformedXML", "You must specify at least one part", 400)
    if [n for n, _, _ in asked] != sorted({n for n, _, _ in asked}):
        raise S3Error("InvalidPartOrder", "The list of parts was not in ascending order. Parts must be ordered by "
                      "part number.", 400)
    return asked


def _plan(ctx: Ctx, info: dict[str, object], have: dict[int, tuple[Attr, dict[str, object]]],
          asked: list[tuple[int, str, dict[str, str]]]) -> Plan:
    algo = str(info.get("algorithm") or "")
    inos: list[int] = []
    sizes: list[int] = []
    sums: list[str] = []
    md5s = b""
    for i, (n, etag, given) in enumerate(asked):
        if n not in have or have[n][1].get("etag") != etag:
            raise _invalid_part(n)
        a, pm = have[n]
        if i < len(asked) - 1 and a.size < ctx.settings.min_part_size:
            raise S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.",
                          400, extra={"PartNumber": str(n)})
        stored = pm.get("checksum")
        if algo:
            if not isinstance(stored, list) or stored[0] != algo:
                raise checksums.invalid(f"The upload was created using the {algo} checksum algorithm; part {n} "
                                        "was uploaded without it")
            if algo in given and given[algo] != stored[1]:
                raise _invalid_part(n)
            sums.append(str(stored[1]))
        inos.append(a.ino)
        sizes.append(a.size)
        md5s += bytes.fromhex(str(pm["etag"]))
    meta = ObjMeta.decode(str(info["meta"]).encode())
    meta.etag = f"{hashlib.md5(md5s).hexdigest()}-{len(asked)}"
    meta.size, meta.parts = sum(sizes), sizes
    plan = Plan(inos, meta, uploads.digest([(n, e) for n, e, _ in asked]))
    if algo:
        kind = str(info.get("type") or checksums.COMPOSITE)
        value = (checksums.full_object(algo, list(zip(sums, sizes, strict=True))) if kind == checksums.FULL_OBJECT
                 else checksums.composite(algo, sums))
        plan.checksum = meta.checksum = {"algorithm": algo, "value": value, "type": kind}
    _check_whole(ctx, info, plan)
    return plan


def _check_whole(ctx: Ctx, info: dict[str, object], plan: Plan) -> None:
    """The request's claims about the whole object: checksum type and value, and x-amz-mp-object-size."""
    algo = str(info.get("algorithm") or "")
    kind = str(info.get("type") or (checksums.COMPOSITE if algo else ""))
    asked_kind = (ctx.h("x-amz-checksum-type") or "").strip().upper()
    if asked_kind and asked_kind != kind:
        raise checksums.invalid(f"The upload was created using the {kind or 'no'} checksum type; the Complete "
                                f"request asks for {asked_kind}")
    for a in checksums.ALGORITHMS:
        given = ctx.h(checksums.header_name(a))
        if given is None:
            continue
        if a != algo:
            raise checksums.invalid(f"The upload was created using {'the ' + algo if algo else 'no'} checksum "
                                    f"algorithm; the Complete request carries a {a} checksum")
        if not checksums.matches(kind, plan.checksum["value"], given):
            raise checksums.mismatch(a)
    size = ctx.h("x-amz-mp-object-size")
    if size is not None and size.strip() != str(plan.meta.size):
        raise checksums.invalid(f"The object size is {plan.meta.size} bytes, not the {size} that "
                                "x-amz-mp-object-size gives")


def _result(ctx: Ctx, etag: str, checksum: dict[str, str], vid: str | None = None) -> Response:
    loc = f"/{ctx.bucket}/{urllib.parse.quote(ctx.key)}"
    extra = ""
    if checksum:
        extra = xmlio.el(f"Checksum{checksum['algorithm']}", checksum["value"]) + xmlio.el("ChecksumType",
                                                                                          checksum["type"])
    return Response(xmlio.doc("CompleteMultipartUploadResult", xmlio.el("Location", loc) +
                              xmlio.el("Bucket", ctx.bucket) + xmlio.el("Key", ctx.key) +
                              xmlio.el("ETag", f'"{etag}"') + extra), media_type="application/xml",
                    headers={versioning.HEADER: vid} if vid else None)


def _replay(ctx: Ctx, upload_id: str, done: dict[str, object], digest: str) -> Response:
    """The answer to a repeated Complete: the first one's, while the object is still what it produced."""
    if done.get("parts") != digest:
        raise uploads.no_upload(upload_id)
    try:
        a = ctx.s3.lookup(ctx.bucket, ctx.key)
    except S3Error:
        raise uploads.no_upload(upload_id) from None
    if [a.ino, a.gen, a.size, a.mtime_ns] != [done.get(k) for k in ("ino", "gen", "size", "mtime")]:
        raise uploads.no_upload(upload_id)
    cs = done.get("checksum")
    vid = done.get("vid")
    return _result(ctx, str(done.get("etag", "")), cs if isinstance(cs, dict) else {},
                   vid if isinstance(vid, str) else None)


def _join(ctx: Ctx, d: int, info: dict[str, object], plan: Plan, exclusive: bool) -> dict[str, object] | None:
    """Join the parts into place (in a worker thread); the 'done' record, or None while another Complete
    holds the upload (or finished it since ``info`` was read)."""
    fs = ctx.s3.admin  # the upload's bookkeeping; the object is placed as the caller
    if not uploads.claim(fs, d):
        return None
    if uploads.record(fs, d).get("done"):
        fs.removexattr(d, uploads.JOINING)
        return None
    try:
        conditions.check_write_target(ctx)
        parent, name, _ = ctx.s3.parent_for(ctx.bucket, ctx.key)
        now = time.time_ns()
        plan.meta.mtime = now
        # one atomic clone into place, as the caller: core.fs decides whether it may write there
        a = ctx.s3.fs.clone(parent, name, plan.inos, mode=ctx.s3.service.object_mode, exclusive=exclusive,
                            xattrs={objmeta.XATTR: plan.meta.encode()}, mtime_ns=now, keep_locked=True)
        lock.apply_upload(ctx, a, info)  # CreateMultipartUpload's x-amz-object-lock-*
    except BaseException as e:
        uploads.release(fs, d)
        if isinstance(e, Exists):
            raise conditions.precondition("If-None-Match") from None
        if isinstance(e, CoreError):
            raise from_core(e, ctx.key) from None
        raise
    done: dict[str, object] = {"completed": now, "etag": plan.meta.etag, "parts": plan.digest, "ino": a.ino,
                               "gen": a.gen, "size": a.size, "mtime": a.mtime_ns, "checksum": plan.checksum,
                               "vid": versioning.live_headers(ctx.s3, ctx.bucket, a).get(versioning.HEADER)}
    try:
        uploads.finish(fs, d, info, done)
    except CoreError:
        pass  # the object is in place; an abort or the sweep removed the upload meanwhile
    return done


async def complete(ctx: Ctx) -> Response:
    upload_id = ctx.q.get("uploadId", "")
    fs = ctx.s3.admin  # the upload's bookkeeping; the object is placed as the caller
    _, first = await ctx.run(uploads.load, fs, upload_id, ctx.bucket, ctx.key)  # NoSuchUpload before the body
    authz.may_use_upload(ctx.s3.cred, first, ctx.bucket_info)
    raw = bytearray()
    body_headers = {k: v for k, v in ctx.headers.items() if not k.startswith("x-amz-checksum-")}
    await read_body(ctx.request, ctx.auth, body_headers, raw.extend)  # x-amz-checksum-* name the object
    asked = _asked(bytes(raw))
    digest = uploads.digest([(n, e) for n, e, _ in asked])
    exclusive = conditions.write_conditions(ctx)
    deadline = time.monotonic() + WAIT_MAX_S
    while True:
        d, info = await ctx.run(uploads.load, fs, upload_id, ctx.bucket, ctx.key)
        done = info.get("done")
        if isinstance(done, dict):
            return await ctx.run(_replay, ctx, upload_id, done, digest)
        have = await ctx.run(uploads.parts, fs, d)
        try:
            plan = _plan(ctx, info, have, asked)
        except S3Error:
            done = (await ctx.run(uploads.record, fs, d)).get("done")
            if isinstance(done, dict):  # completed (its parts dropped) since ``info`` was read
                return await ctx.run(_replay, ctx, upload_id, done, digest)
            raise
        joined = await ctx.run(_join, ctx, d, info, plan, exclusive)
        if joined is not None:
            vid = joined.get("vid")
            return _result(ctx, plan.meta.etag, plan.checksum, vid if isinstance(vid, str) else None)
        if time.monotonic() > deadline:
            raise S3Error("OperationAborted", "Another CompleteMultipartUpload of this upload is in progress", 409)
        await asyncio.sleep(WAIT_STEP_S)


__all__ = ["complete"]
