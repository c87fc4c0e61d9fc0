"""SPNEGO (RFC 4178, MS-SPNG) as the SMB server speaks it: NTLMSSP only.

Three things, bytes in and bytes out:

- ``NEG_TOKEN_INIT2``: the NEGOTIATE response's security buffer, a NegTokenInit2
  advertising NTLMSSP alone (with the ``negHints`` Windows and Samba send);
- ``parse_token(data)``: what a SESSION_SETUP security buffer holds: a raw NTLMSSP
  message, a NegTokenInit (GSS-wrapped) or a NegTokenResp, as a ``Token``;
- ``neg_token_resp(...)``: the server's NegTokenResp.

impacket's SPNEGO classes skip ``reqFlags`` and ``mechListMIC`` when parsing and
cannot put a mechListMIC in a server reply, so this is a small strict DER reader
(definite lengths only, every length checked against the buffer) and writer.

>>> t = parse_token(neg_token_resp(ACCEPT_INCOMPLETE, NTLMSSP_OID, b"tok"))
>>> t.kind, t.neg_state, t.mech_token, t.mic
('resp', 1, b'tok', None)
>>> parse_token(NEG_TOKEN_INIT2).mech_types == (NTLMSSP_OID,)
True
>>> parse_token(b"NTLMSSP\\0rest").kind
'raw'
>>> parse_token(b"\\xa1\\x05\\x30\\x10")
Traceback (most recent call last):
  ...
protocols.smb.spnego.SpnegoError: truncated DER value
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SPNEGO_OID = bytes.fromhex("2b0601050502")  # 1.3.6.1.5.5.2
NTLMSSP_OID = bytes.fromhex("2b06010401823702020a")  # 1.3.6.1.4.1.311.2.2.10
NTLMSSP_SIGNATURE = b"NTLMSSP\0"
HINT_NAME = b"not_defined_in_RFC4178@please_ignore"

ACCEPT_COMPLETED, ACCEPT_INCOMPLETE, REJECT, REQUEST_MIC = 0, 1, 2, 3

_SEQUENCE, _OID, _OCTETS, _ENUM, _GENERAL_STRING, _APPLICATION_0 = 0x30, 0x06, 0x04, 0x0A, 0x1B, 0x60


class SpnegoError(ValueError):
    """A security buffer that is not well-formed SPNEGO."""


@dataclass(frozen=True, slots=True)
class Token:
    """One incoming security buffer.

    ``kind``: ``raw`` (a bare NTLMSSP message, in ``mech_token``), ``init``
    (NegTokenInit) or ``resp`` (NegTokenResp).  ``mech_types_der`` is the
    MechTypeList exactly as the client encoded it (what mechListMIC signs).
    """

    kind: Literal["raw", "init", "resp"]
    mech_token: bytes | None = None
    mech_types: tuple[bytes, ...] = ()
    mech_types_der: bytes = b""
    mic: bytes | None = None
    neg_state: int | None = None


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, value: bytes) -> bytes:
    """One DER element.

    >>> tlv(0x04, b"ab").hex(), len(tlv(0x04, bytes(200)))
    ('04026162', 203)
    """
    return bytes([tag]) + _len(len(value)) + value


def read_tlv(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """The element at ``pos``: (tag, value, position after it).

    >>> read_tlv(bytes.fromhex("0481020102"))
    (4, b'\\x01\\x02', 5)
    """
    if pos + 2 > len(data):
        raise SpnegoError("truncated DER header")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if tag & 0x1F == 0x1F:
        raise SpnegoError("multi-byte DER tags are not used by SPNEGO")
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise SpnegoError("bad DER length")
        length = int.from_bytes(data[pos: pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise SpnegoError("truncated DER value")
    return tag, data[pos: pos + length], pos + length


def _one(data: bytes, tag: int) -> bytes:
    """The value of ``data``, which must be exactly one element tagged ``tag``."""
    t, value, end = read_tlv(data)
    if t != tag or end != len(data):
        raise SpnegoError(f"expected DER tag {tag:#x}, found {t:#x}")
    return value


def _fields(seq: bytes) -> dict[int, bytes]:
    """A SEQUENCE of context-tagged fields ([n] -> raw inner element)."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos < len(seq):
        tag, value, pos = read_tlv(seq, pos)
        if tag & 0xE0 != 0xA0 or tag in out:
            raise SpnegoError(f"unexpected DER tag {tag:#x} in a SPNEGO sequence")
        out[tag] = value
    return out


