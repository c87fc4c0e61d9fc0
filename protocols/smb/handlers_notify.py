"""CHANGE_NOTIFY (MS-SMB2 3.3.5.19): watch a directory open for changes made through any protocol.

The request goes async at once (STATUS_PENDING with an AsyncId). The server's poller calls
``retry`` every half second: it snapshots the watched directory (``readdir_plus``: name -> inode,
mtime, size, type) and diffs it against the snapshot taken when the watch began
(``notify.Watcher``), so changes by S3, NFS, core.fs or another SMB server process are seen as
well as this server's own. Events that do not fit OutputBufferLength become NOTIFY_ENUM_DIR (the
client re-lists). CLOSE of the directory completes the watch with NOTIFY_CLEANUP; CANCEL with
CANCELLED.

WATCH_TREE is honoured for the directory's direct children only (a subtree walk every half
second would cost too much on large trees); changes deeper down are not reported. Directories
over :data:`MAX_ENTRIES` entries are not snapshotted: their watch completes with NOTIFY_ENUM_DIR
when the directory's own mtime changes.
"""

from __future__ import annotations

from core.errors import CoreError
from core.fs import FileSystem

from .conn import Connection, Reply, Request
from .errors import SmbError
from .handlers_file import find_open
from .notify import Entry, NotifyError, Watcher, encode_notify_response, pack_events, parse_change_notify
from .status import NtStatus

MAX_ENTRIES = 20_000


def snapshot(fs: FileSystem, ino: int) -> dict[str, Entry] | None:
    """name -> Entry of a directory's children; None when it has more than MAX_ENTRIES."""
    out: dict[str, Entry] = {}
    cookie = 0
    while True:
        page = fs.readdir_plus(ino, cookie, 1024)
        for e, a in page:
            out[e.name] = Entry(a.ino, a.mtime_ns, a.size, a.is_dir)
            cookie = e.cookie
        if len(out) > MAX_ENTRIES:
            return None
        if len(page) < 1024:
            return out


def change_notify(conn: Connection, req: Request) -> Reply:
    n = conn.negotiated
    assert n is not None
    try:
        nreq = parse_change_notify(req.body, n.max_transact_size)
    except NotifyError as e:
        raise SmbError(e.status, str(e)) from None
    o = find_open(conn, req, nreq.file_id)
    if not o.is_dir:
        raise SmbError(NtStatus.INVALID_PARAMETER, "CHANGE_NOTIFY on a file")
    if not o.access & 0x1:
        raise SmbError(NtStatus.ACCESS_DENIED, "the open may not list the directory")
    fs = o.tree.fs
    assert fs is not None
    before = snapshot(fs, o.ino)
    dir_mtime = fs.getattr(o.ino).mtime_ns
    watcher = Watcher(nreq.completion_filter)

    def retry() -> Reply | None:
        if o.volatile not in conn.opens:
            return Reply(b"", NtStatus.NOTIFY_CLEANUP)
        try:
            now = fs.getattr(o.ino).mtime_ns
            if before is None:
                return None if now == dir_mtime else Reply(b"", NtStatus.NOTIFY_ENUM_DIR)
            after = snapshot(fs, o.ino)
        except CoreError:
            return Reply(b"", NtStatus.NOTIFY_CLEANUP)
        if after is None:
            return Reply(b"", NtStatus.NOTIFY_ENUM_DIR)
        events = watcher.diff(before, after)
        if not events:
            return None
        ans = pack_events([(int(a), name) for a, name in events], nreq.output_length)
        if ans.status != NtStatus.SUCCESS:
            return Reply(b"", ans.status)
        return Reply(encode_notify_response(ans.data))

    p = conn.new_pending(req, retry=retry)
    p.extra["open"] = o.volatile
    return Reply(b"", pending=p, file_id=o.file_id)


def _register() -> dict[object, object]:
    from .header import Command
    return {Command.CHANGE_NOTIFY: change_notify}


HANDLERS = _register()
