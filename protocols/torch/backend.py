"""Two ways to the same data, one small API: ``tessera:///path`` (core.fs in-process, as on a
storage node) and ``s3://bucket/prefix`` (any S3 endpoint, Tessera's first).

Backends are plain configuration when pickled; each process connects lazily
on first use (the store is opened, or the boto3 client made, once per pid), so
DataLoader workers under fork, spawn and forkserver each get their own.
"""

from __future__ import annotations

import builtins
import errno
import fnmatch
import functools
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar
from urllib.parse import urlsplit

from core.fs import FileType
from protocols.torch.errors import os_error

MiB = 1024 * 1024
PART = 8 * MiB


class Backend(Protocol):
    def list(self, prefix: str, pattern: str | None = None) -> list[tuple[str, int]]: ...
    def size(self, path: str) -> int: ...
    def read(self, path: str, off: int, n: int) -> bytes: ...
    def readinto(self, path: str, off: int, buf: memoryview) -> int: ...
    def write(self, path: str, chunks: Iterable[bytes]) -> None: ...
    def uri(self, path: str) -> str: ...


def _match(path: str, base: str, pattern: str | None) -> bool:
    if not pattern:
        return True
    rel = path[len(base):].lstrip("/")
    return fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(os.path.basename(path), pattern)


P = ParamSpec("P")
R = TypeVar("R")


def _os_errors(fn: Callable[Concatenate[CoreBackend, Any, P], R]) -> Callable[Concatenate[CoreBackend, Any, P], R]:
    """Core errors leave the adapter as the OSErrors Python code expects (protocols/torch/errors.py)."""
    @functools.wraps(fn)
    def wrapper(self: CoreBackend, where: Any, /, *args: P.args, **kw: P.kwargs) -> R:
        from core.errors import CoreError
        try:
            return fn(self, where, *args, **kw)
        except CoreError as e:
            shown = where if isinstance(where, str) else f"{len(where)} paths"
            raise os_error(e, f"tessera://{shown}") from None
    return wrapper


