"""The target protocol, version 1: a sans-IO codec (no sockets here).

Each node serves its own disks' targets to the other nodes over TCP
(:mod:`core.data.tserver`); :mod:`core.data.remote` is the client.  This module
only turns values into bytes and bytes into values, so both ends and the
fuzz tests share it.

Frames
------
Every message, either way, is one frame: a 24-byte header, then ``flen``
bytes of op-specific *fields*, then ``plen`` bytes of *payload* (bulk data:
cells written or read, shard lists).  All integers are little-endian::

    offset size  field
    0      4     magic   b"TSTP" (the same in every protocol version)
    4      1     op      see the table below
    5      1     flags   requests 0; answers RESPONSE (0x01), errors RESPONSE|ERROR (0x03)
    6      2     reserved, 0
    8      8     rid     request id, chosen by the client, echoed in the answer
    16     4     flen    fields length, at most MAX_FIELDS (64 KiB)
    20     4     plen    payload length, at most MAX_PAYLOAD (16 MiB)

The fields come first and separately so that a receiver can learn where a
payload goes (which shard, which of the caller's buffers) before it arrives,
and receive it straight into place.  A request may carry a payload only for
WRITE; an answer only for READ and LIST.

Ops (target t: u32, segment s: u64, shard index i: u32; a shard is the file
``(s, i)`` on target ``t``)::

    op  name    request fields                      answer fields / payload
    1   HELLO   u8 n, n x u16 versions, 16B nonce   u16 version, 16B nonce, 32B server proof
    2   AUTH    32B client proof                    -
    3   WRITE   t, s, i, u64 offset, u32 flags      u64 bytes written       (flags: 1 = create)
            payload: the bytes to write at offset (pwrite)
    4   READ    t, s, i, u64 offset, u32 length     payload: the bytes (short at end of file)
            (WRITE and READ: offset + length below MAX_OFFSET = 2**62 - 1, else EINVAL)
    5   SYNC    t, s, i                             -                       (fdatasync)
    6   STAT    t, s, i                             u64 size
    7   DELETE  t, s, i                             -                       (a missing shard is fine)
    8   LIST    t, u64 start_s, u32 start_i, u32 max  u32 count; payload count x (u64 s, u32 i),
                                                    sorted, all >= (start_s, start_i); fewer
                                                    than max means the end
    9   SPACE   t                                   u64 total, u64 free, u64 usage (bytes)
    10  PING    -                                   u32 n, n x u32 target ids served

A WRITE or READ moves at most MAX_PAYLOAD bytes; clients split larger ones.
A connection serves one request at a time and answers in request order; a
client may send the next request before reading an answer, but must read
answers while it sends (or both sides' buffers can fill).  The client in
:mod:`core.data.remote` waits for each answer and pools connections instead.

Connection and authentication
-----------------------------
The client opens with HELLO offering the versions it speaks (highest first)
and a random 16-byte nonce ``cn``.  The server picks the highest version both
speak, makes its own nonce ``sn`` and answers with them and
``HMAC-SHA256(token, b"tessera-target server" || u16 version || cn || sn)``.
The client checks that proof (a server without the cluster token cannot
pose as one) and sends AUTH with ``HMAC-SHA256(token, b"tessera-target
client" || u16 version || cn || sn)``.  The token itself never crosses the
wire.  Any op before a successful AUTH, a bad proof, or no common version is
answered with an error (EACCES / EPROTONOSUPPORT) and the connection closed.
HELLO's layout is frozen across versions; later versions may change the rest.

Errors
------
An error answer has flags 0x03 and fields ``u16 code, u16 len, len bytes of
UTF-8 message`` (message at most MAX_MESSAGE bytes).  Codes are the Linux
errno numbers, fixed on the wire whatever the host: ENOENT 2 (no such shard),
EIO 5, ENODEV 19 (no such target here), EACCES 13 (not authenticated / bad
proof), EINVAL 22 (bad fields), ENOSPC 28, EPROTO 71 (malformed frame),
EMSGSIZE 90 (frame over the limits), ENOTSUP 95 (unknown op),
EPROTONOSUPPORT 93, EBUSY 16 (too many connections); ETIMEDOUT 110 is
reserved (a server that cannot finish a request in time closes instead).
Framing errors (bad magic, flags or reserved bits, a length over the limits, a
payload on an op that takes none, fields of the wrong size) are answered and
then the connection is closed, since the stream can no longer be trusted
(an error for a header that could not be parsed has op 0 and rid 0);
an unknown op with a well-formed frame, and errors from the disk, leave the
connection open (except that a server may close after refusing a WRITE whose
payload it did not read).
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

VERSION: Final = 1
SUPPORTED: Final = (1,)
MAGIC: Final = b"TSTP"
HEADER = struct.Struct("<4sBBHQII")
HEADER_SIZE: Final = HEADER.size  # 24
MAX_FIELDS: Final = 64 * 1024
MAX_PAYLOAD: Final = 16 * 1024 * 1024
MAX_MESSAGE: Final = 1024
MAX_OFFSET: Final = (1 << 62) - 1  # shard offsets (plus length) stay below this: EINVAL otherwise
NONCE_SIZE: Final = 16
PROOF_SIZE: Final = 32
LIST_ENTRY = struct.Struct("<QI")
_B = bytes | bytearray | memoryview

RESPONSE: Final = 0x01
ERROR: Final = 0x02


class Op(IntEnum):
    HELLO = 1
    AUTH = 2
    WRITE = 3
    READ = 4
    SYNC = 5
    STAT = 6
    DELETE = 7
    LIST = 8
    SPACE = 9
    PING = 10


# wire error codes: Linux errno values, fixed whatever the host's errno module says
WIRE_CODES: Final = {
    "ENOENT": 2, "EIO": 5, "EBUSY": 16, "EACCES": 13, "ENODEV": 19, "EINVAL": 22, "ENOSPC": 28,
    "EPROTO": 71, "EMSGSIZE": 90, "EPROTONOSUPPORT": 93, "ENOTSUP": 95, "ETIMEDOUT": 110,
}
_BY_CODE: Final = {v: k for k, v in WIRE_CODES.items()}


def to_wire(err: int) -> int:
    """Host errno -> wire code (unknown ones become EIO)."""
    name = errno.errorcode.get(err, "EIO")
    if name == "EOPNOTSUPP":
        name = "ENOTSUP"
    return WIRE_CODES.get(name, WIRE_CODES["EIO"])


def from_wire(code: int) -> int:
    """Wire code -> host errno (unknown ones become EIO)."""
    return int(getattr(errno, _BY_CODE.get(code, "EIO")))


class ProtocolError(Exception):
    """A malformed or unacceptable frame; ``fatal`` means the connection must close."""

    def __init__(self, code: str, message: str, *, fatal: bool = True) -> None:
        super().__init__(message)
        self.code = WIRE_CODES[code]
        self.fatal = fatal


@dataclass(frozen=True, slots=True)
class Header:
    op: int
    flags: int
    rid: int
    flen: int
    plen: int


def pack_header(op: int, flags: int, rid: int, flen: int, plen: int) -> bytes:
    return HEADER.pack(MAGIC, op, flags, 0, rid, flen, plen)


def unpack_header(buf: _B, *, response: bool) -> Header:
    """Parse and check a header (``response``: which direction we expect)."""
    magic, op, flags, reserved, rid, flen, plen = HEADER.unpack(buf)
    if magic != MAGIC:
        raise ProtocolError("EPROTO", "bad magic")
    want = (RESPONSE, RESPONSE | ERROR) if response else (0,)
    if flags not in want or reserved:
        raise ProtocolError("EPROTO", f"bad flags {flags:#x}/{reserved:#x}")
    if flen > MAX_FIELDS or plen > MAX_PAYLOAD:
        raise ProtocolError("EMSGSIZE", f"frame over the limits ({flen} + {plen} bytes)")
    if plen and not flags & ERROR and op not in (_RESPONSE_PAYLOAD if response else _REQUEST_PAYLOAD):
        raise ProtocolError("EPROTO", f"op {op} carries no payload")
    if plen and flags & ERROR:
        raise ProtocolError("EPROTO", "an error carries no payload")
    return Header(op, flags, rid, flen, plen)


_REQUEST_PAYLOAD: Final = frozenset({Op.WRITE})
_RESPONSE_PAYLOAD: Final = frozenset({Op.READ, Op.LIST})


# -- requests ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Hello:
    versions: tuple[int, ...]
    nonce: bytes


@dataclass(frozen=True, slots=True)
class Auth:
    proof: bytes


@dataclass(frozen=True, slots=True)
class Write:
    target: int
    segment: int
    index: int
    offset: int
    create: bool


@dataclass(frozen=True, slots=True)
class Read:
    target: int
    segment: int
    index: int
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Sync:
    target: int
    segment: int
    index: int


@dataclass(frozen=True, slots=True)
class Stat:
    target: int
    segment: int
    index: int


@dataclass(frozen=True, slots=True)
class Delete:
    target: int
    segment: int
    index: int


@dataclass(frozen=True, slots=True)
class List:
    target: int
    start_segment: int
    start_index: int
    limit: int


@dataclass(frozen=True, slots=True)
class Space:
    target: int


@dataclass(frozen=True, slots=True)
class Ping:
    pass


Request = Hello | Auth | Write | Read | Sync | Stat | Delete | List | Space | Ping

_IO = struct.Struct("<IQIQI")  # WRITE and READ
_SHARD = struct.Struct("<IQI")
_LIST = struct.Struct("<IQII")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_SPACE = struct.Struct("<QQQ")
_HELLO_REPLY = struct.Struct(f"<H{NONCE_SIZE}s{PROOF_SIZE}s")
_ERR = struct.Struct("<HH")
_OPS: Final[dict[type, Op]] = {Hello: Op.HELLO, Auth: Op.AUTH, Write: Op.WRITE, Read: Op.READ, Sync: Op.SYNC,
                               Stat: Op.STAT, Delete: Op.DELETE, List: Op.LIST, Space: Op.SPACE, Ping: Op.PING}


def op_of(req: Request) -> Op:
    return _OPS[type(req)]


def request_fields(req: Request) -> bytes:
    """The fields of a request (everything after the header, before the payload)."""
    if isinstance(req, Hello):
        if not 1 <= len(req.versions) <= 255 or len(req.nonce) != NONCE_SIZE:
            raise ValueError("HELLO needs 1-255 versions and a 16-byte nonce")
        return struct.pack(f"<B{len(req.versions)}H", len(req.versions), *req.versions) + req.nonce
    if isinstance(req, Auth):
        if len(req.proof) != PROOF_SIZE:
            raise ValueError("AUTH needs a 32-byte proof")
        return req.proof
    if isinstance(req, Write):
        return _IO.pack(req.target, req.segment, req.index, req.offset, 1 if req.create else 0)
    if isinstance(req, Read):
        return _IO.pack(req.target, req.segment, req.index, req.offset, req.length)
    if isinstance(req, Sync | Stat | Delete):
        return _SHARD.pack(req.target, req.segment, req.index)
    if isinstance(req, List):
        return _LIST.pack(req.target, req.start_segment, req.start_index, req.limit)
    if isinstance(req, Space):
        return _U32.pack(req.target)
    return b""


def encode_request(rid: int, req: Request, plen: int = 0) -> bytes:
    """Header and fields of a request; a WRITE's ``plen`` payload bytes follow."""
    if plen and not isinstance(req, Write):
        raise ValueError("only WRITE carries a payload")
    if plen > MAX_PAYLOAD:
        raise ValueError("payload over MAX_PAYLOAD")
    f = request_fields(req)
    return pack_header(op_of(req), 0, rid, len(f), plen) + f


