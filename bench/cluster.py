"""Cluster benchmarks (issue 12): metadata on SQLite vs PostgreSQL, S3 and core.fs over 1, 2 and 4 nodes,
and a paper estimate for 16 and 144 nodes, in one run.

    sudo .venv/bin/python bench/cluster.py [--quick] [--nodes 1,2,4] [--files 2000] [--threads 8]
                                           [--size 64M] [--clients 4] [--fs-size 256M]

1. Metadata through core.fs, the same calls on two stores made side by side in a temporary directory on
   the real disk: SQLite (WAL, the embedded default) and PostgreSQL 15 (LocalPostgres on 127.0.0.1, fsync
   on, synchronous_commit on; the same machine, so its CPU competes with the client's).  Both stores have 3
   real target directories (2+1) that stay empty: 1 KiB files live inline, so only metadata is timed.
   Durable creates (``write_file``) with 1 thread and with ``--threads``; ``getattr`` by inode and
   ``lookup`` by name of every file; ``listdir`` of the directory (entries/s).  Beside each rate: this
   process's CPU-seconds per 1,000 operations and PostgreSQL's (the postmaster and every backend, from
   /proc/PID/stat).
2. Clusters of 1, 2 and 4 nodes (gateway.cluster.local.LocalCluster, as root each node in its own network
   namespace on a bridge, PostgreSQL in another), 3 target directories per node, geometry 2+1 for all (the
   one that fits a single node's 3 targets; more nodes spread each stripe's 3 cells over up to 3 nodes),
   ``tessera serve`` with S3 only, one uvicorn worker per node.  Figures per cluster size:
   * S3 PUT of ``--clients`` objects of ``--size`` at once with boto3 from the root namespace (client i
     talks to node i mod N; single PUTs, no client checksums), then GET of each from the node that wrote
     it and (N > 1) from the next node; every GET's bytes are compared with what was PUT;
   * core.fs: one worker process per node *inside that node's namespace* opens the node's data directory
     (so it acts as that node: its own targets locally, the others' through their target servers), writes
     a ``--fs-size`` file (``write_file``, durable), then reads its own file and (N > 1) the next node's;
     then (N > 1) one stream alone: node 1 writes, node 2 reads it (N streams on 2 cores oversubscribe
     them, which inflates CPU per byte).  Workers start, open the store and wait; the clock runs from a
     common "go" to the last finish.  Each worker reports the share of its file's shards on its node.
   CPU: every process in each node's namespace (``ip netns pids``: tessera serve, its S3 worker, the
   target server) plus the core.fs worker, utime+stime(+reaped children) from /proc/PID/stat, before and
   after each phase; PostgreSQL's namespace likewise; the S3 client's is this process's (os.times).
   "MB per node-CPU-s" = bytes moved / CPU-seconds of all nodes together: what a byte costs the cluster.
   On 2 cores this measures overhead, not scale: more nodes share the same two cores.
3. A paper estimate for 16 and 144 nodes from those figures, with the assumptions printed (``--node-*``,
   ``--pg-cores`` options): per-node throughput = the least of CPU (cores / CPU-s per GB), NIC (client
   bytes plus the cells other nodes send or fetch) and disks (with erasure-coding overhead).  CPU-s per GB
   = the 1-node figure (all shards local) + the one-stream cost per GB of remote shards x (N-1)/N;
   metadata = the least of what the nodes can issue and what one PostgreSQL primary serves (measured
   operations per PostgreSQL CPU-second x its cores).

bench/ is not a package: this script puts its own directory and the repository on sys.path.  Nothing is
recorded: copy what it prints into bench/RESULTS.md.  The core.fs worker is bench/cluster_fsworker.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import REPO, MiB

TICK = os.sysconf("SC_CLK_TCK")
BLOCK = 8 * MiB  # as cluster_fsworker.py's
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cluster_fsworker.py")
GB = 1e9


# -- CPU accounting -----------------------------------------------------------------------------------------

def pid_cpu(pid: int) -> float:
    """utime + stime + reaped children's (/proc/PID/stat fields 14-17) in seconds; 0 for a process gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return sum(int(x) for x in fields[11:15]) / TICK


