"""Versions, the trash and retention through NFSv3 (no NFS-specific code: core.fs keeps what REMOVE,
RENAME over a file and SETATTR size 0 drop, and refuses what retention forbids).

Raw procedures go through the real RPC dispatch path (:class:`Nfs3`, replies decoded by the RFC's
``.x``); the end-to-end part runs libnfs's ``nfs-cp``/``nfs-cat`` against a running server.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from core.fs import NOW
from core.store import Store
from protocols.nfs import mount as M
from protocols.nfs import nfs3_args as A
from protocols.nfs.dispatch import AuthSys
from protocols.nfs.errors import NFS3ERR_ACCES, NFS3ERR_STALE
from protocols.nfs.exports import Export
from protocols.nfs.nfs3_types import NFS_PROGRAM, NFS_V3, CreateMode, DirOp, Proc, Sattr3, StableHow
from protocols.nfs.rpcclient import RpcClient
from protocols.nfs.xdr import Packer
from tests.protocols.nfs.nfs3_harness import ALICE, BOB, ROOT, Nfs3, fh_of, make_tree

from .conftest import ALICE_UID, LibNfs, ServerFactory

DAY = 86400 * 1_000_000_000


@pytest.fixture
def nfs(mem_store: Store) -> Nfs3:
    make_tree(mem_store)
    mem_store.identity.add_user("alice", uid=1000, key=False)
    mem_store.identity.add_user("bob", uid=1001, key=False)
    mem_store.fs.set_tree_policy(mem_store.fs.resolve("/data").ino, trash_days=1.0)
    return Nfs3(mem_store)


def write_new(nfs: Nfs3, name: bytes, data: bytes, auth: AuthSys = ALICE) -> bytes:
    """CREATE (GUARDED) + WRITE FILE_SYNC: the new file's handle."""
    how = A.CreateArgs(DirOp(nfs.root(), name), CreateMode.GUARDED, Sattr3(mode=0o666))
    fh = fh_of(nfs.call(Proc.CREATE, how, auth).ok)
    write(nfs, fh, data, auth)
    return fh


def write(nfs: Nfs3, fh: bytes, data: bytes, auth: AuthSys = ALICE, off: int = 0) -> int:
    r = nfs.call(Proc.WRITE, A.WriteArgs(fh, off, len(data), StableHow.FILE_SYNC, data), auth)
    return r.status


def read(nfs: Nfs3, fh: bytes, auth: AuthSys = ALICE) -> bytes:
    ok = nfs.call(Proc.READ, A.ReadArgs(fh, 0, 1 << 20), auth).ok
    return bytes(ok["data"])


def lookup(nfs: Nfs3, name: bytes, auth: AuthSys = ALICE) -> bytes:
    return fh_of(nfs.call(Proc.LOOKUP, A.DirOpArgs(DirOp(nfs.root(), name)), auth).ok, "object")


def remove(nfs: Nfs3, name: bytes, auth: AuthSys = ALICE) -> int:
    return nfs.call(Proc.REMOVE, A.DirOpArgs(DirOp(nfs.root(), name)), auth).status


def truncate(nfs: Nfs3, fh: bytes, auth: AuthSys = ALICE) -> int:
    return nfs.call(Proc.SETATTR, A.SetattrArgs(fh, Sattr3(size=0, mtime=NOW)), auth).status


def rename(nfs: Nfs3, src: bytes, dst: bytes, auth: AuthSys = ALICE) -> int:
    args = A.RenameArgs(DirOp(nfs.root(), src), DirOp(nfs.root(), dst))
    return nfs.call(Proc.RENAME, args, auth).status


def getattr_status(nfs: Nfs3, fh: bytes) -> int:
    return nfs.call(Proc.GETATTR, A.FhArgs(fh), ROOT).status


# -- the trash ----------------------------------------------------------------------------------------------
def test_remove_goes_to_the_trash_and_restores(nfs: Nfs3) -> None:
    fs = nfs.store.fs
    fh = write_new(nfs, b"report.txt", b"quarterly numbers\n")
    assert remove(nfs, b"report.txt", BOB) == 0  # /data is 0777: bob may remove alice's file
    assert getattr_status(nfs, fh) == NFS3ERR_STALE  # the old handle: kept, but not reachable over NFS
    assert read_status(nfs, fh) == NFS3ERR_STALE
    [entry] = fs.trash("/data")
    assert (entry.path, entry.reason, entry.by_uid, entry.by_name, entry.uid, entry.size) == \
        ("/data/report.txt", "delete", 1001, "bob", 1000, 18)
    assert entry.expires_ns is not None and entry.expires_ns - entry.replaced_ns == DAY
    assert fs.reading_versions().read(entry.ino, 0, 100) == b"quarterly numbers\n"
    fs.trash_restore("/data/report.txt")
    assert fs.trash("/data") == []
    assert read(nfs, lookup(nfs, b"report.txt")) == b"quarterly numbers\n"


def read_status(nfs: Nfs3, fh: bytes) -> int:
    return nfs.call(Proc.READ, A.ReadArgs(fh, 0, 100), ROOT).status


