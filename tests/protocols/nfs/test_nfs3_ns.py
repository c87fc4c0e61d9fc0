"""NFSv3 namespace procedures through the RPC dispatch path, against a real store, as root and non-root
AUTH_SYS users: LOOKUP (".." at the export root), CREATE (UNCHECKED, GUARDED, EXCLUSIVE retries), MKDIR,
SYMLINK, MKNOD, REMOVE, RMDIR, RENAME, LINK, with their permission outcomes and exact wcc data."""

from __future__ import annotations

from typing import Any

import pytest

from core.fs import NOW
from core.store import Store
from protocols.nfs import nfs3_args as A
from protocols.nfs import nfs3_types as T
from protocols.nfs.dispatch import AuthSys
from protocols.nfs.errors import (
    NFS3ERR_ACCES,
    NFS3ERR_BADTYPE,
    NFS3ERR_EXIST,
    NFS3ERR_INVAL,
    NFS3ERR_ISDIR,
    NFS3ERR_NAMETOOLONG,
    NFS3ERR_NOENT,
    NFS3ERR_NOTDIR,
    NFS3ERR_NOTEMPTY,
    NFS3ERR_NOTSUPP,
    NFS3ERR_PERM,
    NFS3ERR_ROFS,
    NFS3ERR_STALE,
    NFS3ERR_XDEV,
)
from protocols.nfs.nfs3_types import DirOp, Proc, Sattr3
from tests.protocols.nfs.nfs3_harness import ALICE, BOB, DATA, OTHER, RO, ROOT, Nfs3, Reply, attrs, fh_of, make_tree, ns

B = 1_000_000_000


@pytest.fixture
def nfs(mem_store: Store) -> Nfs3:
    make_tree(mem_store)
    return Nfs3(mem_store)


def lookup(nfs: Nfs3, dfh: bytes, name: bytes, auth: AuthSys = ALICE) -> Reply:
    return nfs.call(Proc.LOOKUP, A.DirOpArgs(DirOp(dfh, name)), auth)


def create(nfs: Nfs3, dfh: bytes, name: bytes, auth: AuthSys = ALICE, mode: T.CreateMode = T.CreateMode.GUARDED,
           attrs_: Sattr3 | None = None, verf: bytes | None = None) -> Reply:
    how = A.CreateArgs(DirOp(dfh, name), mode, attrs_ if attrs_ is not None or verf else Sattr3(mode=0o644), verf)
    return nfs.call(Proc.CREATE, how, auth)


def check_wcc(wcc: dict[str, Any], before: Any, after: Any) -> None:
    """wcc_data equals the directory's attributes read just before and just after the call."""
    pre = wcc["before"]["attributes"]
    assert (pre["size"], ns(pre["mtime"]), ns(pre["ctime"])) == (before.size, before.mtime_ns, before.ctime_ns)
    post = attrs(wcc["after"])
    assert (post["fileid"], post["size"], ns(post["mtime"]), ns(post["ctime"]), post["nlink"]) == \
        (after.ino, after.size, after.mtime_ns, after.ctime_ns, after.nlink)


# -- LOOKUP -------------------------------------------------------------------------------------------------
def test_lookup_names_dot_and_dotdot(nfs: Nfs3) -> None:
    root = nfs.root()
    r = lookup(nfs, root, b"alice").ok
    alice = fh_of(r, "object")
    assert alice == nfs.fh("/data/alice")
    assert attrs(r["obj_attributes"])["fileid"] == nfs.attr("/data/alice").ino
    assert attrs(r["dir_attributes"])["fileid"] == nfs.attr("/data").ino
    assert fh_of(lookup(nfs, alice, b".").ok, "object") == alice
    assert fh_of(lookup(nfs, alice, b"..").ok, "object") == root


def test_dotdot_at_the_export_root_is_the_root(nfs: Nfs3) -> None:
    for export in (DATA, OTHER, RO):
        root = nfs.root(export)
        r = lookup(nfs, root, b"..", ROOT).ok
        assert fh_of(r, "object") == root
        assert attrs(r["obj_attributes"])["fileid"] == nfs.attr(export.path).ino
    sub = nfs.fh("/data/shared")
    assert fh_of(lookup(nfs, fh_of(lookup(nfs, sub, b"..").ok, "object"), b"..").ok, "object") == nfs.root()


