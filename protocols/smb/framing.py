"""SMB Direct TCP transport framing (MS-SMB2 2.1). Sans-IO.

Every SMB message on TCP port 445 travels behind a 4-byte header: one zero byte, then the
length of the message that follows as a 24-bit big-endian number::

    0x00 | length (3 bytes, big-endian) | length bytes of SMB2 message(s)

A frame holds one SMB2 message, a compound of several, an SMB2 TRANSFORM (encrypted)
message, an SMB2 COMPRESSION message, or, as a client's first frame, an SMB1 NEGOTIATE
offering SMB2 dialects. :func:`kind` tells them apart by their 4-byte protocol id.

Public interface: :class:`FrameReader` (bytes in, whole frames out), :func:`frame` (a
message's parts out, with the header in front, data not copied), :func:`kind` and
:class:`FrameKind`, :func:`smb1_dialects` (the dialect strings of an SMB1 NEGOTIATE, for the
multi-protocol negotiate of MS-SMB2 3.3.5.3.1), and the errors :class:`FramingError` > :class:`FrameTooLarge`,
:class:`BadFrame`. A framing error means the stream can no longer be trusted: the server
closes the connection (there is no message id to answer).

>>> r = FrameReader(max_frame=100)
>>> r.feed(b"\\x00\\x00\\x00\\x05\\xfeSMB")
[]
>>> r.feed(b"!\\x00\\x00\\x00\\x01x")
[b'\\xfeSMB!', b'x']
>>> [bytes(p) for p in frame([b"ab", b"c"])]
[b'\\x00\\x00\\x00\\x03', b'ab', b'c']
>>> kind(b"\\xfeSMB@\\x00"), kind(b"\\xffSMBr"), kind(b"\\xfdSMB"), kind(b"junk")
(<FrameKind.SMB2: 1>, <FrameKind.SMB1: 2>, <FrameKind.TRANSFORM: 3>, <FrameKind.UNKNOWN: 0>)
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Final, TypeAlias

Buf: TypeAlias = bytes | bytearray | memoryview

HEADER_LEN: Final = 4
MAX_LENGTH: Final = 0xFF_FFFF                 # what 24 bits can say
DEFAULT_MAX_FRAME: Final = (8 << 20) + (64 << 10)   # an 8 MiB READ/WRITE plus headers and headroom
NBSS_KEEPALIVE: Final = 0x85                  # NetBIOS session keep-alive; some clients send it on 445 too

SMB2_PROTOCOL_ID: Final = b"\xfeSMB"
SMB1_PROTOCOL_ID: Final = b"\xffSMB"
TRANSFORM_PROTOCOL_ID: Final = b"\xfdSMB"
COMPRESSION_PROTOCOL_ID: Final = b"\xfcSMB"

SMB1_HEADER_LEN: Final = 32
SMB1_COM_NEGOTIATE: Final = 0x72
SMB2_002_DIALECT: Final = "SMB 2.002"     # an SMB1 NEGOTIATE offering SMB 2.0.2: answer dialect 0x0202
SMB2_WILDCARD_DIALECT: Final = "SMB 2.???"  # ... offering 2.1 or later: answer 0x02FF, the client renegotiates


class FrameKind(IntEnum):
    """What a frame carries, by its protocol id (its first four bytes)."""

    UNKNOWN = 0
    SMB2 = 1          # 0xFE 'SMB': one SMB2 message or a compound
    SMB1 = 2          # 0xFF 'SMB': an SMB1 NEGOTIATE (multi-protocol negotiate, MS-SMB2 3.3.5.3)
    TRANSFORM = 3     # 0xFD 'SMB': an encrypted message (MS-SMB2 2.2.41)
    COMPRESSION = 4   # 0xFC 'SMB': a compressed message (MS-SMB2 2.2.42)


_KINDS: Final = {
    SMB2_PROTOCOL_ID: FrameKind.SMB2,
    SMB1_PROTOCOL_ID: FrameKind.SMB1,
    TRANSFORM_PROTOCOL_ID: FrameKind.TRANSFORM,
    COMPRESSION_PROTOCOL_ID: FrameKind.COMPRESSION,
}


class FramingError(Exception):
    """The byte stream is not SMB Direct TCP framing; close the connection."""


class FrameTooLarge(FramingError):
    """A frame announces more bytes than the reader's ``max_frame``."""


class BadFrame(FramingError):
    """A frame header whose first byte is neither zero nor a keep-alive."""


def kind(message: Buf) -> FrameKind:
    """Classify a frame's content by its protocol id; UNKNOWN if short or unrecognised.

    >>> kind(b"\\xfcSMB"), kind(b"\\xfeSM")
    (<FrameKind.COMPRESSION: 4>, <FrameKind.UNKNOWN: 0>)
    """
    return _KINDS.get(bytes(message[:4]), FrameKind.UNKNOWN)