def tree_pids(root: int) -> list[int]:
    """``root`` and every live descendant (PostgreSQL's backends each call setsid: no process group)."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    kids.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                pass
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += kids.get(pid, [])
    return out


def cpu_sum(pids: Sequence[int], skip: frozenset[int] = frozenset()) -> float:
    return sum(pid_cpu(p) for p in pids if p not in skip)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """SIGTERM and SIGINT held back while tearing down (a SystemExit raised inside LocalCluster.stop would skip
    the rest: namespaces and PostgreSQL left running); delivered once the block is done."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


# -- part 1: metadata ---------------------------------------------------------------------------------------

@dataclass
class MetaRun:
    """One store's metadata figures: op -> (per second, client CPU-s per 1k ops, server CPU-s per 1k ops)."""

    name: str
    figures: dict[str, tuple[float, float, float]] = field(default_factory=dict)


def timed_op(run: MetaRun, label: str, count: int, fn: Callable[[], object],
             server: Callable[[], float]) -> None:
    c0, s0, t0 = own_cpu(), server(), time.perf_counter()
    fn()
    took = time.perf_counter() - t0
    c1, s1 = own_cpu(), server()
    run.figures[label] = (count / took, (c1 - c0) * 1000 / count, (s1 - s0) * 1000 / count)


def in_threads(threads: int, count: int, fn: Callable[[int], object]) -> Callable[[], None]:
    """A callable that runs fn(0..count-1) spread over ``threads`` threads (each takes every threads-th)."""
    def part(j: int) -> None:
        for i in range(j, count, threads):
            fn(i)

    def run() -> None:
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(part, range(threads)))
    return run