def test_dotdot_never_leaves_the_export(nfs: Nfs3) -> None:
    """A directory moved out of its export (by another protocol) stays reachable through the handles issued
    before (as with knfsd's no_subtree_check), but ``..`` never answers with a directory outside the export:
    walking up cannot reach what the export does not hold."""
    fs = nfs.store.fs
    d = fs.mkdir(fs.resolve("/data/alice").ino, "deep", 0o755, uid=1000, gid=1000)
    sub = fs.mkdir(d.ino, "sub", 0o755, uid=1000, gid=1000)
    fh_d, fh_sub = nfs.fh("/data/alice/deep"), nfs.fh("/data/alice/deep/sub")
    assert fh_of(lookup(nfs, fh_sub, b"..").ok, "object") == fh_d
    fs.mkdir(fs.root, "elsewhere", 0o777)
    fs.rename(fs.resolve("/data/alice").ino, "deep", fs.resolve("/elsewhere").ino, "deep")
    assert lookup(nfs, fh_sub, b"..").status == NFS3ERR_STALE  # its parent is outside now
    r = lookup(nfs, fh_d, b"..")
    assert r.status == NFS3ERR_STALE and attrs(r.fail["dir_attributes"])["fileid"] == d.ino
    plus = nfs.call(Proc.READDIRPLUS, A.ReaddirplusArgs(fh_d, 0, bytes(8), 0, 8192), ALICE).ok["reply"]["entries"]
    dotdot = plus[1]
    assert dotdot["name"] == b".." and not dotdot["name_handle"]["handle_follows"]
    assert dotdot["fileid"] == nfs.attr("/elsewhere").ino
    assert plus[2]["name"] == b"sub" and plus[2]["name_handle"]["handle"]["data"] == fh_sub
    assert sub.ino == plus[2]["fileid"]


def test_lookup_failures(nfs: Nfs3) -> None:
    r = lookup(nfs, nfs.root(), b"missing")
    assert r.status == NFS3ERR_NOENT and attrs(r.fail["dir_attributes"])["fileid"] == nfs.attr("/data").ino
    assert lookup(nfs, nfs.fh("/data/alice"), b"x", BOB).status == NFS3ERR_ACCES  # no search permission
    assert lookup(nfs, nfs.fh("/data/alice"), b"..", BOB).status == NFS3ERR_ACCES
    assert lookup(nfs, nfs.fh("/data/alice"), b".", BOB).status == NFS3ERR_ACCES
    assert lookup(nfs, nfs.fh("/ro/f", RO), b"x", ROOT).status == NFS3ERR_NOTDIR
    assert lookup(nfs, nfs.fh("/ro/f", RO), b"..", ROOT).status == NFS3ERR_NOTDIR
    assert lookup(nfs, nfs.root(), b"x" * 256).status == NFS3ERR_NAMETOOLONG
    assert lookup(nfs, nfs.root(), b"a/b").status == NFS3ERR_INVAL


# -- CREATE -------------------------------------------------------------------------------------------------
def test_create_guarded_and_wcc(nfs: Nfs3) -> None:
    before = nfs.attr("/data")
    r = create(nfs, nfs.root(), b"new", attrs_=Sattr3(mode=0o640, mtime=5 * B)).ok
    after = nfs.attr("/data")
    check_wcc(r["dir_wcc"], before, after)
    a = nfs.attr("/data/new")
    assert (a.uid, a.gid, a.perm, a.mtime_ns) == (1000, 1000, 0o640, 5 * B)
    assert fh_of(r) == nfs.fh("/data/new") and attrs(r["obj_attributes"])["fileid"] == a.ino
    fail = create(nfs, nfs.root(), b"new")
    assert fail.status == NFS3ERR_EXIST
    assert attrs(fail.fail["dir_wcc"]["after"])["fileid"] == before.ino


