"""SMB benchmarks: Tessera's SMB server beside Samba's smbd, same disk, same client, one run.

    sudo .venv/bin/python bench/smb.py [--size 1G] [--files 5000] [--lists 3] [--kernel]
                                       [--only tessera|samba|both]

Tessera: ``tessera serve --role smb`` over a store made by ``tessera init`` (6 directory targets, 4+2)
under a temporary directory in the current directory, sharing ``/bench`` as ``bench``.  Samba: smbd 4.17
with a private configuration sharing a plain directory beside it (tests/kvm/samba.py, shared with the
kernel-client test's reference run).  Both listen on
127.0.0.1, require signing, do not encrypt, and know the user alice (password alice-pw).

Figures, each for both servers back to back, all through Debian's ``smbclient`` (SMB 3.1.1, signed):

* ``put`` of a ``--size`` file of random bytes (from the page cache) and ``get`` of it back into a tmpfs
  (/dev/shm, pre-faulted before each timed get; the bytes are compared after), MB/s of wall time;
* 4 KiB files created per second: ``mput`` of ``--files`` local files into a new directory (one CREATE,
  WRITE, CLOSE each, in sequence);
* listing that directory with ``ls`` (QUERY_DIRECTORY), seconds, the best of ``--lists`` (3);
* ``--kernel``: the same through the Linux kernel client (cifs.ko) in a qemu (TCG) guest
  (bench/smb_kernel.py).

Every figure is the wall time of one smbclient run, its connection and logon included (tens of
milliseconds, the same for both servers). The client's and the server's CPU seconds are printed with each
figure (the server's from /proc: Tessera's process; smbd and the per-connection children it reaped).
Nothing is recorded: copy what it prints into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import (
    REPO,
    YAML_HEAD,
    MiB,
    add_kernel_args,
    cpu_children,
    free_port,
    init_tessera,
    prefault,
    serve_tessera,
    stop_process,
)
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tests.kvm import samba as smod

USER, PASSWORD, UID = "alice", "alice-pw", 1000
TICK = os.sysconf("SC_CLK_TCK")


def parse_size(text: str) -> int:
    """Bytes from ``1G``, ``256M``, ``64K`` or a plain number (binary units).

    >>> parse_size("1G"), parse_size("256M"), parse_size("4096")
    (1073741824, 268435456, 4096)
    """
    m = re.fullmatch(r"(\d+)([KMG]?)i?B?", text.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1G, 256M)")
    return int(m[1]) << {"": 0, "K": 10, "M": 20, "G": 30}[m[2].upper()]


def _stat(pid: int | str) -> list[str]:
    """/proc/PID/stat after the command name (fields 3...), or [] for a process gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return []


def proc_cpu(pid: int, group: bool = False) -> float:
    """CPU seconds of ``pid`` and of the children it has reaped (/proc/PID/stat fields 14-17); with
    ``group``, also of every live (or not yet reaped) process of its process group (smbd's connection
    children)."""
    own = _stat(pid)
    total = sum(int(x) for x in own[11:15]) if own else 0
    if group:
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != pid:
                st = _stat(entry)
                if st and int(st[2]) == pid:      # field 5: the process group
                    total += sum(int(x) for x in st[11:13])
    return total / TICK


@dataclass
class Server:
    """One SMB server under test, as the client sees it."""

    name: str
    port: int
    share: str
    pid: int
    group: bool                       # count the server's process group (smbd forks per connection)
    figures: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # value, client CPU, server CPU


# -- the servers --------------------------------------------------------------------------------------------

TESSERA_YAML = YAML_HEAD + """\
nfs:
  enabled: false
smb:
  enabled: true
  listen: 127.0.0.1:{port}
  workers: {workers}
  shares:
    - name: bench
      path: /bench
maintenance:
  gc_interval_s: 0
"""


def start_tessera(base: str, workers: int) -> tuple[subprocess.Popen[bytes], Server]:
    tessera = init_tessera(base, UID, UID, ["user", "add", USER, "--password", PASSWORD, "--uid", str(UID),
                                            "--gid", str(UID), "--no-key"])
    port = free_port()
    proc, log = serve_tessera(base, tessera, "smb", TESSERA_YAML.format(port=port, workers=workers))
    wait_port(port, proc, log)
    return proc, Server("Tessera", port, "bench", proc.pid, False)


