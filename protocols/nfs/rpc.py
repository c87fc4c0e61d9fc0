"""ONC-RPC version 2 (RFC 5531): call and reply messages, AUTH_SYS, record marking. Sans-IO.

A call on the wire (every item a 4-byte XDR unit unless noted)::

    xid | CALL(0) | rpcvers(2) | prog | vers | proc | cred | verf | procedure arguments...
    cred, verf = opaque_auth { flavor, body<400> }

and a reply::

    xid | REPLY(1) | MSG_ACCEPTED(0) | verf | accept_stat | SUCCESS: results
                                                          | PROG_MISMATCH: low, high
                   | MSG_DENIED(1)   | RPC_MISMATCH: low, high
                                     | AUTH_ERROR: auth_stat

Over TCP each message is a *record* made of fragments, each behind a 4-byte header whose
top bit marks the last fragment and whose low 31 bits give the fragment's length
(:class:`RecordReader`, :func:`frame`); over UDP a datagram is one record.

>>> wire = encode_call(1, 100003, 3, 0, b"")
>>> call = decode_call(wire)
>>> (call.xid, call.prog, call.vers, call.proc, call.auth, len(call.args))
(1, 100003, 3, 0, None, 0)
>>> reply = decode_reply(b"".join(encode_success(call.xid, [b"\\0\\0\\0\\5"])))
>>> (reply.xid, reply.accepted, reply.stat, reply.body)
(1, True, 0, b'\\x00\\x00\\x00\\x05')
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

from .xdr import Packer, Unpacker, XdrError

Buf: TypeAlias = bytes | bytearray | memoryview

RPC_VERSION: Final = 2
CALL: Final = 0
REPLY: Final = 1
MSG_ACCEPTED: Final = 0
MSG_DENIED: Final = 1

# accept_stat
SUCCESS: Final = 0
PROG_UNAVAIL: Final = 1
PROG_MISMATCH: Final = 2
PROC_UNAVAIL: Final = 3
GARBAGE_ARGS: Final = 4
SYSTEM_ERR: Final = 5

# reject_stat
RPC_MISMATCH: Final = 0
AUTH_ERROR: Final = 1

# auth_flavor
AUTH_NONE: Final = 0
AUTH_SYS: Final = 1
AUTH_SHORT: Final = 2
AUTH_DH: Final = 3
RPCSEC_GSS: Final = 6

# auth_stat
AUTH_OK: Final = 0
AUTH_BADCRED: Final = 1
AUTH_REJECTEDCRED: Final = 2
AUTH_BADVERF: Final = 3
AUTH_REJECTEDVERF: Final = 4
AUTH_TOOWEAK: Final = 5
AUTH_INVALIDRESP: Final = 6
AUTH_FAILED: Final = 7

MAX_AUTH_BYTES: Final = 400     # opaque_auth body<400>
MAX_MACHINE_NAME: Final = 255   # authsys_parms machinename<255>
MAX_GIDS: Final = 16            # authsys_parms gids<16>

LAST_FRAGMENT: Final = 0x8000_0000
MAX_FRAGMENT: Final = 0x7FFF_FFFF

_U32 = struct.Struct(">I")
_HEAD = struct.Struct(">IIIII")   # xid, REPLY, reply_stat, verf flavor, verf length (accepted replies)


@dataclass(frozen=True, slots=True)
class AuthSys:
    """RFC 5531 ``authsys_parms``: the caller's claimed identity (unverified)."""

    stamp: int
    machine: str
    uid: int
    gid: int
    gids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Call:
    """A decoded call header; ``args`` is a view of the procedure arguments inside the record."""

    xid: int
    prog: int
    vers: int
    proc: int
    flavor: int              # the credential's flavor (AUTH_NONE or AUTH_SYS once decoded)
    auth: AuthSys | None     # None for AUTH_NONE
    args: memoryview
    header_len: int          # bytes of the record before the arguments


class BadCall(Exception):
    """A record that is not a usable call: ``reply`` is what to send back (None: send nothing)."""

    def __init__(self, reason: str, reply: bytes | None = None) -> None:
        super().__init__(reason)
        self.reply = reply


# ----------------------------------------------------------------------------- AUTH_SYS