def meta_bench(name: str, data: str, a: argparse.Namespace, server: Callable[[], float]) -> MetaRun:
    from core.store import open_store
    run = MetaRun(name)
    payload = os.urandom(1024)
    n, n1 = a.files, max(50, a.files // 4)
    with open_store(data) as s:
        fs = s.fs
        d1, d = fs.mkdir(fs.root, "one").ino, fs.mkdir(fs.root, "many").ino
        timed_op(run, "create 1 KiB, 1 thread", n1,
                 lambda: [fs.write_file(d1, f"f{i}", payload) for i in range(n1)], server)
        timed_op(run, f"create 1 KiB, {a.threads} threads", n,
                 in_threads(a.threads, n, lambda i: fs.write_file(d, f"f{i}", payload)), server)
        inos = [e.ino for e in fs.listdir(d)]
        if len(inos) != n:
            raise RuntimeError(f"{name}: listed {len(inos)} files, not {n}")
        reps = max(1, a.stats // n)
        timed_op(run, "getattr by inode", n * reps,
                 lambda: [fs.getattr(ino) for _ in range(reps) for ino in inos], server)
        timed_op(run, "lookup by name", n * reps,
                 lambda: [fs.lookup(d, f"f{i}") for _ in range(reps) for i in range(n)], server)
        timed_op(run, f"getattr, {a.threads} threads", n * reps,
                 in_threads(a.threads, n * reps, lambda i: fs.getattr(inos[i % n])), server)
        timed_op(run, f"readdir of {n} (entries)", n * a.lists,
                 lambda: [fs.listdir(d) for _ in range(a.lists)], server)
    return run


def part_metadata(base: str, a: argparse.Namespace) -> tuple[MetaRun, MetaRun]:
    from core.store import init_store
    from gateway.cluster.postgres import LocalPostgres
    sq = os.path.join(base, "meta-sqlite")
    init_store(sq, ntargets=3, ec=(2, 1))
    lite = meta_bench("SQLite", sq, a, lambda: 0.0)
    pg = LocalPostgres(os.path.join(base, "meta-pg"))
    try:
        pg.start()
        url = pg.create_database("bench")
        pd = os.path.join(base, "meta-pgstore")
        init_store(pd, ntargets=3, ec=(2, 1), meta_url=url)
        proc = pg.proc
        assert proc is not None
        post = meta_bench("PostgreSQL", pd, a, lambda: cpu_sum(tree_pids(proc.pid)))
    finally:
        with shielded():
            pg.stop()
    return lite, post


def print_metadata(lite: MetaRun, post: MetaRun, a: argparse.Namespace) -> None:
    print(f"\n## 1. Metadata through core.fs ({a.files} files of 1 KiB, inline; durable creates)")
    print(f"{'operation':<30} {'SQLite /s':>11} {'PG /s':>11} {'PG/SQLite':>9}   {'client CPU-s per 1k ops':>24}"
          f"   {'PG server CPU-s/1k':>18}")
    for label, (lv, lc, _) in lite.figures.items():
        pv, pc, ps = post.figures[label]
        print(f"{label:<30} {lv:>11,.0f} {pv:>11,.0f} {pv / lv:>8.2f}x   {lc:>11.3g} / {pc:<11.3g} {ps:>18.3g}")
    print("client CPU: this process (core.fs + the SQLite library / psycopg), SQLite / PostgreSQL", flush=True)


# -- part 2: clusters ---------------------------------------------------------------------------------------

@dataclass
class Phase:
    nodes: int
    name: str
    nbytes: int
    seconds: float
    node_cpu: list[float]
    pg_cpu: float
    client_cpu: float
    local_share: float | None = None  # core.fs: share of the file's shards on the worker's node

    @property
    def mbps(self) -> float:
        return self.nbytes / 1e6 / self.seconds

    @property
    def mb_per_cpu(self) -> float:
        return self.nbytes / 1e6 / max(sum(self.node_cpu), 1e-9)


class Meter:
    """CPU of each node's namespace and of PostgreSQL's, between two samples."""

    def __init__(self, cluster: Any, skip: frozenset[int] = frozenset()) -> None:
        self.hosts = [n.host for n in cluster.nodes]
        self.meta = next(h for h in cluster.net.hosts if h.name == "meta")
        self.skip = skip

    def sample(self) -> tuple[list[float], float]:
        return [cpu_sum(h.pids(), self.skip) for h in self.hosts], cpu_sum(self.meta.pids(), self.skip)

    def phase(self, nodes: int, name: str, nbytes: int, fn: Callable[[], object]) -> Phase:
        (n0, p0), c0, t0 = self.sample(), own_cpu(), time.perf_counter()
        fn()
        took = time.perf_counter() - t0
        c1, (n1, p1) = own_cpu(), self.sample()
        return Phase(nodes, name, nbytes, took, [b - a for a, b in zip(n0, n1, strict=True)], p1 - p0, c1 - c0)


def s3_clients(cluster: Any, pool: int) -> list[Any]:
    import boto3
    from botocore.config import Config
    cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                 connect_timeout=10, read_timeout=600, max_pool_connections=pool,
                 request_checksum_calculation="when_required", response_checksum_validation="when_required")
    return [boto3.client("s3", endpoint_url=n.s3, aws_access_key_id=cluster.user["access_key"],
                         aws_secret_access_key=cluster.user["secret_key"], region_name="us-east-1", config=cfg)
            for n in cluster.nodes]


def s3_phases(cluster: Any, a: argparse.Namespace) -> list[Phase]:
    n = len(cluster.nodes)
    clients = s3_clients(cluster, a.clients)
    clients[0].create_bucket(Bucket="bench")
    noise = os.urandom(a.size + a.clients * 64)
    bodies = [noise[i * 64:i * 64 + a.size] for i in range(a.clients)]
    meter = Meter(cluster)

    def put() -> None:
        with ThreadPoolExecutor(a.clients) as ex:
            list(ex.map(lambda i: clients[i % n].put_object(Bucket="bench", Key=f"o{i}", Body=bodies[i]),
                        range(a.clients)))

    def get(shift: int) -> Callable[[], None]:
        def one(i: int) -> None:
            got = clients[(i + shift) % n].get_object(Bucket="bench", Key=f"o{i}")["Body"].read()
            if got != bodies[i]:
                raise RuntimeError(f"GET o{i} from node {(i + shift) % n + 1} gave other bytes than its PUT")

        def run() -> None:
            with ThreadPoolExecutor(a.clients) as ex:
                list(ex.map(one, range(a.clients)))
        return run
    total = a.size * a.clients
    out = [meter.phase(n, "S3 PUT", total, put), meter.phase(n, "S3 GET, writing node", total, get(0))]
    if n > 1:
        out.append(meter.phase(n, "S3 GET, next node", total, get(1)))
    return out


def fs_phase(cluster: Any, name: str, op: str, jobs: list[tuple[int, str]], size: int) -> Phase:
    """One core.fs worker per (node index, file name) in that node's namespace; all start on one 'go'.
    What a worker writes to stderr is printed after the phase, labelled."""
    with contextlib.ExitStack() as stack:
        errs = [stack.enter_context(tempfile.TemporaryFile()) for _ in jobs]
        procs = [cluster.nodes[idx].host.popen([sys.executable, WORKER, cluster.nodes[idx].data, op, fname, str(size)],
                                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, cwd=REPO,
                                               env={**os.environ, "PYTHONPATH": REPO})
                 for (idx, fname), err in zip(jobs, errs, strict=True)]
        results: list[dict[str, float]] = []
        try:
            for p in procs:
                if (line := p.stdout.readline()).strip() != b"ready":
                    raise RuntimeError(f"core.fs worker {op}: {line!r} (exit {p.wait()})")

            def go() -> None:
                for p in procs:
                    p.stdin.write(b"go\n")
                    p.stdin.flush()
                for p in procs:
                    if not (line := p.stdout.readline()):
                        raise RuntimeError(f"core.fs worker {op} ended without a result (exit {p.wait()})")
                    results.append(json.loads(line))
            ph = Meter(cluster, frozenset(p.pid for p in procs)).phase(len(cluster.nodes), name, size * len(jobs), go)
        finally:
            for (idx, _), p, err in zip(jobs, procs, errs, strict=True):
                if len(results) < len(procs):
                    p.kill()
                p.wait(120)
                err.seek(0)
                if text := err.read().decode(errors="replace").strip():
                    print(f"# core.fs worker on n{idx + 1} ({op}, exit {p.returncode}) said: {text[-1500:]}",
                          file=sys.stderr, flush=True)
    if any(p.returncode for p in procs):
        raise RuntimeError(f"core.fs worker {op} exited with {[p.returncode for p in procs]}")
    for (idx, _), r in zip(jobs, results, strict=True):
        ph.node_cpu[idx] += r["cpu"]
    ph.seconds = max(r["seconds"] for r in results)
    ph.local_share = sum(r["local"] for r in results) / len(results)
    return ph


IDLE = "idle (CPU-s in --idle s)"
FS_WRITE, FS_OWN, FS_NEXT = "core.fs write, every node", "core.fs read, own file", "core.fs read, next node's"
FS_SOLO_W, FS_SOLO_R = "core.fs write, n1 alone", "core.fs read, n2 alone"


def fs_phases(cluster: Any, a: argparse.Namespace) -> list[Phase]:
    """Every node at once (aggregate), then (N > 1) one stream alone: on 2 cores, N writers and their target
    servers oversubscribe the CPU, which inflates the CPU-seconds per byte; one stream shows a byte's cost."""
    n, size = len(cluster.nodes), a.fs_size
    out = [fs_phase(cluster, FS_WRITE, "write", [(i, f"fs{i}") for i in range(n)], size),
           fs_phase(cluster, FS_OWN, "read", [(i, f"fs{i}") for i in range(n)], size)]
    if n > 1:
        out += [fs_phase(cluster, FS_NEXT, "read", [(i, f"fs{(i + 1) % n}") for i in range(n)], size),
                fs_phase(cluster, FS_SOLO_W, "write", [(0, "solo")], size),
                fs_phase(cluster, FS_SOLO_R, "read", [(1, "solo")], size)]
    return out


def part_clusters(base: str, a: argparse.Namespace, on_phase: Callable[[str], None]) -> list[Phase]:
    from gateway.cluster.local import LocalCluster
    from gateway.cluster.netns import Net, free_subnet, unique_prefix
    if not Net.usable():
        raise SystemExit("bench/cluster.py: needs root and network namespaces (ip netns) for the cluster part")
    phases: list[Phase] = []
    for n in a.nodes:
        on_phase(f"{n} node(s): start")
        net = Net(unique_prefix("tb"), free_subnet())
        cluster = LocalCluster(os.path.join(base, f"c{n}"), nodes_wanted=n, targets_per_node=3, ec="2+1",
                               protocols=("s3",), s3_workers=1, net=net)
        try:
            cluster.start()
            on_phase(f"{n} node(s): idle")
            phases.append(Meter(cluster).phase(n, IDLE, 0, lambda: time.sleep(a.idle)))
            on_phase(f"{n} node(s): S3")
            phases += s3_phases(cluster, a)
            on_phase(f"{n} node(s): core.fs")
            phases += fs_phases(cluster, a)
        finally:
            with shielded():
                cluster.stop()
                net.close()
    return phases


def print_clusters(phases: list[Phase], a: argparse.Namespace) -> None:
    print(f"\n## 2. Throughput over {', '.join(map(str, a.nodes))} node(s) (2+1, 3 targets per node; S3: "
          f"{a.clients} x {a.size // MiB} MiB; core.fs: one {a.fs_size // MiB} MiB file per stream)")
    print(f"{'nodes':>5} {'phase':<27} {'MB/s':>7} {'MB/s/node':>9} {'node CPU-s':>10} {'MB/node-CPU-s':>13} "
          f"{'CPU-s per node':>23} {'PG CPU-s':>8} {'client':>6} {'local shards':>12}")
    for p in phases:
        per = " ".join(f"{c:.2f}" for c in p.node_cpu)
        share = f"{p.local_share:.0%}" if p.local_share is not None else ""
        rate = f"{p.mbps:>7,.0f} {p.mbps / p.nodes:>9,.0f}" if p.nbytes else f"{'':>7} {'':>9}"
        per_cpu = f"{p.mb_per_cpu:>13,.0f}" if p.nbytes else f"{'':>13}"
        print(f"{p.nodes:>5} {p.name:<27} {rate} {sum(p.node_cpu):>10.2f} {per_cpu} {per:>23} {p.pg_cpu:>8.2f} "
              f"{p.client_cpu:>6.2f} {share:>12}")
    print("client: this process's CPU-s (boto3) for S3; a core.fs worker counts as its node's CPU; local shards: "
          "the share of the file's shards on the worker's node")
    print_cross(phases)


def remote_cost(phases: list[Phase], write: bool) -> tuple[float, float, list[float]] | None:
    """(CPU-s per GB with every shard local, extra CPU-s per GB whose shards are on other nodes), from one
    core.fs stream alone: the 1-node figure (every shard local) and the N-node ones with their local share
    (the mean over the cluster sizes; the third item: each size's)."""
    one, alone = (FS_WRITE, FS_SOLO_W) if write else (FS_OWN, FS_SOLO_R)
    local = next((p for p in phases if p.nodes == 1 and p.name == one), None)
    far = [p for p in phases if p.name == alone and p.local_share is not None and p.local_share < 1]
    if local is None or not far:
        return None
    a = 1000 / local.mb_per_cpu
    extra = [(1000 / p.mb_per_cpu - a) / (1 - (p.local_share or 0)) for p in far]
    return a, sum(extra) / len(extra), extra


def print_cross(phases: list[Phase]) -> None:
    by = {(p.nodes, p.name): p for p in phases}
    print("cross-node read path vs the local one, MB per node-CPU-s (1 node: every shard local):")
    for proto, names in (("S3 GET", ("S3 GET, writing node", "S3 GET, next node")),
                         ("core.fs, 1 stream", (FS_OWN, FS_SOLO_R))):
        cells = []
        for (n, name), p in sorted(by.items(), key=lambda kv: (kv[0][0], kv[0][1] not in names[:1])):
            if name in names and (n == 1 or name != FS_OWN or proto == "S3 GET"):
                where = "" if p.local_share is None else f" ({p.local_share:.0%} local)"
                cells.append(f"{n} node{'s' if n > 1 else ''}, {name.split(', ')[-1]}{where}: {p.mb_per_cpu:,.0f}")
        print(f"  {proto:<18} " + "; ".join(cells))
    for write in (False, True):
        fit = remote_cost(phases, write)
        if fit:
            each = ", ".join(f"{x:.2f}" for x in fit[2])
            print(f"  core.fs {'write' if write else 'read'}, 1 stream: {fit[0]:.2f} CPU-s per GB with every shard "
                  f"local, +{fit[1]:.2f} CPU-s per GB of shards on other nodes (both ends together; mean of {each})",
                  flush=True)


# -- part 3: the paper estimate ---------------------------------------------------------------------------------

def ec_for(nodes: int) -> tuple[int, int]:
    from core.cluster.members import pick_geometry
    return pick_geometry(nodes, nodes * 3)


def per_gb_figures(phases: list[Phase], nodes: int) -> dict[str, tuple[float, str]]:
    """CPU-s per client GB for each estimated operation at ``nodes`` nodes, and where the figure comes from.

    With the remote costs measured (:func:`remote_cost`): the 1-node figure (every shard local) plus the extra
    cost of one stream's remote shards times the share a node does not hold ((N-1)/N); the S3 figures take the
    core.fs extra on top of their 1-node ones.  Without: the figure measured at the largest cluster."""
    big = max(p.nodes for p in phases)
    at = {(p.nodes, p.name): p for p in phases}
    far = 1 - 1 / nodes
    out: dict[str, tuple[float, str]] = {}
    for op, one, names, write in (("S3 PUT", "S3 PUT", ("S3 PUT",), True),
                                  ("S3 GET", "S3 GET, writing node", ("S3 GET, next node",), False),
                                  ("core.fs write", FS_WRITE, (FS_SOLO_W, FS_WRITE), True),
                                  ("core.fs read", FS_OWN, (FS_SOLO_R, FS_OWN), False)):
        fit, base = remote_cost(phases, write), at.get((1, one))
        if fit and base:
            out[op] = (1000 / base.mb_per_cpu + fit[1] * far, f"1 node + {fit[1]:.2f} x {far:.0%} remote")
            continue
        p = next((at[(big, x)] for x in names if (big, x) in at), None)
        if p is not None:
            out[op] = (1000 / p.mb_per_cpu, f"{big} nodes, {p.name}")
    return out


def estimate(phases: list[Phase], post: MetaRun | None, a: argparse.Namespace) -> None:
    cores = a.node_cores * a.cpu_share
    print("\n## 3. Paper estimate for 16 and 144 nodes")
    print(f"assumed per node: {a.node_cores} cores, {a.cpu_share:.0%} of them for Tessera's data path, scaling "
          f"linearly (one S3 worker / one core.fs stream per core); NIC {a.nic_gbs} GB/s each way; disks "
          f"{a.disk_write_gbs} GB/s write, {a.disk_read_gbs} GB/s read; CPU per client byte as measured here (2+1) "
          f"whatever the geometry; clients spread evenly over the nodes; healthy reads fetch data cells only")
    if phases:
        print(f"{'nodes':>5} {'geometry':>8} {'op (GB/s)':<14} {'CPU bound':>9} {'NIC bound':>9} {'disk bound':>10} "
              f"{'per node':>8} {'aggregate':>9}  {'limited by':<10} CPU-s/GB from")
    for n in (16, 144) if phases else ():
        k, m = ec_for(n)
        r, far = (k + m) / k, (n - 1) / n
        for op, (cpu_gb, src) in per_gb_figures(phases, n).items():
            write = op in ("S3 PUT", "core.fs write")
            cpu = cores / cpu_gb
            # a write brings B from the client and r*B of cells, (n-1)/n of them to or from other nodes;
            # a healthy read sends B to the client and fetches the (n-1)/n of its data cells held elsewhere
            nic = a.nic_gbs / (1 + r * far) if write else a.nic_gbs / (1 + far)
            disk = a.disk_write_gbs / r if write else a.disk_read_gbs
            per = min(cpu, nic, disk)
            what = "CPU" if per == cpu else "NIC" if per == nic else "disks"
            print(f"{n:>5} {f'{k}+{m}':>8} {op:<14} {cpu:>9.1f} {nic:>9.1f} {disk:>10.1f} {per:>8.1f} "
                  f"{per * n:>9,.0f}  {what:<10} {cpu_gb:.2f} ({src})")
    if post is not None:
        meta_estimate(post, a)


def meta_estimate(post: MetaRun, a: argparse.Namespace) -> None:
    print(f"metadata on one PostgreSQL primary with {a.pg_cores} cores, {a.cpu_share:.0%} usable, scaling "
          f"linearly from the PG CPU-s per op measured here; nodes issue ops at their cores / client CPU-s per op "
          f"(all reads on the primary: PgMeta does not read from standbys)")
    ops = [(f"create 1 KiB, {a.threads} threads", "creates"), (f"getattr, {a.threads} threads", "getattrs")]
    for n in (16, 144):
        cells = []
        for label, word in ops:
            _, client_k, server_k = post.figures[label]
            primary = a.pg_cores * a.cpu_share * 1000 / max(server_k, 1e-9)
            issued = n * a.node_cores * a.cpu_share * 1000 / max(client_k, 1e-9)
            lim = "PostgreSQL" if primary < issued else "the nodes"
            got = min(primary, issued)
            cells.append(f"{got:,.0f} {word}/s, {got / n:,.0f} per node (nodes could issue {issued:,.0f}, the "
                         f"primary serves {primary:,.0f}: {lim})")
        print(f"{n:>5} nodes: " + "; ".join(cells))


# -- the run ----------------------------------------------------------------------------------------------------

def parse_size(text: str) -> int:
    """Bytes from ``64M``, ``1G`` or a plain number.

    >>> parse_size("64M"), parse_size("1G")
    (67108864, 1073741824)
    """
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * mult


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="a smoke run (< 2 min): small sizes, few files")
    ap.add_argument("--nodes", default="1,2,4", help="cluster sizes (default 1,2,4)")
    ap.add_argument("--files", type=int, default=2000, help="files created in one directory (default 2000)")
    ap.add_argument("--threads", type=int, default=8, help="threads for the threaded creates (default 8)")
    ap.add_argument("--stats", type=int, default=20000, help="getattr/lookup calls per figure (default 20000)")
    ap.add_argument("--lists", type=int, default=5, help="readdir passes (default 5)")
    ap.add_argument("--idle", type=float, default=3.0, help="seconds of idle CPU measured per cluster (default 3)")
    ap.add_argument("--size", type=parse_size, default=64 * MiB, help="S3 object size (default 64M)")
    ap.add_argument("--clients", type=int, default=4, help="concurrent S3 clients, one object each (default 4)")
    ap.add_argument("--fs-size", type=parse_size, default=256 * MiB, help="core.fs file per node (default 256M)")
    ap.add_argument("--skip-meta", action="store_true", help="no metadata part")
    ap.add_argument("--skip-cluster", action="store_true", help="no cluster part")
    g = ap.add_argument_group("paper estimate assumptions")
    g.add_argument("--node-cores", type=int, default=32, help="cores per node (default 32)")
    g.add_argument("--cpu-share", type=float, default=0.75, help="share of them for Tessera (default 0.75)")
    g.add_argument("--nic-gbs", type=float, default=5.5, help="NIC GB/s each way (default 5.5: 2x25 GbE)")
    g.add_argument("--disk-write-gbs", type=float, default=16.0, help="disks' write GB/s (default 16: 8 NVMe)")
    g.add_argument("--disk-read-gbs", type=float, default=24.0, help="disks' read GB/s (default 24: 8 NVMe)")
    g.add_argument("--pg-cores", type=int, default=32, help="cores of the PostgreSQL primary (default 32)")
    a = ap.parse_args(argv)
    if a.quick:
        a.files, a.stats, a.lists, a.size, a.clients, a.fs_size, a.idle = 200, 2000, 2, 8 * MiB, 2, 16 * MiB, 1.0
    a.nodes = [int(x) for x in str(a.nodes).split(",") if x.strip()]
    a.fs_size -= a.fs_size % BLOCK
    if a.fs_size <= 0:
        ap.error(f"--fs-size must be at least {BLOCK // MiB} MiB")
    return a


