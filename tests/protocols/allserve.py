"""One `tessera serve` with S3, NFS and SMB on 127.0.0.1 for the cross-protocol suites (a fixture helper)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.protocols.s3.conftest import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def serve_all(data: Path) -> Iterator[tuple[int, int, int]]:
    """Write a config serving the whole store (export and share ``/``) and run ``tessera serve`` on it; yields
    (s3, nfs, smb) ports; the server is stopped (SIGTERM, then SIGKILL) on every exit path."""
    s3_port, nfs_port, smb_port = free_port(), free_port(), free_port()
    (data / "tessera.yaml").write_text(
        f"admin:\n  enabled: false\nlog:\n  level: warning\n"
        f"s3:\n  listen: 127.0.0.1:{s3_port}\n  workers: 1\n"
        f"nfs:\n  listen: 127.0.0.1:{nfs_port}\n  rpcbind: false\n  exports:\n"
        f"    - path: /\n      clients: [127.0.0.1]\n      squash: root\n"
        f"smb:\n  listen: 127.0.0.1:{smb_port}\n  shares:\n    - name: all\n      path: /\n"
        f"maintenance:\n  gc_interval_s: 0\n")
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "--data", str(data), "serve"], cwd=ROOT)
    try:
        for port in (s3_port, nfs_port, smb_port):
            wait_port(port, proc)
        yield s3_port, nfs_port, smb_port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
