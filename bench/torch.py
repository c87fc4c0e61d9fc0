"""PyTorch adapter benchmarks, beside plain PyTorch over local files on the same disk.

    OMP_NUM_THREADS=1 python bench/torch.py [--samples 10000] [--sample-kb 100] [--shards 10] [--shard-mb 100]

Datasets: samples/s, MB/s and CPU-seconds per GB (main process + DataLoader
workers) for map-style (batched, ``__getitems__``) and iterable, cold (caches
dropped) and warm; the local baseline is a plain Dataset doing open().read().
Checkpoint: a 1 GiB state dict saved and loaded; the local baseline is
torch.save (+ fsync, as Tessera's save is durable) and torch.load.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("OMP_NUM_THREADS", "1")
_here = os.path.dirname(os.path.abspath(__file__))
# this file is bench/torch.py: keep its directory off the path so `import torch` is PyTorch
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]
sys.path.insert(0, os.path.dirname(_here))

import torch  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from core.store import init_store, open_store  # noqa: E402
from protocols.torch import TesseraCheckpoint, TesseraIterableDataset, TesseraMapDataset  # noqa: E402

WORKERS = 2


class LocalFiles(Dataset[bytes]):
    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> bytes:
        with open(self.paths[i], "rb") as f:
            return f.read()


def as_list(b: list[bytes]) -> list[bytes]:
    return b


def drop_caches() -> bool:
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def cpu_all() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def run_loader(make: Callable[[], DataLoader[object]]) -> tuple[float, float, int, int]:
    """(seconds, CPU seconds incl. workers, samples, bytes) for one pass."""
    dl = make()
    c0, t0 = cpu_all(), time.perf_counter()
    n = nbytes = 0
    for batch in dl:
        items = batch if isinstance(batch, list) else [batch]
        n += len(items)
        nbytes += sum(len(x) for x in items)
    dt = time.perf_counter() - t0
    del dl
    return dt, cpu_all() - c0, n, nbytes


def row(name: str, dt: float, cpu: float, n: int, nbytes: int, base: float | None = None, goal: str = "") -> None:
    gb = nbytes / 1e9
    ratio = f"{base / dt:.2f}x local" if base else ""
    print(f"{name:<44} {n / dt:>9.0f}/s {nbytes / 1e6 / dt:>8.0f} MB/s {cpu / gb:>7.2f} CPU-s/GB {ratio:>12} {goal}",
          flush=True)


def bench_dataset(label: str, local: list[str], uri: str, data: str, batch: int) -> None:
    cases: dict[str, Callable[[], DataLoader[object]]] = {
        "local files, DataLoader": lambda: DataLoader(LocalFiles(local), batch_size=batch, num_workers=WORKERS,
                                                      collate_fn=as_list),
        "Tessera map-style, batched": lambda: DataLoader(
            TesseraMapDataset.from_prefix(uri, data=data), batch_size=batch, num_workers=WORKERS,
            collate_fn=as_list),
        "Tessera iterable": lambda: DataLoader(TesseraIterableDataset.from_prefix(uri, data=data, batch_size=batch),
                                               batch_size=batch, num_workers=WORKERS, collate_fn=as_list),
    }
    for temp in ("cold", "warm"):
        base = None
        for name, make in cases.items():
            if temp == "cold":
                drop_caches()
            else:
                run_loader(make)  # warm the page cache (and the store's own state)
            dt, cpu, n, nbytes = run_loader(make)
            if base is None:
                base = dt
                row(f"{label} {temp}: {name}", dt, cpu, n, nbytes)
            else:
                row(f"{label} {temp}: {name}", dt, cpu, n, nbytes, base,
                    ">= 1.0x" if "map-style" in name else "")


def make_data(base: str, data: str, n: int, size: int, sub: str) -> list[str]:
    blob = os.urandom(size)
    ldir = os.path.join(base, "local", sub)
    os.makedirs(ldir)
    paths = []
    with open_store(data) as s:
        d = s.fs.makedirs(f"/{sub}")

        def one(i: int) -> str:
            body = blob[i % 97:] + blob[: i % 97]
            p = os.path.join(ldir, f"{i:06d}.bin")
            with open(p, "wb") as f:
                f.write(body)
            s.fs.write_file(d.ino, f"{i:06d}.bin", body)
            return p
        with ThreadPoolExecutor(8) as ex:
            paths = list(ex.map(one, range(n)))
    os.sync()
    return paths


def bench_checkpoint(base: str, data: str, gib: float) -> None:
    n = int(gib * 16)
    state = {f"layer{i}": torch.randn(16 * 1024 * 1024 // 4 * 4, dtype=torch.float32)[: 16 * 1024 * 1024]
             for i in range(n)}  # n x 64 MiB
    size = sum(t.numel() * 4 for t in state.values())
    local = os.path.join(base, "local", "ckpt.pt")

    def local_save() -> None:
        with open(local, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
    ck = TesseraCheckpoint("tessera:///ckpt", data=data)
    t_ls = timed(local_save, cold=True)
    t_ts = timed(lambda: ck.save(state, "ckpt.pt"), cold=True)
    t_ll = timed(lambda: torch.load(local), cold=True)
    t_tl = timed(lambda: ck.load("ckpt.pt"), cold=True)
    loaded = ck.load("ckpt.pt")
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    gb = size / 1e9
    print(f"{'checkpoint save, local torch.save + fsync':<44} {gb / t_ls:>9.2f} GB/s")
    print(f"{'checkpoint save, TesseraCheckpoint':<44} {gb / t_ts:>9.2f} GB/s {t_ls / t_ts:>10.2f}x local  >= 1.0x")
    print(f"{'checkpoint load (cold), local torch.load':<44} {gb / t_ll:>9.2f} GB/s")
    print(f"{'checkpoint load (cold), TesseraCheckpoint':<44} {gb / t_tl:>9.2f} GB/s "
          f"{t_ll / t_tl:>10.2f}x local  >= 1.0x")


def timed(fn: Callable[[], object], cold: bool = False) -> float:
    if cold:
        drop_caches()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--sample-kb", type=int, default=100)
    ap.add_argument("--shards", type=int, default=10)
    ap.add_argument("--shard-mb", type=int, default=100)
    ap.add_argument("--ckpt-gib", type=float, default=1.0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    base = tempfile.mkdtemp(prefix="tessera-torchbench-", dir=os.getcwd())
    data = os.path.join(base, "store")
    init_store(data)
    try:
        print(f"# bench/torch.py: {os.cpu_count()} cores, {WORKERS} DataLoader workers, torch {torch.__version__}, "
              f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, caches dropped: {drop_caches()}")
        small = make_data(base, data, a.samples, a.sample_kb * 1000, "samples")
        bench_dataset(f"{a.samples} x {a.sample_kb} KB", small, "tessera:///samples", data, 64)
        shards = make_data(base, data, a.shards, a.shard_mb * 1000 * 1000, "shards")
        bench_dataset(f"{a.shards} x {a.shard_mb} MB", shards, "tessera:///shards", data, 1)
        bench_checkpoint(base, data, a.ckpt_gib)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