def test_create_unchecked_truncates_an_existing_file_only(nfs: Nfs3) -> None:
    nfs.store.fs.write_file(nfs.attr("/data").ino, "f", b"old data", mode=0o666)
    r = create(nfs, nfs.root(), b"f", mode=T.CreateMode.UNCHECKED, attrs_=Sattr3(mode=0o600, size=0)).ok
    a = nfs.attr("/data/f")
    assert (a.size, a.perm, a.uid) == (0, 0o666, 0)  # size applied, mode and owner kept
    assert fh_of(r) == nfs.fh("/data/f")
    r = create(nfs, nfs.root(), b"f", mode=T.CreateMode.UNCHECKED, attrs_=Sattr3())
    assert r.status == 0
    assert create(nfs, nfs.root(), b"alice", mode=T.CreateMode.UNCHECKED, attrs_=Sattr3()).status == NFS3ERR_EXIST
    assert create(nfs, nfs.root(), b"g", mode=T.CreateMode.UNCHECKED, attrs_=Sattr3(size=3)).status == 0
    assert nfs.attr("/data/g").size == 3


def test_create_exclusive_retries(nfs: Nfs3) -> None:
    ex = T.CreateMode.EXCLUSIVE
    first = create(nfs, nfs.root(), b"x", mode=ex, verf=b"verf0001").ok
    again = create(nfs, nfs.root(), b"x", mode=ex, verf=b"verf0001").ok  # a retransmission
    assert fh_of(first) == fh_of(again) == nfs.fh("/data/x")
    assert create(nfs, nfs.root(), b"x", mode=ex, verf=b"verf0002").status == NFS3ERR_EXIST
    assert create(nfs, nfs.root(), b"x", mode=ex, verf=b"verf0001", auth=BOB).status == 0  # same verifier
    assert create(nfs, nfs.root(), b"alice", mode=ex, verf=b"verf0001").status == NFS3ERR_EXIST
    a = nfs.attr("/data/x")
    assert (a.uid, a.perm, a.size) == (1000, 0o600, 0)
    r = nfs.call(Proc.SETATTR, A.SetattrArgs(fh_of(first), Sattr3(mode=0o644, atime=NOW, mtime=NOW)), ALICE)
    assert r.status == 0 and nfs.attr("/data/x").perm == 0o644
    assert create(nfs, nfs.root(), b"x", mode=ex, verf=b"verf0001").status == 0  # still the same create


def test_create_permission_outcomes(nfs: Nfs3) -> None:
    r = create(nfs, nfs.fh("/data/alice"), b"f", BOB)
    assert r.status == NFS3ERR_ACCES
    assert create(nfs, nfs.root(), b"for-bob", ALICE, attrs_=Sattr3(mode=0o644, uid=1001)).status == NFS3ERR_PERM
    r = create(nfs, nfs.root(), b"for-bob", ROOT, attrs_=Sattr3(mode=0o644, uid=1001, gid=1001))
    assert r.status == 0 and (nfs.attr("/data/for-bob").uid, nfs.attr("/data/for-bob").gid) == (1001, 1001)
    assert create(nfs, nfs.root(RO), b"f", ROOT).status == NFS3ERR_ROFS
    assert create(nfs, nfs.root(), b".").status == NFS3ERR_EXIST
    assert create(nfs, nfs.root(), b"").status == NFS3ERR_INVAL


# -- MKDIR, SYMLINK, MKNOD ----------------------------------------------------------------------------------
def test_mkdir(nfs: Nfs3) -> None:
    before = nfs.attr("/data")
    r = nfs.call(Proc.MKDIR, A.MkdirArgs(DirOp(nfs.root(), b"d"), Sattr3(mode=0o750)), BOB).ok
    check_wcc(r["dir_wcc"], before, nfs.attr("/data"))
    assert nfs.attr("/data").nlink == before.nlink + 1
    d = nfs.attr("/data/d")
    assert (d.uid, d.perm, attrs(r["obj_attributes"])["type"]) == (1001, 0o750, T.Ftype3.DIR)
    assert nfs.call(Proc.MKDIR, A.MkdirArgs(DirOp(nfs.root(), b"d"), Sattr3()), BOB).status == NFS3ERR_EXIST
    r = nfs.call(Proc.MKDIR, A.MkdirArgs(DirOp(fh_of(r), b"sub"), Sattr3()), ALICE)
    assert r.status == NFS3ERR_ACCES


