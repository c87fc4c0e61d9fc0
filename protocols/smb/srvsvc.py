"""The ``srvsvc`` named pipe in IPC$: DCE/RPC (C706 + MS-RPCE) carrying MS-SRVS share listing. Sans-IO.

``smbclient -L``, ``net view`` and Windows Explorer list a server's shares by opening ``srvsvc`` in
IPC$, writing a DCE/RPC BIND and then REQUEST PDUs (SMB2 WRITE + READ, or one IOCTL
FSCTL_PIPE_TRANSCEIVE per call) and reading the answers. A PDU, little-endian::

    0  rpc_vers 5   1 rpc_vers_minor 0   2 PTYPE   3 pfc_flags   4 drep (0x10 0 0 0)
    8  frag_length  10 auth_length       12 call_id              16 body

    BIND / ALTER_CONTEXT body: max_xmit_frag u16, max_recv_frag u16, assoc_group u32, n_ctx u8, pad(3),
        per context: p_cont_id u16, n_transfer u8, pad u8, abstract syntax (uuid 16, version u32),
        n_transfer transfer syntaxes (20 bytes each)
    BIND_ACK body: max_xmit_frag, max_recv_frag, assoc_group, sec_addr (u16 length incl. NUL, ASCII),
        pad to 4, n_results u8, pad(3), per context: result u16, reason u16, transfer syntax (20)
    REQUEST body: alloc_hint u32, p_cont_id u16, opnum u16, [object uuid 16 if PFC_OBJECT_UUID], stub
    RESPONSE body: alloc_hint u32, p_cont_id u16, cancel_count u8, reserved u8, stub
    FAULT body: alloc_hint u32, p_cont_id u16, cancel_count u8, reserved u8, status u32, reserved u32

A BIND is accepted for the srvsvc interface 4b324fc8-1670-01d3-1278-5a47bf6ee188 v3.0 with the
NDR transfer syntax 8a885d04-1ceb-11c9-9fe8-08002b104860 v2. Any other transfer syntax (NDR64, as
Windows clients offer in a second context) is answered provider_rejection /
proposed_transfer_syntaxes_not_supported, a bind-time feature negotiation context
(6cb71c2c-9812-4540-...) negotiate_ack with no features, another interface
abstract_syntax_not_supported: what Windows answers. A BIND carrying DCE/RPC authentication
gets a BIND_NAK (the pipe is already inside an authenticated SMB session).

Requests may come in several fragments (PFC_FIRST_FRAG .. PFC_LAST_FRAG; the stub is put back
together, up to :data:`MAX_STUB`) and responses go out in fragments no longer than the
client's max_recv_frag from its BIND (at most :data:`MAX_FRAG`); every fragment's stub but the
last is a multiple of 8 bytes. Each fragment is one message of the message-mode pipe:
:meth:`SrvsvcPipe.read` returns bytes of one message at most and says whether that message goes
on (the SMB server then answers BUFFER_OVERFLOW and the client reads the rest).

Operations (MS-SRVS 3.1.4; NDR through impacket's ``srvs`` structures): 15 NetrShareEnum (levels
0, 1, 2, 501, 502; every share in one answer: PreferedMaximumLength is ignored, as the whole list
is small), 36 NetrShareEnumSticky (the same without the ``$`` shares, as Samba answers it), 16
NetrShareGetInfo (0, 1, 2, 501, 502, 1005; an unknown share is NERR_NetNameNotFound), 21
NetrServerGetInfo (100, 101). Level 502 carries no security descriptor (NULL); Windows would
refuse it to non-administrators, Samba answers it (it is ``rpcclient``'s default level). Another
level is ERROR_INVALID_LEVEL; another opnum a FAULT nca_op_rng_error; a stub that does not decode
a FAULT nca_s_fault_ndr (RPC_X_BAD_STUB_DATA); a REQUEST before a BIND, or naming an unbound
context, a FAULT nca_unk_if.

Public interface: :class:`ShareInfo`, :class:`SrvsvcPipe` (``write``/``read``/``transact``),
:class:`PipeRead`, :class:`PipeError` (a byte stream that is not DCE/RPC; ``.status`` is the
NTSTATUS for the WRITE or IOCTL), :data:`PIPE_NAME`, :data:`STYPE_DISKTREE`, :data:`STYPE_IPC`.
The caller passes only the shares the user may see (browseable ones).

>>> pipe = SrvsvcPipe([ShareInfo("data", STYPE_DISKTREE, "studio files", "C:\\\\data")], "TESSERA")
>>> ack = pipe.transact(bind_pdu(call_id=1))
>>> ack[2], parse_bind_ack(ack).results            # BIND_ACK, context 0 accepted
(12, [(0, 0)])
"""

