"""Permission decisions of core.fs with caller credentials: mode bits, sticky and setgid
directories, chmod/chown rules, ACLs, ACCESS queries."""

from __future__ import annotations

import stat

import pytest

from core.errors import NotPermitted, PermissionDenied
from core.fs import acl as A
from core.fs.fs import FileSystem
from core.fs.types import ANONYMOUS, NOW, Cred
from core.store import Store

ALICE = Cred(1001, 1001, frozenset({500}), name="alice")
BOB = Cred(1002, 1002, frozenset({500}), name="bob")
CAROL = Cred(1003, 1003, name="carol")  # not in group 500


@pytest.fixture
def fs(mem_store: Store) -> FileSystem:
    root = mem_store.fs
    root.setattr(root.root, mode=0o755)
    return root


def shared_dir(fs: FileSystem, mode: int = 0o770, gid: int = 500) -> int:
    return fs.mkdir(fs.root, "shared", mode, uid=1001, gid=gid).ino


def test_mode_bits_owner_group_other(fs: FileSystem) -> None:
    d = shared_dir(fs, 0o750)
    a, b, c = fs.as_user(ALICE), fs.as_user(BOB), fs.as_user(CAROL)
    f = a.create(d, "f", 0o640)
    assert (f.uid, f.gid) == (1001, 1001)  # owner = the caller
    with a.open(f.ino, write=True) as h:
        h.write(0, b"secret")
    a.setattr(f.ino, gid=500)  # alice is in 500: chgrp allowed
    assert b.read(f.ino, 0, 6) == b"secret"  # group r
    with pytest.raises(PermissionDenied):
        b.open(f.ino, write=True)  # group has no w
    with pytest.raises(PermissionDenied):
        b.create(d, "g")  # dir is r-x for the group
    with pytest.raises(PermissionDenied):
        c.lookup(d, "f")  # other has no x on the dir
    with pytest.raises(PermissionDenied):
        c.resolve("/shared/f")
    with pytest.raises(PermissionDenied):
        c.readdir(d)
    assert [e.name for e in b.readdir(d)] == ["f"]


def test_admin_bypasses_and_anonymous_does_not(fs: FileSystem) -> None:
    d = shared_dir(fs, 0o700)
    f = fs.as_user(ALICE).create(d, "f", 0o600)
    admin = fs.as_user(Cred(5000, 5000, admin=True))
    assert admin.read(f.ino, 0, 10) == b""
    with pytest.raises(PermissionDenied):
        fs.as_user(ANONYMOUS).read(f.ino, 0, 10)


def test_sticky_directory(fs: FileSystem) -> None:
    d = fs.mkdir(fs.root, "tmp", 0o1777).ino
    a, b = fs.as_user(ALICE), fs.as_user(BOB)
    a.create(d, "alices")
    with pytest.raises(NotPermitted):
        b.unlink(d, "alices")
    with pytest.raises(NotPermitted):
        b.rename(d, "alices", d, "mine")
    b.create(d, "bobs")
    with pytest.raises(NotPermitted):  # nor replace it by rename-over
        b.rename(d, "bobs", d, "alices")
    a.unlink(d, "alices")  # the owner may
    fs.unlink(d, "bobs")  # and the admin


def test_setgid_directory_inheritance(fs: FileSystem) -> None:
    d = fs.mkdir(fs.root, "proj", 0o2775, uid=1001, gid=500).ino
    b = fs.as_user(BOB)
    f = b.create(d, "f")
    sub = b.mkdir(d, "sub")
    assert f.gid == 500 and sub.gid == 500
    assert sub.mode & stat.S_ISGID
    assert not f.mode & stat.S_ISGID


