"""POSIX namespace rules of core.fs."""

import pytest

from core.errors import (
    CrossDevice,
    Exists,
    InvalidArgument,
    IsADirectory,
    NameTooLong,
    NotADirectory,
    NotEmpty,
    NotFound,
    NotPermitted,
    Stale,
)
from core.store import Store


def test_create_lookup_exclusive(mem_store: Store) -> None:
    fs = mem_store.fs
    a = fs.create(fs.root, "f", 0o600, uid=5, gid=6)
    assert a.is_file and a.perm == 0o600 and (a.uid, a.gid) == (5, 6) and a.nlink == 1
    assert fs.lookup(fs.root, "f").ino == a.ino
    with pytest.raises(Exists):
        fs.create(fs.root, "f")
    assert fs.create(fs.root, "f", exclusive=False).ino == a.ino
    fs.mkdir(fs.root, "d")
    with pytest.raises(IsADirectory):
        fs.create(fs.root, "d", exclusive=False)


def test_inode_numbers_and_generations_persist(mem_store: Store) -> None:
    fs = mem_store.fs
    a = fs.create(fs.root, "f")
    assert fs.getattr(a.ino, a.gen).ino == a.ino
    with pytest.raises(Stale):
        fs.getattr(a.ino, a.gen + 1)
    fs.unlink(fs.root, "f")
    with pytest.raises(Stale):
        fs.getattr(a.ino)
    b = fs.create(fs.root, "f")
    assert b.ino != a.ino  # numbers are never reused


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\0b"])
def test_bad_names(mem_store: Store, name: str) -> None:
    with pytest.raises(InvalidArgument):
        mem_store.fs.create(mem_store.fs.root, name)


def test_long_names(mem_store: Store) -> None:
    fs = mem_store.fs
    fs.create(fs.root, "x" * 255)
    with pytest.raises(NameTooLong):
        fs.create(fs.root, "x" * 256)


def test_mkdir_rmdir_nlink(mem_store: Store) -> None:
    fs = mem_store.fs
    d = fs.mkdir(fs.root, "d")
    assert d.nlink == 2
    root_links = fs.getattr(fs.root).nlink
    fs.mkdir(d.ino, "sub")
    assert fs.getattr(d.ino).nlink == 3
    fs.create(d.ino, "f")
    with pytest.raises(NotEmpty):
        fs.rmdir(fs.root, "d")
    with pytest.raises(IsADirectory):
        fs.unlink(d.ino, "sub")
    with pytest.raises(NotADirectory):
        fs.rmdir(d.ino, "f")
    fs.unlink(d.ino, "f")
    fs.rmdir(d.ino, "sub")
    fs.rmdir(fs.root, "d")
    assert fs.getattr(fs.root).nlink == root_links - 1
    with pytest.raises(NotFound):
        fs.rmdir(fs.root, "d")


def test_symlink_and_hardlink(mem_store: Store) -> None:
    fs = mem_store.fs
    s = fs.symlink(fs.root, "ln", "../target/ü")
    assert s.is_symlink and fs.readlink(s.ino) == "../target/ü" and s.size == len("../target/ü".encode())
    f = fs.write_file(fs.root, "f", b"data")
    fs.link(f.ino, fs.root, "f2")
    assert fs.getattr(f.ino).nlink == 2
    fs.unlink(fs.root, "f")
    assert fs.read(fs.lookup(fs.root, "f2").ino, 0, 10) == b"data"
    d = fs.mkdir(fs.root, "d")
    with pytest.raises(NotPermitted):
        fs.link(d.ino, fs.root, "dl")
    with pytest.raises(InvalidArgument):
        fs.readlink(f.ino)


def test_readdir_order_and_cookies(mem_store: Store) -> None:
    fs = mem_store.fs
    d = fs.mkdir(fs.root, "d")
    names = ["b", "a-c", "a", "a/".replace("/", "_"), "Z", "é", "a0"]
    for n in names:
        fs.create(d.ino, n)
    got = [e.name for e in fs.readdir(d.ino)]
    assert got == sorted(names, key=lambda n: n.encode())
    first = fs.readdir(d.ino, limit=3)
    # remove the entry the cookie names: resuming must still continue after it
    fs.unlink(d.ino, first[-1].name)
    rest = fs.readdir(d.ino, cookie=first[-1].cookie)
    assert [e.name for e in first] + [e.name for e in rest] == got
    with pytest.raises(InvalidArgument):
        fs.readdir(d.ino, cookie=10**9)


