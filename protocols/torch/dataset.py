"""TesseraMapDataset and TesseraIterableDataset.

Map-style: a sorted, deterministic index of paths; ``__getitems__`` reads a
whole batch with many reads in flight (torch's DataLoader calls it for batched
sampling).  Iterable: shuffle with a seed, sharded by rank × worker so every
sample comes exactly once per epoch, and ``state_dict``/``load_state_dict`` to
resume mid-epoch.

Resuming: the state is how many samples *this rank's* training loop consumed
(``state_dict(samples_seen=...)``).  With ``batch_size`` equal to the
DataLoader's, each worker recomputes which of its samples the DataLoader
already delivered — DataLoader takes batches from workers round-robin — and
skips exactly those.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from protocols.torch.backend import Backend, from_uri
from protocols.torch.reader import LazyReader

Transform = Callable[[LazyReader], Any]


def _load(backend: Backend, path: str, size: int, transform: Transform | None) -> Any:
    try:
        if transform is None:
            data = backend.read(path, 0, size)
            if len(data) != size:
                raise FileNotFoundError(f"{backend.uri(path)}: sample changed size while being read")
            return data
        return transform(LazyReader(backend, path, size, backend.uri(path)))
    except FileNotFoundError as e:
        raise FileNotFoundError(f"sample {backend.uri(path)} is missing (removed after the index was built?): "
                                f"{e}") from None


def _index(uri: str, pattern: str | None, kw: dict[str, Any]) -> tuple[Backend, list[tuple[str, int]]]:
    backend, path = from_uri(uri, **kw)
    items = backend.list(path, pattern)
    if not items:
        raise ValueError(f"no samples under {uri}" + (f" matching {pattern!r}" if pattern else ""))
    return backend, items


def _paths(uris: Sequence[str], kw: dict[str, Any]) -> tuple[Backend, list[tuple[str, int]]]:
    if not uris:
        raise ValueError("from_paths needs at least one path")
    backend, _ = from_uri(uris[0], **kw)
    items = []
    for u in uris:
        b, p = from_uri(u, **kw)
        if type(b) is not type(backend) or b.__getstate__() != backend.__getstate__():  # type: ignore[attr-defined]
            raise ValueError("all paths of one dataset must be on the same store or bucket")
        items.append((p, backend.size(p)))
    return backend, items


class TesseraMapDataset(Dataset[Any]):
    def __init__(self, backend: Backend, items: list[tuple[str, int]], transform: Transform | None = None,
                 max_inflight: int = 4) -> None:
        self.backend = backend
        self.items = items
        self.transform = transform
        self.max_inflight = max_inflight
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0

    @classmethod
    def from_prefix(cls, uri: str, pattern: str | None = None, transform: Transform | None = None,
                    max_inflight: int = 4, **kw: Any) -> TesseraMapDataset:
        """All files under a directory or key prefix, sorted by path."""
        backend, items = _index(uri, pattern, kw)
        return cls(backend, items, transform, max_inflight)

    @classmethod
    def from_paths(cls, uris: Sequence[str], transform: Transform | None = None, max_inflight: int = 4,
                   **kw: Any) -> TesseraMapDataset:
        backend, items = _paths(uris, kw)
        return cls(backend, items, transform, max_inflight)

    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["_pool"], d["_pid"] = None, 0
        return d

    def __len__(self) -> int:
        return len(self.items)

    @property
    def paths(self) -> list[str]:
        return [self.backend.uri(p) for p, _ in self.items]

    def __getitem__(self, i: int) -> Any:
        path, size = self.items[i]
        return _load(self.backend, path, size, self.transform)

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """A whole batch: one metadata snapshot on a store, else up to ``max_inflight`` reads at once."""
        read_many = getattr(self.backend, "read_many", None)
        if self.transform is None and read_many is not None:
            items = [self.items[i] for i in indices]
            try:
                data: list[Any] = read_many([p for p, _ in items])
            except FileNotFoundError:
                data = [self[i] for i in indices]  # name the missing sample
            for (p, size), d in zip(items, data, strict=True):
                if len(d) != size:
                    raise FileNotFoundError(f"sample {self.backend.uri(p)} changed size since the index was built")
            return data
        if self._pool is None or self._pid != os.getpid():
            self._pool = ThreadPoolExecutor(self.max_inflight, thread_name_prefix="tessera-batch")
            self._pid = os.getpid()
        return list(self._pool.map(self.__getitem__, indices))


def _rank_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return rank or 0, world_size or 1


class TesseraIterableDataset(IterableDataset[Any]):
    def __init__(self, backend: Backend, items: list[tuple[str, int]], transform: Transform | None = None,
                 shuffle: bool = False, seed: int = 0, rank: int | None = None, world_size: int | None = None,
                 batch_size: int = 1) -> None:
        self.backend = backend
        self.items = items
        self.transform = transform
        self.shuffle, self.seed = shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.batch_size = batch_size
        self.epoch = 0
        self.samples_seen = 0

    @classmethod
    def from_prefix(cls, uri: str, pattern: str | None = None, transform: Transform | None = None,
                    **kw: Any) -> TesseraIterableDataset:
        opts = {k: kw.pop(k) for k in ("shuffle", "seed", "rank", "world_size", "batch_size") if k in kw}
        backend, items = _index(uri, pattern, kw)
        return cls(backend, items, transform, **opts)

    @classmethod
    def from_paths(cls, uris: Sequence[str], transform: Transform | None = None, **kw: Any
                   ) -> TesseraIterableDataset:
        opts = {k: kw.pop(k) for k in ("shuffle", "seed", "rank", "world_size", "batch_size") if k in kw}
        backend, items = _paths(uris, kw)
        return cls(backend, items, transform, **opts)

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.samples_seen = epoch, 0

    def order(self) -> list[int]:
        """This epoch's global order of sample indexes (the same on every rank)."""
        idx = list(range(len(self.items)))
        if self.shuffle:
            random.Random(self.seed * 1_000_003 + self.epoch).shuffle(idx)
        return idx

    def shard(self, worker: int, num_workers: int) -> list[int]:
        """The samples (global indexes, in order) one worker of this rank delivers."""
        rank, world = _rank_world(self.rank, self.world_size)
        total = world * num_workers
        return self.order()[rank * num_workers + worker:: total]

    def _skip(self, worker: int, num_workers: int, shard_len: int) -> int:
        """How many of this worker's samples the DataLoader already delivered (see module doc)."""
        if not self.samples_seen:
            return 0
        b = self.batch_size
        batches = self.samples_seen // b
        lens = []
        for w in range(num_workers):  # simulate DataLoader's round-robin over workers' batches
            n = len(self.shard(w, num_workers)) if w != worker else shard_len
            lens.append(-(-n // b))
        taken = [0] * num_workers
        w = 0
        for _ in range(batches):
            for _ in range(num_workers):
                if taken[w] < lens[w]:
                    break
                w = (w + 1) % num_workers
            else:
                break
            taken[w] += 1
            w = (w + 1) % num_workers
        return min(shard_len, taken[worker] * b)

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        mine = self.shard(worker, num_workers)
        for i in mine[self._skip(worker, num_workers, len(mine)):]:
            path, size = self.items[i]
            yield _load(self.backend, path, size, self.transform)

    def __len__(self) -> int:
        rank, world = _rank_world(self.rank, self.world_size)
        return len(range(rank, len(self.items), world)) if world > 1 else len(self.items)

    def state_dict(self, samples_seen: int | None = None) -> dict[str, int]:
        """Where this rank is in the epoch: pass how many samples the loop consumed."""
        if samples_seen is not None:
            if samples_seen % self.batch_size:
                raise ValueError(f"samples_seen ({samples_seen}) must be a multiple of batch_size "
                                 f"({self.batch_size}): resume at batch boundaries")
            self.samples_seen = samples_seen
        return {"epoch": self.epoch, "seed": self.seed, "samples_seen": self.samples_seen,
                "batch_size": self.batch_size, "num_samples": len(self.items)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state.get("num_samples", len(self.items)) != len(self.items):
            raise ValueError(f"the checkpoint was taken over {state['num_samples']} samples; "
                             f"this dataset has {len(self.items)}")
        self.epoch, self.seed = int(state["epoch"]), int(state["seed"])
        self.samples_seen = int(state["samples_seen"])
        self.batch_size = int(state.get("batch_size", self.batch_size))


__all__ = ["TesseraIterableDataset", "TesseraMapDataset", "torch"]