def _exact(st: struct.Struct, fields: _B, name: str) -> tuple[int, ...]:
    if len(fields) != st.size:
        raise ProtocolError("EPROTO", f"{name}: {len(fields)} bytes of fields, {st.size} expected")
    return st.unpack(fields)


def decode_request(h: Header, fields: _B) -> Request:
    """Fields -> a request value; ProtocolError if they do not fit the op."""
    op = h.op
    if op == Op.HELLO:
        if len(fields) < 1 + NONCE_SIZE:
            raise ProtocolError("EPROTO", "HELLO too short")
        n = fields[0]
        if n == 0 or len(fields) != 1 + 2 * n + NONCE_SIZE:
            raise ProtocolError("EPROTO", "HELLO: bad version list")
        versions = struct.unpack_from(f"<{n}H", fields, 1)
        return Hello(tuple(versions), bytes(fields[1 + 2 * n:]))
    if op == Op.AUTH:
        if len(fields) != PROOF_SIZE:
            raise ProtocolError("EPROTO", "AUTH: bad proof size")
        return Auth(bytes(fields))
    if op == Op.WRITE:
        t, s, i, off, flags = _exact(_IO, fields, "WRITE")
        if flags & ~1:
            raise ProtocolError("EINVAL", f"WRITE: unknown flags {flags:#x}", fatal=False)
        if off + h.plen > MAX_OFFSET:
            raise ProtocolError("EINVAL", "WRITE beyond the largest shard offset", fatal=False)
        return Write(t, s, i, off, bool(flags & 1))
    if op == Op.READ:
        t, s, i, off, length = _exact(_IO, fields, "READ")
        if length > MAX_PAYLOAD:
            raise ProtocolError("EMSGSIZE", f"READ of {length} bytes over the limit", fatal=False)
        if off + length > MAX_OFFSET:
            raise ProtocolError("EINVAL", "READ beyond the largest shard offset", fatal=False)
        return Read(t, s, i, off, length)
    if op in (Op.SYNC, Op.STAT, Op.DELETE):
        t, s, i = _exact(_SHARD, fields, Op(op).name)
        if op == Op.SYNC:
            return Sync(t, s, i)
        return Stat(t, s, i) if op == Op.STAT else Delete(t, s, i)
    if op == Op.LIST:
        t, s, i, limit = _exact(_LIST, fields, "LIST")
        return List(t, s, i, limit)
    if op == Op.SPACE:
        return Space(*_exact(_U32, fields, "SPACE"))
    if op == Op.PING:
        if fields:
            raise ProtocolError("EPROTO", "PING takes no fields")
        return Ping()
    raise ProtocolError("ENOTSUP", f"unknown op {op}", fatal=False)


