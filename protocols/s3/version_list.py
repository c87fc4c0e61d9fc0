"""ListObjectVersions: the live objects merged with the versions core.fs keeps, in S3's order.

Two sorted streams are merged by key (UTF-8 bytes over the whole key, as ListObjects sorts):

* the live objects, walked as ListObjects walks them (:func:`protocols.s3.listing.walk`); each is its key's
  current version (IsLatest), its id the file's version id (``null`` for one made while versioning was off
  or suspended);
* the kept rows of ``fs.list_versions`` (kinds ``version`` and ``marker`` only: trash rows are not S3
  versions), by key then newest first; a key's newest marker is IsLatest when the key has no live object.

A key's live object sorts before its kept rows, so each key lists newest first.  With a delimiter, keys
that have it after the prefix fold into one CommonPrefix (counted once toward MaxKeys).

Paging: ``key-marker`` alone resumes after that key (or CommonPrefix); with ``version-id-marker`` it
resumes inside the key, after that version (the key's versions are re-read with ``fs.versions``).
``NextKeyMarker``/``NextVersionIdMarker`` name the last entry of a truncated page.  With
``encoding-type=url``, Key, Prefix, Delimiter, KeyMarker and NextKeyMarker are %-encoded.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from starlette.responses import Response

from core.errors import CoreError
from core.fs import FileSystem, VersionInfo
from protocols.s3 import objmeta, versioning, xmlio
from protocols.s3.context import Ctx
from protocols.s3.errors import S3Error
from protocols.s3.listing import Item, _enc, _max_keys, may_list, start_dir, walk
from protocols.s3.objects import EMPTY_MD5, owner_xml, quoted

BATCH = 500


@dataclass
class Entry:
    """One line of the listing: a live object (``ino``), a kept row (``info``) or a CommonPrefix."""

    key: str
    prefix: bool = False
    ino: int = 0
    is_dir: bool = False
    info: VersionInfo | None = None
    latest: bool = False


def _b(key: str) -> bytes:
    return key.encode("utf-8", "surrogateescape")


def _live(fs: FileSystem, bucket_ino: int, prefix: str, after: str, delim: str | None) -> Iterator[Entry]:
    ino, base = start_dir(fs, bucket_ino, prefix)
    if not ino:
        return
    for it in walk(fs, ino, base, prefix, after, delim if delim == "/" else None):
        yield _entry(it)


def _entry(it: Item) -> Entry:
    return Entry(it.key, prefix=it.prefix, ino=it.ino, is_dir=it.is_dir, latest=not it.prefix)


def _kept(fs: FileSystem, bpath: str, prefix: str, after: str) -> Iterator[Entry]:
    """Kept rows under ``prefix``, keys strictly after ``after`` ('' = from the start)."""
    cursor = (bpath + after, 0) if after else None
    while True:
        rows = fs.list_versions(bpath + prefix, after=cursor, limit=BATCH, kinds=versioning.S3_KINDS)
        for r in rows:
            yield Entry(r.path[len(bpath):], info=r)
        if len(rows) < BATCH:
            return
        cursor = (rows[-1].path, rows[-1].row)


def _resume(fs: FileSystem, path: str, key: str, vid_marker: str) -> list[Entry]:
    """The versions of ``key`` older than ``vid_marker`` (a page ended inside this key)."""
    vs = [v for v in fs.versions(path) if v.kind != "trash"]
    at = next((i for i, v in enumerate(vs) if v.vid == vid_marker), None)
    if at is None:
        return []
    return [Entry(key, ino=v.ino, latest=True) if v.kind == "current" else Entry(key, info=v, latest=v.latest)
            for v in vs[at + 1:]]


def page(ctx: Ctx, bucket_ino: int, prefix: str, delim: str | None, key_marker: str, vid_marker: str | None,
         max_keys: int) -> tuple[list[Entry], bool]:
    """One page of entries and whether more follow (in a worker thread)."""
    fs = ctx.s3.fs
    bpath = versioning.bucket_path(ctx.s3, ctx.bucket)
    head: list[Entry] = []
    if vid_marker is not None and key_marker.startswith(prefix):
        head = _resume(fs, bpath + key_marker, key_marker, vid_marker)
    streams = heapq.merge(((_b(e.key), 0, e) for e in _live(fs, bucket_ino, prefix, key_marker, delim)),
                          ((_b(e.key), 1, e) for e in _kept(fs, bpath, prefix, key_marker)),
                          key=lambda t: (t[0], t[1]))
    out: list[Entry] = []
    last_key, last_cp = key_marker if head else None, None
    for e in [*head, *(t[2] for t in streams)]:
        rest = e.key[len(prefix):]
        if delim and (e.prefix or delim in rest):
            cp = e.key if e.prefix else prefix + rest.split(delim, 1)[0] + delim
            if cp == last_cp or (key_marker and _b(cp) <= _b(key_marker)):
                continue
            e, last_cp = Entry(cp, prefix=True), cp
        elif e.info is not None and e.key != last_key:  # the first row of a key with no live object
            e.latest = e.info.kind == "marker"
        if len(out) == max_keys:
            return out, True
        out.append(e)
        last_key = e.key
    return out, False


def _line(ctx: Ctx, e: Entry) -> str:
    """One <Version>, <DeleteMarker> or <CommonPrefixes> (in a worker thread)."""
    key = xmlio.el("Key", _enc(ctx, e.key))
    latest = xmlio.el("IsLatest", "true" if e.latest else "false")
    admin = ctx.s3.admin.reading_versions()  # a listing shows what the caller may list, like stat
    if e.prefix:
        return f"<CommonPrefixes>{xmlio.el('Prefix', _enc(ctx, e.key))}</CommonPrefixes>"
    info = e.info
    if info is not None and info.kind == "marker":
        return (f"<DeleteMarker>{key}{xmlio.el('VersionId', info.vid)}{latest}"
                f"{xmlio.el('LastModified', xmlio.iso(info.mtime_ns))}{owner_xml(ctx.s3.owner_name(info.uid))}"
                "</DeleteMarker>")
    ino = info.ino if info is not None else e.ino
    try:
        a = admin.getattr(ino)
        vid = info.vid if info is not None else (admin.version_id(ino) if a.is_file else versioning.NULL)
    except CoreError:
        return ""  # removed since it was listed
    m = objmeta.load(admin, a) if a.is_file else objmeta.ObjMeta(EMPTY_MD5)
    return (f"<Version>{key}{xmlio.el('VersionId', vid)}{latest}"
            f"{xmlio.el('LastModified', xmlio.iso(a.mtime_ns))}{xmlio.el('ETag', quoted(m.etag))}"
            f"{xmlio.el('Size', a.size if a.is_file else 0)}{owner_xml(ctx.s3.owner_name(a.uid))}"
            "<StorageClass>STANDARD</StorageClass></Version>")


def _body(ctx: Ctx, entries: list[Entry]) -> str:
    lines = [_line(ctx, e) for e in entries]
    return "".join(x for x in lines if not x.startswith("<CommonPrefixes>")) + "".join(
        x for x in lines if x.startswith("<CommonPrefixes>"))


async def list_versions(ctx: Ctx) -> Response:
    b = await ctx.run(ctx.s3.bucket, ctx.bucket)
    await ctx.run(may_list, ctx, b.ino)
    prefix = ctx.q.get("prefix", "")
    delim = ctx.q.get("delimiter") or None
    max_keys = _max_keys(ctx)
    key_marker = ctx.q.get("key-marker", "")
    vid_marker = ctx.q.get("version-id-marker") or None
    if vid_marker is not None:
        if not key_marker:
            raise S3Error("InvalidArgument", "A version-id marker cannot be specified without a key marker.", 400,
                          extra={"ArgumentName": "version-id-marker", "ArgumentValue": vid_marker})
        versioning.check_vid(vid_marker)
    entries, truncated = (await ctx.run(page, ctx, b.ino, prefix, delim, key_marker, vid_marker, max_keys)
                          if max_keys else ([], False))
    body = await ctx.run(_body, ctx, entries)
    parts = [xmlio.el("Name", ctx.bucket), xmlio.el("Prefix", _enc(ctx, prefix)),
             xmlio.el("KeyMarker", _enc(ctx, key_marker)), xmlio.el("VersionIdMarker", vid_marker or ""),
             xmlio.el("MaxKeys", max_keys)]
    if delim:
        parts.append(xmlio.el("Delimiter", _enc(ctx, delim)))
    if "encoding-type" in ctx.q:  # without it a client cannot know the keys above are %-encoded
        parts.append(xmlio.el("EncodingType", ctx.q["encoding-type"]))
    parts.append(xmlio.el("IsTruncated", "true" if truncated else "false"))
    if truncated and entries:
        last = entries[-1]
        parts.append(xmlio.el("NextKeyMarker", _enc(ctx, last.key)))
        if not last.prefix:
            vid = last.info.vid if last.info is not None else await ctx.run(_live_vid, ctx, last)
            parts.append(xmlio.el("NextVersionIdMarker", vid))
    return Response(xmlio.doc("ListVersionsResult", "".join(parts) + body), media_type="application/xml")


def _live_vid(ctx: Ctx, e: Entry) -> str:
    try:
        return ctx.s3.admin.version_id(e.ino) if not e.is_dir else versioning.NULL
    except CoreError:
        return versioning.NULL
