"""Object operations: Put, Get, Head, Delete, DeleteObjects, Copy, tagging."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import urllib.parse
from collections.abc import AsyncIterator

from starlette.responses import Response, StreamingResponse

from core.errors import CoreError, Exists
from core.fs import Attr, FileSystem, acl
from protocols.s3 import checksums, conditions, keys, lock, objmeta, versioning, xmlio
from protocols.s3.body import Body, read_body
from protocols.s3.context import Ctx, parse_http_date
from protocols.s3.errors import S3Error, from_core
from protocols.s3.objmeta import ObjMeta
from protocols.s3.router import decode
from protocols.s3.service import S3Fs

EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"
READ_CHUNK = 4 * 1024 * 1024
MAX_META = 2048


def request_meta(ctx: Ctx, md5: str, size: int, mtime: int, checksum: tuple[str, str] | None) -> ObjMeta:
    headers = {k: v for k in objmeta.STANDARD if (v := ctx.h(k)) is not None}
    meta = {k[len("x-amz-meta-"):]: ",".join(v) for k, v in ctx.headers.items() if k.startswith("x-amz-meta-")}
    if sum(len(k) + len(v) for k, v in meta.items()) > MAX_META:
        raise S3Error("MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size.", 400)
    tags = parse_tag_header(ctx.h("x-amz-tagging"))
    cs = {"algorithm": checksum[0], "value": checksum[1], "type": "FULL_OBJECT"} if checksum else {}
    return ObjMeta(md5, size, mtime, headers, meta, cs, tags)


def parse_tag_header(value: str | None) -> dict[str, str]:
    if not value:
        return {}
    tags = dict(urllib.parse.parse_qsl(value, keep_blank_values=True))
    check_tags(tags)
    return tags


def check_tags(tags: dict[str, str]) -> None:
    if len(tags) > 10 or any(len(k) > 128 or len(v) > 256 or not k for k, v in tags.items()):
        raise S3Error("InvalidTag", "Tags: at most 10, keys up to 128 and values up to 256 characters", 400)


def quoted(etag: str) -> str:
    return f'"{etag}"'


def check_conditions(ctx: Ctx, etag: str, mtime_ns: int, *, prefix: str = "") -> None:
    """If-Match / If-None-Match / If-(Un)Modified-Since, in RFC 7232 order.

    With ``prefix`` ('x-amz-copy-source-') the copy source's conditions: each failure is 412 naming its
    header; plain ones are 412 (If-Match, If-Unmodified-Since) or 304 Not Modified (the other two).
    """
    im, inm = ctx.h(prefix + "if-match"), ctx.h(prefix + "if-none-match")
    ims, ius = ctx.h(prefix + "if-modified-since"), ctx.h(prefix + "if-unmodified-since")
    mtime = mtime_ns // 1_000_000_000

    def fail(header: str) -> S3Error:
        if prefix or header in ("If-Match", "If-Unmodified-Since"):
            return conditions.precondition(prefix + header)
        return S3Error("NotModified", "Not Modified", 304)
    if im is not None:
        if not conditions.etag_match(im, etag):
            raise fail("If-Match")
    elif ius is not None and mtime > parse_http_date(ius):
        raise fail("If-Unmodified-Since")
    if inm is not None:
        if conditions.etag_match(inm, etag):
            raise fail("If-None-Match")
    elif ims is not None and mtime <= parse_http_date(ims):
        raise fail("If-Modified-Since")


def object_headers(a: Attr, m: ObjMeta, ctx: Ctx | None = None) -> dict[str, str]:
    h = {"ETag": quoted(m.etag or EMPTY_MD5), "Last-Modified": xmlio.http_date(a.mtime_ns),
         "Accept-Ranges": "bytes", "Content-Type": m.content_type}
    for k, v in m.headers.items():
        if k != "content-type":
            h[k.title()] = v
    for k, v in m.meta.items():
        h[f"x-amz-meta-{k}"] = v
    if m.tags:
        h["x-amz-tagging-count"] = str(len(m.tags))
    if m.parts:
        h["x-amz-mp-parts-count"] = str(len(m.parts))
    if ctx is not None:
        for q, name in (("response-content-type", "Content-Type"), ("response-content-language", "Content-Language"),
                        ("response-expires", "Expires"), ("response-cache-control", "Cache-Control"),
                        ("response-content-disposition", "Content-Disposition"),
                        ("response-content-encoding", "Content-Encoding")):
            if q in ctx.q:
                h[name] = ctx.q[q]
        if (ctx.h("x-amz-checksum-mode") or "").upper() == "ENABLED" and m.checksum:
            h[checksums.header_name(m.checksum["algorithm"])] = m.checksum["value"]
            h["x-amz-checksum-type"] = m.checksum.get("type", "FULL_OBJECT")
    return h


# -- PutObject ----------------------------------------------------------------------------
async def put_object(ctx: Ctx) -> Response:
    if ctx.h("x-amz-copy-source"):
        return await copy_object(ctx)
    fs = ctx.s3.fs
    if ctx.key.endswith("/"):
        return await _put_dir(ctx)
    keys.key_parts(ctx.key)  # a bad key fails before the body is read
    exclusive = conditions.write_conditions(ctx)
    await ctx.run(conditions.check_write_target, ctx)
    lk = lock.requested(ctx)  # x-amz-object-lock-* (checked before the body is read)
    stager = fs.stager()
    try:
        body = await read_body(ctx.request, ctx.auth, ctx.headers, stager.write)
        now = time.time_ns()
        meta = request_meta(ctx, body.md5, body.size, now, body.checksum)

        def link() -> dict[str, str]:  # one worker-thread hop: directories, then the atomic create-or-replace
            parent, name, _ = ctx.s3.parent_for(ctx.bucket, ctx.key)
            lock.check(ctx, lk)
            a = fs.write_file(parent, name, stager, mode=ctx.s3.service.object_mode, exclusive=exclusive,
                              xattrs={objmeta.XATTR: meta.encode()}, mtime_ns=now, keep_locked=True)
            apply_request_acl(ctx, a)
            lock.apply(ctx, a, lk)
            return versioning.live_headers(ctx.s3, ctx.bucket, a)
        vh = await ctx.run(link)
    except Exists:
        stager.abort()
        raise conditions.precondition("If-None-Match") from None
    except CoreError as e:
        stager.abort()
        raise from_core(e, ctx.key) from None
    except BaseException:
        stager.abort()
        raise
    return upload_response(body, vh)


def upload_response(body: Body, extra: dict[str, str] | None = None) -> Response:
    """200 with the ETag, the new version's id (versioned buckets) and, when one was sent, the verified
    checksum."""
    headers = {"ETag": quoted(body.md5), **(extra or {})}
    if body.checksum:
        headers[checksums.header_name(body.checksum[0])] = body.checksum[1]
    return Response(status_code=200, headers=headers)


async def _put_dir(ctx: Ctx) -> Response:
    chunks = bytearray()
    await read_body(ctx.request, ctx.auth, ctx.headers, chunks.extend)
    if chunks:
        raise S3Error("InvalidArgument", "A key ending in '/' is a directory and cannot hold data", 400)
    await ctx.run(ctx.s3.make_dir_marker, ctx.bucket, ctx.key)
    return Response(status_code=200, headers={"ETag": quoted(EMPTY_MD5)})


# -- Get/HeadObject ----------------------------------------------------------------------
def parse_range(value: str, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single 'bytes=' range; None = whole object.

    >>> parse_range("bytes=0-9", 100), parse_range("bytes=-10", 100), parse_range("bytes=95-", 100)
    ((0, 9), (90, 99), (95, 99))
    """
    if not value.startswith("bytes=") or "," in value:
        return None
    a, sep, b = value[6:].strip().partition("-")
    if not sep:
        return None
    try:
        if a == "":
            n = int(b)
            if n <= 0:
                raise ValueError
            return (max(0, size - n), size - 1) if size else _unsatisfiable(size)
        start = int(a)
        end = int(b) if b else size - 1
    except ValueError:
        return None
    if start >= size or (b and end < start):
        return _unsatisfiable(size) if start >= size else None
    return start, min(end, size - 1)


