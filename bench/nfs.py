"""NFSv3 benchmarks: Tessera's NFS server beside NFS-Ganesha 4.3, same disk, same clients, one run.

    sudo .venv/bin/python bench/nfs.py [--size-mib 1024] [--files 10000] [--getattrs 100000]
                                       [--entries 10000] [--conns 4] [--window 16] [--kernel] [--quick]
                                       [--only tessera|ganesha]

Tessera: ``tessera serve --role nfs`` over a store made by ``tessera init`` (6 directory targets, 4+2)
under a temporary directory in the current directory.  Ganesha: the VFS FSAL exporting a plain directory
beside it (bench/ganesha.py; its rpcbind needs the private network namespace this script re-executes
itself in).  Both listen on 127.0.0.1 with TCP only; every client passes the ports (no portmapper).

Figures, each for both servers back to back:

* ``nfs-cp`` (libnfs-utils) of a ``--size-mib`` file of random bytes in (from the page cache) and out
  (into a tmpfs, the file still warm on the server side; the bytes are compared after), MB/s of wall time;
* 4 KiB files created per second: CREATE (GUARDED) + one FILE_SYNC WRITE each;
* GETATTR per second over those files' handles;
* listing a directory of ``--entries`` empty files with READDIRPLUS (dircount 8 KiB, maxcount 64 KiB),
  the best of ``--lists`` (3) listings;
* ``--kernel``: the same through the Linux kernel client in a qemu (TCG) guest (bench/nfs_kernel.py).

The RPC figures use bench/nfs_client.py, a small pipelining client written from the RFCs that shares no
code with either server: ``--conns`` TCP connections in threads, ``--window`` calls in flight on each.
The client's CPU seconds are printed with each figure, so a client-bound figure shows.
``--quick`` is a smoke run (small defaults, ~5 s; ~25 s with ``--kernel``) that still checks every
figure end to end: bytes compared after nfs-cp, entry counts, FILE_SYNC honoured.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ganesha as gmod  # bench/ is not a package: its own directory is on sys.path
import nfs_client as nc
from common import REPO, YAML_HEAD, MiB, add_kernel_args, cpu_children, free_port, init_tessera, prefault, serve_tessera


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def settle() -> None:
    """Start each timed phase with dirty pages written back."""
    os.sync()


@dataclass
class Server:
    """One NFS server under test, as the clients see it."""

    name: str
    port: int
    mnt_port: int
    path: str                         # the MOUNT path
    figures: dict[str, tuple[float, float]] = field(default_factory=dict)   # figure -> (value, client CPU s)

    def url(self, rel: str = "", uid: int = 0, gid: int = 0) -> str:
        sep = "/" if rel else ""
        return (f"nfs://127.0.0.1{self.path.rstrip('/')}{sep}{rel}?nfsport={self.port}&mountport={self.mnt_port}"
                f"&uid={uid}&gid={gid}")


# -- Tessera ------------------------------------------------------------------------------------------------

TESSERA_YAML = YAML_HEAD + """\
nfs:
  enabled: true
  listen: 127.0.0.1:{port}
  udp: false
  rpcbind: false
  workers: {workers}
  grace_s: 0
  exports:
    - path: /bench
      clients: [127.0.0.1]
      access: rw
      squash: none
maintenance:
  gc_interval_s: 0