def header(a: argparse.Namespace) -> None:
    rev = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True,
                         text=True).stdout.strip()
    load = os.getloadavg()
    print(f"# bench/cluster.py at {rev or '?'}: {os.cpu_count()} cores, load {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}; command: {' '.join([os.path.relpath(sys.executable, REPO), *sys.argv])}", flush=True)


def main() -> None:
    a = parse()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # tear the clusters down on the way out
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    base = tempfile.mkdtemp(prefix="tessera-clusterbench-", dir="/tmp")  # PostgreSQL's user must reach it
    os.chmod(base, 0o755)
    lite = post = None
    phases: list[Phase] = []
    started = time.monotonic()
    try:
        header(a)
        progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                            console=Console(stderr=True), disable=not sys.stderr.isatty())
        with progress:
            task = progress.add_task("metadata: SQLite, then PostgreSQL")
            if not a.skip_meta:
                lite, post = part_metadata(base, a)
            if not a.skip_cluster:
                phases = part_clusters(base, a, lambda d: progress.update(task, description=d))
        if lite is not None and post is not None:
            print_metadata(lite, post, a)
        if phases:
            print_clusters(phases, a)
        if phases or post is not None:
            estimate(phases, post, a)
        load = os.getloadavg()
        print(f"# took {time.monotonic() - started:.0f} s; load at the end: {load[0]:.2f} {load[1]:.2f} "
              f"{load[2]:.2f} (this run's own work included)")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
