"""RemoteTarget against live target servers: in-thread, a silent one, and one in a process we kill -9."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.data import remote, wire
from core.data.remote import RemoteTarget
from core.data.store import DataStore, Extent, default_target
from core.data.target import DirTarget, Target
from core.data.tserver import TargetServer
from core.meta.types import TargetInfo
from core.store import init_store, open_store
from tests.conftest import CELL

pytestmark = pytest.mark.timeout(120)
TOKEN = "cluster-secret"
ROOT = str(Path(__file__).resolve().parents[3])


@pytest.fixture
def local(tmp_path: Path) -> Iterator[DirTarget]:
    p = str(tmp_path / "t3")
    DirTarget.format(p, 3, uuid.uuid4())
    t = DirTarget(3, p)
    yield t
    t.close()


@pytest.fixture
def server(local: DirTarget) -> Iterator[TargetServer]:
    srv = TargetServer({3: local}, "127.0.0.1", 0, TOKEN)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def rt(server: TargetServer, local: DirTarget) -> Iterator[RemoteTarget]:
    t = RemoteTarget(3, local.path, f"127.0.0.1:{server.port}", TOKEN, timeout=5)
    yield t
    t.close()


def test_target_protocol(rt: RemoteTarget, local: DirTarget) -> None:
    f = rt.open_shard(1, 0, create=True)
    assert f.pwritev([b"hello", bytearray(b" "), memoryview(b"world")], 100) == 11
    buf = bytearray(11)
    assert f.preadv([buf], 100) == 11 and buf == b"hello world"
    a, b = bytearray(3), bytearray(20)
    assert f.preadv([a, memoryview(b)], 103) == 8 and a == b"lo " and b[:5] == b"world"  # short at EOF
    f.sync()
    assert f.size() == 111
    assert rt.list_shards() == [(1, 0)] == local.list_shards()
    assert rt.usage() > 0
    total, free = rt.capacity()
    assert total >= free > 0
    assert rt.ping() == [3] and rt.available()
    missing = rt.open_shard(9, 9)  # lazy: the error shows on use
    with pytest.raises(FileNotFoundError):
        missing.preadv([bytearray(4)], 0)
    with pytest.raises(FileNotFoundError):
        missing.pwritev([b"x"], 0)  # no create flag
    assert rt.available()  # an error answer is not a node failure
    rt.remove_shard(1, 0)
    assert rt.list_shards() == []


def test_unknown_target(server: TargetServer) -> None:
    t = RemoteTarget(5, "/elsewhere", f"127.0.0.1:{server.port}", TOKEN)
    try:
        with pytest.raises(OSError) as ei:
            t.open_shard(1, 0, create=True).pwritev([b"x"], 0)
        assert ei.value.errno == errno.ENODEV
        assert t.capacity() == (0, 0) and t.list_shards() == []
    finally:
        t.close()


def test_transfers_over_the_frame_limit(rt: RemoteTarget, local: DirTarget) -> None:
    data = os.urandom(wire.MAX_PAYLOAD + 3 * 1024 * 1024)
    half = len(data) // 2 + 7
    f = rt.open_shard(2, 1, create=True)
    assert f.pwritev([data[:half], memoryview(data)[half:]], 4096) == len(data)
    out = [bytearray(half), bytearray(len(data) - half)]
    assert f.preadv(out, 4096) == len(data)
    assert out[0] + out[1] == data
    got = bytearray(len(data))
    local.open_shard(2, 1).preadv([got], 4096)
    assert got == data


def test_many_threads(rt: RemoteTarget) -> None:
    errors: list[BaseException] = []
    blobs = {i: os.urandom(200_000 + i) for i in range(16)}

    def work(i: int) -> None:
        try:
            f = rt.open_shard(10 + i, 0, create=True)
            for r in range(8):
                f.pwritev([blobs[i]], r * 300_000)
            for r in range(8):
                buf = bytearray(len(blobs[i]))
                assert f.preadv([buf], r * 300_000) == len(buf) and buf == blobs[i]
            f.sync()
        except BaseException as e:  # collected for the main thread
            errors.append(e)
    ths = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert not errors, errors
    assert len(rt.list_shards()) == 16
    assert len(rt.node.idle) <= remote.MAX_IDLE


def test_wrong_token_is_refused(server: TargetServer, local: DirTarget) -> None:
    t = RemoteTarget(3, local.path, f"127.0.0.1:{server.port}", "guess")
    try:
        with pytest.raises(PermissionError):
            t.open_shard(1, 0, create=True).pwritev([b"x"], 0)
        assert not t.available()
        assert local.list_shards() == []
    finally:
        t.close()


def test_impostor_server_is_refused(local: DirTarget) -> None:
    srv = TargetServer({3: local}, "127.0.0.1", 0, "another cluster")
    port = srv.start()
    t = RemoteTarget(3, local.path, f"127.0.0.1:{port}", TOKEN)
    try:
        with pytest.raises(PermissionError):
            t.ping()
    finally:
        t.close()
        srv.stop()


def test_silent_server_times_out_then_backs_off() -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # the kernel accepts; nobody ever answers
    port = silent.getsockname()[1]
    t = RemoteTarget(1, "/x", f"127.0.0.1:{port}", TOKEN, timeout=0.5, connect_timeout=0.5)
    try:
        t0 = time.monotonic()
        with pytest.raises(OSError) as ei:
            t.open_shard(1, 0).preadv([bytearray(10)], 0)
        assert ei.value.errno == errno.ETIMEDOUT
        assert 0.4 < time.monotonic() - t0 < 2.0
        t0 = time.monotonic()
        assert not t.available()
        with pytest.raises(OSError):
            t.open_shard(1, 0)
        assert time.monotonic() - t0 < 0.2  # down: no waiting on it again (0.5 s if it did)
    finally:
        t.close()
        silent.close()


def test_node_comes_back(local: DirTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote, "BACKOFF_FIRST", 0.2)
    srv = TargetServer({3: local}, "127.0.0.1", 0, TOKEN)
    port = srv.start()
    t = RemoteTarget(3, local.path, f"127.0.0.1:{port}", TOKEN)
    try:
        t.open_shard(1, 0, create=True).pwritev([b"abc"], 0)
        srv.stop()
        with pytest.raises(OSError):
            t.open_shard(1, 0).size()
        assert not t.available()
        srv = TargetServer({3: local}, "127.0.0.1", port, TOKEN)
        srv.start()
        time.sleep(0.3)
        assert t.open_shard(1, 0).size() == 3  # retried after the back-off, on a fresh connection
        assert t.available()
        srv.stop()
        srv = TargetServer({3: local}, "127.0.0.1", port, TOKEN)
        srv.start()
        assert t.open_shard(1, 0).size() == 3  # a pooled connection the restart dropped is replaced at once
    finally:
        t.close()
        srv.stop()


@pytest.fixture
def node_b(tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    data = str(tmp_path / "store")
    init_store(data, ec=(3, 3), cell=CELL, shard_bytes=64 * CELL)
    args = [sys.executable, "-m", "core.data.tserver", "--listen", "127.0.0.1:0"]
    args += [f"--target={i}={os.path.join(data, 'targets', f't{i}')}" for i in (3, 4, 5)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "TESSERA_TARGET_TOKEN": TOKEN})
    try:
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(30)
        assert line and line[0], "the target server did not start"
        yield data, f"127.0.0.1:{json.loads(line[0])['port']}", proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def _read_back(ds: DataStore, exts: list[Extent]) -> bytes:
    out = bytearray()
    for e in exts:
        buf = bytearray(e.length)
        ds.read_into(e.segment, e.seg_off, memoryview(buf))
        out += buf
    return bytes(out)


def _half_remote(addr: str, **kw: float) -> Callable[[TargetInfo], Target]:
    """Targets 0-2 local, 3-5 behind the target server at ``addr`` (what core.cluster's factory does per node)."""
    def make(info: TargetInfo) -> Target:
        return default_target(info) if info.id < 3 else RemoteTarget(info.id, info.path, addr, TOKEN, **kw)
    return make


def test_store_across_nodes_survives_kill_9(node_b: tuple[str, str, subprocess.Popen[str]]) -> None:
    data_dir, addr, proc = node_b
    factory = _half_remote(addr, timeout=5, connect_timeout=0.5)
    store = open_store(data_dir, target_factory=factory)
    try:
        ds = store._data
        kinds = {tid: type(ds.target(tid)).__name__ for tid in range(6)}
        assert kinds == {0: "DirTarget", 1: "DirTarget", 2: "DirTarget",
                         3: "RemoteTarget", 4: "RemoteTarget", 5: "RemoteTarget"}
        blob = os.urandom(ds.geo.stripe_data * 20 + 12345)
        exts = ds.write(blob)
        ds.sync(e.segment for e in exts)
        assert _read_back(ds, exts) == blob
        for tid in (3, 4, 5):  # the other process wrote them
            assert len(os.listdir(os.path.join(data_dir, "targets", f"t{tid}", "shards"))) >= 1
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        t0 = time.monotonic()
        assert _read_back(ds, exts) == blob  # decoded from the three local cells of every stripe
        first = time.monotonic() - t0
        t0 = time.monotonic()
        assert _read_back(ds, exts) == blob
        again = time.monotonic() - t0
        assert first < 3.0 and again < 1.0, (first, again)
        assert not ds.target(3).available()
    finally:
        store.close()


def test_store_across_nodes_rides_out_a_hung_node(node_b: tuple[str, str, subprocess.Popen[str]],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote, "BACKOFF_FIRST", 0.3)
    data_dir, addr, proc = node_b
    factory = _half_remote(addr, timeout=0.5, connect_timeout=0.5)
    store = open_store(data_dir, target_factory=factory)
    try:
        ds = store._data
        blob = os.urandom(ds.geo.stripe_data * 8 + 999)
        exts = ds.write(blob)
        ds.sync(e.segment for e in exts)
        os.kill(proc.pid, signal.SIGSTOP)  # alive to TCP, answers nothing
        t0 = time.monotonic()
        assert _read_back(ds, exts) == blob
        assert time.monotonic() - t0 < 2.5  # one request timeout, then the node is down and skipped
        t0 = time.monotonic()
        assert _read_back(ds, exts) == blob
        assert time.monotonic() - t0 < 1.0  # no request waits its 0.5 s timeout again
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.4)
        rt = ds.target(4)
        assert isinstance(rt, RemoteTarget) and rt.available()
        before = rt.node.last_ok
        assert _read_back(ds, exts) == blob
        assert rt.node.last_ok > before  # read from node b again
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        store.close()