class FrameReader:
    """Reassemble Direct TCP frames from a byte stream; a stream of frames out.

    Empty frames are dropped, as are NetBIOS keep-alives (0x85, length 0).

    >>> r = FrameReader(max_frame=8)
    >>> r.feed(b"\\x00\\x00\\x00\\x02hi\\x85\\x00\\x00\\x00\\x00\\x00\\x00\\x01")
    [b'hi']
    >>> r.pending()
    4
    >>> r.feed(b"!")
    [b'!']
    >>> r.feed(b"\\x00\\x00\\x00\\x09")
    Traceback (most recent call last):
    ...
    protocols.smb.framing.FrameTooLarge: frame of 9 bytes exceeds 8
    """

    __slots__ = ("_buf", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if not 0 < max_frame <= MAX_LENGTH:
            raise ValueError(f"max_frame {max_frame} out of range")
        self.max_frame = max_frame
        self._buf = bytearray()

    def pending(self) -> int:
        """Bytes held that do not yet form a complete frame (header included)."""
        return len(self._buf)

    def needed(self) -> int:
        """Bytes still missing to complete the frame in progress (at least 1 when none is).

        A server can size its next read with this.

        >>> r = FrameReader()
        >>> r.feed(b"\\x00\\x00\\x01\\x00abc")
        []
        >>> r.needed()
        253
        """
        buf = self._buf
        if len(buf) < HEADER_LEN:
            return HEADER_LEN - len(buf)
        return max(1, HEADER_LEN + int.from_bytes(buf[1:4], "big") - len(buf))

    def feed(self, data: Buf) -> list[bytes]:
        """Add received bytes; return the frames they complete (contents, without headers).

        FrameTooLarge past ``max_frame``, BadFrame on a header that is not Direct TCP's; after
        either the reader is unusable (the stream has lost its framing).
        """
        buf = self._buf
        buf += data
        out: list[bytes] = []
        start = 0
        end = len(buf)
        with memoryview(buf) as view:
            while end - start >= HEADER_LEN:
                first = buf[start]
                n = int.from_bytes(view[start + 1: start + 4], "big")
                if first != 0:
                    if first == NBSS_KEEPALIVE and n == 0:
                        start += HEADER_LEN
                        continue
                    raise BadFrame(f"frame header starts with 0x{first:02x}, not 0x00")
                if n > self.max_frame:
                    raise FrameTooLarge(f"frame of {n} bytes exceeds {self.max_frame}")
                if end - start < HEADER_LEN + n:
                    break
                if n:
                    out.append(bytes(view[start + HEADER_LEN: start + HEADER_LEN + n]))
                start += HEADER_LEN + n
        if start:
            del buf[:start]
        return out


def frame(parts: Sequence[Buf]) -> list[Buf]:
    """Put a message given as parts behind its Direct TCP header; the parts are not copied.

    ValueError if the parts add up to more than a 24-bit length can say.

    >>> frame([b"x" * 0x1000000])
    Traceback (most recent call last):
    ...
    ValueError: message of 16777216 bytes exceeds the 24-bit frame length
    """
    total = sum(len(p) for p in parts)
    if total > MAX_LENGTH:
        raise ValueError(f"message of {total} bytes exceeds the 24-bit frame length")
    return [total.to_bytes(HEADER_LEN, "big"), *parts]


def smb1_dialects(message: Buf) -> list[str]:
    r"""The dialect strings an SMB1 NEGOTIATE offers (MS-CIFS 2.2.4.52.1), in order.

    The frame must be an SMB1 header (32 bytes, command 0x72), WordCount 0, ByteCount, then
    each dialect as 0x02, ASCII text, 0x00. BadFrame otherwise: the server closes the
    connection (MS-SMB2 3.3.5.3.1 answers only a NEGOTIATE naming an SMB2 dialect).

    >>> neg = b"\xffSMB\x72" + bytes(27) + b"\x00\x17\x00" + b"\x02NT LM 0.12\x00\x02SMB 2.???\x00"
    >>> smb1_dialects(neg)
    ['NT LM 0.12', 'SMB 2.???']
    >>> smb1_dialects(neg[:-1])
    Traceback (most recent call last):
    ...
    protocols.smb.framing.BadFrame: SMB1 NEGOTIATE ByteCount 23 overruns the frame (22 bytes follow)
    """
    m = bytes(message)
    if len(m) < SMB1_HEADER_LEN + 3 or m[:4] != SMB1_PROTOCOL_ID or m[4] != SMB1_COM_NEGOTIATE:
        raise BadFrame("not an SMB1 NEGOTIATE")
    words = m[SMB1_HEADER_LEN]
    at = SMB1_HEADER_LEN + 1 + 2 * words
    if words != 0 or len(m) < at + 2:
        raise BadFrame(f"SMB1 NEGOTIATE with WordCount {words}")
    count = int.from_bytes(m[at: at + 2], "little")
    data = m[at + 2: at + 2 + count]
    if len(data) < count:
        raise BadFrame(f"SMB1 NEGOTIATE ByteCount {count} overruns the frame ({len(data)} bytes follow)")
    out: list[str] = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\0", pos)
        if data[pos] != 0x02 or end < 0:
            raise BadFrame("malformed SMB1 dialect list")
        out.append(data[pos + 1: end].decode("ascii", "replace"))
        pos = end + 1
    return out
