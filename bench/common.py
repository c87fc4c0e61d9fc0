"""What bench/smb.py and bench/nfs.py both do: the Tessera server under test, ports, CPU, tmpfs, stopping.

    tessera = init_tessera(base, uid, gid, ["user", "add", ...])  # `tessera init`, setup commands, /bench
    port = free_port()
    proc, log = serve_tessera(base, tessera, "smb", YAML_HEAD + "...")  # writes tessera.yaml, starts serve
    ... (wait for the port)
    stop_process(proc)

* ``YAML_HEAD``: the start of both benchmarks' tessera.yaml (no admin API, warnings only, no S3);
* ``add_kernel_args(ap, mib_help)``: the ``--kernel*`` options of both benchmarks;
* ``free_port``, ``cpu_children``, ``prefault``, ``stop_process``: see each.

bench/ is not a package: its scripts put their own directory and the repository on sys.path and import
this as ``common``.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import socket
import subprocess
import sys

from core.store import open_store

MiB = 1 << 20
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

YAML_HEAD = """\
admin:
  enabled: false
log:
  level: warning
s3:
  enabled: false
"""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 just now.

    >>> 0 < free_port() < 65536
    True
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_children() -> float:
    """User + system CPU seconds of the children this process has reaped."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def prefault(out_dir: str, size: int) -> None:
    """Fill and free ``size`` bytes of the output tmpfs first, so each server's timed read finds its pages
    as warm as the other's: the first 1 GiB written into a fresh tmpfs cost the client 1.5 s of system time
    against 0.5 s the next time (measured), which charged whichever server ran first."""
    path = os.path.join(out_dir, "prefault")
    chunk = b"\0" * MiB
    with open(path, "wb") as f:
        for _ in range((size + MiB - 1) // MiB):
            f.write(chunk)
    os.unlink(path)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``: a server this script started."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def init_tessera(base: str, uid: int, gid: int, *setup: list[str]) -> list[str]:
    """``tessera init`` a store in ``base``/tessera, run each ``setup`` command of the CLI on it, make /bench
    (mode 755, ``uid``:``gid``); the CLI's command line for that store."""
    data = os.path.join(base, "tessera")
    tessera = [sys.executable, "-m", "gateway.cli", "--data", data]
    subprocess.run([*tessera, "init"], check=True, capture_output=True, cwd=REPO)
    for args in setup:
        subprocess.run([*tessera, *args], check=True, capture_output=True, cwd=REPO)
    with open_store(data) as st:
        st.fs.makedirs("/bench", mode=0o755, uid=uid, gid=gid)
    return tessera


def serve_tessera(base: str, tessera: list[str], role: str, config: str) -> tuple[subprocess.Popen[bytes], str]:
    """Write ``config`` as the store's tessera.yaml and start ``tessera serve --role ROLE`` (output to
    ``base``/tessera.log); the process and its log (the caller waits for its port)."""
    with open(os.path.join(base, "tessera", "tessera.yaml"), "w") as f:
        f.write(config)
    log = os.path.join(base, "tessera.log")
    with open(log, "wb") as out:
        proc = subprocess.Popen([*tessera, "serve", "--role", role], cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    return proc, log


def add_kernel_args(ap: argparse.ArgumentParser, mib_help: str = "kernel dd size (default 128)") -> None:
    """The ``--kernel``, ``--kernel-mib``, ``--kernel-files`` and ``--kernel-limit-s`` options.

    >>> ap = argparse.ArgumentParser()
    >>> add_kernel_args(ap)
    >>> a = ap.parse_args(["--kernel-mib", "16"])
    >>> a.kernel, a.kernel_mib, a.kernel_files, a.kernel_limit_s
    (False, 16, 1000, 1200)
    """
    ap.add_argument("--kernel", action="store_true", help="also through the kernel client in a qemu guest")
    ap.add_argument("--kernel-mib", type=int, default=128, help=mib_help)
    ap.add_argument("--kernel-files", type=int, default=1000, help="kernel create loop (default 1000)")
    ap.add_argument("--kernel-limit-s", type=float, default=1200, help="the guest's time limit (default 1200)")