@dataclass
class CoreBackend:
    """core.fs in this process: paths are absolute store paths.

    Every call runs as ``user`` (a Tessera user name: that user's uid, groups and
    permissions, exactly what S3, NFS and SMB decide for them), or as the admin when
    ``user`` is None.
    """

    data: str
    threads: int = 8  # stripe I/O threads: more outstanding reads for cold data
    user: str | None = None
    _pid: int = field(default=0, repr=False, compare=False)
    _store: Any = field(default=None, repr=False, compare=False)
    _lock: Any = field(default=None, repr=False, compare=False)
    _fs: Any = field(default=None, repr=False, compare=False)
    _inos: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        # the inodes the index found travel with it, so workers read without resolving paths
        return {"data": self.data, "threads": self.threads, "user": self.user, "inos": self._inos}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.data, self.threads, self.user = state["data"], state.get("threads", 8), state.get("user")
        self._pid, self._store, self._lock = 0, None, None
        self._inos = dict(state.get("inos", {}))

    @property
    def fs(self) -> Any:
        if self._store is None or self._pid != os.getpid():
            from core.fs import open_volume
            if self._lock is None or self._pid != os.getpid():
                self._lock = threading.Lock()
            with self._lock:
                if self._store is None or self._pid != os.getpid():
                    vol = open_volume(self.data, threads=self.threads)
                    cred = vol.fs.cred
                    if self.user is not None:
                        u = vol.identity.user(self.user)
                        if u is None:
                            vol.close()
                            raise PermissionError(errno.EACCES, f"tessera: no user {self.user!r} in {self.data}")
                        cred = u.cred
                    self._store, self._fs = vol, vol.fs.as_user(cred)
                    self._pid = os.getpid()
        return self._fs

    def uri(self, path: str) -> str:
        return f"tessera://{path}"

    def _ino(self, path: str) -> Any:
        from core.errors import CoreError
        try:
            return self.fs.resolve(path)
        except CoreError as e:
            raise os_error(e, f"tessera://{path}") from None

    def _cached(self, path: str) -> tuple[int, int]:
        """(inode, generation) of a path, resolved once per process."""
        hit = self._inos.get(path)
        if hit is None:
            a = self._ino(path)
            hit = self._inos[path] = (a.ino, a.gen)
        return hit

    def _with_ino(self, path: str, fn: Any) -> Any:
        """Run fn(ino) on the cached inode; if the file was replaced since, resolve again once."""
        from core.errors import NotFound, Stale
        ino, _ = self._cached(path)
        try:
            return fn(ino)  # inode numbers are never reused: a replaced file's old inode is gone (Stale)
        except (Stale, NotFound):
            self._inos.pop(path, None)
            ino, _ = self._cached(path)
            return fn(ino)

    @_os_errors
    def list(self, prefix: str, pattern: str | None = None) -> list[tuple[str, int]]:
        """Files under a directory, or whose path starts with ``prefix``, sorted."""
        from core.errors import NotADirectory, NotFound
        fs = self.fs
        out: list[tuple[str, int]] = []
        try:
            a = fs.resolve(prefix)
            if a.is_file:
                return [self._found(prefix, a)]
            base, roots = prefix.rstrip("/") or "/", [(prefix.rstrip("/"), a.ino)]
        except (NotFound, NotADirectory):
            parent, _, stem = prefix.rstrip("/").rpartition("/")
            try:
                p = fs.resolve(parent or "/")
            except (NotFound, NotADirectory):
                return []
            base = parent or "/"
            roots = []
            for e in fs.listdir(p.ino):
                if e.name.startswith(stem):
                    path = f"{parent}/{e.name}"
                    if e.type == FileType.DIR:
                        roots.append((path, e.ino))
                    elif e.type == FileType.REG and _match(path, base, pattern):
                        out.append(self._found(path, fs.getattr(e.ino)))
        stack = list(roots)
        while stack:
            d, ino = stack.pop()
            for e in fs.listdir(ino):
                path = f"{d}/{e.name}"
                if e.type == FileType.DIR:
                    stack.append((path, e.ino))
                elif e.type == FileType.REG and _match(path, base, pattern):
                    out.append(self._found(path, fs.getattr(e.ino)))
        return sorted(out)

    def _found(self, path: str, a: Any) -> tuple[str, int]:
        self._inos[path] = (a.ino, a.gen)
        return path, int(a.size)

    @_os_errors
    def size(self, path: str) -> int:
        a = self._ino(path)
        self._inos[path] = (a.ino, a.gen)
        return int(a.size)

    @_os_errors
    def read(self, path: str, off: int, n: int) -> bytes:
        data: bytes = self._with_ino(path, lambda ino: self.fs.read(ino, off, n))
        return data

    @_os_errors
    def read_many(self, paths: Sequence[str]) -> builtins.list[bytes]:
        """Whole files, one metadata snapshot for the batch (falls back per file if one moved)."""
        from core.errors import CoreError
        try:
            data: builtins.list[bytes] = self.fs.read_many([self._cached(p)[0] for p in paths])
            return data
        except CoreError:
            return [self._with_ino(p, lambda ino: self.fs.read(ino, 0, self.fs.getattr(ino).size)) for p in paths]

    @_os_errors
    def readinto(self, path: str, off: int, buf: memoryview) -> int:
        return int(self._with_ino(path, lambda ino: self.fs.read_committed(ino, off, buf)))

    @_os_errors
    def write(self, path: str, chunks: Iterable[bytes]) -> None:
        fs = self.fs
        parent, _, name = path.rpartition("/")
        d = fs.makedirs(parent or "/")
        stg = fs.stager()
        for c in chunks:
            stg.write(c)
        fs.write_file(d.ino, name, stg)


