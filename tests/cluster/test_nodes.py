"""Four nodes, one store: real PostgreSQL and four `tessera serve` nodes, each in its own network namespace.

The scenario runs in order on one cluster (module scope): S3 and core.fs across nodes, locks seen on all
nodes, kill -9 of a node during writes (nothing acknowledged lost, degraded reads through the others),
rebuild onto the survivors, the node coming back and being used again, a fifth node taking new data.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cluster.local import LocalCluster, Node
from gateway.cluster.netns import Net
from tests.cluster.ha import make_workdir, remove_workdir

pytestmark = [pytest.mark.timeout(600),
              pytest.mark.skipif(not Net.usable(), reason="needs root and network namespaces")]

DEAD_AFTER = 8.0


@pytest.fixture(scope="module")
def lc() -> Iterator[LocalCluster]:
    d = make_workdir("tessera-cluster-")  # PostgreSQL runs as its own user: not under pytest's 0700 tmp
    c = LocalCluster(d, nodes_wanted=4, targets_per_node=3, ec="4+2", protocols=("s3",),
                     dead_after_s=DEAD_AFTER, netns=True)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        remove_workdir(d)


def s3(lc: LocalCluster, node: Node) -> object:
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=node.s3, aws_access_key_id=lc.user["access_key"],
                        aws_secret_access_key=lc.user["secret_key"], region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=60))


def status(lc: LocalCluster, node: str = "n1") -> dict[str, object]:
    doc: dict[str, object] = json.loads(lc.cli(["cluster", "status", "--json", "--data", lc.node(node).data]))
    return doc


def in_node(node: Node, argv: list[str], *, stdin: bytes | None = None, timeout: float = 120) -> bytes:
    """Run a `tessera` command inside the node's own network namespace, with its data directory."""
    assert node.host is not None
    r = node.host.run([sys.executable, "-m", "gateway.cli", *argv, "--data", node.data], input=stdin,
                      capture_output=True, timeout=timeout)
    assert r.returncode == 0, r.stderr.decode()
    return bytes(r.stdout)


def test_every_node_serves_and_status_lists_them(lc: LocalCluster) -> None:
    doc = status(lc)
    nodes = {str(n["name"]): n for n in doc["nodes"]}  # type: ignore[attr-defined]
    assert sorted(nodes) == ["n1", "n2", "n3", "n4"]
    assert all(n["state"] == "up" and len(n["targets"]) == 3 for n in nodes.values())
    assert doc["geometry"] == "4+2" and doc["state"] == "OK"


def test_s3_put_on_one_node_get_on_the_others(lc: LocalCluster) -> None:
    c1 = s3(lc, lc.node("n1"))
    c1.create_bucket(Bucket="bkt")  # type: ignore[attr-defined]
    body = os.urandom(3 * 1024 * 1024 + 17)
    c1.put_object(Bucket="bkt", Key="obj", Body=body)  # type: ignore[attr-defined]
    for name in ("n2", "n3", "n4"):
        got = s3(lc, lc.node(name)).get_object(Bucket="bkt", Key="obj")["Body"].read()  # type: ignore[attr-defined]
        assert got == body, name
    keys = [o["Key"] for o in s3(lc, lc.node("n4")).list_objects_v2(Bucket="bkt")["Contents"]]  # type: ignore
    assert keys == ["obj"]


def test_a_stripe_spreads_over_the_nodes(lc: LocalCluster) -> None:
    doc = json.loads(in_node(lc.node("n2"), ["stat", "--json", "/bkt/obj"]))
    seg_nodes = doc["segments"]
    assert seg_nodes, doc
    for seg in seg_nodes:  # 4+2 over 4 nodes: no node holds more than m=2 cells of a stripe
        per: dict[str, int] = {}
        for node in seg["nodes"]:
            per[node] = per.get(node, 0) + 1
        assert len(per) == 4 and max(per.values()) <= 2, seg


def test_core_fs_write_on_node1_read_on_node3(lc: LocalCluster, tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024 + 3)
    src = tmp_path / "src"
    src.write_bytes(data)
    in_node(lc.node("n1"), ["put", str(src), "/bkt/from-n1"])
    out = in_node(lc.node("n3"), ["get", "/bkt/from-n1", "-"])
    assert out == data


LOCKER = r"""
import sys, time
from core.store import open_store
s = open_store(sys.argv[1])
root = s.fs.resolve("/bkt/obj").ino
try:
    s.fs.lock(root, sys.argv[2], 0, 100, True)
    print("locked", flush=True)
except Exception as e:
    print(type(e).__name__, flush=True)
    sys.exit(0)
time.sleep(float(sys.argv[3]))
"""


