"""Checkpoints with parallel chunked I/O, for ``torch.save`` / ``torch.load``.

    ckpt = TesseraCheckpoint("tessera:///ckpt", data="/srv/tessera")   # or s3://bucket/ckpt, endpoint=...
    with ckpt.writer("step-100.pt") as f:
        torch.save(model.state_dict(), f)
    with ckpt.reader("step-100.pt") as f:
        state = torch.load(f)
    ckpt.versions("latest.pt")                   # tessera:// only: what the tree kept, newest first
    state = ckpt.load("latest.pt", version=1)    # the checkpoint before the last save over it

The writer streams: torch.save's writes go through a bounded queue to a
thread that stores them (stripes encoded and written in parallel by core.fs;
multipart parts sent in parallel to S3); the object appears atomically on
close.  The reader splits large reads into chunks fetched in parallel.

Versions: where the tree keeps versions or the trash is on, saving over a checkpoint keeps the old one
(metadata only), and ``reader``/``load`` take ``version=`` to read it: an int (0 = current, 1 = the one
before, ...), a version id, or a ``VersionInfo`` from ``versions(name)`` (:mod:`protocols.torch.versions`).
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from protocols.torch.backend import Backend, from_uri
from protocols.torch.reader import LazyReader
from protocols.torch.versions import Version, VersionInfo, pin, versions

CHUNK = 8 * 1024 * 1024


class CheckpointWriter(io.RawIOBase):
    def __init__(self, backend: Backend, path: str, depth: int = 8) -> None:
        super().__init__()
        self.backend, self.path = backend, path
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._buf = bytearray()
        self._pos = 0
        self._err: BaseException | None = None
        self._eof = False
        self._thread = threading.Thread(target=self._run, name="tessera-ckpt-writer", daemon=True)
        self._thread.start()

    def _chunks(self) -> Iterator[bytes]:
        while (c := self._q.get()) is not None:
            yield c
        self._eof = True

    def _run(self) -> None:
        try:
            self.backend.write(self.path, self._aborting(self._chunks()))
        except BaseException as e:
            self._err = self._err or e
            while not self._eof and self._q.get() is not None:  # drain so the producer never blocks
                pass

    def _aborting(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        yield from chunks
        if self._err is not None:  # aborted: fail the store before it links the object
            raise RuntimeError("checkpoint write aborted")

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def write(self, b: Any) -> int:
        if self._err is not None:
            raise OSError(f"writing {self.backend.uri(self.path)} failed: {self._err}") from self._err
        mv = memoryview(b).cast("B")
        self._buf += mv
        self._pos += len(mv)
        if len(self._buf) >= CHUNK:
            self._q.put(bytes(self._buf))
            self._buf = bytearray()
        return len(mv)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._buf:
                self._q.put(bytes(self._buf))
                self._buf = bytearray()
            self._q.put(None)
            self._thread.join()
            if self._err is not None:
                raise OSError(f"writing {self.backend.uri(self.path)} failed: {self._err}") from self._err
        finally:
            super().close()

    def abort(self) -> None:
        """Give up: nothing appears under the name (the staged bytes become garbage)."""
        self._err = self._err or RuntimeError("aborted")
        self._q.put(None)
        self._thread.join()
        super().close()

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:  # torch.save failed half-way: do not publish a torn checkpoint
            self.abort()
        else:
            self.close()


class CheckpointReader(LazyReader):
    """A seekable view of a checkpoint whose large reads are split into chunks read in parallel."""

    def __init__(self, backend: Backend, path: str, parallel: int = 8) -> None:
        super().__init__(backend, path, backend.size(path), backend.uri(path))
        self._pool = ThreadPoolExecutor(parallel, thread_name_prefix="tessera-ckpt-read")

    def readinto(self, b: Any) -> int:
        mv = memoryview(b).cast("B")
        n = max(0, min(len(mv), self.size - self._pos))
        if n <= CHUNK:
            return super().readinto(mv)
        start = self._pos  # a large record: its chunks in parallel, straight into the caller's buffer
        jobs = [(o, min(CHUNK, n - o)) for o in range(0, n, CHUNK)]
        got = sum(self._pool.map(lambda j: self.backend.readinto(self.path, start + j[0], mv[j[0]: j[0] + j[1]]),
                                 jobs))
        self._pos += got
        return got

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self._pos
        buf = bytearray(max(0, min(n, self.size - self._pos)))
        got = self.readinto(buf)
        return bytes(buf[:got])

    def close(self) -> None:
        if not self.closed:
            self._pool.shutdown(wait=False)
        super().close()


class TesseraCheckpoint:
    """A place for checkpoints: a store directory or an S3 prefix."""

    def __init__(self, uri: str, **kw: Any) -> None:
        self.backend, base = from_uri(uri, **kw)
        self.base = base.rstrip("/")

    def _path(self, name: str) -> str:
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"checkpoint name {name!r} must be relative, without '..'")
        return f"{self.base}/{name}" if self.base else name

    def writer(self, name: str) -> CheckpointWriter:
        return CheckpointWriter(self.backend, self._path(name))

    def reader(self, name: str, version: Version | None = None) -> CheckpointReader:
        """Read the checkpoint, or with ``version`` one of its earlier versions (see :meth:`versions`)."""
        path = self._path(name)
        if version is None:
            return CheckpointReader(self.backend, path)
        return CheckpointReader(pin(self.backend, path, version), path)

    def versions(self, name: str) -> list[VersionInfo]:
        """The versions of a checkpoint that have content, newest first: the live file (``kind``
        'current'), then what overwrites and deletes kept ('version', or 'trash' where only the trash
        keeps it), each with its ``vid``, ``size``, ``mtime_ns``, ``replaced_ns`` and ``by_name``."""
        return versions(self.backend, self._path(name))

    def save(self, obj: Any, name: str) -> None:
        import torch
        with self.writer(name) as f:
            torch.save(obj, f)  # type: ignore[arg-type]  # a binary stream, as torch.save asks

    def load(self, name: str, version: Version | None = None, **kw: Any) -> Any:
        """torch.load the checkpoint (``version``: an earlier one, see :meth:`versions`)."""
        import torch
        with self.reader(name, version) as f:
            return torch.load(f, **kw)  # type: ignore[arg-type]