def wait_port(port: int, proc: subprocess.Popen[bytes], log: str, timeout: float = 60.0) -> None:
    import socket
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            with open(log, errors="replace") as f:
                raise RuntimeError(f"tessera serve --role smb exited with {proc.returncode}:\n{f.read()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"tessera serve --role smb did not listen on {port} within {timeout:.0f} s") \
                    from None
            time.sleep(0.2)


def start_samba(base: str) -> tuple[smod.Samba, Server]:
    share_dir = os.path.join(base, "samba-share")
    os.mkdir(share_dir, 0o755)
    s = smod.Samba(share_dir, os.path.join(base, "samba"), free_port(), user=USER, password=PASSWORD)
    s.setup()
    s.start()
    assert s.proc is not None
    return s, Server("Samba", s.port, s.share, s.proc.pid, True)


# -- the client ---------------------------------------------------------------------------------------------

def smbclient(srv: Server, commands: str, timeout: float = 3600) -> str:
    """Run smbclient's ``commands`` against ``srv`` (no smb.conf, SMB 3.1.1); its output, or RuntimeError."""
    cmd = ["smbclient", f"//127.0.0.1/{srv.share}", "-p", str(srv.port), "-U", f"{USER}%{PASSWORD}",
           "-s", "/dev/null", "--option=client min protocol=SMB3_11", "--option=client max protocol=SMB3_11",
           "-c", commands]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    failed = re.search(r"NT_STATUS_\w+", r.stdout + r.stderr)
    if r.returncode != 0 or failed:
        raise RuntimeError(f"{srv.name}: smbclient -c {commands!r} failed ({r.returncode}):\n"
                           f"{(r.stderr + r.stdout)[-2000:]}")
    return r.stdout


def timed(srv: Server, commands: str) -> tuple[float, float, float, str]:
    """(seconds, client CPU s, server CPU s, output) of one smbclient run, dirty pages written back first."""
    os.sync()
    c0, s0, t0 = cpu_children(), proc_cpu(srv.pid, srv.group), time.perf_counter()
    out = smbclient(srv, commands)
    took = time.perf_counter() - t0
    time.sleep(0.2)     # smbd's connection child ends after the client; the parent reaps it
    return took, cpu_children() - c0, proc_cpu(srv.pid, srv.group) - s0, out


def bench_transfer(srv: Server, src: str, out_dir: str, size: int) -> None:
    took, cc, sc, _ = timed(srv, f'put "{src}" big.bin')
    srv.figures["put"] = (size / 1e6 / took, cc, sc)
    dst = os.path.join(out_dir, f"{srv.name}.bin")
    prefault(out_dir, size)
    took, cc, sc, _ = timed(srv, f'get big.bin "{dst}"')
    same = os.path.getsize(dst) == size and filecmp.cmp(src, dst, shallow=False)
    os.unlink(dst)
    if not same:
        raise RuntimeError(f"{srv.name}: get gave other bytes than put")
    srv.figures["get"] = (size / 1e6 / took, cc, sc)


def bench_small(srv: Server, local: str, n: int, lists: int) -> None:
    took, cc, sc, _ = timed(srv, f'mkdir small; cd small; lcd "{local}"; prompt OFF; recurse OFF; mput f*')
    srv.figures["create"] = (n / took, cc, sc)
    best: tuple[float, float, float] | None = None
    for _ in range(lists):
        took, cc, sc, out = timed(srv, "cd small; ls")
        seen = len(re.findall(r"^\s+f\d+\s+A?N?\s*\d+", out, re.M))
        if seen != n:
            raise RuntimeError(f"{srv.name}: ls listed {seen} files, not {n}:\n{out[-1000:]}")
        if best is None or took < best[0]:
            best = (took, cc, sc)
    assert best is not None
    srv.figures["list"] = best


# -- output -------------------------------------------------------------------------------------------------

FIGURES = [  # key, label, unit
    ("put", "smbclient put {size}", "MB/s"),
    ("get", "smbclient get {size}", "MB/s"),
    ("create", "4 KiB files created (mput of {files})", "/s"),
    ("list", "ls of {files} files", "s"),
    ("k_dd_in", "kernel: dd {kmib} MiB in (conv=fsync)", "MB/s"),
    ("k_dd_out", "kernel: dd {kmib} MiB out (fresh mount)", "MB/s"),
    ("k_create", "kernel: 4 KiB files created (sh loop)", "/s"),
    ("k_list", "kernel: ls -l of the created files", "s"),
]
LOWER_IS_BETTER = {"list", "k_list"}


def fmt(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:,.2f}" if v < 10 else f"{v:,.1f}"


def human(n: int) -> str:
    return f"{n >> 30} GiB" if n % (1 << 30) == 0 else f"{n >> 20} MiB"


def table(t: Server, s: Server, a: argparse.Namespace) -> None:
    print(f"{'figure':<42} {'Tessera':>14} {'Samba':>14} {'T/S':>7} {'client CPU s':>14} {'server CPU s':>14}")
    for key, label, unit in FIGURES:
        if key not in t.figures or key not in s.figures:
            continue
        (tv, tc, ts), (sv, scc, ss) = t.figures[key], s.figures[key]
        name = label.format(size=human(a.size), files=a.files, kmib=a.kernel_mib)
        ratio = (sv / tv if key in LOWER_IS_BETTER else tv / sv) if tv and sv else 0.0
        cpu = f"{tc:.2f} / {scc:.2f}" if tc >= 0 else "(guest)"
        srv = f"{ts:.2f} / {ss:.2f}" if ts >= 0 else "(guest)"
        print(f"{name:<42} {fmt(tv) + ' ' + unit:>14} {fmt(sv) + ' ' + unit:>14} {ratio:>6.2f}x {cpu:>14} "
              f"{srv:>14}", flush=True)
    print("T/S = how many times Samba's figure Tessera's is, higher is better for Tessera (for times: Samba's "
          "time / Tessera's); CPU columns: Tessera / Samba")
    load = os.getloadavg()
    print(f"# load at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (this run's own work included)")


def header(a: argparse.Namespace) -> None:
    rev = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True,
                         text=True).stdout.strip()
    load = os.getloadavg()
    print(f"# bench/smb.py at {rev or '?'}: {os.cpu_count()} cores, load {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}; command: {' '.join([os.path.relpath(sys.executable, REPO), *sys.argv])}")
    print("# same client for both servers: smbclient (Samba 4.17), SMB 3.1.1, signed, not encrypted, user alice")
    print(f"# Tessera: tessera serve --role smb ({a.workers} workers), 4+2 over 6 directory targets; Samba 4.17 "
          "smbd on a plain directory; same disk, 127.0.0.1", flush=True)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--size", type=parse_size, default=parse_size("1G"), help="put/get file size (default 1G)")
    ap.add_argument("--files", type=int, default=5000, help="4 KiB files created, then listed (default 5000)")
    ap.add_argument("--lists", type=int, default=3, help="listings, best kept (default 3)")
    ap.add_argument("--workers", type=int, default=8, help="Tessera's smb.workers (default 8)")
    add_kernel_args(ap, "kernel dd size in MiB (default 128)")
    ap.add_argument("--only", choices=["tessera", "samba", "both"], default="both")
    return ap.parse_args(argv)


