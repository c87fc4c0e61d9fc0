"""LOCK request parsing (requests built by impacket and smbprotocol), validity rules and the sequence table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from impacket import smb3structs as s3
from smbprotocol.open import LockFlags as SpFlags
from smbprotocol.open import SMB2LockElement, SMB2LockRequest

from protocols.smb.lockreq import (
    LOCK_RESPONSE,
    LockElement,
    LockError,
    LockFlags,
    LockSequences,
    encode_lock,
    parse_lock,
)
from protocols.smb.status import NtStatus

FID = bytes(range(16))
X, S, U, F = LockFlags.EXCLUSIVE, LockFlags.SHARED, LockFlags.UNLOCK, LockFlags.FAIL_IMMEDIATELY


def _impacket_lock(elements: list[tuple[int, int, int]], sequence: int = 0) -> bytes:
    req = s3.SMB2Lock()
    req["LockCount"] = len(elements)
    req["LockSequence"] = sequence
    req["FileID"] = FID
    locks = b""
    for off, length, flags in elements:
        e = s3.SMB2_LOCK_ELEMENT()
        e["Offset"], e["Length"], e["Flags"] = off, length, flags
        locks += e.getData()
    req["Locks"] = locks
    return bytes(req.getData())


def test_parses_impacket_request() -> None:
    body = _impacket_lock([(0, 100, X | F), (200, 1, S | F)], sequence=(7 << 4) | 9)
    req = parse_lock(body)
    assert req.file_id == FID and not req.unlock and not req.wait
    assert [(e.offset, e.length, e.exclusive, e.shared) for e in req.elements] == [(0, 100, True, False),
                                                                                   (200, 1, False, True)]
    assert (req.sequence_index, req.sequence_number) == (7, 9)
    assert encode_lock(FID, list(req.elements), req.sequence) == body


def test_parses_smbprotocol_unlock() -> None:
    req = SMB2LockRequest()
    req["file_id"] = FID
    el = SMB2LockElement()
    el["offset"], el["length"], el["flags"] = 1 << 40, 5, SpFlags.SMB2_LOCKFLAG_UNLOCK
    req["locks"] = [el]
    parsed = parse_lock(req.pack())
    assert parsed.unlock and not parsed.wait and parsed.elements[0].offset == 1 << 40


def test_single_blocking_lock_may_wait() -> None:
    assert parse_lock(encode_lock(FID, [LockElement(0, 0, S)])).wait


@pytest.mark.parametrize(("elements", "status"), [
    ([], NtStatus.INVALID_PARAMETER),                                           # LockCount 0
    ([(0, 1, U), (5, 1, X | F)], NtStatus.INVALID_PARAMETER),                   # unlock then lock
    ([(0, 1, X | F), (5, 1, U)], NtStatus.INVALID_PARAMETER),                   # lock then unlock
    ([(0, 1, U | X)], NtStatus.INVALID_PARAMETER),
    ([(0, 1, S | X)], NtStatus.INVALID_PARAMETER),
    ([(0, 1, F)], NtStatus.INVALID_PARAMETER),
    ([(0, 1, 0)], NtStatus.INVALID_PARAMETER),
    ([(0, 1, X | 0x100)], NtStatus.INVALID_PARAMETER),
    ([(0, 1, X | F), (5, 1, S)], NtStatus.INVALID_PARAMETER),                   # several, one may wait
    ([(2**64 - 1, 2, X)], NtStatus.INVALID_LOCK_RANGE),
    ([(2**64 - 1, 2**64 - 1, U)], NtStatus.INVALID_LOCK_RANGE),
])
def test_invalid_requests(elements: list[tuple[int, int, int]], status: NtStatus) -> None:
    with pytest.raises(LockError) as e:
        parse_lock(_impacket_lock(elements))
    assert e.value.status == status


def test_valid_edge_cases() -> None:
    assert parse_lock(_impacket_lock([(2**64 - 1, 1, X)])).elements[0].end == 2**64
    assert parse_lock(_impacket_lock([(0, 1, U | F), (9, 9, U)])).unlock      # FAIL_IMMEDIATELY ignored
    assert len(parse_lock(_impacket_lock([(i, 1, S | F) for i in range(300)])).elements) == 300


def test_bad_sizes() -> None:
    body = bytearray(_impacket_lock([(0, 1, X), ]))
    with pytest.raises(LockError):
        parse_lock(body[:40])
    body[2] = 3    # LockCount 3, one element present
    with pytest.raises(LockError):
        parse_lock(body)
    body[2], body[0] = 1, 24   # StructureSize 24
    with pytest.raises(LockError):
        parse_lock(body)


def test_response_body_matches_impacket() -> None:
    assert s3.SMB2Lock_Response().getData() == LOCK_RESPONSE


def test_sequence_table() -> None:
    t = LockSequences()
    assert not t.replayed(0) and not t.replayed(65 << 4 | 1)
    t.record(65 << 4 | 1)
    t.record(0 << 4 | 1)
    assert not t.replayed(65 << 4 | 1) and not t.replayed(1)     # out-of-range indexes are never kept
    t.record(64 << 4 | 15)
    assert t.replayed(64 << 4 | 15) and t.replayed(64 << 4 | 15)
    assert not t.replayed(64 << 4 | 14) and not t.replayed(64 << 4 | 15)   # mismatch invalidated the slot
    t.record(3 << 4 | 0)
    assert t.replayed(3 << 4) and not t.replayed(4 << 4)


@given(st.binary(max_size=200))
def test_fuzz(body: bytes) -> None:
    try:
        req = parse_lock(body)
    except LockError as e:
        assert e.status in (NtStatus.INVALID_PARAMETER, NtStatus.INVALID_LOCK_RANGE)
    else:
        assert req.elements and all(e.unlock == req.unlock for e in req.elements)