def test_symlink(nfs: Nfs3) -> None:
    r = nfs.call(Proc.SYMLINK, A.SymlinkArgs(DirOp(nfs.root(), b"l"), Sattr3(), b"alice/\xff"), ALICE).ok
    assert attrs(r["obj_attributes"])["type"] == T.Ftype3.LNK
    assert nfs.call(Proc.READLINK, A.FhArgs(fh_of(r))).ok["data"] == b"alice/\xff"
    assert nfs.store.fs.readlink(nfs.attr("/data/l").ino) == "alice/\udcff"


def test_mknod(nfs: Nfs3) -> None:
    for kind in (T.Ftype3.CHR, T.Ftype3.BLK):
        r = nfs.call(Proc.MKNOD, A.MknodArgs(DirOp(nfs.root(), b"dev"), kind, Sattr3(), (1, 3)), ROOT)
        assert r.status == NFS3ERR_NOTSUPP and attrs(r.fail["dir_wcc"]["after"])["fileid"] == nfs.attr("/data").ino
    for kind in (T.Ftype3.REG, T.Ftype3.DIR, T.Ftype3.LNK):
        assert nfs.call(Proc.MKNOD, A.MknodArgs(DirOp(nfs.root(), b"x"), kind)).status == NFS3ERR_BADTYPE
    r = nfs.call(Proc.MKNOD, A.MknodArgs(DirOp(nfs.root(), b"fifo"), T.Ftype3.FIFO, Sattr3(mode=0o600))).ok
    assert attrs(r["obj_attributes"])["type"] == T.Ftype3.FIFO and attrs(r["obj_attributes"])["mode"] == 0o600
    r = nfs.call(Proc.MKNOD, A.MknodArgs(DirOp(nfs.root(), b"sock"), T.Ftype3.SOCK, Sattr3()), BOB).ok
    assert attrs(r["obj_attributes"])["type"] == T.Ftype3.SOCK and attrs(r["obj_attributes"])["uid"] == 1001


# -- REMOVE, RMDIR ------------------------------------------------------------------------------------------
def test_remove_and_rmdir(nfs: Nfs3) -> None:
    fh = fh_of(create(nfs, nfs.root(), b"f").ok)
    before = nfs.attr("/data")
    r = nfs.call(Proc.REMOVE, A.DirOpArgs(DirOp(nfs.root(), b"f"))).ok
    check_wcc(r["dir_wcc"], before, nfs.attr("/data"))
    assert nfs.call(Proc.GETATTR, A.FhArgs(fh)).status == 70  # STALE
    assert nfs.call(Proc.REMOVE, A.DirOpArgs(DirOp(nfs.root(), b"f"))).status == NFS3ERR_NOENT
    assert nfs.call(Proc.REMOVE, A.DirOpArgs(DirOp(nfs.root(), b"alice"))).status == NFS3ERR_ISDIR
    d = fh_of(nfs.call(Proc.MKDIR, A.MkdirArgs(DirOp(nfs.root(), b"d"), Sattr3())).ok)
    assert create(nfs, d, b"inside").status == 0
    assert nfs.call(Proc.RMDIR, A.DirOpArgs(DirOp(nfs.root(), b"d"))).status == NFS3ERR_NOTEMPTY
    assert nfs.call(Proc.REMOVE, A.DirOpArgs(DirOp(d, b"inside"))).status == 0
    nlink = nfs.attr("/data").nlink
    assert nfs.call(Proc.RMDIR, A.DirOpArgs(DirOp(nfs.root(), b"d"))).status == 0
    assert nfs.attr("/data").nlink == nlink - 1
    assert nfs.call(Proc.RMDIR, A.DirOpArgs(DirOp(nfs.root(), b"."))).status == NFS3ERR_INVAL


