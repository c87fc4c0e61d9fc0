"""SMB byte-range locks (MS-FSA 2.1.5.8/2.1.5.9/2.1.4.10) in the table NFS/NLM locks use."""

from __future__ import annotations

import socket

import pytest

from core.errors import InvalidArgument, InvalidLockRange, LockConflict, PermissionDenied, RangeNotLocked
from core.fs.fs import FileSystem
from core.fs.types import Cred, LockInfo
from core.store import Store

U64 = 1 << 64
A, B = "smb:A", "smb:B"


@pytest.fixture
def fs(mem_store: Store) -> FileSystem:
    return mem_store.fs


@pytest.fixture
def ino(fs: FileSystem) -> int:
    return fs.create(fs.root, "f", 0o666).ino


def mine(fs: FileSystem, ino: int) -> list[tuple[str, int, int, bool]]:
    return [(lk.owner, lk.start, lk.length, lk.exclusive) for lk in fs.locks(ino) if lk.smb]


def test_locks_of_one_open_stack_and_unlock_one_at_a_time(fs: FileSystem, ino: int) -> None:
    fs.smb_lock(ino, A, 0, 10, exclusive=False)
    fs.smb_lock(ino, A, 0, 10, exclusive=False)  # the same range again: a second lock
    fs.smb_lock(ino, A, 5, 10, exclusive=False)  # overlapping: neither merged nor split
    assert mine(fs, ino) == [(A, 0, 10, False), (A, 0, 10, False), (A, 5, 10, False)]
    fs.smb_unlock(ino, A, 0, 10)
    assert mine(fs, ino) == [(A, 0, 10, False), (A, 5, 10, False)]
    with pytest.raises(LockConflict):
        fs.smb_lock(ino, B, 0, 1, exclusive=True)  # the remaining shared lock still holds
    fs.smb_unlock(ino, A, 0, 10)
    fs.smb_lock(ino, B, 0, 1, exclusive=True)
    with pytest.raises(RangeNotLocked):
        fs.smb_unlock(ino, A, 0, 10)  # no third one


def test_unlock_needs_the_exact_range_and_owner(fs: FileSystem, ino: int) -> None:
    fs.smb_lock(ino, A, 100, 50, exclusive=True)
    for off, n in ((100, 49), (100, 51), (101, 49), (0, 200)):
        with pytest.raises(RangeNotLocked):
            fs.smb_unlock(ino, A, off, n)
    with pytest.raises(RangeNotLocked):
        fs.smb_unlock(ino, B, 100, 50)  # not B's lock
    assert mine(fs, ino) == [(A, 100, 50, True)]  # nothing carved away
    assert fs.smb_unlock(ino, A, 100, 50) == LockInfo(A, 100, 50, True, smb=True)
    assert mine(fs, ino) == []


def test_same_open_rules(fs: FileSystem, ino: int) -> None:
    fs.smb_lock(ino, A, 0, 10, exclusive=True)
    with pytest.raises(LockConflict):
        fs.smb_lock(ino, A, 5, 10, exclusive=True)  # overlapping exclusive locks: not even the same open
    with pytest.raises(LockConflict):
        fs.smb_lock(ino, A, 0, 10, exclusive=True)
    fs.smb_lock(ino, A, 0, 10, exclusive=False)  # a shared lock stacks on the open's own exclusive one
    with pytest.raises(LockConflict):
        fs.smb_lock(ino, B, 9, 1, exclusive=False)  # another open: blocked by the exclusive lock
    fs.smb_lock(ino, A, 20, 10, exclusive=False)
    with pytest.raises(LockConflict):
        fs.smb_lock(ino, A, 25, 1, exclusive=True)  # a shared lock blocks exclusive intent, its owner's too
    fs.smb_lock(ino, B, 20, 10, exclusive=False)  # shared with shared
    fs.smb_lock(ino, B, 10, 10, exclusive=True)  # adjacent, not overlapping
    hit = fs.smb_test_lock(ino, B, 0, 1, exclusive=False)
    assert hit is not None and (hit.owner, hit.exclusive) == (A, True)
    assert fs.smb_test_lock(ino, A, 0, 1, exclusive=False) is None


