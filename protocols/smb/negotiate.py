"""SMB2 NEGOTIATE, sans-IO: read the request, choose, write the response (MS-SMB2 2.2.3, 2.2.4,
3.3.5.3.1, 3.3.5.4).

The request body (after the 64-byte header; offsets on the wire count from the header)::

    0  StructureSize (36)   2  DialectCount   4  SecurityMode   6  Reserved   8  Capabilities
    12 ClientGuid (16)      28 NegotiateContextOffset (4), NegotiateContextCount (2), Reserved2 (2)
                               -- or ClientStartTime (8) when 0x0311 is not offered
    36 Dialects (2 each)    .. NEGOTIATE_CONTEXTs, each 8-byte aligned:
                               ContextType (2), DataLength (2), Reserved (4), Data

The response body is 64 fixed bytes (StructureSize 65), the security buffer at header offset 128,
and for 3.1.1 the contexts from the next 8-byte boundary: preauth integrity (SHA-512, a fresh
32-byte salt), the cipher when the client sent an encryption context (0 when none is common),
the signing algorithm when the client sent a signing context. No compression is offered.

Public interface:

- :func:`parse_request` (body -> :class:`NegotiateRequest`); :class:`NegotiateError` carries the
  NTSTATUS to answer with (INVALID_PARAMETER for malformed input).
- :class:`NegotiateConfig`, :func:`choose` (request, config -> :class:`Negotiated`, or
  NegotiateError NOT_SUPPORTED / INVALID_PARAMETER / SMB_NO_PREAUTH_INTEGRITY_HASH_OVERLAP).
- :func:`encode_response` (negotiated, server_guid, security_buffer, system_time, start_time ->
  response body).
- :func:`choose_smb1` and :func:`smb1_response`: the SMB1 multi-protocol NEGOTIATE
  (``framing.smb1_dialects``) answered with an SMB2 NEGOTIATE response (header included),
  DialectRevision 0x02FF for "SMB 2.???" (the client then sends an SMB2 NEGOTIATE) or 0x0202.

Choices (``choose``): the highest dialect both sides allow; signing HMAC-SHA256 for 2.x,
AES-CMAC for 3.0/3.0.2, for 3.1.1 the first of AES-GMAC, AES-CMAC, HMAC-SHA256 the client lists
(AES-CMAC when it lists none of them or sends no signing context); cipher AES-128-CCM for
3.0/3.0.2 when encryption is enabled and the client sets CAP_ENCRYPTION, for 3.1.1 the server's
first preference the client lists; LARGE_MTU and LEASING from 2.1, 8 MiB I/O (64 KiB for 2.0.2,
which has no multi-credit); signing required unless the config relaxes it.

``Negotiated`` keeps what the connection needs later: the dialect, signing and cipher choice,
and the client's and server's values that FSCTL_VALIDATE_NEGOTIATE_INFO compares.

>>> import struct
>>> body = struct.pack("<HHHHI16sQ", 36, 2, 1, 0, 0, bytes(16), 0) + struct.pack("<HH", 0x0202, 0x0210)
>>> req = parse_request(body)
>>> n = choose(req, NegotiateConfig())
>>> n.dialect.name, n.signing.name, n.signing_required, n.cipher
('SMB21', 'HMAC_SHA256', True, None)
>>> len(encode_response(n, bytes(16), b"", 0, 0))
64
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Final

from .crypto import Cipher, Dialect, SigningAlgorithm
from .header import HEADER_SIZE, Buf, Command, Flags, Header
from .status import NtStatus

SHA_512: Final = 0x0001
WILDCARD_REVISION: Final = 0x02FF      # "SMB 2.???": the client must send an SMB2 NEGOTIATE next
MAX_IO: Final = 8 * 1024 * 1024
MAX_IO_202: Final = 64 * 1024          # 2.0.2 has no multi-credit (LARGE_MTU)
SALT_SIZE: Final = 32
SECURITY_BUFFER_OFFSET: Final = HEADER_SIZE + 64
CIPHER_PREFERENCE: Final = (Cipher.AES_128_GCM, Cipher.AES_128_CCM, Cipher.AES_256_GCM, Cipher.AES_256_CCM)
SIGNING_PREFERENCE: Final = (SigningAlgorithm.AES_GMAC, SigningAlgorithm.AES_CMAC, SigningAlgorithm.HMAC_SHA256)

_REQUEST = struct.Struct("<HHHHI16sIHH")     # 36 bytes, context offset/count form
_RESPONSE = struct.Struct("<HHHH16sIIIIQQHHI")  # 64 bytes
_CONTEXT = struct.Struct("<HHI")
_DIALECTS: Final = {int(d): d for d in Dialect}


class ContextType(IntEnum):
    """NEGOTIATE_CONTEXT ContextType values (MS-SMB2 2.2.3.1)."""

    PREAUTH_INTEGRITY_CAPABILITIES = 0x0001
    ENCRYPTION_CAPABILITIES = 0x0002
    COMPRESSION_CAPABILITIES = 0x0003
    NETNAME_NEGOTIATE_CONTEXT_ID = 0x0005
    TRANSPORT_CAPABILITIES = 0x0006
    RDMA_TRANSFORM_CAPABILITIES = 0x0007
    SIGNING_CAPABILITIES = 0x0008


class SecurityMode(IntFlag):
    """NEGOTIATE SecurityMode bits (2.2.3, 2.2.4)."""

    SIGNING_ENABLED = 0x0001
    SIGNING_REQUIRED = 0x0002


class Capabilities(IntFlag):
    """SMB2_GLOBAL_CAP_* bits (2.2.3, 2.2.4)."""

    DFS = 0x0001
    LEASING = 0x0002
    LARGE_MTU = 0x0004
    MULTI_CHANNEL = 0x0008
    PERSISTENT_HANDLES = 0x0010
    DIRECTORY_LEASING = 0x0020
    ENCRYPTION = 0x0040


class NegotiateError(ValueError):
    """A NEGOTIATE the server refuses; answer ``status`` in an ERROR response."""

    def __init__(self, reason: str, status: NtStatus = NtStatus.INVALID_PARAMETER) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class NegotiateRequest:
    """A parsed NEGOTIATE request. The context fields are None when that context was absent
    (contexts are read only when 0x0311 is offered); unknown dialect numbers are kept."""

    dialects: tuple[int, ...]
    security_mode: int
    capabilities: int
    client_guid: bytes
    client_start_time: int = 0
    hash_algorithms: tuple[int, ...] | None = None
    salt: bytes = b""
    ciphers: tuple[int, ...] | None = None
    signing_algorithms: tuple[int, ...] | None = None
    compression_algorithms: tuple[int, ...] | None = None
    netname: str | None = None


@dataclass(frozen=True)
class NegotiateConfig:
    """What the server allows. ``ciphers`` is the server's order of preference."""

    dialects: frozenset[Dialect] = frozenset(Dialect)
    signing_required: bool = True
    encryption: bool = True
    ciphers: tuple[Cipher, ...] = CIPHER_PREFERENCE
    max_io: int = MAX_IO


