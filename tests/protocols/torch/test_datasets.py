"""Real DataLoaders over Tessera: worker processes under fork, spawn and forkserver."""

from __future__ import annotations

import os
import pickle
import re
import shutil
from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader

from protocols.torch import LazyReader, TesseraIterableDataset, TesseraMapDataset
from tests.protocols.torch.conftest import N, expected, sample

LOADERS = [(0, None), (2, "fork"), (2, "spawn"), (2, "forkserver")]


def header(r: LazyReader) -> tuple[str, int, bytes, bytes]:
    """A transform that reads only what it needs: 4 bytes, then 4 from the end."""
    first = r.read(4)
    r.seek(-4, os.SEEK_END)
    return r.name, r.size, first, r.read()


def as_list(batch: list[bytes]) -> list[bytes]:
    return batch


@pytest.mark.parametrize(("workers", "method"), LOADERS)
def test_map_dataset_batches(store_dir: str, workers: int, method: str | None) -> None:
    ds = TesseraMapDataset.from_prefix("tessera:///ds/train", data=store_dir, max_inflight=8)
    assert len(ds) == N and ds.paths[0] == "tessera:///ds/train/s000.bin"
    dl = DataLoader(ds, batch_size=5, num_workers=workers, multiprocessing_context=method, collate_fn=as_list)
    got = [x for b in dl for x in b]
    assert got == expected()


@pytest.mark.parametrize(("workers", "method"), LOADERS)
def test_iterable_dataset_with_transform(store_dir: str, workers: int, method: str | None) -> None:
    ds = TesseraIterableDataset.from_prefix("tessera:///ds", pattern="train/*.bin", data=store_dir,
                                            transform=header, shuffle=True, seed=7)
    dl = DataLoader(ds, batch_size=None, num_workers=workers, multiprocessing_context=method)
    got = sorted(tuple(x) for x in dl)  # default collation turns tuples into lists
    want = sorted((f"tessera:///ds/train/s{i:03d}.bin", len(sample(i)), sample(i)[:4], sample(i)[-4:])
                  for i in range(N))
    assert got == want


def test_sharding_covers_every_sample_once(store_dir: str) -> None:
    seen: Counter[bytes] = Counter()
    for rank in range(2):  # 2 simulated ranks x 2 workers
        ds = TesseraIterableDataset.from_prefix("tessera:///ds/train", data=store_dir, shuffle=True, seed=3,
                                                rank=rank, world_size=2)
        seen.update(DataLoader(ds, batch_size=None, num_workers=2))
    assert sorted(seen) == sorted(expected()) and set(seen.values()) == {1}


def test_shuffle_is_seeded_per_epoch(store_dir: str) -> None:
    ds = TesseraIterableDataset.from_prefix("tessera:///ds/train", data=store_dir, shuffle=True, seed=11)
    a, b = list(ds), list(ds)
    ds.set_epoch(1)
    c = list(ds)
    assert a == b and a != c and sorted(a) == sorted(c) == sorted(expected())


@pytest.mark.parametrize(("workers", "batch"), [(0, 4), (2, 3), (2, 5)])
def test_resume_mid_epoch(store_dir: str, workers: int, batch: int) -> None:
    kw = {"data": store_dir, "shuffle": True, "seed": 5, "batch_size": batch}
    ds = TesseraIterableDataset.from_prefix("tessera:///ds/train", **kw)
    dl = DataLoader(ds, batch_size=batch, num_workers=workers, collate_fn=as_list)
    first: list[bytes] = []
    for step, b in enumerate(dl):
        first += b
        if step == 2:
            break
    state = ds.state_dict(samples_seen=len(first))
    ds2 = TesseraIterableDataset.from_prefix("tessera:///ds/train", **kw)
    ds2.load_state_dict(state)
    rest = [x for b in DataLoader(ds2, batch_size=batch, num_workers=workers, collate_fn=as_list) for x in b]
    assert len(first) + len(rest) == N
    assert sorted(first + rest) == sorted(expected())  # the rest of the epoch, nothing twice


