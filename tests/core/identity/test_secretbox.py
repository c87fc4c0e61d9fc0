"""Secrets at rest: sealing with the store key, and the key file."""

from __future__ import annotations

import multiprocessing as mp
import os
import stat
from pathlib import Path

import pytest

from core.errors import StoreError
from core.identity.secretbox import StoreKey


def test_seal_open_bound_to_key_and_row() -> None:
    k = StoreKey(os.urandom(32))
    v = k.seal("wJalrXUtnFEMI/K7MDENG", "AKIA1")
    assert "wJalr" not in v and v != k.seal("wJalrXUtnFEMI/K7MDENG", "AKIA1")  # random nonce
    assert k.open(v, "AKIA1") == "wJalrXUtnFEMI/K7MDENG"
    assert k.open(v, "AKIA2") is None  # moved to another row
    assert StoreKey(os.urandom(32)).open(v, "AKIA1") is None  # another store's key
    head, body = v.rsplit(":", 1)
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    assert k.open(f"{head}:{flipped}", "AKIA1") is None  # tampered
    assert k.open("garbage", "AKIA1") is None and k.open("enc1:x:y", "AKIA1") is None
    assert k.open("plain:old-secret", "AKIA1") == "old-secret"
    assert StoreKey.sealed_by(v) == k.id and StoreKey.sealed_by("plain:x") is None


def test_key_file_made_private_and_reused(tmp_path: Path) -> None:
    p = str(tmp_path / "store.key")
    k1, made = StoreKey.load_or_create(p)
    assert made and stat.S_IMODE(os.stat(p).st_mode) == 0o600 and os.path.getsize(p) == 32
    k2, made2 = StoreKey.load_or_create(p)
    assert not made2 and k2.id == k1.id
    os.chmod(p, 0o644)
    StoreKey.load(p)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []


def test_damaged_or_missing_key_file(tmp_path: Path) -> None:
    p = tmp_path / "store.key"
    with pytest.raises(StoreError, match="missing"):
        StoreKey.load(str(p))
    p.write_bytes(b"short")
    with pytest.raises(StoreError, match="damaged"):
        StoreKey.load(str(p))


def _make(path: str, q: mp.Queue) -> None:  # type: ignore[type-arg]
    q.put(StoreKey.load_or_create(path)[0].id)


def test_processes_racing_to_make_the_key_agree(tmp_path: Path) -> None:
    p = str(tmp_path / "store.key")
    ctx = mp.get_context("fork")
    q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [ctx.Process(target=_make, args=(p, q)) for _ in range(6)]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join(30)
    ids = {q.get(timeout=5) for _ in procs}
    assert len(ids) == 1 and ids == {StoreKey.load(p).id}