@dataclass(frozen=True)
class Negotiated:
    """The outcome of a NEGOTIATE: the connection's dialect and algorithms, what the response
    says, and the client's values (FSCTL_VALIDATE_NEGOTIATE_INFO checks them later).

    ``cipher`` is None when the connection cannot encrypt. ``wildcard`` marks the 0x02FF answer
    to an SMB1 NEGOTIATE: negotiation is not finished, the client sends an SMB2 NEGOTIATE next.
    ``encryption_context`` / ``signing_context``: 3.1.1 response contexts to write.
    """

    dialect: Dialect
    signing: SigningAlgorithm
    cipher: Cipher | None
    security_mode: SecurityMode
    capabilities: Capabilities
    max_transact_size: int
    max_read_size: int
    max_write_size: int
    client_dialects: tuple[int, ...] = ()
    client_security_mode: int = 0
    client_capabilities: int = 0
    client_guid: bytes = field(default=bytes(16))
    encryption_context: bool = False
    signing_context: bool = False
    wildcard: bool = False

    @property
    def revision(self) -> int:
        """The DialectRevision the response carries."""
        return WILDCARD_REVISION if self.wildcard else int(self.dialect)

    @property
    def signing_required(self) -> bool:
        return bool(self.security_mode & SecurityMode.SIGNING_REQUIRED)


# -- parsing ----------------------------------------------------------------------------------


def _u16s(data: bytes, at: int, count: int, what: str) -> tuple[int, ...]:
    end = at + 2 * count
    if end > len(data):
        raise NegotiateError(f"{what}: {count} entries overrun the context")
    return struct.unpack_from(f"<{count}H", data, at)


def _counted(data: bytes, at: int, what: str) -> tuple[int, ...]:
    """A 2-byte count at ``at`` then that many 2-byte ids just after the count's header."""
    if len(data) < 2:
        raise NegotiateError(f"{what}: truncated")
    (count,) = struct.unpack_from("<H", data)
    if count == 0:
        raise NegotiateError(f"{what}: empty list")
    return _u16s(data, at, count, what)


