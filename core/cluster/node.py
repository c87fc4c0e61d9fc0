"""A node's identity (``DIR/meta/node.json``), the cluster token, liveness by heartbeat, and the target
factory that opens other nodes' targets through their target servers."""


from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from core.data.store import TargetFactory, default_target
from core.data.target import ShardFile, Target
from core.errors import InvalidArgument
from core.identity.secretbox import StoreKey
from core.meta import proc
from core.meta.store import MetaStore
from core.meta.types import TargetInfo

if TYPE_CHECKING:
    pass

log = logging.getLogger("tessera.cluster")

NODE_FILE = "node.json"
HEARTBEAT_S = 2.0
DEFAULT_DEAD_AFTER_S = 300.0


@dataclass(frozen=True)
class NodeInfo:
    """What a data directory says about the node it belongs to."""

    name: str
    addr: str  # host:port of its target server, as the other nodes reach it
    store: str


def node_path(data_dir: str) -> str:
    return os.path.join(data_dir, "meta", NODE_FILE)


def load_node(data_dir: str) -> NodeInfo | None:
    """This data directory's node, or None for a one-node store."""
    try:
        with open(node_path(data_dir)) as f:
            d = json.load(f)
        return NodeInfo(str(d["name"]), str(d["addr"]), str(d["store"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InvalidArgument(f"{node_path(data_dir)} is damaged: {e}") from None


def save_node(data_dir: str, info: NodeInfo) -> None:
    path = node_path(data_dir)
    tmp = path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(asdict(info), f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def check_name(name: str) -> str:
    """Node names: 1-63 of [a-z0-9-], not starting with '-' (they are fault domains and host labels)."""
    ok = 0 < len(name) <= 63 and name[0] != "-" and all(c.isdigit() or c == "-" or "a" <= c <= "z" for c in name)
    if not ok:
        raise InvalidArgument(f"bad node name {name!r}: use 1-63 of a-z, 0-9 and '-'")
    return name


def check_addr(addr: str) -> str:
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"bad node address {addr!r}: want HOST:PORT")
    return addr


def token(key: StoreKey) -> bytes:
    """The target servers' cluster token (HMAC key), derived from the store key every node holds."""
    return key.derive("tessera target servers v1")


# -- liveness ---------------------------------------------------------------------------------------------
class Liveness:
    """Which nodes are alive, from their heartbeats (re-read at most every ``every`` seconds).

    ``dead_after`` is the cluster's: the metadata's ``info.dead_after_s`` (written by each node's ``serve`` from
    its ``cluster.dead_after_s``) when set, so every process of every node judges alike; the constructor's
    value until then."""

    def __init__(self, meta: MetaStore, dead_after: float, every: float = 1.0) -> None:
        self.meta = meta
        self.dead_after = dead_after
        self.every = every
        self._beats: dict[str, int] = {}
        self._addrs: dict[str, str] = {}
        self._at = 0.0
        self._lock = threading.Lock()

    def _load(self) -> dict[str, int]:
        with self._lock:
            if time.monotonic() - self._at > self.every:
                try:
                    with self.meta.read() as t:
                        nodes = t.nodes()
                        self._beats = {n.name: n.heartbeat for n in nodes if n.state != "removed"}
                        self._addrs = {n.name: n.addr for n in nodes if n.state != "removed"}
                        shared = t.info("dead_after_s")
                    if shared is not None:
                        self.dead_after = float(shared)
                except Exception:  # metadata unreachable: keep the last view
                    return self._beats
                self._at = time.monotonic()
            return self._beats

    def addr(self, node: str) -> str | None:
        """The node's target-server address (None: not a member)."""
        self._load()
        return self._addrs.get(node)

    def current_dead_after(self) -> float:
        self._load()
        return self.dead_after

    def alive(self, node: str) -> bool:
        beat = self._load().get(node)
        return beat is not None and time.time_ns() - beat < self.dead_after * 1e9


def install(meta: MetaStore, name: str, dead_after: float = DEFAULT_DEAD_AFTER_S) -> Liveness:
    """Name this process's node in process identities and judge other nodes' processes by heartbeat."""
    live = Liveness(meta, dead_after)
    proc.set_node(name, live.alive)
    return live


# -- targets: own ones local, the others' through their target servers ----------------------------------------
class _NodeTarget:
    """Another node's target, through that node's target server at its CURRENT address (re-read with the
    heartbeats, so a node that joins, moves or comes back on a new address is reached there), and
    unavailable while the node is down (no connection attempt then)."""

    def __init__(self, info: TargetInfo, secret: bytes, live: Liveness) -> None:
        self.id, self.path, self.node = info.id, info.path, info.node
        self.secret, self.live = secret, live
        self._inner: Target | None = None
        self._addr = ""
        self._lock = threading.Lock()

    def _target(self) -> Target:
        from core.data.remote import RemoteTarget
        addr = self.live.addr(self.node)
        if addr is None:
            raise OSError(errno.EHOSTUNREACH, f"node {self.node} has no address in the metadata")
        with self._lock:
            if self._inner is None or addr != self._addr:
                if self._inner is not None:
                    self._inner.close()
                self._inner, self._addr = RemoteTarget(self.id, self.path, addr, self.secret), addr
            return self._inner

    def open_shard(self, segment: int, index: int, create: bool = False) -> ShardFile:
        return self._target().open_shard(segment, index, create)

    def remove_shard(self, segment: int, index: int) -> None:
        self._target().remove_shard(segment, index)

    def list_shards(self) -> list[tuple[int, int]]:
        try:
            return self._target().list_shards()
        except OSError:
            return []

    def capacity(self) -> tuple[int, int]:
        try:
            return self._target().capacity() if self.live.alive(self.node) else (0, 0)
        except OSError:
            return 0, 0

    def usage(self) -> int:
        try:
            return self._target().usage() if self.live.alive(self.node) else 0
        except OSError:
            return 0

    def available(self) -> bool:
        try:
            return self.live.alive(self.node) and self._target().available()
        except OSError:
            return False

    def close(self) -> None:
        with self._lock:
            if self._inner is not None:
                self._inner.close()


def target_factory(meta: MetaStore, me: str, secret: bytes, live: Liveness) -> TargetFactory:
    """Targets of this node open as directories; the other nodes' through their target servers."""
    def make(info: TargetInfo) -> Target:
        if info.node in ("", me):
            return default_target(info)
        return _NodeTarget(info, secret, live)
    return make
