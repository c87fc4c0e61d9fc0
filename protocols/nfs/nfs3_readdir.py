"""READDIR and READDIRPLUS: pages of a directory within the client's byte budget.

Cookies.  Every listing starts with ``.`` (cookie 1) and ``..`` (cookie 2; at the export's
root it is the root itself); an entry core.fs lists with cookie ``c`` goes out as ``c + 2``.
So a client's cookie 0 starts at ``.``, 1 at ``..``, 2 at the first real entry, and
``n > 2`` continues after core's cookie ``n - 2`` (core.fs keeps the cookies of removed
entries valid; one it never issued is NFS3ERR_BAD_COOKIE).  The cookie verifier is
``fs.cookie_verifier``; a non-zero cookie sent with a verifier that is neither that one nor
all zeroes (clients that do not keep verifiers send zeroes) is NFS3ERR_BAD_COOKIE.

Budgets.  ``count`` (READDIR) and ``maxcount`` (READDIRPLUS) bound the encoded size of the
whole ``resok`` arm, XDR overhead included, as RFC 1813 defines them (capped at 1 MiB over TCP,
32 KiB over UDP).
Entries are added while the next one fits; ``eof`` is set only when the directory has no
more entries, and a budget too small for even one entry is NFS3ERR_TOOSMALL.  READDIRPLUS's
``dircount`` is a hint, unused here as in knfsd and NFS-Ganesha (the Linux client sends
``maxcount / 8`` "to make sure it is big enough").  READDIRPLUS takes names, attributes
and handles from one snapshot (``fs.readdir_plus``), for a caller with search permission on the
directory (without it, as knfsd, names and cookies only: a handle is what a LOOKUP would give).

>>> RESOK_OVERHEAD  # dir_attributes (bool + fattr3), cookieverf, end of list, eof
104
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from core.errors import CoreError
from core.fs import HANDLE_SIZE, Attr, DirEntry, FileSystem, acl

from .errors import NFS3ERR_BAD_COOKIE, NFS3ERR_TOOSMALL, NfsError
from .nfs3_args import ReaddirArgs, ReaddirplusArgs
from .nfs3_call import Call, ProcTable, attr_or_none, parent_in_export
from .nfs3_res import Entry3, EntryPlus3, ReaddirplusRes, ReaddirRes
from .nfs3_types import FATTR3_SIZE, NFS3_COOKIEVERFSIZE, Proc, entry3_size, entryplus3_size

if TYPE_CHECKING:
    from .exports import Export

COOKIE_DOT, COOKIE_DOTDOT = 1, 2
RESOK_OVERHEAD = 4 + FATTR3_SIZE + NFS3_COOKIEVERFSIZE + 4 + 4
MAX_ENTRIES = 4096  # per page, whatever the budget
_ZERO_VERF = bytes(NFS3_COOKIEVERFSIZE)


def _check_cookie(fs: FileSystem, dino: int, cookie: int, verf: bytes) -> bytes:
    """The directory's verifier (8 bytes); NFS3ERR_BAD_COOKIE for a stale one sent with a cookie."""
    mine = fs.cookie_verifier(dino).to_bytes(NFS3_COOKIEVERFSIZE, "big")
    if cookie and verf not in (mine, _ZERO_VERF):
        raise NfsError(NFS3ERR_BAD_COOKIE, "the cookie verifier does not match the directory")
    return mine


def _parent(c: Call, fs: FileSystem, export: Export, dino: int) -> tuple[int, Attr | None]:
    """The ``..`` of ``dino``: (its inode, its attributes if the caller may see them and it is in the export)."""
    try:
        parent = parent_in_export(c, fs, export, dino)  # needs search permission on dino
    except (CoreError, NfsError):  # the number only, as ls -a shows it
        return (dino if dino == c.ctx.root_ino(export) else c.ctx.fs.parent(dino).ino), None
    return parent.ino, parent


def _fits(budget: int, used: int, size: int) -> bool:
    return used + size <= budget


