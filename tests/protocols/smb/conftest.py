"""Shared fixtures for SMB end-to-end tests: a store with users and a running server on 127.0.0.1.

``smb_server(shares)`` starts the real server on a free port over the test's store; alice
(uid 1000, password ``alice-pw``) and bob (1001, ``bob-pw``) exist, ``/data`` is mode 0777 and
shared as ``data`` by default.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from smbprotocol.connection import Connection, Dialects  # type: ignore[import-untyped]
from smbprotocol.session import Session  # type: ignore[import-untyped]
from smbprotocol.tree import TreeConnect  # type: ignore[import-untyped]

from core.store import Store, init_store, open_store
from protocols.smb.service import SmbService, SmbSettings, start
from protocols.smb.shares import Share
from protocols.smb.status import NtStatus

from .badclient import BadClient

CELL = 64 * 1024
ALICE_UID, BOB_UID = 1000, 1001
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw"}


@pytest.fixture
def smb_store(tmp_path: Path) -> Iterator[Store]:
    """A store (in-memory targets) with users alice and bob (passwords above) and /data (0777)."""
    d = str(tmp_path / "store")
    init_store(d, targets=[f"mem:{i}" for i in range(6)], cell=CELL, shard_bytes=64 * CELL)
    store = open_store(d)
    store.identity.add_user("alice", PASSWORDS["alice"], uid=ALICE_UID, key=False)
    store.identity.add_user("bob", PASSWORDS["bob"], uid=BOB_UID, key=False)
    store.fs.mkdir(store.fs.root, "data", 0o777)
    yield store
    store.close()


ServerFactory = Callable[..., SmbService]
DEFAULT_SHARES = (Share("data", "/data"),)


@pytest.fixture
def smb_server(smb_store: Store) -> Iterator[ServerFactory]:
    """Start a server over ``smb_store`` serving ``shares`` (a list the test may change later)."""
    servers: list[SmbService] = []

    def make(shares: Sequence[Share] = DEFAULT_SHARES, **settings: object) -> SmbService:
        srv = start(smb_store, SmbSettings(host="127.0.0.1", port=0, workers=4, **settings),  # type: ignore[arg-type]
                    lambda: shares)
        servers.append(srv)
        return srv
    yield make
    for s in servers:
        s.close()


@dataclass(frozen=True)
class Result:
    rc: int
    out: str
    err: str


def smbclient(port: int, share: str, commands: str, *, user: str = "alice", password: str | None = None,
              options: Sequence[str] = (), timeout: float = 60.0) -> Result:
    """Run Debian's ``smbclient`` against the server (``-c`` commands; no config file, no cache)."""
    if shutil.which("smbclient") is None:
        pytest.skip("smbclient is not installed (make deps installs it)")
    pw = PASSWORDS.get(user, "") if password is None else password
    cmd = ["smbclient", f"//127.0.0.1/{share}", "-p", str(port), "-U", f"{user}%{pw}", "-s", "/dev/null",
           "--option=client min protocol=SMB2_02", *options, "-c", commands]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return Result(p.returncode, p.stdout, p.stderr)


# -- raw-socket suites (test_bad_input, test_fuzz): a server with a known file, logged-in connections ---------

@pytest.fixture
def port(smb_server: ServerFactory, smb_store: Store) -> int:
    fs = smb_store.fs
    fs.write_file(fs.resolve("/data").ino, "known.txt", b"known contents")
    return smb_server().port


@pytest.fixture
def client(port: int) -> Iterator[Callable[..., tuple[BadClient, int]]]:
    """``client(dialect=0x0311)``: a new connection logged in as alice with the ``data`` tree connected."""
    made: list[BadClient] = []

    def make(dialect: int = 0x0311) -> tuple[BadClient, int]:
        c = BadClient(port)
        made.append(c)
        c.negotiate((dialect,))
        assert c.dialect == dialect
        assert c.login("alice", PASSWORDS["alice"]).status == NtStatus.SUCCESS
        return c, c.tree_connect("data")
    yield make
    for c in made:
        c.close()


@contextmanager
def smb_tree(port: int, user: str, share: str = "data") -> Iterator[TreeConnect]:
    """smbprotocol's raw client: an SMB 3.1.1 session of ``user`` (signed) and a tree connect to ``share``;
    disconnected on every exit path."""
    conn = Connection(uuid.uuid4(), "127.0.0.1", port, require_signing=True)
    conn.connect(Dialects.SMB_3_1_1)
    try:
        s = Session(conn, user, PASSWORDS[user], require_encryption=False)
        s.connect()
        t = TreeConnect(s, rf"\\127.0.0.1\{share}")
        t.connect()
        yield t
    finally:
        conn.disconnect()
