"""QUERY_DIRECTORY (MS-SMB2 3.3.5.18): listing a directory open, resumable without re-listing.

The open keeps a :class:`~protocols.smb.state.Listing`: the search pattern of the first query (or
of one with RESTART_SCANS/REOPEN), and entries read from core.fs a page at a time
(``readdir_plus``, 1,024 per call) starting with ``.`` and ``..``. Each answer packs as many
entries as OutputBufferLength holds and the next query continues after the last one sent, so a
5,000-entry directory is read from core.fs once. A pattern without wildcards is one case-folding
lookup, not a scan. The first query of a search that matches nothing is NO_SUCH_FILE, later ones
NO_MORE_FILES.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from core.errors import NotFound
from core.fs import Attr
from core.fs import acl as A

from .conn import Connection, Reply, Request, buffer_at, unpack
from .dirinfo import DIR_CLASSES, has_wildcards, match, pack_entries
from .errors import SmbError
from .fileinfo import InfoError, dos_attributes
from .handlers_create import lookup_entry
from .handlers_file import find_open
from .state import Listing, Open
from .status import NtStatus

_QUERY_DIR = struct.Struct("<HBBI16sHHI")   # 32
RESTART_SCANS = 0x01
RETURN_SINGLE_ENTRY = 0x02
INDEX_SPECIFIED = 0x04
REOPEN = 0x10
PAGE = 1024


class _Cursor:
    """Entries of a directory, fetched from core.fs a page at a time, filtered by the pattern."""

    def __init__(self, conn: Connection, o: Open, pattern: str, ci: bool) -> None:
        self.conn, self.o, self.pattern, self.ci = conn, o, pattern, ci
        self.buf: list[tuple[str, Attr]] = []
        self.cookie = 0
        self.done = False
        self.started = False

    def _fill(self) -> None:
        fs = self.o.tree.fs
        assert fs is not None
        if not self.started:
            self.started = True
            here = fs.getattr(self.o.ino)
            dots = [(".", here)]
            if self.o.path:
                try:
                    dots.append(("..", fs.getattr(self.o.parent) if self.o.parent else here))
                except NotFound:
                    dots.append(("..", here))
            else:
                dots.append(("..", here))
            self.buf.extend((n, a) for n, a in dots if match(self.pattern, n, case_insensitive=self.ci))
            if not has_wildcards(self.pattern):
                self.done = True
                try:
                    self.buf.append(lookup_entry(self.o.tree, self.o.ino, self.pattern))
                except NotFound:
                    pass
                return
        if self.done:
            return
        page = fs.readdir_plus(self.o.ino, self.cookie, PAGE)
        if len(page) < PAGE:
            self.done = True
        for entry, attr in page:
            self.cookie = entry.cookie
            if match(self.pattern, entry.name, case_insensitive=self.ci):
                self.buf.append((entry.name, attr))

    def __iter__(self) -> Iterator[tuple[str, Attr]]:
        i = 0
        while True:
            while i >= len(self.buf) and not self.done:
                self._fill()
            if i >= len(self.buf):
                return
            yield self.buf[i]
            i += 1

    def advance(self, n: int) -> None:
        del self.buf[:n]


def query_directory(conn: Connection, req: Request) -> Reply:
    _, cls, flags, _index, fid, name_off, name_len, out_len = unpack(_QUERY_DIR, req.body, "QUERY_DIRECTORY")
    o = find_open(conn, req, fid)
    if not o.is_dir:
        raise SmbError(NtStatus.INVALID_PARAMETER, "QUERY_DIRECTORY on a file")
    if cls not in DIR_CLASSES:
        raise SmbError(NtStatus.INVALID_INFO_CLASS, f"directory class {cls}")
    if not o.access & A.READ_DATA:
        raise SmbError(NtStatus.ACCESS_DENIED, "the open may not list the directory")
    n = conn.negotiated
    assert n is not None
    if out_len > n.max_transact_size:
        raise SmbError(NtStatus.INVALID_PARAMETER, "OutputBufferLength exceeds MaxTransactSize")
    try:
        pattern = buffer_at(req, name_off, name_len, "pattern").decode("utf-16-le")
    except UnicodeDecodeError:
        raise SmbError(NtStatus.OBJECT_NAME_INVALID, "pattern is not UTF-16") from None
    share = o.tree.share
    ci = share is None or share.case_insensitive
    first = False
    if o.listing is None or flags & (RESTART_SCANS | REOPEN):
        if o.tree.origin is not None:  # a directory opened in a Previous Version: its entries then
            from .snapshots import ListingCursor
            o.listing = Listing(pattern or "*", ListingCursor(o, pattern or "*", ci))
        else:
            o.listing = Listing(pattern or "*", _Cursor(conn, o, pattern or "*", ci))
        first = True
    cursor: _Cursor = o.listing.cursor

    def attrs(name: str, a: Attr) -> int:
        return dos_attributes(a, name, stored=a.dos)

    try:
        page = pack_entries(cls, iter(cursor), out_len, single=bool(flags & RETURN_SINGLE_ENTRY), attributes=attrs)
    except InfoError as e:
        raise SmbError(e.status, str(e)) from None
    if page.count:
        cursor.advance(page.count)
        return Reply(struct.pack("<HHI", 9, 72, len(page.data)) + page.data, file_id=o.file_id)
    if page.status == NtStatus.NO_MORE_FILES and first:
        raise SmbError(NtStatus.NO_SUCH_FILE, f"nothing matches {pattern!r}")
    raise SmbError(page.status, "no entries")


def _register() -> dict[object, object]:
    from .header import Command
    return {Command.QUERY_DIRECTORY: query_directory}


HANDLERS = _register()
