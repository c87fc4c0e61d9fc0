"""tessera-node's cluster mode (image/appliance/tessera_cluster.py): kernel command line and config file keys,
validation (one clear line for every combination that cannot work, before any disk is touched), the store key
from text, a file or a URL, the secrets derived from it, and the run files for etcd, Patroni and the tessera
containers. Disk commands are answered by the recording fake of test_node.py."""

from __future__ import annotations

import base64
import http.server
import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.image.test_node import FakeHost, disk, node

tc = node.tc
KEY = bytes(range(32))
B64 = base64.b64encode(KEY).decode()
PEERS = "10.0.0.11,10.0.0.12,10.0.0.13"


def cluster_of(cmdline: str, yaml_text: str = "") -> Any:
    over, _ = node.parse_cmdline(cmdline)
    raw = node.merge(dict(node.DEFAULTS), node.load_yaml(yaml_text, "test")) if yaml_text else dict(node.DEFAULTS)
    return node.validate(node.merge(raw, over))


def cmd(addr: str = "10.0.0.12:7070", **extra: str) -> str:
    words = {"name": "n2", "addr": addr, "meta_peers": PEERS, "key": B64, **extra}
    return " ".join(f"tessera.cluster.{k}={v}" for k, v in words.items())


def test_kernel_command_line_keys() -> None:
    cfg = cluster_of(f"console=ttyS0 {cmd(init='1', expect='5', target_listen='0.0.0.0:7070')} tessera.ec=2+1")
    c = cfg.cluster
    assert (c.name, c.addr, c.host, c.meta_peers) == ("n2", "10.0.0.12:7070", "10.0.0.12", PEERS.split(","))
    assert (c.role, c.init, c.expect, c.key) == ("meta", True, 5, B64)  # meta: its address is a meta peer
    assert c.meta_index == 1 and cfg.ec == "2+1"
    assert cfg.services["cluster"] == {"target_listen": "0.0.0.0:7070"}  # for the services' tessera.yaml
    storage = cluster_of(cmd(addr="10.0.0.20:7070")).cluster
    assert storage.role == "storage" and not storage.init and storage.expect == 3
    assert cluster_of("tessera.ec=1+1").cluster is None  # no cluster section: a one-node store, as before


def test_config_file_shared_by_all_nodes_and_kernel_keys_per_node() -> None:
    shared = f"cluster:\n  meta_peers: [{PEERS}]\n  key: {B64}\n  expect: 4\nec: 2+2\n"
    c = cluster_of("tessera.cluster.name=n1 tessera.cluster.addr=10.0.0.11:7070 tessera.cluster.init=true",
                   shared).cluster
    assert (c.name, c.role, c.init, c.expect, c.meta_peers) == ("n1", "meta", True, 4, PEERS.split(","))
    c = cluster_of("tessera.cluster.name=s9 tessera.cluster.addr=10.0.0.99:7070", shared).cluster
    assert (c.name, c.role, c.init) == ("s9", "storage", False)


