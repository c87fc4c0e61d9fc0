"""SMB authentication, server side: NTLMv2 (MS-NLMP) inside SPNEGO (MS-SPNG), sans-IO.

The interface:

- ``NEG_TOKEN_INIT2`` (from ``spnego``): the NEGOTIATE response's security buffer.
- ``NtlmServer(lookup, server_name, domain, allow_guest=False)``: one per session
  setup; ``step(security_buffer) -> (reply_buffer, NtStatus)`` answers
  MORE_PROCESSING_REQUIRED with the CHALLENGE, SUCCESS after a good AUTHENTICATE,
  LOGON_FAILURE otherwise (with an empty buffer).  Raw NTLMSSP and SPNEGO-wrapped
  tokens are both accepted; the reply uses the client's wrapping.  After a failure
  every further step answers LOGON_FAILURE; after a success, so does any further
  step (the result stays).  On success ``user`` is the canonical user name (None
  for an anonymous logon, which only ``allow_guest=True`` lets through),
  ``session_key`` the 16-byte exported session key the SMB signing and encryption
  keys derive from (16 zero bytes for anonymous), ``anonymous`` says which.
- ``identity_lookup(identity)``: the ``lookup`` callable over core.identity
  (case-insensitive user names).  ``lookup(name) -> (nt_hash or None, canonical name)``;
  a UPN (``user@realm`` with no domain) is looked up whole, then as ``user``.

Refused: NTLMv1 and LM-only responses, unknown users, users without a password,
a bad NTLMv2 proof, a bad MIC over the three NTLM messages (when the client
flags one), a bad or missing SPNEGO mechListMIC when one is sent or required,
and anonymous logons unless allowed.  The server challenge is 8 fresh bytes from
``os.urandom`` per object, so an AUTHENTICATE replayed into another session fails.

>>> srv = NtlmServer(lambda name: (None, name), "TESSERA", "WORKGROUP")
>>> srv.step(b"junk")[1].name, srv.step(b"junk")[1].name
('LOGON_FAILURE', 'LOGON_FAILURE')
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto
from typing import Any

from impacket import ntlm  # type: ignore[import-untyped]

from core.identity import Identity, User
from protocols.smb import spnego
from protocols.smb.spnego import NEG_TOKEN_INIT2, NTLMSSP_OID
from protocols.smb.status import NtStatus

__all__ = ["NEG_TOKEN_INIT2", "IdentityLookup", "NtlmServer", "identity_lookup", "rc4"]

IdentityLookup = Callable[[str], tuple[bytes | None, str]]

# MS-NLMP 2.2.2.5 flags this server may grant when the client asks for them.
_GRANTABLE = (ntlm.NTLMSSP_NEGOTIATE_128 | ntlm.NTLMSSP_NEGOTIATE_56 | ntlm.NTLMSSP_NEGOTIATE_KEY_EXCH
              | ntlm.NTLMSSP_NEGOTIATE_SIGN | ntlm.NTLMSSP_NEGOTIATE_SEAL | ntlm.NTLMSSP_NEGOTIATE_ALWAYS_SIGN
              | ntlm.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY | ntlm.NTLMSSP_NEGOTIATE_IDENTIFY)
_ALWAYS = (ntlm.NTLMSSP_NEGOTIATE_UNICODE | ntlm.NTLMSSP_REQUEST_TARGET | ntlm.NTLMSSP_NEGOTIATE_NTLM
           | ntlm.NTLMSSP_TARGET_TYPE_SERVER | ntlm.NTLMSSP_NEGOTIATE_TARGET_INFO | ntlm.NTLMSSP_NEGOTIATE_VERSION)
_VERSION = bytes([10, 0]) + struct.pack("<H", 20348) + b"\0\0\0" + bytes([15])  # 10.0.20348, NTLM revision 15
_MIC_OFFSET = 72  # after the 64-byte fixed header and the 8-byte VERSION
_AV_FLAG_MIC = 0x2
_FILETIME_EPOCH = 116444736000000000  # 1601-01-01 to 1970-01-01 in 100 ns units


def rc4(key: bytes, data: bytes) -> bytes:
    """RC4, for the 16-byte session key and the mechListMIC checksum only (OpenSSL 3 dropped it).

    >>> rc4(b"Key", b"Plaintext").hex()
    'bbf316e8d940af0ad3'
    """
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) & 0xFF
        s[i], s[j] = s[j], s[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) & 0xFF
        j = (j + s[i]) & 0xFF
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) & 0xFF])
    return bytes(out)


def _hmac_md5(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.md5).digest()


def ntowfv2(nt_hash: bytes, user: str, domain: str) -> bytes:
    """NTOWFv2 (MS-NLMP 3.3.2): HMAC-MD5 of upper(user) + domain under the NT hash."""
    return _hmac_md5(nt_hash, (user.upper() + domain).encode("utf-16-le"))


def av_pairs(pairs: list[tuple[int, bytes]]) -> bytes:
    """AV_PAIR list (MS-NLMP 2.2.2.1), terminated by MsvAvEOL.

    >>> av_pairs([(1, b"ab")]).hex()
    '01000200616200000000'
    """
    return b"".join(struct.pack("<HH", t, len(v)) + v for t, v in pairs) + b"\0\0\0\0"


def parse_av_pairs(data: bytes) -> dict[int, bytes]:
    """AV_PAIRs by id (ValueError if the list runs past the buffer or has no MsvAvEOL)."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos + 4 <= len(data):
        av_id, length = struct.unpack_from("<HH", data, pos)
        if av_id == ntlm.NTLMSSP_AV_EOL:
            return out
        if pos + 4 + length > len(data):
            break
        out.setdefault(av_id, data[pos + 4: pos + 4 + length])
        pos += 4 + length
    raise ValueError("AV_PAIR list without MsvAvEOL")


