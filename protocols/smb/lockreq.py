"""SMB2 LOCK requests (MS-SMB2 2.2.26, 3.3.5.14) and the lock-sequence replay table. Sans-IO.

The request body, little-endian::

    0  StructureSize (48)   2  LockCount   4  LockSequence (bits 0-3 number, 4-31 index)
    8  FileId (16)          24 Locks: LockCount x SMB2_LOCK_ELEMENT
                               Offset u64, Length u64, Flags u32, Reserved u32   (24 bytes each)

:func:`parse_lock` checks what MS-SMB2 3.3.5.14 asks before any lock is touched and returns a
:class:`LockRequest`, or raises :class:`LockError` carrying the NTSTATUS:

- LockCount 0, a body shorter than its elements, StructureSize not 48: INVALID_PARAMETER;
- the first element decides: UNLOCK in its flags makes it an unlock request, and then every
  element must be UNLOCK, with FAIL_IMMEDIATELY allowed and ignored (3.3.5.14.1) and neither
  SHARED nor EXCLUSIVE; otherwise every element must be one of SHARED, EXCLUSIVE,
  SHARED|FAIL_IMMEDIATELY, EXCLUSIVE|FAIL_IMMEDIATELY (3.3.5.14.2, 2.2.26.1). INVALID_PARAMETER
  otherwise. (Windows processes the elements before a bad one and then fails; refusing the whole
  request up front is the safe subset, as no client mixes them on purpose);
- several lock elements must all carry FAIL_IMMEDIATELY (only a single lock may wait):
  INVALID_PARAMETER;
- a range whose end (Offset + Length) passes 2**64: INVALID_LOCK_RANGE. Zero-length ranges are
  valid.

The server then takes the locks in order through core.fs (undoing the ones taken when a later one
fails) or removes the exactly matching ranges (an unlock naming no held range: RANGE_NOT_LOCKED).

For resilient, durable and persistent opens (dialect 2.1 and later) a LOCK carries a sequence
number so a replay after a reconnect is not applied twice: :class:`LockSequences` is the open's
64-entry table (3.3.5.14). ``replayed(seq)`` before processing says whether to answer SUCCESS at
once; ``record(seq)`` after a successful request stores the number.

Public interface: :class:`LockFlags`, :class:`LockElement`, :class:`LockRequest`,
:func:`parse_lock`, :func:`encode_lock`, :data:`LOCK_RESPONSE`, :class:`LockSequences`,
:class:`LockError`.

>>> req = parse_lock(encode_lock(b"F" * 16, [LockElement(0, 10, LockFlags.EXCLUSIVE)], sequence=0x25))
>>> req.elements[0].exclusive, req.unlock, req.wait, req.sequence_index, req.sequence_number
(True, False, True, 2, 5)
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntFlag
from typing import Final

from .status import NtStatus

STRUCTURE_SIZE: Final = 48
_HEAD = struct.Struct("<HHI16s")
_ELEMENT = struct.Struct("<QQII")
LOCK_RESPONSE: Final = struct.pack("<HH", 4, 0)   # the LOCK response body (2.2.27)
MAX_RANGE_END: Final = 1 << 64
SEQUENCE_SLOTS: Final = 64


class LockError(Exception):
    """A LOCK request to refuse; ``status`` is the NTSTATUS to answer with."""

    def __init__(self, status: NtStatus, why: str = "") -> None:
        super().__init__(f"{status.name}: {why}" if why else status.name)
        self.status = status


class LockFlags(IntFlag):
    """SMB2_LOCK_ELEMENT Flags."""

    SHARED = 0x01
    EXCLUSIVE = 0x02
    UNLOCK = 0x04
    FAIL_IMMEDIATELY = 0x10


_UNLOCK_ALLOWED: Final = LockFlags.UNLOCK | LockFlags.FAIL_IMMEDIATELY
_LOCK_FLAGS: Final = frozenset({LockFlags.SHARED, LockFlags.EXCLUSIVE, LockFlags.SHARED | LockFlags.FAIL_IMMEDIATELY,
                                LockFlags.EXCLUSIVE | LockFlags.FAIL_IMMEDIATELY})


@dataclass(frozen=True, slots=True)
class LockElement:
    """One byte range: [offset, offset + length)."""

    offset: int
    length: int
    flags: int

    @property
    def end(self) -> int:
        return self.offset + self.length

    @property
    def exclusive(self) -> bool:
        return bool(self.flags & LockFlags.EXCLUSIVE)

    @property
    def shared(self) -> bool:
        return bool(self.flags & LockFlags.SHARED)

    @property
    def unlock(self) -> bool:
        return bool(self.flags & LockFlags.UNLOCK)

    @property
    def fail_immediately(self) -> bool:
        return bool(self.flags & LockFlags.FAIL_IMMEDIATELY)


@dataclass(frozen=True, slots=True)
class LockRequest:
    """A checked LOCK request: all unlocks (``unlock``) or all locks."""

    file_id: bytes
    sequence: int
    elements: tuple[LockElement, ...]
    unlock: bool

    @property
    def sequence_number(self) -> int:
        """LockSequenceNumber: the low 4 bits."""
        return self.sequence & 0xF

    @property
    def sequence_index(self) -> int:
        """LockSequenceIndex: the upper 28 bits (1..64 name a slot of the replay table)."""
        return self.sequence >> 4

    @property
    def wait(self) -> bool:
        """True when the (single) lock may wait for a conflicting one to go (the answer then goes
        async with STATUS_PENDING); False for unlocks and FAIL_IMMEDIATELY."""
        return not self.unlock and not self.elements[0].fail_immediately


def parse_lock(body: bytes | bytearray | memoryview) -> LockRequest:
    """Read and check a LOCK request body (module docstring); LockError otherwise.

    >>> parse_lock(encode_lock(b"F" * 16, []))
    Traceback (most recent call last):
    ...
    protocols.smb.lockreq.LockError: INVALID_PARAMETER: LockCount 0
    """
    if len(body) < _HEAD.size:
        raise LockError(NtStatus.INVALID_PARAMETER, f"{len(body)} bytes is too short for a LOCK request")
    size, count, sequence, file_id = _HEAD.unpack_from(body)
    if size != STRUCTURE_SIZE:
        raise LockError(NtStatus.INVALID_PARAMETER, f"StructureSize {size}")
    if count == 0:
        raise LockError(NtStatus.INVALID_PARAMETER, "LockCount 0")
    if len(body) < _HEAD.size + count * _ELEMENT.size:
        raise LockError(NtStatus.INVALID_PARAMETER, f"LockCount {count} does not fit in {len(body)} bytes")
    elements = tuple(LockElement(*_ELEMENT.unpack_from(body, _HEAD.size + i * _ELEMENT.size)[:3])
                     for i in range(count))
    unlock = elements[0].unlock
    for i, e in enumerate(elements):
        _check(i, e, unlock, count)
    return LockRequest(bytes(file_id), sequence, elements, unlock)


def _check(i: int, e: LockElement, unlock: bool, count: int) -> None:
    if unlock and (e.flags & ~_UNLOCK_ALLOWED or not e.unlock):
        raise LockError(NtStatus.INVALID_PARAMETER, f"element {i} flags 0x{e.flags:x} in an unlock request")
    if not unlock and e.flags not in _LOCK_FLAGS:
        raise LockError(NtStatus.INVALID_PARAMETER, f"element {i} flags 0x{e.flags:x}")
    if not unlock and count > 1 and not e.fail_immediately:
        raise LockError(NtStatus.INVALID_PARAMETER, f"element {i} of {count} may wait (no FAIL_IMMEDIATELY)")
    if e.end > MAX_RANGE_END:
        raise LockError(NtStatus.INVALID_LOCK_RANGE, f"element {i} ends past 2**64")


def encode_lock(file_id: bytes, elements: Sequence[LockElement], sequence: int = 0) -> bytes:
    """A LOCK request body (tests and doctests)."""
    return _HEAD.pack(STRUCTURE_SIZE, len(elements), sequence, file_id) + b"".join(
        _ELEMENT.pack(e.offset, e.length, e.flags, 0) for e in elements)


@dataclass(slots=True)
class LockSequences:
    """One open's LockSequenceArray (MS-SMB2 3.3.1.10, 3.3.5.14): 64 slots of (valid, number).

    Use it only for resilient, durable or persistent opens on dialect 2.1 or later; an index of 0
    or above 64 is not tracked.

    >>> t = LockSequences()
    >>> t.replayed(0x13)            # index 1, number 3: nothing stored yet
    False
    >>> t.record(0x13); t.replayed(0x13), t.replayed(0x14)
    (True, False)
    >>> t.replayed(0x13)            # the mismatch above invalidated slot 1
    False
    """

    slots: list[int | None] = field(default_factory=lambda: [None] * SEQUENCE_SLOTS)

    def replayed(self, sequence: int) -> bool:
        """Whether this LOCK repeats one already done (answer SUCCESS without locking). A slot
        whose stored number does not match is invalidated, as the spec says."""
        index, number = sequence >> 4, sequence & 0xF
        if not 1 <= index <= SEQUENCE_SLOTS:
            return False
        if self.slots[index - 1] == number:
            return True
        self.slots[index - 1] = None
        return False

    def record(self, sequence: int) -> None:
        """Store the number of a LOCK that succeeded."""
        index = sequence >> 4
        if 1 <= index <= SEQUENCE_SLOTS:
            self.slots[index - 1] = sequence & 0xF