# -- answers -----------------------------------------------------------------------------
def encode_response(h_op: int, rid: int, fields: bytes = b"", plen: int = 0) -> bytes:
    """Header and fields of a successful answer; ``plen`` payload bytes follow."""
    return pack_header(h_op, RESPONSE, rid, len(fields), plen) + fields


def encode_error(h_op: int, rid: int, code: int, message: str) -> bytes:
    msg = message.encode("utf-8", "replace")[:MAX_MESSAGE]
    f = _ERR.pack(code, len(msg)) + msg
    return pack_header(h_op & 0xFF, RESPONSE | ERROR, rid, len(f), 0) + f


def decode_error(fields: _B) -> tuple[int, str]:
    if len(fields) < _ERR.size:
        raise ProtocolError("EPROTO", "error answer too short")
    code, n = _ERR.unpack_from(fields)
    if len(fields) != _ERR.size + n:
        raise ProtocolError("EPROTO", "error answer: bad message length")
    return code, bytes(fields[_ERR.size:]).decode("utf-8", "replace")


def hello_reply(version: int, nonce: bytes, proof: bytes) -> bytes:
    return _HELLO_REPLY.pack(version, nonce, proof)


def decode_hello_reply(fields: _B) -> tuple[int, bytes, bytes]:
    v, nonce, proof = _exact(_HELLO_REPLY, fields, "HELLO answer")
    return int(v), bytes(nonce), bytes(proof)  # type: ignore[call-overload]