@pytest.mark.parametrize("cmdline, message", [
    (cmd(name=""), "cluster.name is required"),
    (cmd(name="Node_1"), "cluster.name: 'Node_1': use 1-63 of a-z"),
    (cmd(addr="10.0.0.12"), "cluster.addr: '10.0.0.12' is not HOST:PORT"),
    (cmd(addr="0.0.0.0:7070"), "cluster.addr: '0.0.0.0:7070' is not HOST:PORT with this node's address"),
    (cmd(addr="10.0.0.12:99999"), "is not HOST:PORT"),
    (cmd(meta_peers="10.0.0.11,10.0.0.12"), "cluster.meta_peers: 2 given; etcd needs an odd number"),
    (cmd(meta_peers="10.0.0.11,10.0.0.11,10.0.0.12"), "an address is listed twice"),
    (cmd(meta_peers="10.0.0.11:5432"), "cluster.meta_peers: a list of the metadata nodes' addresses (no ports)"),
    (cmd(addr="10.0.0.20:7070", role="meta"), "cluster.role: meta, but this node's address 10.0.0.20"),
    (cmd(role="storage"), "cluster.role: storage, but this node's address 10.0.0.12 is in cluster.meta_peers"),
    (cmd(role="leader"), "cluster.role: 'leader' is not 'meta' or 'storage'"),
    (cmd(key="c2hvcnQ="), "cluster.key: not base64 of 32 bytes (make a key once with: head -c 32 /dev/urandom"),
    (cmd(key="not*base64"), "cluster.key: not base64 of 32 bytes"),
    (cmd(expect="many"), "tessera.cluster.expect=many: not a number"),
    (cmd(expect="0"), "cluster.expect: a whole number of nodes from 1 to 1000"),
    (cmd(target_listen="7070"), "cluster.target_listen: '7070' is not HOST:PORT"),
    ("tessera.cluster.name=n1", "cluster.addr is required"),
    (cmd(meta_peer="10.0.0.11"), "cluster: unknown setting(s): meta_peer"),
])
def test_invalid_combinations_are_one_clear_line(cmdline: str, message: str) -> None:
    with pytest.raises(node.NodeError) as e:
        cluster_of(cmdline)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("text, message", [
    ("cluster: yes\n", "cluster: expected a mapping"),
    (f"cluster: {{name: n1, addr: '10.0.0.11:7070', meta_peers: [10.0.0.11], key: {B64}, init: 'yes'}}\n",
     "cluster.init: true on the one node that makes the cluster"),
    (f"cluster: {{name: n1, addr: '10.0.0.11:7070', meta_peers: 10.0.0.11, key: {B64}, expect: true}}\n",
     "cluster.expect: a whole number"),
])
def test_invalid_config_file_values(text: str, message: str) -> None:
    with pytest.raises(node.NodeError, match=message.replace(".", r"\.")):
        cluster_of("", text)


class KeyServer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (B64 + "\n").encode() if self.path == "/key" else b""
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def key_url() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KeyServer)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/key"
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(10)


def test_store_key_from_text_file_or_url(tmp_path: Path, key_url: str) -> None:
    assert node.store_key(cluster_of(cmd())) == KEY
    raw, text = tmp_path / "raw.key", tmp_path / "b64.key"
    raw.write_bytes(KEY)
    text.write_text(B64 + "\n")
    assert node.store_key(cluster_of(cmd(key=str(raw)))) == KEY
    assert node.store_key(cluster_of(cmd(key=str(text)))) == KEY
    assert node.store_key(cluster_of(cmd(key=key_url))) == KEY
    (tmp_path / "bad.key").write_bytes(b"x" * 31)
    with pytest.raises(node.NodeError, match=r"cluster\.key from .*bad\.key: not base64 of 32 bytes"):
        node.store_key(cluster_of(cmd(key=str(tmp_path / "bad.key"))))
    with pytest.raises(node.NodeError, match=r"cluster\.key=.*missing\.key: No such file"):
        node.store_key(cluster_of(cmd(key=str(tmp_path / "missing.key"))))
    assert node.store_key(cluster_of("")) is None


def env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def layout(tmp_path: Path) -> Any:
    return node.Layout(str(tmp_path / "disks/tessera-a/store"), [str(tmp_path / "disks/tessera-a/t0")],
                       ["tessera-a"], True)