"""


def start_tessera(base: str, uid: int, gid: int, workers: int) -> tuple[subprocess.Popen[bytes], Server]:
    tessera = init_tessera(base, uid, gid)
    port = free_port()
    proc, log = serve_tessera(base, tessera, "nfs", TESSERA_YAML.format(port=port, workers=workers))
    gmod.wait_port(port, proc, "tessera serve --role nfs", timeout=60, log=log)
    return proc, Server("Tessera", port, port, "/bench")


def start_ganesha(base: str, uid: int, gid: int) -> tuple[gmod.Ganesha, Server]:
    export = os.path.join(base, "ganesha-export")
    os.mkdir(export, 0o755)
    os.chown(export, uid, gid)
    g = gmod.Ganesha(export, os.path.join(base, "ganesha"), free_port(), free_port())
    os.makedirs(g.workdir)
    g.start()
    return g, Server("Ganesha", g.port, g.mnt_port, g.path)


# -- the phases ---------------------------------------------------------------------------------------------

def nfs_cp(src: str, dst: str) -> int:
    r = subprocess.run(["nfs-cp", src, dst], capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"nfs-cp {src} {dst} failed ({r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
    words = r.stdout.split()
    return int(words[1]) if len(words) >= 3 and words[0] == "copied" else -1


def bench_cp(srv: Server, src: str, out_dir: str, size: int, uid: int, gid: int) -> None:
    """nfs-cp in, then out into ``out_dir`` (a tmpfs: nfs-cp cannot write to /dev/null), bytes compared."""
    settle()
    c0, t0 = cpu_children(), time.perf_counter()
    n = nfs_cp(src, srv.url("big.bin", uid, gid))
    t_in, c_in = time.perf_counter() - t0, cpu_children() - c0
    if n not in (size, -1):
        raise RuntimeError(f"{srv.name}: nfs-cp in copied {n} bytes, not {size}")
    prefault(out_dir, size)
    settle()
    dst = os.path.join(out_dir, "big.bin")
    c0, t0 = cpu_children(), time.perf_counter()
    n = nfs_cp(srv.url("big.bin", uid, gid), dst)
    t_out, c_out = time.perf_counter() - t0, cpu_children() - c0
    same = filecmp.cmp(src, dst, shallow=False)
    os.unlink(dst)
    if n not in (size, -1) or not same:
        raise RuntimeError(f"{srv.name}: nfs-cp in and out gave other bytes ({n} copied out, {size} in)")
    srv.figures["cp_in"] = (size / 1e6 / t_in, c_in)
    srv.figures["cp_out"] = (size / 1e6 / t_out, c_out)


def parallel(cl: nc.Client, n: int, conns: int, fn: Callable[[nc.Conn, range], None]) -> tuple[float, float]:
    """Run ``fn(conn, part)`` over ``conns`` connections, the items split evenly; (seconds, client CPU s).

    Connections are opened before the clock starts; the first failure is raised after all threads end."""
    parts = [range(i * n // conns, (i + 1) * n // conns) for i in range(conns)]
    cs = [cl.connect() for _ in parts]
    errors: list[BaseException] = []
    start = threading.Barrier(conns + 1)

    def work(c: nc.Conn, part: range) -> None:
        start.wait()
        try:
            fn(c, part)
        except BaseException as e:
            errors.append(e)
    threads = [threading.Thread(target=work, args=(c, p)) for c, p in zip(cs, parts, strict=True)]
    for t in threads:
        t.start()
    settle()
    c0, t0 = cpu_self(), time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    took, cpu = time.perf_counter() - t0, cpu_self() - c0
    for c in cs:
        c.close()
    if errors:
        raise errors[0]
    return took, cpu


def windows(part: range, window: int) -> list[range]:
    """Split ``part`` into windows.

    >>> windows(range(3, 10), 3)
    [range(3, 6), range(6, 9), range(9, 10)]
    """
    return [range(i, min(i + window, part.stop)) for i in range(part.start, part.stop, window)]


def bench_rpc(srv: Server, cl: nc.Client, a: argparse.Namespace) -> None:
    root = cl.mount(srv.path)
    c = cl.connect()
    small_dir = cl.mkdir(c, root, "small")
    list_dir = cl.mkdir(c, root, "list")
    c.close()
    data = os.urandom(4096)
    fhs: list[bytes] = [b""] * a.files

    def creates(c: nc.Conn, part: range) -> None:
        for w in windows(part, a.window):
            new = cl.create(c, small_dir, [f"f{i}" for i in w])
            cl.write(c, new, data, nc.FILE_SYNC)
            fhs[w.start:w.stop] = new
    took, cpu = parallel(cl, a.files, a.conns, creates)
    srv.figures["create"] = (a.files / took, cpu)

    def getattrs(c: nc.Conn, part: range) -> None:
        for w in windows(part, a.window):
            cl.getattr(c, [fhs[i % a.files] for i in w])
    took, cpu = parallel(cl, a.getattrs, a.conns, getattrs)
    srv.figures["getattr"] = (a.getattrs / took, cpu)

    def empties(c: nc.Conn, part: range) -> None:
        for w in windows(part, a.window):
            cl.create(c, list_dir, [f"entry-{i:06d}" for i in w])
    parallel(cl, a.entries, a.conns, empties)
    best, best_cpu = float("inf"), 0.0
    c = cl.connect()
    for _ in range(a.lists):
        c0, t0 = cpu_self(), time.perf_counter()
        n, _calls = cl.readdirplus(c, list_dir)
        took, cpu = time.perf_counter() - t0, cpu_self() - c0
        if n != a.entries:
            raise RuntimeError(f"{srv.name}: READDIRPLUS listed {n} entries, not {a.entries}")
        if took < best:
            best, best_cpu = took, cpu
    c.close()
    srv.figures["list"] = (a.entries / best, best_cpu)


# -- output -------------------------------------------------------------------------------------------------

FIGURES = [  # key, label, unit
    ("cp_in", "nfs-cp {size} MiB in", "MB/s"),
    ("cp_out", "nfs-cp {size} MiB out", "MB/s"),
    ("create", "4 KiB files created (CREATE+WRITE FILE_SYNC)", "/s"),
    ("getattr", "GETATTR", "/s"),
    ("list", "READDIRPLUS listing, {entries} entries", "entries/s"),
    ("k_dd_in", "kernel: dd {kmib} MiB in (conv=fsync)", "MB/s"),
    ("k_dd_out", "kernel: dd {kmib} MiB out (caches dropped)", "MB/s"),
    ("k_create", "kernel: 4 KiB files created (sh loop)", "/s"),
    ("k_list", "kernel: ls -l of the created files", "entries/s"),
]


def fmt(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def table(t: Server, g: Server, a: argparse.Namespace) -> None:
    print(f"{'figure':<48} {'Tessera':>18} {'Ganesha':>18} {'ratio':>7} {'client CPU s (T/G)':>20}")
    for key, label, unit in FIGURES:
        if key not in t.figures or key not in g.figures:
            continue
        (tv, tc), (gv, gc) = t.figures[key], g.figures[key]
        name = label.format(size=a.size_mib, entries=a.entries, kmib=a.kernel_mib)
        ratio = f"{tv / gv:.2f}x" if gv else "-"
        cpu = f"{tc:.2f} / {gc:.2f}" if tc >= 0 else "(in the guest)"
        print(f"{name:<48} {fmt(tv) + ' ' + unit:>18} {fmt(gv) + ' ' + unit:>18} {ratio:>7} "
              f"{cpu:>20}", flush=True)
    print("ratio = Tessera / Ganesha (higher is better for Tessera; the goal is >= 1.0x on every figure)")


def header(a: argparse.Namespace) -> None:
    rev = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True,
                         text=True).stdout.strip()
    print(f"# bench/nfs.py at {rev or '?'}: {os.cpu_count()} cores; "
          f"command: {' '.join([os.path.relpath(sys.executable, REPO), *sys.argv])}")
    print(f"# same clients for both servers: nfs-cp (libnfs-utils) and bench/nfs_client.py "
          f"({a.conns} TCP connections x {a.window} calls in flight, AUTH_SYS uid {a.uid} gid {a.gid})")
    print("# Tessera: tessera serve --role nfs, 4+2 over 6 directory targets; Ganesha 4.3: VFS FSAL on a plain "
          "directory, Dir_Chunk = 0, Attr_Expiration_Time = 0; same disk, 127.0.0.1, TCP", flush=True)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--size-mib", type=int, default=1024, help="nfs-cp file size (default 1024)")
    ap.add_argument("--files", type=int, default=10000, help="4 KiB files to create (default 10000)")
    ap.add_argument("--getattrs", type=int, default=100000, help="GETATTR calls (default 100000)")
    ap.add_argument("--entries", type=int, default=10000, help="directory size to list (default 10000)")
    ap.add_argument("--lists", type=int, default=3, help="listings of it, best kept (default 3)")
    ap.add_argument("--conns", type=int, default=4, help="client TCP connections (default 4)")
    ap.add_argument("--window", type=int, default=16, help="calls in flight per connection (default 16)")
    ap.add_argument("--workers", type=int, default=8, help="Tessera's nfs.workers (default 8)")
    ap.add_argument("--uid", type=int, default=1000, help="AUTH_SYS uid, owner of both export roots")
    ap.add_argument("--gid", type=int, default=1000)
    add_kernel_args(ap)
    ap.add_argument("--quick", action="store_true", help="a smoke run with small defaults: 16 MiB, 300 files, "
                    "2000 GETATTRs, 1000 entries, kernel 16 MiB and 100 files (options given still apply)")
    ap.add_argument("--only", choices=["tessera", "ganesha", "both"], default="both")
    if "--quick" in (sys.argv[1:] if argv is None else argv):
        ap.set_defaults(size_mib=16, files=300, getattrs=2000, entries=1000, lists=2, kernel_mib=16,
                        kernel_files=100)
    a = ap.parse_args(argv)
    return a


def main() -> None:
    a = parse()
    gmod.enter_sandbox()
    base = tempfile.mkdtemp(prefix="tessera-nfsbench-", dir=os.getcwd())
    procs: list[subprocess.Popen[bytes]] = []
    g: gmod.Ganesha | None = None
    try:
        procs.append(gmod.start_sandbox(base))
        header(a)
        servers: list[Server] = []
        if a.only in ("tessera", "both"):
            proc, t = start_tessera(base, a.uid, a.gid, a.workers)
            procs.append(proc)
            servers.append(t)
        if a.only in ("ganesha", "both"):
            g, gs = start_ganesha(base, a.uid, a.gid)
            servers.append(gs)
        src = os.path.join(base, "src.bin")
        with open(src, "wb") as f:
            for _ in range(a.size_mib):
                f.write(os.urandom(MiB))
        out_dir = os.path.join(base, "out")
        os.mkdir(out_dir)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={a.size_mib + 64}m", "bench-out", out_dir], check=True)
        cred = nc.Cred(a.uid, a.gid, (a.gid,))
        for srv in servers:
            print(f"# {srv.name}: nfs-cp in/out", flush=True)
            bench_cp(srv, src, out_dir, a.size_mib * MiB, a.uid, a.gid)
        for srv in servers:
            print(f"# {srv.name}: creates, GETATTR, READDIRPLUS", flush=True)
            bench_rpc(srv, nc.Client("127.0.0.1", srv.port, srv.mnt_port, cred), a)
        if a.kernel:
            import nfs_kernel
            nfs_kernel.run(servers, a, base)
        if len(servers) == 2:
            table(servers[0], servers[1], a)
        else:
            for srv in servers:
                print(srv.name, {k: (round(v, 1), round(c, 2)) for k, (v, c) in srv.figures.items()})
    finally:
        if g is not None:
            g.stop()
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
        out_dir = os.path.join(base, "out")
        if os.path.ismount(out_dir):
            subprocess.run(["umount", out_dir], check=False)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
