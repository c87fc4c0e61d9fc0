"""The SMB2 message header, compound requests and responses, the ERROR body. Sans-IO.

The 64-byte header (MS-SMB2 2.2.1), little-endian, in its sync and async forms::

    0  ProtocolId 0xFE 'SMB'   4  StructureSize (64)   6  CreditCharge
    8  Status (responses) | ChannelSequence, Reserved (3.x requests)
    12 Command                 14 CreditRequest / CreditResponse
    16 Flags                   20 NextCommand          24 MessageId
    32 sync:  Reserved (4) | TreeId (4)
       async: AsyncId (8)                  (Flags has ASYNC_COMMAND)
    40 SessionId               48 Signature (16)       64 the command's body

A frame may hold a *compound* (MS-SMB2 3.2.4.1.4, 3.3.5.2.7): several messages, each but the
last naming in NextCommand the offset from its own header to the next one, 8-byte aligned.
:func:`split_compound` cuts a frame into :class:`Message` values; :func:`compound_response`
does the reverse for the answers. In a *related* chain (RELATED_OPERATIONS on every message
after the first) each message inherits the SessionId and TreeId of the one before it and a
FileId of all 0xFF bytes in its body means the FileId the previous operation used or created;
:class:`ChainState` carries that from one message to the next while the server works
through the compound.

Public interface: :class:`Command`, :class:`Flags`, :class:`Header` (``decode``/``encode``),
:class:`Message`, :func:`split_compound`, :func:`mixed_compound`, :func:`compound_response`,
:class:`ChainState`,
:func:`encode_error` / :func:`decode_error` (the ERROR response body, 2.2.2),
:class:`HeaderError`, which carries the NTSTATUS to answer with, the header to answer when
one could be read, and whether MS-SMB2 wants the connection dropped instead (3.3.5.2.6:
no error response to a message shorter than a header or with an unknown command;
3.3.5.2.7: a compound whose next header is not 8-byte aligned). Credits live in ``credits``.

>>> h = Header(Command.ECHO, message_id=7, credits=1)
>>> wire = h.encode() + b"\\x04\\x00\\x00\\x00"
>>> msgs = split_compound(wire)
>>> (msgs[0].header.command, msgs[0].header.message_id, bytes(msgs[0].body))
(<Command.ECHO: 13>, 7, b'\\x04\\x00\\x00\\x00')
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum, IntFlag
from typing import Final, TypeAlias

from .status import NtStatus, is_error

Buf: TypeAlias = bytes | bytearray | memoryview

PROTOCOL_ID: Final = b"\xfeSMB"
HEADER_SIZE: Final = 64
ALIGN: Final = 8
SIGNATURE_OFFSET: Final = 48
SIGNATURE_SIZE: Final = 16
RELATED_SESSION_ID: Final = 0xFFFF_FFFF_FFFF_FFFF   # what clients put in a related message's SessionId
RELATED_TREE_ID: Final = 0xFFFF_FFFF
RELATED_FILE_ID: Final = b"\xff" * 16               # "the previous operation's FileId"

_SYNC = struct.Struct("<4sHHIHHIIQII Q16s")
_ASYNC = struct.Struct("<4sHHIHHIIQQ Q16s")
_ERROR = struct.Struct("<HBBI")


class Command(IntEnum):
    """SMB2 command codes (MS-SMB2 2.2.1)."""

    NEGOTIATE = 0x00
    SESSION_SETUP = 0x01
    LOGOFF = 0x02
    TREE_CONNECT = 0x03
    TREE_DISCONNECT = 0x04
    CREATE = 0x05
    CLOSE = 0x06
    FLUSH = 0x07
    READ = 0x08
    WRITE = 0x09
    LOCK = 0x0A
    IOCTL = 0x0B
    CANCEL = 0x0C
    ECHO = 0x0D
    QUERY_DIRECTORY = 0x0E
    CHANGE_NOTIFY = 0x0F
    QUERY_INFO = 0x10
    SET_INFO = 0x11
    OPLOCK_BREAK = 0x12


_COMMANDS: Final[dict[int, Command]] = {int(c): c for c in Command}
_STATUSES: Final = frozenset(int(v) for v in NtStatus)


class Flags(IntFlag):
    """SMB2 header flags (MS-SMB2 2.2.1.1)."""

    SERVER_TO_REDIR = 0x0000_0001      # a response
    ASYNC_COMMAND = 0x0000_0002        # the async header form (AsyncId instead of TreeId)
    RELATED_OPERATIONS = 0x0000_0004   # part of a related compound chain
    SIGNED = 0x0000_0008
    PRIORITY_MASK = 0x0000_0070        # 3.1.1: I/O priority 0..7
    DFS_OPERATIONS = 0x1000_0000
    REPLAY_OPERATION = 0x2000_0000     # 3.x: a replayed request (channel failover)


class HeaderError(Exception):
    """A malformed header or compound, or a related message that cannot run.

    The server answers ``status`` (an ERROR response) to ``header``, unless ``disconnect``
    is true, when it drops the connection without an answer. ``disconnect`` is always true
    when ``header`` is None: there is no MessageId to answer.
    """

    def __init__(self, reason: str, status: NtStatus = NtStatus.INVALID_PARAMETER,
                 header: Header | None = None, disconnect: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.header = header
        self.disconnect = disconnect or header is None


@dataclass(slots=True)
class Header:
    """One SMB2 header.

    ``status`` is the 4 bytes at offset 8: a response's NTSTATUS, or in a 3.x request the
    ChannelSequence (low 16 bits, :attr:`channel_sequence`) and a reserved half. ``tree_id``
    and ``reserved`` exist in the sync form, ``async_id`` in the async form (Flags has
    ASYNC_COMMAND); encode writes the form the flags name.

    >>> h = Header(Command.READ, message_id=5, flags=Flags.ASYNC_COMMAND | Flags.SERVER_TO_REDIR, async_id=9)
    >>> h2 = Header.decode(h.encode())
    >>> h2 == h, h2.is_async, h2.is_response, h2.tree_id
    (True, True, True, 0)
    """

    command: Command
    message_id: int = 0
    credit_charge: int = 0
    status: int = 0
    credits: int = 0           # CreditRequest in a request, CreditResponse in a response
    flags: int = 0
    next_command: int = 0
    tree_id: int = 0
    async_id: int = 0
    session_id: int = 0
    signature: bytes = field(default=bytes(SIGNATURE_SIZE))
    reserved: int = 0          # sync form's Reserved (the 2.0.2 ProcessId); servers ignore it

    @property
    def is_async(self) -> bool:
        return bool(self.flags & Flags.ASYNC_COMMAND)

    @property
    def is_response(self) -> bool:
        return bool(self.flags & Flags.SERVER_TO_REDIR)

    @property
    def is_related(self) -> bool:
        return bool(self.flags & Flags.RELATED_OPERATIONS)

    @property
    def is_signed(self) -> bool:
        return bool(self.flags & Flags.SIGNED)

    @property
    def priority(self) -> int:
        """The 3.1.1 I/O priority (0..7) from the flags."""
        return (self.flags & Flags.PRIORITY_MASK) >> 4

    @property
    def channel_sequence(self) -> int:
        """A 3.x request's ChannelSequence (the low half of the Status field)."""
        return self.status & 0xFFFF

    @classmethod
    def decode(cls, buf: Buf, offset: int = 0) -> Header:
        """Read the header at ``offset``; HeaderError(INVALID_PARAMETER) if it is not one.

        Too short, another protocol id or an unknown command: ``disconnect``; a wrong
        StructureSize: answer the header.

        >>> Header.decode(b"\\xffSMB" + bytes(60))
        Traceback (most recent call last):
        ...
        protocols.smb.header.HeaderError: not an SMB2 header (protocol id ff534d42)
        """
        if offset < 0 or len(buf) - offset < HEADER_SIZE:
            raise HeaderError(f"{max(0, len(buf) - offset)} bytes is too short for an SMB2 header")
        (proto, size, charge, status, command, credits, flags, nxt,
         mid, a, b, sid, sig) = _SYNC.unpack_from(buf, offset)
        if proto != PROTOCOL_ID:
            raise HeaderError(f"not an SMB2 header (protocol id {proto.hex()})")
        if command not in _COMMANDS:
            raise HeaderError(f"unknown command 0x{command:04x} (message {mid})")
        h = cls(_COMMANDS[command], mid, charge, status, credits, flags, nxt, 0, 0, sid, sig)
        if flags & Flags.ASYNC_COMMAND:
            h.async_id = a | b << 32
        else:
            h.reserved, h.tree_id = a, b
        if size != HEADER_SIZE:
            raise HeaderError(f"header StructureSize {size}, not 64", header=h)
        return h

    def encode(self) -> bytes:
        """The 64 bytes of this header."""
        if self.flags & Flags.ASYNC_COMMAND:
            return _ASYNC.pack(PROTOCOL_ID, HEADER_SIZE, self.credit_charge, self.status, self.command,
                               self.credits, self.flags, self.next_command, self.message_id, self.async_id,
                               self.session_id, self.signature)
        return _SYNC.pack(PROTOCOL_ID, HEADER_SIZE, self.credit_charge, self.status, self.command,
                          self.credits, self.flags, self.next_command, self.message_id, self.reserved,
                          self.tree_id, self.session_id, self.signature)

    def response(self, status: int = NtStatus.SUCCESS, credits: int = 0) -> Header:
        """The header of the answer to this request: same ids, SERVER_TO_REDIR set, unsigned.

        RELATED_OPERATIONS, ASYNC_COMMAND and the priority carry over; SIGNED is for the
        signer to set.

        >>> r = Header(Command.CREATE, message_id=3, tree_id=1, session_id=2, credits=8).response(credits=4)
        >>> r.is_response, r.message_id, r.tree_id, r.session_id, r.credits, r.status
        (True, 3, 1, 2, 4, 0)
        """
        keep = Flags.RELATED_OPERATIONS | Flags.ASYNC_COMMAND | Flags.PRIORITY_MASK
        return replace(self, status=int(status), credits=credits, flags=(self.flags & keep) | Flags.SERVER_TO_REDIR,
                       next_command=0, signature=bytes(SIGNATURE_SIZE), reserved=0)


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a frame: ``raw`` runs from its header to the next header (padding
    included; what a signature covers), ``body`` is ``raw`` after the 64-byte header."""

    header: Header
    raw: memoryview
    offset: int                  # where ``raw`` starts in the frame

    @property
    def body(self) -> memoryview:
        return self.raw[HEADER_SIZE:]


def split_compound(frame: Buf, max_messages: int = 64) -> list[Message]:
    """Cut a frame's SMB2 content into its messages (one for a plain request).

    Checks each NextCommand: 8-byte aligned (else ``disconnect``, 3.3.5.2.7), at least a
    header long, inside the frame, and no more than ``max_messages`` messages; and each header
    as :meth:`Header.decode` does. HeaderError(INVALID_PARAMETER) otherwise, naming the header
    of the message at fault. The messages before it are sound but never handled: a server
    that answers only the one at fault leaves the others unanswered, so closing the
    connection (as Samba does for any broken compound) is the safe answer to an error
    raised past the first message (``e.header.message_id`` tells).

    >>> two = Header(Command.CREATE, next_command=72).encode() + bytes(8)
    >>> two += Header(Command.CLOSE, flags=Flags.RELATED_OPERATIONS).encode() + bytes(24)
    >>> [(m.header.command.name, m.offset, len(m.body)) for m in split_compound(two)]
    [('CREATE', 0, 8), ('CLOSE', 72, 24)]
    >>> split_compound(Header(Command.ECHO, next_command=68).encode() + bytes(80))
    Traceback (most recent call last):
    ...
    protocols.smb.header.HeaderError: NextCommand 68 at offset 0 is not 8-byte aligned
    """
    view = memoryview(frame).cast("B")
    out: list[Message] = []
    offset = 0
    while True:
        h = Header.decode(view, offset)
        nxt = h.next_command
        if nxt == 0:
            out.append(Message(h, view[offset:], offset))
            return out
        if nxt % ALIGN:
            raise HeaderError(f"NextCommand {nxt} at offset {offset} is not 8-byte aligned", header=h,
                              disconnect=True)
        if nxt < HEADER_SIZE or offset + nxt + HEADER_SIZE > len(view):
            raise HeaderError(f"NextCommand {nxt} at offset {offset} is outside the frame", header=h)
        if len(out) + 1 >= max_messages:
            raise HeaderError(f"more than {max_messages} messages in a compound", header=h)
        out.append(Message(h, view[offset: offset + nxt], offset))
        offset += nxt


def mixed_compound(messages: Sequence[Message]) -> bool:
    """Whether a compound mixes the related and unrelated styles (RELATED_OPERATIONS on some
    but not all messages after the first): MS-SMB2 3.3.5.2.7 says fail each message with
    INVALID_PARAMETER.

    >>> one = Header(Command.ECHO, next_command=72).encode() + bytes(8)
    >>> rel = Header(Command.ECHO, next_command=72, flags=Flags.RELATED_OPERATIONS).encode() + bytes(8)
    >>> end = Header(Command.ECHO).encode()
    >>> mixed_compound(split_compound(one + rel + end)), mixed_compound(split_compound(one + one + end))
    (True, False)
    """
    return len({m.header.is_related for m in messages[1:]}) > 1


def _pad(n: int) -> int:
    return -n % ALIGN


def compound_response(messages: Sequence[tuple[Header, Buf]]) -> list[bytes]:
    """Encode responses (header, body) for one frame: every message but the last padded to
    8 bytes with its NextCommand set. The headers are not changed.

    Returns each message's bytes separately so a signer can sign each (its signature covers
    exactly those bytes, padding included) before they are joined and framed. Works for
    requests too (tests and clients build compounds with it). For a related chain, answer
    each request with ``request.response(...)``: it keeps RELATED_OPERATIONS, so every
    response but the first carries it, as the requests did.

    >>> out = compound_response([(Header(Command.CREATE), b"x" * 89), (Header(Command.CLOSE), b"y" * 60)])
    >>> [len(m) for m in out], [Header.decode(m).next_command for m in out]
    ([160, 124], [160, 0])
    >>> [m.header.command.name for m in split_compound(b"".join(out))]
    ['CREATE', 'CLOSE']
    """
    out: list[bytes] = []
    last = len(messages) - 1
    for i, (h, body) in enumerate(messages):
        size = HEADER_SIZE + len(body)
        pad = 0 if i == last else _pad(size)
        head = replace(h, next_command=0 if i == last else size + pad)
        out.append(b"".join((head.encode(), body, bytes(pad))))
    return out


# ----------------------------------------------------------------------------- related chains

@dataclass(slots=True)
class ChainState:
    """What a related message inherits, carried through one compound (MS-SMB2 3.3.5.2.7.2).

    For each message: :meth:`enter` gives the SessionId and TreeId to use (a related one's
    are the previous message's, whatever its header says), :meth:`file_id` resolves the
    FileId in its body, and after handling it :meth:`leave` records the outcome and the
    FileId the message used or created. A related message naming the all-0xFF FileId gets
    the previous one's; if there is none because the message that should have made it failed
    (a CREATE), it fails with that status, otherwise with INVALID_HANDLE. A related first
    message is INVALID_PARAMETER. A failed SESSION_SETUP or TREE_CONNECT earlier in the chain
    is the server's to check (their ids stay 0 here, which names no session or tree).

    >>> c = ChainState()
    >>> c.enter(Header(Command.CREATE, session_id=5, tree_id=9))
    (5, 9)
    >>> c.leave(NtStatus.SUCCESS, b"F" * 16)
    >>> rel = Header(Command.READ, flags=Flags.RELATED_OPERATIONS, session_id=RELATED_SESSION_ID,
    ...              tree_id=RELATED_TREE_ID)
    >>> c.enter(rel), c.file_id(RELATED_FILE_ID)
    ((5, 9), b'FFFFFFFFFFFFFFFF')
    >>> c.leave(NtStatus.END_OF_FILE, b"F" * 16)    # the READ failed, its FileId is still good
    >>> c.enter(rel), c.file_id(RELATED_FILE_ID)
    ((5, 9), b'FFFFFFFFFFFFFFFF')
    """

    session_id: int = 0
    tree_id: int = 0
    last_file_id: bytes | None = None
    file_failure: int | None = None     # why there is no FileId to inherit: a failed CREATE's status
    related: bool = False
    started: bool = False
    current: Header | None = None       # the message being handled (named by errors)

    def enter(self, h: Header) -> tuple[int, int]:
        """Start on message ``h``: its effective (SessionId, TreeId).

        HeaderError(INVALID_PARAMETER) if the first message of a compound is marked related.
        """
        first = not self.started
        self.started, self.current = True, h
        self.related = h.is_related
        if self.related:
            if first:
                raise HeaderError("the first message of a compound is marked related", header=h)
            return self.session_id, self.tree_id
        self.session_id, self.tree_id = h.session_id, h.tree_id
        self.last_file_id, self.file_failure = None, None
        return self.session_id, self.tree_id

    def file_id(self, file_id: bytes) -> bytes:
        """The FileId a message means: the previous one's for 16 0xFF bytes in a related
        message, else its own. HeaderError (the failed CREATE's status, or INVALID_HANDLE)
        when there is nothing to inherit."""
        if file_id != RELATED_FILE_ID or not self.related:
            return file_id
        if self.last_file_id is not None:
            return self.last_file_id
        if self.file_failure is not None:
            status = NtStatus(self.file_failure) if self.file_failure in _STATUSES else NtStatus.INVALID_HANDLE
            raise HeaderError("the operation that should have made the FileId failed", status, self.current)
        raise HeaderError("a related message names the previous FileId, but there is none",
                          NtStatus.INVALID_HANDLE, self.current)

    def set_ids(self, session_id: int | None = None, tree_id: int | None = None) -> None:
        """Record ids a SESSION_SETUP or TREE_CONNECT in the chain created."""
        if session_id is not None:
            self.session_id = session_id
        if tree_id is not None:
            self.tree_id = tree_id

    def leave(self, status: int, file_id: bytes | None = None) -> None:
        """Record a handled message: its status and the FileId it used or created, also when
        it failed (None when it has none, e.g. a failed CREATE: later related messages naming
        the previous FileId then fail with ``status``)."""
        if file_id is not None:
            self.last_file_id, self.file_failure = file_id, None
        elif is_error(status):
            self.last_file_id, self.file_failure = None, status


# ----------------------------------------------------------------------------- ERROR body

def encode_error(data: Buf = b"", context_count: int = 0) -> bytes:
    """The ERROR response body (MS-SMB2 2.2.2): StructureSize 9, ErrorContextCount,
    Reserved, ByteCount, ErrorData. With no data, ErrorData is one zero byte (the 9th).

    >>> encode_error().hex()
    '090000000000000000'
    >>> encode_error(b"ab", 1).hex()
    '09000100020000006162'
    """
    return _ERROR.pack(9, context_count, 0, len(data)) + (bytes(data) if data else b"\0")


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """A decoded ERROR response body."""

    context_count: int
    data: bytes


def decode_error(body: Buf) -> ErrorBody:
    """Read an ERROR response body; HeaderError(INVALID_PARAMETER) if malformed.

    >>> decode_error(encode_error(b"xyz", 2))
    ErrorBody(context_count=2, data=b'xyz')
    """
    if len(body) < _ERROR.size:
        raise HeaderError(f"{len(body)} bytes is too short for an ERROR body")
    size, count, _, n = _ERROR.unpack_from(body)
    if size != 9 or len(body) < _ERROR.size + n:
        raise HeaderError(f"ERROR body StructureSize {size}, ByteCount {n}, length {len(body)}")
    return ErrorBody(count, bytes(body[_ERROR.size: _ERROR.size + n]))
