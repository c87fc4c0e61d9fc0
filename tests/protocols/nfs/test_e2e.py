"""End to end with libnfs's tools (nfs-ls, nfs-cat, nfs-cp), as a non-root user and as root, against
exports with each squash setting; what they write is checked through core.fs (owner, bytes)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import NotFound
from core.store import Store
from protocols.nfs.exports import Export
from protocols.nfs.service import NfsServer

from .conftest import ALICE_UID, BOB_UID, NOBODY, LibNfs, ServerFactory

pytestmark = pytest.mark.usefixtures("libnfs_tools")

LOCAL = "127.0.0.1"


@pytest.fixture
def served(nfs_store: Store, nfs_server: ServerFactory) -> Iterator[tuple[Store, NfsServer, LibNfs]]:
    """One export per squash setting (and a read-only one), each a 0777 directory; /priv (0700, alice's)."""
    fs = nfs_store.fs
    for name in ("root_sq", "no_sq", "all_sq", "ro"):
        fs.mkdir(fs.root, name, 0o777)
    ro = fs.resolve("/ro")
    fs.write_file(ro.ino, "readme", b"read me\n")
    for name in ("root_sq", "no_sq"):
        d = fs.mkdir(fs.resolve(f"/{name}").ino, "priv", 0o700, uid=ALICE_UID, gid=ALICE_UID)
        fs.write_file(d.ino, "secret", b"alice's\n")
        fs.setattr(fs.lookup(d.ino, "secret").ino, uid=ALICE_UID, gid=ALICE_UID, mode=0o600)
    srv = nfs_server([
        Export.build("/root_sq", [LOCAL], squash="root"),
        Export.build("/no_sq", [LOCAL], squash="none"),
        Export.build("/all_sq", [LOCAL], squash="all", anonuid=4321, anongid=4322),
        Export.build("/ro", [LOCAL], access="ro", squash="none"),
    ])
    yield nfs_store, srv, LibNfs(srv.port)


def test_copy_in_and_out_as_a_user(served: tuple[Store, NfsServer, LibNfs], tmp_path: Path) -> None:
    store, _, nfs = served
    alice = nfs.as_user(ALICE_UID)
    data = os.urandom(3 * 1024 * 1024 + 17)  # several WRITEs and READs
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    for export in ("/root_sq", "/no_sq"):
        r = alice.put(src, f"{export}/f.bin")
        assert r.rc == 0, r.err
        attr = store.fs.resolve(f"{export}/f.bin")
        assert (attr.uid, attr.gid, attr.size) == (ALICE_UID, ALICE_UID, len(data))
        assert store.fs.read(attr.ino, 0, len(data) + 1) == data
        out = tmp_path / f"out{export.replace('/', '_')}.bin"
        r = alice.get(f"{export}/f.bin", out)
        assert r.rc == 0, r.err
        assert out.read_bytes() == data
        assert alice.cat(f"{export}/f.bin").out == data
        line = next(ln for ln in alice.ls(export).out.decode().splitlines() if ln.endswith(" f.bin"))
        assert line.split()[2:5] == [str(ALICE_UID), str(ALICE_UID), str(len(data))], line


def test_root_squash(served: tuple[Store, NfsServer, LibNfs], tmp_path: Path) -> None:
    store, _, nfs = served
    root = nfs.as_user(0)
    src = tmp_path / "r"
    src.write_bytes(b"from root\n")
    assert root.put(src, "/root_sq/by_root").rc == 0
    attr = store.fs.resolve("/root_sq/by_root")
    assert (attr.uid, attr.gid) == (NOBODY, NOBODY)
    denied = root.ls("/root_sq/priv")  # 65534 on alice's 0700 directory
    assert denied.rc != 0 and "NFS3ERR_ACCES" in denied.text, denied
    for who in (root, nfs.as_user(BOB_UID)):
        r = who.cat("/root_sq/priv/secret")
        assert r.rc != 0 and "Lookup of /secret failed with NFS3ERR_ACCES" in r.text, r
    assert nfs.as_user(ALICE_UID).cat("/root_sq/priv/secret").out == b"alice's\n"


def test_no_squash_root_is_root(served: tuple[Store, NfsServer, LibNfs], tmp_path: Path) -> None:
    store, _, nfs = served
    root = nfs.as_user(0)
    src = tmp_path / "r"
    src.write_bytes(b"from root\n")
    assert root.put(src, "/no_sq/by_root").rc == 0
    attr = store.fs.resolve("/no_sq/by_root")
    assert (attr.uid, attr.gid) == (0, 0)
    assert root.names("/no_sq/priv") == ["secret"]
    assert root.cat("/no_sq/priv/secret").out == b"alice's\n"
    r = nfs.as_user(BOB_UID).ls("/no_sq/priv")
    assert r.rc != 0 and "NFS3ERR_ACCES" in r.text, r


def test_all_squash(served: tuple[Store, NfsServer, LibNfs], tmp_path: Path) -> None:
    store, _, nfs = served
    src = tmp_path / "a"
    src.write_bytes(b"anyone\n")
    for i, uid in enumerate((ALICE_UID, 0)):
        assert nfs.as_user(uid).put(src, f"/all_sq/f{i}").rc == 0
        attr = store.fs.resolve(f"/all_sq/f{i}")
        assert (attr.uid, attr.gid) == (4321, 4322)


def test_read_only_export(served: tuple[Store, NfsServer, LibNfs], tmp_path: Path) -> None:
    store, _, nfs = served
    root = nfs.as_user(0)
    assert root.cat("/ro/readme").out == b"read me\n"
    src = tmp_path / "w"
    src.write_bytes(b"nope")
    r = root.put(src, "/ro/new")
    assert r.rc != 0 and "CREATE of /new failed with NFS3ERR_ROFS" in r.text, r
    with pytest.raises(NotFound):
        store.fs.resolve("/ro/new")


def test_subdirectory_mount_and_unexported_paths(served: tuple[Store, NfsServer, LibNfs]) -> None:
    store, _, nfs = served
    fs = store.fs
    sub = fs.mkdir(fs.resolve("/root_sq").ino, "sub", 0o755)
    fs.write_file(sub.ino, "inner", b"x")
    alice = nfs.as_user(ALICE_UID)
    assert alice.names("/root_sq/sub") == ["inner"]
    assert alice.cat("/root_sq/sub/inner").out == b"x"
    for path in ("/", "/data"):  # the store root and /data are not exported
        r = alice.ls(path)
        assert r.rc != 0 and "MNT3ERR_NOENT" in r.text, r