from __future__ import annotations

import struct
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from impacket.dcerpc.v5 import srvs  # type: ignore[import-untyped]
from impacket.dcerpc.v5.dtypes import NULL  # type: ignore[import-untyped]

from .status import NtStatus

PIPE_NAME: Final = "srvsvc"
SEC_ADDR: Final = b"\\PIPE\\srvsvc\0"

STYPE_DISKTREE: Final = 0x00000000
STYPE_IPC: Final = 0x80000003   # STYPE_IPC | STYPE_SPECIAL, as Windows reports IPC$

# PDU types and flags (C706 12.6)
REQUEST, RESPONSE, FAULT, BIND, BIND_ACK, BIND_NAK, ALTER_CONTEXT, ALTER_CONTEXT_RESP = 0, 2, 3, 11, 12, 13, 14, 15
PFC_FIRST_FRAG: Final = 0x01
PFC_LAST_FRAG: Final = 0x02
PFC_DID_NOT_EXECUTE: Final = 0x20
PFC_OBJECT_UUID: Final = 0x80

# fault statuses (MS-RPCE 2.2.2.11 / C706 appendix E)
NCA_OP_RNG_ERROR: Final = 0x1C010002
NCA_UNK_IF: Final = 0x1C010003
NCA_PROTO_ERROR: Final = 0x1C01000B
NCA_S_FAULT_NDR: Final = 0x000006F7
NCA_S_FAULT_REMOTE_NO_MEMORY: Final = 0x1C000011

# Win32 errors in MS-SRVS answers
ERROR_INVALID_LEVEL: Final = 124
NERR_NET_NAME_NOT_FOUND: Final = 2310

MAX_FRAG: Final = 4280            # what Windows and Samba offer
MIN_FRAG: Final = 64              # floor on a client's max_recv_frag (C706 says >= 1432; we are lenient)
MAX_STUB: Final = 256 * 1024      # a multi-fragment request's stub, put back together
MAX_INPUT: Final = 256 * 1024     # bytes written but not yet a whole PDU


def syntax(uuid_str: str, major: int, minor: int = 0) -> bytes:
    """A 20-byte presentation syntax id: the UUID in its little-endian wire form and the version.

    >>> syntax("8a885d04-1ceb-11c9-9fe8-08002b104860", 2).hex()
    '045d888aeb1cc9119fe808002b10486002000000'
    """
    return uuid.UUID(uuid_str).bytes_le + struct.pack("<HH", major, minor)


SRVSVC_SYNTAX: Final = syntax("4b324fc8-1670-01d3-1278-5a47bf6ee188", 3, 0)
NDR_SYNTAX: Final = syntax("8a885d04-1ceb-11c9-9fe8-08002b104860", 2, 0)
NDR64_SYNTAX: Final = syntax("71710533-beba-4937-8319-b5dbef9ccc36", 1, 0)
_BTFN_PREFIX: Final = uuid.UUID("6cb71c2c-9812-4540-0000-000000000000").bytes_le[:8]

_HDR = struct.Struct("<BBBB4sHHI")          # 16 bytes
_REQ = struct.Struct("<IHH")                # alloc_hint, p_cont_id, opnum
_RESP = struct.Struct("<IHBB")              # alloc_hint, p_cont_id, cancel_count, reserved
_BIND = struct.Struct("<HHIB3x")            # max_xmit, max_recv, assoc_group, n_ctx
_CTX = struct.Struct("<HBx20s")             # p_cont_id, n_transfer, abstract syntax
_RESULT = struct.Struct("<HH20s")
_DREP: Final = b"\x10\x00\x00\x00"
RESP_HEADER: Final = _HDR.size + _RESP.size  # 24

# bind results and reasons (C706 12.6.3.1, MS-RPCE 2.2.2.4)
ACCEPTANCE, USER_REJECTION, PROVIDER_REJECTION, NEGOTIATE_ACK = 0, 1, 2, 3
REASON_ABSTRACT_SYNTAX, REASON_TRANSFER_SYNTAXES = 1, 2
NAK_AUTH_TYPE_NOT_RECOGNIZED: Final = 8