def _unsatisfiable(size: int) -> tuple[int, int]:
    raise S3Error("InvalidRange", "The requested range is not satisfiable", 416,
                  headers={"Content-Range": f"bytes */{size}"})


SMALL_GET = 1024 * 1024


def _prepare_get(ctx: Ctx, head: bool) -> tuple[Attr, ObjMeta, bytes | None, FileSystem, dict[str, str]]:
    """Lookup (of the live object, or of the version ``?versionId=`` names), metadata and — for small
    objects — the bytes, in one worker-thread hop; with the view to read the rest and the version headers."""
    vid = ctx.q.get("versionId")
    if vid is not None:
        a, m, fs, vh = versioning.open_version(ctx, vid)
    else:
        fs = ctx.s3.fs
        try:
            a = ctx.s3.lookup(ctx.bucket, ctx.key)
        except S3Error as e:
            raise versioning.missing(ctx, e) from None
        m = objmeta.load(fs, a) if a.is_file else ObjMeta(EMPTY_MD5, 0, a.mtime_ns)
        vh = versioning.live_headers(ctx.s3, ctx.bucket, a, read=True)
    data = fs.read(a.ino, 0, a.size) if a.is_file and not head and a.size <= SMALL_GET else None
    return a, m, data, fs, vh


async def get_object(ctx: Ctx, head: bool = False) -> Response:
    a, m, data, fs, vh = await ctx.run(_prepare_get, ctx, head)
    size = a.size if a.is_file else 0
    check_conditions(ctx, m.etag, a.mtime_ns)
    headers = object_headers(a, m, ctx)
    headers.update(vh)
    if lock.maybe_locked(ctx):  # x-amz-object-lock-* of lock-enabled buckets
        headers.update(await ctx.run(lock.response_headers, ctx))
    status, start, end = 200, 0, size - 1
    part = ctx.q.get("partNumber")
    if part is not None:
        start, end = _part_range(m, size, part)
        status = 206 if m.parts else 200
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    elif (rng := ctx.h("range")) is not None and (r := parse_range(rng, size)) is not None:
        start, end = r
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if (status == 206 or part is not None) and m.checksum:  # a checksum describes the whole object only
        headers.pop(checksums.header_name(m.checksum.get("algorithm", "")), None)
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    if head or length == 0:
        return Response(status_code=status, headers=headers)
    if data is not None and len(data) == size:
        return Response(data[start:end + 1], status_code=status, headers=headers, media_type=None)
    return StreamingResponse(_stream(ctx, fs, a.ino, start, length), status_code=status, headers=headers,
                             media_type=None)