def u64(x: int) -> bytes:
    return _U64.pack(x)


def decode_u64(fields: _B) -> int:
    return int(_exact(_U64, fields, "u64")[0])


def space_reply(total: int, free: int, usage: int) -> bytes:
    return _SPACE.pack(total, free, usage)


def decode_space(fields: _B) -> tuple[int, int, int]:
    total, free, usage = _exact(_SPACE, fields, "SPACE answer")
    return total, free, usage


def ping_reply(targets: list[int]) -> bytes:
    return struct.pack(f"<I{len(targets)}I", len(targets), *targets)


def decode_ping(fields: _B) -> list[int]:
    if len(fields) < 4:
        raise ProtocolError("EPROTO", "PING answer too short")
    (n,) = _U32.unpack_from(fields)
    if len(fields) != 4 + 4 * n:
        raise ProtocolError("EPROTO", "PING answer: bad length")
    return list(struct.unpack_from(f"<{n}I", fields, 4))


def list_payload(shards: list[tuple[int, int]]) -> tuple[bytes, bytes]:
    """(fields, payload) of a LIST answer."""
    return _U32.pack(len(shards)), b"".join(LIST_ENTRY.pack(s, i) for s, i in shards)


def decode_list(fields: _B, payload: _B) -> list[tuple[int, int]]:
    (n,) = _exact(_U32, fields, "LIST answer")
    if len(payload) != n * LIST_ENTRY.size:
        raise ProtocolError("EPROTO", "LIST answer: payload does not match the count")
    return [(int(s), int(i)) for s, i in LIST_ENTRY.iter_unpack(payload)]