def test_unlock_takes_the_exclusive_lock_first(fs: FileSystem, ino: int) -> None:
    fs.smb_lock(ino, A, 0, 10, exclusive=True)
    fs.smb_lock(ino, A, 0, 10, exclusive=False)
    with pytest.raises(LockConflict):
        fs.smb_lock(ino, B, 0, 10, exclusive=False)
    assert fs.smb_unlock(ino, A, 0, 10).exclusive is True
    fs.smb_lock(ino, B, 0, 10, exclusive=False)  # only the shared one is left
    assert fs.smb_unlock(ino, A, 0, 10).exclusive is False


def test_zero_length_ranges(fs: FileSystem, ino: int) -> None:
    fs.smb_lock(ino, A, 10, 0, exclusive=True)
    fs.smb_lock(ino, B, 10, 0, exclusive=True)  # zero-length ranges never conflict with each other
    fs.smb_lock(ino, B, 0, 10, exclusive=True)  # holds byte 9 but not byte 10
    fs.smb_lock(ino, B, 10, 10, exclusive=True)  # holds byte 10 but not byte 9
    with pytest.raises(LockConflict):
        fs.smb_lock(ino, B, 5, 10, exclusive=True)  # holds 9 and 10: MS-FSA's overlap test says it overlaps
    fs.smb_lock(ino, A, 0, 0, exclusive=True)  # {0, 0} conflicts with nothing
    fs.smb_lock(ino, B, 0, 0, exclusive=True)
    fs.smb_lock(ino, A, 100, 50, exclusive=True)
    with pytest.raises(LockConflict):
        fs.smb_lock(ino, B, 120, 0, exclusive=True)  # inside A's lock
    for off in (100, 150):
        fs.smb_lock(ino, B, off, 0, exclusive=True)  # at its edges
    fs.smb_unlock(ino, B, 100, 0)
    with pytest.raises(RangeNotLocked):
        fs.smb_unlock(ino, B, 100, 0)


def test_unsigned_64_bit_ranges(fs: FileSystem, ino: int) -> None:
    fs.smb_lock(ino, A, U64 - 1, 1, exclusive=True)  # the last byte
    with pytest.raises(LockConflict):
        fs.smb_lock(ino, B, U64 - 10, 10, exclusive=False)
    with pytest.raises(InvalidLockRange):
        fs.smb_lock(ino, B, U64 - 10, 11, exclusive=False)
    with pytest.raises(InvalidArgument):
        fs.smb_lock(ino, B, -1, 1, exclusive=False)
    fs.smb_lock(ino, A, 1 << 63, 10, exclusive=True)  # above the signed range, told apart exactly
    fs.smb_lock(ino, B, (1 << 63) + 10, 10, exclusive=True)
    fs.smb_lock(ino, B, (1 << 63) - 10, 10, exclusive=True)
    with pytest.raises(LockConflict):
        fs.smb_lock(ino, B, (1 << 63) + 5, 1, exclusive=False)
    assert (A, U64 - 1, 1, True) in mine(fs, ino) and (A, 1 << 63, 10, True) in mine(fs, ino)
    fs.smb_unlock(ino, A, U64 - 1, 1)
    fs.smb_lock(ino, B, U64 - 10, 10, exclusive=False)
    fs.unlock_all(B)
    fs.smb_lock(ino, A, 0, U64 - 1, exclusive=False)  # the largest length, stacked on A's own exclusive lock
    with pytest.raises(LockConflict):
        fs.smb_lock(ino, B, 12345, 1, exclusive=True)
    fs.smb_unlock(ino, A, 0, U64 - 1)
    fs.smb_lock(ino, B, 12345, 1, exclusive=True)


def test_smb_and_posix_locks_conflict_both_ways(fs: FileSystem, ino: int) -> None:
    fs.lock(ino, "nlm:1", 0, 100, exclusive=True)
    with pytest.raises(LockConflict):
        fs.smb_lock(ino, A, 50, 10, exclusive=False)
    fs.smb_lock(ino, A, 100, 10, exclusive=False)  # right after it
    fs.smb_lock(ino, A, 200, 10, exclusive=True)
    with pytest.raises(LockConflict):
        fs.lock(ino, "nlm:2", 205, 1, exclusive=False)
    assert fs.test_lock(ino, "nlm:2", 205, 1, exclusive=False) == LockInfo(A, 200, 10, True, smb=True)
    fs.lock(ino, "nlm:2", 210, 10, exclusive=True)  # right after it
    fs.smb_lock(ino, A, 1 << 63, 10, exclusive=True)  # past NFS's offsets: still inside "to end of file"
    with pytest.raises(LockConflict):
        fs.lock(ino, "nlm:3", 1000, 0, exclusive=False)
    fs.lock(ino, "nlm:3", 1000, 10, exclusive=False)
    fs.smb_unlock(ino, A, 1 << 63, 10)
    fs.lock(ino, "nlm:4", 5000, 0, exclusive=False)  # shared to end of file
    with pytest.raises(LockConflict):
        fs.smb_lock(ino, B, U64 - 1, 1, exclusive=True)
    fs.smb_lock(ino, B, U64 - 1, 1, exclusive=False)
    with pytest.raises(LockConflict):
        fs.smb_lock(ino, B, 4000, 1001, exclusive=True)  # reaches byte 5000
    fs.smb_lock(ino, B, 4000, 1000, exclusive=True)  # stops before it