def _part_range(m: ObjMeta, size: int, part_s: str) -> tuple[int, int]:
    try:
        part = int(part_s)
    except ValueError:
        raise S3Error("InvalidArgument", "partNumber must be an integer", 400) from None
    parts = m.parts or [size]
    if not 1 <= part <= len(parts):
        raise S3Error("InvalidPartNumber", "The requested partnumber is not satisfiable", 416)
    start = sum(parts[: part - 1])
    return start, start + parts[part - 1] - 1


async def _stream(ctx: Ctx, fs: FileSystem, ino: int, start: int, length: int) -> AsyncIterator[memoryview]:
    """The object's bytes in READ_CHUNK pieces, the next one read while this one is sent."""
    end = start + length
    off = start
    nxt: asyncio.Future[memoryview] | None = None

    def read(o: int) -> memoryview:
        buf = memoryview(bytearray(min(READ_CHUNK, end - o)))  # handed to the socket as is, no copy
        return buf[: fs.read_committed(ino, o, buf)]
    while off < end:
        cur = nxt if nxt is not None else asyncio.ensure_future(ctx.run(read, off))
        data = await cur
        if not len(data):
            return
        off += len(data)
        nxt = asyncio.ensure_future(ctx.run(read, off)) if off < end else None  # read ahead
        yield data


# -- DeleteObject(s) ---------------------------------------------------------------------
async def delete_object(ctx: Ctx) -> Response:
    vid = ctx.q.get("versionId")
    headers = await ctx.run(delete_one, ctx, ctx.s3, ctx.key, vid, conditions.delete_if_headers(ctx))
    return Response(status_code=204, headers=headers)


def delete_one(ctx: Ctx, s3: S3Fs, key: str, vid: str | None, cond: conditions.DeleteIf) -> dict[str, str]:
    """Delete a key (a delete marker where versioning is on) or one version of it; the version headers."""
    if vid is not None:
        return versioning.delete_version(ctx, s3, key, vid)
    return versioning.delete_current(ctx, s3, key, cond)