def _sign_key(key: bytes, direction: str) -> bytes:
    return hashlib.md5(key + f"session key to {direction} signing key magic constant\0".encode()).digest()


def _seal_key(key: bytes, direction: str) -> bytes:
    return hashlib.md5(key + f"session key to {direction} sealing key magic constant\0".encode()).digest()


def ntlm_mac(session_key: bytes, flags: int, direction: str, message: bytes, seq: int = 0) -> bytes:
    """An NTLM (extended session security) signature, the first one on a fresh sealing handle.

    ``direction``: ``client-to-server`` or ``server-to-client`` (MS-NLMP 3.4.4.2, 3.4.5).
    """
    checksum = _hmac_md5(_sign_key(session_key, direction), struct.pack("<I", seq) + message)[:8]
    if flags & ntlm.NTLMSSP_NEGOTIATE_KEY_EXCH:
        checksum = rc4(_seal_key(session_key, direction), checksum)
    return struct.pack("<I", 1) + checksum + struct.pack("<I", seq)


class _Stage(Enum):
    START = auto()  # nothing seen yet
    NEGOTIATE = auto()  # SPNEGO picked NTLMSSP; the NEGOTIATE message comes next
    AUTHENTICATE = auto()  # the CHALLENGE is out
    DONE = auto()
    FAILED = auto()


@dataclass(slots=True)
class _Authenticate:
    """The fields of an AUTHENTICATE message this server reads (via impacket's parser)."""

    flags: int
    user: str
    domain: str
    lm: bytes
    nt: bytes
    encrypted_key: bytes


def _field(raw: bytes, base: int) -> bytes:
    """A (len, maxlen, offset) payload field at ``base``, bounds-checked."""
    length, _, offset = struct.unpack_from("<HHI", raw, base)
    if offset + length > len(raw):
        raise ValueError("AUTHENTICATE field past the message")
    return raw[offset: offset + length]