def test_rename_over_keeps_the_replaced_file(nfs: Nfs3) -> None:
    fs = nfs.store.fs
    old = write_new(nfs, b"target", b"old target")
    write_new(nfs, b"tmp", b"new content")
    assert rename(nfs, b"tmp", b"target") == 0
    assert getattr_status(nfs, old) == NFS3ERR_STALE
    [entry] = [v for v in fs.versions("/data/target") if v.kind != "current"]
    assert (entry.reason, entry.by_name) == ("rename", "alice")
    assert fs.reading_versions().read(entry.ino, 0, 100) == b"old target"
    assert read(nfs, lookup(nfs, b"target")) == b"new content"


def test_truncate_and_rewrite_keeps_a_version_in_a_versioned_tree(nfs: Nfs3) -> None:
    fs = nfs.store.fs
    fs.set_tree_policy(fs.resolve("/data").ino, versioning="enabled")
    fh = write_new(nfs, b"doc", b"version one")
    assert truncate(nfs, fh) == 0
    assert write(nfs, fh, b"version two!") == 0
    assert getattr_status(nfs, fh) == 0  # the live file keeps its handle
    assert read(nfs, fh) == b"version two!"
    vs = fs.versions("/data/doc")
    assert [v.kind for v in vs] == ["current", "version"]
    old = vs[1]
    assert (old.reason, old.size, old.by_name) == ("truncate", 11, "alice")
    assert fs.reading_versions().read(old.ino, 0, 100) == b"version one"
    assert vs[0].vid != old.vid != "null"
    fs.restore_version("/data/doc", old.vid)
    assert read(nfs, lookup(nfs, b"doc")) == b"version one"


# -- retention and legal hold -------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["compliance", "hold"])
def test_retention_refuses_every_destructive_procedure(nfs: Nfs3, how: str) -> None:
    fs = nfs.store.fs
    fh = write_new(nfs, b"ledger", b"locked bytes")
    write_new(nfs, b"other", b"replacement")
    if how == "compliance":
        fs.set_retention("/data/ledger", None, "COMPLIANCE", time.time_ns() + DAY)
    else:
        fs.set_legal_hold("/data/ledger", None, True)
    assert fs.locked(fs.resolve("/data/ledger").ino)
    for auth in (ALICE, ROOT):  # not even root (squash none) over NFS
        assert remove(nfs, b"ledger", auth) == NFS3ERR_ACCES
        assert rename(nfs, b"other", b"ledger", auth) == NFS3ERR_ACCES
        assert write(nfs, fh, b"X", auth) == NFS3ERR_ACCES
        assert write(nfs, fh, b"appended", auth, off=12) == NFS3ERR_ACCES
        assert truncate(nfs, fh, auth) == NFS3ERR_ACCES
        assert nfs.call(Proc.SETATTR, A.SetattrArgs(fh, Sattr3(size=4)), auth).status == NFS3ERR_ACCES
    assert read(nfs, lookup(nfs, b"ledger")) == b"locked bytes"
    assert read(nfs, lookup(nfs, b"other")) == b"replacement"
    assert fs.trash("/data") == []
    if how == "hold":  # lifting the hold makes it an ordinary file again
        fs.set_legal_hold("/data/ledger", None, False)
        assert remove(nfs, b"ledger") == 0
        assert [v.path for v in fs.trash("/data")] == ["/data/ledger"]


# -- end to end: libnfs's tools and a real socket ------------------------------------------------------------
@pytest.mark.usefixtures("libnfs_tools")
@pytest.mark.timeout(120)
def test_remove_over_the_wire_then_restore_reads_back(nfs_store: Store, nfs_server: ServerFactory,
                                                      tmp_path: Path) -> None:
    fs = nfs_store.fs
    srv = nfs_server([Export.build("/data", ["127.0.0.1"], squash="root")])
    alice = LibNfs(srv.port).as_user(ALICE_UID)
    body = os.urandom(200_000)  # past the inline limit: slices on the targets
    (tmp_path / "in").write_bytes(body)
    assert (r := alice.put(tmp_path / "in", "/data/model.ckpt")).rc == 0, r.text
    with RpcClient("127.0.0.1", srv.port, auth=AuthSys(0, "client", ALICE_UID, ALICE_UID, (ALICE_UID,))) as c:
        status, root, _ = mnt(c, "/data")
        assert status == 0
        p = Packer()
        A.DirOpArgs(DirOp(root, b"model.ckpt")).pack(p)
        res = c.call_ok(NFS_PROGRAM, NFS_V3, Proc.REMOVE, p)
        assert int.from_bytes(bytes(res[:4]), "big") == 0  # nfsstat3 NFS3_OK
    assert "model.ckpt" not in alice.names("/data")
    assert "NFS3ERR_NOENT" in alice.cat("/data/model.ckpt").text
    [entry] = fs.trash("/data")
    assert (entry.path, entry.by_name, entry.size) == ("/data/model.ckpt", "alice", len(body))
    fs.trash_restore(entry.path)
    assert alice.cat("/data/model.ckpt").out == body
    assert fs.trash("/data") == []


def mnt(c: RpcClient, path: str) -> tuple[int, bytes, list[int]]:
    return M.unpack_mountres(c.call_ok(M.PROG, 3, M.MNT, M.pack_dirpath(path)))
