"""Shared fixtures for NFS end-to-end tests: a store with users, a running server, libnfs's tools.

``nfs_server(exports)`` starts the real server (every program on one port, TCP and UDP) on
127.0.0.1 and a free port over the test's store; ``LibNfs`` runs ``nfs-ls``, ``nfs-cat``
and ``nfs-cp`` (Debian libnfs-utils) against it with an ``nfs://`` URL that names the
ports (no portmapper needed) and the AUTH_SYS uid/gid to send::

    nfs://127.0.0.1/data/f?version=3&nfsport=P&mountport=P&uid=1000&gid=1000
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.store import Store, init_store, open_store
from protocols.nfs.exports import Export
from protocols.nfs.rpcclient import RpcClient
from protocols.nfs.service import NfsServer, NfsSettings, start

ROOT = Path(__file__).resolve().parents[3]
CELL = 64 * 1024
ALICE_UID, BOB_UID = 1000, 1001
NOBODY = 65534


@pytest.fixture
def nfs_store(tmp_path: Path) -> Iterator[Store]:
    """A store (in-memory targets) with users alice (uid/gid 1000) and bob (1001), and /data (0777)."""
    d = str(tmp_path / "store")
    init_store(d, targets=[f"mem:{i}" for i in range(6)], cell=CELL, shard_bytes=64 * CELL)
    store = open_store(d)
    store.identity.add_user("alice", uid=ALICE_UID, key=False)
    store.identity.add_user("bob", uid=BOB_UID, key=False)
    store.fs.mkdir(store.fs.root, "data", 0o777)
    yield store
    store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ServerFactory = Callable[[Sequence[Export]], NfsServer]


@pytest.fixture
def nfs_server(nfs_store: Store) -> Iterator[ServerFactory]:
    """Start a server over ``nfs_store`` with the given exports (a list the test may change later)."""
    servers: list[NfsServer] = []

    def make(exports: Sequence[Export]) -> NfsServer:
        srv = start(nfs_store, NfsSettings(host="127.0.0.1", port=0, rpcbind=False, workers=4), lambda: exports)
        servers.append(srv)
        return srv
    yield make
    for s in servers:
        s.close()


def rpc_client(srv: NfsServer, **kw: object) -> RpcClient:
    return RpcClient("127.0.0.1", srv.port, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Result:
    rc: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        """stdout and stderr (the tools print some errors on stdout)."""
        return self.out.decode(errors="replace") + self.err


@dataclass(frozen=True)
class LibNfs:
    """libnfs's command-line tools against one server, as one AUTH_SYS identity."""

    port: int
    uid: int = ALICE_UID
    gid: int = ALICE_UID
    timeout: float = 60.0

    def as_user(self, uid: int, gid: int | None = None) -> LibNfs:
        return LibNfs(self.port, uid, uid if gid is None else gid, self.timeout)

    def url(self, path: str) -> str:
        q = urllib.parse.urlencode({"version": 3, "nfsport": self.port, "mountport": self.port, "uid": self.uid,
                                    "gid": self.gid})
        return f"nfs://127.0.0.1{urllib.parse.quote(path)}?{q}"

    def run(self, *args: str, stdin: bytes | None = None) -> Result:
        p = subprocess.run(list(args), input=stdin, capture_output=True, timeout=self.timeout, check=False)
        return Result(p.returncode, p.stdout, p.stderr.decode(errors="replace"))

    def ls(self, path: str, *flags: str) -> Result:
        return self.run("nfs-ls", *flags, self.url(path))

    def names(self, path: str) -> list[str]:
        """The entry names ``nfs-ls`` prints for a directory (its last column)."""
        r = self.ls(path)
        assert r.rc == 0, r.err
        return sorted(line.split()[-1] for line in r.out.decode().splitlines() if line.strip())

    def cat(self, path: str) -> Result:
        return self.run("nfs-cat", self.url(path))

    def put(self, local: Path, path: str) -> Result:
        return self.run("nfs-cp", str(local), self.url(path))

    def get(self, path: str, local: Path) -> Result:
        return self.run("nfs-cp", self.url(path), str(local))


@pytest.fixture
def libnfs_tools() -> None:
    missing = [t for t in ("nfs-ls", "nfs-cat", "nfs-cp") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"libnfs-utils not installed ({', '.join(missing)}): apt-get install -y libnfs-utils")