def prepare(base: str, a: argparse.Namespace) -> tuple[str, str, str]:
    """The source file, a directory of ``--files`` 4 KiB files, the output directory (tmpfs)."""
    src = os.path.join(base, "src.bin")
    with open(src, "wb") as f:
        for left in range(a.size, 0, -MiB):
            f.write(os.urandom(min(MiB, left)))
    local = os.path.join(base, "small")
    os.mkdir(local)
    for i in range(a.files):
        with open(os.path.join(local, f"f{i}"), "wb") as f:
            f.write(os.urandom(4096))
    out_dir = tempfile.mkdtemp(prefix="tessera-smbbench-", dir="/dev/shm")
    return src, local, out_dir


def main() -> None:
    a = parse()
    if a.only != "tessera" and smod.missing():
        sys.exit(f"bench/smb.py: Samba cannot run: {smod.missing()} (or --only tessera)")
    if shutil.which("smbclient") is None:
        sys.exit("bench/smb.py: no smbclient (apt-get install smbclient)")
    base = tempfile.mkdtemp(prefix="tessera-smbbench-", dir=os.getcwd())
    os.chmod(base, 0o755)
    procs: list[subprocess.Popen[bytes]] = []
    samba: smod.Samba | None = None
    out_dir = ""
    try:
        header(a)
        servers: list[Server] = []
        if a.only in ("tessera", "both"):
            proc, t = start_tessera(base, a.workers)
            procs.append(proc)
            servers.append(t)
        if a.only in ("samba", "both"):
            samba, s = start_samba(base)
            servers.append(s)
        src, local, out_dir = prepare(base, a)
        phases = [(srv, what) for what in ("put/get", "mput + ls") for srv in servers]
        progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                            TimeElapsedColumn(), console=Console(stderr=True), disable=not sys.stderr.isatty())
        with progress:
            task = progress.add_task("smbclient", total=len(phases))
            for srv, what in phases:
                progress.update(task, description=f"{srv.name}: {what}")
                if what == "put/get":
                    bench_transfer(srv, src, out_dir, a.size)
                else:
                    bench_small(srv, local, a.files, a.lists)
                progress.advance(task)
        if a.kernel:
            import smb_kernel
            smb_kernel.run(servers, a, base, USER, PASSWORD)
        if len(servers) == 2:
            table(servers[0], servers[1], a)
        else:
            for srv in servers:
                print(srv.name, {k: tuple(round(x, 2) for x in v) for k, v in srv.figures.items()})
    finally:
        if samba is not None:
            samba.stop()
        for p in procs:
            stop_process(p, 30.0)
        if out_dir:
            shutil.rmtree(out_dir, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
