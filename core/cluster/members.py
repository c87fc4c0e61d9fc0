"""Membership changes in the metadata: targets of a node, register/rejoin, heartbeats, dead nodes, drain,
remove, status, and what a geometry risks over a number of nodes."""


from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass

from core.cluster.node import (
    NodeInfo,
)
from core.data.placement import max_per_domain, nodes_needed
from core.data.target import DirTarget, Target
from core.errors import Exists, InvalidArgument, NotEmpty, NotFound
from core.meta import proc
from core.meta.nodetxn import NodeRow
from core.meta.store import MetaStore
from core.meta.txn import Txn


# -- membership ------------------------------------------------------------------------------------------
def add_targets(meta: MetaStore, store_id: str, node: str, paths: list[str]) -> list[int]:
    """Format ``paths`` as targets of ``node`` (each its own disk; the node is their fault domain)."""
    import uuid
    ids = []
    for p in paths:
        p = os.path.abspath(p)
        if os.path.exists(os.path.join(p, "target.json")):
            raise Exists(f"{p} is already a target")
    for p in paths:
        p = os.path.abspath(p)
        tid = meta.write(functools.partial(_add_target, path=p, node=node, now=time.time_ns()))
        DirTarget.format(p, tid, uuid.UUID(store_id))
        ids.append(tid)
    return ids


def _add_target(t: Txn, *, path: str, node: str, now: int) -> int:
    if any(x.node == node and x.path == path for x in t.targets()):
        raise Exists(f"{path} is already a target of {node}")
    return t.add_target(path, 1.0, node, now, node)


def register(meta: MetaStore, me: NodeInfo, endpoints: dict[str, str], targets: dict[int, Target]) -> list[int]:
    """Announce this node (address, endpoints, heartbeat) and bring back its failed targets.

    A target of this node marked failed while the node was away keeps the shards rebuild did not move yet;
    the ones rebuild placed elsewhere are dropped, then the target is in use again.  Returns the ids of the
    targets brought back.
    """
    now = time.time_ns()

    def put(t: Txn) -> None:
        row = t.node(me.name)
        if row is not None and row.state == "removed":
            raise InvalidArgument(f"node {me.name} was removed from the cluster; join it again under a new name")
        state = row.state if row is not None else "up"
        t.put_node(NodeRow(me.name, me.addr, endpoints, state, now, row.joined if row else now))
    meta.write(put)
    back = []
    with meta.read() as t:
        mine = [x for x in t.targets() if x.node == me.name and x.state == "failed"]
    for info in mine:
        tgt = targets.get(info.id)
        if tgt is None or not tgt.available():
            continue
        _drop_replaced(meta, tgt, info.id)
        meta.write(functools.partial(Txn.set_target_state, tid=info.id, state="ok"))
        back.append(info.id)
    return back


def _drop_replaced(meta: MetaStore, tgt: Target, tid: int) -> int:
    """Remove shard files on ``tgt`` whose segment now keeps that shard elsewhere (rebuild moved it)."""
    dropped = 0
    with meta.read() as t:
        segs = {sid: t.segment(sid) for sid in {s for s, _ in tgt.list_shards()}}
    for sid, idx in tgt.list_shards():
        seg = segs.get(sid)
        if seg is None:
            continue  # not known (yet, or any more): GC's to judge
        if idx >= len(seg.targets) or seg.targets[idx] != tid:
            tgt.remove_shard(sid, idx)
            dropped += 1
    return dropped


def heartbeat(meta: MetaStore, name: str) -> bool:
    """Record this node alive; False when it is no longer a member."""
    now = time.time_ns()
    return bool(meta.write(lambda t: t.heartbeat(name, now), durable=False))


def mark_dead(meta: MetaStore, dead_after: float) -> list[str]:
    """Mark the targets of nodes silent for ``dead_after`` seconds failed (rebuild then restores their cells)."""
    cutoff = time.time_ns() - int(dead_after * 1e9)

    def apply(t: Txn) -> list[str]:
        dead = [n.name for n in t.nodes() if n.state != "removed" and n.heartbeat < cutoff]
        hit = []
        for x in t.targets():
            if x.node in dead and x.state in ("ok", "draining"):
                t.set_target_state(x.id, "failed")
                hit.append(x.node)
        return sorted(set(hit))
    return meta.write(apply)


def drain(meta: MetaStore, name: str) -> int:
    """Stop placing new data on ``name`` and let rebuild move its shards off; returns its target count."""
    def apply(t: Txn) -> int:
        row = t.node(name)
        if row is None or row.state == "removed":
            raise NotFound(f"no node {name}")
        t.set_node_state(name, "draining")
        n = 0
        for x in t.targets():
            if x.node == name and x.state == "ok":
                t.set_target_state(x.id, "draining")
                n += 1
        return n
    return meta.write(apply)


