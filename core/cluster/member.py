"""One node's part in the cluster, run by ``tessera serve``."""


from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from core.cluster.members import heartbeat, mark_dead, register, sweep_dead
from core.cluster.node import (
    DEFAULT_DEAD_AFTER_S,
    HEARTBEAT_S,
    NodeInfo,
    log,
)
from core.data.store import DataStore
from core.data.target import Target
from core.meta.store import MetaStore

if TYPE_CHECKING:
    from core.data.tserver import TargetServer
    from core.meta.store import LeaderLock


# -- one node's part, run by ``tessera serve`` ------------------------------------------------------------
class Member:
    """A node's own cluster duties: serve its targets to the other nodes, heartbeat, and (when it holds the
    cluster-wide maintenance lock) fail dead nodes' targets and rebuild their cells elsewhere."""

    def __init__(self, meta: MetaStore, data: DataStore, me: NodeInfo, secret: bytes, *,
                 heartbeat_s: float = HEARTBEAT_S, dead_after: float = DEFAULT_DEAD_AFTER_S) -> None:
        self.meta, self.data, self.me, self.secret = meta, data, me, secret
        self.heartbeat_s, self.dead_after = heartbeat_s, dead_after
        self.server: TargetServer | None = None
        self._lock: LeaderLock | None = None
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None

    def own_targets(self) -> dict[int, Target]:
        self.data.refresh()
        return {i.id: self.data.target(i.id) for i in self.data.target_infos() if i.node == self.me.name}

    def start(self, listen: str, endpoints: dict[str, str]) -> int:
        """Start the target server on ``listen`` (host:port), announce the node, start heartbeats."""
        from core.data.tserver import TargetServer
        host, _, port = listen.rpartition(":")
        self.server = TargetServer(self.own_targets(), host.strip("[]") or "0.0.0.0", int(port), self.secret)
        bound = self.server.start()
        dead_after = str(self.dead_after)
        self.meta.write(lambda t: t.set_info("dead_after_s", dead_after))  # one value for every process
        back = register(self.meta, self.me, endpoints, self.own_targets())
        if back:
            log.info("targets back in use after a failure", extra={"node": self.me.name, "targets": back})
        self._beater = threading.Thread(target=self._beat_loop, name="heartbeat", daemon=True)
        self._beater.start()
        return bound

    def _beat_loop(self) -> None:
        beats = 0
        while not self._stop.wait(self.heartbeat_s):
            try:
                if not heartbeat(self.meta, self.me.name) and beats % 30 == 0:
                    log.warning("this node is no longer a cluster member ('tessera node remove'); its "
                                "heartbeats are ignored", extra={"node": self.me.name})
                beats += 1
                if beats % 5 == 0:
                    sweep_dead(self.meta, self.me.name)
            except Exception as e:  # metadata unreachable (failover): keep trying
                log.warning("heartbeat failed", extra={"node": self.me.name, "error": str(e)})

    def leader(self) -> bool:
        """Whether this node runs the cluster's scrub, rebuild and GC now (one node at a time)."""
        if self._lock is not None and not self._lock.held():
            self._lock = None
        if self._lock is None:
            self._lock = self.meta.leader("maintenance")
            if self._lock is not None:  # shown by 'cluster status'
                name = self.me.name
                self.meta.write(lambda t: t.set_info("maintenance_leader", name))
                log.info("this node runs the cluster's maintenance now", extra={"node": name})
        return self._lock is not None

    def fail_dead_nodes(self) -> list[str]:
        dead = mark_dead(self.meta, self.dead_after)
        if dead:
            log.warning("nodes silent too long: their targets are failed", extra={"nodes": dead})
            self.data.refresh()
        return dead

    def stop(self) -> None:
        self._stop.set()
        if self._beater is not None:
            self._beater.join(timeout=5)
        if self.server is not None:
            self.server.stop()
        if self._lock is not None:
            self._lock.release()
            self._lock = None


