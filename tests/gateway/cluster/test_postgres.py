"""LocalPostgres: a real PostgreSQL 15 started, restarted, crashed, stopped, and run inside a network namespace."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from gateway.cluster.postgres import LocalPostgres

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def pg_dir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="tessera-pg-", dir="/tmp")
    try:
        yield d  # LocalPostgres hands it to the postgres user
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _pid(pg: LocalPostgres) -> int:
    with open(os.path.join(pg.data, "postmaster.pid")) as f:
        return int(f.readline())


def test_start_restart_crash_and_stop(pg_dir: str) -> None:
    pg = LocalPostgres(pg_dir, initdb_sync=False, settings={"fsync": "off"})
    try:
        with pg:
            url = pg.create_database("app")
            assert pg.create_database("app") == url  # idempotent
            with psycopg.connect(url, autocommit=True) as c:
                c.execute("CREATE TABLE t (v TEXT)")
                c.execute("INSERT INTO t VALUES ('kept')")
                assert c.execute("SHOW lc_collate").fetchone() == ("C",)
            pid = _pid(pg)
            if os.geteuid() == 0:
                assert os.stat(f"/proc/{pid}").st_uid == pwd.getpwnam("postgres").pw_uid  # never root
        assert not _alive(pid) and not pg.running()
        pg.start()  # the cluster is there already: no second initdb
        with psycopg.connect(url) as c:
            assert c.execute("SELECT v FROM t").fetchall() == [("kept",)]
        pid = _pid(pg)
        pg.kill()  # a crash: SIGKILL to the server and its backends
        assert not _alive(pid)
        pg.start()  # WAL recovery
        with psycopg.connect(url) as c:
            assert c.execute("SELECT v FROM t").fetchall() == [("kept",)]
        pg.drop_database("app")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
    finally:
        pg.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="runs PostgreSQL as the postgres user only as root")
def test_refuses_a_directory_the_postgres_user_cannot_reach(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o700)
    with pytest.raises(RuntimeError, match="cannot reach"):
        LocalPostgres(str(tmp_path / "pg")).start()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def netns() -> Iterator[tuple[str, str]]:
    """A namespace joined to this host by a veth pair: (name, its address)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2")
    tag = f"tpg{os.getpid() % 100000}"
    host_if, ns_if = f"{tag}h", f"{tag}n"
    octet = 16 + os.getpid() % 200
    host_ip, ns_ip = f"10.231.{octet}.1", f"10.231.{octet}.2"
    try:
        _ip("netns", "add", tag)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", tag)
        _ip("addr", "add", f"{host_ip}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", tag, "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        _ip("-n", tag, "link", "set", ns_if, "up")
        _ip("-n", tag, "link", "set", "lo", "up")
        yield tag, ns_ip
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", tag], capture_output=True)


def test_runs_inside_a_network_namespace(pg_dir: str, netns: tuple[str, str]) -> None:
    name, addr = netns
    pg = LocalPostgres(pg_dir, host=addr, wrap=["ip", "netns", "exec", name], initdb_sync=False,
                       settings={"fsync": "off"})
    try:
        pg.start()
        url = pg.create_database("nsdb")  # from this host, over the veth pair (samenet trust)
        with psycopg.connect(url, connect_timeout=5) as c:
            row = c.execute("SELECT inet_server_addr()::text").fetchone()
            assert row is not None and row[0].split("/")[0] == addr
        with socket.socket() as s:  # nothing listens on this host's own stack
            assert s.connect_ex(("127.0.0.1", pg.port)) != 0
    finally:
        pg.stop()


def test_cli_init_with_meta_url(tmp_path: Path, pg_url: str) -> None:
    """``tessera init --meta URL`` makes a store whose metadata is in PostgreSQL; ``put``/``ls`` use it."""
    import sys
    d = str(tmp_path / "store")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    cli = [sys.executable, "-m", "gateway.cli", "--data", d]
    run = subprocess.run([*cli, "init", "--targets", "3", "--meta", pg_url], capture_output=True, text=True,
                         env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert not os.path.exists(os.path.join(d, "meta", "meta.db"))
    with open(os.path.join(d, "meta", "url")) as f:
        assert f.read().strip() == pg_url
    (tmp_path / "hello.txt").write_bytes(b"hi there")
    put = subprocess.run([*cli, "put", str(tmp_path / "hello.txt"), "/hello.txt"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert put.returncode == 0, put.stderr
    with psycopg.connect(pg_url) as c:
        assert c.execute("SELECT count(*) FROM dentries WHERE name = %s", (b"hello.txt",)).fetchone() == (1,)