async def delete_objects(ctx: Ctx) -> Response:
    raw = bytearray()
    await read_body(ctx.request, ctx.auth, ctx.headers, raw.extend)
    root = xmlio.parse(bytes(raw))
    quiet = (xmlio.text(root, "Quiet", "false") or "").lower() == "true"
    objs = root.findall("Object")
    if len(objs) > 1000:
        raise S3Error("MalformedXML", "At most 1000 keys can be deleted per request", 400)
    await ctx.run(ctx.s3.bucket, ctx.bucket)
    out = []
    asked = []
    for o in objs:
        key = xmlio.text(o, "Key")
        if not key:
            raise S3Error("MalformedXML", "Each Object needs a Key", 400)
        asked.append((key, xmlio.text(o, "VersionId"), conditions.delete_if_xml(
            xmlio.text(o, "ETag"), xmlio.text(o, "LastModifiedTime"), xmlio.text(o, "Size"))))
    for key, vid, cond in asked:
        ver = xmlio.el("VersionId", vid) if vid is not None else ""
        try:  # each key is authorized as its own DeleteObject(Version) (a policy may deny some keys)
            kview = await ctx.run(versioning.view_for, ctx, "DeleteObject", ctx.bucket, key, vid)
            vh = await ctx.run(delete_one, ctx, kview, key, vid, cond)
            if not quiet:
                dm = (xmlio.el("DeleteMarker", "true") + xmlio.el("DeleteMarkerVersionId", vh[versioning.HEADER])
                      if versioning.MARKER_HEADER in vh else "")
                out.append(f"<Deleted>{xmlio.el('Key', key)}{ver}{dm}</Deleted>")
        except S3Error as e:
            out.append(f"<Error>{xmlio.el('Key', key)}{ver}{xmlio.el('Code', e.code)}"
                       f"{xmlio.el('Message', e.message)}</Error>")
        except CoreError as e:
            err = from_core(e, key)
            out.append(f"<Error>{xmlio.el('Key', key)}{ver}{xmlio.el('Code', err.code)}"
                       f"{xmlio.el('Message', err.message)}</Error>")
    return Response(xmlio.doc("DeleteResult", "".join(out)), media_type="application/xml")


# -- CopyObject --------------------------------------------------------------------------
def copy_source(ctx: Ctx) -> tuple[str, str, str | None]:
    """(bucket, key, version id or None) of ``x-amz-copy-source: /bucket/key[?versionId=ID]``."""
    raw = ctx.h("x-amz-copy-source") or ""
    path, _, query = raw.partition("?")
    src = decode(path).lstrip("/")  # not UTF-8: InvalidURI, never U+FFFD
    bucket, _, key = src.partition("/")
    if not bucket or not key:
        raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: "
                      "sourcebucket/sourcekey", 400)
    vid = dict(urllib.parse.parse_qsl(query, keep_blank_values=True)).get("versionId") if query else None
    return bucket, key, (versioning.check_vid(vid) if vid is not None else None)


@dataclasses.dataclass
class Source:
    """A copy's source: its attributes and S3 metadata, the view to read it with, and the version id to
    answer as ``x-amz-copy-source-version-id`` (None: the source bucket was never versioned)."""

    attr: Attr
    meta: ObjMeta
    fs: FileSystem
    vid: str | None


def read_source(ctx: Ctx, bucket: str, key: str, vid: str | None = None) -> Source:
    """A copy's source (the live object, or version ``vid``), checked as s3:GetObject(Version) on its own
    bucket (policy, ACL and file permissions): a grant to write the destination never lends read access
    to the source."""
    view = versioning.view_for(ctx, "GetObject", bucket, key, vid)
    src, fs, svid = versioning.copy_source_version(view, bucket, key, vid)
    if not src.is_file:
        raise S3Error("InvalidRequest", "The copy source is a directory", 400)
    if not view.cred.admin and not fs.access(src.ino, acl.READ_DATA):
        raise S3Error("AccessDenied", "Access Denied", 403)
    return Source(src, objmeta.load(fs, src), fs, svid)


async def copy_object(ctx: Ctx) -> Response:
    sb, sk, svid = copy_source(ctx)
    source = await ctx.run(read_source, ctx, sb, sk, svid)
    src, sm = source.attr, source.meta
    check_conditions(ctx, sm.etag, src.mtime_ns, prefix="x-amz-copy-source-")
    lk = await ctx.run(lock.from_headers, ctx)
    replace = (ctx.h("x-amz-metadata-directive") or "COPY").upper() == "REPLACE"
    tag_replace = (ctx.h("x-amz-tagging-directive") or "COPY").upper() == "REPLACE"
    if (sb, sk) == (ctx.bucket, ctx.key) and svid is None and not replace and not tag_replace:
        raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to "
                      "itself without changing the object's metadata, storage class, website redirect location "
                      "or encryption attributes.", 400)
    now = time.time_ns()
    m = request_meta(ctx, sm.etag, src.size, now, None) if replace else ObjMeta(
        sm.etag, src.size, now, dict(sm.headers), dict(sm.meta), dict(sm.checksum), dict(sm.tags), list(sm.parts))
    m.etag, m.size, m.mtime = sm.etag, src.size, now
    if not replace:
        m.checksum = dict(sm.checksum)
    m.tags = parse_tag_header(ctx.h("x-amz-tagging")) if tag_replace else dict(sm.tags)
    parent, name, _ = await ctx.run(ctx.s3.parent_for, ctx.bucket, ctx.key)
    a = await ctx.run(clone, ctx, src, parent, name, m, now, svid is not None)
    await ctx.run(apply_request_acl, ctx, a)
    await ctx.run(lock.apply, ctx, a, lk)
    headers = await ctx.run(versioning.live_headers, ctx.s3, ctx.bucket, a)
    if source.vid is not None:
        headers["x-amz-copy-source-version-id"] = source.vid
    return Response(xmlio.doc("CopyObjectResult", xmlio.el("LastModified", xmlio.iso(now)) +
                              xmlio.el("ETag", quoted(m.etag))), media_type="application/xml", headers=headers)