def encode_authsys(a: AuthSys) -> bytes:
    """The body of an AUTH_SYS credential.

    >>> encode_authsys(AuthSys(1, "h", 1000, 100, (100, 4))).hex()
    '000000010000000168000000000003e800000064000000020000006400000004'
    """
    p = Packer()
    p.pack_uint(a.stamp)
    p.pack_string(a.machine)
    p.pack_uint(a.uid)
    p.pack_uint(a.gid)
    p.pack_array(a.gids, p.pack_uint)
    return p.data()


def decode_authsys(body: Buf) -> AuthSys:
    """Parse an AUTH_SYS credential body; XdrError if malformed or not exactly consumed."""
    u = Unpacker(body)
    stamp = u.unpack_uint()
    machine = u.unpack_string(MAX_MACHINE_NAME).decode("utf-8", "surrogateescape")
    uid = u.unpack_uint()
    gid = u.unpack_uint()
    gids = tuple(u.unpack_array(u.unpack_uint, MAX_GIDS))
    u.done()
    return AuthSys(stamp, machine, uid, gid, gids)


# ----------------------------------------------------------------------------- replies

def _accepted(xid: int, stat: int) -> bytes:
    return _HEAD.pack(xid, REPLY, MSG_ACCEPTED, AUTH_NONE, 0) + _U32.pack(stat)


def encode_success(xid: int, body: Sequence[Buf] = ()) -> list[Buf]:
    """An accepted SUCCESS reply: a 24-byte header followed by ``body``'s parts (not copied)."""
    return [_accepted(xid, SUCCESS), *body]


def encode_prog_unavail(xid: int) -> bytes:
    return _accepted(xid, PROG_UNAVAIL)


def encode_prog_mismatch(xid: int, low: int, high: int) -> bytes:
    """PROG_MISMATCH: the program is here, in versions ``low``..``high``.

    >>> encode_prog_mismatch(9, 3, 3).hex()
    '0000000900000001000000000000000000000000000000020000000300000003'
    """
    return _accepted(xid, PROG_MISMATCH) + _U32.pack(low) + _U32.pack(high)


def encode_proc_unavail(xid: int) -> bytes:
    return _accepted(xid, PROC_UNAVAIL)


def encode_garbage_args(xid: int) -> bytes:
    return _accepted(xid, GARBAGE_ARGS)


def encode_system_err(xid: int) -> bytes:
    return _accepted(xid, SYSTEM_ERR)


def encode_rpc_mismatch(xid: int, low: int = RPC_VERSION, high: int = RPC_VERSION) -> bytes:
    """MSG_DENIED RPC_MISMATCH: only ONC-RPC ``low``..``high`` is spoken here.

    >>> encode_rpc_mismatch(5).hex()
    '000000050000000100000001000000000000000200000002'
    """
    return struct.pack(">IIIIII", xid, REPLY, MSG_DENIED, RPC_MISMATCH, low, high)


def encode_auth_error(xid: int, stat: int) -> bytes:
    """MSG_DENIED AUTH_ERROR with an ``auth_stat``.

    >>> encode_auth_error(5, AUTH_TOOWEAK).hex()
    '0000000500000001000000010000000100000005'
    """
    return struct.pack(">IIIII", xid, REPLY, MSG_DENIED, AUTH_ERROR, stat)


# ----------------------------------------------------------------------------- calls

def decode_call(record: Buf) -> Call:
    """Decode a call header; raise :class:`BadCall` carrying the right denial (or None to drop).

    A header cut short or a message that is not a call is dropped (as knfsd does);
    an ONC-RPC version other than 2 gets RPC_MISMATCH(2, 2); a credential of another
    flavor, too long, or malformed gets AUTH_ERROR AUTH_BADCRED; a verifier over 400
    bytes gets AUTH_BADVERF.
    """
    fast = _decode_fast(record)
    if fast is not None:
        return fast
    u = Unpacker(record)
    try:
        xid = u.unpack_uint()
        mtype = u.unpack_uint()
    except XdrError as e:
        raise BadCall("record shorter than an RPC header") from e
    if mtype != CALL:
        raise BadCall(f"message type {mtype} is not a call")
    try:
        rpcvers = u.unpack_uint()
        if rpcvers != RPC_VERSION:
            raise BadCall(f"RPC version {rpcvers}", encode_rpc_mismatch(xid))
        prog, vers, proc = u.unpack_uint(), u.unpack_uint(), u.unpack_uint()
        flavor = u.unpack_uint()
        cred_len = u.unpack_uint()
        if cred_len > MAX_AUTH_BYTES:
            raise BadCall(f"credential of {cred_len} bytes", encode_auth_error(xid, AUTH_BADCRED))
        cred = u.unpack_fopaque(cred_len)
        u.unpack_uint()                     # verifier flavor: any (AUTH_NONE in practice)
        verf_len = u.unpack_uint()
        if verf_len > MAX_AUTH_BYTES:
            raise BadCall(f"verifier of {verf_len} bytes", encode_auth_error(xid, AUTH_BADVERF))
        u.unpack_fopaque(verf_len)
    except XdrError as e:
        raise BadCall(f"call header cut short: {e}") from e
    header_len = u.pos
    return Call(xid, prog, vers, proc, flavor, _credential(xid, flavor, cred), u.rest(), header_len)


