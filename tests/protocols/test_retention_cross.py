"""Retention across protocols: one store served by a real ``tessera serve`` (S3, NFS and SMB children); an
object put under a COMPLIANCE retention through S3 (PutObjectRetention) cannot be deleted or overwritten
through S3 (DELETE ?versionId: AccessDenied), NFS (REMOVE, RENAME over, WRITE, SETATTR size 0:
NFS3ERR_ACCES), SMB (delete: CANNOT_DELETE; overwrite: ACCESS_DENIED) or the CLI (``tessera rm``), and
reads the same bytes everywhere afterwards.  A legal hold set through S3 holds the same way.

S3's own semantics are kept: a plain PUT or DELETE in the (versioned) bucket is allowed, as on AWS: it
adds a new current version or a delete marker and leaves the locked version noncurrent and locked.  This
test does neither, so the locked object stays current for the other protocols.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import smbclient  # type: ignore[import-untyped]
from botocore.exceptions import ClientError
from smbprotocol.exceptions import SMBOSError  # type: ignore[import-untyped]

from core.store import open_store
from protocols.nfs import mount as M
from protocols.nfs import nfs3_args as A
from protocols.nfs.dispatch import AuthSys
from protocols.nfs.nfs3_types import NFS_PROGRAM, NFS_V3, DirOp, Proc, Sattr3, StableHow
from protocols.nfs.rpcclient import RpcClient
from protocols.nfs.xdr import Packer, Unpacker
from protocols.smb.status import NtStatus
from tests.protocols.allserve import serve_all
from tests.protocols.s3.conftest import cli

ROOT = Path(__file__).resolve().parents[2]
PASSWORDS = {"alice": "alice-smb-pw"}
NFS3ERR_ACCES = 13
BODY = b"audit ledger 2026\n" * 1000


class Node:
    """A running ``tessera serve`` and clients for alice."""

    def __init__(self, data: Path, s3_port: int, nfs_port: int, smb_port: int, user: dict[str, Any]) -> None:
        self.data, self.s3_port, self.nfs_port, self.smb_port, self.user = data, s3_port, nfs_port, smb_port, user
        self.smb_cache: dict[str, Any] = {}

    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.s3_port}",
                            aws_access_key_id=self.user["access_key"], aws_secret_access_key=self.user["secret_key"],
                            region_name="us-east-1")

    def smb(self, fn: Any, *paths: str, **kw: Any) -> Any:
        uncs = ["\\\\127.0.0.1\\all" + p.replace("/", "\\") for p in paths]
        return fn(*uncs, port=self.smb_port, username="alice", password=PASSWORDS["alice"],
                  connection_cache=self.smb_cache, **kw)

    def nfs(self) -> RpcClient:
        uid, gid = int(self.user["uid"]), int(self.user["gid"])
        return RpcClient("127.0.0.1", self.nfs_port, auth=AuthSys(0, "client", uid, gid, (gid,)))

    def core(self) -> Any:
        return open_store(str(self.data))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data = tmp_path_factory.mktemp("retention") / "data"
    cli(data, "init")
    user = json.loads(cli(data, "user", "add", "alice", "--json", "--password", PASSWORDS["alice"]))
    with serve_all(data) as (s3_port, nfs_port, smb_port):
        n = Node(data, s3_port, nfs_port, smb_port, user)
        yield n
        smbclient.reset_connection_cache(connection_cache=n.smb_cache)


# -- NFS over the wire: status of each procedure ------------------------------------------------------------
def _call(c: RpcClient, proc: Proc, args: Any) -> tuple[int, Unpacker]:
    p = Packer()
    args.pack(p)
    u = Unpacker(bytes(c.call_ok(NFS_PROGRAM, NFS_V3, proc, p)))
    return u.unpack_uint(), u


def _lookup(c: RpcClient, dfh: bytes, name: str) -> bytes:
    st, u = _call(c, Proc.LOOKUP, A.DirOpArgs(DirOp(dfh, name.encode())))
    assert st == 0, st
    return u.unpack_opaque()


def nfs_statuses(node: Node, bucket: str, key: str, other: str) -> dict[str, int]:
    """REMOVE, RENAME over, WRITE and SETATTR size 0 of ``/bucket/key`` over NFS as alice."""
    with node.nfs() as c:
        status, root, _ = M.unpack_mountres(c.call_ok(M.PROG, 3, M.MNT, M.pack_dirpath("/")))
        assert status == 0
        bfh = _lookup(c, root, bucket)
        fh = _lookup(c, bfh, key)
        return {
            "remove": _call(c, Proc.REMOVE, A.DirOpArgs(DirOp(bfh, key.encode())))[0],
            "rename": _call(c, Proc.RENAME, A.RenameArgs(DirOp(bfh, other.encode()), DirOp(bfh, key.encode())))[0],
            "write": _call(c, Proc.WRITE, A.WriteArgs(fh, 0, 4, StableHow.FILE_SYNC, b"evil"))[0],
            "truncate": _call(c, Proc.SETATTR, A.SetattrArgs(fh, Sattr3(size=0)))[0],
        }


def nfs_read(node: Node, path: str) -> bytes:
    r = subprocess.run(["nfs-cat", f"nfs://127.0.0.1{path}?version=3&nfsport={node.nfs_port}&mountport="
                        f"{node.nfs_port}&uid={node.user['uid']}&gid={node.user['gid']}"],
                       capture_output=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout


def smb_status(fn: Any) -> int:
    try:
        fn()
    except SMBOSError as e:
        return int(e.ntstatus)
    return 0


def _write_over(node: Node, path: str) -> None:
    with node.smb(smbclient.open_file, path, mode="wb") as f:
        f.write(b"overwritten")


def check_everywhere(node: Node, bucket: str, key: str, vid: str) -> None:
    s3 = node.s3()
    s3.put_object(Bucket=bucket, Key="other.txt", Body=b"another object")
    # S3: the locked version cannot be deleted
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=bucket, Key=key, VersionId=vid)
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    # NFS
    assert nfs_statuses(node, bucket, key, "other.txt") == dict.fromkeys(("remove", "rename", "write", "truncate"),
                                                                          NFS3ERR_ACCES)
    # SMB
    path = f"/{bucket}/{key}"
    assert smb_status(lambda: node.smb(smbclient.remove, path)) == NtStatus.CANNOT_DELETE
    assert smb_status(lambda: _write_over(node, path)) == NtStatus.ACCESS_DENIED
    assert smb_status(lambda: node.smb(smbclient.replace, f"/{bucket}/other.txt", path)) == NtStatus.ACCESS_DENIED
    # the CLI
    r = subprocess.run([sys.executable, "-m", "gateway.cli", "--data", str(node.data), "rm", path], cwd=ROOT,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode != 0 and ("retention" in r.stderr or "legal hold" in r.stderr), r
    # the same bytes everywhere afterwards
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == BODY
    assert s3.get_object(Bucket=bucket, Key=key, VersionId=vid)["Body"].read() == BODY
    assert nfs_read(node, path) == BODY
    with node.smb(smbclient.open_file, path, mode="rb") as f:
        assert f.read() == BODY
    s = node.core()
    try:
        a = s.fs.resolve(path)
        assert s.fs.read(a.ino, 0, len(BODY) + 1) == BODY
        assert s.fs.version_id(a.ino) == vid and s.fs.locked(a.ino)
        assert [v.vid for v in s.fs.versions(path)] == [vid]
        assert s.fs.trash(f"/{bucket}") == []
    finally:
        s.close()


@pytest.mark.timeout(240)
def test_compliance_retention_holds_on_every_protocol(node: Node) -> None:
    s3 = node.s3()
    s3.create_bucket(Bucket="ledger", ObjectLockEnabledForBucket=True)
    vid = s3.put_object(Bucket="ledger", Key="2026.csv", Body=BODY)["VersionId"]
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    s3.put_object_retention(Bucket="ledger", Key="2026.csv", VersionId=vid,
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until})
    got = s3.get_object_retention(Bucket="ledger", Key="2026.csv", VersionId=vid)["Retention"]
    assert got["Mode"] == "COMPLIANCE"
    check_everywhere(node, "ledger", "2026.csv", vid)


@pytest.mark.timeout(240)
def test_legal_hold_holds_on_every_protocol(node: Node) -> None:
    s3 = node.s3()
    s3.create_bucket(Bucket="evidence", ObjectLockEnabledForBucket=True)
    vid = s3.put_object(Bucket="evidence", Key="exhibit-a.bin", Body=BODY)["VersionId"]
    s3.put_object_legal_hold(Bucket="evidence", Key="exhibit-a.bin", VersionId=vid, LegalHold={"Status": "ON"})
    check_everywhere(node, "evidence", "exhibit-a.bin", vid)
    s3.put_object_legal_hold(Bucket="evidence", Key="exhibit-a.bin", VersionId=vid, LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket="evidence", Key="exhibit-a.bin", VersionId=vid)  # an ordinary version again
    with pytest.raises(ClientError):
        s3.head_object(Bucket="evidence", Key="exhibit-a.bin", VersionId=vid)
