"""Byte-range locks and share modes, within and across processes."""

import multiprocessing as mp
import socket

import pytest

from core.errors import LockConflict, ShareViolation
from core.fs.types import DELETE, READ, WRITE
from core.store import Store, open_store


def test_shared_and_exclusive(mem_store: Store) -> None:
    fs = mem_store.fs
    f = fs.create(fs.root, "f")
    fs.lock(f.ino, "A", 0, 100, exclusive=False)
    fs.lock(f.ino, "B", 50, 100, exclusive=False)
    with pytest.raises(LockConflict):
        fs.lock(f.ino, "C", 90, 5, exclusive=True)
    hit = fs.test_lock(f.ino, "C", 90, 5, exclusive=True)
    assert hit is not None and hit.owner in ("A", "B")
    fs.lock(f.ino, "C", 200, 0, exclusive=True)  # to EOF
    with pytest.raises(LockConflict):
        fs.lock(f.ino, "A", 10**12, 1, exclusive=False)
    assert fs.test_lock(f.ino, "C", 0, 0, exclusive=True) is not None


def test_owner_relock_splits_and_upgrades(mem_store: Store) -> None:
    fs = mem_store.fs
    f = fs.create(fs.root, "f")
    fs.lock(f.ino, "A", 0, 100, exclusive=False)
    fs.lock(f.ino, "A", 40, 20, exclusive=True)  # upgrade the middle
    got = [(lk.start, lk.length, lk.exclusive) for lk in fs.locks(f.ino)]
    assert got == [(0, 40, False), (40, 20, True), (60, 40, False)]
    fs.unlock(f.ino, "A", 0, 50)
    got = [(lk.start, lk.length) for lk in fs.locks(f.ino)]
    assert got == [(50, 10), (60, 40)]
    fs.lock(f.ino, "B", 0, 50, exclusive=True)
    fs.unlock_all("A")
    fs.lock(f.ino, "B", 0, 0, exclusive=True)


def test_share_modes(mem_store: Store) -> None:
    fs = mem_store.fs
    f = fs.create(fs.root, "f")
    a = fs.open_share(f.ino, "a", READ, READ)
    with pytest.raises(ShareViolation):
        fs.open_share(f.ino, "b", WRITE, READ | WRITE)  # a does not share write
    b = fs.open_share(f.ino, "b", READ, READ | WRITE)
    c = fs.open_share(f.ino, "c", READ, READ)  # reads alongside readers: compatible
    with pytest.raises(ShareViolation):
        fs.open_share(f.ino, "d", READ, 0)  # denies the read access the others hold
    fs.close_share(c)
    fs.close_share(a)
    fs.close_share(b)
    h = fs.open(f.ino, write=True, share=("x", READ | WRITE | DELETE, 0))
    with pytest.raises(ShareViolation):
        fs.open(f.ino, share=("y", READ, READ | WRITE | DELETE))
    h.close()
    fs.open(f.ino, share=("y", READ, READ)).close()


def _take_lock(path: str, ino: int, q: "mp.Queue[str]") -> None:
    s = open_store(path)
    try:
        s.fs.lock(ino, "other", 0, 10, exclusive=True)
        q.put("locked")
    except LockConflict:
        q.put("conflict")
    s.close()


def test_locks_are_seen_by_other_processes_and_die_with_them(dir_store_path: str) -> None:
    s = open_store(dir_store_path)
    f = s.fs.create(s.fs.root, "f")
    s.fs.lock(f.ino, "me", 0, 100, exclusive=True)
    ctx = mp.get_context("spawn")
    q: mp.Queue[str] = ctx.Queue()
    p = ctx.Process(target=_take_lock, args=(dir_store_path, f.ino, q))
    p.start()
    assert q.get(timeout=60) == "conflict"
    p.join(30)
    # a lock whose process is gone does not block anyone
    dead = f"{socket.gethostname()}:999999999:1"
    s._meta.write(lambda t: t.exec("UPDATE locks SET proc = ?", (dead,)))
    p = ctx.Process(target=_take_lock, args=(dir_store_path, f.ino, q))
    p.start()
    assert q.get(timeout=60) == "locked"
    p.join(30)
    s.close()
