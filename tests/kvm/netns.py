"""A private network namespace (loopback only) with its own /run, for a guest and the servers it talks to.

qemu's user networking shows the guest the host's 127.0.0.1 as 10.0.2.2 — the 127.0.0.1 of qemu's own
network namespace. The kernel's NLM client finds the server's lock manager through the portmapper at
10.0.2.2:111, so a test that wants locks needs a portmapper there: starting qemu, the servers and rpcbind in
one private namespace gives them all a 127.0.0.1 of their own, where port 111 (and 2049) are free whatever
the host runs, and nothing is reachable from outside. The namespace also has a private mount namespace with a
tmpfs on /run, so its rpcbind's /run/rpcbind.sock never replaces the host's.

Needs root (unshare/nsenter of net and mount namespaces); ``Sandbox.available()`` says why not otherwise.
Every process started here is killed by PID (and process group) on close.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

_HOLDER = ("ip link set lo up && mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/rpcbind /run/ganesha "
           "&& echo ready && exec sleep 86400")


class SandboxError(RuntimeError):
    pass


def _kill(proc: subprocess.Popen[Any], sig: int = signal.SIGKILL) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class Sandbox:
    """``with Sandbox() as sb: sb.popen([...])`` runs commands inside; ``sb.prefix`` enters it."""

    def __init__(self) -> None:
        self.holder: subprocess.Popen[bytes] | None = None
        self.procs: list[subprocess.Popen[Any]] = []

    @staticmethod
    def available() -> str | None:
        """None when a sandbox can be made here, else the reason it cannot."""
        if os.geteuid() != 0:
            return "network and mount namespaces need root (unshare/nsenter)"
        missing = [t for t in ("unshare", "nsenter", "ip") if shutil.which(t) is None]
        return f"missing {', '.join(missing)}" if missing else None

    def start(self) -> Sandbox:
        self.holder = subprocess.Popen(["unshare", "--net", "--mount", "--propagation", "private", "--",
                                        "sh", "-c", _HOLDER], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, start_new_session=True)
        assert self.holder.stdout is not None
        line = self.holder.stdout.readline()
        if line.strip() != b"ready":
            err = self.holder.stderr.read().decode(errors="replace") if self.holder.stderr else ""
            _kill(self.holder)
            raise SandboxError(f"could not make a network namespace: {err.strip() or line!r}")
        return self

    @property
    def prefix(self) -> list[str]:
        """Run a command inside: ``prefix + argv``."""
        assert self.holder is not None, "start() first"
        return ["nsenter", f"--target={self.holder.pid}", "--net", "--mount", "--"]

    def popen(self, argv: Sequence[str], *, log: Path | None = None, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen[Any]:
        """Start ``argv`` inside (its own process group); stdout and stderr go to ``log`` when given."""
        out: IO[bytes] | int = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
        try:
            proc = subprocess.Popen([*self.prefix, *argv], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)
        finally:
            if not isinstance(out, int):
                out.close()
        self.procs.append(proc)
        return proc

    def run(self, argv: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside to completion (output captured)."""
        return subprocess.run([*self.prefix, *argv], capture_output=True, text=True, timeout=timeout)

    def stop(self, proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, wait_s: float = 10) -> int | None:
        """Send ``sig`` to ``proc``'s group and wait for it (then SIGKILL); its exit status."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
                proc.wait(wait_s)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                _kill(proc)
        return proc.returncode

    def wait_port(self, port: int, limit_s: float = 30, proc: subprocess.Popen[Any] | None = None) -> None:
        """Wait until something inside listens on 127.0.0.1:``port`` (TCP); SandboxError after ``limit_s``
        or when ``proc`` exits first."""
        deadline = time.monotonic() + limit_s
        probe = ["python3", "-c", f"import socket; socket.create_connection(('127.0.0.1', {port}), 2).close()"]
        while True:
            if proc is not None and proc.poll() is not None:
                raise SandboxError(f"the process for port {port} exited ({proc.returncode})")
            if self.run(probe, timeout=10).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise SandboxError(f"nothing listens on 127.0.0.1:{port} in the sandbox after {limit_s:.0f} s")
            time.sleep(0.2)

    def rpcbind(self) -> subprocess.Popen[Any]:
        """Debian's rpcbind on 0.0.0.0:111 inside (with its socket in the private /run)."""
        if shutil.which("rpcbind") is None:
            raise SandboxError("no rpcbind (apt-get install rpcbind)")
        proc = self.popen(["rpcbind", "-f"])
        self.wait_port(111, 15, proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self.procs):
            _kill(proc)
        if self.holder is not None:
            _kill(self.holder)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