def remove(meta: MetaStore, name: str, *, force: bool = False) -> None:
    """Forget ``name``: only once no segment keeps a shard on its targets, or with ``force`` (its targets are
    then failed and rebuild restores their cells from the others)."""
    def apply(t: Txn) -> None:
        row = t.node(name)
        if row is None:
            raise NotFound(f"no node {name}")
        tids = [x.id for x in t.targets() if x.node == name]
        held = 0
        for tid in tids:
            r = t.one("SELECT COUNT(*) FROM shards WHERE target = ?", (tid,))
            held += int(r[0]) if r else 0
        if held and not force:
            raise NotEmpty(f"node {name} still holds {held} shards: drain it and let rebuild finish, or --force")
        for tid in tids:
            if held:
                t.set_target_state(tid, "failed")
            else:
                t.exec("DELETE FROM targets WHERE id = ?", (tid,))
        if held:
            t.set_node_state(name, "removed")
        else:
            t.remove_node(name)
    meta.write(apply)


@dataclass
class NodeStatus:
    name: str
    addr: str
    state: str  # up, down, draining, removed
    endpoints: dict[str, str]
    heartbeat_age_s: float | None
    targets: list[dict[str, object]]


def status(meta: MetaStore, health_targets: list[dict[str, object]], dead_after: float) -> list[NodeStatus]:
    """Per node: state, targets (with used/free from ``Store.health()``), last heartbeat."""
    with meta.read() as t:
        nodes = t.nodes()
        infos = {x.id: x for x in t.targets()}
    now = time.time_ns()
    out = []
    for n in nodes:
        age = (now - n.heartbeat) / 1e9 if n.heartbeat else None
        state = n.state
        if state == "up" and (age is None or age > dead_after):
            state = "down"
        tg = [h for h in health_targets if infos.get(int(str(h["id"]))) and infos[int(str(h["id"]))].node == n.name]
        out.append(NodeStatus(n.name, n.addr, state, n.endpoints, age, tg))
    return out


def geometry_note(k: int, m: int, nodes: int) -> str | None:
    """What a k+m stripe over ``nodes`` nodes risks, or None when losing any one node is always survivable."""
    need = nodes_needed(k, m)
    if nodes >= need or nodes <= 1:
        return None if nodes >= need else (
            f"one node: {k}+{m} survives disk losses, not the node's; from {need} nodes on, any one node may fail")
    worst = max_per_domain(k + m, nodes)
    return (f"{nodes} nodes: {k}+{m} puts up to {worst} of a stripe's {k + m} cells on one node (more than "
            f"m={m}): losing that node can make data unreadable until {need} nodes are up. Add nodes, or make "
            f"the store with a smaller k (e.g. --ec {max(1, nodes * m - m)}+{m})")


def pick_geometry(nodes: int, targets: int) -> tuple[int, int]:
    """The default k+m for a cluster of ``nodes`` nodes and ``targets`` targets in all.

    >>> pick_geometry(4, 12), pick_geometry(3, 6), pick_geometry(2, 8), pick_geometry(3, 12)
    ((8, 3), (4, 2), (2, 2), (4, 2))
    """
    for k, m in ((8, 3), (4, 2), (2, 2), (2, 1), (1, 1)):
        if k + m <= targets and (nodes <= 1 or nodes >= nodes_needed(k, m)):
            return k, m
    raise InvalidArgument(f"{targets} targets are too few for erasure coding across {nodes} nodes")




def sweep_dead(meta: MetaStore, me: str) -> int:
    """Release what dead processes of node ``me`` left: locks, share modes, open segments (sealed).

    Other nodes cannot judge this node's processes (they only see its heartbeat), so each node sweeps its
    own; returns how many processes' leftovers went.
    """
    with meta.read() as t:
        rows = t.all("SELECT DISTINCT proc FROM locks UNION SELECT DISTINCT proc FROM opens "
                     "UNION SELECT DISTINCT owner FROM segments WHERE state = 'open'")
    dead = [str(r[0]) for r in rows if str(r[0]).startswith(me + ":") and not proc.alive(str(r[0]))]
    if not dead:
        return 0

    def apply(t: Txn) -> None:
        for p in dead:
            t.exec("DELETE FROM locks WHERE proc = ?", (p,))
            t.exec("DELETE FROM opens WHERE proc = ?", (p,))
            t.exec("UPDATE segments SET state = 'sealed' WHERE state = 'open' AND owner = ?", (p,))
    meta.write(apply, durable=False)
    return len(dead)
