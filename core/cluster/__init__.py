"""The cluster, seen from core: which node a data directory is, the members, their targets and heartbeats.

A cluster is one store whose metadata lives in PostgreSQL (:mod:`core.meta.pg`) and whose targets are
directories on several machines ("nodes").  Every node has its own data directory::

    DIR/meta/url          the metadata URL (:mod:`core.meta.factory`), the same on every node
    DIR/meta/store.key    the store key, the same file on every node; it also derives the target
                          servers' cluster token (:func:`token`), so there is one secret to hand out
    DIR/meta/node.json    this node: ``{"name": "n1", "addr": "10.0.0.2:7070", "store": "<uuid>"}``
    DIR/targets/t0 ...    its own disks' targets (rows of ``targets`` with ``node`` = its name)

Data never goes through another node's protocol servers: a node reads and writes cells on the other
nodes' targets directly, through their target servers (:mod:`core.data.tserver`), so :func:`target_factory`
opens a node's own targets as directories and everyone else's as :class:`core.data.remote.RemoteTarget`.
Placement uses the node name as each target's fault domain, so a stripe's cells spread over nodes.

Liveness: each node's ``tessera serve`` writes its heartbeat every :data:`HEARTBEAT_S`.  A node whose
heartbeat is older than ``dead_after`` is down: the locks, share modes and open segments of its processes
stop counting (:mod:`core.meta.proc` asks :class:`Liveness`), its targets take no new segments, the
maintenance leader marks its targets failed (:func:`mark_dead`) and rebuild restores redundancy onto the
others.  When the node comes back, :func:`register` drops the shards rebuild replaced meanwhile and puts its
targets back in use: it rejoins with no manual step.
"""

from core.cluster.member import Member
from core.cluster.members import (
                                  NodeStatus,
                                  add_targets,
                                  drain,
                                  geometry_note,
                                  heartbeat,
                                  mark_dead,
                                  pick_geometry,
                                  register,
                                  remove,
                                  status,
)
from core.cluster.node import (
                                  DEFAULT_DEAD_AFTER_S,
                                  HEARTBEAT_S,
                                  Liveness,
                                  NodeInfo,
                                  check_addr,
                                  check_name,
                                  install,
                                  load_node,
                                  node_path,
                                  save_node,
                                  target_factory,
                                  token,
)
from core.cluster.setup import ClusterPlane, init_cluster, join_cluster

__all__ = ["DEFAULT_DEAD_AFTER_S", "HEARTBEAT_S", "ClusterPlane", "Liveness", "Member", "NodeInfo", "NodeStatus",
           "add_targets", "check_addr", "check_name", "drain", "geometry_note", "heartbeat", "init_cluster", "install",
           "join_cluster", "load_node", "mark_dead", "node_path", "pick_geometry", "register", "remove", "save_node",
           "status", "target_factory", "token"]