def test_state_dict_checks() -> None:
    from protocols.torch.backend import CoreBackend
    ds = TesseraIterableDataset(CoreBackend("/nowhere"), [("/a", 1)] * 10, batch_size=4)
    with pytest.raises(ValueError, match="multiple of batch_size"):
        ds.state_dict(samples_seen=6)
    with pytest.raises(ValueError, match="10 samples"):
        TesseraIterableDataset(CoreBackend("/nowhere"), [("/a", 1)] * 9).load_state_dict(ds.state_dict())


def test_datasets_pickle_as_configuration(store_dir: str) -> None:
    ds = TesseraMapDataset.from_prefix("tessera:///ds/train", data=store_dir)
    assert ds[0] == sample(0)  # this process has opened the store
    blob = pickle.dumps(ds)
    assert len(blob) < 10_000 and b"SqliteMeta" not in blob
    assert pickle.loads(blob)[1] == sample(1)


def test_bad_input_is_named(store_dir: str, tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(ValueError, match="no samples under tessera:///ds/nothing"):
        TesseraMapDataset.from_prefix("tessera:///ds/nothing", data=store_dir)
    with pytest.raises(FileNotFoundError, match=re.escape("/ds/train/missing.bin")):
        TesseraMapDataset.from_paths(["tessera:///ds/train/missing.bin"], data=store_dir)
    saved = os.environ.pop("TESSERA_DATA", None)
    try:
        with pytest.raises(ValueError, match="where the store is"):
            TesseraMapDataset.from_prefix("tessera:///ds/train")
    finally:
        if saved is not None:
            os.environ["TESSERA_DATA"] = saved
    with pytest.raises(ValueError, match="expected tessera"):
        TesseraMapDataset.from_prefix("ftp://x/y")
    # a sample that vanishes after the index was built
    from core.store import open_store
    copy = str(tmp_path) + "/copy"
    shutil.copytree(store_dir, copy)
    ds = TesseraMapDataset.from_prefix("tessera:///ds/train", data=copy)
    with open_store(copy) as s:
        s.fs.unlink(s.fs.resolve("/ds/train").ino, "s005.bin")
    with pytest.raises(FileNotFoundError, match=re.escape("sample tessera:///ds/train/s005.bin")):
        list(DataLoader(ds, batch_size=4, num_workers=0, collate_fn=as_list))


def test_degraded_store_gives_correct_data(store_dir: str, tmp_path: os.PathLike[str]) -> None:
    copy = str(tmp_path) + "/degraded"
    shutil.copytree(store_dir, copy)
    for t in ("t1", "t4"):  # m = 2 targets gone
        shutil.rmtree(os.path.join(copy, "targets", t))
    ds = TesseraMapDataset.from_prefix("tessera:///ds/train", data=copy)
    assert [x for b in DataLoader(ds, batch_size=6, num_workers=2, collate_fn=as_list) for x in b] == expected()


@pytest.mark.parametrize("workers", [0, 2])
def test_s3_mode_against_tessera_s3(s3_dataset: object, workers: int) -> None:
    srv = s3_dataset
    kw = {"endpoint": srv.endpoint, "key": srv.access_key, "secret": srv.secret_key}  # type: ignore[attr-defined]
    ds = TesseraMapDataset.from_prefix("s3://train/shards/", **kw)
    assert len(ds) == N and ds.paths[0] == "s3://train/shards/s000.bin"
    got = [x for b in DataLoader(ds, batch_size=4, num_workers=workers, collate_fn=as_list) for x in b]
    assert got == expected()
    it = TesseraIterableDataset.from_prefix("s3://train/shards/", transform=header, shuffle=True, **kw)
    assert sorted(x[2] for x in DataLoader(it, batch_size=None, num_workers=workers)) == sorted(
        s[:4] for s in expected())


def test_torch_is_the_installed_one() -> None:
    assert torch.__version__.startswith("2.")