def readdir(c: Call, a: ReaddirArgs, res: ReaddirRes) -> None:
    fs, export, dino = c.resolve(a.dir, res)
    try:
        res.verf = _check_cookie(fs, dino, a.cookie, a.verf)
        budget = min(a.count, c.max_payload)
        used = RESOK_OVERHEAD
        if used > budget:
            raise NfsError(NFS3ERR_TOOSMALL, f"READDIR count {a.count} is too small")
        limit = min(MAX_ENTRIES, (budget - used) // entry3_size(1) + 1)
        page, eof = _page(c, fs, export, dino, a.cookie, limit, plus=False)
        for fileid, name, cookie, _, _ in page:
            size = entry3_size(len(name))
            if not _fits(budget, used, size):
                eof = False
                break
            res.entries.append(Entry3(fileid, name, cookie))
            used += size
        if not res.entries and not eof:
            raise NfsError(NFS3ERR_TOOSMALL, f"READDIR count {a.count} holds no entry")
        res.eof = eof
    finally:
        res.dir = attr_or_none(fs, dino)


def readdirplus(c: Call, a: ReaddirplusArgs, res: ReaddirplusRes) -> None:
    fs, export, dino = c.resolve(a.dir, res)
    try:
        res.verf = _check_cookie(fs, dino, a.cookie, a.verf)
        budget = min(a.maxcount, c.max_payload)
        used = RESOK_OVERHEAD
        if used > budget:
            raise NfsError(NFS3ERR_TOOSMALL, f"READDIRPLUS maxcount {a.maxcount} is too small")
        # attributes and handles only for a caller who could look the names up (search permission), as knfsd
        full = bool(fs.access(dino, acl.EXECUTE))
        smallest = entryplus3_size(1, full, HANDLE_SIZE if full else None)
        limit = min(MAX_ENTRIES, (budget - used) // smallest + 1)
        page, eof = _page(c, fs, export, dino, a.cookie, limit, plus=full)
        for fileid, name, cookie, attr, fh in page:
            size = entryplus3_size(len(name), attr is not None, None if fh is None else len(fh))
            if not _fits(budget, used, size):
                eof = False
                break
            res.entries.append(EntryPlus3(fileid, name, cookie, attr, fh))
            used += size
        if not res.entries and not eof:
            raise NfsError(NFS3ERR_TOOSMALL, f"READDIRPLUS maxcount {a.maxcount} holds no entry")
        res.eof = eof
    finally:
        res.dir = attr_or_none(fs, dino)


_Row = tuple[int, bytes, int, Attr | None, bytes | None]  # fileid, name, cookie, attributes, handle


def _page(c: Call, fs: FileSystem, export: Export, dino: int, cookie: int, limit: int, *,
          plus: bool) -> tuple[list[_Row], bool]:
    """Up to ``limit`` rows after ``cookie`` (``.`` and ``..`` first), and whether they end the directory."""
    rows: list[_Row] = []
    if cookie < COOKIE_DOT:
        d = fs.getattr(dino)
        rows.append((dino, b".", COOKIE_DOT, d if plus else None, c.handle(export, d) if plus else None))
    if cookie < COOKIE_DOTDOT:
        pino, pattr = _parent(c, fs, export, dino)
        fh = c.handle(export, pattr) if plus and pattr is not None else None
        rows.append((pino, b"..", COOKIE_DOTDOT, pattr if plus else None, fh))
    core_cookie = cookie - COOKIE_DOTDOT if cookie > COOKIE_DOTDOT else 0
    want = max(1, limit - len(rows))  # always asked: core.fs checks that the caller may list the directory
    got = list(_entries(c, fs, export, dino, core_cookie, want, plus))
    return rows + got, len(got) < want


def _entries(c: Call, fs: FileSystem, export: Export, dino: int, cookie: int, limit: int,
             plus: bool) -> Iterator[_Row]:
    if plus:
        for e, attr in fs.readdir_plus(dino, cookie, limit):
            yield e.ino, _raw(e), e.cookie + COOKIE_DOTDOT, attr, c.handle(export, attr)
    else:
        for e in fs.readdir(dino, cookie, limit):
            yield e.ino, _raw(e), e.cookie + COOKIE_DOTDOT, None, None


def _raw(e: DirEntry) -> bytes:
    return e.name.encode("utf-8", "surrogateescape")


READDIR_PROCEDURES: ProcTable = {
    Proc.READDIR: (ReaddirArgs, ReaddirRes, readdir),
    Proc.READDIRPLUS: (ReaddirplusArgs, ReaddirplusRes, readdirplus),
}
