"""Data-core benchmarks, each beside its plain equivalent measured in the same run.

    python bench/core.py [--size-mib 1024] [--big-mib 4096] [--dir DIR]

Figures: codec encode/decode GB/s per core vs memcpy; sequential 1 GiB write
and read through core.fs vs plain file I/O on the same disk; degraded read with
m targets missing vs healthy; durable 4 KiB creates/s and stats/s; peak RSS of
a process writing a 4 GiB file.  Reads are from the page cache unless
``drop_caches`` is permitted (it is tried, and the output says which).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core.data.codec import IsalCodec
from core.store import Store, init_store, open_store

MiB = 1 << 20
BUF = 8 * MiB


def row(name: str, value: str, ratio: str = "", goal: str = "") -> None:
    print(f"{name:<44} {value:>16} {ratio:>14} {goal:>14}", flush=True)


def drop_caches() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_codec() -> None:
    k, m, cell = 4, 2, 256 * 1024
    codec = IsalCodec(k, m)
    data = [bytearray(os.urandom(cell)) for _ in range(k)]
    parity = [bytearray(cell) for _ in range(m)]
    n = 2000
    enc = timed(lambda: [codec.encode(data, parity, cell) for _ in range(n)])
    have = [2, 3, 4, 5]
    cells = [data[2], data[3], parity[0], parity[1]]
    out = [bytearray(cell) for _ in range(2)]
    dec = timed(lambda: [codec.reconstruct(have, cells, [0, 1], out, cell) for _ in range(n)])
    assert out[0] == data[0] and out[1] == data[1]
    src = bytes(k * cell)
    dst = bytearray(k * cell)
    cp = timed(lambda: [dst.__setitem__(slice(None), src) for _ in range(n)])
    gb = n * k * cell / 1e9
    row("codec encode 4+2, 256 KiB cells (1 core)", f"{gb / enc:.1f} GB/s", f"{cp / enc:.2f}x memcpy",
        ">= 5 GB/s")
    row("codec decode 2 lost of 4+2 (1 core)", f"{gb / dec:.1f} GB/s", f"{cp / dec:.2f}x memcpy", ">= 5 GB/s")
    row("memcpy of the same bytes", f"{gb / cp:.1f} GB/s")


def plain_write(path: str, size: int, block: bytes) -> None:
    with open(path, "wb", buffering=0) as f:
        for _ in range(size // len(block)):
            f.write(block)
        os.fsync(f.fileno())


def plain_read(path: str) -> int:
    buf = bytearray(BUF)
    n = 0
    with open(path, "rb", buffering=0) as f:
        while got := f.readinto(buf):
            n += got
    return n


def fs_write(s: Store, name: str, size: int, block: bytes) -> None:
    fs = s.fs
    f = fs.create(fs.root, name, exclusive=False)
    with fs.open(f.ino, write=True) as h:
        for i in range(size // len(block)):
            h.write(i * len(block), block)


def fs_read(s: Store, name: str, size: int) -> int:
    fs = s.fs
    ino = fs.resolve("/" + name).ino
    buf = bytearray(BUF)
    off = 0
    view = memoryview(buf)
    while off < size:
        off += fs.read_committed(ino, off, view)
    return off


def bench_sequential(base: str, size: int) -> None:
    block = os.urandom(BUF)
    plain = os.path.join(base, "plain.bin")
    tw_plain = timed(lambda: plain_write(plain, size, block))
    d = os.path.join(base, "store")
    init_store(d)
    s = open_store(d)
    tw = timed(lambda: fs_write(s, "seq.bin", size, block))
    cold = drop_caches()
    tr_plain = timed(lambda: plain_read(plain))
    drop_caches()
    tr = timed(lambda: fs_read(s, "seq.bin", size))
    mb = size / 1e6
    row(f"write {size // MiB} MiB, plain file + fsync", f"{mb / tw_plain:.0f} MB/s")
    row(f"write {size // MiB} MiB through core.fs (4+2)", f"{mb / tw:.0f} MB/s", f"{tw_plain / tw:.2f}x plain",
        ">= 0.5x")
    tag = "cold" if cold else "page cache"
    row(f"read {size // MiB} MiB, plain file ({tag})", f"{mb / tr_plain:.0f} MB/s")
    row(f"read {size // MiB} MiB through core.fs ({tag})", f"{mb / tr:.0f} MB/s", f"{tr_plain / tr:.2f}x plain",
        ">= 0.5x")
    s.close()
    # degraded: m = 2 targets gone
    for t in ("t0", "t3"):
        shutil.rmtree(os.path.join(d, "targets", t))
    s = open_store(d)
    drop_caches()
    td = timed(lambda: fs_read(s, "seq.bin", size))
    row(f"read {size // MiB} MiB, 2 of 6 targets missing", f"{mb / td:.0f} MB/s", f"{tr / td:.2f}x healthy",
        ">= 0.5x")
    s.close()
    os.unlink(plain)
    shutil.rmtree(d)


def bench_small(base: str, n: int = 3000) -> None:
    d = os.path.join(base, "small")
    init_store(d)
    s = open_store(d)
    fs = s.fs
    data = os.urandom(4096)
    dirs = [fs.mkdir(fs.root, f"d{i}").ino for i in range(8)]
    t1 = timed(lambda: [fs.write_file(dirs[0], f"f{i}", data) for i in range(n)])

    def worker(j: int) -> None:
        for i in range(n // 8):
            fs.write_file(dirs[j], f"g{i}", data)
    ths = [threading.Thread(target=worker, args=(j,)) for j in range(8)]
    t8 = time.perf_counter()
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    t8 = time.perf_counter() - t8

    def handles() -> None:
        for i in range(n // 3):
            a = fs.create(dirs[1], f"h{i}")
            with fs.open(a.ino, write=True) as h:
                h.write(0, data)
    th3 = timed(handles)
    pd = os.path.join(base, "plainsmall")
    os.makedirs(pd)

    def plain() -> None:
        dfd = os.open(pd, os.O_RDONLY)
        for i in range(n):
            fd = os.open(os.path.join(pd, f"f{i}"), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            os.fsync(dfd)
        os.close(dfd)
    tp = timed(plain)
    row("4 KiB creates, plain file + fsync(file, dir)", f"{n / tp:.0f} /s")
    row("4 KiB creates durable, write_file, 1 thread", f"{n / t1:.0f} /s", f"{tp / t1:.2f}x plain", ">= 2000/s")
    rate8 = n // 8 * 8 / t8
    row("4 KiB creates durable, write_file, 8 threads", f"{rate8:.0f} /s", f"{rate8 * tp / n:.2f}x plain",
        ">= 2000/s")
    row("4 KiB create+open+write+close, 1 thread", f"{n // 3 / th3:.0f} /s")
    inos = [e.ino for e in fs.listdir(dirs[0])]
    m = 50_000
    ts = timed(lambda: [fs.getattr(inos[i % len(inos)]) for i in range(m)])
    tpath = timed(lambda: [fs.resolve(f"/d0/f{i % n}") for i in range(m // 5)])
    paths = [os.path.join(pd, f"f{i}") for i in range(n)]
    tos = timed(lambda: [os.stat(paths[i % n]) for i in range(m)])
    row("stat (getattr by inode)", f"{m / ts:.0f} /s", f"{tos / ts:.2f}x os.stat", ">= 50000/s")
    row("stat by path (/d0/fN walk)", f"{m // 5 / tpath:.0f} /s", f"{tos / 5 / tpath:.2f}x os.stat")
    row("os.stat on the local filesystem", f"{m / tos:.0f} /s")
    s.close()
    shutil.rmtree(d)
    shutil.rmtree(pd)


def big_writer(d: str, size: int) -> None:
    s = open_store(d)
    fs_write(s, "big.bin", size, os.urandom(MiB))
    s.close()


def bench_memory(base: str, size: int) -> None:
    d = os.path.join(base, "mem")
    init_store(d)
    t = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--_big-writer", d, str(size)], check=True)
    dt = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    row(f"peak RSS writing a {size // MiB} MiB file (1 MiB writes)", f"{peak:.0f} MB", f"{size / 1e6 / dt:.0f} MB/s",
        "< 300 MB")
    shutil.rmtree(d)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--big-mib", type=int, default=4096)
    ap.add_argument("--dir", default=None, help="scratch directory on the disk to measure")
    ap.add_argument("--_big-writer", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._big_writer:
        big_writer(a._big_writer[0], int(a._big_writer[1]))
        return
    base = tempfile.mkdtemp(prefix="tessera-bench-", dir=a.dir or os.getcwd())
    print(f"# bench/core.py on {os.cpu_count()} cores, scratch {base}")
    row("benchmark", "figure", "ratio", "goal")
    try:
        bench_codec()
        bench_sequential(base, a.size_mib * MiB)
        bench_small(base)
        bench_memory(base, a.big_mib * MiB)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
