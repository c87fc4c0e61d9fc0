"""A real PostgreSQL 15 server in a directory, for tests, ``tessera cluster demo`` and the benchmarks.

``LocalPostgres(dir)`` runs ``initdb`` into ``dir/data`` the first time (no locale: byte-order
collation, UTF-8; trust authentication from loopback and from the subnets the server's own addresses
are on (``samenet``): a local test or demo server, never one on a shared network), then starts
``postgres`` in the foreground of a child process and waits until it accepts connections.  Running
as root, the server runs as the ``postgres`` system user (PostgreSQL refuses root): ``dir`` is handed
to that user, and every directory above it must be searchable by it (``/tmp/...`` is, pytest's
``/tmp/pytest-of-root`` is not).

``wrap`` is a command prefix run in front of the server, e.g. ``["ip", "netns", "exec", "h1"]`` to
run it inside a network namespace (``host`` is then the namespace's address).  ``port=0`` picks a
free port (on this host's stack; inside a fresh namespace every port is free anyway).

:meth:`stop` asks for a fast shutdown (SIGINT: roll back sessions, checkpoint, exit) and kills the
server (SIGKILL to its process group) when it has not gone within the timeout; :meth:`kill` is
SIGKILL at once, a crash (the next start runs WAL recovery).  Unix sockets are off: everything goes
over TCP to ``host:port``.  The log is ``dir/postgres.log``.
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from types import TracebackType

PG_BIN = "/usr/lib/postgresql/15/bin"
SUPERUSER = "postgres"
DEFAULT_SETTINGS: dict[str, str] = {
    "max_connections": "300",
    "shared_buffers": "32MB",
    "unix_socket_directories": "",
    "fsync": "on",
    "synchronous_commit": "on",
    "log_min_messages": "warning",
    "log_connections": "off",
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LocalPostgres:
    def __init__(self, dir: str, host: str = "127.0.0.1", port: int = 0, wrap: Sequence[str] = (),
                 settings: Mapping[str, str] | None = None, initdb_sync: bool = True) -> None:
        self.dir = os.path.abspath(dir)
        self.data = os.path.join(self.dir, "data")
        self.host = host
        self.port = port or free_port("127.0.0.1" if wrap else host)
        self.wrap = list(wrap)
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.initdb_sync = initdb_sync
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_root = os.geteuid() == 0

    # -- commands ---------------------------------------------------------------------
    def _as_pg(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", SUPERUSER, "--", *argv] if self._as_root else argv

    def _own(self) -> None:
        if not self._as_root:
            return
        pw = pwd.getpwnam(SUPERUSER)
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)
        probe = subprocess.run(self._as_pg(["test", "-w", self.dir]), capture_output=True)
        if probe.returncode:
            raise RuntimeError(f"the {SUPERUSER} user cannot reach {self.dir}: give it a directory whose parents "
                               "it may search (e.g. under /tmp)")

    def initdb(self) -> None:
        """Create the cluster in ``dir/data`` unless it is there already."""
        os.makedirs(self.dir, exist_ok=True)
        self._own()
        if os.path.exists(os.path.join(self.data, "PG_VERSION")):
            return
        argv = [f"{PG_BIN}/initdb", "-D", self.data, "-U", SUPERUSER, "--auth=trust", "--no-locale",
                "-E", "UTF8", "--no-instructions"]
        if not self.initdb_sync:
            argv.append("--no-sync")
        res = subprocess.run(self._as_pg(argv), capture_output=True, timeout=120)
        if res.returncode:
            raise RuntimeError(f"initdb failed: {res.stderr.decode(errors='replace')[-2000:]}")
        with open(os.path.join(self.data, "pg_hba.conf"), "a") as f:  # the nodes of a demo cluster's subnet
            f.write("host all all samenet trust\n")

    def start(self, timeout: float = 30.0) -> LocalPostgres:
        self.initdb()
        opts = {**self.settings, "listen_addresses": self.host, "port": str(self.port)}
        argv = [f"{PG_BIN}/postgres", "-D", self.data, *(a for k, v in opts.items() for a in ("-c", f"{k}={v}"))]
        with open(os.path.join(self.dir, "postgres.log"), "ab") as log:
            self.proc = subprocess.Popen([*self.wrap, *self._as_pg(argv)], stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Poll with pg_isready, run through ``wrap`` (the namespace may be unreachable from here)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited ({self.proc.returncode}): {self.log_tail()}")
            probe = subprocess.run([*self.wrap, f"{PG_BIN}/pg_isready", "-q", "-t", "2", "-h", self.host,
                                    "-p", str(self.port), "-U", SUPERUSER], capture_output=True)
            if probe.returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"postgres did not accept connections within {timeout} s: {self.log_tail()}")

    def log_tail(self, n: int = 2000) -> str:
        try:
            with open(os.path.join(self.dir, "postgres.log"), "rb") as f:
                return f.read().decode(errors="replace")[-n:]
        except OSError:
            return ""

    # -- use --------------------------------------------------------------------------
    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` (if missing); its URL."""
        import psycopg
        from psycopg import sql
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as c:
            if c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # -- stop -------------------------------------------------------------------------
    def _postmaster_pid(self) -> int | None:
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown; SIGKILL to the whole process group if it does not finish within ``timeout``."""
        if self.proc is None:
            return
        pid = self._postmaster_pid()
        if self.proc.poll() is None:
            try:
                if pid is not None:
                    os.kill(pid, signal.SIGINT)
                else:
                    os.killpg(self.proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self._killpg()

    def kill(self) -> None:
        """SIGKILL the server and its children at once (a crash)."""
        if self.proc is not None:
            self._killpg()

    def _killpg(self) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        # a crash leaves backends behind briefly; they exit once the postmaster is gone
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _group_alive(self.proc.pid):
            time.sleep(0.02)
        self.proc = None

    def __enter__(self) -> LocalPostgres:
        return self.start() if self.proc is None else self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False
