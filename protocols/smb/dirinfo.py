"""QUERY_DIRECTORY answers: directory entries packed into OutputBufferLength, and search patterns. Sans-IO.

Entry layouts (MS-FSCC 2.4, all little-endian; the name, UTF-16LE, starts at the offset given)::

    FileDirectoryInformation (1)        NextEntryOffset FileIndex Creation LastAccess LastWrite Change
                                        EndOfFile AllocationSize FileAttributes FileNameLength     name @ 64
    FileFullDirectoryInformation (2)    ... + EaSize                                               name @ 68
    FileBothDirectoryInformation (3)    ... + EaSize ShortNameLength Reserved ShortName[24]        name @ 94
    FileIdBothDirectoryInformation (37) ... + EaSize ShortNameLength Reserved ShortName[24]
                                            Reserved2 FileId                                      name @ 104
    FileIdFullDirectoryInformation (38) ... + EaSize Reserved FileId                               name @ 80
    FileNamesInformation (12)           NextEntryOffset FileIndex FileNameLength                   name @ 12

:func:`pack_entries` packs ``(name, Attr)`` pairs in order.  Each entry after the first starts at the
next 8-byte boundary of the buffer (zero padding) and the entry before it names that offset in
NextEntryOffset; the last entry has NextEntryOffset 0 and is not padded.  Packing stops before the first
entry that does not fit whole in OutputBufferLength; :class:`DirPage` says how many entries went in, so
the server resumes its listing there on the next request (nothing is lost or repeated).  When not even
the first entry fits, the answer is INFO_LENGTH_MISMATCH with no data and count 0, as Samba does (the
client retries with a larger buffer; Windows would instead send a truncated entry with BUFFER_OVERFLOW
and lose its name).  No entries at all is NO_MORE_FILES; the server answers NO_SUCH_FILE instead on the
first query of a search that matched nothing (MS-SMB2 3.3.5.18).  Tessera keeps no 8.3 short names
(ShortNameLength 0, like Samba with ``mangled names = no``), FileIndex is 0 (MS-FSCC: undefined for
NTFS-like stores), EaSize is 0, and FileId is the inode number.

:func:`match` is MS-FSA 2.1.4.4 (IsInExpression): ``*`` any run, ``?`` one character, and the DOS
wildcards that Windows clients send after translating ``*.*``-style patterns: ``<`` (DOS_STAR) any run
that does not take the name's final ``.``, ``>`` (DOS_QM) one character, or none at a ``.`` or at the end,
``"`` (DOS_DOT) a ``.``, or none at the end.  An empty pattern matches everything, as ``*`` does.

Public interface: :data:`DIR_CLASSES`, :func:`encode_entry`, :func:`pack_entries`, :class:`DirPage`,
:func:`match`, :func:`has_wildcards`.

>>> match("*.TXT", "notes.txt"), match("<.txt", "a.b.txt"), match('<"', "README"), match('<"', "a.b")
(True, True, True, False)
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from core.fs import Attr

from .fileinfo import FileInfoClass, InfoError, allocation_size, dos_attributes, filetime
from .status import NtStatus

ALIGN: Final = 8
WILDCARDS: Final = frozenset('*?<>"')

NAME_OFFSET: Final = {
    FileInfoClass.DIRECTORY: 64,
    FileInfoClass.FULL_DIRECTORY: 68,
    FileInfoClass.BOTH_DIRECTORY: 94,
    FileInfoClass.ID_BOTH_DIRECTORY: 104,
    FileInfoClass.ID_FULL_DIRECTORY: 80,
    FileInfoClass.NAMES: 12,
}
DIR_CLASSES: Final = frozenset(NAME_OFFSET)

_COMMON = struct.Struct("<IIqqqqqqII")  # up to and including FileNameLength: 64 bytes
_SHORT_NAME: Final = bytes(26)          # ShortNameLength, Reserved, ShortName[24]

DosAttrs = Callable[[str, Attr], int]


def _common(name_len: int, attr: Attr, attrs: int, alloc_unit: int) -> bytes:
    eof = 0 if attr.is_dir else attr.size
    return _COMMON.pack(0, 0, filetime(attr.btime_ns), filetime(attr.atime_ns), filetime(attr.mtime_ns),
                        filetime(attr.ctime_ns), eof, allocation_size(attr, alloc_unit), attrs, name_len)


def encode_entry(cls: int, name: str, attr: Attr, *, attributes: int | None = None, alloc_unit: int = 4096) -> bytes:
    """One entry of class ``cls`` with NextEntryOffset 0 and no padding.

    ``attributes`` are the DOS attributes (default: :func:`~protocols.smb.fileinfo.dos_attributes`).

    >>> from protocols.smb.fileinfo import _ATTR_EXAMPLE
    >>> len(encode_entry(FileInfoClass.ID_BOTH_DIRECTORY, "ab", _ATTR_EXAMPLE))
    108
    """
    raw = name.encode("utf-16-le")
    if cls == FileInfoClass.NAMES:
        return struct.pack("<III", 0, 0, len(raw)) + raw
    head = _common(len(raw), attr, dos_attributes(attr, name) if attributes is None else attributes, alloc_unit)
    if cls == FileInfoClass.DIRECTORY:
        tail = b""
    elif cls == FileInfoClass.FULL_DIRECTORY:
        tail = struct.pack("<I", 0)
    elif cls == FileInfoClass.BOTH_DIRECTORY:
        tail = struct.pack("<I", 0) + _SHORT_NAME
    elif cls == FileInfoClass.ID_BOTH_DIRECTORY:
        tail = struct.pack("<I", 0) + _SHORT_NAME + struct.pack("<HQ", 0, attr.ino)
    elif cls == FileInfoClass.ID_FULL_DIRECTORY:
        tail = struct.pack("<IIQ", 0, 0, attr.ino)
    else:
        raise InfoError(NtStatus.INVALID_INFO_CLASS, f"directory info class {cls}")
    return head + tail + raw


@dataclass(frozen=True, slots=True)
class DirPage:
    """One QUERY_DIRECTORY answer: the status, the OutputBuffer and how many entries it holds."""

    status: NtStatus
    data: bytes
    count: int


def pack_entries(cls: int, entries: Iterable[tuple[str, Attr]], output_length: int, *, single: bool = False,
                 attributes: DosAttrs | None = None, alloc_unit: int = 4096) -> DirPage:
    """Pack as many of ``entries`` as fit in ``output_length`` bytes (module docstring).

    ``single`` is SMB2_RETURN_SINGLE_ENTRY; ``attributes(name, attr)`` gives each entry's DOS attributes.
    ``entries`` is consumed only up to the first entry that does not fit (plus that one).

    >>> from protocols.smb.fileinfo import _ATTR_EXAMPLE as a
    >>> page = pack_entries(FileInfoClass.NAMES, [("a", a), ("bb", a), ("c", a)], 40)
    >>> page.status.name, page.count, len(page.data), page.data[:4], page.data[16:20]
    ('SUCCESS', 2, 32, b'\\x10\\x00\\x00\\x00', b'\\x00\\x00\\x00\\x00')
    """
    if cls not in DIR_CLASSES:
        raise InfoError(NtStatus.INVALID_INFO_CLASS, f"directory info class {cls}")
    if output_length < NAME_OFFSET[FileInfoClass(cls)]:
        return DirPage(NtStatus.INFO_LENGTH_MISMATCH, b"", 0)
    out = bytearray()
    prev = -1
    count = 0
    for name, attr in entries:
        dos = attributes(name, attr) if attributes is not None else None
        entry = encode_entry(cls, name, attr, attributes=dos, alloc_unit=alloc_unit)
        start = -(-len(out) // ALIGN) * ALIGN
        if start + len(entry) > output_length:
            break
        if prev >= 0:
            out += bytes(start - len(out))
            struct.pack_into("<I", out, prev, start - prev)
        out += entry
        prev, count = start, count + 1
        if single:
            break
    else:
        if count == 0:
            return DirPage(NtStatus.NO_MORE_FILES, b"", 0)
    if count == 0:
        return DirPage(NtStatus.INFO_LENGTH_MISMATCH, b"", 0)
    return DirPage(NtStatus.SUCCESS, bytes(out), count)


def has_wildcards(pattern: str) -> bool:
    """True when ``pattern`` needs :func:`match`; otherwise the server looks the one name up.

    >>> has_wildcards("a.txt"), has_wildcards("a?.txt"), has_wildcards("")
    (False, True, True)
    """
    return not pattern or any(c in WILDCARDS for c in pattern)


def match(pattern: str, name: str, *, case_insensitive: bool = True) -> bool:
    """Does ``name`` match the search ``pattern`` (MS-FSA 2.1.4.4; see the module docstring)?

    >>> match("a>", "a"), match("a>", "ab"), match("a>", "abc"), match("a>.c", "a.c")
    (True, True, False, True)
    >>> match("ABC", "abc"), match("ABC", "abc", case_insensitive=False)
    (True, False)
    """
    if not pattern or pattern == "*":
        return True
    if case_insensitive:
        pattern, name = pattern.casefold(), name.casefold()
    return _match(pattern, name)


@lru_cache(maxsize=4096)
def _match(p: str, n: str) -> bool:
    """An NFA walk over the pattern positions, one name character at a time (no recursion, so a
    client's long pattern costs len(p) * len(n) steps and never the stack)."""
    last_dot = n.rfind(".")
    states = _closure(p, n, {0}, 0)
    for ni, c in enumerate(n):
        nxt: set[int] = set()
        for pi in states:
            if pi == len(p):
                continue
            tok = p[pi]
            if tok == "*" or (tok == "<" and ni != last_dot):
                nxt.add(pi)                      # take c and stay
            elif tok == "?" or (tok == ">" and c != ".") or (tok == '"' and c == ".") \
                    or (tok == c and tok not in WILDCARDS):
                nxt.add(pi + 1)                  # take c and move on
        if not nxt:
            return False
        states = _closure(p, n, nxt, ni + 1)
    return len(p) in states


def _closure(p: str, n: str, states: set[int], ni: int) -> set[int]:
    """Add the positions reachable by tokens that match no character at name position ``ni``."""
    at_end = ni == len(n)
    work = list(states)
    while work:
        pi = work.pop()
        if pi < len(p) and pi + 1 not in states:
            tok = p[pi]
            if tok in "*<" or (tok == ">" and (at_end or n[ni] == ".")) or (tok == '"' and at_end):
                states.add(pi + 1)
                work.append(pi + 1)
    return states
