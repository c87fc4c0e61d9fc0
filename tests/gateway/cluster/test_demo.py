"""`tessera cluster demo` as a user runs it, and the node commands against it: drain, remove, status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from gateway.cluster.netns import Net
from tests.cluster.ha import make_workdir, remove_workdir

pytestmark = [pytest.mark.timeout(400),
              pytest.mark.skipif(not Net.usable(), reason="needs root and network namespaces")]


def tessera(*argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "gateway.cli", *argv], capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, r.stderr
    return r


@pytest.fixture
def demo_dir() -> Iterator[str]:
    d = make_workdir("tessera-demo-")  # PostgreSQL runs as its own user: a dir it can reach
    try:
        yield d
    finally:
        remove_workdir(d)


def test_demo_serves_kills_drains_and_stops(demo_dir: str) -> None:
    import boto3
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "cluster", "demo", "--nodes", "3", "--dir",
                             demo_dir, "--protocols", "s3", "--targets-per-node", "2", "--ec", "2+1",
                             "--dead-after", "6"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        doc = json.loads(line)
        assert [n["name"] for n in doc["nodes"]] == ["n1", "n2", "n3"]
        assert set(doc["user"]) == {"access_key", "secret_key"}

        def s3(i: int) -> object:
            return boto3.client("s3", endpoint_url=doc["nodes"][i]["s3"], region_name="us-east-1",
                                aws_access_key_id=doc["user"]["access_key"],
                                aws_secret_access_key=doc["user"]["secret_key"])
        s3(0).create_bucket(Bucket="demo")  # type: ignore[attr-defined]
        body = os.urandom(3 * 1024 * 1024)
        s3(0).put_object(Bucket="demo", Key="x", Body=body)  # type: ignore[attr-defined]
        assert s3(2).get_object(Bucket="demo", Key="x")["Body"].read() == body  # type: ignore[attr-defined]

        n1 = os.path.join(demo_dir, "n1")
        st = json.loads(tessera("cluster", "status", "--json", "--data", n1).stdout)
        assert st["nodes_up"] == 3 and st["geometry"] == "2+1"
        listing = tessera("node", "list", "--data", n1).stdout
        assert "n2" in listing and "up" in listing

        # --kill: one node's processes die; reads go on through the others (2+1: one cell per node)
        out = tessera("cluster", "demo", "--kill", "n3", "--dir", demo_dir).stdout
        assert "killed node n3" in out
        assert s3(1).get_object(Bucket="demo", Key="x")["Body"].read() == body  # type: ignore[attr-defined]

        # a node that holds data cannot be removed before it is drained; draining moves its cells off
        r = tessera("node", "remove", "n3", "--data", n1, check=False)
        assert r.returncode != 0 and "drain it" in r.stderr
        tessera("node", "drain", "n3", "--data", n1)
        deadline = time.monotonic() + 120  # the maintenance leader rebuilds n3's cells on n1 and n2
        while True:
            st = json.loads(tessera("cluster", "status", "--json", "--data", n1).stdout)
            n3 = next(n for n in st["nodes"] if n["name"] == "n3")
            if sum(t["shards"] for t in n3["targets"]) == 0:
                break
            assert time.monotonic() < deadline, st
            time.sleep(2)
        tessera("node", "remove", "n3", "--data", n1)
        st = json.loads(tessera("cluster", "status", "--json", "--data", n1).stdout)
        assert [n["name"] for n in st["nodes"]] == ["n1", "n2"] and st["lost_segments"] == 0
        assert s3(1).get_object(Bucket="demo", Key="x")["Body"].read() == body  # type: ignore[attr-defined]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    left = subprocess.run(["pgrep", "-f", demo_dir], capture_output=True, text=True).stdout
    assert not left.strip(), f"processes left: {left}"


def test_without_namespaces_each_node_has_its_own_loopback_address(demo_dir: str) -> None:
    """What a user without root gets: nodes on 127.0.0.11, .12, ... (run here as root, on loopback)."""
    import boto3

    from gateway.cluster.local import LocalCluster
    with LocalCluster(demo_dir, nodes_wanted=2, targets_per_node=2, ec="2+1", protocols=("s3",),
                      netns=False).start() as lc:
        assert [n.addr for n in lc.nodes] == ["127.0.0.11", "127.0.0.12"]
        c = [boto3.client("s3", endpoint_url=n.s3, region_name="us-east-1", aws_access_key_id=lc.user["access_key"],
                          aws_secret_access_key=lc.user["secret_key"]) for n in lc.nodes]
        c[0].create_bucket(Bucket="loop")
        c[1].put_object(Bucket="loop", Key="k", Body=b"x" * 300_000)
        assert c[0].get_object(Bucket="loop", Key="k")["Body"].read() == b"x" * 300_000
        st = json.loads(tessera("cluster", "status", "--json", "--data", lc.nodes[1].data).stdout)
        assert [n["state"] for n in st["nodes"]] == ["up", "up"]
