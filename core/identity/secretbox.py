"""S3 secrets at rest: sealed with the store key, kept in its own file.

SigV4 needs each secret in clear, so secrets cannot be hashed; they are
encrypted instead, with a key that lives beside (not inside) the metadata:

``DIR/meta/store.key``
    32 random bytes, mode 0600, made by ``tessera init`` (and on the first open
    of a store made before it existed).  A copied ``meta.db`` or a metadata
    backup without this file hands out no secrets.  Back it up separately.

A sealed value is text, ``enc1:KEYID:BASE64``: format 1 is AES-256-GCM with a
12-byte random nonce, BASE64 holds nonce || ciphertext || tag, and the access
key is the associated data (a secret moved to another row does not open).
``KEYID`` (8 hex digits of a hash of the key) names the key that sealed it, so
the key can rotate later: values name their key and several keys can be tried.
``plain:SECRET`` is a value carried over from schema 1; the identity service
seals those on open.

>>> k = StoreKey(bytes(32)); v = k.seal("s3cret", "AK1"); v.startswith("enc1:" + k.id + ":")
True
>>> k.open(v, "AK1"), k.open(v, "AK2"), StoreKey(bytes([1]) * 32).open(v, "AK1")
('s3cret', None, None)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import StoreError

KEY_FILE = "store.key"
KEY_BYTES = 32
SEALED = "enc1:"
PLAIN = "plain:"


class StoreKey:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise StoreError(f"store key must be {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)
        self._derive_key = hashlib.sha256(b"tessera store key derivation\0" + key).digest()
        self.id = hashlib.sha256(b"tessera store key id\0" + key).hexdigest()[:8]

    def derive(self, label: str) -> bytes:
        """A 32-byte secret for one purpose (e.g. the target servers' cluster token), from this key."""
        return hmac.new(self._derive_key, label.encode(), hashlib.sha256).digest()

    def seal(self, plain: str, aad: str) -> str:
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, plain.encode(), aad.encode())
        return f"{SEALED}{self.id}:" + base64.b64encode(nonce + ct).decode()

    def open(self, value: str, aad: str) -> str | None:
        """The secret, or None when another key sealed it or it was tampered with."""
        if value.startswith(PLAIN):
            return value[len(PLAIN):]
        parts = value.split(":")
        if len(parts) != 3 or parts[0] + ":" != SEALED or parts[1] != self.id:
            return None
        try:
            raw = base64.b64decode(parts[2], validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], aad.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError):
            return None

    @staticmethod
    def sealed_by(value: str) -> str | None:
        """The key id a stored value names (None for a ``plain:`` value)."""
        parts = value.split(":")
        return parts[1] if len(parts) == 3 and parts[0] + ":" == SEALED else None

    # -- the key file ------------------------------------------------------------------
    @classmethod
    def load(cls, path: str) -> StoreKey:
        try:
            with open(path, "rb") as f:
                key = f.read(KEY_BYTES + 1)
        except FileNotFoundError:
            raise StoreError(f"store key {path} is missing") from None
        if len(key) != KEY_BYTES:
            raise StoreError(f"store key {path} is damaged ({len(key)} bytes, expected {KEY_BYTES})")
        _private(path)
        return cls(key)

    @classmethod
    def load_or_create(cls, path: str) -> tuple[StoreKey, bool]:
        """The key in ``path``, made first if there is none; (key, made).

        Safe when several processes open a store at once: the key is written to
        a private temporary file and linked into place, and a process that
        loses the race reads the winner's key.
        """
        if os.path.exists(path):
            return cls.load(path), False
        tmp = f"{path}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, os.urandom(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        made = True
        try:
            os.link(tmp, path)
        except FileExistsError:
            made = False
        finally:
            os.unlink(tmp)
        _fsync_dir(os.path.dirname(path) or ".")
        return cls.load(path), made


def _private(path: str) -> None:
    """Mode 0600 (when we own it; another owner's file is left as it is)."""
    with contextlib.suppress(PermissionError):
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