def test_remove_permission_outcomes(nfs: Nfs3) -> None:
    shared = nfs.fh("/data/shared")
    assert create(nfs, shared, b"alices").status == 0
    r = nfs.call(Proc.REMOVE, A.DirOpArgs(DirOp(shared, b"alices")), BOB)
    assert r.status == NFS3ERR_PERM  # sticky directory: only the owner
    assert nfs.call(Proc.REMOVE, A.DirOpArgs(DirOp(shared, b"alices")), ROOT).status == 0
    assert create(nfs, nfs.fh("/data/alice"), b"f").status == 0
    assert nfs.call(Proc.REMOVE, A.DirOpArgs(DirOp(nfs.fh("/data/alice"), b"f")), BOB).status == NFS3ERR_ACCES


# -- RENAME, LINK -------------------------------------------------------------------------------------------
def test_rename_wcc_of_both_directories(nfs: Nfs3) -> None:
    assert create(nfs, nfs.root(), b"f").status == 0
    src0, dst0 = nfs.attr("/data"), nfs.attr("/data/alice")
    r = nfs.call(Proc.RENAME, A.RenameArgs(DirOp(nfs.root(), b"f"), DirOp(nfs.fh("/data/alice"), b"g"))).ok
    check_wcc(r["fromdir_wcc"], src0, nfs.attr("/data"))
    check_wcc(r["todir_wcc"], dst0, nfs.attr("/data/alice"))
    assert nfs.attr("/data/alice/g").uid == 1000
    same = nfs.call(Proc.RENAME, A.RenameArgs(DirOp(nfs.fh("/data/alice"), b"g"), DirOp(nfs.fh("/data/alice"),
                                                                                          b"h"))).ok
    assert same["fromdir_wcc"] == same["todir_wcc"]


def test_rename_failures(nfs: Nfs3) -> None:
    assert create(nfs, nfs.fh("/data/alice"), b"f").status == 0
    r = nfs.call(Proc.RENAME, A.RenameArgs(DirOp(nfs.fh("/data/alice"), b"f"), DirOp(nfs.root(), b"g")), BOB)
    assert r.status == NFS3ERR_ACCES and attrs(r.fail["fromdir_wcc"]["after"])["fileid"] == \
        nfs.attr("/data/alice").ino
    r = nfs.call(Proc.RENAME, A.RenameArgs(DirOp(nfs.fh("/data/alice"), b"f"), DirOp(nfs.root(OTHER), b"g")))
    assert r.status == NFS3ERR_XDEV
    assert nfs.call(Proc.RENAME, A.RenameArgs(DirOp(nfs.root(), b"nope"), DirOp(nfs.root(), b"g"))).status == \
        NFS3ERR_NOENT
    assert nfs.call(Proc.RENAME, A.RenameArgs(DirOp(nfs.root(RO), b"f"), DirOp(nfs.root(RO), b"g")),
                    ROOT).status == NFS3ERR_ROFS


def test_link(nfs: Nfs3) -> None:
    fh = fh_of(create(nfs, nfs.root(), b"f").ok)
    before = nfs.attr("/data/alice")
    r = nfs.call(Proc.LINK, A.LinkArgs(fh, DirOp(nfs.fh("/data/alice"), b"hard"))).ok
    assert attrs(r["file_attributes"])["nlink"] == 2
    check_wcc(r["linkdir_wcc"], before, nfs.attr("/data/alice"))
    assert nfs.attr("/data/alice/hard").ino == nfs.attr("/data/f").ino
    r = nfs.call(Proc.LINK, A.LinkArgs(fh, DirOp(nfs.fh("/data/alice"), b"hard")))
    assert r.status == NFS3ERR_EXIST and attrs(r.fail["file_attributes"])["nlink"] == 2
    assert nfs.call(Proc.LINK, A.LinkArgs(fh, DirOp(nfs.root(OTHER), b"x"))).status == NFS3ERR_XDEV
    assert nfs.call(Proc.LINK, A.LinkArgs(nfs.fh("/data/alice"), DirOp(nfs.root(), b"d"))).status == NFS3ERR_PERM
    theirs = fh_of(create(nfs, nfs.root(), b"private", BOB, attrs_=Sattr3(mode=0o600)).ok)
    assert nfs.call(Proc.LINK, A.LinkArgs(theirs, DirOp(nfs.root(), b"mine"))).status == NFS3ERR_ACCES
