"""Acknowledged SMB writes survive a kill -9 of the server (the file still open, nothing flushed):
each WRITE lands its data in segments and commits the metadata before it is answered."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import smbclient  # type: ignore[import-untyped]

from core.store import init_store, open_store

from .conftest import PASSWORDS

ROOT = Path(__file__).resolve().parents[3]

SERVER = textwrap.dedent("""
    import sys, time
    from core.store import open_store
    from protocols.smb.service import start, SmbSettings
    from protocols.smb.shares import Share
    store = open_store(sys.argv[1])
    srv = start(store, SmbSettings(host="127.0.0.1", port=int(sys.argv[2])), lambda: [Share("data", "/data")])
    print("ready", flush=True)
    time.sleep(3600)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    d = str(tmp_path / "store")
    init_store(d, targets=[str(tmp_path / f"t{i}") for i in range(6)])
    s = open_store(d)
    s.identity.add_user("alice", PASSWORDS["alice"], uid=1000, key=False)
    s.fs.mkdir(s.fs.root, "data", 0o777)
    s.close()
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, d, str(port)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    cache: dict[str, object] = {}
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        big = os.urandom(5 * 1024 * 1024 + 77)
        f = smbclient.open_file(r"\\127.0.0.1\data\big.bin", mode="wb", port=port, username="alice",
                                password=PASSWORDS["alice"], connection_cache=cache, buffering=0)
        g = smbclient.open_file(r"\\127.0.0.1\data\small.txt", mode="wb", port=port, username="alice",
                                password=PASSWORDS["alice"], connection_cache=cache, buffering=0)
        f.write(big)   # answered: the server has it
        g.write(b"a few bytes")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        try:
            smbclient.reset_connection_cache(connection_cache=cache)
        except Exception:
            pass
    time.sleep(0.1)
    s = open_store(d)
    try:
        a = s.fs.resolve("/data/big.bin")
        assert s.fs.read(a.ino, 0, a.size) == big
        b = s.fs.resolve("/data/small.txt")
        assert s.fs.read(b.ino, 0, b.size) == b"a few bytes"
    finally:
        s.close()