class PipeError(Exception):
    """Bytes written to the pipe that are not DCE/RPC PDUs; ``status`` answers the WRITE/IOCTL."""

    def __init__(self, reason: str, status: NtStatus = NtStatus.INVALID_PARAMETER) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class ShareInfo:
    """One share as MS-SRVS describes it. ``flags`` are the SHI1005 flags (e.g. 0x8000 encrypt data)."""

    name: str
    type: int = STYPE_DISKTREE
    remark: str = ""
    path: str = ""
    flags: int = 0


@dataclass(frozen=True, slots=True)
class PipeRead:
    """What a READ of the pipe returns: ``more`` when the message goes on (BUFFER_OVERFLOW)."""

    data: bytes
    more: bool


# ----------------------------------------------------------------------------- PDU building

def _pdu(ptype: int, flags: int, call_id: int, body: bytes) -> bytes:
    return _HDR.pack(5, 0, ptype, flags, _DREP, _HDR.size + len(body), 0, call_id) + body


def fault_pdu(call_id: int, status: int, context_id: int = 0, flags: int = 0) -> bytes:
    """A 32-byte FAULT PDU.

    >>> fault_pdu(7, NCA_OP_RNG_ERROR).hex()
    '0500030310000000200000000700000020000000000000000200011c00000000'
    """
    return _pdu(FAULT, PFC_FIRST_FRAG | PFC_LAST_FRAG | flags, call_id,
                _RESP.pack(32, context_id, 0, 0) + struct.pack("<II", status, 0))


