"""SMB 2/3 cryptography, sans-IO: key derivation, preauth integrity, signing, encryption.

Everything here takes bytes and returns bytes; the server keeps the state (which key,
which dialect, which cipher) and calls these functions.  References are MS-SMB2 sections.

Public interface:

- ``Dialect``, ``Cipher``, ``SigningAlgorithm``: the wire values (2.2.3, 2.2.3.1.2/.1.7).
- ``kdf(key, label, context, bits)``: SP800-108 counter-mode KDF, HMAC-SHA256 (3.1.4.2).
- ``derive_keys(full_session_key, dialect, preauth_hash, cipher) -> SessionKeys``: the
  session's signing, client-to-server, server-to-client and application keys
  (3.3.5.5.3).  A server decrypts with ``client_to_server`` and encrypts with
  ``server_to_client``.
- ``preauth_hash(previous, message)``: SHA-512 chaining (3.3.5.4, 3.3.5.5).  Start from
  ``PREAUTH_ZERO``; the connection hash takes the NEGOTIATE request and response; each
  session starts from the connection hash and takes every SESSION_SETUP request and every
  response except the final successful one; the keys use the result.
- ``signing_algorithm(dialect, negotiated)``, ``compute_signature``, ``sign`` and
  ``verify`` (3.1.4.1, 3.1.5.1) on one complete SMB2 message (64-byte header + body; for
  a compound, each message up to its NextCommand offset).
- ``TransformHeader``, ``encrypt``, ``decrypt`` (2.2.41, 3.1.4.3, 3.3.5.2.1.1).
  ``decrypt`` raises ``DecryptError`` on a bad tag, wrong key or malformed header.

Note on labels: MS-SMB2 names the 3.1.1 cipher-key labels "SMBC2SCipherKey" and
"SMBS2CCipherKey" (the values Windows and Samba use), not "...EncryptionKey".

>>> keys = derive_keys(bytes(16), Dialect.SMB311, bytes(64), Cipher.AES_128_GCM)
>>> len(keys.signing), len(keys.client_to_server or b"")
(16, 16)
>>> msg = b"\\xfeSMB" + bytes(60) + b"body"
>>> verify(sign(msg, keys.signing, SigningAlgorithm.AES_CMAC), keys.signing, SigningAlgorithm.AES_CMAC)
True
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass
from enum import IntEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM
from cryptography.hazmat.primitives.cmac import CMAC

HEADER_SIZE = 64
SIGNATURE_OFFSET = 48
SIGNATURE_SIZE = 16
FLAGS_OFFSET = 16
FLAG_SERVER_TO_REDIR = 0x00000001
FLAG_SIGNED = 0x00000008
COMMAND_CANCEL = 0x000C
PREAUTH_ZERO = bytes(64)
TRANSFORM_PROTOCOL_ID = b"\xfdSMB"
TRANSFORM_HEADER_SIZE = 52
TRANSFORM_AAD_OFFSET = 20
_TRANSFORM = struct.Struct("<4s16s16sIHHQ")


class Dialect(IntEnum):
    """SMB2 dialect revision numbers (NEGOTIATE DialectRevision)."""

    SMB202 = 0x0202
    SMB21 = 0x0210
    SMB30 = 0x0300
    SMB302 = 0x0302
    SMB311 = 0x0311


class Cipher(IntEnum):
    """SMB2_ENCRYPTION_CAPABILITIES cipher ids; 3.0/3.0.2 always use AES-128-CCM."""

    AES_128_CCM = 0x0001
    AES_128_GCM = 0x0002
    AES_256_CCM = 0x0003
    AES_256_GCM = 0x0004

    @property
    def key_bits(self) -> int:
        return 256 if self in (Cipher.AES_256_CCM, Cipher.AES_256_GCM) else 128

    @property
    def nonce_size(self) -> int:
        """11 bytes for CCM, 12 for GCM (the rest of the 16-byte Nonce field is zero)."""
        return 11 if self in (Cipher.AES_128_CCM, Cipher.AES_256_CCM) else 12


class SigningAlgorithm(IntEnum):
    """SMB2_SIGNING_CAPABILITIES ids; HMAC-SHA256 is implied by 2.0.2/2.1."""

    HMAC_SHA256 = 0x0000
    AES_CMAC = 0x0001
    AES_GMAC = 0x0002


class SmbCryptoError(ValueError):
    """A key, header or message that the SMB crypto layer cannot work with."""


class DecryptError(SmbCryptoError):
    """An encrypted message that does not authenticate (bad tag, wrong key, tampering)."""


@dataclass(frozen=True)
class SessionKeys:
    """A session's keys; the cipher keys are None for 2.0.2/2.1 (no encryption there)."""

    signing: bytes
    application: bytes
    client_to_server: bytes | None
    server_to_client: bytes | None


