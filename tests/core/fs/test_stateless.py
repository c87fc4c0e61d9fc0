"""core.fs for stateless protocols: handles, parent, readdir_plus, wcc, write/commit."""

from __future__ import annotations

import pytest

from core.errors import BadCookie, BadHandle, NotADirectory, PermissionDenied, Stale
from core.fs import HANDLE_SIZE, Cred, Wcc
from core.store import Store, open_store

ALICE = Cred(1000, 1000)
BOB = Cred(1001, 1001)


def test_handles_round_trip_and_resist_forgery(mem_store: Store) -> None:
    fs = mem_store.fs
    a = fs.create(fs.root, "f")
    fh = fs.make_handle(7, a)
    assert len(fh) == HANDLE_SIZE
    assert fs.parse_handle(fh) == (7, a.ino, a.gen)
    assert fs.as_user(ALICE).parse_handle(fh) == (7, a.ino, a.gen)  # views share the key
    for i in range(HANDLE_SIZE):  # any flipped byte: refused, never another inode
        bad = bytearray(fh)
        bad[i] ^= 0x01
        with pytest.raises(BadHandle):
            fs.parse_handle(bytes(bad))
    with pytest.raises(BadHandle):
        fs.parse_handle(fh[:-1])
    fs.unlink(fs.root, "f")
    fs.create(fs.root, "f")  # same name, a new inode: the old handle is stale, never the new file
    _, ino, gen = fs.parse_handle(fh)
    with pytest.raises(Stale):
        fs.getattr(ino, gen)


def test_handles_survive_a_restart(dir_store_path: str) -> None:
    s = open_store(dir_store_path)
    a = s.fs.mkdir(s.fs.root, "d")
    fh = s.fs.make_handle(1, a)
    s.close()
    s2 = open_store(dir_store_path)
    try:
        assert s2.fs.parse_handle(fh) == (1, a.ino, a.gen)
        assert s2.fs.write_verifier != s.fs.write_verifier  # a new process start: a new write verifier
    finally:
        s2.close()


def test_parent(mem_store: Store) -> None:
    fs = mem_store.fs
    d = fs.mkdir(fs.root, "d")
    e = fs.mkdir(d.ino, "e")
    assert fs.parent(e.ino).ino == d.ino
    assert fs.parent(d.ino).ino == fs.root
    assert fs.parent(fs.root).ino == fs.root
    f = fs.create(d.ino, "f")
    with pytest.raises(NotADirectory):
        fs.parent(f.ino)
    fs.setattr(d.ino, mode=0o700)
    with pytest.raises(PermissionDenied):
        fs.as_user(ALICE).parent(d.ino)


def test_readdir_plus_one_snapshot_and_bad_cookie(mem_store: Store) -> None:
    fs = mem_store.fs
    d = fs.mkdir(fs.root, "d", mode=0o777)
    for i in range(10):
        fs.write_file(d.ino, f"f{i}", b"x" * i)
    page = fs.readdir_plus(d.ino, limit=4)
    assert [(e.name, a.size) for e, a in page] == [(f"f{i}", i) for i in range(4)]
    assert all(e.ino == a.ino for e, a in page)
    rest = fs.readdir_plus(d.ino, cookie=page[-1][0].cookie)
    assert [e.name for e, _ in rest] == [f"f{i}" for i in range(4, 10)]
    with pytest.raises(BadCookie):
        fs.readdir_plus(d.ino, cookie=10**9)
    with pytest.raises(BadCookie):
        fs.readdir(d.ino, cookie=10**9)
    assert fs.cookie_verifier(d.ino) == fs.cookie_verifier(d.ino) != 0


def test_wcc_of_each_mutation(mem_store: Store) -> None:
    fs = mem_store.fs.as_user(ALICE)
    mem_store.fs.setattr(mem_store.fs.root, mode=0o777)
    root = fs.root
    w = Wcc()
    d = fs.mkdir(root, "d", wcc=w)
    assert w.before[root].nlink + 1 == w.after[root].nlink
    assert w.after[d.ino].uid == 1000
    w = Wcc()
    f = fs.create(d.ino, "f", wcc=w)
    assert w.before[d.ino].mtime_ns <= w.after[d.ino].mtime_ns and w.after[f.ino].ino == f.ino
    w = Wcc()
    fs.link(f.ino, root, "hard", wcc=w)
    assert w.after[f.ino].nlink == 2 and w.before[f.ino].nlink == 1
    w = Wcc()
    fs.rename(d.ino, "f", root, "g", wcc=w)
    assert set(w.before) == set(w.after) == {d.ino, root}
    w = Wcc()
    fs.setattr(f.ino, mode=0o600, wcc=w)
    assert w.before[f.ino].perm == 0o644 and w.after[f.ino].perm == 0o600
    w = Wcc()
    fs.unlink(root, "g", wcc=w)
    fs.symlink(root, "s", "g", wcc=w)
    assert root in w.before and root in w.after
    w = Wcc()
    fs.rmdir(root, "d", wcc=w)
    assert w.after[root].nlink == w.before[root].nlink - 1