def test_rename_rules(mem_store: Store) -> None:
    fs = mem_store.fs
    a = fs.mkdir(fs.root, "a")
    b = fs.mkdir(a.ino, "b")
    fs.write_file(fs.root, "f", b"1")
    fs.write_file(fs.root, "g", b"2")
    fs.rename(fs.root, "f", fs.root, "g")  # replaces
    assert fs.read(fs.lookup(fs.root, "g").ino, 0, 9) == b"1"
    with pytest.raises(NotFound):
        fs.lookup(fs.root, "f")
    with pytest.raises(CrossDevice):
        fs.rename(fs.root, "a", b.ino, "x")  # into itself
    with pytest.raises(IsADirectory):
        fs.rename(fs.root, "g", fs.root, "a")
    with pytest.raises(NotADirectory):
        fs.rename(fs.root, "a", fs.root, "g")
    fs.mkdir(fs.root, "empty")
    fs.rename(a.ino, "b", fs.root, "empty")  # dir over empty dir
    assert fs.lookup(fs.root, "empty").ino == b.ino
    fs.create(b.ino, "x")
    with pytest.raises(NotEmpty):
        fs.rename(fs.root, "a", fs.root, "empty")
    with pytest.raises(Exists):
        fs.rename(fs.root, "a", fs.root, "empty", replace=False)


def test_rename_moves_dir_parent(mem_store: Store) -> None:
    fs = mem_store.fs
    a = fs.mkdir(fs.root, "a")
    c = fs.mkdir(fs.root, "c")
    fs.mkdir(a.ino, "b")
    fs.rename(a.ino, "b", c.ino, "b")
    assert fs.getattr(a.ino).nlink == 2 and fs.getattr(c.ino).nlink == 3
    assert fs.resolve("/c/b").is_dir


def test_setattr(mem_store: Store) -> None:
    fs = mem_store.fs
    f = fs.create(fs.root, "f")
    a = fs.setattr(f.ino, mode=0o4711, uid=7, gid=8, atime_ns=10**18, mtime_ns=2 * 10**18)
    assert (a.perm, a.uid, a.gid, a.atime_ns, a.mtime_ns) == (0o4711, 7, 8, 10**18, 2 * 10**18)
    assert a.ctime_ns > f.ctime_ns
    d = fs.mkdir(fs.root, "d")
    with pytest.raises(IsADirectory):
        fs.setattr(d.ino, size=0)
    with pytest.raises(InvalidArgument):
        fs.setattr(f.ino, size=-1)


def test_paths(mem_store: Store) -> None:
    fs = mem_store.fs
    fs.makedirs("/x/y/z")
    assert fs.resolve("/x//y/./z/").is_dir
    assert fs.resolve_parent("/x/y/new")[1] == "new"
    with pytest.raises(InvalidArgument):
        fs.resolve("/x/../etc")
    with pytest.raises(InvalidArgument):
        fs.resolve("relative")
    fs.write_file(fs.resolve("/x").ino, "file", b"")
    with pytest.raises(NotADirectory):
        fs.resolve("/x/file/deeper")
    with pytest.raises(NotADirectory):
        fs.makedirs("/x/file/deeper")


def test_xattrs(mem_store: Store) -> None:
    from core.errors import NoAttribute
    fs = mem_store.fs
    f = fs.create(fs.root, "f")
    fs.setxattr(f.ino, "user.b", b"2")
    fs.setxattr(f.ino, "user.a", b"1")
    assert fs.listxattr(f.ino) == ["user.a", "user.b"]
    assert fs.getxattr(f.ino, "user.a") == b"1"
    with pytest.raises(Exists):
        fs.setxattr(f.ino, "user.a", b"x", create=True)
    with pytest.raises(NoAttribute):
        fs.setxattr(f.ino, "user.c", b"x", replace=True)
    fs.removexattr(f.ino, "user.a")
    with pytest.raises(NoAttribute):
        fs.getxattr(f.ino, "user.a")
    with pytest.raises(NoAttribute):
        fs.removexattr(f.ino, "user.a")
    with pytest.raises(InvalidArgument):
        fs.setxattr(f.ino, "user.big", b"x" * (64 * 1024 + 1))


def test_statfs(mem_store: Store) -> None:
    st = mem_store.fs.statfs()
    assert st.total_bytes > 0 and st.free_bytes <= st.total_bytes and st.name_max == 255