def _parse_authenticate(raw: bytes) -> _Authenticate:
    if len(raw) < 64 or not raw.startswith(spnego.NTLMSSP_SIGNATURE) or raw[8:12] != b"\3\0\0\0":
        raise ValueError("not an NTLM AUTHENTICATE message")
    msg: Any = _impacket_parse(ntlm.NTLMAuthChallengeResponse, raw)
    flags = int(msg["flags"])
    for base in (12, 20, 28, 36, 44, 52):  # impacket slices without checking
        _field(raw, base)
    unicode = bool(flags & ntlm.NTLMSSP_NEGOTIATE_UNICODE)
    enc = "utf-16-le" if unicode else "cp437"
    return _Authenticate(flags, bytes(msg["user_name"]).decode(enc), bytes(msg["domain_name"]).decode(enc),
                         bytes(msg["lanman"]), bytes(msg["ntlm"]), _field(raw, 52))


def _negotiate_flags(raw: bytes) -> int:
    if len(raw) < 16 or not raw.startswith(spnego.NTLMSSP_SIGNATURE) or raw[8:12] != b"\1\0\0\0":
        raise ValueError("not an NTLM NEGOTIATE message")
    return int(_impacket_parse(ntlm.NTLMAuthNegotiate, raw)["flags"])


def _impacket_parse(cls: Any, raw: bytes) -> Any:
    """impacket's parser on untrusted bytes: whatever it raises becomes ValueError."""
    msg = cls()
    try:
        msg.fromString(raw)
    except Exception as e:  # impacket raises bare Exception, struct.error, TypeError...
        raise ValueError(f"malformed NTLM message: {e}") from e
    return msg