def clone(ctx: Ctx, src: Attr, parent: int, name: str, m: ObjMeta, now: int, kept: bool = False) -> Attr:
    """Copy an object (``kept``: a noncurrent version) as the caller: one atomic clone into place (slices
    shared, no data copied)."""
    fs = ctx.s3.fs.reading_versions() if kept else ctx.s3.fs
    try:
        return fs.clone(parent, name, [src.ino], mode=ctx.s3.service.object_mode,
                        xattrs={objmeta.XATTR: m.encode()}, mtime_ns=now, keep_locked=True)
    except CoreError as e:
        raise from_core(e, ctx.key) from None


def apply_request_acl(ctx: Ctx, a: Attr) -> None:
    """x-amz-acl / x-amz-grant-* on PutObject, CopyObject and CreateMultipartUpload."""
    if "x-amz-acl" not in ctx.headers and not any(h.startswith("x-amz-grant-") for h in ctx.headers):
        return
    from protocols.s3 import access_ops, grants

    me = ctx.s3.owner_name(a.uid)
    acl = access_ops.requested_acl(ctx, me, b"", ctx.s3.owner_name(ctx.s3.bucket(ctx.bucket).uid))
    if acl is not None:
        ctx.s3.fs.setacl(a.ino, grants.to_core(acl, a.perm, is_bucket=False, uid_of=ctx.s3.uid_of))


# -- tagging and ACLs --------------------------------------------------------------------
async def get_tagging(ctx: Ctx) -> Response:
    vid = ctx.q.get("versionId")
    headers: dict[str, str] = {}
    if vid is not None:  # one version's tags
        _, m, _, headers = await ctx.run(versioning.open_version, ctx, vid)
    else:
        a = await ctx.run(ctx.s3.lookup, ctx.bucket, ctx.key)
        m = await ctx.run(objmeta.load, ctx.s3.fs, a)
    tags = "".join(f"<Tag>{xmlio.el('Key', k)}{xmlio.el('Value', v)}</Tag>" for k, v in m.tags.items())
    return Response(xmlio.doc("Tagging", f"<TagSet>{tags}</TagSet>"), media_type="application/xml", headers=headers)


async def put_tagging(ctx: Ctx, delete: bool = False) -> Response:
    tags: dict[str, str] = {}
    if not delete:
        raw = bytearray()
        await read_body(ctx.request, ctx.auth, ctx.headers, raw.extend)
        root = xmlio.parse(bytes(raw))
        for t in root.iter("Tag"):
            tags[xmlio.text(t, "Key", "") or ""] = xmlio.text(t, "Value", "") or ""
        check_tags(tags)

    vid = ctx.q.get("versionId")

    def apply() -> dict[str, str]:
        if vid is not None:  # one version's tags (its bytes never change; its metadata may)
            a, m, fs, headers = versioning.open_version(ctx, vid)
        else:
            a = ctx.s3.lookup(ctx.bucket, ctx.key)
            m, fs, headers = objmeta.load(ctx.s3.fs, a), ctx.s3.fs, {}
        m.tags = tags
        fs.setxattr(a.ino, objmeta.XATTR, m.encode())
        return headers
    headers = await ctx.run(apply)
    return Response(status_code=204 if delete else 200, headers=headers)


def owner_xml(name: str, tag: str = "Owner") -> str:
    """An Owner (or Initiator) element naming a user (its canonical ID is its user name)."""
    return f"<{tag}>{xmlio.el('ID', name)}{xmlio.el('DisplayName', name)}</{tag}>"
