"""LOCK (MS-SMB2 3.3.5.14): byte-range locks through core.fs, so SMB, NFS (NLM) and core.fs locks
conflict with each other in every process.

Locks are taken per open (the owner is the open's ``lock_owner``) with SMB's rules from
``core.fs.smblocks``: they stack (two shared locks on one range are two locks), an exclusive lock
conflicts with any overlapping lock, an unlock names exactly a range it locked
(RANGE_NOT_LOCKED otherwise). A request of several locks takes them in order and undoes the
ones taken when a later one fails (LOCK_NOT_GRANTED). A single lock without FAIL_IMMEDIATELY
waits: the answer goes async (STATUS_PENDING) and the poller retries it until it is granted,
cancelled (CANCELLED) or its open closes (CANCELLED... the client has gone from it). READ and
WRITE check the same locks (``handlers_file``).
"""

from __future__ import annotations

from core.errors import LockConflict

from .conn import Connection, Reply, Request
from .errors import SmbError
from .handlers_file import find_open
from .lockreq import LOCK_RESPONSE, LockElement, LockError, parse_lock
from .state import Open
from .status import NtStatus


def _take(o: Open, elements: tuple[LockElement, ...]) -> None:
    fs = o.tree.fs
    assert fs is not None
    taken: list[LockElement] = []
    try:
        for e in elements:
            fs.smb_lock(o.ino, o.lock_owner, e.offset, e.length, e.exclusive)
            taken.append(e)
            o.locks.append((e.offset, e.length, e.exclusive))
    except BaseException:
        for e in reversed(taken):
            fs.smb_unlock(o.ino, o.lock_owner, e.offset, e.length)
            o.locks.remove((e.offset, e.length, e.exclusive))
        raise


def lock(conn: Connection, req: Request) -> Reply:
    try:
        lr = parse_lock(req.body)
    except LockError as e:
        raise SmbError(e.status, str(e)) from None
    o = find_open(conn, req, lr.file_id)
    if o.is_dir or o.pipe is not None:
        raise SmbError(NtStatus.INVALID_PARAMETER, "LOCK on a directory or pipe")
    fs = o.tree.fs
    assert fs is not None
    if lr.unlock:
        for el in lr.elements:
            fs.smb_unlock(o.ino, o.lock_owner, el.offset, el.length)
            for i, held in enumerate(o.locks):
                if held[:2] == (el.offset, el.length):
                    del o.locks[i]
                    break
        return Reply(LOCK_RESPONSE, file_id=o.file_id)
    try:
        _take(o, lr.elements)
    except LockConflict:
        if not lr.wait:
            raise SmbError(NtStatus.LOCK_NOT_GRANTED, "the range is locked") from None
    else:
        return Reply(LOCK_RESPONSE, file_id=o.file_id)

    def retry() -> Reply | None:
        if o.volatile not in conn.opens:
            return Reply(b"", NtStatus.CANCELLED)
        try:
            _take(o, lr.elements)
        except LockConflict:
            return None
        return Reply(LOCK_RESPONSE)

    p = conn.new_pending(req, retry=retry)
    return Reply(b"", pending=p, file_id=o.file_id)


def _register() -> dict[object, object]:
    from .header import Command
    return {Command.LOCK: lock}


HANDLERS = _register()
