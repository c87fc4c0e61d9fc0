"""NFSv3 attribute and data procedures through the RPC dispatch path, against a real store, as root and
non-root AUTH_SYS users: GETATTR, SETATTR, ACCESS, READLINK, READ, WRITE, COMMIT, FSSTAT, FSINFO, PATHCONF."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.fs import NOW
from core.fs.namespace import LINK_MAX
from core.store import Store, open_store
from protocols.nfs import nfs3, rpc
from protocols.nfs import nfs3_args as A
from protocols.nfs import nfs3_types as T
from protocols.nfs.errors import (
    NFS3ERR_ACCES,
    NFS3ERR_BADHANDLE,
    NFS3ERR_INVAL,
    NFS3ERR_ISDIR,
    NFS3ERR_NOT_SYNC,
    NFS3ERR_PERM,
    NFS3ERR_ROFS,
    NFS3ERR_STALE,
)
from protocols.nfs.nfs3_types import Proc
from tests.protocols.nfs.nfs3_harness import ALICE, BOB, DATA, RO, ROOT, Nfs3, attrs, make_tree, ns

B = 1_000_000_000


@pytest.fixture
def nfs(mem_store: Store) -> Nfs3:
    make_tree(mem_store)
    return Nfs3(mem_store)


def put(nfs: Nfs3, name: str, data: bytes = b"", mode: int = 0o644, uid: int = 1000) -> bytes:
    """A file in /data made by the admin, owned by ``uid``; its handle."""
    fs = nfs.store.fs
    fs.write_file(fs.resolve("/data").ino, name, data, mode=mode, uid=uid, gid=uid)
    return nfs.fh(f"/data/{name}")


# -- the program ---------------------------------------------------------------------------------------------
def test_program_has_every_procedure(nfs: Nfs3) -> None:
    prog = nfs3.program(nfs.ctx)
    assert prog.prog == 100003 and set(prog.versions) == {3}
    assert set(prog.versions[3]) == set(range(1, 22))
    assert {p for _, p in prog.non_idempotent} == {2, 8, 9, 10, 11, 12, 13, 14, 15}
    assert nfs3.LINK_MAX == LINK_MAX


def test_null_and_garbage(nfs: Nfs3) -> None:
    r = nfs.raw(0, b"")
    assert r.ok and bytes(r.body) == b""
    assert nfs.raw(Proc.GETATTR, b"\0\0\0\x40").stat == rpc.GARBAGE_ARGS  # a handle longer than the data
    assert nfs.raw(Proc.GETATTR, (65).to_bytes(4, "big") + bytes(68)).stat == rpc.GARBAGE_ARGS  # over 64 bytes


# -- GETATTR ------------------------------------------------------------------------------------------------
def test_getattr_of_the_export_root(nfs: Nfs3) -> None:
    a = nfs.call(Proc.GETATTR, A.FhArgs(nfs.root()), ALICE).ok["obj_attributes"]
    root = nfs.attr("/data")
    assert (a["type"], a["mode"], a["uid"], a["fsid"], a["fileid"]) == (2, 0o777, 0, DATA.id, root.ino)
    assert ns(a["mtime"]) == root.mtime_ns and a["nlink"] == root.nlink


def test_bad_and_stale_handles(nfs: Nfs3) -> None:
    assert nfs.call(Proc.GETATTR, A.FhArgs(bytes(36))).status == NFS3ERR_BADHANDLE
    good = put(nfs, "gone")
    forged = bytearray(good)
    forged[12] ^= 1  # another inode number: the HMAC no longer matches
    assert nfs.call(Proc.GETATTR, A.FhArgs(bytes(forged))).status == NFS3ERR_BADHANDLE
    assert nfs.call(Proc.GETATTR, A.FhArgs(b"")).status == NFS3ERR_BADHANDLE
    nfs.store.fs.unlink(nfs.attr("/data").ino, "gone")
    assert nfs.call(Proc.GETATTR, A.FhArgs(good)).status == NFS3ERR_STALE
    assert nfs.call(Proc.READ, A.ReadArgs(good, 0, 10)).fail == {"file_attributes": {"attributes_follow": False}}


# -- SETATTR ------------------------------------------------------------------------------------------------
def setattr(nfs: Nfs3, fh: bytes, auth: rpc.AuthSys, guard: int | None = None, **kw: int) -> dict[str, object]:
    r = nfs.call(Proc.SETATTR, A.SetattrArgs(fh, T.Sattr3(**kw), guard), auth)
    return {"status": r.status, "wcc": r["resok" if r.status == 0 else "resfail"]["obj_wcc"]}


def test_setattr_permission_outcomes(nfs: Nfs3) -> None:
    fh = put(nfs, "f", b"x", mode=0o644)
    assert setattr(nfs, fh, BOB, mode=0o777)["status"] == NFS3ERR_PERM  # chmod: owner only
    assert setattr(nfs, fh, ALICE, mode=0o600)["status"] == 0
    assert nfs.attr("/data/f").perm == 0o600
    assert setattr(nfs, fh, ALICE, uid=1001)["status"] == NFS3ERR_PERM  # chown: root only
    assert setattr(nfs, fh, ROOT, uid=1001, gid=1001)["status"] == 0
    assert (nfs.attr("/data/f").uid, nfs.attr("/data/f").gid) == (1001, 1001)
    assert setattr(nfs, fh, ALICE, size=0)["status"] == NFS3ERR_ACCES  # 0600 bob's now: no write for alice
    assert setattr(nfs, fh, BOB, size=0)["status"] == 0


def test_setattr_times_server_and_client(nfs: Nfs3) -> None:
    fh = put(nfs, "t", mode=0o666)
    assert setattr(nfs, fh, BOB, mtime=5 * B)["status"] == NFS3ERR_PERM  # explicit times: the owner's
    before = nfs.attr("/data/t").mtime_ns
    assert setattr(nfs, fh, BOB, atime=NOW, mtime=NOW)["status"] == 0  # "now": anyone who may write
    assert nfs.attr("/data/t").mtime_ns >= before
    assert setattr(nfs, fh, ALICE, atime=7 * B + 1, mtime=9 * B + 2)["status"] == 0
    a = nfs.attr("/data/t")
    assert (a.atime_ns, a.mtime_ns) == (7 * B + 1, 9 * B + 2)
    private = put(nfs, "p", mode=0o600)
    assert setattr(nfs, private, BOB, mtime=NOW)["status"] == NFS3ERR_ACCES


def test_setattr_wcc_is_exact(nfs: Nfs3) -> None:
    fh = put(nfs, "w", b"0123456789")
    before = nfs.attr("/data/w")
    r = setattr(nfs, fh, ALICE, size=3)
    after = nfs.attr("/data/w")
    wcc = r["wcc"]
    pre = wcc["before"]["attributes"]
    assert (pre["size"], ns(pre["mtime"]), ns(pre["ctime"])) == (10, before.mtime_ns, before.ctime_ns)
    got = attrs(wcc["after"])
    assert (got["size"], ns(got["mtime"]), ns(got["ctime"])) == (3, after.mtime_ns, after.ctime_ns)
    assert nfs.store.fs.read(after.ino, 0, 100) == b"012"


def test_setattr_guard(nfs: Nfs3) -> None:
    fh = put(nfs, "g", mode=0o644)
    ctime = nfs.attr("/data/g").ctime_ns
    r = setattr(nfs, fh, ALICE, guard=ctime + 1, mode=0o600)
    assert r["status"] == NFS3ERR_NOT_SYNC
    assert nfs.attr("/data/g").perm == 0o644  # nothing changed
    assert ns(attrs(r["wcc"]["after"])["ctime"]) == ctime
    assert setattr(nfs, fh, ALICE, guard=ctime, mode=0o600)["status"] == 0
    assert nfs.attr("/data/g").perm == 0o600


def test_setattr_on_a_read_only_export(nfs: Nfs3) -> None:
    fh = nfs.fh("/ro/f", RO)
    assert setattr(nfs, fh, ROOT, mode=0o600)["status"] == NFS3ERR_ROFS
    assert nfs.attr("/ro/f").perm == 0o644


# -- ACCESS -------------------------------------------------------------------------------------------------
R_, L_, M_, E_, D_, X_ = (T.ACCESS3_READ, T.ACCESS3_LOOKUP, T.ACCESS3_MODIFY, T.ACCESS3_EXTEND, T.ACCESS3_DELETE,
                          T.ACCESS3_EXECUTE)


def access(nfs: Nfs3, fh: bytes, auth: rpc.AuthSys, want: int = T.ACCESS3_ALL) -> int:
    return int(nfs.call(Proc.ACCESS, A.AccessArgs(fh, want), auth).ok["access"])


def test_access_is_the_callers(nfs: Nfs3) -> None:
    f = put(nfs, "a", mode=0o640)
    assert access(nfs, f, ALICE) == R_ | M_ | E_  # never LOOKUP or DELETE on a file, no x bit
    assert access(nfs, f, BOB) == 0  # other: no bits
    assert access(nfs, f, ROOT) == R_ | M_ | E_ | X_
    x = put(nfs, "x", mode=0o705)
    assert access(nfs, x, ALICE) == R_ | M_ | E_ | X_
    assert access(nfs, x, BOB) == R_ | X_
    assert access(nfs, x, BOB, M_ | R_) == R_  # only what was asked
    d = nfs.fh("/data/alice")
    assert access(nfs, d, ALICE) == R_ | L_ | M_ | E_ | D_  # no EXECUTE on a directory
    assert access(nfs, d, BOB) == 0
    assert access(nfs, nfs.root(), BOB) == R_ | L_ | M_ | E_ | D_


def test_access_on_a_read_only_export(nfs: Nfs3) -> None:
    assert access(nfs, nfs.fh("/ro/f", RO), ROOT) == R_ | X_
    assert access(nfs, nfs.root(RO), ROOT) == R_ | L_


# -- READ, WRITE, COMMIT ------------------------------------------------------------------------------------
def read(nfs: Nfs3, fh: bytes, off: int, count: int, auth: rpc.AuthSys = ALICE) -> tuple[bytes, bool]:
    r = nfs.call(Proc.READ, A.ReadArgs(fh, off, count), auth).ok
    assert r["count"] == len(r["data"])
    return bytes(r["data"]), bool(r["eof"])


def write(nfs: Nfs3, fh: bytes, off: int, data: bytes, stable: T.StableHow = T.StableHow.UNSTABLE,
          auth: rpc.AuthSys = ALICE) -> dict[str, object]:
    r = nfs.call(Proc.WRITE, A.WriteArgs(fh, off, len(data), stable, data), auth)
    return dict(r.ok) if r.status == 0 else {"status": r.status, **r.fail}


def test_read_eof_is_exact(nfs: Nfs3) -> None:
    fh = put(nfs, "r", b"0123456789")
    assert read(nfs, fh, 0, 4) == (b"0123", False)
    assert read(nfs, fh, 4, 6) == (b"456789", True)  # reaches the end exactly
    assert read(nfs, fh, 8, 100) == (b"89", True)
    assert read(nfs, fh, 10, 5) == (b"", True)
    assert read(nfs, fh, 50, 5) == (b"", True)
    assert read(nfs, fh, 0, 0) == (b"", False)


def test_read_is_capped_at_rtmax(nfs: Nfs3) -> None:
    data = bytes(range(256)) * (6 * 1024)  # 1.5 MiB
    fh = put(nfs, "big", data)
    got, eof = read(nfs, fh, 0, 4 << 20)
    assert len(got) == nfs3.RTMAX and not eof and got == data[: nfs3.RTMAX]
    assert read(nfs, fh, nfs3.RTMAX, 4 << 20) == (data[nfs3.RTMAX:], True)


def test_udp_payloads_fit_a_datagram(mem_store: Store) -> None:
    make_tree(mem_store)
    nfs = Nfs3(mem_store, transport="udp")
    r = nfs.call(Proc.FSINFO, A.FhArgs(nfs.root())).ok
    assert (r["rtmax"], r["rtpref"], r["wtmax"], r["wtpref"], r["dtpref"]) == (32768,) * 5
    fh = put(nfs, "big", bytes(100_000))
    assert read(nfs, fh, 0, 1 << 20) == (bytes(32768), False)
    for i in range(2000):
        nfs.store.fs.create(nfs.attr("/data").ino, f"{i:0100d}")
    r = nfs.call(Proc.READDIR, A.ReaddirArgs(nfs.root(), 0, bytes(8), 1 << 20)).ok
    assert not r["reply"]["eof"] and 32768 - 200 < len(nfs.last_body) <= 32768 + 4


def test_read_permission_and_directories(nfs: Nfs3) -> None:
    fh = put(nfs, "secret", b"s", mode=0o600)
    r = nfs.call(Proc.READ, A.ReadArgs(fh, 0, 10), BOB)
    assert r.status == NFS3ERR_ACCES and attrs(r.fail["file_attributes"])["uid"] == 1000
    assert nfs.call(Proc.READ, A.ReadArgs(nfs.root(), 0, 10)).status == NFS3ERR_ISDIR


def test_write_stable_how_and_verifier(nfs: Nfs3) -> None:
    fh = put(nfs, "w")
    verf = nfs.store.fs.write_verifier
    r = write(nfs, fh, 0, b"hello")
    assert (r["count"], r["committed"], r["verf"]) == (5, T.StableHow.UNSTABLE, verf)
    wcc = r["file_wcc"]
    assert wcc["before"]["attributes"]["size"] == 0 and attrs(wcc["after"])["size"] == 5
    r = write(nfs, fh, 5, b" world", T.StableHow.DATA_SYNC)
    assert (r["count"], r["committed"]) == (6, T.StableHow.FILE_SYNC)
    r = write(nfs, fh, 11, b"!", T.StableHow.FILE_SYNC)
    assert (r["committed"], attrs(r["file_wcc"]["after"])["size"]) == (T.StableHow.FILE_SYNC, 12)
    assert read(nfs, fh, 0, 100) == (b"hello world!", True)
    c = nfs.call(Proc.COMMIT, A.CommitArgs(fh, 0, 0)).ok
    assert c["verf"] == verf and attrs(c["file_wcc"]["after"])["size"] == 12


def test_write_count_past_the_data_is_inval(nfs: Nfs3) -> None:
    fh = put(nfs, "c")
    r = nfs.call(Proc.WRITE, A.WriteArgs(fh, 0, 10, T.StableHow.UNSTABLE, b"abc"))
    assert r.status == NFS3ERR_INVAL
    assert nfs.attr("/data/c").size == 0


def test_write_permission(nfs: Nfs3) -> None:
    theirs = put(nfs, "theirs", mode=0o644)
    r = write(nfs, theirs, 0, b"x", auth=BOB)
    assert r["status"] == NFS3ERR_ACCES and attrs(r["file_wcc"]["after"])["size"] == 0
    mine = put(nfs, "mine", mode=0o444)
    assert write(nfs, mine, 0, b"owner may", T.StableHow.FILE_SYNC)["count"] == 9  # knfsd's owner override
    assert write(nfs, nfs.fh("/ro/f", RO), 0, b"x", auth=ROOT)["status"] == NFS3ERR_ROFS


@pytest.fixture
def two_stores(dir_store_path: str) -> Iterator[tuple[Store, Store]]:
    a, b = open_store(dir_store_path), open_store(dir_store_path)
    yield a, b
    a.close()
    b.close()


def test_write_commit_durability(two_stores: tuple[Store, Store]) -> None:
    """UNSTABLE data is durable after COMMIT, FILE_SYNC data at once: another opening of the store sees them."""
    served, other = two_stores
    make_tree(served)
    nfs = Nfs3(served)
    fh = put(nfs, "d")
    ino = nfs.attr("/data/d").ino
    payload = bytes(range(256)) * 1024  # past the inline size: data goes to the targets
    write(nfs, fh, 0, payload)
    assert other.fs.getattr(ino).size == 0  # buffered only
    assert nfs.call(Proc.COMMIT, A.CommitArgs(fh, 0, 0)).status == 0
    assert other.fs.read(ino, 0, len(payload) + 1) == payload
    write(nfs, fh, len(payload), b"tail", T.StableHow.FILE_SYNC)
    assert other.fs.read(ino, 0, len(payload) + 10) == payload + b"tail"


def test_unstable_write_to_a_removed_file(nfs: Nfs3) -> None:
    """A client writes a temporary file UNSTABLE and removes it before any COMMIT (a common pattern)."""
    tmp, keep = put(nfs, "tmp"), put(nfs, "keep")
    write(nfs, tmp, 0, b"scratch")
    write(nfs, keep, 0, b"kept")
    assert nfs.call(Proc.REMOVE, A.DirOpArgs(T.DirOp(nfs.root(), b"tmp"))).status == 0
    nfs.store.fs.sync()  # what a server shutdown does
    assert nfs.store.fs.read(nfs.attr("/data/keep").ino, 0, 10) == b"kept"


# -- READLINK, FSSTAT, FSINFO, PATHCONF ---------------------------------------------------------------------
def test_readlink(nfs: Nfs3) -> None:
    fs = nfs.store.fs
    fs.symlink(nfs.attr("/data").ino, "l", "../ro/\udcfff")
    r = nfs.call(Proc.READLINK, A.FhArgs(nfs.fh("/data/l"))).ok
    assert r["data"] == b"../ro/\xfff" and attrs(r["symlink_attributes"])["type"] == T.Ftype3.LNK
    assert nfs.call(Proc.READLINK, A.FhArgs(nfs.root())).status == NFS3ERR_INVAL


def test_fsstat_fsinfo_pathconf(nfs: Nfs3) -> None:
    st = nfs.store.fs.statfs()
    r = nfs.call(Proc.FSSTAT, A.FhArgs(nfs.root())).ok
    assert (r["tbytes"], r["fbytes"], r["abytes"]) == (st.total_bytes, st.free_bytes, st.free_bytes)
    assert r["tfiles"] == st.total_files and attrs(r["obj_attributes"])["fsid"] == DATA.id
    r = nfs.call(Proc.FSINFO, A.FhArgs(nfs.root())).ok
    assert (r["rtmax"], r["rtpref"], r["wtmax"], r["wtpref"], r["dtpref"]) == (1 << 20, 1 << 20, 1 << 20, 1 << 20,
                                                                               65536)
    assert r["time_delta"] == {"seconds": 0, "nseconds": 1}
    assert r["properties"] == T.FSF3_LINK | T.FSF3_SYMLINK | T.FSF3_HOMOGENEOUS | T.FSF3_CANSETTIME
    assert r["maxfilesize"] == (1 << 63) - 1
    r = nfs.call(Proc.PATHCONF, A.FhArgs(nfs.root())).ok
    assert (r["linkmax"], r["name_max"], r["no_trunc"], r["chown_restricted"], r["case_insensitive"],
            r["case_preserving"]) == (LINK_MAX, 255, True, True, False, True)
