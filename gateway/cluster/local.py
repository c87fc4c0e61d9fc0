"""A whole cluster on one machine: PostgreSQL and N Tessera nodes, each a host of its own.

As root, each node (and PostgreSQL) runs in its own network namespace on a bridge
(:mod:`gateway.cluster.netns`), so nodes reach each other only over the network, as separate machines
do; otherwise each node listens on its own loopback address (127.0.0.11, .12, ...).  Every node has its
own data directory and target directories, made with the same commands an operator types
(``tessera cluster init`` on the first, ``tessera node join`` on the others), and runs ``tessera serve``.

Used by ``tessera cluster demo``, the cluster tests and ``bench/cluster.py``.  Layout of ``DIR``::

    DIR/pg/                PostgreSQL (its data directory and log)
    DIR/n1/ ... DIR/nN/    the nodes' data directories (DIR/nI/targets/t0..): one per node
    DIR/nI/serve.pid       the node's ``tessera serve`` process group (``demo --kill`` reads it)
    DIR/cluster.json       what ``tessera cluster demo`` printed (nodes, endpoints, the demo user)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from gateway.cluster.netns import Host, Net, free_subnet, unique_prefix
from gateway.cluster.postgres import LocalPostgres

TARGET_PORT = 7070
S3_PORT = 9000
ADMIN_PORT = 9100


class ClusterError(RuntimeError):
    pass


def tessera_argv() -> list[str]:
    return [sys.executable, "-m", "gateway.cli"]


@dataclass
class Node:
    name: str
    addr: str  # its IP address
    data: str
    host: Host | None = None  # its network namespace, when there is one
    proc: subprocess.Popen[bytes] | None = None
    log: str = ""

    @property
    def s3(self) -> str:
        return f"http://{self.addr}:{S3_PORT}"

    @property
    def admin(self) -> str:
        return f"http://{self.addr}:{ADMIN_PORT}"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class LocalCluster:
    dir: str
    nodes_wanted: int = 3
    targets_per_node: int = 3
    ec: str | None = None
    protocols: tuple[str, ...] = ("s3",)
    dead_after_s: float = 30.0
    s3_workers: int = 1
    netns: bool | None = None  # None: when it works here (root)
    env: dict[str, str] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    user: dict[str, str] = field(default_factory=dict)
    pg: LocalPostgres | None = None
    net: Net | None = None  # given: the nodes join that network (and the caller closes it)
    meta_url: str = ""  # given: use that metadata (e.g. a Patroni cluster) instead of starting PostgreSQL
    _own_net: bool = False

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self, timeout: float = 180.0) -> LocalCluster:
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        os.makedirs(self.dir, exist_ok=True)
        if self.net is not None:
            self.netns = True
        if self.netns is None:
            self.netns = Net.usable()
        if self.netns and self.net is None:
            self.net = Net(unique_prefix("tc"), free_subnet())  # several clusters (tests, a demo) side by side
            self._own_net = True
        if not self.meta_url:
            self._start_postgres()
        for _ in range(self.nodes_wanted):
            self.add_node(start=False)
        self.user = self._make_user()
        for n in self.nodes:
            self.start_node(n.name, wait=False)
        for n in self.nodes:
            self.wait_serving(n, timeout)

    def _start_postgres(self) -> None:
        pg_host = "127.0.0.1"
        wrap: list[str] = []
        if self.net is not None:
            meta = self.net.add_host("meta")
            pg_host, wrap = meta.addr, meta.wrap()
        self.pg = LocalPostgres(os.path.join(self.dir, "pg"), host=pg_host, port=5432 if self.net else 0,
                                wrap=wrap, settings={"max_connections": "200"})
        self.pg.initdb()
        if self.net is not None:  # the nodes connect from the bridge's subnet (a demo: trust, as on loopback)
            with open(os.path.join(self.pg.data, "pg_hba.conf"), "a") as f:
                f.write(f"host all all {self.net.subnet} trust\n")
        self.pg.start()
        self.meta_url = self.pg.create_database("tessera")

    def _next_node(self) -> Node:
        i = len(self.nodes) + 1
        name = f"n{i}"
        while self.net is not None and any(h.name == name for h in self.net.hosts):
            i += 1
            name = f"n{i}"
        data = os.path.join(self.dir, name)
        if self.net is not None:
            host = self.net.add_host(name)
            return Node(name, host.addr, data, host)
        addr = f"127.0.0.{10 + i}"
        return Node(name, addr, data)

    def add_node(self, *, start: bool = True, timeout: float = 120.0) -> Node:
        """Make the next node (``cluster init`` for the first, ``node join`` after) and start it."""
        n = self._next_node()
        targets = [os.path.join(n.data, "targets", f"t{j}") for j in range(self.targets_per_node)]
        common = ["--data", n.data, "--name", n.name, "--addr", f"{n.addr}:{TARGET_PORT}", "--meta", self.meta_url]
        for t in targets:
            common += ["--target", t]
        if not self.nodes:
            argv = ["cluster", "init", *common, "--expect", str(max(self.nodes_wanted, 1))]
            if self.ec:
                argv += ["--ec", self.ec]
        else:
            argv = ["node", "join", *common, "--key", os.path.join(self.nodes[0].data, "meta", "store.key")]
        self.cli(argv)
        self._configure(n)
        self.nodes.append(n)
        if start:
            self.start_node(n.name)
        return n

    def _configure(self, n: Node) -> None:
        import yaml
        path = os.path.join(n.data, "tessera.yaml")
        with open(path) as f:
            cfg: dict[str, Any] = yaml.safe_load(f)
        cfg["log"] = {"level": "info", "format": "json"}
        cfg["admin"] = {"enabled": True, "listen": f"{n.addr}:{ADMIN_PORT}"}
        cfg["s3"] = {**cfg.get("s3", {}), "enabled": "s3" in self.protocols, "listen": f"{n.addr}:{S3_PORT}",
                     "workers": self.s3_workers}
        for proto, port, user_port in (("nfs", 2049, 12049), ("smb", 445, 4445)):
            sec = dict(cfg.get(proto, {}))
            sec["enabled"] = proto in self.protocols
            sec["listen"] = f"{n.addr}:{port}"
            sec["user_listen"] = f"{n.addr}:{user_port}"
            if proto == "nfs":
                sec["rpcbind"] = False
                sec["exports"] = [{"path": "/", "clients": ["*"], "access": "rw", "squash": "root"}]
            cfg[proto] = sec
        cfg["cluster"] = {"dead_after_s": self.dead_after_s, "heartbeat_s": 1.0, "auto_rebuild": True}
        cfg["maintenance"] = {"gc_interval_s": 300, "repair_interval_s": 10}
        with open(path, "w") as f:
            yaml.safe_dump(cfg, f)

    def _make_user(self) -> dict[str, str]:
        out = self.cli(["user", "add", "demo", "--admin", "--password", "demo-password", "--json",
                        "--data", self.nodes[0].data])
        doc = json.loads(out)
        return {"name": "demo", "access_key": doc["access_key"], "secret_key": doc["secret_key"],
                "password": "demo-password"}

    def cli(self, argv: list[str], timeout: float = 120.0) -> str:
        env = {**os.environ, **self.env}
        r = subprocess.run([*tessera_argv(), *argv], capture_output=True, text=True, timeout=timeout, env=env)
        if r.returncode != 0:
            raise ClusterError(f"tessera {' '.join(argv[:2])} failed: {r.stderr.strip() or r.stdout.strip()}")
        return r.stdout

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise ClusterError(f"no node {name}")

    def start_node(self, name: str, *, wait: bool = True, timeout: float = 120.0) -> Node:
        n = self.node(name)
        if n.running():
            return n
        n.log = os.path.join(n.data, "serve.log")
        argv = [*tessera_argv(), "serve", "--data", n.data]
        env = {**os.environ, **self.env}
        with open(n.log, "ab") as logf:
            if n.host is not None:
                n.proc = n.host.popen(argv, stdout=logf, stderr=subprocess.STDOUT, env=env)
            else:
                n.proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, env=env,
                                          start_new_session=True)
        with open(os.path.join(n.data, "serve.pid"), "w") as f:
            f.write(f"{n.proc.pid}\n")
        if wait:
            self.wait_serving(n, timeout)
        return n

    def wait_serving(self, n: Node, timeout: float = 120.0) -> None:
        """Until the node's admin endpoint and S3 (when enabled) answer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not n.running():
                raise ClusterError(f"node {n.name} exited: {self.log_tail(n)}")
            if _http_ok(f"{n.admin}/healthz") and ("s3" not in self.protocols or _tcp_ok(n.addr, S3_PORT)):
                return
            time.sleep(0.3)
        raise ClusterError(f"node {n.name} not serving after {timeout:.0f} s: {self.log_tail(n)}")

    def log_tail(self, n: Node, size: int = 3000) -> str:
        try:
            with open(n.log, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - size))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def kill(self, name: str) -> None:
        """SIGKILL every process of the node (its target server and protocol servers)."""
        n = self.node(name)
        if n.host is not None:
            n.host.kill_all(signal.SIGKILL)
        elif n.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(n.proc.pid, signal.SIGKILL)
        if n.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                n.proc.wait(10)

    def stop_node(self, name: str, timeout: float = 30.0) -> None:
        n = self.node(name)
        if n.proc is None or n.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(n.proc.pid, signal.SIGTERM)
        try:
            n.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(name)

    def info(self) -> dict[str, Any]:
        return {"nodes": [{"name": n.name, "s3": n.s3, "admin": n.admin, "target": f"{n.addr}:{TARGET_PORT}",
                           "data": n.data} for n in self.nodes],
                "user": {"access_key": self.user.get("access_key"), "secret_key": self.user.get("secret_key"),
                         "name": self.user.get("name"), "password": self.user.get("password")},
                "meta": self.meta_url}

    def stop(self) -> None:
        """Stop every node, PostgreSQL and the namespaces (on every path; idempotent)."""
        for n in self.nodes:
            with contextlib.suppress(Exception):
                self.stop_node(n.name, timeout=15)
        for n in self.nodes:
            with contextlib.suppress(Exception):
                self.kill(n.name)
        if self.pg is not None:
            with contextlib.suppress(Exception):
                self.pg.stop()
        if self.net is not None and self._own_net:
            self.net.close()

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status) < 500
    except Exception:
        return False


def _tcp_ok(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def kill_from_pidfile(dir: str, name: str) -> int:
    """``tessera cluster demo --kill NODE``: SIGKILL the process group a running demo started for NODE."""
    path = os.path.join(dir, name, "serve.pid")
    try:
        with open(path) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        raise ClusterError(f"no running demo node {name} under {dir} ({path} missing)") from None
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        raise ClusterError(f"node {name} is not running") from None
    return pid