def test_zero_length_smb_lock_against_posix(fs: FileSystem, ino: int) -> None:
    fs.smb_lock(ino, A, 50, 0, exclusive=True)
    fs.lock(ino, "nlm:1", 0, 50, exclusive=True)  # bytes 0..49: not both 49 and 50
    with pytest.raises(LockConflict):
        fs.lock(ino, "nlm:2", 40, 20, exclusive=True)
    fs.lock(ino, "nlm:3", 50, 0, exclusive=False)
    fs.lock(ino, "nlm:3", 50, 0, exclusive=True)  # POSIX relock of its own range, from byte 50 on


def test_posix_calls_leave_smb_locks_alone(fs: FileSystem, ino: int) -> None:
    fs.smb_lock(ino, A, 0, 10, exclusive=False)
    fs.smb_lock(ino, A, 0, 10, exclusive=False)
    fs.lock(ino, A, 20, 10, exclusive=True)  # the same name as a POSIX owner
    fs.unlock(ino, A, 0, 100)  # a POSIX unlock carves only POSIX locks
    assert mine(fs, ino) == [(A, 0, 10, False), (A, 0, 10, False)]
    assert [lk for lk in fs.locks(ino) if not lk.smb] == []
    fs.unlock_all(A)  # closing the open drops all of its locks
    assert fs.locks(ino) == []


def test_mandatory_io_check(fs: FileSystem, ino: int) -> None:
    assert fs.smb_check_io(ino, B, 0, 100, write=True) is None
    fs.smb_lock(ino, A, 0, 10, exclusive=True)
    fs.smb_lock(ino, A, 20, 10, exclusive=False)
    assert fs.smb_check_io(ino, A, 0, 10, write=True) is None  # its own exclusive lock: read and write
    assert fs.smb_check_io(ino, A, 0, 10, write=False) is None
    hit = fs.smb_check_io(ino, B, 9, 2, write=False)
    assert hit is not None and hit.owner == A
    assert fs.smb_check_io(ino, B, 20, 10, write=False) is None  # a shared lock lets everyone read
    assert fs.smb_check_io(ino, B, 25, 1, write=True) is not None
    assert fs.smb_check_io(ino, A, 25, 1, write=True) is not None  # ...and no one write, its owner included
    fs.lock(ino, "nlm:1", 40, 10, exclusive=True)
    assert fs.smb_check_io(ino, A, 45, 1, write=False) is not None  # NFS locks count too
    assert fs.smb_check_io(ino, A, 10, 10, write=True) is None


def test_directories_permissions_and_dead_owners(fs: FileSystem, ino: int) -> None:
    d = fs.mkdir(fs.root, "d")
    with pytest.raises(InvalidArgument):
        fs.smb_lock(d.ino, A, 0, 1, exclusive=False)
    private = fs.create(fs.root, "p", 0o600)
    with pytest.raises(PermissionDenied):
        fs.as_user(Cred(1500, 1500, name="eve")).smb_lock(private.ino, A, 0, 1, exclusive=False)
    fs.as_user(Cred(1500, 1500, name="eve")).smb_lock(ino, A, 0, 1, exclusive=True)  # 0666: may lock
    dead = f"{socket.gethostname()}:999999999:1"
    fs._meta.write(lambda t: t.exec("UPDATE locks SET proc = ?", (dead,)))
    assert fs.smb_test_lock(ino, B, 0, 1, exclusive=True) is None  # a dead server's lock blocks no one
    fs.smb_lock(ino, B, 0, 1, exclusive=True)
    assert mine(fs, ino) == [(B, 0, 1, True)]  # and is swept when it would have conflicted
