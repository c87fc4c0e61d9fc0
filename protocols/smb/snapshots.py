"""Previous Versions: core.fs's kept versions shown as SMB snapshots (what Windows Explorer's "Previous
Versions" tab and ``smbclient allinfo`` list), as Samba's vfs_shadow_copy2 shows file system snapshots.

Tokens.  A snapshot is named by a GMT token ``@GMT-YYYY.MM.DD-HH.MM.SS`` (MS-SMB2 2.2.32.2).  Each kept
version of a file (core.fs ``versions(path)``: kinds ``version`` and ``trash`` that still hold an inode)
becomes one token at the time it stopped being current (``replaced_ns``, rounded down to the second).
Two versions of one path replaced within the same second would share a token: going from the newest to
the oldest, a token that is not older than the one before it moves one second back, so every version
keeps its own token and no token is later than the moment its version was replaced.  A directory shows
the tokens of the versions below it (at most :data:`MAX_TOKENS`, newest first).

FSCTL_SRV_ENUMERATE_SNAPSHOTS (MS-SMB2 3.3.5.15.1) answers SRV_SNAPSHOT_ARRAY (little-endian)::

    0 NumberOfSnapShots u32   4 NumberOfSnapShotsReturned u32   8 SnapShotArraySize u32
    12 SnapShots: each token NUL-terminated UTF-16LE (50 bytes), then one more NUL (2 bytes)

MaxOutputResponse below 16 is INVALID_PARAMETER; when the tokens do not fit, the answer carries the
counts only (NumberOfSnapShotsReturned 0, SnapShotArraySize the size needed), as Windows and Samba
answer the client's first, 16-byte probe.  The answer is never shorter than 16 bytes (Samba's client
refuses a shorter one).

Opening a version.  A CREATE path with a token component (``@GMT-2026.11.27-10.00.00\\dir\\file``, the
form clients send over SMB1 and smbclient's ``cd @GMT-...``; a leading ``\\`` before the token is
accepted as Windows sends it), or a TWrp create context (MS-SMB2 2.2.13.2.7, a FILETIME: what Windows
sends over SMB2), opens what the path held at that time, READ-ONLY:

- the version whose token it is; else the version that was current then: the kept version replaced
  first at or after that time (if it was written by then); else the live file (if it existed then);
- a directory opens read-only; QUERY_DIRECTORY lists it as it was then (:func:`dir_listing`: each file
  as above, including files deleted since that are still kept, and subdirectories that existed then);
- anything that would write (an overwriting or creating disposition, write, delete or attribute
  access, DELETE_ON_CLOSE) is MEDIA_WRITE_PROTECTED, as a read-only snapshot answers.

The open reads through ``fs.reading_versions()`` (kept inodes by number, no FileHandle: READ calls
``read_buffer`` on the view) on a copy of the tree whose
``origin`` is the real one (``Tree.read_only`` is then true, so every write path refuses with
ACCESS_DENIED); no share mode, oplock or lease is taken on a version.
"""

from __future__ import annotations

import calendar
import dataclasses
import re
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import CoreError, NotFound
from core.fs import FileSystem, FileType, VersionInfo
from core.fs import acl as A

from . import paths
from .dirinfo import match
from .errors import SmbError
from .leases import Grant
from .state import Open, Tree
from .status import NtStatus

if TYPE_CHECKING:
    from core.fs import Attr

    from .conn import Connection, Reply, Request

SECOND = 1_000_000_000
MAX_TOKENS = 512              # a directory's answer lists at most this many snapshots
MAX_ROWS = 20_000             # kept rows read below a directory to find them
LABEL_BYTES = 50              # one token, NUL-terminated UTF-16LE
KEPT_KINDS = ("version", "trash")
FILETIME_EPOCH = 116444736000000000  # 100 ns units from 1601-01-01 to 1970-01-01
_TOKEN = re.compile(r"@GMT-(\d{4})\.(\d{2})\.(\d{2})-(\d{2})\.(\d{2})\.(\d{2})")
_COUNTS = struct.Struct("<III")
READ_ONLY_ACCESS = A.READ_DATA | A.READ_ATTRIBUTES | A.READ_NAMED_ATTRS | A.EXECUTE | A.READ_ACL | A.SYNCHRONIZE


