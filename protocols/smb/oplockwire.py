"""OPLOCK_BREAK messages (command 0x12) and the lease create contexts: byte layouts. Sans-IO.

All little-endian, after the 64-byte SMB2 header. The oplock break Notification (MS-SMB2
2.2.23.1), Acknowledgment (2.2.24.1) and Response (2.2.25.1) share one 24-byte layout::

    0 StructureSize (24)   2 OplockLevel   3 Reserved   4 Reserved2 (4)   8 FileId (16)

The Lease Break Notification (2.2.23.2), 44 bytes::

    0 StructureSize (44)   2 NewEpoch (3.x; 0 for 2.1)   4 Flags (ACK_REQUIRED 0x01)
    8 LeaseKey (16)   24 CurrentLeaseState   28 NewLeaseState   32 BreakReason (0)
    36 AccessMaskHint (0)   40 ShareMaskHint (0)

The Lease Break Acknowledgment (2.2.24.2) and Response (2.2.25.2), 36 bytes::

    0 StructureSize (36)   2 Reserved   4 Flags (0)   8 LeaseKey (16)   24 LeaseState
    28 LeaseDuration (8, 0)

A client's OPLOCK_BREAK request is one of the two acknowledgments, told apart by StructureSize
(3.3.5.22): :func:`parse_break_ack`. The lease create context ("RqLs", 2.2.13.2.8/10 and
2.2.14.2.10/11) is 32 bytes in v1 and 52 in v2::

    0 LeaseKey (16)   16 LeaseState   20 LeaseFlags   24 LeaseDuration (8, 0)
    v2: 32 ParentLeaseKey (16)   48 Epoch   50 Reserved

Notifications go out unsolicited: MessageId 0xFFFFFFFFFFFFFFFF (:data:`UNSOLICITED_MESSAGE_ID`),
Command OPLOCK_BREAK, SERVER_TO_REDIR, CreditCharge 0; a lease break carries SessionId 0 and
TreeId 0 and is not signed (3.3.4.7); an oplock break names the open's session and tree
(3.3.4.6). The layouts match impacket's ``SMB2OplockBreakNotification``,
``SMB2LeaseBreakNotification``, ``SMB2LeaseBreakAcknowledgement`` and
``SMB2_CREATE_REQUEST_LEASE(_V2)`` (the tests check it).

Public interface: :func:`encode_oplock_break`, :func:`encode_lease_break`,
:func:`encode_lease_break_response`, :func:`parse_break_ack` with :class:`OplockBreakAck`,
:class:`LeaseBreakAck` and :class:`BreakWireError`, :func:`break_notification` (a
``leases.Break`` to bytes), :func:`parse_lease_context`, :func:`encode_lease_context`.

>>> body = encode_oplock_break(1, bytes(range(16)))
>>> len(body), parse_break_ack(body)
(24, OplockBreakAck(level=1, file_id=b'\\x00\\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08\\t\\n\\x0b\\x0c\\r\\x0e\\x0f'))
>>> ack = encode_lease_break_response(b"K" * 16, 1)      # the ack has the response's layout
>>> parse_break_ack(ack)
LeaseBreakAck(key=b'KKKKKKKKKKKKKKKK', state=1)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from .leases import LEASE_FLAG_PARENT_LEASE_KEY_SET, Break, LeaseId, LeaseRequest
from .status import NtStatus

UNSOLICITED_MESSAGE_ID: Final = 0xFFFF_FFFF_FFFF_FFFF
OPLOCK_BREAK_SIZE: Final = 24
LEASE_BREAK_NOTIFY_SIZE: Final = 44
LEASE_BREAK_ACK_SIZE: Final = 36
NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED: Final = 0x01
LEASE_CONTEXT_V1_SIZE: Final = 32
LEASE_CONTEXT_V2_SIZE: Final = 52

_OPLOCK = struct.Struct("<HBBI16s")
_LEASE_NOTIFY = struct.Struct("<HHI16sIIIII")
_LEASE_ACK = struct.Struct("<HHI16sIQ")
_CTX_V1 = struct.Struct("<16sIIQ")
_CTX_V2 = struct.Struct("<16sIIQ16sHH")


class BreakWireError(ValueError):
    """A malformed OPLOCK_BREAK request or lease context; ``status`` is the NTSTATUS to answer."""

    def __init__(self, message: str, status: NtStatus = NtStatus.INVALID_PARAMETER) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class OplockBreakAck:
    """An Oplock Break Acknowledgment: the level the client lowered to, and the FileId."""

    level: int
    file_id: bytes


@dataclass(frozen=True)
class LeaseBreakAck:
    """A Lease Break Acknowledgment: the lease key and the state the client kept."""

    key: bytes
    state: int


def encode_oplock_break(level: int, file_id: bytes) -> bytes:
    """An Oplock Break Notification (the most the ack may keep) or Response (the level granted).

    >>> encode_oplock_break(0, b"\\xaa" * 16).hex()
    '1800000000000000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
    """
    _check_len(file_id, 16, "FileId")
    return _OPLOCK.pack(OPLOCK_BREAK_SIZE, level, 0, 0, file_id)


def encode_lease_break(key: bytes, current: int, new: int, *, ack_required: bool, epoch: int = 0) -> bytes:
    """A Lease Break Notification (``epoch`` is NewEpoch: 0 for a v1 lease).

    >>> b = encode_lease_break(b"k" * 16, 7, 3, ack_required=True, epoch=2)
    >>> len(b), b[:8].hex(), b[24:32].hex()
    (44, '2c00020001000000', '0700000003000000')
    """
    _check_len(key, 16, "LeaseKey")
    flags = NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED if ack_required else 0
    return _LEASE_NOTIFY.pack(LEASE_BREAK_NOTIFY_SIZE, epoch & 0xFFFF, flags, key, current, new, 0, 0, 0)


def encode_lease_break_response(key: bytes, state: int) -> bytes:
    """A Lease Break Response: the key and the state the acknowledgment settled on."""
    _check_len(key, 16, "LeaseKey")
    return _LEASE_ACK.pack(LEASE_BREAK_ACK_SIZE, 0, 0, key, state, 0)


def break_notification(brk: Break, file_id: bytes | None = None) -> bytes:
    """The notification body for a :class:`~protocols.smb.leases.Break`: a lease break, or an
    oplock break naming ``file_id`` (the FileId of ``brk.opens[0]``, which the server knows).

    >>> from protocols.smb.leases import LeaseId
    >>> len(break_notification(Break(1, LeaseId(b"c" * 16, b"k" * 16), (3,), 7, 3, True, 5)))
    44
    """
    if isinstance(brk.holder, LeaseId):
        return encode_lease_break(brk.holder.key, brk.current, brk.new, ack_required=brk.ack_required,
                                  epoch=brk.epoch)
    if file_id is None:
        raise ValueError("an oplock break needs the open's FileId")
    return encode_oplock_break(brk.new, file_id)


def parse_break_ack(body: bytes | bytearray | memoryview, *, leases: bool = True) -> OplockBreakAck | LeaseBreakAck:
    """An OPLOCK_BREAK request: an oplock ack (StructureSize 24) or, unless ``leases`` is False
    (dialect 2.0.2), a lease ack (36). Anything else raises :class:`BreakWireError`
    (INVALID_PARAMETER).

    >>> parse_break_ack(b"\\x24\\x00" + bytes(34), leases=False)
    Traceback (most recent call last):
    ...
    protocols.smb.oplockwire.BreakWireError: not an oplock break acknowledgment (StructureSize 36)
    """
    b = bytes(body)
    size = int.from_bytes(b[:2], "little") if len(b) >= 2 else -1
    if size == OPLOCK_BREAK_SIZE and len(b) >= OPLOCK_BREAK_SIZE:
        _, level, _, _, file_id = _OPLOCK.unpack_from(b)
        return OplockBreakAck(level, file_id)
    if size == LEASE_BREAK_ACK_SIZE and leases and len(b) >= LEASE_BREAK_ACK_SIZE:
        _, _, _, key, state, _ = _LEASE_ACK.unpack_from(b)
        return LeaseBreakAck(key, state)
    raise BreakWireError(f"not an oplock break acknowledgment (StructureSize {size})")


def parse_lease_context(data: bytes | bytearray | memoryview, client: bytes) -> LeaseRequest:
    """A CREATE's RqLs context data (v1: 32 bytes, v2: 52), for the connection's ClientGuid.
    The v2 ParentLeaseKey counts only with PARENT_LEASE_KEY_SET in its flags.

    >>> r = parse_lease_context(encode_lease_context(b"k" * 16, 3, version=2, epoch=4, parent=b"p" * 16), b"g" * 16)
    >>> r.state, r.version, r.epoch, r.parent
    (3, 2, 4, b'pppppppppppppppp')
    """
    b = bytes(data)
    if len(b) == LEASE_CONTEXT_V1_SIZE:
        key, state, _, _ = _CTX_V1.unpack(b)
        return LeaseRequest(client, key, state)
    if len(b) == LEASE_CONTEXT_V2_SIZE:
        key, state, flags, _, parent, epoch, _ = _CTX_V2.unpack(b)
        return LeaseRequest(client, key, state, 2, epoch,
                            parent if flags & LEASE_FLAG_PARENT_LEASE_KEY_SET else None)
    raise BreakWireError(f"a lease context of {len(b)} bytes")


def encode_lease_context(key: bytes, state: int, flags: int = 0, *, version: int = 1, epoch: int = 0,
                         parent: bytes | None = None) -> bytes:
    """A CREATE response's RqLs context data (the grant: ``leases.Grant`` has state, flags and
    epoch). v2 sets PARENT_LEASE_KEY_SET when ``parent`` is given.

    >>> len(encode_lease_context(b"k" * 16, 7)), len(encode_lease_context(b"k" * 16, 7, version=2))
    (32, 52)
    """
    _check_len(key, 16, "LeaseKey")
    if version < 2:
        return _CTX_V1.pack(key, state, flags, 0)
    if parent is not None:
        _check_len(parent, 16, "ParentLeaseKey")
        flags |= LEASE_FLAG_PARENT_LEASE_KEY_SET
    return _CTX_V2.pack(key, state, flags, 0, parent or bytes(16), epoch & 0xFFFF, 0)


def _check_len(value: bytes, n: int, what: str) -> None:
    if len(value) != n:
        raise ValueError(f"{what} must be {n} bytes, not {len(value)}")