def response_pdus(call_id: int, context_id: int, stub: bytes, max_frag: int) -> list[bytes]:
    """``stub`` as RESPONSE fragments of at most ``max_frag`` bytes, each one whole but the last
    carrying a multiple of 8 stub bytes, alloc_hint the stub bytes left from there on.

    >>> [len(f) for f in response_pdus(1, 0, bytes(100), 64)]
    [64, 64, 44]
    """
    room = max(8, (max_frag - RESP_HEADER) // 8 * 8)
    out: list[bytes] = []
    pos = 0
    while True:
        piece = stub[pos: pos + room]
        flags = (PFC_FIRST_FRAG if pos == 0 else 0) | (PFC_LAST_FRAG if pos + room >= len(stub) else 0)
        out.append(_pdu(RESPONSE, flags, call_id, _RESP.pack(len(stub) - pos, context_id, 0, 0) + piece))
        pos += room
        if pos >= len(stub):
            return out


def bind_pdu(call_id: int = 1, contexts: Sequence[tuple[int, bytes, Sequence[bytes]]] | None = None,
             max_xmit: int = MAX_FRAG, max_recv: int = MAX_FRAG, ptype: int = BIND) -> bytes:
    """A client's BIND (tests and doctests): ``contexts`` are (id, abstract syntax, transfer syntaxes);
    by default one context 0 for srvsvc over NDR."""
    ctxs = contexts if contexts is not None else [(0, SRVSVC_SYNTAX, [NDR_SYNTAX])]
    body = _BIND.pack(max_xmit, max_recv, 0, len(ctxs))
    for cid, abstract, transfers in ctxs:
        body += _CTX.pack(cid, len(transfers), abstract) + b"".join(transfers)
    return _pdu(ptype, PFC_FIRST_FRAG | PFC_LAST_FRAG, call_id, body)


@dataclass(frozen=True, slots=True)
class BindAck:
    max_xmit: int
    max_recv: int
    sec_addr: bytes
    results: list[tuple[int, int]]      # (result, reason) per context


def parse_bind_ack(pdu: bytes) -> BindAck:
    """Read a BIND_ACK (tests and doctests)."""
    max_xmit, max_recv, _ = struct.unpack_from("<HHI", pdu, 16)
    (n,) = struct.unpack_from("<H", pdu, 24)
    sec_addr = pdu[26: 26 + n]
    pos = 26 + n + (-(26 + n) % 4)
    count = pdu[pos]
    results = [_RESULT.unpack_from(pdu, pos + 4 + 24 * i)[:2] for i in range(count)]
    return BindAck(max_xmit, max_recv, sec_addr, results)


# ----------------------------------------------------------------------------- the pipe

@dataclass(slots=True)
class _Call:
    call_id: int
    context_id: int
    opnum: int
    stub: bytearray


class SrvsvcPipe:
    """One open of ``srvsvc``: feed it what the client writes, hand back what it reads.

    ``write(data)`` takes the bytes of a WRITE (or an IOCTL's input); whole PDUs are handled at
    once and their answers queued as messages. ``read(n)`` returns up to ``n`` bytes of the
    next message. ``transact(data)`` is both with no size limit: the whole answer.
    """

    def __init__(self, shares: Sequence[ShareInfo], server_name: str, comment: str = "Tessera") -> None:
        self.shares = list(shares)
        self.server_name = server_name
        self.comment = comment
        self.max_xmit = MAX_FRAG          # our fragments' limit, set by the client's BIND
        self._max_recv = MAX_FRAG
        self._contexts: set[int] = set()
        self._input = bytearray()
        self._call: _Call | None = None
        self._out: deque[bytes] = deque()
        self._ops: dict[int, Callable[[bytes], bytes]] = {
            15: self._share_enum, 16: self._share_get_info, 21: self._server_get_info, 36: self._share_enum_sticky}

    @property
    def bound(self) -> bool:
        return bool(self._contexts)

    @property
    def pending(self) -> int:
        """Bytes queued for the client to read."""
        return sum(len(m) for m in self._out)

    def write(self, data: bytes) -> None:
        """Take written bytes; PipeError when they are not DCE/RPC (the pipe is then unusable)."""
        self._input += data
        if len(self._input) > MAX_INPUT:
            raise PipeError(f"more than {MAX_INPUT} bytes buffered without a whole PDU")
        while len(self._input) >= _HDR.size:
            vers, minor, ptype, flags, drep, frag_len, auth_len, call_id = _HDR.unpack_from(self._input)
            if vers != 5 or minor != 0 or drep[0] & 0xF0 != 0x10 or drep[1] != 0:
                raise PipeError(f"not a little-endian DCE/RPC v5.0 PDU (version {vers}.{minor}, drep {drep.hex()})")
            if frag_len < _HDR.size or auth_len > frag_len - _HDR.size:
                raise PipeError(f"frag_length {frag_len}, auth_length {auth_len}")
            if len(self._input) < frag_len:
                return
            pdu = bytes(self._input[:frag_len])
            del self._input[:frag_len]
            self._handle(pdu, ptype, flags, auth_len, call_id)

    def read(self, max_len: int) -> PipeRead:
        """Up to ``max_len`` bytes of the next message; ``more`` if that message has bytes left.

        >>> p = SrvsvcPipe([], "S"); p.write(bind_pdu())
        >>> r = p.read(10); (len(r.data), r.more, p.read(1 << 16).more, p.read(10).data)
        (10, True, False, b'')
        """
        if not self._out:
            return PipeRead(b"", False)
        msg = self._out.popleft()
        if len(msg) > max_len:
            self._out.appendleft(msg[max_len:])
            return PipeRead(msg[:max_len], True)
        return PipeRead(msg, False)

    def transact(self, request: bytes) -> bytes:
        """Write ``request`` and return everything queued for reading."""
        self.write(request)
        out = b"".join(self._out)
        self._out.clear()
        return out

    # ------------------------------------------------------------------ PDU handlers

    def _handle(self, pdu: bytes, ptype: int, flags: int, auth_len: int, call_id: int) -> None:
        if ptype in (BIND, ALTER_CONTEXT):
            self._out.append(self._bind(pdu, ptype, auth_len, call_id))
        elif ptype == REQUEST:
            self._request(pdu, flags, auth_len, call_id)
        else:   # AUTH3, ORPHANED, CO_CANCEL, SHUTDOWN, a server PDU...: nothing to answer or a protocol error
            if ptype not in (16, 18, 19):
                self._out.append(fault_pdu(call_id, NCA_PROTO_ERROR))

    def _bind(self, pdu: bytes, ptype: int, auth_len: int, call_id: int) -> bytes:
        if auth_len:
            return _pdu(BIND_NAK, PFC_FIRST_FRAG | PFC_LAST_FRAG, call_id,
                        struct.pack("<HB", NAK_AUTH_TYPE_NOT_RECOGNIZED, 0))
        try:
            max_xmit, max_recv, _, n_ctx = _BIND.unpack_from(pdu, _HDR.size)
            results, pos = [], _HDR.size + _BIND.size
            for _ in range(n_ctx):
                cid, n_transfer, abstract = _CTX.unpack_from(pdu, pos)
                pos += _CTX.size
                transfers = [pdu[pos + 20 * i: pos + 20 * (i + 1)] for i in range(n_transfer)]
                if pos + 20 * n_transfer > len(pdu):
                    raise struct.error("transfer syntaxes beyond the PDU")
                pos += 20 * n_transfer
                results.append(self._context(cid, abstract, transfers))
        except struct.error:
            return _pdu(BIND_NAK, PFC_FIRST_FRAG | PFC_LAST_FRAG, call_id, struct.pack("<HB", 0, 0))
        if ptype == BIND:     # an ALTER_CONTEXT does not renegotiate fragment sizes (C706)
            self.max_xmit = max(MIN_FRAG, min(max_recv, MAX_FRAG))
            self._max_recv = min(max(max_xmit, MIN_FRAG), MAX_FRAG)
        sec_addr = SEC_ADDR if ptype == BIND else b""
        body = struct.pack("<HHIH", self.max_xmit, self._max_recv, 0x53F0, len(sec_addr))
        body += sec_addr + bytes(-(_HDR.size + len(body) + len(sec_addr)) % 4)
        body += struct.pack("<B3x", len(results)) + b"".join(results)
        return _pdu(BIND_ACK if ptype == BIND else ALTER_CONTEXT_RESP, PFC_FIRST_FRAG | PFC_LAST_FRAG, call_id, body)

    def _context(self, cid: int, abstract: bytes, transfers: list[bytes]) -> bytes:
        if any(t[:8] == _BTFN_PREFIX for t in transfers):
            return _RESULT.pack(NEGOTIATE_ACK, 0, bytes(20))        # bind-time features: none
        if abstract != SRVSVC_SYNTAX:
            return _RESULT.pack(PROVIDER_REJECTION, REASON_ABSTRACT_SYNTAX, bytes(20))
        if NDR_SYNTAX not in transfers:
            return _RESULT.pack(PROVIDER_REJECTION, REASON_TRANSFER_SYNTAXES, bytes(20))
        self._contexts.add(cid)
        return _RESULT.pack(ACCEPTANCE, 0, NDR_SYNTAX)

    def _request(self, pdu: bytes, flags: int, auth_len: int, call_id: int) -> None:
        head = _HDR.size + _REQ.size + (16 if flags & PFC_OBJECT_UUID else 0)
        end = len(pdu) - (auth_len + 8 if auth_len else 0)
        if end < head:
            self._call = None
            self._out.append(fault_pdu(call_id, NCA_PROTO_ERROR))
            return
        _, cid, opnum = _REQ.unpack_from(pdu, _HDR.size)
        if flags & PFC_FIRST_FRAG:
            self._call = _Call(call_id, cid, opnum, bytearray())
        call = self._call
        if call is None or call.call_id != call_id:
            self._call = None
            self._out.append(fault_pdu(call_id, NCA_PROTO_ERROR, cid))
            return
        call.stub += pdu[head:end]
        if len(call.stub) > MAX_STUB:
            self._call = None
            self._out.append(fault_pdu(call_id, NCA_S_FAULT_REMOTE_NO_MEMORY, cid))
            return
        if flags & PFC_LAST_FRAG:
            self._call = None
            self._out.extend(self._dispatch(call))

    def _dispatch(self, call: _Call) -> list[bytes]:
        if call.context_id not in self._contexts:
            return [fault_pdu(call.call_id, NCA_UNK_IF, call.context_id, PFC_DID_NOT_EXECUTE)]
        op = self._ops.get(call.opnum)
        if op is None:
            return [fault_pdu(call.call_id, NCA_OP_RNG_ERROR, call.context_id, PFC_DID_NOT_EXECUTE)]
        try:
            stub = op(bytes(call.stub))
        except _BadStub:
            return [fault_pdu(call.call_id, NCA_S_FAULT_NDR, call.context_id, PFC_DID_NOT_EXECUTE)]
        return response_pdus(call.call_id, call.context_id, stub, self.max_xmit)

    # ------------------------------------------------------------------ MS-SRVS operations

    def _find(self, name: str) -> ShareInfo | None:
        folded = name.casefold()
        return next((s for s in self.shares if s.name.casefold() == folded), None)

    def _share_enum_sticky(self, stub: bytes) -> bytes:
        return self._share_enum(stub, [s for s in self.shares if not s.name.endswith("$")])

    def _share_enum(self, stub: bytes, shares: list[ShareInfo] | None = None) -> bytes:
        shares = self.shares if shares is None else shares
        req = _decode(srvs.NetrShareEnum, stub)   # NetrShareEnumSticky's request has the same shape
        level = int(req["InfoStruct"]["Level"])
        if level not in _ENUM_ARMS:   # Level, union tag, NULL container, TotalEntries, NULL ResumeHandle, error
            return struct.pack("<IIIIII", level, level, 0, 0, 0, ERROR_INVALID_LEVEL)
        resp = srvs.NetrShareEnumResponse()
        resp["InfoStruct"]["Level"] = level
        resp["InfoStruct"]["ShareInfo"]["tag"] = level
        container = resp["InfoStruct"]["ShareInfo"][f"Level{level}"]
        container["EntriesRead"] = len(shares)
        for share in shares:
            container["Buffer"].append(_share_struct(level, share))
        resp["TotalEntries"] = len(shares)
        resp["ResumeHandle"] = NULL if _is_null(req.fields["ResumeHandle"]) else 0   # [in, out, unique]
        resp["ErrorCode"] = 0
        return _encode(resp)

    def _share_get_info(self, stub: bytes) -> bytes:
        req = _decode(srvs.NetrShareGetInfo, stub)
        level, name = int(req["Level"]), str(req["NetName"]).rstrip("\0")
        if level not in _SHARE_INFO_LEVELS:
            return struct.pack("<III", level, 0, ERROR_INVALID_LEVEL)
        share = self._find(name)
        if share is None:
            return struct.pack("<III", level, 0, NERR_NET_NAME_NOT_FOUND)
        resp = srvs.NetrShareGetInfoResponse()
        resp["InfoStruct"]["tag"] = level
        resp["InfoStruct"][f"ShareInfo{level}"] = _share_struct(level, share)
        resp["ErrorCode"] = 0
        return _encode(resp)

    def _server_get_info(self, stub: bytes) -> bytes:
        req = _decode(srvs.NetrServerGetInfo, stub)
        level = int(req["Level"])
        if level not in (100, 101):
            return struct.pack("<III", level, 0, ERROR_INVALID_LEVEL)
        resp = srvs.NetrServerGetInfoResponse()
        resp["InfoStruct"]["tag"] = level
        info = resp["InfoStruct"][f"ServerInfo{level}"]
        info[f"sv{level}_platform_id"] = PLATFORM_ID_NT
        info[f"sv{level}_name"] = self.server_name + "\0"
        if level == 101:
            info["sv101_version_major"], info["sv101_version_minor"] = 6, 1
            info["sv101_type"] = SERVER_TYPE
            info["sv101_comment"] = self.comment + "\0"
        resp["ErrorCode"] = 0
        return _encode(resp)


PLATFORM_ID_NT: Final = 500
SERVER_TYPE: Final = 0x0000_0001 | 0x0000_0002 | 0x0000_0800 | 0x0000_8000  # workstation, server, unix, NT
_ENUM_ARMS: Final = {0: srvs.SHARE_INFO_0, 1: srvs.SHARE_INFO_1, 2: srvs.SHARE_INFO_2, 501: srvs.SHARE_INFO_501,
                     502: srvs.SHARE_INFO_502}
_SHARE_INFO_LEVELS: Final = frozenset({0, 1, 2, 501, 502, 1005})


class _BadStub(Exception):
    """A request stub impacket's NDR decoder could not read."""


def _decode(cls: Any, stub: bytes) -> Any:
    try:
        return cls(stub)
    except Exception as e:   # impacket raises struct.error, IndexError, KeyError, bare Exception...
        raise _BadStub(str(e)) from e


def _encode(resp: Any) -> bytes:
    return bytes(resp.getData())


def _is_null(pointer: Any) -> bool:
    """Whether an impacket NDRPOINTER read from a request is NULL (referent id 0)."""
    return bool(pointer.fields.get("ReferentID", 0) == 0)


def _share_struct(level: int, share: ShareInfo) -> Any:
    """The impacket SHARE_INFO_<level> for ``share``."""
    if level == 1005:
        s = srvs.SHARE_INFO_1005()
        s["shi1005_flags"] = share.flags
        return s
    s = _ENUM_ARMS[level]()
    p = f"shi{level}_"
    s[p + "netname"] = share.name + "\0"
    if level == 0:
        return s
    s[p + "type"] = share.type
    s[p + "remark"] = share.remark + "\0"
    if level == 501:
        s["shi501_flags"] = share.flags
    elif level in (2, 502):
        s[p + "permissions"], s[p + "max_uses"], s[p + "current_uses"] = 0, 0xFFFFFFFF, 0
        s[p + "path"] = share.path + "\0"
        s[p + "passwd"] = NULL
    if level == 502:
        s["shi502_reserved"], s["shi502_security_descriptor"] = 0, NULL
    return s
