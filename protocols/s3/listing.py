"""ListObjects (V1, V2), in S3's order (ListObjectVersions, which merges in kept versions: version_list.py).

Keys sort by UTF-8 bytes over the whole key, across directory boundaries:
within a directory a subdirectory sorts as ``name/``, so ``a-c`` comes before
``a/b`` ('-' < '/').  With delimiter '/' a subdirectory beyond the prefix is
one CommonPrefix and is not descended into.  An empty directory is the object
``name/``; a non-empty one is an object too when it was created as one.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

from starlette.responses import Response

from core.errors import CoreError, NoAttribute, NotADirectory, NotFound, PermissionDenied
from core.fs import ROOT, FileSystem, FileType, acl
from protocols.s3 import objmeta, xmlio
from protocols.s3.context import Ctx
from protocols.s3.errors import S3Error
from protocols.s3.objects import EMPTY_MD5, owner_xml, quoted

MAX_KEYS = 1000


@dataclass
class Item:
    key: str
    ino: int = 0
    is_dir: bool = False
    prefix: bool = False  # a CommonPrefix


def walk(fs: FileSystem, ino: int, base: str, prefix: str, after: str, collapse: str | None) -> Iterator[Item]:
    """Keys (and collapsed prefixes) under directory ``ino`` in S3 order, > after, starting with prefix."""
    entries = []
    try:
        listed = fs.listdir(ino)
    except PermissionDenied:
        return  # a subtree the caller may not list is left out, as `find` leaves it
    for e in listed:
        key = base + e.name + ("/" if e.type == FileType.DIR else "")
        entries.append((key.encode("utf-8", "surrogateescape"), key, e))
    entries.sort(key=lambda t: t[0])
    for _, key, e in entries:
        if e.type == FileType.DIR:
            if not (key.startswith(prefix) or prefix.startswith(key)):
                continue  # subtree holds no key with the prefix
            if after >= key and not after.startswith(key):
                continue  # the whole subtree sorts before the marker
            if collapse and key.startswith(prefix) and collapse in key[len(prefix):]:
                cp = prefix + key[len(prefix):].split(collapse, 1)[0] + collapse
                if cp > after and (not after.startswith(cp)):
                    yield Item(cp, prefix=True)
                continue
            if key > after and key.startswith(prefix) and _dir_is_object(fs, e.ino):
                yield Item(key, e.ino, is_dir=True)
            yield from walk(fs, e.ino, key, prefix, after, collapse)
        elif e.type == FileType.REG and key.startswith(prefix) and key > after:
            yield Item(key, e.ino)


def _dir_is_object(fs: FileSystem, ino: int) -> bool:
    fs = fs.as_user(ROOT)  # S3's own marker on a directory the caller may list
    if not fs.readdir(ino, limit=1):
        return True
    try:
        fs.getxattr(ino, objmeta.MARKER)
        return True
    except NoAttribute:
        return False


def start_dir(fs: FileSystem, bucket_ino: int, prefix: str) -> tuple[int, str]:
    """Descend to the deepest directory the prefix fully names (fewer entries to sort)."""
    ino, base = bucket_ino, ""
    for part in prefix.split("/")[:-1]:
        if part in ("", ".", ".."):
            break
        try:
            a = fs.lookup(ino, part)
        except (NotFound, NotADirectory, ValueError):
            return 0, base
        if not a.is_dir:
            return 0, base
        ino, base = a.ino, base + part + "/"
    return ino, base


def page(fs: FileSystem, bucket_ino: int, prefix: str, after: str, delimiter: str | None,
         max_keys: int) -> tuple[list[Item], bool]:
    """One page of items and whether more follow."""
    ino, base = start_dir(fs, bucket_ino, prefix)
    if not ino:
        return [], False
    collapse = delimiter if delimiter == "/" else None
    out: list[Item] = []
    last_cp = None
    for it in walk(fs, ino, base, prefix, after, collapse):
        if delimiter and not it.prefix and delimiter in it.key[len(prefix):]:
            cp = prefix + it.key[len(prefix):].split(delimiter, 1)[0] + delimiter
            if cp == last_cp or (after.startswith(cp) and after != cp) or cp <= after:
                continue
            it = Item(cp, prefix=True)
        if it.prefix:
            if it.key == last_cp:
                continue
            last_cp = it.key
        if len(out) == max_keys:
            return out, True
        out.append(it)
    return out, False


def _max_keys(ctx: Ctx, name: str = "max-keys") -> int:
    try:
        n = int(ctx.q.get(name, str(MAX_KEYS)))
    except ValueError:
        raise S3Error("InvalidArgument", f"{name} must be an integer", 400) from None
    if n < 0:
        raise S3Error("InvalidArgument", f"{name} must be non-negative", 400)
    return min(n, MAX_KEYS)


def _enc(ctx: Ctx, s: str) -> str:
    return urllib.parse.quote(s, safe="/") if ctx.q.get("encoding-type") == "url" else s


def _contents(ctx: Ctx, items: list[Item], owner: bool) -> tuple[str, str]:
    fs = ctx.s3.admin  # a listing shows what the caller may list: S3's ETag and size of each entry, like stat
    body, prefixes = [], []
    for it in items:
        if it.prefix:
            prefixes.append(f"<CommonPrefixes>{xmlio.el('Prefix', _enc(ctx, it.key))}</CommonPrefixes>")
            continue
        try:
            a = fs.getattr(it.ino)
        except CoreError:
            continue  # removed since we listed it
        m = objmeta.load(fs, a) if a.is_file else objmeta.ObjMeta(EMPTY_MD5)
        size = a.size if a.is_file else 0
        body.append(f"<Contents>{xmlio.el('Key', _enc(ctx, it.key))}"
                    f"{xmlio.el('LastModified', xmlio.iso(a.mtime_ns))}{xmlio.el('ETag', quoted(m.etag))}"
                    + (f"<ChecksumAlgorithm>{m.checksum['algorithm']}</ChecksumAlgorithm>" if m.checksum else "")
                    + f"{xmlio.el('Size', size)}{owner_xml(ctx.s3.owner_name(a.uid)) if owner else ''}"
                    f"<StorageClass>STANDARD</StorageClass></Contents>")
    return "".join(body), "".join(prefixes)


def _token(key: str, is_prefix: bool) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": key, "p": is_prefix}).encode()).decode()


def _untoken(tok: str) -> str:
    try:
        d = json.loads(base64.urlsafe_b64decode(tok.encode()))
        return str(d["k"])
    except (ValueError, KeyError, TypeError):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect", 400) from None


def may_list(ctx: Ctx, ino: int) -> None:
    """Listing a bucket needs list + search on its directory (or a policy grant, or the admin)."""
    want = acl.LIST_DIRECTORY | acl.EXECUTE
    if not ctx.s3.cred.admin and ctx.s3.fs.access(ino, want) != want:
        raise S3Error("AccessDenied", "Access Denied", 403)


async def list_objects(ctx: Ctx, v2: bool) -> Response:
    b = await ctx.run(ctx.s3.bucket, ctx.bucket)
    await ctx.run(may_list, ctx, b.ino)
    prefix = ctx.q.get("prefix", "")
    delim = ctx.q.get("delimiter") or None
    max_keys = _max_keys(ctx)
    if v2:
        token = ctx.q.get("continuation-token")
        after = _untoken(token) if token else ctx.q.get("start-after", "")
    else:
        after = ctx.q.get("marker", "")
    items, truncated = await ctx.run(page, ctx.s3.fs, b.ino, prefix, after, delim, max_keys) if max_keys else (
        [], False)
    contents, prefixes = await ctx.run(_contents, ctx, items, (not v2) or ctx.q.get("fetch-owner") == "true")
    parts = [xmlio.el("Name", ctx.bucket), xmlio.el("Prefix", _enc(ctx, prefix))]
    if v2:
        if token:
            parts.append(xmlio.el("ContinuationToken", token))
        if "start-after" in ctx.q:
            parts.append(xmlio.el("StartAfter", _enc(ctx, ctx.q["start-after"])))
        parts.append(xmlio.el("KeyCount", len(items)))
    else:
        parts.append(xmlio.el("Marker", _enc(ctx, after)))
    parts.append(xmlio.el("MaxKeys", max_keys))
    if delim:
        parts.append(xmlio.el("Delimiter", _enc(ctx, delim)))
    if "encoding-type" in ctx.q:
        parts.append(xmlio.el("EncodingType", ctx.q["encoding-type"]))
    parts.append(xmlio.el("IsTruncated", "true" if truncated else "false"))
    if truncated and items:
        if v2:
            parts.append(xmlio.el("NextContinuationToken", _token(items[-1].key, items[-1].prefix)))
        elif delim:
            parts.append(xmlio.el("NextMarker", _enc(ctx, items[-1].key)))
    return Response(xmlio.doc("ListBucketResult", "".join(parts) + contents + prefixes),
                    media_type="application/xml")