# -- key derivation ---------------------------------------------------------------------


def kdf(key: bytes, label: bytes, context: bytes, bits: int) -> bytes:
    """SP800-108 KDF in counter mode with HMAC-SHA256, r=32, as MS-SMB2 3.1.4.2 uses it.

    ``label`` and ``context`` are passed as they go on the wire (with their NUL).

    >>> kdf(bytes(16), b"SMB2AESCMAC\\x00", b"SmbSign\\x00", 128).hex()[:8]
    '9951088b'
    """
    if bits % 8 or not 0 < bits <= 256 * 8:
        raise SmbCryptoError(f"KDF output length {bits} bits is not supported")
    out = b""
    for i in range(1, -(-bits // 256) + 1):
        data = struct.pack(">I", i) + label + b"\x00" + context + struct.pack(">I", bits)
        out += hmac.new(key, data, hashlib.sha256).digest()
    return out[: bits // 8]


def derive_keys(
    full_session_key: bytes,
    dialect: Dialect,
    preauth_hash: bytes | None = None,
    cipher: Cipher = Cipher.AES_128_CCM,
) -> SessionKeys:
    """Derive a session's keys from the GSS session key (MS-SMB2 3.3.5.5.3).

    Session.SessionKey is the first 16 bytes of the key (zero-padded when shorter); the
    signing and application keys are always 128-bit and come from it.  AES-256 cipher keys
    are 256-bit and come from the full key (Session.FullSessionKey).
    """
    session_key = full_session_key[:16].ljust(16, b"\x00")
    if dialect < Dialect.SMB30:
        return SessionKeys(session_key, session_key, None, None)
    if dialect < Dialect.SMB311:
        return SessionKeys(
            signing=kdf(session_key, b"SMB2AESCMAC\x00", b"SmbSign\x00", 128),
            application=kdf(session_key, b"SMB2APP\x00", b"SmbRpc\x00", 128),
            client_to_server=kdf(session_key, b"SMB2AESCCM\x00", b"ServerIn \x00", 128),
            server_to_client=kdf(session_key, b"SMB2AESCCM\x00", b"ServerOut\x00", 128),
        )
    if preauth_hash is None or len(preauth_hash) != 64:
        raise SmbCryptoError("SMB 3.1.1 key derivation needs the 64-byte preauth integrity hash")
    bits = cipher.key_bits
    cipher_key = full_session_key if bits == 256 else session_key
    return SessionKeys(
        signing=kdf(session_key, b"SMBSigningKey\x00", preauth_hash, 128),
        application=kdf(session_key, b"SMBAppKey\x00", preauth_hash, 128),
        client_to_server=kdf(cipher_key, b"SMBC2SCipherKey\x00", preauth_hash, bits),
        server_to_client=kdf(cipher_key, b"SMBS2CCipherKey\x00", preauth_hash, bits),
    )


def preauth_hash(previous: bytes, message: bytes) -> bytes:
    """One SHA-512 preauth integrity step: H(previous || message) (MS-SMB2 3.3.5.4).

    >>> len(preauth_hash(PREAUTH_ZERO, b"negotiate request"))
    64
    """
    return hashlib.sha512(previous + message).digest()


# -- signing ----------------------------------------------------------------------------


def signing_algorithm(dialect: Dialect, negotiated: SigningAlgorithm | None = None) -> SigningAlgorithm:
    """The algorithm a dialect signs with; 3.1.1 uses the SIGNING_CAPABILITIES choice if any.

    >>> signing_algorithm(Dialect.SMB21).name, signing_algorithm(Dialect.SMB302).name
    ('HMAC_SHA256', 'AES_CMAC')
    """
    if dialect < Dialect.SMB30:
        return SigningAlgorithm.HMAC_SHA256
    if dialect == Dialect.SMB311 and negotiated is not None:
        return negotiated
    return SigningAlgorithm.AES_CMAC


def _gmac_nonce(message: bytes) -> bytes:
    """MessageId, then 4 bytes: bit 0 = SERVER_TO_REDIR, bit 1 = the message is a CANCEL."""
    (flags,) = struct.unpack_from("<I", message, FLAGS_OFFSET)
    (command,) = struct.unpack_from("<H", message, 12)
    role = (flags & FLAG_SERVER_TO_REDIR) | (2 if command == COMMAND_CANCEL else 0)
    return message[24:32] + struct.pack("<I", role)


def compute_signature(message: bytes | bytearray | memoryview, key: bytes, algorithm: SigningAlgorithm) -> bytes:
    """The 16-byte signature of ``message`` computed with its signature field zeroed.

    HMAC and CMAC run over the message in three pieces (no copy of a large WRITE or READ); GMAC
    takes the message as one associated-data buffer, so that one is copied.
    """
    view = memoryview(message)
    if len(view) < HEADER_SIZE or bytes(view[:4]) != b"\xfeSMB":
        raise SmbCryptoError("not an SMB2 message (too short or wrong protocol id)")
    head, tail = view[:SIGNATURE_OFFSET], view[SIGNATURE_OFFSET + SIGNATURE_SIZE:]
    if algorithm == SigningAlgorithm.HMAC_SHA256:
        h = hmac.new(key, head, hashlib.sha256)
        h.update(bytes(SIGNATURE_SIZE))
        h.update(tail)
        return h.digest()[:SIGNATURE_SIZE]
    if len(key) != 16:
        raise SmbCryptoError(f"AES signing key must be 16 bytes, got {len(key)}")
    if algorithm == SigningAlgorithm.AES_CMAC:
        mac = CMAC(algorithms.AES(key))
        mac.update(head)  # type: ignore[arg-type]  # any buffer works
        mac.update(bytes(SIGNATURE_SIZE))
        mac.update(tail)  # type: ignore[arg-type]
        return mac.finalize()
    zeroed = b"".join((head, bytes(SIGNATURE_SIZE), tail))
    return AESGCM(key).encrypt(_gmac_nonce(zeroed), b"", zeroed)


def sign_into(message: bytearray, key: bytes, algorithm: SigningAlgorithm) -> None:
    """:func:`sign` in place: set SMB2_FLAGS_SIGNED and write the signature into ``message``."""
    if len(message) < HEADER_SIZE:
        raise SmbCryptoError("not an SMB2 message (too short)")
    (flags,) = struct.unpack_from("<I", message, FLAGS_OFFSET)
    struct.pack_into("<I", message, FLAGS_OFFSET, flags | FLAG_SIGNED)
    message[SIGNATURE_OFFSET:SIGNATURE_OFFSET + SIGNATURE_SIZE] = compute_signature(message, key, algorithm)


def sign(message: bytes | bytearray, key: bytes, algorithm: SigningAlgorithm) -> bytes:
    """Set SMB2_FLAGS_SIGNED in the header and return the message with its signature filled in."""
    buf = bytearray(message)
    sign_into(buf, key, algorithm)
    return bytes(buf)


def verify(message: bytes | bytearray | memoryview, key: bytes, algorithm: SigningAlgorithm) -> bool:
    """True when the message's signature field matches (constant-time compare)."""
    try:
        expected = compute_signature(message, key, algorithm)
    except SmbCryptoError:
        return False
    return hmac.compare_digest(expected, bytes(message[SIGNATURE_OFFSET : SIGNATURE_OFFSET + SIGNATURE_SIZE]))


# -- encryption -------------------------------------------------------------------------


@dataclass(frozen=True)
class TransformHeader:
    """SMB2 TRANSFORM_HEADER (2.2.41), 52 bytes, followed by the encrypted message.

    ``flags`` is Flags (3.1.1) / EncryptionAlgorithm (3.0.x); 0x0001 = encrypted.
    """

    signature: bytes
    nonce: bytes
    original_message_size: int
    session_id: int
    flags: int = 0x0001

    def pack(self) -> bytes:
        return _TRANSFORM.pack(
            TRANSFORM_PROTOCOL_ID, self.signature, self.nonce, self.original_message_size, 0, self.flags,
            self.session_id,
        )

    @classmethod
    def unpack(cls, data: bytes) -> TransformHeader:
        """Parse the first 52 bytes; raises SmbCryptoError when they are not a transform header."""
        if len(data) < TRANSFORM_HEADER_SIZE or data[:4] != TRANSFORM_PROTOCOL_ID:
            raise SmbCryptoError("not an SMB2 TRANSFORM_HEADER")
        _, sig, nonce, size, _reserved, flags, session_id = _TRANSFORM.unpack_from(data)
        return cls(sig, nonce, size, session_id, flags)


def _aead(key: bytes, cipher: Cipher) -> AESCCM | AESGCM:
    if len(key) * 8 != cipher.key_bits:
        raise SmbCryptoError(f"{cipher.name} needs a {cipher.key_bits // 8}-byte key, got {len(key)}")
    if cipher in (Cipher.AES_128_CCM, Cipher.AES_256_CCM):
        return AESCCM(key, tag_length=16)
    return AESGCM(key)


def encrypt(message: bytes, key: bytes, cipher: Cipher, session_id: int, nonce: bytes | None = None) -> bytes:
    """Wrap one SMB2 message (or compound) in a TRANSFORM_HEADER, encrypted with ``key``.

    ``nonce`` (11 bytes for CCM, 12 for GCM) must never repeat under one key; by default
    it is random.  The AAD is the transform header from offset 20 (Nonce onwards).
    """
    size = cipher.nonce_size
    nonce = os.urandom(size) if nonce is None else nonce
    if len(nonce) != size:
        raise SmbCryptoError(f"{cipher.name} needs a {size}-byte nonce, got {len(nonce)}")
    aead = _aead(key, cipher)
    header = TransformHeader(bytes(16), nonce.ljust(16, b"\x00"), len(message), session_id)
    sealed = aead.encrypt(nonce, message, header.pack()[TRANSFORM_AAD_OFFSET:])
    ciphertext, tag = sealed[:-16], sealed[-16:]
    return TransformHeader(tag, header.nonce, len(message), session_id).pack() + ciphertext


def decrypt(packet: bytes, key: bytes, cipher: Cipher) -> bytes:
    """Authenticate and decrypt a transformed message; return the plaintext SMB2 message.

    Look the session up first with ``TransformHeader.unpack(packet).session_id``.
    Raises DecryptError when the tag does not verify or the header does not fit.
    """
    header = TransformHeader.unpack(packet)
    ciphertext = packet[TRANSFORM_HEADER_SIZE:]
    if header.original_message_size != len(ciphertext):
        raise DecryptError(
            f"OriginalMessageSize {header.original_message_size} != {len(ciphertext)} encrypted bytes"
        )
    if header.flags != 0x0001:
        raise DecryptError(f"unsupported transform Flags/EncryptionAlgorithm 0x{header.flags:04x}")
    aead = _aead(key, cipher)
    aad = packet[TRANSFORM_AAD_OFFSET:TRANSFORM_HEADER_SIZE]
    try:
        return aead.decrypt(header.nonce[: cipher.nonce_size], ciphertext + header.signature, aad)
    except InvalidTag:
        raise DecryptError("SMB2 encrypted message failed authentication (bad tag or wrong key)") from None