def test_chmod_chown_rules(fs: FileSystem) -> None:
    d = shared_dir(fs, 0o777)
    a, b = fs.as_user(ALICE), fs.as_user(BOB)
    f = a.create(d, "f", 0o644)
    with pytest.raises(NotPermitted):
        b.setattr(f.ino, mode=0o777)  # not the owner
    with pytest.raises(NotPermitted):
        a.setattr(f.ino, uid=1002)  # give away: admin only
    with pytest.raises(NotPermitted):
        a.setattr(f.ino, gid=777)  # not a member of 777
    a.setattr(f.ino, gid=500)
    c = fs.as_user(CAROL)
    g = c.create(d, "g", 0o644)
    c.setattr(g.ino, gid=1003)
    fs.setattr(g.ino, gid=500)  # admin: carol's file in a group carol is not in
    assert not c.setattr(g.ino, mode=0o2755).mode & stat.S_ISGID  # setgid dropped: not a member
    assert a.setattr(f.ino, mode=0o4755).mode & stat.S_ISUID
    assert not fs.setattr(f.ino, uid=1003).mode & stat.S_ISUID  # new owner: set-id bits cleared
    with pytest.raises(NotPermitted):
        a.create(d, "x", uid=1002)  # cannot create files for others
    with pytest.raises(NotPermitted):
        a.create(d, "x", gid=777)


def test_utimes_rules(fs: FileSystem) -> None:
    d = shared_dir(fs, 0o777)
    f = fs.as_user(ALICE).create(d, "f", 0o666)
    b = fs.as_user(BOB)
    b.setattr(f.ino, mtime_ns=NOW)  # may write: may touch to now
    with pytest.raises(NotPermitted):
        b.setattr(f.ino, mtime_ns=10**18)  # explicit times: owner only
    fs.as_user(ALICE).setattr(f.ino, mode=0o644)
    with pytest.raises(PermissionDenied):
        b.setattr(f.ino, atime_ns=NOW)
    with pytest.raises(PermissionDenied):
        b.setattr(f.ino, size=0)


def test_moving_a_directory_needs_write_on_it(fs: FileSystem) -> None:
    top = fs.mkdir(fs.root, "top", 0o777).ino
    a = fs.as_user(ALICE)
    src = a.mkdir(top, "src", 0o777).ino
    a.mkdir(src, "d", 0o555)
    dst = a.mkdir(top, "dst", 0o777).ino
    with pytest.raises(PermissionDenied):
        fs.as_user(BOB).rename(src, "d", dst, "d")
    fs.as_user(BOB).rename(src, "d", src, "e")  # same parent: '..' unchanged


def test_access_query(fs: FileSystem) -> None:
    d = shared_dir(fs, 0o750)
    f = fs.as_user(ALICE).create(d, "f", 0o640)
    want = A.READ_DATA | A.WRITE_DATA | A.EXECUTE
    assert fs.as_user(ALICE).access(f.ino, want) == A.READ_DATA | A.WRITE_DATA
    fs.as_user(ALICE).setattr(f.ino, gid=500)
    assert fs.as_user(BOB).access(f.ino, want) == A.READ_DATA
    assert fs.as_user(CAROL).access(f.ino, want) == 0
    assert fs.access(f.ino, want) == want  # admin


def test_acl_grants_and_denies(fs: FileSystem) -> None:
    d = shared_dir(fs, 0o777)
    a = fs.as_user(ALICE)
    f = a.create(d, "f", 0o600)
    c = fs.as_user(CAROL)
    with pytest.raises(PermissionDenied):
        c.read(f.ino, 0, 1)
    a.setacl(f.ino, [A.Ace(A.ALLOW, A.OWNER, A.R_MASK | A.W_MASK),
                     A.Ace(A.ALLOW, A.Who.user(1003), A.R_MASK),
                     A.Ace(A.DENY, A.Who.group(500), A.R_MASK)])
    assert c.read(f.ino, 0, 1) == b""
    with pytest.raises(PermissionDenied):
        fs.as_user(BOB).read(f.ino, 0, 1)  # bob is in 500: denied
    assert stat.S_IMODE(fs.getattr(f.ino).mode) == 0o640  # group bits = the named user's r (the mask)
    acl, stored = c.getacl(f.ino)
    assert stored and acl[1].who == A.Who.user(1003)
    with pytest.raises(PermissionDenied):
        c.setacl(f.ino, None)  # not the owner, no WRITE_ACL
    a.setattr(f.ino, mode=0o600)  # chmod masks the named entries
    with pytest.raises(PermissionDenied):
        c.read(f.ino, 0, 1)
    a.setacl(f.ino, None)
    assert fs.getacl(f.ino) == (A.from_mode(0o600, False), False)


