"""OPLOCK_BREAK and lease context layouts, checked against impacket's structures, and fuzzed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from impacket import smb3structs as s3

from protocols.smb.leases import Break, LeaseId
from protocols.smb.oplockwire import (
    BreakWireError,
    LeaseBreakAck,
    OplockBreakAck,
    break_notification,
    encode_lease_break,
    encode_lease_break_response,
    encode_lease_context,
    encode_oplock_break,
    parse_break_ack,
    parse_lease_context,
)
from protocols.smb.status import NtStatus

FID = bytes(range(1, 9)) + bytes(range(0x81, 0x89))     # Persistent, Volatile
KEY = bytes(range(0x40, 0x50))


def test_oplock_break_matches_impacket() -> None:
    ours = encode_oplock_break(1, FID)
    theirs = s3.SMB2OplockBreakNotification()
    theirs["OplockLevel"] = 1
    fid = s3.SMB2_FILEID()
    fid["Persistent"] = int.from_bytes(FID[:8], "little")
    fid["Volatile"] = int.from_bytes(FID[8:], "little")
    theirs["FileID"] = fid
    assert ours == theirs.getData() and len(ours) == 24
    parsed = s3.SMB2OplockBreakAcknowledgment(ours)
    assert parsed["StructureSize"] == 24 and parsed["OplockLevel"] == 1
    assert parse_break_ack(ours) == OplockBreakAck(1, FID)


def test_lease_break_notification_matches_impacket() -> None:
    ours = encode_lease_break(KEY, 7, 3, ack_required=True, epoch=0x1234)
    theirs = s3.SMB2LeaseBreakNotification()
    theirs["NewEpoch"] = 0x1234
    theirs["Flags"] = s3.SMB2_NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED
    theirs["LeaseKey"] = KEY
    theirs["CurrentLeaseState"] = 7
    theirs["NewLeaseState"] = 3
    assert ours == theirs.getData() and len(ours) == 44
    assert encode_lease_break(KEY, 1, 0, ack_required=False)[4:8] == bytes(4)


def test_lease_break_ack_and_response_match_impacket() -> None:
    ack = s3.SMB2LeaseBreakAcknowledgement()
    ack["LeaseKey"] = KEY
    ack["LeaseState"] = 3
    assert parse_break_ack(ack.getData()) == LeaseBreakAck(KEY, 3)
    assert encode_lease_break_response(KEY, 3) == ack.getData() and len(ack.getData()) == 36


def test_lease_contexts_match_impacket() -> None:
    v1 = s3.SMB2_CREATE_REQUEST_LEASE()
    v1["LeaseKey"], v1["LeaseState"] = KEY, 5
    assert encode_lease_context(KEY, 5) == v1.getData()
    r = parse_lease_context(v1.getData(), b"g" * 16)
    assert (r.id, r.state, r.version, r.epoch, r.parent) == (LeaseId(b"g" * 16, KEY), 5, 1, 0, None)
    v2 = s3.SMB2_CREATE_REQUEST_LEASE_V2()
    v2["LeaseKey"], v2["LeaseState"], v2["Epoch"] = KEY, 3, 9
    v2["Flags"], v2["ParentLeaseKey"] = s3.SMB2_LEASE_FLAG_PARENT_LEASE_KEY_SET, b"P" * 16
    assert encode_lease_context(KEY, 3, version=2, epoch=9, parent=b"P" * 16) == v2.getData()
    r = parse_lease_context(v2.getData(), b"g" * 16)
    assert (r.state, r.version, r.epoch, r.parent) == (3, 2, 9, b"P" * 16)
    v2["Flags"] = 0                                  # a parent key without the flag does not count
    assert parse_lease_context(v2.getData(), b"g" * 16).parent is None
    with pytest.raises(BreakWireError):
        parse_lease_context(bytes(40), b"g" * 16)


def test_break_notification_from_a_table_break() -> None:
    lease_brk = Break(1, LeaseId(b"c" * 16, KEY), (4, 5), 7, 3, True, 2)
    assert break_notification(lease_brk) == encode_lease_break(KEY, 7, 3, ack_required=True, epoch=2)
    oplock_brk = Break(1, 4, (4,), 9, 1, True)
    assert break_notification(oplock_brk, FID) == encode_oplock_break(1, FID)
    with pytest.raises(ValueError):
        break_notification(oplock_brk)


def test_ack_kinds_by_structure_size() -> None:
    lease_ack = encode_lease_break_response(KEY, 1)
    with pytest.raises(BreakWireError) as e:
        parse_break_ack(lease_ack, leases=False)        # 2.0.2 has no leases
    assert e.value.status is NtStatus.INVALID_PARAMETER
    for bad in (b"", b"\x18", encode_oplock_break(0, FID)[:23], lease_ack[:35], b"\x2c\x00" + bytes(42)):
        with pytest.raises(BreakWireError):
            parse_break_ack(bad)


@given(st.binary(max_size=64))
def test_parse_break_ack_never_crashes(data: bytes) -> None:
    try:
        got = parse_break_ack(data)
    except BreakWireError:
        return
    size = int.from_bytes(data[:2], "little")
    if isinstance(got, OplockBreakAck):
        assert size == 24
        assert encode_oplock_break(got.level, got.file_id) == data[:3] + bytes(5) + data[8:24]
    else:
        assert size == 36 and (got.key, got.state) == (data[8:24], int.from_bytes(data[24:28], "little"))