@dataclass
class S3Backend:
    """Any S3 server: paths are keys in ``bucket``."""

    bucket: str
    endpoint: str | None = None
    key: str | None = None
    secret: str | None = None
    region: str = "us-east-1"
    verify: bool | str | None = None
    parallel: int = 8
    _pid: int = field(default=0, repr=False, compare=False)
    _client: Any = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("bucket", "endpoint", "key", "secret", "region", "verify",
                                                "parallel")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)
        self._pid, self._client = 0, None

    @property
    def client(self) -> Any:
        if self._client is None or self._pid != os.getpid():
            import boto3
            from botocore.config import Config
            self._client = boto3.client(
                "s3", endpoint_url=self.endpoint, aws_access_key_id=self.key or os.environ.get("AWS_ACCESS_KEY_ID"),
                aws_secret_access_key=self.secret or os.environ.get("AWS_SECRET_ACCESS_KEY"),
                region_name=self.region, verify=self.verify,
                config=Config(max_pool_connections=max(10, self.parallel * 2), retries={"max_attempts": 3}))
            self._pid = os.getpid()
        return self._client

    def uri(self, path: str) -> str:
        return f"s3://{self.bucket}/{path}"

    def list(self, prefix: str, pattern: str | None = None) -> list[tuple[str, int]]:
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                if not o["Key"].endswith("/") and _match(o["Key"], prefix.rsplit("/", 1)[0] if "/" in prefix
                                                         else "", pattern):
                    out.append((o["Key"], int(o["Size"])))
        return sorted(out)

    def _missing(self, path: str, e: Exception) -> Exception:
        code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound", "NoSuchBucket"):
            return FileNotFoundError(f"s3://{self.bucket}/{path}: no such object")
        return e

    def size(self, path: str) -> int:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=path)["ContentLength"])
        except Exception as e:
            raise self._missing(path, e) from None

    def read(self, path: str, off: int, n: int) -> bytes:
        if n <= 0:
            return b""
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=path, Range=f"bytes={off}-{off + n - 1}")
            return bytes(r["Body"].read())
        except Exception as e:
            if getattr(e, "response", {}).get("Error", {}).get("Code") == "InvalidRange":
                return b""
            raise self._missing(path, e) from None

    def readinto(self, path: str, off: int, buf: memoryview) -> int:
        data = self.read(path, off, len(buf))
        buf[: len(data)] = data
        return len(data)

    def write(self, path: str, chunks: Iterable[bytes]) -> None:
        """Single PUT when small, else a multipart upload with parts sent in parallel."""
        from concurrent.futures import ThreadPoolExecutor
        it = _rechunk(chunks, PART)
        first = next(it, b"")
        second = next(it, None)
        if second is None:
            self.client.put_object(Bucket=self.bucket, Key=path, Body=first)
            return
        up = self.client.create_multipart_upload(Bucket=self.bucket, Key=path)["UploadId"]
        try:
            with ThreadPoolExecutor(self.parallel) as ex:
                futs = []
                sem = threading.Semaphore(self.parallel * 2)  # bound memory: parts in flight

                def send(n: int, body: bytes) -> dict[str, Any]:
                    try:
                        r = self.client.upload_part(Bucket=self.bucket, Key=path, UploadId=up, PartNumber=n,
                                                    Body=body)
                        return {"PartNumber": n, "ETag": r["ETag"]}
                    finally:
                        sem.release()
                for n, body in enumerate(_chain(first, second, it), 1):
                    sem.acquire()
                    futs.append(ex.submit(send, n, body))
                parts = [f.result() for f in futs]
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=path, UploadId=up,
                                                  MultipartUpload={"Parts": parts})
        except BaseException:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=path, UploadId=up)
            raise


def _chain(a: bytes, b: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield a
    yield b
    yield from rest


def _rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    buf = bytearray()
    for c in chunks:
        buf += c
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


def from_uri(uri: str, *, data: str | None = None, endpoint: str | None = None, key: str | None = None,
             secret: str | None = None, region: str = "us-east-1", verify: bool | str | None = None,
             user: str | None = None) -> tuple[Backend, str]:
    """(backend, path) for ``tessera:///path`` or ``s3://bucket/prefix``.

    ``tessera://`` runs as ``user`` (or $TESSERA_USER); without either, as the admin.
    """
    u = urlsplit(uri)
    if u.scheme == "tessera":
        store = data or os.environ.get("TESSERA_DATA")
        if not store:
            raise ValueError(f"{uri}: say where the store is (data=DIR or $TESSERA_DATA)")
        if u.netloc:
            raise ValueError(f"{uri}: use tessera:///absolute/path (three slashes)")
        return CoreBackend(os.path.abspath(store), user=user or os.environ.get("TESSERA_USER") or None), (u.path or "/")
    if u.scheme == "s3":
        if not u.netloc:
            raise ValueError(f"{uri}: no bucket")
        ep = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        return S3Backend(u.netloc, ep, key, secret, region, verify), u.path.lstrip("/")
    raise ValueError(f"{uri}: expected tessera:///path or s3://bucket/prefix")