class NtlmServer:
    """One session setup's NTLM(v2)-in-SPNEGO exchange; see the module docstring."""

    def __init__(self, lookup: IdentityLookup, server_name: str, domain: str, *, allow_guest: bool = False,
                 dns_name: str | None = None, dns_domain: str | None = None) -> None:
        self._lookup = lookup
        self._server_name, self._domain = server_name.upper(), domain.upper()
        self._dns_name, self._dns_domain = dns_name or server_name.lower(), dns_domain or domain.lower()
        self._allow_guest = allow_guest
        self._stage = _Stage.START
        self._spnego = False
        self._mech_types_der = b""
        self._mic_required = False
        self._challenge = os.urandom(8)
        self._negotiate_msg = b""
        self._challenge_msg = b""
        self.user: str | None = None
        self.session_key: bytes | None = None
        self.anonymous = False

    @property
    def failed(self) -> bool:
        return self._stage is _Stage.FAILED

    @property
    def done(self) -> bool:
        return self._stage is _Stage.DONE

    def step(self, token: bytes) -> tuple[bytes, NtStatus]:
        """Take one client security buffer, return the reply buffer and the SESSION_SETUP status."""
        if self._stage in (_Stage.DONE, _Stage.FAILED):
            return b"", NtStatus.LOGON_FAILURE
        try:
            result = self._step(token)
        except (ValueError, KeyError, IndexError, struct.error, UnicodeDecodeError):
            result = None
        if result is None:
            self._stage = _Stage.FAILED
            self.user, self.session_key, self.anonymous = None, None, False
            return b"", NtStatus.LOGON_FAILURE
        return result

    def _step(self, token: bytes) -> tuple[bytes, NtStatus] | None:
        t = spnego.parse_token(token)
        if self._stage is _Stage.START:
            self._spnego = t.kind != "raw"
        want = ("init" if self._stage is _Stage.START else "resp") if self._spnego else "raw"
        if t.kind != want:
            return None  # wrapping changed mid-exchange, or a NegTokenInit after the first leg
        if t.kind == "init":
            self._mech_types_der = t.mech_types_der
            if NTLMSSP_OID not in t.mech_types:
                return None
            if t.mech_types[0] != NTLMSSP_OID or t.mech_token is None:
                # The client's optimistic token is for another mechanism: pick NTLMSSP, ask again (RFC 4178 5),
                # and insist on the mechListMIC that protects that choice.
                self._mic_required, self._stage = True, _Stage.NEGOTIATE
                return spnego.neg_token_resp(spnego.REQUEST_MIC, NTLMSSP_OID), NtStatus.MORE_PROCESSING_REQUIRED
        if t.mech_token is None:
            return None
        if self._stage in (_Stage.START, _Stage.NEGOTIATE):
            return self._on_negotiate(t.mech_token)
        return self._on_authenticate(t.mech_token, t.mic)

    def _wrap(self, state: int, mech: bytes | None, ntlm_msg: bytes | None, mic: bytes | None = None) -> bytes:
        if not self._spnego:
            return ntlm_msg or b""
        return spnego.neg_token_resp(state, mech, ntlm_msg, mic)

    def _on_negotiate(self, raw: bytes) -> tuple[bytes, NtStatus] | None:
        client_flags = _negotiate_flags(raw)
        if client_flags & ntlm.NTLMSSP_NEGOTIATE_UNICODE == 0:
            return None  # every SMB2 client speaks Unicode; OEM strings are not worth the risk
        flags = _ALWAYS | (client_flags & _GRANTABLE)
        if flags & ntlm.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY == 0:
            flags |= ntlm.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY  # NTLMv2 implies it (MS-NLMP 3.1.5.1.1)
        self._negotiate_msg = raw
        self._challenge_msg = self._build_challenge(flags)
        self._stage = _Stage.AUTHENTICATE
        first = not self._mic_required  # supportedMech goes in the target's first reply only
        return (self._wrap(spnego.ACCEPT_INCOMPLETE, NTLMSSP_OID if first else None, self._challenge_msg),
                NtStatus.MORE_PROCESSING_REQUIRED)

    def _build_challenge(self, flags: int) -> bytes:
        now = struct.pack("<Q", _FILETIME_EPOCH + time.time_ns() // 100)
        info = av_pairs([
            (ntlm.NTLMSSP_AV_DOMAINNAME, self._domain.encode("utf-16-le")),
            (ntlm.NTLMSSP_AV_HOSTNAME, self._server_name.encode("utf-16-le")),
            (ntlm.NTLMSSP_AV_DNS_DOMAINNAME, self._dns_domain.encode("utf-16-le")),
            (ntlm.NTLMSSP_AV_DNS_HOSTNAME, self._dns_name.encode("utf-16-le")),
            (ntlm.NTLMSSP_AV_TIME, now),
        ])
        target = self._server_name.encode("utf-16-le")
        msg: Any = ntlm.NTLMAuthChallenge()
        msg["flags"] = flags
        msg["challenge"] = self._challenge
        msg["Version"] = _VERSION
        msg["domain_name"] = target
        msg["domain_offset"] = 56
        msg["TargetInfoFields"] = info
        msg["TargetInfoFields_offset"] = 56 + len(target)
        return bytes(msg.getData())

    def _on_authenticate(self, raw: bytes, mech_list_mic: bytes | None) -> tuple[bytes, NtStatus] | None:
        auth = _parse_authenticate(raw)
        granted = _challenge_flags(self._challenge_msg)
        flags = auth.flags & granted
        if auth.user == "" and auth.nt == b"" and auth.lm in (b"", b"\0"):
            return self._anonymous() if self._allow_guest else None
        if len(auth.nt) <= 24 or auth.flags & ntlm.NTLMSSP_NEGOTIATE_LM_KEY:
            return None  # NTLMv1, LM or LM_KEY: never
        nt_hash, name = self._lookup(auth.user)
        if nt_hash is None and "@" in auth.user and not auth.domain:  # a UPN, user@realm
            nt_hash, name = self._lookup(auth.user.rpartition("@")[0])
        if nt_hash is None or len(nt_hash) != 16:
            return None
        base_key, blob = _verify_ntlmv2(nt_hash, auth, self._challenge)
        if base_key is None:
            return None
        session_key = base_key
        if flags & ntlm.NTLMSSP_NEGOTIATE_KEY_EXCH:
            if len(auth.encrypted_key) != 16:
                return None
            session_key = rc4(base_key, auth.encrypted_key)
        if not self._check_mic(raw, blob, session_key):
            return None
        server_mic = self._check_mech_list_mic(mech_list_mic, session_key, flags)
        if server_mic is None:
            return None
        self.user, self.session_key, self._stage = name, session_key, _Stage.DONE
        return self._wrap(spnego.ACCEPT_COMPLETED, None, None, server_mic or None), NtStatus.SUCCESS

    def _anonymous(self) -> tuple[bytes, NtStatus]:
        self.anonymous, self.session_key, self._stage = True, bytes(16), _Stage.DONE
        return self._wrap(spnego.ACCEPT_COMPLETED, None, None), NtStatus.SUCCESS

    def _check_mic(self, raw: bytes, blob: bytes, session_key: bytes) -> bool:
        """The MIC over NEGOTIATE + CHALLENGE + AUTHENTICATE (MIC zeroed), when MsvAvFlags says one is there."""
        pairs = parse_av_pairs(blob[28:])
        av_flags = struct.unpack("<I", pairs[ntlm.NTLMSSP_AV_FLAGS])[0] if ntlm.NTLMSSP_AV_FLAGS in pairs else 0
        if not av_flags & _AV_FLAG_MIC:
            return True
        if len(raw) < _MIC_OFFSET + 16:
            return False
        mic = raw[_MIC_OFFSET: _MIC_OFFSET + 16]
        zeroed = raw[:_MIC_OFFSET] + bytes(16) + raw[_MIC_OFFSET + 16:]
        want = _hmac_md5(session_key, self._negotiate_msg + self._challenge_msg + zeroed)
        return hmac.compare_digest(mic, want)

    def _check_mech_list_mic(self, mic: bytes | None, session_key: bytes, flags: int) -> bytes | None:
        """Verify the client's mechListMIC; our own (b"" when none is due), or None on failure."""
        if mic is None:
            return None if self._mic_required else b""
        if not self._spnego:
            return None
        want = ntlm_mac(session_key, flags, "client-to-server", self._mech_types_der)
        if not hmac.compare_digest(mic, want):
            return None
        return ntlm_mac(session_key, flags, "server-to-client", self._mech_types_der)


def _challenge_flags(challenge_msg: bytes) -> int:
    return int(struct.unpack_from("<I", challenge_msg, 20)[0])


def _verify_ntlmv2(nt_hash: bytes, auth: _Authenticate, server_challenge: bytes) -> tuple[bytes | None, bytes]:
    """(SessionBaseKey, the client's blob) if the NTProofStr checks out under the sent domain or none."""
    proof, blob = auth.nt[:16], auth.nt[16:]
    if len(blob) < 28 or blob[:2] != b"\1\1":
        return None, blob
    for domain in dict.fromkeys((auth.domain, "")):
        key = ntowfv2(nt_hash, auth.user, domain)
        if hmac.compare_digest(proof, _hmac_md5(key, server_challenge + blob)):
            return _hmac_md5(key, proof), blob
    return None, blob


def identity_lookup(identity: Identity) -> IdentityLookup:
    """A ``lookup`` over core.identity: the user's NT hash and name, matched case-insensitively.

    An exact match wins; otherwise the one user whose name matches ignoring case
    (none when two users differ only by case: Windows could not tell them apart).
    """
    def lookup(name: str) -> tuple[bytes | None, str]:
        user: User | None = identity.user(name)
        if user is None:
            folded = [u for u in identity.users() if u.name.casefold() == name.casefold()]
            user = folded[0] if len(folded) == 1 else None
        return (None, name) if user is None else (user.nt_hash, user.name)
    return lookup