def test_meta_node_run_files(tmp_path: Path) -> None:
    cfg = cluster_of(cmd(init="1") + " tessera.ec=2+1")
    run = tmp_path / "run"
    node.write_run_files(cfg, layout(tmp_path), str(run), key=KEY)
    home = tmp_path / "disks/tessera-a"
    modes = {p.name: os.stat(p).st_mode & 0o777 for p in run.iterdir()}
    assert modes["cluster.env"] == modes["store.key"] == modes["patroni.env"] == modes["patroni.yml"] == 0o600
    assert (run / "store.key").read_bytes() == KEY
    env = env_file(run / "cluster.env")
    url = env["TESSERA_META_URL"]
    assert url.startswith("postgresql://tessera:") and B64 not in url and KEY.hex() not in url
    assert url.endswith("@10.0.0.11:5432,10.0.0.12:5432,10.0.0.13:5432/tessera"
                        "?target_session_attrs=read-write&connect_timeout=5")
    assert (env["TESSERA_CLUSTER"], env["TESSERA_CLUSTER_NAME"], env["TESSERA_CLUSTER_ADDR"]) == \
        ("1", "n2", "10.0.0.12:7070")
    assert (env["TESSERA_CLUSTER_INIT"], env["TESSERA_CLUSTER_EC"], env["TESSERA_KEY_FILE"]) == \
        ("1", "2+1", "/run/tessera/store.key")
    etcd = env_file(run / "etcd.env")
    assert etcd["ETCD_NAME"] == "meta1" and etcd["ETCD_DATA_DIR"] == str(home / "etcd")
    assert etcd["ETCD_INITIAL_CLUSTER"] == ("meta0=http://10.0.0.11:2380,meta1=http://10.0.0.12:2380,"
                                            "meta2=http://10.0.0.13:2380")
    assert etcd["ETCD_ADVERTISE_CLIENT_URLS"] == "http://10.0.0.12:2379"
    pat = env_file(run / "patroni.env")
    assert pat["TESSERA_PG_HOME"] == str(home / "pg")
    assert f"tessera:{pat['TESSERA_DB_PASSWORD']}@" in url  # the role the bootstrap hook makes, with that password
    p = yaml.safe_load((run / "patroni.yml").read_text())
    assert p["name"] == "n2" and p["scope"] == "tessera"
    assert p["bootstrap"]["dcs"]["synchronous_mode"] is True
    assert p["bootstrap"]["post_bootstrap"] == "/usr/local/bin/tessera-meta-bootstrap"
    assert p["etcd3"]["hosts"] == ["10.0.0.11:2379", "10.0.0.12:2379", "10.0.0.13:2379"]
    assert p["postgresql"]["data_dir"] == str(home / "pg/data")
    assert p["postgresql"]["connect_address"] == "10.0.0.12:5432"
    auth = p["postgresql"]["authentication"]
    passwords = {auth["superuser"]["password"], auth["replication"]["password"], pat["TESSERA_DB_PASSWORD"]}
    assert len(passwords) == 3 and all(len(x) == 64 for x in passwords)  # one per purpose, none the key
    # another meta node with the same key derives the same passwords and etcd token (nothing else to share)
    other = tmp_path / "run2"
    node.write_run_files(cluster_of(cmd(addr="10.0.0.13:7070", name="n3")), layout(tmp_path), str(other), key=KEY)
    assert yaml.safe_load((other / "patroni.yml").read_text())["postgresql"]["authentication"] == auth
    assert env_file(other / "etcd.env")["ETCD_INITIAL_CLUSTER_TOKEN"] == etcd["ETCD_INITIAL_CLUSTER_TOKEN"]
    assert env_file(other / "cluster.env")["TESSERA_META_URL"] == url
    # a different key: different secrets
    third = tmp_path / "run3"
    node.write_run_files(cfg, layout(tmp_path), str(third), key=bytes(32))
    assert env_file(third / "cluster.env")["TESSERA_META_URL"] != url


def test_storage_and_one_node_run_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    node.write_run_files(cluster_of(cmd(addr="10.0.0.20:7070")), layout(tmp_path), str(run), key=KEY)
    assert sorted(p.name for p in run.iterdir()) == ["cluster.env", "node.env", "store.key", "tessera.yaml", "users"]
    assert env_file(run / "cluster.env")["TESSERA_CLUSTER_INIT"] == "0"
    one = tmp_path / "one"
    node.write_run_files(cluster_of(""), layout(tmp_path), str(one))
    assert (one / "cluster.env").read_text() == ""  # the units name it; empty on a one-node store
    assert not (one / "store.key").exists()
    svc = yaml.safe_load((run / "tessera.yaml").read_text())
    assert "cluster" not in svc
    with_listen = tmp_path / "listen"
    node.write_run_files(cluster_of(cmd(addr="10.0.0.20:7070", target_listen="0.0.0.0:7070")), layout(tmp_path),
                         str(with_listen), key=KEY)
    assert yaml.safe_load((with_listen / "tessera.yaml").read_text())["cluster"] == {"target_listen": "0.0.0.0:7070"}


