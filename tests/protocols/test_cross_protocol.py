"""One store, several protocols at once: what one writes, the others read, with the same owners and the same
permission outcomes (a real `tessera serve` with S3, NFS and SMB children; libnfs's tools, boto3 and
smbprotocol's smbclient as clients)."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import smbclient  # type: ignore[import-untyped]
from botocore.exceptions import ClientError
from smbprotocol.exceptions import SMBOSError  # type: ignore[import-untyped]

from core.store import open_store
from tests.protocols.allserve import serve_all
from tests.protocols.s3.conftest import cli

ROOT = Path(__file__).resolve().parents[2]
PASSWORDS = {"alice": "alice-smb-pw", "bob": "bob-smb-pw"}


@dataclass
class User:
    name: str
    uid: int
    gid: int
    access_key: str
    secret_key: str


@dataclass
class Node:
    data: Path
    s3_port: int
    nfs_port: int
    smb_port: int
    users: dict[str, User]

    def smb_open(self, who: str, path: str, mode: str) -> Any:
        """``path`` (store path) opened over SMB as ``who`` through the ``all`` share (the store root)."""
        unc = "\\\\127.0.0.1\\all" + path.replace("/", "\\")
        return smbclient.open_file(unc, mode=mode, port=self.smb_port, username=who, password=PASSWORDS[who],
                                   connection_cache=self.smb_cache)

    def __post_init__(self) -> None:
        self.smb_cache: dict[str, Any] = {}

    def s3(self, who: str) -> Any:
        u = self.users[who]
        return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.s3_port}", aws_access_key_id=u.access_key,
                            aws_secret_access_key=u.secret_key, region_name="us-east-1")

    def url(self, who: str, path: str) -> str:
        u = self.users[who]
        q = urllib.parse.urlencode({"version": 3, "nfsport": self.nfs_port, "mountport": self.nfs_port,
                                    "uid": u.uid, "gid": u.gid})
        return f"nfs://127.0.0.1{urllib.parse.quote(path)}?{q}"

    def nfs(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(list(args), capture_output=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data = tmp_path_factory.mktemp("xproto") / "data"
    cli(data, "init")
    users = {}
    for name in ("alice", "bob"):
        u = json.loads(cli(data, "user", "add", name, "--json", "--password", PASSWORDS[name]))
        users[name] = User(name, u["uid"], u["gid"], u["access_key"], u["secret_key"])
    with serve_all(data) as (s3_port, nfs_port, smb_port):
        n = Node(data, s3_port, nfs_port, smb_port, users)
        yield n
        smbclient.reset_connection_cache(connection_cache=n.smb_cache)


def core_attr(node: Node, path: str) -> Any:
    s = open_store(str(node.data))
    try:
        return s.fs.resolve(path)
    finally:
        s.close()


def test_s3_write_is_read_through_nfs_and_core_with_the_same_owner(node: Node, tmp_path: Path) -> None:
    alice = node.s3("alice")
    alice.create_bucket(Bucket="xpa")
    body = os.urandom(3 << 20)
    alice.put_object(Bucket="xpa", Key="dir/obj.bin", Body=body)
    r = node.nfs("nfs-cat", node.url("alice", "/xpa/dir/obj.bin"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == body
    a = core_attr(node, "/xpa/dir/obj.bin")
    assert (a.uid, a.gid, a.size) == (node.users["alice"].uid, node.users["alice"].gid, len(body))
    listing = node.nfs("nfs-ls", node.url("alice", "/xpa/dir"))
    assert listing.returncode == 0, listing.stderr
    line = next(x for x in listing.stdout.decode().splitlines() if x.endswith("obj.bin"))
    mode, _, uid, gid, size = line.split()[:5]
    assert (mode, int(uid), int(gid), int(size)) == ("-rw-------", a.uid, a.gid, len(body))  # s3.object_mode
    # bob may not read alice's bucket through either protocol; neither may a squashed root
    with pytest.raises(ClientError) as e:
        node.s3("bob").get_object(Bucket="xpa", Key="dir/obj.bin")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    r = node.nfs("nfs-cat", node.url("bob", "/xpa/dir/obj.bin"))
    assert r.returncode != 0 and r.stdout != body
    root = node.nfs("nfs-cat", node.url("alice", "/xpa/dir/obj.bin").replace("uid=1000", "uid=0"))
    assert root.returncode != 0


def test_nfs_write_is_read_through_s3_and_core_with_the_same_owner(node: Node, tmp_path: Path) -> None:
    alice = node.s3("alice")
    alice.create_bucket(Bucket="xpb")
    src = tmp_path / "src.bin"
    body = os.urandom(2 << 20) + b"tail"
    src.write_bytes(body)
    r = node.nfs("nfs-cp", str(src), node.url("alice", "/xpb/from-nfs.bin"))
    assert r.returncode == 0, r.stderr
    got = alice.get_object(Bucket="xpb", Key="from-nfs.bin")
    assert got["Body"].read() == body
    a = core_attr(node, "/xpb/from-nfs.bin")
    assert (a.uid, a.gid, a.size) == (node.users["alice"].uid, node.users["alice"].gid, len(body))
    keys = [o["Key"] for o in alice.list_objects_v2(Bucket="xpb")["Contents"]]
    assert keys == ["from-nfs.bin"]
    with pytest.raises(ClientError) as e:
        node.s3("bob").get_object(Bucket="xpb", Key="from-nfs.bin")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    # bob cannot write into alice's bucket through NFS either
    r = node.nfs("nfs-cp", str(src), node.url("bob", "/xpb/bob.bin"))
    assert r.returncode != 0
    with pytest.raises(ClientError):
        alice.head_object(Bucket="xpb", Key="bob.bin")


def test_s3_overwrite_and_delete_seen_by_nfs(node: Node) -> None:
    alice = node.s3("alice")
    alice.create_bucket(Bucket="xpc")
    alice.put_object(Bucket="xpc", Key="k", Body=b"one")
    assert node.nfs("nfs-cat", node.url("alice", "/xpc/k")).stdout == b"one"
    alice.put_object(Bucket="xpc", Key="k", Body=b"two, longer")
    assert node.nfs("nfs-cat", node.url("alice", "/xpc/k")).stdout == b"two, longer"
    alice.delete_object(Bucket="xpc", Key="k")
    r = node.nfs("nfs-cat", node.url("alice", "/xpc/k"))
    assert r.returncode != 0
    assert "k" not in node.nfs("nfs-ls", node.url("alice", "/xpc")).stdout.decode().split()


def test_smb_write_is_read_through_s3_nfs_and_core_with_the_same_owner(node: Node) -> None:
    alice = node.s3("alice")
    alice.create_bucket(Bucket="xpd")
    body = os.urandom(3 << 20) + b"smb"
    with node.smb_open("alice", "/xpd/from-smb.bin", "wb") as f:
        f.write(body)
    assert alice.get_object(Bucket="xpd", Key="from-smb.bin")["Body"].read() == body
    r = node.nfs("nfs-cat", node.url("alice", "/xpd/from-smb.bin"))
    assert r.returncode == 0 and r.stdout == body, r.stderr
    a = core_attr(node, "/xpd/from-smb.bin")
    assert (a.uid, a.gid, a.size) == (node.users["alice"].uid, node.users["alice"].gid, len(body))
    # bob is refused by all three protocols alike
    with pytest.raises(ClientError) as e:
        node.s3("bob").get_object(Bucket="xpd", Key="from-smb.bin")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert node.nfs("nfs-cat", node.url("bob", "/xpd/from-smb.bin")).returncode != 0
    with pytest.raises(SMBOSError) as se:
        node.smb_open("bob", "/xpd/from-smb.bin", "rb").close()
    assert "ACCESS_DENIED" in str(se.value) or "Permission denied" in str(se.value) or se.value.errno == 13
    with pytest.raises(SMBOSError), node.smb_open("bob", "/xpd/bob.bin", "wb") as f:
        f.write(b"x")


def test_s3_and_nfs_writes_are_read_through_smb(node: Node, tmp_path: Path) -> None:
    alice = node.s3("alice")
    alice.create_bucket(Bucket="xpe")
    alice.put_object(Bucket="xpe", Key="s3.txt", Body=b"from s3")
    src = tmp_path / "n.bin"
    src.write_bytes(b"from nfs" * 1000)
    assert node.nfs("nfs-cp", str(src), node.url("alice", "/xpe/nfs.bin")).returncode == 0
    with node.smb_open("alice", "/xpe/s3.txt", "rb") as f:
        assert f.read() == b"from s3"
    with node.smb_open("alice", "/xpe/nfs.bin", "rb") as f:
        assert f.read() == src.read_bytes()
    # an overwrite through S3 is what SMB reads next
    alice.put_object(Bucket="xpe", Key="s3.txt", Body=b"from s3, again")
    with node.smb_open("alice", "/xpe/s3.txt", "rb") as f:
        assert f.read() == b"from s3, again"
    with pytest.raises(SMBOSError):
        node.smb_open("bob", "/xpe/s3.txt", "rb").close()
