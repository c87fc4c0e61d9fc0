"""What versions and the trash can cost (issue 13): PUT and overwrite rates with versioning off, with the
trash on (the default for new stores) and with versioning enabled, in one run; then segment GC with many
versions kept.

    .venv/bin/python bench/versions.py                        # defaults, ~2-4 min on a 2-core box
    .venv/bin/python bench/versions.py --no-s3 --gc-versions 200000 --reps 5

Three trees of one store, one per mode: ``off`` (versioning off, trash 0 days), ``trash`` (versioning
off, trash 1 day) and ``versioned`` (versioning enabled).  For each, a PUT (new keys) and an overwrite
(the same keys again) of 4 KiB and of 64 MiB objects:

* through core.fs ``write_file`` in-process (the mechanism: durable on return);
* through S3 with boto3 ``put_object`` against a local ``tessera serve`` (one client, sequential;
  versioning set with PutBucketVersioning, the trash per bucket through core.fs).

The modes are interleaved (each repetition runs every mode, in a rotated order) and each figure is the
median of the repetitions, so drift on a shared box hits all modes alike; the ratio to ``off`` is the
figure to read.  The goal is overwrites no more than 10% slower (ratio >= 0.90).

GC: ``--gc-versions`` N versions are made by re-cloning a 20 KiB file (one slice, shared data: metadata
only, the slice rows are what GC counts) over 64 keys of a versioned tree from 8 threads; then
``collect()`` is timed with the N versions kept, ``purge_versions`` of every key, and ``collect()`` again
with none kept.  Times are also scaled linearly to one million versions (measured at N, not at 1M).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import boto3
from botocore.config import Config

from core.fs.fs import FileSystem
from core.store import Store, init_store, open_store

MiB = 1 << 20
MODES = ("off", "trash", "versioned")
POLICY: dict[str, dict[str, object]] = {"off": {"versioning": None, "trash_days": 0.0},
                                        "trash": {"versioning": None, "trash_days": 1.0},
                                        "versioned": {"versioning": "enabled", "trash_days": 1.0}}
Results = dict[tuple[str, str, str], list[float]]  # (path, op, mode) -> rates, one per repetition


def rate(n: int, fn: Callable[[int], object]) -> float:
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def report(title: str, res: Results, sizes: dict[str, int]) -> None:
    """One row per operation: each mode's median rate, its ratio to ``off`` and the spread of its repetitions
    (half the max-min range, in % of the median)."""
    print(f"\n{title}: ops/s, median of {len(next(iter(res.values())))} (ratio to off, spread; MB/s for 64 MiB)")
    print(f"{'':<26}" + "".join(f"{m:>30}" for m in MODES))
    for path, op in dict.fromkeys((p, o) for p, o, _ in res):
        base = statistics.median(res[(path, op, "off")])
        cells = []
        for m in MODES:
            rs = res[(path, op, m)]
            v = statistics.median(rs)
            mb = f" {v * sizes[op] / 1e6:.0f}MB/s" if sizes[op] >= MiB else ""
            cells.append(f"{v:,.1f} ({v / base:.2f}x ±{50 * (max(rs) - min(rs)) / v:.0f}%){mb}")
        print(f"{path + ' ' + op:<26}" + "".join(f"{c:>30}" for c in cells), flush=True)


# -- core.fs -----------------------------------------------------------------------------
def core_phase(fs: FileSystem, a: argparse.Namespace, small: bytes, big: bytes) -> Results:
    dirs: dict[str, int] = {}
    for m in MODES:
        d = fs.mkdir(fs.root, f"core-{m}")
        fs.set_tree_policy(d.ino, **POLICY[m])  # type: ignore[arg-type]
        dirs[m] = d.ino
    res: Results = {}

    def put(d: int, op: str, rep: int, data: bytes) -> Callable[[int], object]:
        return lambda i: fs.write_file(d, f"{op}-{rep}-{i}", data)
    rate(min(a.small, 200), put(dirs["off"], "warm", 0, small))  # untimed: caches and the writer warm
    for rep in range(a.reps):
        for m in MODES[rep % 3:] + MODES[:rep % 3]:
            for op, n, data in (("4KiB", a.small, small), ("64MiB", a.big, big)):
                res.setdefault(("core.fs", f"{op} PUT", m), []).append(rate(n, put(dirs[m], op, rep, data)))
                res.setdefault(("core.fs", f"{op} overwrite", m), []).append(rate(n, put(dirs[m], op, rep, data)))
    for m in MODES:
        print(f"  core-{m}: kept {fs.version_usage('/core-' + m)}")
    return res


# -- S3 ----------------------------------------------------------------------------------
def s3_phase(store: Store, data_dir: str, a: argparse.Namespace, small: bytes, big: bytes) -> Results:
    tessera = [sys.executable, "-m", "gateway.cli", "--data", data_dir]
    user = json.loads(subprocess.run([*tessera, "user", "add", "bench", "--json"], check=True,
                                     capture_output=True, text=True).stdout)
    port = free_port()
    with open(os.path.join(data_dir, "tessera.yaml"), "w") as f:
        f.write(f"admin:\n  enabled: false\nlog:\n  level: warning\ns3:\n  listen: 127.0.0.1:{port}\n"
                f"  workers: {a.workers}\nmaintenance:\n  gc_interval_s: 0\n")
    srv = subprocess.Popen([*tessera, "serve"])
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=user["access_key"],
                          aws_secret_access_key=user["secret_key"], region_name="us-east-1",
                          config=Config(signature_version="s3v4", retries={"max_attempts": 0}))
        fs = store.fs
        for m in MODES:
            s3.create_bucket(Bucket=f"s3-{m}")
            fs.set_tree_policy(fs.resolve(f"/s3-{m}").ino, trash_days=POLICY[m]["trash_days"])  # type: ignore[arg-type]
        s3.put_bucket_versioning(Bucket="s3-versioned", VersioningConfiguration={"Status": "Enabled"})
        assert fs.tree_policy(fs.resolve("/s3-versioned").ino).versioning == "enabled"
        res: Results = {}

        def put(b: str, op: str, rep: int, data: bytes) -> Callable[[int], object]:
            return lambda i: s3.put_object(Bucket=b, Key=f"{op}-{rep}-{i}", Body=data)
        rate(min(a.s3_small, 100), put("s3-off", "warm", 0, small))  # untimed: the server's workers warm
        for rep in range(a.reps):
            for m in MODES[rep % 3:] + MODES[:rep % 3]:
                for op, n, data in (("4KiB", a.s3_small, small), ("64MiB", a.s3_big, big)):
                    res.setdefault(("S3", f"{op} PUT", m), []).append(rate(n, put(f"s3-{m}", op, rep, data)))
                    res.setdefault(("S3", f"{op} overwrite", m), []).append(rate(n, put(f"s3-{m}", op, rep, data)))
        got = s3.list_object_versions(Bucket="s3-versioned", Prefix="4KiB-0-0")["Versions"]
        assert len(got) == 2, got  # the overwrite kept a version
        return res
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(30)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()


# -- GC ----------------------------------------------------------------------------------
def gc_phase(base: str, n: int) -> None:
    d = os.path.join(base, "gcstore")
    init_store(d)
    s = open_store(d)
    try:
        fs = s.fs
        top = fs.mkdir(fs.root, "gc")
        fs.set_tree_policy(top.ino, versioning="enabled")
        src = fs.write_file(top.ino, "src", os.urandom(20 * 1024)).ino
        keys = 64
        per = n // keys

        def churn(k: int) -> None:
            for _ in range(per + 1):  # the first clone makes the key, the rest each keep a version
                fs.clone(top.ino, f"k{k}", [src])
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(churn, range(keys)))
        t_make = time.perf_counter() - t0
        made = sum(c for c, _ in fs.version_usage("/gc").values())
        s.collect(seal=True)
        t0 = time.perf_counter()
        s.collect()
        t_with = time.perf_counter() - t0
        t0 = time.perf_counter()
        purged = sum(fs.purge_versions(f"/gc/k{k}") for k in range(keys))
        t_purge = time.perf_counter() - t0
        t0 = time.perf_counter()
        s.collect()
        t_none = time.perf_counter() - t0
        assert purged == made and fs.version_usage("/gc") == {}
        scale = 1e6 / made
        print(f"\nGC with {made:,} versions (64 keys; 20 KiB one-slice content shared; SQLite on disk):")
        print(f"  making them (clone over, 8 threads)  {t_make:8.2f} s  {made / t_make:10,.0f} versions/s")
        for what, t in (("collect() with them kept", t_with), ("purge_versions of every key", t_purge),
                        ("collect() after the purge (none)", t_none), ("purge + collect", t_purge + t_none)):
            print(f"  {what:<36} {t:8.3f} s  -> {t * scale:8.2f} s per million (scaled)")
    finally:
        s.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=None, help="scratch directory (default: a new one under the cwd)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per mode (medians reported)")
    ap.add_argument("--small", type=int, default=1000, help="4 KiB objects per mode and repetition, core.fs")
    ap.add_argument("--big", type=int, default=2, help="64 MiB objects per mode and repetition, core.fs")
    ap.add_argument("--s3-small", type=int, default=300, help="4 KiB objects per mode and repetition, S3")
    ap.add_argument("--s3-big", type=int, default=1, help="64 MiB objects per mode and repetition, S3")
    ap.add_argument("--big-mib", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2, help="S3 server worker processes")
    ap.add_argument("--no-s3", action="store_true")
    ap.add_argument("--gc-versions", type=int, default=50_000, help="versions made for the GC figures (0: skip)")
    a = ap.parse_args()
    base = tempfile.mkdtemp(prefix="tessera-vbench-", dir=a.dir or os.getcwd())
    small, big = os.urandom(4096), os.urandom(a.big_mib * MiB)
    sizes = {"4KiB PUT": 4096, "4KiB overwrite": 4096, "64MiB PUT": len(big), "64MiB overwrite": len(big)}
    t_start = time.perf_counter()
    print(f"# bench/versions.py: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, reps {a.reps}, core.fs "
          f"{a.small} x 4 KiB + {a.big} x {a.big_mib} MiB, S3 {a.s3_small} x 4 KiB + {a.s3_big} x {a.big_mib} MiB "
          "per mode and repetition", flush=True)
    try:
        data_dir = os.path.join(base, "data")
        subprocess.run([sys.executable, "-m", "gateway.cli", "--data", data_dir, "init"], check=True,
                       capture_output=True)
        store = open_store(data_dir)
        try:
            report("core.fs write_file", core_phase(store.fs, a, small, big), sizes)
            if not a.no_s3:
                report("S3 put_object (boto3, 1 client)", s3_phase(store, data_dir, a, small, big), sizes)
        finally:
            store.close()
        if a.gc_versions:
            gc_phase(base, a.gc_versions)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"\n# {time.perf_counter() - t_start:.0f} s, load {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