def test_layout_never_mixes_one_node_and_cluster_stores(tmp_path: Path) -> None:
    a, b = tmp_path / "tessera-a", tmp_path / "tessera-b"
    (a / "store/meta").mkdir(parents=True)
    b.mkdir()
    (a / "store/meta/meta.db").write_bytes(b"")
    with pytest.raises(node.NodeError, match="holds a one-node store; a cluster node needs blank disks"):
        node.plan_layout([str(a), str(b)], 1, cluster=True)
    (a / "store/meta/meta.db").unlink()
    (b / "store/meta").mkdir(parents=True)
    (b / "store/meta/url").write_text("postgresql://x\n")
    with pytest.raises(node.NodeError, match=r"holds a cluster node's store; give this node its tessera\.cluster"):
        node.plan_layout([str(a), str(b)], 1)
    lay = node.plan_layout([str(a), str(b)], 1, cluster=True)  # the cluster metadata stays on the disk that has it
    assert lay.data_dir == str(b / "store") and not lay.fresh


class ClusterHost(FakeHost):
    """FakeHost that also answers `ip -j addr show` with the given addresses."""

    def __init__(self, disks: list[dict[str, object]], addrs: list[str]) -> None:
        super().__init__(disks)
        self.addrs = addrs

    def __call__(self, argv: Sequence[str], check: bool = True) -> str:
        if list(argv[:3]) == ["ip", "-j", "addr"]:
            self.calls.append(list(argv))
            return json.dumps([{"ifname": "eth0", "addr_info": [{"local": a} for a in self.addrs]}])
        return super().__call__(argv, check)


def test_main_cluster_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(node, "DISKS_DIR", str(tmp_path / "disks"))
    monkeypatch.setattr(node, "RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setattr(node.os.path, "ismount", lambda p: False)
    cmdline = tmp_path / "cmdline"
    cmdline.write_text(f"console=ttyS0 {cmd(init='1')}\n")
    host = ClusterHost([disk("/dev/vdb")], ["127.0.0.1", "10.0.0.12"])
    assert node.main([str(cmdline)], run=host) == 0
    assert len(host.did("mkfs.ext4")) == 1
    assert {"etcd.env", "patroni.yml", "patroni.env", "cluster.env", "store.key"} <= set(os.listdir(tmp_path / "run"))
    out = capsys.readouterr().out
    ready = json.loads(next(x for x in out.splitlines() if '"node ready"' in x))
    assert ready["cluster"] == {"name": "n2", "addr": "10.0.0.12:7070", "role": "meta", "init": True,
                                "meta_peers": PEERS.split(",")}
    assert B64 not in out  # the key is never logged


def test_main_wrong_address_fails_before_any_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(node, "RUN_DIR", str(tmp_path / "run"))
    real = node.wait_address
    monkeypatch.setattr(node, "wait_address", lambda host, run: real(host, run, limit_s=0.2, every=0.05))
    cmdline = tmp_path / "cmdline"
    cmdline.write_text(cmd() + "\n")
    host = ClusterHost([disk("/dev/vdb")], ["127.0.0.1", "10.0.2.15"])
    assert node.main([str(cmdline)], run=host) == 1
    err = capsys.readouterr().err
    assert "cluster.addr: 10.0.0.12 is not an address of this node after 0 s (it has 10.0.2.15, 127.0.0.1)" in err
    assert host.did("mkfs.ext4") == [] and host.did("lsblk") == []
    assert not (tmp_path / "run").exists()
