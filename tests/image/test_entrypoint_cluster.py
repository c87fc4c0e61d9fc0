"""The service image's entrypoint on a cluster node (TESSERA_CLUSTER=1), run on the host against the project's
CLI and a real PostgreSQL (the pg_url fixture): the init node waits for writable metadata and makes the cluster
with the key it was given, a second node waits for the store and joins, re-runs change nothing, an init node
whose metadata already holds the store joins it, a joiner gives up clearly when no store appears, and
cluster-status reports a node that never comes up (its success, a serving node, is in the boot test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.meta.factory import open_meta

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "image/containers/tessera/entrypoint.sh"
KEY = bytes(range(32))

pytestmark = pytest.mark.timeout(240)


def entry(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **env}
    return subprocess.run(["sh", str(ENTRY), *args], env=e, capture_output=True, text=True, timeout=180, cwd=tmp)


def node_env(tmp: Path, url: str, name: str, port: int, init: bool) -> dict[str, str]:
    key = tmp / "run" / "store.key"
    key.parent.mkdir(exist_ok=True)
    key.write_bytes(KEY)
    disk = tmp / name
    return {"TESSERA_DATA": str(disk / "store"), "TESSERA_TARGETS": f"{disk / 't0'} {disk / 't1'}",
            "TESSERA_CLUSTER": "1", "TESSERA_CLUSTER_NAME": name, "TESSERA_CLUSTER_ADDR": f"127.0.0.1:{port}",
            "TESSERA_CLUSTER_INIT": "1" if init else "0", "TESSERA_CLUSTER_EXPECT": "2",
            "TESSERA_CLUSTER_EC": "1+1" if init else "", "TESSERA_META_URL": url, "TESSERA_KEY_FILE": str(key),
            "TESSERA_META_WAIT": "20"}


def cluster_status(data: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "--data", data, "cluster", "status", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=True).stdout
    return dict(json.loads(out))


def test_init_then_join_then_reboot(tmp_path: Path, pg_url: str) -> None:
    e1 = node_env(tmp_path, pg_url, "n1", 7071, init=True)
    p = entry(tmp_path, "node-init", **e1)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "waiting for the metadata to accept writes" in p.stdout and "initialised cluster store" in p.stdout
    assert (Path(e1["TESSERA_DATA"]) / "meta" / "store.key").read_bytes() == KEY  # the configured key, not a new one
    assert os.stat(Path(e1["TESSERA_DATA"]) / "meta" / "store.key").st_mode & 0o777 == 0o600
    st = cluster_status(e1["TESSERA_DATA"])
    assert st["geometry"] == "1+1"
    e2 = node_env(tmp_path, pg_url, "n2", 7072, init=False)
    p = entry(tmp_path, "node-init", **e2)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "waiting for the cluster store" in p.stdout and "node n2 joined" in p.stdout
    st = cluster_status(e2["TESSERA_DATA"])
    nodes = {n["name"]: n for n in st["nodes"]}  # type: ignore[attr-defined]
    assert nodes["n2"]["addr"] == "127.0.0.1:7072" and len(nodes["n2"]["targets"]) == 2  # (n1 registers on serve)
    for env in (e1, e2):  # a reboot: the store is there, nothing is made or joined again
        p = entry(tmp_path, "node-init", **env)
        assert p.returncode == 0 and "store present" in p.stdout, p.stdout + p.stderr
    # cluster-status waits for this node to be up (heartbeats come from its serve, which is not running here)
    p = entry(tmp_path, "cluster-status", **e2, TESSERA_STATUS_WAIT="0")
    assert p.returncode == 1 and "node n2 is not up after 0 s" in p.stderr, p.stdout + p.stderr
    assert "n2" in p.stderr and "127.0.0.1:7072" in p.stderr  # the status table, for the console
    assert "tessera cluster status:" not in p.stdout


def test_init_node_joins_a_store_that_exists(tmp_path: Path, pg_url: str) -> None:
    """The init node's disks were replaced (or a second node was given init too): it joins, never re-makes."""
    e1 = node_env(tmp_path, pg_url, "n1", 7071, init=True)
    assert entry(tmp_path, "node-init", **e1).returncode == 0
    sid = json.loads((Path(e1["TESSERA_DATA"]) / "meta" / "node.json").read_text())["store"]
    e3 = node_env(tmp_path, pg_url, "n3", 7073, init=True)
    p = entry(tmp_path, "node-init", **e3)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "already holds a cluster store; joining it" in p.stdout
    meta = open_meta(e3["TESSERA_DATA"])
    try:
        with meta.read() as t:
            assert [n.name for n in t.nodes()] == ["n3"]  # joined (n1 registers when it serves)
            assert t.info("store_id") == sid
    finally:
        meta.close()


def test_joiner_without_a_store_gives_up_clearly(tmp_path: Path, pg_url: str) -> None:
    e = {**node_env(tmp_path, pg_url, "n2", 7072, init=False), "TESSERA_META_WAIT": "3"}
    p = entry(tmp_path, "node-init", **e)
    assert p.returncode != 0
    assert "metadata not ready (no store yet)" in p.stderr and "was not ready after 3 s" in p.stderr
    assert not (Path(e["TESSERA_DATA"]) / "meta" / "url").exists()


def test_unreachable_metadata_gives_up_clearly(tmp_path: Path) -> None:
    url = "postgresql://tessera:x@127.0.0.1:1/tessera?target_session_attrs=read-write&connect_timeout=1"
    e = {**node_env(tmp_path, url, "n1", 7071, init=True), "TESSERA_META_WAIT": "2"}
    p = entry(tmp_path, "node-init", **e)
    assert p.returncode != 0 and "was not ready after 2 s" in p.stderr, p.stdout + p.stderr
    assert not (Path(e["TESSERA_DATA"]) / "meta").exists()

