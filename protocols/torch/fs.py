"""fsspec filesystem ``tessera://`` over core.fs (pandas, pyarrow, Hugging Face datasets,
Lightning and torch.distributed.checkpoint all speak fsspec).

URLs are ``tessera:///absolute/path``; the store is ``data=DIR`` (storage
option) or ``$TESSERA_DATA``.  Writes stream into stripes and appear
atomically on close; copies re-point slices instead of copying bytes.

Earlier versions (kept by versioning or the trash) read as s3fs reads S3's: a
``tessera:///path?versionId=ID`` URL, or ``version_id=ID`` to ``open``,
``cat_file`` and ``info`` (read only); ``object_version_info(path)`` lists them,
newest first.  ``ID`` is a version id, or ``~N`` for the N-th newest (``~1``: the
content before the last write; trees without versioning have only ``null`` ids).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote, unquote

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from protocols.torch.backend import CoreBackend
from protocols.torch.versions import Version, pick, versions

VERSION_Q = "?versionId="


def _split_version(path: str) -> tuple[str, str | None]:
    """``/a/b?versionId=ID`` -> (``/a/b``, ``ID``); no version: (path, None)."""
    p, sep, vid = path.rpartition(VERSION_Q)
    return (p, unquote(vid)) if sep else (path, None)


def _with_version(path: str, version_id: str | None) -> str:
    return path if version_id is None else f"{_split_version(path)[0]}{VERSION_Q}{quote(version_id, safe='~')}"


def _version(vid: str) -> Version:
    return int(vid[1:]) if vid.startswith("~") and vid[1:].isdigit() else vid


class TesseraFileSystem(AbstractFileSystem):  # type: ignore[misc]
    protocol = "tessera"
    root_marker = "/"

    def __init__(self, data: str | None = None, user: str | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        store = data or os.environ.get("TESSERA_DATA")
        if not store:
            raise ValueError("tessera:// needs the store: pass data=DIR or set $TESSERA_DATA")
        self.backend = CoreBackend(os.path.abspath(store), user=user or os.environ.get("TESSERA_USER") or None)

    @classmethod
    def _strip_protocol(cls, path: str | list[str]) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        p, vid = _split_version(str(path))
        if p.startswith("tessera://"):
            p = p[len("tessera://"):]
        p = "/" + p.lstrip("/")
        return _with_version(p.rstrip("/") or "/", vid)

    @property
    def _fs(self) -> Any:
        return self.backend.fs

    def _attr(self, path: str) -> Any:
        from core.errors import CoreError
        p, vid = _split_version(self._strip_protocol(path))
        try:
            if vid is None:
                return self._fs.resolve(p)
            return self._fs.reading_versions().getattr(pick(self.backend, p, _version(vid)).ino)
        except CoreError:
            raise FileNotFoundError(path) from None

    def _reader(self, path: str) -> Any:
        """The core.fs view that reads ``path``: one that may read kept versions when it names one."""
        return self._fs if _split_version(path)[1] is None else self._fs.reading_versions()

    def object_version_info(self, path: str, **kw: Any) -> list[dict[str, Any]]:
        """The versions of a file that have content, newest first (as s3fs's, with Tessera's fields)."""
        p = _split_version(self._strip_protocol(path))[0]
        return [{"name": _with_version(p, v.vid), "version_id": v.vid, "kind": v.kind, "is_latest": v.latest,
                 "size": v.size, "mtime": v.mtime_ns / 1e9, "replaced": v.replaced_ns / 1e9 or None,
                 "by": v.by_name, "reason": v.reason, "expires": (v.expires_ns or 0) / 1e9 or None}
                for v in versions(self.backend, p)]

    @staticmethod
    def _entry(path: str, a: Any) -> dict[str, Any]:
        return {"name": path, "size": a.size if a.is_file else 0,
                "type": "directory" if a.is_dir else "file", "mtime": a.mtime_ns / 1e9, "ino": a.ino}

    def info(self, path: str, version_id: str | None = None, **kw: Any) -> dict[str, Any]:
        p = _with_version(self._strip_protocol(path), version_id)
        a = self._attr(p)
        out = self._entry(p, a)
        if a.is_file:
            vid = _split_version(p)[1]
            out["version_id"] = self._fs.version_id(a.ino) if vid is None else vid
        return out

    def ls(self, path: str, detail: bool = True, **kw: Any) -> Any:
        p = self._strip_protocol(path)
        a = self._attr(p)
        if not a.is_dir:
            out = [self._entry(p, a)]
        else:
            out = []
            for e in self._fs.listdir(a.ino):
                child = (p.rstrip("/") + "/" + e.name)
                out.append(self._entry(child, self._fs.getattr(e.ino)))
        return out if detail else [o["name"] for o in out]

    def mkdir(self, path: str, create_parents: bool = True, **kw: Any) -> None:
        from core.errors import Exists
        p = self._strip_protocol(path)
        if create_parents:
            self._fs.makedirs(p)
            return
        parent, name = self._fs.resolve_parent(p)
        try:
            self._fs.mkdir(parent, name)
        except Exists:
            raise FileExistsError(path) from None

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        if not exist_ok and self.exists(path):
            raise FileExistsError(path)
        self._fs.makedirs(self._strip_protocol(path))

    def rmdir(self, path: str) -> None:
        parent, name = self._fs.resolve_parent(self._strip_protocol(path))
        self._fs.rmdir(parent, name)

    def _rm(self, path: str) -> None:
        p = self._strip_protocol(path)
        a = self._attr(p)
        parent, name = self._fs.resolve_parent(p)
        if a.is_dir:
            self._fs.rmdir(parent, name)
        else:
            self._fs.unlink(parent, name)

    def rm_file(self, path: str) -> None:
        self._rm(path)

    def mv(self, path1: str, path2: str, recursive: bool = False, maxdepth: int | None = None, **kw: Any) -> None:
        sp, sn = self._fs.resolve_parent(self._strip_protocol(path1))
        dp, dn = self._fs.resolve_parent(self._strip_protocol(path2))
        self._fs.rename(sp, sn, dp, dn)

    rename = mv

    def cp_file(self, path1: str, path2: str, **kw: Any) -> None:
        src = self._attr(path1)
        parent, name = self._fs.resolve_parent(self._strip_protocol(path2))
        self._fs.clone(parent, name, [src.ino], mode=src.perm)  # no data copied, atomic

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, version_id: str | None = None,
                 **kw: Any) -> bytes:
        path = _with_version(self._strip_protocol(path), version_id)
        a = self._attr(path)
        s = 0 if start is None else (start if start >= 0 else max(0, a.size + start))
        e = a.size if end is None else (end if end >= 0 else max(0, a.size + end))
        return bytes(self._reader(path).read(a.ino, s, max(0, min(e, a.size) - s)))

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None, autocommit: bool = True,
              cache_options: dict[str, Any] | None = None, version_id: str | None = None, **kw: Any) -> Any:
        path = _with_version(self._strip_protocol(path), version_id)
        if "r" not in mode and _split_version(path)[1] is not None:
            raise ValueError(f"{path}: a version is read only")
        return TesseraFile(self, path, mode, block_size or 8 * 1024 * 1024,
                           autocommit, cache_options=cache_options, **kw)


class TesseraFile(AbstractBufferedFile):  # type: ignore[misc]
    def __init__(self, fs: TesseraFileSystem, path: str, mode: str, block_size: int, autocommit: bool,
                 **kw: Any) -> None:
        self._stager: Any = None
        super().__init__(fs, path, mode, block_size, autocommit, **kw)

    def _fetch_range(self, start: int, end: int) -> bytes:
        a = self.fs._attr(self.path)
        return bytes(self.fs._reader(self.path).read(a.ino, start, max(0, end - start)))

    def _initiate_upload(self) -> None:
        self._stager = self.fs._fs.stager()

    def _upload_chunk(self, final: bool = False) -> bool:
        if self._stager is None:
            self._initiate_upload()
        self._stager.write(self.buffer.getvalue())
        if final:
            fs = self.fs._fs
            d = fs.makedirs(os.path.dirname(self.path) or "/")
            fs.write_file(d.ino, os.path.basename(self.path), self._stager)
        return True

    def discard(self) -> None:
        if self._stager is not None:
            self._stager.abort()
