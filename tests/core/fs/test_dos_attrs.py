"""DOS attributes and birth time kept per inode (what SMB's FileBasicInformation sets)."""

from __future__ import annotations

import pytest

from core.errors import InvalidArgument, NotPermitted, PermissionDenied
from core.fs import acl as A
from core.fs.fs import FileSystem
from core.fs.types import DOS_ARCHIVE, DOS_HIDDEN, DOS_KEEP, DOS_READONLY, DOS_SYSTEM, NOW, Cred
from core.store import Store, open_store

ALICE = Cred(1001, 1001, name="alice")
BOB = Cred(1002, 1002, name="bob")


@pytest.fixture
def fs(mem_store: Store) -> FileSystem:
    root = mem_store.fs
    root.setattr(root.root, mode=0o777)
    return root


def test_new_inodes_have_no_dos_attributes(fs: FileSystem) -> None:
    f = fs.create(fs.root, "f")
    d = fs.mkdir(fs.root, "d")
    assert f.dos is None and d.dos is None  # never set: the SMB layer derives them
    assert fs.getattr(f.ino).dos is None


def test_set_dos_keeps_bits_and_drops_derived_ones(fs: FileSystem) -> None:
    f = fs.create(fs.root, "f")
    with fs.open(f.ino, write=True) as h:
        h.write(0, b"payload")
    before = fs.getattr(f.ino)
    got = fs.setattr(f.ino, dos=DOS_HIDDEN | DOS_SYSTEM | 0x10 | 0x80)  # DIRECTORY and NORMAL are derived
    assert got.dos == DOS_HIDDEN | DOS_SYSTEM
    again = fs.getattr(f.ino)
    assert again.dos == DOS_HIDDEN | DOS_SYSTEM
    assert again.ctime_ns >= before.ctime_ns and again.mtime_ns == before.mtime_ns  # metadata only
    assert fs.read(f.ino, 0, 100) == b"payload"
    fs.setattr(f.ino, mode=0o600)  # other changes keep them
    assert fs.getattr(f.ino).dos == DOS_HIDDEN | DOS_SYSTEM
    fs.setattr(f.ino, dos=0)
    assert fs.getattr(f.ino).dos == 0  # set to none: kept as 0, not "never set"
    with pytest.raises(InvalidArgument):
        fs.setattr(f.ino, dos=-1)
    with pytest.raises(InvalidArgument):
        fs.setattr(f.ino, dos=1 << 32)
    assert DOS_KEEP & 0x10 == 0 and DOS_KEEP & 0x80 == 0


def test_dos_survives_rename_and_link(fs: FileSystem) -> None:
    d = fs.mkdir(fs.root, "d")
    f = fs.create(d.ino, "f")
    fs.setattr(f.ino, dos=DOS_READONLY | DOS_ARCHIVE)
    fs.setattr(d.ino, dos=DOS_HIDDEN)
    fs.rename(d.ino, "f", fs.root, "g")
    fs.link(f.ino, d.ino, "h")
    assert fs.lookup(fs.root, "g").dos == DOS_READONLY | DOS_ARCHIVE
    assert fs.lookup(d.ino, "h").dos == DOS_READONLY | DOS_ARCHIVE
    assert fs.resolve("/d").dos == DOS_HIDDEN


def test_dos_and_btime_persist_across_reopen(dir_store_path: str) -> None:
    with open_store(dir_store_path) as s:
        f = s.fs.create(s.fs.root, "f")
        s.fs.setattr(f.ino, dos=DOS_ARCHIVE, btime_ns=123_456_789)
    with open_store(dir_store_path) as s:
        a = s.fs.getattr(f.ino)
        assert (a.dos, a.btime_ns) == (DOS_ARCHIVE, 123_456_789)


def test_btime_settable_explicit_and_now(fs: FileSystem) -> None:
    f = fs.create(fs.root, "f")
    born = f.btime_ns
    a = fs.setattr(f.ino, btime_ns=1_000_000_000)
    assert a.btime_ns == 1_000_000_000 and fs.getattr(f.ino).btime_ns == 1_000_000_000
    assert a.mtime_ns == f.mtime_ns and a.atime_ns == f.atime_ns  # only the birth time moved
    b = fs.setattr(f.ino, btime_ns=NOW)
    assert b.btime_ns >= born


def test_owner_or_write_attributes_right(fs: FileSystem) -> None:
    alice, bob = fs.as_user(ALICE), fs.as_user(BOB)
    f = alice.create(fs.root, "f", 0o666)  # bob may write the data, but is not the owner
    assert alice.setattr(f.ino, dos=DOS_HIDDEN, btime_ns=5).dos == DOS_HIDDEN
    with pytest.raises(PermissionDenied):
        bob.setattr(f.ino, dos=0)
    with pytest.raises(PermissionDenied):
        bob.setattr(f.ino, btime_ns=7)
    assert fs.getattr(f.ino).dos == DOS_HIDDEN and fs.getattr(f.ino).btime_ns == 5
    acl = [A.Ace(A.AceType.ALLOW, A.Who(A.WhoKind.USER, BOB.uid), A.WRITE_ATTRIBUTES | A.READ_DATA)]
    alice.setacl(f.ino, acl)
    assert bob.setattr(f.ino, dos=DOS_ARCHIVE, btime_ns=9).dos == DOS_ARCHIVE  # granted by the ACL
    assert fs.getattr(f.ino).btime_ns == 9


def test_write_attributes_right_sets_times_with_dos_as_smb_basic_info_does(fs: FileSystem) -> None:
    alice, bob = fs.as_user(ALICE), fs.as_user(BOB)
    f = alice.create(fs.root, "f", 0o666)
    with pytest.raises(NotPermitted):
        bob.setattr(f.ino, mtime_ns=10**18, btime_ns=1, dos=DOS_ARCHIVE)  # mode bits: the owner only
    alice.setacl(f.ino, [A.Ace(A.AceType.ALLOW, A.Who(A.WhoKind.USER, BOB.uid), A.WRITE_ATTRIBUTES | A.READ_DATA)])
    got = bob.setattr(f.ino, atime_ns=5, mtime_ns=10**18, btime_ns=1, dos=DOS_ARCHIVE)
    assert (got.atime_ns, got.mtime_ns, got.btime_ns, got.dos) == (5, 10**18, 1, DOS_ARCHIVE)