def test_acl_inheritance(fs: FileSystem) -> None:
    d = shared_dir(fs, 0o700)
    a = fs.as_user(ALICE)
    a.setacl(d, [A.Ace(A.ALLOW, A.OWNER, A.FULL_MASK, A.FILE_INHERIT | A.DIRECTORY_INHERIT),
                 A.Ace(A.ALLOW, A.Who.user(1003), A.R_MASK | A.X_MASK | A.W_MASK | A.DELETE_CHILD,
                       A.FILE_INHERIT | A.DIRECTORY_INHERIT)])
    c = fs.as_user(CAROL)
    f = c.create(d, "from-carol", 0o644)  # carol may add through the ACL
    sub = a.mkdir(d, "sub")
    acl, stored = fs.getacl(f.ino)
    assert stored and all(x.flags & A.INHERITED for x in acl)
    assert not any(x.flags & (A.FILE_INHERIT | A.DIRECTORY_INHERIT) for x in acl)
    sub_acl, _ = fs.getacl(sub.ino)
    assert all(x.flags & A.DIRECTORY_INHERIT for x in sub_acl)
    g = c.create(sub.ino, "deeper")  # inherited twice
    assert c.read(g.ino, 0, 1) == b""
    with pytest.raises(PermissionDenied):
        fs.as_user(BOB).readdir(d)


def test_reserved_attributes_are_hidden(fs: FileSystem) -> None:
    f = fs.create(fs.root, "f")
    fs.setacl(f.ino, A.from_mode(0o644, False))
    assert A.ACL_XATTR not in fs.listxattr(f.ino)
    with pytest.raises(NotPermitted):
        fs.getxattr(f.ino, A.ACL_XATTR)
    with pytest.raises(NotPermitted):
        fs.setxattr(f.ino, A.ACL_XATTR, b"x")


def test_xattrs_follow_write_permission(fs: FileSystem) -> None:
    d = shared_dir(fs, 0o777)
    f = fs.as_user(ALICE).create(d, "f", 0o644)
    fs.as_user(ALICE).setxattr(f.ino, "user.k", b"v")
    assert fs.as_user(CAROL).getxattr(f.ino, "user.k") == b"v"
    with pytest.raises(PermissionDenied):
        fs.as_user(CAROL).setxattr(f.ino, "user.k", b"w")


def test_clone_needs_read_on_sources(fs: FileSystem) -> None:
    d = shared_dir(fs, 0o777)
    a = fs.as_user(ALICE)
    src = a.write_file(d, "src", b"x" * 100, mode=0o600)
    with pytest.raises(PermissionDenied):
        fs.as_user(CAROL).clone(d, "copy", [src.ino])
    big = a.write_file(d, "big", b"y" * 100_000, mode=0o644)
    c = fs.as_user(CAROL).clone(d, "copy", [big.ino, big.ino])
    assert c.uid == 1003 and c.size == 200_000
    assert fs.read(c.ino, 99_990, 20) == b"y" * 20
    small = a.clone(d, "small", [src.ino, src.ino])
    assert fs.read(small.ino, 0, 300) == b"x" * 200


def test_protected_hard_links(fs: FileSystem) -> None:
    d = fs.mkdir(fs.root, "links", 0o777).ino
    f = fs.as_user(ALICE).create(d, "alices", 0o644)
    with pytest.raises(PermissionDenied):
        fs.as_user(CAROL).link(f.ino, d, "mine")  # readable, not writable: no link (Linux protected_hardlinks)
    fs.as_user(ALICE).setattr(f.ino, mode=0o666)
    fs.as_user(CAROL).link(f.ino, d, "mine")
    fs.as_user(ALICE).link(f.ino, d, "again")