_CALL_HEAD = struct.Struct(">IIIIIIII")  # xid, mtype, rpcvers, prog, vers, proc, cred flavor, cred length
_CRED_CACHE: dict[bytes, AuthSys] = {}   # a client sends the same credential bytes on every call
_CRED_CACHE_MAX = 4096


def _decode_fast(record: Buf) -> Call | None:
    """The common case in one struct call: a well-formed version-2 call; None sends the record down the
    careful path above (which gives every malformed case its own reply)."""
    n = len(record)
    if n < 40:
        return None
    xid, mtype, rpcvers, prog, vers, proc, flavor, cred_len = _CALL_HEAD.unpack_from(record)
    if mtype != CALL or rpcvers != RPC_VERSION or cred_len > MAX_AUTH_BYTES:
        return None
    vpos = 32 + ((cred_len + 3) & ~3)
    if vpos + 8 > n:
        return None
    verf_len = _U32.unpack_from(record, vpos + 4)[0]
    end = vpos + 8 + ((verf_len + 3) & ~3)
    if verf_len > MAX_AUTH_BYTES or end > n:
        return None
    cred = bytes(record[32: 32 + cred_len])
    view = memoryview(record)
    return Call(xid, prog, vers, proc, flavor, _credential(xid, flavor, cred), view[end:], end)


def _credential(xid: int, flavor: int, cred: bytes) -> AuthSys | None:
    if flavor == AUTH_NONE:
        return None
    if flavor == AUTH_SYS:
        hit = _CRED_CACHE.get(cred)
        if hit is not None:
            return hit
        try:
            auth = decode_authsys(cred)
        except XdrError as e:
            raise BadCall(f"malformed AUTH_SYS credential: {e}", encode_auth_error(xid, AUTH_BADCRED)) from e
        if len(_CRED_CACHE) >= _CRED_CACHE_MAX:
            _CRED_CACHE.clear()
        _CRED_CACHE[cred] = auth
        return auth
    raise BadCall(f"credential flavor {flavor} not supported", encode_auth_error(xid, AUTH_BADCRED))


def encode_call(xid: int, prog: int, vers: int, proc: int, args: Buf | Sequence[Buf] = b"",
                auth: AuthSys | None = None) -> bytes:
    """A complete call message (unframed), with an AUTH_SYS credential or AUTH_NONE.

    >>> encode_call(0x10, 100000, 2, 0).hex()
    '000000100000000000000002000186a0000000020000000000000000000000000000000000000000'
    """
    p = Packer()
    for v in (xid, CALL, RPC_VERSION, prog, vers, proc):
        p.pack_uint(v)
    if auth is None:
        p.pack_uint(AUTH_NONE)
        p.pack_opaque(b"")
    else:
        p.pack_uint(AUTH_SYS)
        p.pack_opaque(encode_authsys(auth))
    p.pack_uint(AUTH_NONE)
    p.pack_opaque(b"")
    if isinstance(args, (bytes, bytearray, memoryview)):
        p.pack_raw(args)
    else:
        for part in args:
            p.pack_raw(part)
    return p.data()


@dataclass(frozen=True, slots=True)
class Reply:
    """A decoded reply. ``stat`` is the accept_stat when ``accepted``, else the reject_stat."""

    xid: int
    accepted: bool
    stat: int
    mismatch: tuple[int, int] | None = None   # PROG_MISMATCH or RPC_MISMATCH range
    auth_stat: int | None = None              # for MSG_DENIED AUTH_ERROR
    body: bytes = b""                          # results of a SUCCESS

    @property
    def ok(self) -> bool:
        return self.accepted and self.stat == SUCCESS


