"""Shared fixtures: stores on in-memory targets (fast) and real directories."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store import Store, init_store, open_store

# impacket installs its example scripts (smbclient.py, ...) into the venv's bin directory, which is sys.path[0]
# when pytest runs as .venv/bin/pytest: they would shadow smbprotocol's smbclient package.
sys.path[:] = [p for p in sys.path if os.path.abspath(p) != os.path.dirname(os.path.abspath(sys.executable))]

CELL = 64 * 1024  # small cells: stripes of 256 KiB at 4+2 keep tests quick


@pytest.fixture
def mem_store(tmp_path: Path) -> Iterator[Store]:
    d = str(tmp_path / "store")
    init_store(d, targets=[f"mem:{i}" for i in range(6)], cell=CELL, shard_bytes=64 * CELL)
    s = open_store(d)
    yield s
    s.close()


@pytest.fixture
def dir_store_path(tmp_path: Path) -> str:
    d = str(tmp_path / "store")
    init_store(d, cell=CELL, shard_bytes=64 * CELL)
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