def _oids(seq_der: bytes) -> tuple[bytes, ...]:
    body = _one(seq_der, _SEQUENCE)
    oids, pos = [], 0
    while pos < len(body):
        tag, value, pos = read_tlv(body, pos)
        if tag != _OID:
            raise SpnegoError("MechTypeList holds a non-OID")
        oids.append(value)
    return tuple(oids)


def _octets(f: dict[int, bytes], tag: int) -> bytes | None:
    return _one(f[tag], _OCTETS) if tag in f else None


def _parse_init(data: bytes) -> Token:
    body = _one(data, _APPLICATION_0)
    tag, oid, pos = read_tlv(body)
    if tag != _OID or oid != SPNEGO_OID:
        raise SpnegoError("not a SPNEGO GSS token")
    f = _fields(_one(_one(body[pos:], 0xA0), _SEQUENCE))
    if 0xA0 not in f:
        raise SpnegoError("NegTokenInit without mechTypes")
    # [3] is mechListMIC in RFC 4178's NegTokenInit, negHints in MS-SPNG's NegTokenInit2 (MIC at [4])
    mic = _octets(f, 0xA3) if f.get(0xA3, b"")[:1] == bytes([_OCTETS]) else _octets(f, 0xA4)
    return Token("init", mech_token=_octets(f, 0xA2), mech_types=_oids(f[0xA0]), mech_types_der=f[0xA0], mic=mic)


def _parse_resp(data: bytes) -> Token:
    f = _fields(_one(_one(data, 0xA1), _SEQUENCE))
    state = None
    if 0xA0 in f:
        enum = _one(f[0xA0], _ENUM)
        if len(enum) != 1:
            raise SpnegoError("bad negState")
        state = enum[0]
    mech = (_one(f[0xA1], _OID),) if 0xA1 in f else ()
    return Token("resp", mech_token=_octets(f, 0xA2), mech_types=mech, mic=_octets(f, 0xA3), neg_state=state)


def parse_token(data: bytes) -> Token:
    """Classify and decode one SESSION_SETUP security buffer (SpnegoError if malformed)."""
    if data.startswith(NTLMSSP_SIGNATURE):
        return Token("raw", mech_token=data)
    if data[:1] == bytes([_APPLICATION_0]):
        return _parse_init(data)
    if data[:1] == b"\xa1":
        return _parse_resp(data)
    raise SpnegoError("neither NTLMSSP nor SPNEGO")


def mech_type_list(*oids: bytes) -> bytes:
    """The DER MechTypeList (a SEQUENCE OF OID)."""
    return tlv(_SEQUENCE, b"".join(tlv(_OID, o) for o in oids))


def neg_token_init2(*oids: bytes) -> bytes:
    """A GSS-wrapped NegTokenInit2 (MS-SPNG 2.2.1) offering ``oids``, with Windows' negHints."""
    hints = tlv(_SEQUENCE, tlv(0xA0, tlv(_GENERAL_STRING, HINT_NAME)))
    init = tlv(_SEQUENCE, tlv(0xA0, mech_type_list(*oids)) + tlv(0xA3, hints))
    return tlv(_APPLICATION_0, tlv(_OID, SPNEGO_OID) + tlv(0xA0, init))


NEG_TOKEN_INIT2 = neg_token_init2(NTLMSSP_OID)


def neg_token_resp(state: int | None, mech: bytes | None = None, token: bytes | None = None,
                   mic: bytes | None = None) -> bytes:
    """A NegTokenResp; absent fields are left out.

    >>> neg_token_resp(ACCEPT_COMPLETED).hex()
    'a1073005a0030a0100'
    """
    body = b""
    if state is not None:
        body += tlv(0xA0, tlv(_ENUM, bytes([state])))
    if mech is not None:
        body += tlv(0xA1, tlv(_OID, mech))
    if token is not None:
        body += tlv(0xA2, tlv(_OCTETS, token))
    if mic is not None:
        body += tlv(0xA3, tlv(_OCTETS, mic))
    return tlv(0xA1, tlv(_SEQUENCE, body))