def decode_reply(record: Buf) -> Reply:
    """Decode a reply message; XdrError if it is malformed or not a reply."""
    u = Unpacker(record)
    xid = u.unpack_uint()
    if (mtype := u.unpack_uint()) != REPLY:
        raise XdrError(f"message type {mtype} is not a reply")
    reply_stat = u.unpack_uint()
    if reply_stat == MSG_ACCEPTED:
        u.unpack_uint()
        u.unpack_opaque(MAX_AUTH_BYTES)
        stat = u.unpack_uint()
        if stat == SUCCESS:
            return Reply(xid, True, stat, body=bytes(u.rest()))
        if stat == PROG_MISMATCH:
            rng = (u.unpack_uint(), u.unpack_uint())
            u.done()
            return Reply(xid, True, stat, mismatch=rng)
        u.done()
        return Reply(xid, True, stat)
    if reply_stat == MSG_DENIED:
        stat = u.unpack_uint()
        if stat == RPC_MISMATCH:
            rng = (u.unpack_uint(), u.unpack_uint())
            u.done()
            return Reply(xid, False, stat, mismatch=rng)
        if stat == AUTH_ERROR:
            auth_stat = u.unpack_uint()
            u.done()
            return Reply(xid, False, stat, auth_stat=auth_stat)
        raise XdrError(f"unknown reject_stat {stat}")
    raise XdrError(f"unknown reply_stat {reply_stat}")


# ----------------------------------------------------------------------------- record marking

class RecordTooLarge(Exception):
    """A TCP record over the size limit: the connection is closed."""


class RecordReader:
    """Reassemble TCP records from a byte stream (RFC 5531 section 11).

    >>> r = RecordReader(max_record=100)
    >>> r.feed(bytes.fromhex("00000002") + b"ab" + bytes.fromhex("80000001"))
    []
    >>> r.feed(b"c" + bytes.fromhex("80000000"))
    [b'abc', b'']
    """

    __slots__ = ("_buf", "_frags", "_size", "max_record")

    def __init__(self, max_record: int = 4 << 20) -> None:
        self.max_record = max_record
        self._buf = bytearray()
        self._frags: list[bytes] = []
        self._size = 0

    def pending(self) -> int:
        """Bytes held that do not yet form a complete record."""
        return len(self._buf) + self._size

    def feed(self, data: Buf) -> list[bytes]:
        """Add received bytes; return the records they complete. RecordTooLarge past the limit."""
        buf = self._buf
        buf += data
        out: list[bytes] = []
        while len(buf) >= 4:
            head = _U32.unpack_from(buf)[0]
            n = head & MAX_FRAGMENT
            if self._size + n > self.max_record:
                raise RecordTooLarge(f"record of at least {self._size + n} bytes exceeds {self.max_record}")
            if len(buf) < 4 + n:
                break
            with memoryview(buf) as view:
                frag = bytes(view[4: 4 + n])      # one copy (a bytearray slice would make two)
            del buf[: 4 + n]
            if not head & LAST_FRAGMENT:
                self._frags.append(frag)
                self._size += n
                continue
            if self._frags:
                self._frags.append(frag)
                frag = b"".join(self._frags)
                self._frags, self._size = [], 0
            out.append(frag)
        return out


def frame(parts: Sequence[Buf], max_fragment: int = MAX_FRAGMENT) -> list[Buf]:
    """Record-mark a message given as parts: fragment headers interleaved, data not copied.

    >>> [bytes(p) for p in frame([b"abc", b"de"], max_fragment=4)]
    [b'\\x00\\x00\\x00\\x04', b'abc', b'd', b'\\x80\\x00\\x00\\x01', b'e']
    """
    if not 0 < max_fragment <= MAX_FRAGMENT:
        raise ValueError(f"fragment size {max_fragment} out of range")
    total = sum(len(p) for p in parts)
    if total <= max_fragment:
        return [_U32.pack(LAST_FRAGMENT | total), *parts]
    out: list[Buf] = []
    left = total
    room = 0
    for part in parts:
        view = memoryview(part)
        pos = 0
        while pos < len(view):
            if room == 0:
                room = min(max_fragment, left)
                left -= room
                out.append(_U32.pack((LAST_FRAGMENT if left == 0 else 0) | room))
            take = min(room, len(view) - pos)
            out.append(part if take == len(view) else view[pos: pos + take])
            pos += take
            room -= take
    return out
