"""HaMeta: highly available metadata for the cluster tests — PostgreSQL 15 under Patroni 3.0 over one etcd.

The picture (each box a network namespace host of a `gateway.cluster.netns.Net`)::

    [dcs: etcd :2379]  <--  [pg1: patroni :8008 + postgres :5432]  (leader: holds the etcd leader key)
                       <--  [pg2: patroni + postgres]               (synchronous standby)
                       <--  [pg3: patroni + postgres]               (asynchronous replica)

Patroni runs as the ``postgres`` user inside each namespace (``ip netns exec NS runuser -u postgres --
patroni cfg.yml``: entering a namespace needs root, so the user switch comes after it). It bootstraps the
first PostgreSQL with initdb (data checksums on), makes the others replicas by pg_basebackup, and keeps the
leader key in etcd alive every `loop_wait` s; the key expires `ttl` s after the leader dies, and a replica
takes it and promotes itself.

No acknowledged commit is lost in a failover: ``synchronous_mode: true`` makes the primary wait for a
synchronous standby's flush before a commit returns, and Patroni promotes only the node recorded in etcd
as that synchronous standby. (Not strict mode: with one node left the primary keeps accepting writes
asynchronously — the store stays writable, and Patroni still will not promote a node that might lack them.)
``use_pg_rewind`` (with wal_log_hints) lets a killed primary rejoin as a replica of the new one when it
comes back; if its timeline cannot be rewound Patroni re-clones it.

Clients use the libpq multi-host URL from `url()`: ``target_session_attrs=read-write`` finds the primary,
``connect_timeout=2`` bounds each attempt at a dead host.

etcd may share a host with a PostgreSQL node (the default: the first host) or have its own (`etcd_host`);
`kill_node` / `kill_primary` SIGKILL Patroni and PostgreSQL on a host and never etcd.

Interface: ``HaMeta(net, hosts, workdir, etcd_host=None, ttl=10, loop_wait=1, retry_timeout=4)``;
`start()`, `url(db)`, `host_url(host, db)`, `create_database(db)`, `members()`, `primary()`,
`wait_primary(exclude, timeout)`, `wait_sync_standby()`, `wait_replica(host)`, `kill_node(host)`,
`kill_primary()`, `start_node(host)` (restart after a kill), `stop()`. `workdir` must be searchable by the
postgres user (`make_workdir()` makes one under /tmp; pytest's tmp_path is not).

Measured here (2 cores, ttl 10 s, loop_wait 1 s): a SIGKILLed primary is replaced in 9.7-10.4 s and a client
on the multi-host URL writes again 10-11 s after the kill; a primary cut off from its peers is replaced in
12-14 s (it must first fail to renew the leader key); a returning node streams again within ~10 s.

PostgreSQL is small here (2 cores shared by everything): shared_buffers 16MB, max_connections 50.
`stop()` stops every Patroni (which stops its PostgreSQL cleanly), then SIGKILLs whatever is left in the
namespaces, on every path; it is idempotent.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any

import psycopg
import psycopg.sql

from gateway.cluster.netns import Host, Net

BIN_DIR = "/usr/lib/postgresql/15/bin"
PG_PORT = 5432
API_PORT = 8008
ETCD_PORT = 2379


class HaError(RuntimeError):
    """The HA metadata cluster did not reach the state waited for."""


class HaMeta:
    """etcd on `etcd_host` (default: the first of `hosts`) and Patroni + PostgreSQL on each of `hosts`."""

    def __init__(self, net: Net, hosts: list[Host], workdir: str, etcd_host: Host | None = None,
                 ttl: int = 10, loop_wait: int = 1, retry_timeout: int = 4) -> None:
        if loop_wait + 2 * retry_timeout > ttl:
            raise ValueError("Patroni needs loop_wait + 2 * retry_timeout <= ttl")
        self.net = net
        self.hosts = list(hosts)
        self.etcd_host = etcd_host or hosts[0]
        self.workdir = os.path.abspath(workdir)
        self.ttl, self.loop_wait, self.retry_timeout = ttl, loop_wait, retry_timeout
        self.user = "postgres"
        self.password = secrets.token_hex(8)
        self.repl_password = secrets.token_hex(8)
        self.scope = f"tessera-{net.prefix}"
        self.etcd: Any = None  # subprocess.Popen of etcd
        self.patronis: dict[str, Any] = {}  # host name -> subprocess.Popen of patroni
        self._logs: list[Any] = []

    # ---- addresses -------------------------------------------------------------------------------------

    def url(self, db: str = "postgres") -> str:
        """The libpq multi-host URL that reaches the current primary."""
        hosts = ",".join(f"{h.addr}:{PG_PORT}" for h in self.hosts)
        return (f"postgresql://{self.user}:{self.password}@{hosts}/{db}"
                "?target_session_attrs=read-write&connect_timeout=2")

    def host_url(self, host: Host, db: str = "postgres") -> str:
        """A URL for one node, primary or not (reads on a replica, or checking what a node holds)."""
        return f"postgresql://{self.user}:{self.password}@{host.addr}:{PG_PORT}/{db}?connect_timeout=2"

    def create_database(self, db: str) -> None:
        """CREATE DATABASE `db` on the primary (replicated like everything else)."""
        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(db)))

    # ---- start -----------------------------------------------------------------------------------------

    def start(self, timeout: float = 120) -> None:
        """Start etcd and every Patroni; return when there is a primary and a streaming synchronous standby."""
        _check_reachable_by_postgres(self.workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self._start_etcd()
        for h in self.hosts:
            self._write_config(h)
        for h in self.hosts:
            self.start_node(h)
        self.wait_primary(timeout=timeout)
        self.wait_sync_standby(timeout=timeout)

    def _log(self, name: str) -> Any:
        f = open(os.path.join(self.workdir, f"{name}.log"), "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(f)
        return f

    def _start_etcd(self) -> None:
        h = self.etcd_host
        data = os.path.join(self.workdir, "etcd")
        client, peer = f"http://{h.addr}:{ETCD_PORT}", f"http://{h.addr}:{ETCD_PORT + 1}"
        env = dict(os.environ, ETCD_UNSUPPORTED_ARCH=os.environ.get("ETCD_UNSUPPORTED_ARCH", "arm64"))
        log = self._log("etcd")
        self.etcd = h.popen(["etcd", "--name", "dcs", "--data-dir", data,
                             "--listen-client-urls", client, "--advertise-client-urls", client,
                             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                             "--initial-cluster", f"dcs={peer}", "--initial-cluster-state", "new",
                             "--initial-cluster-token", self.scope],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
        _wait(lambda: _http_json(f"{client}/health", timeout=1) is not None, 30, "etcd to answer", self._tail)

    def _node_dir(self, h: Host) -> str:
        return os.path.join(self.workdir, h.name)

    def _write_config(self, h: Host) -> None:
        d = self._node_dir(h)
        os.makedirs(d, mode=0o700, exist_ok=True)
        pw = pwd.getpwnam("postgres")
        os.chown(d, pw.pw_uid, pw.pw_gid)
        with open(os.path.join(d, "patroni.yml"), "w") as f:
            json.dump(self._config(h), f, indent=1)  # YAML is a superset of JSON
        os.chown(os.path.join(d, "patroni.yml"), pw.pw_uid, pw.pw_gid)

    def _config(self, h: Host) -> dict[str, Any]:
        d = self._node_dir(h)
        subnet = str(self.net.subnet)
        return {
            "scope": self.scope, "name": h.name,
            "log": {"level": "INFO"},
            "restapi": {"listen": f"{h.addr}:{API_PORT}", "connect_address": f"{h.addr}:{API_PORT}"},
            "etcd3": {"hosts": [f"{self.etcd_host.addr}:{ETCD_PORT}"]},
            "bootstrap": {
                "dcs": {
                    "ttl": self.ttl, "loop_wait": self.loop_wait, "retry_timeout": self.retry_timeout,
                    "maximum_lag_on_failover": 1024 * 1024,
                    "synchronous_mode": True, "synchronous_mode_strict": False,
                    "postgresql": {
                        "use_pg_rewind": True, "use_slots": True,
                        "remove_data_directory_on_rewind_failure": True,
                        "remove_data_directory_on_diverged_timelines": True,
                        "parameters": {
                            "max_connections": 50, "shared_buffers": "16MB", "wal_level": "replica",
                            "hot_standby": "on", "wal_log_hints": "on", "max_wal_senders": 10,
                            "max_replication_slots": 10, "wal_keep_size": "64MB", "synchronous_commit": "on",
                            # a primary cut off from its standbys must shut down (demote) within
                            # retry_timeout: a walsender waits for an unreachable standby this long
                            "wal_sender_timeout": "2s", "wal_receiver_status_interval": "1s",
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, "data-checksums"],
            },
            "postgresql": {
                "listen": f"{h.addr}:{PG_PORT}", "connect_address": f"{h.addr}:{PG_PORT}",
                "data_dir": os.path.join(d, "data"), "bin_dir": BIN_DIR,
                "pgpass": os.path.join(d, "pgpass"),
                "authentication": {
                    "superuser": {"username": self.user, "password": self.password},
                    "replication": {"username": "replicator", "password": self.repl_password},
                },
                "parameters": {"unix_socket_directories": d, "max_connections": 50, "shared_buffers": "16MB"},
                "pg_hba": [
                    "local all all trust",
                    f"host replication replicator {subnet} scram-sha-256",
                    f"host all all {subnet} scram-sha-256",
                ],
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
        }

    def start_node(self, h: Host) -> None:
        """Start (or restart, after `kill_primary`) Patroni on host `h`; it starts its PostgreSQL itself."""
        old = self.patronis.get(h.name)
        if old is not None and old.poll() is None:
            raise HaError(f"patroni already runs on {h.name}")
        cfg = os.path.join(self._node_dir(h), "patroni.yml")
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": self._node_dir(h)}
        self.patronis[h.name] = h.popen(["runuser", "-u", "postgres", "--", "patroni", cfg],
                                        stdout=self._log(h.name), stderr=subprocess.STDOUT, env=env,
                                        cwd=self._node_dir(h))

    # ---- state -----------------------------------------------------------------------------------------

    def members(self) -> list[dict[str, Any]]:
        """Patroni's view of the cluster (name, role: leader/sync_standby/replica, state, timeline, lag),
        asked of the first node that answers; [] when none does."""
        for h in self.hosts:
            r = _http_json(f"http://{h.addr}:{API_PORT}/cluster", timeout=1)
            if r is not None:
                return list(r.get("members", []))
        return []

    def _host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def primary(self) -> Host | None:
        """The node that holds the leader key and says it is a running primary, if any."""
        for m in self.members():
            if m.get("role") == "leader" and m.get("state") == "running":
                h = self._host(m["name"])
                if _http_status(f"http://{h.addr}:{API_PORT}/primary") == 200:
                    return h
        return None

    def wait_primary(self, exclude: Iterable[Host] = (), timeout: float = 60) -> Host:
        """Wait for a running primary that is not one of `exclude`; return it."""
        skip = {h.name for h in exclude}
        found: list[Host] = []

        def ready() -> bool:
            p = self.primary()
            if p is not None and p.name not in skip:
                found.append(p)
                return True
            return False

        _wait(ready, timeout, "a primary", self._tail)
        return found[0]

    def wait_sync_standby(self, timeout: float = 60) -> Host:
        """Wait for a streaming synchronous standby; return it."""
        found: list[Host] = []

        def ready() -> bool:
            for m in self.members():
                if m.get("role") == "sync_standby" and m.get("state") in ("running", "streaming"):
                    found.append(self._host(m["name"]))
                    return True
            return False

        _wait(ready, timeout, "a synchronous standby", self._tail)
        return found[0]

    def wait_replica(self, h: Host, timeout: float = 60) -> None:
        """Wait until `h` runs as a replica on the current leader's timeline, streaming from it (asked of
        its PostgreSQL too: etcd may still hold what the node wrote before a partition)."""
        def ready() -> bool:
            ms = {m["name"]: m for m in self.members()}
            leader = next((m for m in ms.values() if m.get("role") == "leader"), None)
            me = ms.get(h.name)
            return (leader is not None and me is not None and me.get("role") in ("replica", "sync_standby")
                    and me.get("state") in ("running", "streaming")
                    and me.get("timeline") == leader.get("timeline")
                    and self._streams_from(h, self._host(leader["name"])))

        _wait(ready, timeout, f"{h.name} to run as a replica", self._tail)

    def _streams_from(self, h: Host, leader: Host) -> bool:
        try:
            with psycopg.connect(self.host_url(h)) as c:
                row = c.execute("SELECT pg_is_in_recovery(), (SELECT sender_host FROM pg_stat_wal_receiver"
                                " WHERE status = 'streaming')").fetchone()
        except psycopg.Error:
            return False
        return row is not None and row[0] is True and row[1] == leader.addr

    # ---- faults and teardown ---------------------------------------------------------------------------

    def kill_node(self, h: Host) -> None:
        """SIGKILL Patroni and PostgreSQL on `h` (and nothing else there: etcd may share the host)."""
        keep = {self.etcd.pid} if self.etcd is not None and h is self.etcd_host else set()
        p = self.patronis.get(h.name)
        if p is not None and p.poll() is None:
            p.kill()
        deadline = time.monotonic() + 10
        while True:
            pids = [pid for pid in h.pids() if pid not in keep]
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if not pids or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if p is not None:
            p.wait(timeout=5)
        h.reap()

    def kill_primary(self) -> Host:
        """SIGKILL the current primary's Patroni and PostgreSQL; return that host."""
        p = self.primary()
        if p is None:
            raise HaError("no primary to kill")
        self.kill_node(p)
        return p

    def stop(self) -> None:
        """Stop everything this harness started, on every path; idempotent."""
        try:
            for p in self.patronis.values():
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)  # runuser passes it on: Patroni stops PostgreSQL (fast)
            deadline = time.monotonic() + 20
            for p in self.patronis.values():
                try:
                    p.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        finally:
            for h in self.hosts:
                if h is not self.etcd_host:
                    h.kill_all()
            self.etcd_host.kill_all()
            for f in self._logs:
                f.close()
            self._logs = []

    def _tail(self) -> str:
        """The end of every log, for a failure message."""
        out = []
        for name in ["etcd", *(h.name for h in self.hosts)]:
            path = os.path.join(self.workdir, f"{name}.log")
            try:
                with open(path, "rb") as f:
                    f.seek(max(0, os.path.getsize(path) - 1500))
                    out.append(f"--- {name}.log\n" + f.read().decode(errors="replace"))
            except OSError:
                pass
        return "\n".join(out)


def make_workdir(stem: str = "tessera-ha-") -> str:
    """A fresh directory the postgres user can reach (pytest's tmp_path is root-only); remove with shutil."""
    import tempfile

    d = tempfile.mkdtemp(prefix=stem, dir="/tmp")
    os.chmod(d, 0o755)
    return d


def remove_workdir(d: str) -> None:
    shutil.rmtree(d, ignore_errors=True)


def _check_reachable_by_postgres(path: str) -> None:
    p = os.path.abspath(path)
    while True:
        parent = os.path.dirname(p)
        if parent == p:
            return
        if os.path.exists(parent) and not os.stat(parent).st_mode & 0o001:
            raise HaError(f"{parent} is not searchable by the postgres user: use make_workdir()")
        p = parent


def _wait(ready: Any, timeout: float, what: str, tail: Any) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise HaError(f"timed out after {timeout:.0f} s waiting for {what}\n{tail()}")
        time.sleep(0.2)


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the bridge is never behind a proxy


def _http_json(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    try:
        with _opener.open(url, timeout=timeout) as r:
            data = json.loads(r.read())
            return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _http_status(url: str, timeout: float = 1.0) -> int:
    try:
        with _opener.open(url, timeout=timeout) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return 0