def test_unstable_write_then_commit(dir_store_path: str) -> None:
    s = open_store(dir_store_path)
    fs = s.fs
    fs.setattr(fs.root, mode=0o777)
    a = fs.as_user(ALICE)
    f = a.create(fs.root, "f", mode=0o444)  # created read-only: the owner may still write it
    w = Wcc()
    a.write(f.ino, 0, b"hello ", wcc=w)
    assert w.before[f.ino].size == 0 and w.after[f.ino].size == 6
    a.write(f.ino, 6, b"world")
    assert a.getattr(f.ino).size == 11  # our own buffered growth shows
    assert [x.size for _, x in a.readdir_plus(fs.root)] == [11]
    with pytest.raises(PermissionDenied):
        fs.as_user(BOB).write(f.ino, 0, b"x")
    a.commit(f.ino)
    assert not fs.files._states  # nothing left buffered or tracked
    s.close()
    s2 = open_store(dir_store_path)
    try:
        assert s2.fs.read(f.ino, 0, 100) == b"hello world"
    finally:
        s2.close()


def test_stable_write_is_durable_before_return(dir_store_path: str) -> None:
    s = open_store(dir_store_path)
    f = s.fs.create(s.fs.root, "f")
    s.fs.write(f.ino, 0, b"A" * 300_000, stable=True)
    s2 = open_store(dir_store_path)  # another process's view: committed metadata only
    try:
        assert s2.fs.read(f.ino, 0, 300_001) == b"A" * 300_000
    finally:
        s2.close()
        s.close()


def test_buffered_writes_of_a_removed_file_are_dropped(mem_store: Store) -> None:
    fs = mem_store.fs
    tmp, keep, over = (fs.create(fs.root, n) for n in ("tmp", "keep", "over"))
    for f in (tmp, keep, over):
        fs.write(f.ino, 0, b"data")
    fs.unlink(fs.root, "tmp")
    fs.rename(fs.root, "keep", fs.root, "over")  # replaces (and deletes) "over"
    assert set(fs.files._states) == {keep.ino}
    fs.sync()
    assert fs.read(keep.ino, 0, 10) == b"data"


def test_exclusive_create_with_a_verifier_is_retryable(mem_store: Store) -> None:
    from core.errors import Exists
    fs = mem_store.fs
    fs.setattr(fs.root, mode=0o777)
    a = fs.as_user(ALICE)
    f = a.create(fs.root, "f", 0o600, verifier=b"12345678")
    assert a.create(fs.root, "f", 0o600, verifier=b"12345678").ino == f.ino  # the retry answers the same file
    with pytest.raises(Exists):
        a.create(fs.root, "f", 0o600, verifier=b"87654321")
    with pytest.raises(Exists):
        a.create(fs.root, "f", 0o600)
    assert fs.listxattr(f.ino) == []  # the verifier is the core's bookkeeping, not a user attribute


def test_guarded_setattr(mem_store: Store) -> None:
    from core.errors import Changed
    fs = mem_store.fs
    f = fs.create(fs.root, "f")
    fs.setattr(f.ino, mode=0o600, if_ctime_ns=f.ctime_ns)
    with pytest.raises(Changed):
        fs.setattr(f.ino, mode=0o644, if_ctime_ns=f.ctime_ns)  # the first change moved ctime
    assert fs.getattr(f.ino).perm == 0o600


def test_a_write_past_the_largest_file_is_refused_and_leaves_no_state(mem_store: Store) -> None:
    from core.errors import InvalidArgument
    fs = mem_store.fs
    a = fs.create(fs.root, "big")
    with pytest.raises(InvalidArgument):
        fs.write(a.ino, (1 << 64) - 10, b"xy", stable=False)  # an NFS WRITE's u64 offset
    fs.write(a.ino, 802, b"", stable=True)  # a later commit of the same file must not carry that offset
    assert fs.getattr(a.ino).size == 0
    fs.write(a.ino, (1 << 63) - 3, b"ab", stable=True)  # ending exactly at the largest size is fine
    assert fs.getattr(a.ino).size == (1 << 63) - 1