def test_a_lock_taken_on_one_node_is_seen_on_another(lc: LocalCluster) -> None:
    n1, n2 = lc.node("n1"), lc.node("n2")
    assert n1.host is not None and n2.host is not None
    holder = n1.host.popen([sys.executable, "-c", LOCKER, n1.data, "owner-a", "60"], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        r = n2.host.run([sys.executable, "-c", LOCKER, n2.data, "owner-b", "0"], capture_output=True, timeout=60)
        assert r.stdout.strip() == b"LockConflict", r.stderr.decode()
    finally:
        holder.kill()
        holder.wait()
    # the holder died: its node sweeps its locks within a few heartbeats, then the range is free on n2
    deadline = time.monotonic() + 30
    while True:
        r = n2.host.run([sys.executable, "-c", LOCKER, n2.data, "owner-b", "0"], capture_output=True, timeout=60)
        if r.stdout.strip() == b"locked" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert r.stdout.strip() == b"locked", r.stderr.decode()


def test_kill_a_node_during_writes_then_rebuild_return_and_grow(lc: LocalCluster) -> None:
    # the victim is the node running the cluster's maintenance: another one must take over
    victim = str(status(lc)["leader"])
    others = [n for n in ("n1", "n2", "n3", "n4") if n != victim]
    assert victim in ("n1", "n2", "n3", "n4"), victim
    c1 = s3(lc, lc.node(others[0]))
    if "bkt" not in [b["Name"] for b in c1.list_buckets()["Buckets"]]:  # type: ignore[attr-defined]
        c1.create_bucket(Bucket="bkt")  # type: ignore[attr-defined]
    acked: dict[str, str] = {}
    errors: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            body = os.urandom(256 * 1024 * (1 + i % 5) + i)
            key = f"w/{i:05d}"
            try:
                c1.put_object(Bucket="bkt", Key=key, Body=body)  # type: ignore[attr-defined]
                acked[key] = hashlib.md5(body).hexdigest()
            except Exception as e:  # an error is allowed; a wrong acknowledgement is not
                errors.append(f"{key}: {e}")
            i += 1

    th = threading.Thread(target=writer)
    th.start()
    try:
        time.sleep(4)
        before = len(acked)
        lc.kill(victim)
        time.sleep(6)
    finally:
        stop.set()
        th.join(120)
    assert before > 0 and len(acked) > before, (before, len(acked), errors[:3])

    # every acknowledged write reads back right through the survivors (degraded: the victim's cells decoded)
    c2 = s3(lc, lc.node(others[1]))
    t0 = time.monotonic()
    for key, md5 in acked.items():
        body = c2.get_object(Bucket="bkt", Key=key)["Body"].read()  # type: ignore[attr-defined]
        assert hashlib.md5(body).hexdigest() == md5, key
    print(f"degraded reads of {len(acked)} objects: {time.monotonic() - t0:.1f} s; write errors: {len(errors)}")

    # the victim is declared dead after DEAD_AFTER s; a new leader fails its targets and rebuilds elsewhere
    deadline = time.monotonic() + 240
    while True:
        doc = status(lc, others[0])
        nodes = {str(n["name"]): n for n in doc["nodes"]}  # type: ignore[attr-defined]
        gone_shards = sum(int(t["shards"]) for t in nodes[victim]["targets"])
        if nodes[victim]["state"] == "down" and gone_shards == 0 and doc["degraded_stripes"] == 0:
            break
        assert time.monotonic() < deadline, (_brief(doc), _warnings(lc))
        time.sleep(2)
    assert doc["state"] == "OK" and doc["lost_segments"] == 0 and doc["leader"] in others, _brief(doc)
    for key, md5 in acked.items():
        body = s3(lc, lc.node(others[2])).get_object(Bucket="bkt", Key=key)["Body"].read()  # type: ignore
        assert hashlib.md5(body).hexdigest() == md5, key

    # the victim comes back: it rejoins by itself and takes new data again
    lc.start_node(victim)
    deadline = time.monotonic() + 60
    while True:
        nodes = {str(n["name"]): n for n in status(lc)["nodes"]}  # type: ignore[attr-defined]
        if nodes[victim]["state"] == "up" and all(t["state"] == "ok" for t in nodes[victim]["targets"]):
            break
        assert time.monotonic() < deadline, nodes[victim]
        time.sleep(1)
    _write_until_used(lc, victim, "back")

    # a fifth node joins: new data uses it
    lc.add_node()
    _write_until_used(lc, "n5", "grow")
    deadline = time.monotonic() + 60  # cells a read found bad are repaired by the leader's next pass
    while True:
        doc = status(lc)
        if doc["state"] == "OK" or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert doc["state"] == "OK" and doc["nodes_up"] == 5, (_brief(doc), _warnings(lc))


def _brief(doc: dict[str, object]) -> str:
    nodes = [(n["name"], n["state"], [(t["state"], t["shards"]) for t in n["targets"]])  # type: ignore[index]
             for n in doc["nodes"]]  # type: ignore[attr-defined]
    return json.dumps({k: v for k, v in doc.items() if k != "nodes"}) + " " + json.dumps(nodes)


def _warnings(lc: LocalCluster) -> str:
    out = []
    for n in lc.nodes:
        out += [f"{n.name}: {line[:400]}" for line in lc.log_tail(n, 20000).splitlines()
                if '"warning"' in line or '"error"' in line]
    return "\n".join(out[-30:])


def _write_until_used(lc: LocalCluster, node: str, prefix: str) -> None:
    c = s3(lc, lc.node("n2"))
    deadline = time.monotonic() + 90
    i = 0
    while True:
        body = os.urandom(2 * 1024 * 1024)
        c.put_object(Bucket="bkt", Key=f"{prefix}/{i}", Body=body)  # type: ignore[attr-defined]
        assert s3(lc, lc.node(node)).get_object(Bucket="bkt", Key=f"{prefix}/{i}")["Body"].read() == body  # type: ignore
        i += 1
        nodes = {str(n["name"]): n for n in status(lc)["nodes"]}  # type: ignore[attr-defined]
        if sum(int(t["shards"]) for t in nodes[node]["targets"]) > 0:
            return
        assert time.monotonic() < deadline, f"{node} never got a shard: {nodes[node]}"