def _preauth(data: bytes) -> tuple[tuple[int, ...], bytes]:
    if len(data) < 4:
        raise NegotiateError("preauth integrity context: truncated")
    count, salt_len = struct.unpack_from("<HH", data)
    if count == 0:
        raise NegotiateError("preauth integrity context: no hash algorithm")
    algorithms = _u16s(data, 4, count, "preauth integrity context")
    salt = data[4 + 2 * count: 4 + 2 * count + salt_len]
    if len(salt) != salt_len:
        raise NegotiateError("preauth integrity context: salt overruns the context")
    return algorithms, salt


class _Contexts:
    """Accumulates the contexts of one request; a second context of a kind is refused."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.hash_algorithms: tuple[int, ...] | None = None
        self.salt = b""
        self.ciphers: tuple[int, ...] | None = None
        self.signing_algorithms: tuple[int, ...] | None = None
        self.compression_algorithms: tuple[int, ...] | None = None
        self.netname: str | None = None

    def add(self, kind: int, data: bytes) -> None:
        if kind in self.seen and kind in _KNOWN:
            raise NegotiateError(f"two contexts of type {kind}")
        self.seen.add(kind)
        if kind == ContextType.PREAUTH_INTEGRITY_CAPABILITIES:
            self.hash_algorithms, self.salt = _preauth(data)
        elif kind == ContextType.ENCRYPTION_CAPABILITIES:
            self.ciphers = _counted(data, 2, "encryption context")
        elif kind == ContextType.SIGNING_CAPABILITIES:
            self.signing_algorithms = _counted(data, 2, "signing context")
        elif kind == ContextType.COMPRESSION_CAPABILITIES:
            if len(data) < 8:
                raise NegotiateError("compression context: truncated")
            self.compression_algorithms = _counted(data, 8, "compression context")
        elif kind == ContextType.NETNAME_NEGOTIATE_CONTEXT_ID:
            self.netname = data.decode("utf-16-le", "replace").rstrip("\0")
        # TRANSPORT, RDMA_TRANSFORM and unknown types are ignored (3.3.5.4).


_KNOWN: Final = frozenset({ContextType.PREAUTH_INTEGRITY_CAPABILITIES, ContextType.ENCRYPTION_CAPABILITIES,
                           ContextType.SIGNING_CAPABILITIES, ContextType.COMPRESSION_CAPABILITIES})


def _read_contexts(body: bytes, offset: int, count: int, dialects_end: int) -> _Contexts:
    found = _Contexts()
    if count == 0:
        return found
    at = offset - HEADER_SIZE
    if offset % 8 or at < dialects_end:
        raise NegotiateError(f"NegotiateContextOffset {offset} is unaligned or inside the dialects")
    for i in range(count):
        if i:
            at += -at % 8
        if at + _CONTEXT.size > len(body):
            raise NegotiateError(f"negotiate context {i} starts past the end of the message")
        kind, length, _ = _CONTEXT.unpack_from(body, at)
        data = body[at + _CONTEXT.size: at + _CONTEXT.size + length]
        if len(data) != length:
            raise NegotiateError(f"negotiate context {i}: DataLength {length} overruns the message")
        found.add(kind, data)
        at += _CONTEXT.size + length
    return found


def parse_request(body: Buf) -> NegotiateRequest:
    """Read a NEGOTIATE request body (the bytes after the 64-byte header).

    >>> parse_request(b"\\x24\\x00" + bytes(34))
    Traceback (most recent call last):
    ...
    protocols.smb.negotiate.NegotiateError: NEGOTIATE with no dialect
    """
    data = bytes(body)
    if len(data) < _REQUEST.size:
        raise NegotiateError(f"NEGOTIATE body of {len(data)} bytes")
    size, count, mode, _, caps, guid, ctx_offset, ctx_count, _ = _REQUEST.unpack_from(data)
    if size != 36:
        raise NegotiateError(f"NEGOTIATE StructureSize {size}")
    if count == 0:
        raise NegotiateError("NEGOTIATE with no dialect")
    dialects = _u16s(data, _REQUEST.size, count, "Dialects")
    if Dialect.SMB311 not in dialects:
        (start,) = struct.unpack_from("<Q", data, 28)
        return NegotiateRequest(dialects, mode, caps, guid, client_start_time=start)
    found = _read_contexts(data, ctx_offset, ctx_count, _REQUEST.size + 2 * count)
    return NegotiateRequest(
        dialects, mode, caps, guid, hash_algorithms=found.hash_algorithms, salt=found.salt,
        ciphers=found.ciphers, signing_algorithms=found.signing_algorithms,
        compression_algorithms=found.compression_algorithms, netname=found.netname)


# -- choosing ---------------------------------------------------------------------------------


def _security_mode(config: NegotiateConfig) -> SecurityMode:
    mode = SecurityMode.SIGNING_ENABLED
    return mode | SecurityMode.SIGNING_REQUIRED if config.signing_required else mode


def _capabilities(dialect: Dialect, encrypt: bool) -> Capabilities:
    caps = Capabilities(0)
    if dialect >= Dialect.SMB21:
        caps |= Capabilities.LEASING | Capabilities.LARGE_MTU
    if encrypt and dialect in (Dialect.SMB30, Dialect.SMB302):
        caps |= Capabilities.ENCRYPTION
    return caps


def _cipher(request: NegotiateRequest, dialect: Dialect, config: NegotiateConfig) -> Cipher | None:
    if not config.encryption:
        return None
    if dialect in (Dialect.SMB30, Dialect.SMB302):
        ok = request.capabilities & Capabilities.ENCRYPTION and Cipher.AES_128_CCM in config.ciphers
        return Cipher.AES_128_CCM if ok else None
    if dialect == Dialect.SMB311 and request.ciphers is not None:
        return next((c for c in config.ciphers if c in request.ciphers), None)
    return None


def _signing(request: NegotiateRequest, dialect: Dialect) -> SigningAlgorithm:
    if dialect < Dialect.SMB30:
        return SigningAlgorithm.HMAC_SHA256
    if dialect == Dialect.SMB311 and request.signing_algorithms is not None:
        offered = request.signing_algorithms
        return next((a for a in SIGNING_PREFERENCE if a in offered), SigningAlgorithm.AES_CMAC)
    return SigningAlgorithm.AES_CMAC


def choose(request: NegotiateRequest, config: NegotiateConfig) -> Negotiated:
    """The connection's dialect and algorithms for ``request`` (MS-SMB2 3.3.5.4).

    >>> req = NegotiateRequest((0x0202, 0x0300), 1, 0x40, bytes(16))
    >>> n = choose(req, NegotiateConfig())
    >>> n.dialect.name, n.cipher.name if n.cipher else None, n.signing.name
    ('SMB30', 'AES_128_CCM', 'AES_CMAC')
    >>> choose(req, NegotiateConfig(dialects=frozenset({Dialect.SMB311})))
    Traceback (most recent call last):
    ...
    protocols.smb.negotiate.NegotiateError: no common dialect in ['0x202', '0x300']
    """
    common = [_DIALECTS[d] for d in request.dialects if d in _DIALECTS and _DIALECTS[d] in config.dialects]
    if not common:
        raise NegotiateError(f"no common dialect in {[hex(d) for d in request.dialects]}", NtStatus.NOT_SUPPORTED)
    dialect = max(common)
    if dialect == Dialect.SMB311:
        if request.hash_algorithms is None:
            raise NegotiateError("3.1.1 NEGOTIATE without a preauth integrity context")
        if SHA_512 not in request.hash_algorithms:
            raise NegotiateError("no SHA-512 in the preauth integrity context",
                                 NtStatus.SMB_NO_PREAUTH_INTEGRITY_HASH_OVERLAP)
    cipher = _cipher(request, dialect, config)
    io = config.max_io if dialect >= Dialect.SMB21 else min(config.max_io, MAX_IO_202)
    is_311 = dialect == Dialect.SMB311
    return Negotiated(
        dialect=dialect, signing=_signing(request, dialect), cipher=cipher,
        security_mode=_security_mode(config), capabilities=_capabilities(dialect, cipher is not None),
        max_transact_size=io, max_read_size=io, max_write_size=io,
        client_dialects=request.dialects, client_security_mode=request.security_mode,
        client_capabilities=request.capabilities, client_guid=request.client_guid,
        encryption_context=is_311 and config.encryption and request.ciphers is not None,
        signing_context=is_311 and request.signing_algorithms is not None,
    )


# -- encoding ---------------------------------------------------------------------------------


def _context(kind: ContextType, data: bytes) -> bytes:
    return _CONTEXT.pack(kind, len(data), 0) + data


def _response_contexts(n: Negotiated, salt: bytes) -> list[bytes]:
    out = [_context(ContextType.PREAUTH_INTEGRITY_CAPABILITIES, struct.pack("<HHH", 1, len(salt), SHA_512) + salt)]
    if n.encryption_context:
        out.append(_context(ContextType.ENCRYPTION_CAPABILITIES, struct.pack("<HH", 1, n.cipher or 0)))
    if n.signing_context:
        out.append(_context(ContextType.SIGNING_CAPABILITIES, struct.pack("<HH", 1, n.signing)))
    return out


def encode_response(negotiated: Negotiated, server_guid: bytes, security_buffer: Buf,
                    system_time: int, start_time: int, *, salt: bytes | None = None) -> bytes:
    """The NEGOTIATE response body (2.2.4). Times are FILETIME (100 ns since 1601); ``salt``
    defaults to 32 fresh random bytes (3.1.1 only).

    >>> n = choose(NegotiateRequest((0x0311,), 1, 0, bytes(16), hash_algorithms=(1,)), NegotiateConfig())
    >>> body = encode_response(n, bytes(16), b"\\x60\\x00", 0, 0, salt=bytes(32))
    >>> struct.unpack_from("<HHHH", body), struct.unpack_from("<HHI", body, 56), len(body)
    ((65, 3, 785, 1), (128, 2, 136), 118)
    """
    sec = bytes(security_buffer)
    if len(sec) > 0xFFFF or len(server_guid) != 16:
        raise ValueError("security buffer over 64 KiB or ServerGuid not 16 bytes")
    contexts: list[bytes] = []
    if negotiated.dialect == Dialect.SMB311 and not negotiated.wildcard:
        contexts = _response_contexts(negotiated, os.urandom(SALT_SIZE) if salt is None else salt)
    tail = sec
    ctx_offset = 0
    if contexts:
        tail += bytes(-len(sec) % 8)
        ctx_offset = SECURITY_BUFFER_OFFSET + len(tail)
        for i, ctx in enumerate(contexts):
            tail += ctx if i == len(contexts) - 1 else ctx + bytes(-len(ctx) % 8)
    fixed = _RESPONSE.pack(
        65, negotiated.security_mode, negotiated.revision, len(contexts), server_guid,
        negotiated.capabilities, negotiated.max_transact_size, negotiated.max_read_size,
        negotiated.max_write_size, system_time, start_time, SECURITY_BUFFER_OFFSET, len(sec), ctx_offset)
    return fixed + tail


# -- SMB1 multi-protocol negotiate ------------------------------------------------------------


def choose_smb1(dialects: Sequence[str], config: NegotiateConfig) -> Negotiated | None:
    """The answer to an SMB1 NEGOTIATE offering ``dialects`` (3.3.5.3.1), or None when it
    offers no SMB2 dialect the server allows (the server then closes the connection).

    >>> choose_smb1(["NT LM 0.12", "SMB 2.002", "SMB 2.???"], NegotiateConfig()).revision == 0x02FF
    True
    >>> choose_smb1(["NT LM 0.12", "SMB 2.002"], NegotiateConfig()).revision == 0x0202
    True
    >>> choose_smb1(["NT LM 0.12"], NegotiateConfig()) is None
    True
    """
    mode = _security_mode(config)
    if "SMB 2.???" in dialects and any(d >= Dialect.SMB21 for d in config.dialects):
        return Negotiated(Dialect.SMB21, SigningAlgorithm.HMAC_SHA256, None, mode,
                          Capabilities.LEASING | Capabilities.LARGE_MTU,
                          config.max_io, config.max_io, config.max_io, wildcard=True)
    if "SMB 2.002" in dialects and Dialect.SMB202 in config.dialects:
        io = min(config.max_io, MAX_IO_202)
        return Negotiated(Dialect.SMB202, SigningAlgorithm.HMAC_SHA256, None, mode, Capabilities(0),
                          io, io, io, client_dialects=(int(Dialect.SMB202),))
    return None


def smb1_response(dialects: Sequence[str], config: NegotiateConfig, server_guid: bytes,
                  security_buffer: Buf, system_time: int, start_time: int) -> tuple[Negotiated, bytes] | None:
    """``choose_smb1`` and the whole SMB2 message answering it (header with MessageId 0, one
    credit, then the NEGOTIATE response body), or None as ``choose_smb1``."""
    negotiated = choose_smb1(dialects, config)
    if negotiated is None:
        return None
    header = Header(Command.NEGOTIATE, message_id=0, credits=1, flags=Flags.SERVER_TO_REDIR)
    body = encode_response(negotiated, server_guid, security_buffer, system_time, start_time)
    return negotiated, header.encode() + body