# -- authentication ----------------------------------------------------------------------
def proof(token: bytes, role: str, version: int, client_nonce: bytes, server_nonce: bytes) -> bytes:
    """HMAC-SHA256 proof of the cluster token for ``role`` ("server" or "client")."""
    msg = b"tessera-target " + role.encode() + struct.pack("<H", version) + client_nonce + server_nonce
    return hmac.new(token, msg, hashlib.sha256).digest()


def pick_version(offered: tuple[int, ...]) -> int | None:
    common = set(offered) & set(SUPPORTED)
    return max(common) if common else None


# -- a frame reader for byte streams --------------------------------------------------
@dataclass(slots=True)
class Frame:
    header: Header
    fields: bytes
    payload: bytearray
    deferred: int = 0  # payload bytes left in the stream for the caller to receive (``defer_over``)


class FrameReader:
    """Incremental frame parser that receives straight into place.

    ``buffer()`` is the memoryview the next bytes belong in (header, fields,
    then the frame's preallocated payload buffer); after receiving ``n`` bytes
    into it, ``filled(n)`` returns the frame once it is complete.  ``feed``
    does the same for bytes already in hand (tests, fuzzing).  Raises
    :class:`ProtocolError` on a bad frame.  With ``defer_over``, a payload
    larger than that is left in the stream: the frame comes back after its
    fields with ``deferred`` set, and the caller receives the payload itself.
    """

    def __init__(self, *, response: bool, defer_over: int | None = None) -> None:
        self.response = response
        self.defer_over = defer_over
        self._hdr = bytearray(HEADER_SIZE)
        self._reset()

    def _reset(self) -> None:
        self._stage = 0  # 0 header, 1 fields, 2 payload
        self._buf: bytearray = self._hdr
        self._pos = 0
        self._header: Header | None = None
        self._fields = b""

    def buffer(self) -> memoryview:
        return memoryview(self._buf)[self._pos:]

    def filled(self, n: int) -> Frame | None:
        self._pos += n
        while self._pos == len(self._buf):
            if self._stage == 0:
                self._header = unpack_header(self._hdr, response=self.response)
                self._stage, self._buf, self._pos = 1, bytearray(self._header.flen), 0
            elif self._stage == 1:
                assert self._header is not None
                self._fields = bytes(self._buf)
                if self.defer_over is not None and self._header.plen > self.defer_over:
                    frame = Frame(self._header, self._fields, bytearray(), self._header.plen)
                    self._reset()
                    return frame
                self._stage, self._buf, self._pos = 2, bytearray(self._header.plen), 0
            else:
                assert self._header is not None
                frame = Frame(self._header, self._fields, self._buf)
                self._reset()
                return frame
        return None

    def feed(self, data: bytes) -> list[Frame]:
        out = []
        pos = 0
        while pos < len(data):
            buf = self.buffer()
            n = min(len(buf), len(data) - pos)
            buf[:n] = data[pos: pos + n]
            pos += n
            f = self.filled(n)
            if f is not None:
                out.append(f)
        return out
