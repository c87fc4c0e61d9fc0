"""Acknowledged writes survive kill -9; several processes share one store safely."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from core.data import maintenance as mt
from core.store import open_store
from tests.core.workers import CHUNK, block

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.core.workers", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)


@pytest.mark.parametrize("kill_after", [1, 4])
def test_kill9_mid_append_keeps_every_acknowledged_commit(dir_store_path: str, kill_after: int) -> None:
    p = _spawn("appender", dir_store_path, "log", "1000")
    acked = 0
    assert p.stdout is not None
    while acked < kill_after:
        line = p.stdout.readline()
        assert line.startswith("committed"), line
        acked = int(line.split()[1])
    time.sleep(0.02 * kill_after)  # land somewhere inside the next write
    p.send_signal(signal.SIGKILL)
    p.wait(30)
    s = open_store(dir_store_path)
    a = s.fs.resolve("/log")
    assert a.size >= acked * CHUNK and a.size % CHUNK == 0  # whole commits only
    got = s.fs.read(a.ino, 0, a.size)
    for i in range(a.size // CHUNK):
        assert got[i * CHUNK:(i + 1) * CHUNK] == block(i), i
    rep = mt.collect(s._data)  # the dead writer's segment is sealed; its tail is garbage
    assert rep.sealed == 1
    assert s.fs.read(a.ino, 0, a.size) == got
    assert mt.scrub(s._data).blocks_bad == 0
    s.close()


def test_kill9_during_replace_is_old_or_new(dir_store_path: str) -> None:
    p = _spawn("replacer", dir_store_path, "obj", "1000")
    assert p.stdout is not None
    last = -1
    while last < 3:
        last = int(p.stdout.readline().split()[1])
    p.send_signal(signal.SIGKILL)
    p.wait(30)
    s = open_store(dir_store_path)
    got = s.fs.read(s.fs.resolve("/obj").ino, 0, 10 * CHUNK)
    versions = {i: block(i) * 3 for i in range(last, last + 3)}
    assert got in versions.values()
    s.close()


def test_two_writers_one_reader(dir_store_path: str) -> None:
    writers = [_spawn("appender", dir_store_path, f"w{i}", "15") for i in range(2)]
    s = open_store(dir_store_path)
    deadline = time.time() + 120
    seen = 0
    while any(w.poll() is None for w in writers) and time.time() < deadline:
        try:  # the reader follows w0 while it is being written: every committed prefix is right
            a = s.fs.resolve("/w0")
        except Exception:
            continue
        got = s.fs.read(a.ino, 0, a.size)
        assert len(got) == a.size and a.size % CHUNK == 0
        for i in range(a.size // CHUNK):
            assert got[i * CHUNK:(i + 1) * CHUNK] == block(i)
        seen = max(seen, a.size)
    for w in writers:
        assert w.wait(60) == 0
    for name in ("w0", "w1"):
        a = s.fs.resolve(f"/{name}")
        assert a.size == 15 * CHUNK
        assert s.fs.read(a.ino, 0, a.size) == b"".join(block(i) for i in range(15))
    s.close()


def test_concurrent_renames_lose_nothing(dir_store_path: str) -> None:
    s = open_store(dir_store_path)
    d = s.fs.mkdir(s.fs.root, "shuffle")
    for prefix in ("a", "b"):
        for i in range(4):
            s.fs.write_file(d.ino, f"{prefix}{i}", f"{prefix}{i}".encode())
    procs = [_spawn("renamer", dir_store_path, prefix, "150") for prefix in ("a", "b")]
    for p in procs:
        out, _ = p.communicate(timeout=180)
        assert p.returncode == 0 and out.strip() == "done"
    names = sorted(e.name for e in s.fs.listdir(d.ino))
    assert names == sorted(f"{p}{i}" for p in "ab" for i in range(4))
    for n in names:
        assert s.fs.read(s.fs.lookup(d.ino, n).ino, 0, 10) == n.encode()
    s.close()
