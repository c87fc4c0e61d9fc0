"""Targets: where shard files live.

A target is one directory on one disk (:class:`DirTarget`) holding
``target.json`` (its id and the store's uuid) and ``shards/<seg:016x>.<idx>``.
:class:`MemTarget` keeps shards in memory for fast tests.  Both expose the same
small surface: open/remove/list shard files and capacity.  Any OSError from a
target is the caller's signal that the cell is unavailable.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

Buf = bytes | bytearray | memoryview


class ShardFile(Protocol):
    def pwritev(self, bufs: Sequence[Buf], offset: int) -> int: ...
    def preadv(self, bufs: Sequence[bytearray | memoryview], offset: int) -> int: ...
    def sync(self) -> None: ...
    def size(self) -> int: ...


class Target(Protocol):
    id: int
    path: str

    def open_shard(self, segment: int, index: int, create: bool = False) -> ShardFile: ...
    def remove_shard(self, segment: int, index: int) -> None: ...
    def list_shards(self) -> list[tuple[int, int]]: ...
    def capacity(self) -> tuple[int, int]: ...
    def usage(self) -> int: ...
    def available(self) -> bool: ...
    def close(self) -> None: ...


def shard_name(segment: int, index: int) -> str:
    return f"{segment:016x}.{index}"


def parse_shard_name(name: str) -> tuple[int, int] | None:
    try:
        seg, idx = name.split(".")
        return int(seg, 16), int(idx)
    except ValueError:
        return None


class _FdShard:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def pwritev(self, bufs: Sequence[Buf], offset: int) -> int:
        total = sum(len(b) for b in bufs)
        n = os.pwritev(self.fd, bufs, offset)
        if n != total:  # short write: finish it the slow way
            flat = b"".join(bytes(b) for b in bufs)
            while n < total:
                n += os.pwrite(self.fd, flat[n:], offset + n)
        return n

    def preadv(self, bufs: Sequence[bytearray | memoryview], offset: int) -> int:
        return os.preadv(self.fd, bufs, offset)

    def sync(self) -> None:
        os.fdatasync(self.fd)

    def size(self) -> int:
        return os.fstat(self.fd).st_size


class DirTarget:
    """A directory target with a bounded cache of open shard descriptors."""

    MAX_OPEN = 256

    def __init__(self, id: int, path: str) -> None:
        self.id = id
        self.path = path
        self._shards = os.path.join(path, "shards")
        self._fds: OrderedDict[tuple[int, int], _FdShard] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def format(path: str, id: int, store: uuid.UUID) -> None:
        """Prepare an empty directory as target ``id`` of store ``store``."""
        os.makedirs(os.path.join(path, "shards"), exist_ok=True)
        info = os.path.join(path, "target.json")
        tmp = info + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"id": id, "store": str(store), "format": 1}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, info)
        _fsync_dir(path)

    def identity(self) -> dict[str, object] | None:
        try:
            with open(os.path.join(self.path, "target.json")) as f:
                return dict(json.load(f))
        except (OSError, ValueError):
            return None

    def available(self) -> bool:
        return os.path.isdir(self._shards)

    def open_shard(self, segment: int, index: int, create: bool = False) -> ShardFile:
        key = (segment, index)
        with self._lock:
            sh = self._fds.get(key)
            if sh is not None:
                self._fds.move_to_end(key)
                return sh
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        fd = os.open(os.path.join(self._shards, shard_name(segment, index)), flags, 0o600)
        if create:
            _fsync_dir(self._shards)
        sh = _FdShard(fd)
        with self._lock:
            old = self._fds.get(key)
            if old is not None:
                os.close(fd)
                return old
            self._fds[key] = sh
            while len(self._fds) > self.MAX_OPEN:
                _, ev = self._fds.popitem(last=False)
                os.close(ev.fd)
        return sh

    def forget(self, segment: int, index: int) -> None:
        with self._lock:
            sh = self._fds.pop((segment, index), None)
        if sh is not None:
            os.close(sh.fd)

    def remove_shard(self, segment: int, index: int) -> None:
        self.forget(segment, index)
        try:
            os.unlink(os.path.join(self._shards, shard_name(segment, index)))
        except FileNotFoundError:
            pass

    def list_shards(self) -> list[tuple[int, int]]:
        try:
            names = os.listdir(self._shards)
        except OSError:
            return []
        return sorted(p for p in (parse_shard_name(n) for n in names) if p is not None)

    def usage(self) -> int:
        """Bytes of disk the shard files take (sparse holes excluded)."""
        total = 0
        try:
            with os.scandir(self._shards) as it:
                for e in it:
                    try:
                        total += e.stat().st_blocks * 512
                    except OSError:
                        continue
        except OSError:
            return 0
        return total

    def capacity(self) -> tuple[int, int]:
        try:
            st = os.statvfs(self.path)
        except OSError:
            return 0, 0
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize

    def close(self) -> None:
        with self._lock:
            for sh in self._fds.values():
                os.close(sh.fd)
            self._fds.clear()


class _MemShard:
    def __init__(self) -> None:
        self.data = bytearray()
        self.lock = threading.Lock()

    def pwritev(self, bufs: Sequence[Buf], offset: int) -> int:
        with self.lock:
            pos = offset
            for b in bufs:
                end = pos + len(b)
                if end > len(self.data):
                    self.data.extend(bytes(end - len(self.data)))
                self.data[pos:end] = b
                pos = end
            return pos - offset

    def preadv(self, bufs: Sequence[bytearray | memoryview], offset: int) -> int:
        with self.lock:
            pos, total = offset, 0
            for b in bufs:
                chunk = self.data[pos: pos + len(b)]
                memoryview(b)[: len(chunk)] = chunk
                total += len(chunk)
                pos += len(b)
                if len(chunk) < len(b):
                    break
            return total

    def sync(self) -> None:
        pass

    def size(self) -> int:
        return len(self.data)


class MemTarget:
    """An in-memory target for fast tests; ``failed`` simulates a lost disk."""

    def __init__(self, id: int, path: str = "") -> None:
        self.id = id
        self.path = path or f"mem:{id}"
        self.shards: dict[tuple[int, int], _MemShard] = {}
        self.failed = False
        self.size_bytes = 1 << 40

    def _check(self) -> None:
        if self.failed:
            raise OSError(5, "target failed", self.path)

    def available(self) -> bool:
        return not self.failed

    def open_shard(self, segment: int, index: int, create: bool = False) -> ShardFile:
        self._check()
        key = (segment, index)
        sh = self.shards.get(key)
        if sh is None:
            if not create:
                raise FileNotFoundError(2, "no such shard", shard_name(segment, index))
            sh = self.shards.setdefault(key, _MemShard())
        return sh

    def remove_shard(self, segment: int, index: int) -> None:
        self.shards.pop((segment, index), None)

    def list_shards(self) -> list[tuple[int, int]]:
        return sorted(self.shards)

    def usage(self) -> int:
        return sum(len(s.data) for s in self.shards.values())

    def capacity(self) -> tuple[int, int]:
        used = self.usage()
        return self.size_bytes, max(0, self.size_bytes - used)

    def close(self) -> None:
        pass


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
