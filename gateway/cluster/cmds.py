"""``tessera cluster init|status|demo`` and ``tessera node join|list|drain|remove``.

A cluster is made on its first node (``cluster init --meta URL``) and grown with ``node join --meta URL
--key FILE`` on each further machine; each node then runs ``tessera serve``.  ``cluster status`` and
``node list`` show, per node, its state (up, down, draining, removed), targets, used/free space and last
heartbeat.  ``cluster demo`` runs PostgreSQL and N nodes on this machine (:mod:`gateway.cluster.local`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from typing import Any

from core import cluster
from core.data.layout import parse_ec
from core.errors import InvalidArgument
from gateway import config as cfgmod
from gateway.common import CliError, data_dir, human, store

Handler = Any


def add_parsers(sub: Any, common: argparse.ArgumentParser, no_sub: Handler) -> None:
    c = sub.add_parser("cluster", parents=[common], help="make, inspect or demo a cluster of nodes",
                       description="make, inspect or demo a cluster of nodes")
    c.set_defaults(fn=no_sub)
    csub = c.add_subparsers(dest="cluster_cmd", required=True, metavar="ACTION")
    p = csub.add_parser("init", parents=[common], help="make a new cluster store with this machine as its first node")
    _node_args(p)
    p.add_argument("--ec", metavar="K+M", help="erasure-coding geometry (default: one that survives any one node "
                                               "failing once --expect nodes have joined)")
    p.add_argument("--expect", type=int, default=3, metavar="N", help="nodes the cluster will have (default 3)")
    p.set_defaults(fn=init)
    p = csub.add_parser("status", parents=[common], help="nodes, their targets, space and heartbeats")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=status)
    p = csub.add_parser("demo", parents=[common], help="PostgreSQL and N nodes on this machine, until Ctrl-C")
    p.add_argument("--nodes", type=int, default=3, metavar="N")
    p.add_argument("--dir", required=True, metavar="DIR", help="where the demo keeps everything")
    p.add_argument("--kill", metavar="NODE", help="SIGKILL the processes of NODE of a running demo in DIR")
    p.add_argument("--targets-per-node", type=int, default=3, metavar="T")
    p.add_argument("--ec", metavar="K+M", help="erasure-coding geometry (default: picked for the node count)")
    p.add_argument("--protocols", default="s3,nfs,smb", help="which servers each node runs (default s3,nfs,smb)")
    p.add_argument("--dead-after", type=float, default=30.0, metavar="S",
                   help="seconds of silence before a node's targets are failed and rebuilt (default 30)")
    p.set_defaults(fn=demo)

    n = sub.add_parser("node", parents=[common], help="join, list, drain or remove cluster nodes",
                       description="join, list, drain or remove cluster nodes")
    n.set_defaults(fn=no_sub)
    nsub = n.add_subparsers(dest="node_cmd", required=True, metavar="ACTION")
    p = nsub.add_parser("join", parents=[common], help="make this machine a node of an existing cluster")
    _node_args(p)
    p.add_argument("--key", required=True, metavar="FILE", help="the store key (DIR/meta/store.key of any node)")
    p.set_defaults(fn=join)
    p = nsub.add_parser("list", parents=[common], help="the nodes, one line each")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=status)
    p = nsub.add_parser("drain", parents=[common], help="move a node's data off it (it takes no new data)")
    p.add_argument("name")
    p.set_defaults(fn=drain)
    p = nsub.add_parser("remove", parents=[common], help="forget a drained node (--force: a dead one)")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="remove it even if it holds shards (they are rebuilt)")
    p.set_defaults(fn=remove)


def _node_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--meta", required=True, metavar="URL",
                   help="PostgreSQL URL of the metadata (libpq; several hosts + target_session_attrs=read-write "
                        "for Patroni)")
    p.add_argument("--name", required=True, help="this node's name (a-z, 0-9, '-')")
    p.add_argument("--addr", required=True, metavar="HOST:PORT",
                   help="where the other nodes reach this node's target server")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--target", action="append", metavar="PATH", help="a target directory (repeat per disk)")
    g.add_argument("--targets", type=int, metavar="N", help="N target directories under DIR/targets (default 3)")
    p.add_argument("--cell-size", type=int, default=None, help=argparse.SUPPRESS)


def _targets(args: argparse.Namespace, d: str) -> list[str]:
    if args.target:
        return list(args.target)
    n = args.targets if args.targets is not None else 3
    if n < 1:
        raise InvalidArgument("--targets must be at least 1")
    return [os.path.join(d, "targets", f"t{i}") for i in range(n)]


def _finish_dir(d: str) -> None:
    cfgmod.write_default(d)
    from gateway.tls import self_signed
    self_signed(os.path.join(d, "tls", "cert.pem"), os.path.join(d, "tls", "key.pem"))


def init(args: argparse.Namespace) -> int:
    d = data_dir(args)
    try:
        ec = parse_ec(args.ec) if args.ec else None
    except ValueError as e:
        raise InvalidArgument(str(e)) from None
    if args.expect < 1:
        raise InvalidArgument("--expect must be at least 1")
    os.makedirs(d, exist_ok=True)
    sid, k, m = cluster.init_cluster(d, args.meta, args.name, args.addr, _targets(args, d), ec=ec,
                                     expect=args.expect, cell=args.cell_size)
    _finish_dir(d)
    print(f"initialised cluster store {sid}: node {args.name} ({args.addr}), {k}+{m}")
    note = cluster.geometry_note(k, m, 1)
    if note:
        print(f"note: {note}")
    print(f"join more nodes with: tessera node join --meta URL --key {os.path.join(d, 'meta', 'store.key')} "
          "--name NAME --addr HOST:PORT (copy the key file there: it is the cluster's one secret)")
    return 0


def join(args: argparse.Namespace) -> int:
    d = data_dir(args)
    os.makedirs(d, exist_ok=True)
    sid = cluster.join_cluster(d, args.meta, args.key, args.name, args.addr, _targets(args, d))
    _finish_dir(d)
    with store(args) as s:
        geo = s.geometry
        nodes = len([n for n in s.cluster_nodes() if n.state != "removed"])
    print(f"node {args.name} joined store {sid} ({nodes} nodes, {geo.k}+{geo.m}); start it with: tessera serve")
    note = cluster.geometry_note(geo.k, geo.m, nodes)
    if note:
        print(f"note: {note}")
    return 0


def _doc(n: cluster.NodeStatus) -> dict[str, Any]:
    used = sum(int(str(t.get("used", 0))) for t in n.targets)
    free = sum(int(str(t.get("free", 0))) for t in n.targets)
    return {"name": n.name, "addr": n.addr, "state": n.state, "endpoints": n.endpoints,
            "heartbeat_age_s": None if n.heartbeat_age_s is None else round(n.heartbeat_age_s, 1),
            "used": used, "free": free,
            "targets": [{k: t[k] for k in ("id", "path", "state", "used", "free", "shards") if k in t}
                        for t in n.targets]}


def status(args: argparse.Namespace) -> int:
    with store(args) as s:
        if s.node is None:
            raise CliError(f"{s.data_dir} is a one-node store, not a cluster node")
        nodes = s.cluster_status()
        h = s.health()
        geo = s.geometry
        leader = s.maintenance_leader()
    docs = [_doc(n) for n in nodes]
    up = sum(1 for n in nodes if n.state == "up")
    if getattr(args, "json", False):
        print(json.dumps({"state": h.state, "geometry": f"{geo.k}+{geo.m}", "nodes_up": up, "leader": leader,
                          "nodes": docs,
                          "degraded_stripes": h.degraded_stripes, "lost_segments": h.lost_segments,
                          "note": cluster.geometry_note(geo.k, geo.m, up)}))
        return 0
    if getattr(args, "cluster_cmd", None) == "status":
        print(f"cluster: {h.state}, {up}/{len(nodes)} nodes up, {geo.k}+{geo.m}, "
              f"{h.degraded_stripes} degraded stripes, {h.lost_segments} lost segments, maintenance on {leader}")
    print(f"{'NODE':<12} {'STATE':<9} {'ADDRESS':<22} {'TARGETS':>7} {'USED':>9} {'FREE':>9} HEARTBEAT")
    for doc in docs:
        age = "never" if doc["heartbeat_age_s"] is None else f"{doc['heartbeat_age_s']:.0f}s ago"
        print(f"{doc['name']:<12} {doc['state']:<9} {doc['addr']:<22} {len(doc['targets']):>7} "
              f"{human(doc['used']):>9} {human(doc['free']):>9} {age}")
    note = cluster.geometry_note(geo.k, geo.m, up)
    if note and getattr(args, "cluster_cmd", None) == "status":
        print(f"note: {note}")
    return 0


def drain(args: argparse.Namespace) -> int:
    with store(args) as s:
        n = s.drain_node(args.name)
    print(f"node {args.name} draining: {n} targets take no new data; rebuild moves their shards off "
          "(the maintenance leader runs it; 'tessera rebuild' runs it now)")
    return 0


def remove(args: argparse.Namespace) -> int:
    with store(args) as s:
        s.remove_node(args.name, force=args.force)
    print(f"node {args.name} removed" + (" (its shards are rebuilt from the other nodes)" if args.force else ""))
    return 0


def demo(args: argparse.Namespace) -> int:
    from gateway.cluster.local import ClusterError, LocalCluster, kill_from_pidfile
    d = os.path.abspath(args.dir)
    if args.kill:
        try:
            pid = kill_from_pidfile(d, args.kill)
        except ClusterError as e:
            raise CliError(str(e)) from None
        print(f"killed node {args.kill} (process group {pid})")
        return 0
    if not 1 <= args.nodes <= 32:
        raise InvalidArgument("--nodes must be 1 to 32")
    protos = tuple(p.strip() for p in args.protocols.split(",") if p.strip())
    bad = [p for p in protos if p not in ("s3", "nfs", "smb")]
    if bad:
        raise InvalidArgument(f"unknown protocol {bad[0]!r} (s3, nfs, smb)")
    if os.path.exists(os.path.join(d, "n1")):
        raise InvalidArgument(f"{d} holds an earlier demo: give an empty --dir")
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.ec:
        try:
            parse_ec(args.ec)
        except ValueError as e:
            raise InvalidArgument(str(e)) from None
    lc = LocalCluster(d, nodes_wanted=args.nodes, targets_per_node=args.targets_per_node, protocols=protos,
                      dead_after_s=args.dead_after, ec=args.ec)
    try:
        try:
            lc.start()
        except ClusterError as e:
            raise CliError(str(e)) from None
        doc = lc.info()
        with open(os.path.join(d, "cluster.json"), "w") as f:
            json.dump(doc, f)
        print(json.dumps({"nodes": [{k: n[k] for k in ("name", "s3", "admin")} for n in doc["nodes"]],
                          "user": {"access_key": doc["user"]["access_key"],
                                   "secret_key": doc["user"]["secret_key"]}}), flush=True)
        print(f"cluster demo in {d}: Ctrl-C stops it; 'tessera cluster demo --kill n2 --dir {d}' kills a node; "
              f"'tessera cluster status --data {d}/n1' shows it", file=sys.stderr, flush=True)
        while not stop.wait(1.0):
            time.sleep(0)
    finally:
        lc.stop()
    return 0
