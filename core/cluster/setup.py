"""Making and joining a cluster, and the cluster methods of the admin plane (mixed into Store)."""


from __future__ import annotations

import contextlib
import os
import time

from core.cluster.member import Member
from core.cluster.members import NodeStatus, add_targets, drain, pick_geometry, remove, status
from core.cluster.node import (
    DEFAULT_DEAD_AFTER_S,
    HEARTBEAT_S,
    Liveness,
    NodeInfo,
    check_addr,
    check_name,
    save_node,
)
from core.data.store import DataStore
from core.errors import Exists, InvalidArgument
from core.identity.secretbox import StoreKey
from core.meta.nodetxn import NodeRow
from core.meta.store import MetaStore


# -- making and joining a cluster (``tessera cluster init`` / ``tessera node join``) --------------------------
def init_cluster(data_dir: str, url: str, name: str, addr: str, targets: list[str], *,
                 ec: tuple[int, int] | None = None, expect: int = 3, cell: int | None = None) -> tuple[str, int, int]:
    """Make a new store whose metadata is at ``url`` with this machine as its first node.

    The geometry defaults to one that survives the loss of any node once ``expect`` nodes with as many
    targets as this one have joined (:func:`pick_geometry`).  Returns (store id, k, m).
    """
    from core.store import DEFAULT_CELL, init_store
    check_name(name)
    check_addr(addr)
    if not targets:
        raise InvalidArgument("a node needs at least one target directory")
    k, m = ec or pick_geometry(max(1, expect), max(1, expect) * len(targets))
    sid = init_store(data_dir, targets=targets, ec=(k, m), meta_url=url, node=name, cell=cell or DEFAULT_CELL)
    save_node(data_dir, NodeInfo(name, addr, str(sid)))
    return str(sid), k, m


def join_cluster(data_dir: str, url: str, key_file: str, name: str, addr: str, targets: list[str]) -> str:
    """Make ``data_dir`` a new node of the cluster whose metadata is at ``url``; returns the store id.

    ``key_file`` is the store key (``DIR/meta/store.key`` of any node).  The node's targets are formatted and
    recorded; the node takes new data once its ``tessera serve`` heartbeats.
    """
    from core.meta.factory import open_meta
    check_name(name)
    check_addr(addr)
    if not targets:
        raise InvalidArgument("a node needs at least one target directory")
    meta_dir = os.path.join(data_dir, "meta")
    if os.path.exists(os.path.join(meta_dir, "url")) or os.path.exists(os.path.join(meta_dir, "meta.db")):
        raise Exists(f"a store already exists in {data_dir}")
    try:
        with open(key_file, "rb") as f:
            key = f.read()
    except OSError as e:
        raise InvalidArgument(f"cannot read the store key {key_file}: {e.strerror}") from None
    os.makedirs(meta_dir, mode=0o700, exist_ok=True)
    for fname, content in (("url", (url.strip() + "\n").encode()), ("store.key", key)):
        fd = os.open(os.path.join(meta_dir, fname), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
    try:
        meta = open_meta(data_dir)
        try:
            with meta.read() as t:
                sid = t.info("store_id")
                if sid is None:
                    raise InvalidArgument(f"no Tessera store in the metadata at {url}")
                row = t.node(name)
            if row is not None:
                raise Exists(f"a node named {name} is already a member; pick another name")
            with meta.read() as t:
                sealed = {StoreKey.sealed_by(k.secret) for k in t.access_keys()} - {None}
            if sealed and StoreKey(key).id not in sealed:
                raise InvalidArgument(f"{key_file} is not this store's key (its S3 secrets are sealed with another)")
            # the node row first: a target is never without the address other nodes reach it at
            meta.write(lambda t: t.put_node(NodeRow(name, addr, {}, "up", 0, time.time_ns())))
            try:
                add_targets(meta, sid, name, targets)
            except BaseException:
                meta.write(lambda t: t.remove_node(name))  # no half-joined member left behind
                raise
        finally:
            meta.close()
    except BaseException:
        for fname in ("url", "store.key"):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(meta_dir, fname))
        raise
    save_node(data_dir, NodeInfo(name, addr, sid))
    return sid



class ClusterPlane:
    """The admin plane's cluster methods, mixed into :class:`core.store.Store` (no-ops on a one-node store)."""

    _meta: MetaStore
    _data: DataStore
    node: NodeInfo | None
    _secret: bytes
    _live: Liveness | None

    def cluster_nodes(self) -> list[NodeRow]:
        with self._meta.read() as t:
            return t.nodes()

    def cluster_status(self) -> list[NodeStatus]:
        from core.data.maintenance import health
        dead_after = self._live.current_dead_after() if self._live else DEFAULT_DEAD_AFTER_S
        return status(self._meta, health(self._data).targets, dead_after)

    def maintenance_leader(self) -> str | None:
        """The node that last took the cluster's maintenance lock (the holder while its heartbeat is fresh)."""
        with self._meta.read() as t:
            return t.info("maintenance_leader")

    def drain_node(self, name: str) -> int:
        n = drain(self._meta, name)
        self._data.refresh()
        return n

    def remove_node(self, name: str, *, force: bool = False) -> None:
        remove(self._meta, name, force=force)
        self._data.refresh()

    def rebuild_needed(self) -> bool:
        """Whether a segment keeps a shard on a failed or draining target (rebuild has work to do)."""
        with self._meta.read() as t:
            bad = [x.id for x in t.targets() if x.state in ("failed", "draining")]
            if not bad:
                return False
            q = ", ".join("?" * len(bad))
            row = t.one(f"SELECT COUNT(*) FROM shards WHERE target IN ({q})", bad)
        return bool(row and int(row[0]))

    def cluster_member(self, *, heartbeat_s: float = HEARTBEAT_S) -> Member | None:
        """This node's cluster duties for ``tessera serve`` (None on a one-node store)."""
        if self.node is None:
            return None
        dead_after = self._live.dead_after if self._live else DEFAULT_DEAD_AFTER_S
        return Member(self._meta, self._data, self.node, self._secret, heartbeat_s=heartbeat_s,
                      dead_after=dead_after)
