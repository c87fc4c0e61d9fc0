"""Shared fixtures: stores on in-memory targets (fast) and real directories; a real PostgreSQL.

``pg_server`` is one PostgreSQL 15 for the whole session (started on first use, stopped at the end);
``pg_url`` a fresh, empty database on it for one test.  ``meta_backend`` ("sqlite", or "pg" where a
suite parametrizes it, see tests/core/fs/conftest.py) picks where ``mem_store``/``dir_store_path``
keep their metadata."""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store import Store, init_store, open_store
from gateway.cluster.postgres import LocalPostgres

# impacket installs its example scripts (smbclient.py, ...) into the venv's bin directory, which is sys.path[0]
# when pytest runs as .venv/bin/pytest: they would shadow smbprotocol's smbclient package.
sys.path[:] = [p for p in sys.path if os.path.abspath(p) != os.path.dirname(os.path.abspath(sys.executable))]

CELL = 64 * 1024  # small cells: stripes of 256 KiB at 4+2 keep tests quick


_PG_DBS = itertools.count()
# wal_writer_delay: non-durable commits stay unflushed long enough for tests to see sync() flush them (by WAL
# position: the flush position advances exactly as with fsync on, so fsync is off to keep tests quick)
PG_TEST_SETTINGS = {"wal_writer_delay": "10000ms", "max_connections": "400", "fsync": "off"}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalPostgres]:
    d = tempfile.mkdtemp(prefix="tessera-pg-", dir="/tmp")  # the postgres user must reach it
    pg = LocalPostgres(d, initdb_sync=False, settings=PG_TEST_SETTINGS)
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: LocalPostgres) -> Iterator[str]:
    name = f"t{os.getpid()}_{next(_PG_DBS)}"
    url = pg_server.create_database(name)
    try:
        yield url
    finally:
        if pg_server.running():
            pg_server.drop_database(name)


@pytest.fixture
def meta_backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


def _meta_url(request: pytest.FixtureRequest, backend: str) -> str | None:
    return str(request.getfixturevalue("pg_url")) if backend == "pg" else None


@pytest.fixture
def mem_store(tmp_path: Path, meta_backend: str, request: pytest.FixtureRequest) -> Iterator[Store]:
    d = str(tmp_path / "store")
    init_store(d, targets=[f"mem:{i}" for i in range(6)], cell=CELL, shard_bytes=64 * CELL,
               meta_url=_meta_url(request, meta_backend))
    s = open_store(d)
    yield s
    s.close()


@pytest.fixture
def dir_store_path(tmp_path: Path, meta_backend: str, request: pytest.FixtureRequest) -> str:
    d = str(tmp_path / "store")
    init_store(d, cell=CELL, shard_bytes=64 * CELL, meta_url=_meta_url(request, meta_backend))
    return d


@pytest.fixture
def dir_store(dir_store_path: str) -> Iterator[Store]:
    s = open_store(dir_store_path)
    yield s
    s.close()


def tessera_cmd() -> list[str]:
    return [sys.executable, "-m", "gateway.cli"]


def shard_files(data_dir: str, target: int | None = None) -> list[str]:
    root = os.path.join(data_dir, "targets")
    out = []
    for t in sorted(os.listdir(root)):
        if target is not None and t != f"t{target}":
            continue
        sd = os.path.join(root, t, "shards")
        if os.path.isdir(sd):
            out += [os.path.join(sd, f) for f in sorted(os.listdir(sd))]
    return out
