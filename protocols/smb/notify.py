"""CHANGE_NOTIFY: the request, FILE_NOTIFY_INFORMATION answers and a snapshot-diff watcher. Sans-IO.

The request body (MS-SMB2 2.2.35), little-endian::

    0 StructureSize (32)   2 Flags (WATCH_TREE 1)   4 OutputBufferLength   8 FileId (16)
    24 CompletionFilter    28 Reserved

The response body (2.2.36) is StructureSize 9, OutputBufferOffset (72: header + 8),
OutputBufferLength and a list of FILE_NOTIFY_INFORMATION entries (MS-FSCC 2.7.1)::

    0 NextEntryOffset   4 Action   8 FileNameLength (bytes)   12 FileName (UTF-16LE, relative to the
                                                                 watched directory, ``\\`` separated)

Each entry after the first starts 4-byte aligned, named by the previous entry's NextEntryOffset;
the last has 0 and no padding. When the events do not all fit in OutputBufferLength (or it is 0)
the answer is STATUS_NOTIFY_ENUM_DIR and no entries: the client then lists the directory again
(MS-FSA 2.1.5.10). That status is sent as an ERROR body (``header.encode_error()``), as Samba does
and smbprotocol expects.

:class:`Watcher` is what the server polls for directories with pending notifies: it compares two
snapshots ``{name: Entry(ino, mtime_ns, size, is_dir)}`` of a directory (names relative to it;
for WATCH_TREE the server snapshots the subtree with ``\\``-joined names) and yields the
FILE_ACTION_* events the completion filter asks for: a name that vanished while a new name has
its inode, type, size and mtime is a rename (RENAMED_OLD_NAME, RENAMED_NEW_NAME: a rename keeps
all four, while a file deleted and another created may reuse the inode number); others are
REMOVED and ADDED (FILE_NAME
for files, DIR_NAME for directories); the same inode with another size (SIZE) or mtime
(LAST_WRITE) is MODIFIED; a name now naming another inode is REMOVED then ADDED (or the new
half of a rename). Events come removed/renamed first, then added, then modified, each by name.

Public interface: :class:`CompletionFilter`, :class:`Action`, :class:`NotifyRequest`,
:func:`parse_change_notify`, :func:`encode_change_notify`, :func:`pack_events`,
:class:`NotifyAnswer`, :func:`encode_notify_response`, :class:`Entry`, :class:`Watcher`,
:class:`NotifyError`.

>>> w = Watcher(CompletionFilter.FILE_NAME | CompletionFilter.SIZE)
>>> before = {"a.txt": Entry(10, 1, 5, False), "old": Entry(11, 1, 0, False)}
>>> after = {"a.txt": Entry(10, 2, 9, False), "new": Entry(11, 1, 0, False), "b": Entry(12, 1, 0, False)}
>>> [(a.name, n) for a, n in w.diff(before, after)]
[('RENAMED_OLD_NAME', 'old'), ('RENAMED_NEW_NAME', 'new'), ('ADDED', 'b'), ('MODIFIED', 'a.txt')]
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Final, NamedTuple

from .status import NtStatus

STRUCTURE_SIZE: Final = 32
WATCH_TREE: Final = 0x0001
RESPONSE_OFFSET: Final = 64 + 8
_REQ = struct.Struct("<HHI16sII")
_ENTRY = struct.Struct("<III")
_RESP = struct.Struct("<HHI")


class NotifyError(Exception):
    """A CHANGE_NOTIFY request to refuse; ``status`` is the NTSTATUS to answer with."""

    def __init__(self, status: NtStatus, why: str = "") -> None:
        super().__init__(f"{status.name}: {why}" if why else status.name)
        self.status = status


class CompletionFilter(IntFlag):
    """FILE_NOTIFY_CHANGE_* (MS-SMB2 2.2.35)."""

    FILE_NAME = 0x001
    DIR_NAME = 0x002
    ATTRIBUTES = 0x004
    SIZE = 0x008
    LAST_WRITE = 0x010
    LAST_ACCESS = 0x020
    CREATION = 0x040
    EA = 0x080
    SECURITY = 0x100
    STREAM_NAME = 0x200
    STREAM_SIZE = 0x400
    STREAM_WRITE = 0x800


ALL_FILTERS: Final = 0xFFF


class Action(IntEnum):
    """FILE_ACTION_* (MS-FSCC 2.7.1)."""

    ADDED = 1
    REMOVED = 2
    MODIFIED = 3
    RENAMED_OLD_NAME = 4
    RENAMED_NEW_NAME = 5
    ADDED_STREAM = 6
    REMOVED_STREAM = 7
    MODIFIED_STREAM = 8


@dataclass(frozen=True, slots=True)
class NotifyRequest:
    file_id: bytes
    output_length: int
    completion_filter: int
    watch_tree: bool


def parse_change_notify(body: bytes | bytearray | memoryview, max_transact: int | None = None) -> NotifyRequest:
    """Read a CHANGE_NOTIFY request. NotifyError(INVALID_PARAMETER) when it is short, has another
    StructureSize, a CompletionFilter of 0 or with undefined bits, or asks for more than
    ``max_transact`` bytes (MS-SMB2 3.3.5.19).

    >>> parse_change_notify(encode_change_notify(b"F" * 16, 4096, CompletionFilter.FILE_NAME, True)).watch_tree
    True
    """
    if len(body) < _REQ.size:
        raise NotifyError(NtStatus.INVALID_PARAMETER, f"{len(body)} bytes is too short for CHANGE_NOTIFY")
    size, flags, length, file_id, cfilter, _ = _REQ.unpack_from(body)
    if size != STRUCTURE_SIZE:
        raise NotifyError(NtStatus.INVALID_PARAMETER, f"StructureSize {size}")
    if cfilter == 0 or cfilter & ~ALL_FILTERS:
        raise NotifyError(NtStatus.INVALID_PARAMETER, f"CompletionFilter 0x{cfilter:x}")
    if max_transact is not None and length > max_transact:
        raise NotifyError(NtStatus.INVALID_PARAMETER, f"OutputBufferLength {length} > MaxTransactSize {max_transact}")
    return NotifyRequest(bytes(file_id), length, cfilter, bool(flags & WATCH_TREE))


def encode_change_notify(file_id: bytes, output_length: int, completion_filter: int, watch_tree: bool = False) -> bytes:
    """A CHANGE_NOTIFY request body (tests and doctests)."""
    return _REQ.pack(STRUCTURE_SIZE, WATCH_TREE if watch_tree else 0, output_length, file_id, completion_filter, 0)


@dataclass(frozen=True, slots=True)
class NotifyAnswer:
    """SUCCESS with the packed entries, or NOTIFY_ENUM_DIR with none."""

    status: NtStatus
    data: bytes


def pack_events(events: Iterable[tuple[int, str]], output_length: int) -> NotifyAnswer:
    """Pack (action, name) events as FILE_NOTIFY_INFORMATION entries into ``output_length`` bytes.

    >>> a = pack_events([(Action.ADDED, "ab"), (Action.REMOVED, "c")], 1024)
    >>> a.status.name, a.data.hex()
    ('SUCCESS', '100000000100000004000000610062000000000002000000020000006300')
    >>> pack_events([(Action.ADDED, "ab")], 15).status.name
    'NOTIFY_ENUM_DIR'
    """
    out = bytearray()
    last = -1
    for action, name in events:
        raw = name.encode("utf-16-le", "surrogatepass")
        if last >= 0:
            out += bytes(-len(out) % 4)
            struct.pack_into("<I", out, last, len(out) - last)
        last = len(out)
        out += _ENTRY.pack(0, action, len(raw)) + raw
        if len(out) > output_length:
            return NotifyAnswer(NtStatus.NOTIFY_ENUM_DIR, b"")
    if output_length == 0:
        return NotifyAnswer(NtStatus.NOTIFY_ENUM_DIR, b"")
    return NotifyAnswer(NtStatus.SUCCESS, bytes(out))


def encode_notify_response(data: bytes) -> bytes:
    """The CHANGE_NOTIFY response body for SUCCESS (2.2.36).

    >>> encode_notify_response(b"").hex()
    '0900480000000000'
    """
    return _RESP.pack(9, RESPONSE_OFFSET, len(data)) + data


class Entry(NamedTuple):
    """What the watcher compares for one name."""

    ino: int
    mtime_ns: int
    size: int
    is_dir: bool


class Watcher:
    """Turns two snapshots of a watched directory into the events ``completion_filter`` selects."""

    def __init__(self, completion_filter: int) -> None:
        self.filter = completion_filter

    def _name_bit(self, e: Entry) -> int:
        return CompletionFilter.DIR_NAME if e.is_dir else CompletionFilter.FILE_NAME

    def _wants(self, e: Entry) -> bool:
        return bool(self.filter & self._name_bit(e))

    def diff(self, before: Mapping[str, Entry], after: Mapping[str, Entry]) -> list[tuple[Action, str]]:
        """The events between ``before`` and ``after`` (module docstring)."""
        gone = {n: e for n, e in before.items() if n not in after or after[n].ino != e.ino}
        new = {n: e for n, e in after.items() if n not in before or before[n].ino != e.ino}
        by_key = {e: n for n, e in sorted(gone.items()) if n not in after}
        renamed: dict[str, str] = {}          # new name -> old name
        for n, e in sorted(new.items()):
            old = by_key.pop(e, None)
            if old is not None:
                renamed[n] = old
        olds = set(renamed.values())
        first: list[tuple[Action, str]] = []
        for n, e in sorted(gone.items()):
            if n not in olds and self._wants(e):
                first.append((Action.REMOVED, n))
        for n, old in sorted(renamed.items(), key=lambda kv: kv[1]):
            if self._wants(after[n]):
                first += [(Action.RENAMED_OLD_NAME, old), (Action.RENAMED_NEW_NAME, n)]
        added = [(Action.ADDED, n) for n, e in sorted(new.items()) if n not in renamed and self._wants(e)]
        return first + added + self._modified(before, after)

    def _modified(self, before: Mapping[str, Entry], after: Mapping[str, Entry]) -> list[tuple[Action, str]]:
        out: list[tuple[Action, str]] = []
        for n, e in sorted(after.items()):
            b = before.get(n)
            if b is None or b.ino != e.ino:
                continue
            size = b.size != e.size and self.filter & CompletionFilter.SIZE
            write = b.mtime_ns != e.mtime_ns and self.filter & CompletionFilter.LAST_WRITE
            if size or write:
                out.append((Action.MODIFIED, n))
        return out
