"""Object metadata, kept in one xattr (``tessera.s3``) as JSON.

Fields: ``etag``, ``size`` and ``mtime`` (the file's, when the record was
written), ``headers`` (Content-Type and the other standard headers),
``meta`` (x-amz-meta-*), ``checksum`` ({algorithm, value, type}), ``tags``,
``parts`` (part sizes of a multipart object).  A record whose size/mtime no
longer match the file (written through NFS or SMB since) is stale: its ETag is
recomputed from the bytes (MD5) and stored again, so every file is an object.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from core.errors import NoAttribute
from core.fs import Attr, FileSystem

XATTR = "tessera.s3"
MARKER = "tessera.s3.dir"  # set on directories created as 'key/' objects
STANDARD = ("content-type", "content-encoding", "content-disposition", "content-language", "cache-control",
            "expires")
DEFAULT_TYPE = "binary/octet-stream"


@dataclass
class ObjMeta:
    etag: str = ""
    size: int = -1
    mtime: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    checksum: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    parts: list[int] = field(default_factory=list)

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @staticmethod
    def decode(raw: bytes) -> ObjMeta:
        try:
            d: dict[str, Any] = json.loads(raw)
            return ObjMeta(**{k: v for k, v in d.items() if k in ObjMeta.__dataclass_fields__})
        except (ValueError, TypeError):
            return ObjMeta()

    def fresh(self, a: Attr) -> bool:
        return self.size == a.size and self.mtime == a.mtime_ns and bool(self.etag)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", DEFAULT_TYPE)


def md5_of(fs: FileSystem, ino: int, size: int) -> str:
    h = hashlib.md5()
    off = 0
    while off < size:
        b = fs.read(ino, off, min(8 << 20, size - off))
        if not b:
            break
        h.update(b)
        off += len(b)
    return h.hexdigest()


def load(fs: FileSystem, a: Attr, *, need_etag: bool = True) -> ObjMeta:
    """The object's metadata, with a valid ETag (recomputed if the file changed)."""
    try:
        m = ObjMeta.decode(fs.getxattr(a.ino, XATTR))
    except NoAttribute:
        m = ObjMeta()
    if m.fresh(a) or not need_etag:
        return m
    m.etag = md5_of(fs, a.ino, a.size)
    m.size, m.mtime, m.parts = a.size, a.mtime_ns, []
    m.checksum = {}  # stored checksums described other bytes
    try:
        fs.setxattr(a.ino, XATTR, m.encode())
    except Exception:
        pass  # best effort: the file may be gone or read-only
    return m