def token(at_ns: int) -> str:
    """The GMT token of a time (ns since the epoch, rounded down to the second).

    >>> token(1_795_773_600_123_456_789)
    '@GMT-2026.11.27-10.00.00'
    """
    return time.strftime("@GMT-%Y.%m.%d-%H.%M.%S", time.gmtime(at_ns // SECOND))


def parse_token(text: str) -> int | None:
    """The time (ns) a whole token names, None if ``text`` is not one.

    >>> parse_token('@GMT-2026.11.27-10.00.00') == 1_795_773_600 * SECOND
    True
    >>> parse_token('@GMT-2026.13.01-00.00.00') is None
    True
    """
    m = _TOKEN.fullmatch(text)
    if m is None:
        return None
    try:
        t = time.strptime(text, "@GMT-%Y.%m.%d-%H.%M.%S")
    except ValueError:
        return None
    return calendar.timegm(t) * SECOND


def split_token(name: str) -> tuple[str, int | None]:
    """A CREATE name without its token component, and the token's time (None: no token).

    >>> split_token('\\\\@GMT-2026.11.27-10.00.00\\\\dir\\\\file')[0]
    'dir\\\\file'
    >>> split_token('dir\\\\@GMT-2026.11.27-10.00.00')[0], split_token('plain\\\\f')
    ('dir', ('plain\\\\f', None))
    """
    parts = name.split("\\")
    for i, p in enumerate(parts):
        at = parse_token(p)
        if at is not None:
            rest = parts[:i] + parts[i + 1:]
            if i == 1 and parts[0] == "":
                rest = rest[1:]  # "\@GMT-...\dir\file": the leading separator went with the token
            return "\\".join(rest), at
    return name, None


def from_filetime(ft: int) -> int:
    """A TWrp context's FILETIME as ns since the epoch (whole seconds, as tokens are)."""
    return max(0, (ft - FILETIME_EPOCH) // 10_000_000) * SECOND


def to_filetime(at_ns: int) -> int:
    return at_ns // 100 + FILETIME_EPOCH


# -- which versions have which tokens ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Snapshot:
    at_ns: int                  # the token's time (whole seconds)
    version: VersionInfo


def assign(versions: Sequence[VersionInfo]) -> list[Snapshot]:
    """Unique tokens for one path's kept versions (module docstring), newest first."""
    out: list[Snapshot] = []
    prev: int | None = None
    for v in sorted(versions, key=lambda v: (v.replaced_ns, v.row), reverse=True):
        at = v.replaced_ns // SECOND * SECOND
        if prev is not None and at >= prev:
            at = prev - SECOND
        out.append(Snapshot(at, v))
        prev = at
    return out


def _kept(v: VersionInfo) -> bool:
    return v.kind in KEPT_KINDS and v.ino != 0 and v.type != FileType.DIR


def file_snapshots(fs: FileSystem, path: str) -> list[Snapshot]:
    """The snapshots of one file (core path), newest first."""
    try:
        return assign([v for v in fs.versions(path) if _kept(v)])
    except NotFound:
        return []


def dir_tokens(fs: FileSystem, path: str) -> list[int]:
    """The token times of the versions kept below a directory (core path), newest first, bounded."""
    prefix = path.rstrip("/") + "/"
    by_path: dict[str, list[VersionInfo]] = {}
    for v in fs.list_versions(prefix, limit=MAX_ROWS, kinds=KEPT_KINDS):
        if _kept(v):
            by_path.setdefault(v.path, []).append(v)
    times = {s.at_ns for vs in by_path.values() for s in assign(vs)}
    return sorted(times, reverse=True)[:MAX_TOKENS]


def pick(snaps: Sequence[Snapshot], path: str, at_ns: int, live: Attr | None) -> VersionInfo | Attr:
    """Of one path's snapshots, what it held at ``at_ns`` (module docstring); NotFound if nothing then."""
    for s in snaps:
        if s.at_ns == at_ns:
            return s.version
    later = [s.version for s in snaps if s.version.replaced_ns >= at_ns]
    if later:
        v = min(later, key=lambda v: (v.replaced_ns, v.row))
        if v.mtime_ns < at_ns + SECOND:  # written by then (else no content of that time is kept)
            return v
        raise NotFound(f"no version of {path} from {token(at_ns)} is kept")
    if live is not None and live.btime_ns < at_ns + SECOND:
        return live
    raise NotFound(f"{path} did not exist at {token(at_ns)}")


def resolve(fs: FileSystem, path: str, at_ns: int, live: Attr | None) -> VersionInfo | Attr:
    """What ``path`` held at ``at_ns``: a kept version, or the live file; NotFound if nothing then."""
    return pick(file_snapshots(fs, path), path, at_ns, live)


def dir_listing(fs: FileSystem, ino: int, path: str, at_ns: int) -> list[tuple[str, Attr]]:
    """A directory (inode ``ino`` at core ``path``) as it was at ``at_ns``: each file as :func:`pick`
    finds it (a live one, a kept version, or a deleted one still kept), live subdirectories that existed
    then; no more than :data:`MAX_ROWS` kept rows are read, and entries past them show as they are now."""
    prefix = path.rstrip("/") + "/"
    kept: dict[str, list[VersionInfo]] = {}
    for v in fs.list_versions(prefix, limit=MAX_ROWS, kinds=KEPT_KINDS):
        name = v.path[len(prefix):]
        if _kept(v) and "/" not in name:
            kept.setdefault(name, []).append(v)
    out: list[tuple[str, Attr]] = []
    cookie = 0
    while True:
        page = fs.readdir_plus(ino, cookie, 1024)
        for entry, attr in page:
            cookie = entry.cookie
            if attr.is_dir or entry.name not in kept:
                if attr.btime_ns < at_ns + SECOND:
                    out.append((entry.name, attr))
                continue
            found = _found(fs, kept.pop(entry.name), prefix + entry.name, at_ns, attr)
            if found is not None:
                out.append((entry.name, found))
        if len(page) < 1024:
            break
    for name, vs in kept.items():  # deleted since, still kept
        found = _found(fs, vs, prefix + name, at_ns, None)
        if found is not None:
            out.append((name, found))
    return out


def _found(fs: FileSystem, vs: list[VersionInfo], path: str, at_ns: int, live: Attr | None) -> Attr | None:
    try:
        got = pick(assign(vs), path, at_ns, live)
    except NotFound:
        return None
    return got if not isinstance(got, VersionInfo) else fs.getattr(got.ino)


# -- FSCTL_SRV_ENUMERATE_SNAPSHOTS -------------------------------------------------------------------------
def encode_snapshot_array(tokens: Sequence[str], max_output: int) -> bytes:
    """SRV_SNAPSHOT_ARRAY for ``tokens`` within ``max_output`` (module docstring).

    >>> out = encode_snapshot_array(['@GMT-2026.11.27-10.00.00'], 1024)
    >>> _COUNTS.unpack(out[:12]), len(out), out[12:60].decode('utf-16-le')
    ((1, 1, 52), 64, '@GMT-2026.11.27-10.00.00')
    >>> encode_snapshot_array(['@GMT-2026.11.27-10.00.00'], 16)
    b'\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x004\\x00\\x00\\x00\\x00\\x00\\x00\\x00'
    """
    if max_output < 16:
        raise SmbError(NtStatus.INVALID_PARAMETER, "MaxOutputResponse below 16")
    labels = b"".join((t + "\0").encode("utf-16-le") for t in tokens) + b"\0\0"
    n = len(tokens)
    if 12 + len(labels) > max_output:
        return _COUNTS.pack(n, 0, len(labels)) + bytes(4)
    out = _COUNTS.pack(n, n, len(labels)) + labels
    return out + bytes(max(0, 16 - len(out)))


def core_path(tree: Tree, rel: str) -> str:
    """The core.fs path of a path relative to the share (backslashes)."""
    assert tree.share is not None
    parts = [p for p in rel.split("\\") if p]
    base = tree.share.path.rstrip("/")
    return base + "/" + "/".join(parts) if parts else (base or "/")


def enumerate_snapshots(o: Open, max_output: int) -> bytes:
    """The FSCTL's answer for an open file or directory."""
    fs = o.tree.fs
    assert fs is not None
    path = core_path(o.tree, o.path)
    if o.is_dir:
        times = dir_tokens(fs, path)
    else:
        times = [s.at_ns for s in file_snapshots(fs, path)]
    return encode_snapshot_array([token(t) for t in times], max_output)


class ListingCursor:
    """QUERY_DIRECTORY of a directory opened in a snapshot: its entries then (:func:`dir_listing`, read
    once), with ``.`` and ``..``, filtered by the pattern; the interface of ``handlers_dir``'s cursor."""

    def __init__(self, o: Open, pattern: str, case_insensitive: bool) -> None:
        fs = o.tree.fs
        assert fs is not None
        here = fs.getattr(o.ino)
        entries = [(".", here), ("..", here)]
        entries += sorted(dir_listing(fs, o.ino, core_path(o.tree, o.path), o.tree.snapshot_ns))
        self.buf = [(n, a) for n, a in entries if match(pattern, n, case_insensitive=case_insensitive)]

    def __iter__(self) -> Iterator[tuple[str, Attr]]:
        return iter(list(self.buf))

    def advance(self, n: int) -> None:
        del self.buf[:n]


# -- CREATE of a version -----------------------------------------------------------------------------------
WRITE_ACCESS = A.WRITE_DATA | A.APPEND_DATA | A.WRITE_NAMED_ATTRS | A.WRITE_ATTRIBUTES | A.DELETE_CHILD \
    | A.DELETE | A.WRITE_ACL | A.WRITE_OWNER


def _walk_live(tree: Tree, parts: Sequence[str]) -> tuple[list[str], Attr | None]:
    """The stored names of ``parts`` as far as they exist now, and the last one's attributes (None: gone)."""
    from .handlers_create import lookup_entry
    assert tree.root is not None
    names: list[str] = []
    attr: Attr | None = tree.root
    for i, p in enumerate(parts):
        try:
            assert attr is not None
            stored, attr = lookup_entry(tree, attr.ino, p)
            names.append(stored)
        except (NotFound, CoreError):
            return names + list(parts[i:]), None
    return names, attr


def open_version(conn: Connection, req: Request, tree: Tree, name: str, at_ns: int, desired: int,
                 disposition: int, options: int, contexts: dict[bytes, bytes]) -> Reply:
    """CREATE of ``name`` (token removed) as it was at ``at_ns`` (module docstring)."""
    from . import handlers_create as hc
    fs = tree.fs
    assert fs is not None and tree.share is not None and req.session is not None
    if disposition not in (hc.OPEN, hc.OPEN_IF) or desired & WRITE_ACCESS or options & hc.DELETE_ON_CLOSE:
        raise SmbError(NtStatus.MEDIA_WRITE_PROTECTED, f"{token(at_ns)} is a read-only snapshot")
    try:
        path = paths.split(name)
    except paths.PathError as e:
        raise SmbError(e.status, str(e)) from None
    if path.stream:
        raise SmbError(NtStatus.OBJECT_NAME_NOT_FOUND, "streams of a snapshot are not served")
    stored, live = _walk_live(tree, path.parts)
    rel = "\\".join(stored)
    view = fs.reading_versions()
    snap_tree = dataclasses.replace(tree, fs=view, origin=tree, snapshot_ns=at_ns)
    ino: int
    if live is not None and live.is_dir:
        if options & hc.NON_DIRECTORY_FILE:
            raise SmbError(NtStatus.FILE_IS_A_DIRECTORY, f"{path.text()} is a directory")
        ino, is_dir = live.ino, True
    else:
        if not path.parts:
            raise SmbError(NtStatus.OBJECT_NAME_NOT_FOUND, "no share root in the snapshot")
        try:
            found = resolve(view, core_path(tree, rel), at_ns, live)
        except NotFound:
            raise SmbError(NtStatus.OBJECT_NAME_NOT_FOUND, f"{path.text()} at {token(at_ns)}") from None
        if options & hc.DIRECTORY_FILE:
            raise SmbError(NtStatus.NOT_A_DIRECTORY, f"{path.text()} is not a directory")
        ino, is_dir = found.ino, False
    want = desired & A.FULL_MASK if not desired & hc.MAXIMUM_ALLOWED else READ_ONLY_ACCESS
    maximal = view.access(ino, A.FULL_MASK)
    if want & ~maximal & ~A.SYNCHRONIZE:
        raise SmbError(NtStatus.ACCESS_DENIED, f"access {want & ~maximal:#x} not granted")
    access = (want | A.READ_ATTRIBUTES | A.SYNCHRONIZE) & maximal | A.SYNCHRONIZE
    attr = view.getattr(ino)
    vid = conn.ctx.next_id()
    o = Open(vid, vid, req.session, snap_tree, rel, ino, attr.gen, is_dir, access,
             name=stored[-1] if stored else "", options=options, lock_owner=f"{conn.ctx.lock_prefix}{vid}",
             conn=conn, encrypted=req.encrypted)
    conn.opens[vid] = o
    conn.ctx.opens[vid] = o
    return hc._response(conn, req, snap_tree, o, hc.OPENED, contexts, Grant(NtStatus.SUCCESS), None)
