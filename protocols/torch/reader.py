"""LazyReader: what a dataset's ``transform`` receives — a file-like view of one sample
that reads only what the transform asks for."""

from __future__ import annotations

import io
import os

from protocols.torch.backend import Backend


class LazyReader(io.RawIOBase):
    """Read-only, seekable view of one object; nothing is fetched until read."""

    def __init__(self, backend: Backend, path: str, size: int, uri: str | None = None) -> None:
        super().__init__()
        self.backend, self.path, self.size = backend, path, size
        self.name = uri or path
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, off: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self.size}[whence]
        if base + off < 0:
            raise ValueError("negative seek position")
        self._pos = base + off
        return self._pos

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(b), max(0, self.size - self._pos))
        if n == 0:
            return 0
        got = self.backend.readinto(self.path, self._pos, memoryview(b)[:n])
        self._pos += got
        return got

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self._pos
        n = max(0, min(n, self.size - self._pos))
        if n == 0:
            return b""
        data = self.backend.read(self.path, self._pos, n)
        self._pos += len(data)
        return data

    readall = read  # type: ignore[assignment]
