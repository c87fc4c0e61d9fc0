"""Users: uid/gid, S3 access key and secret, and password hashes per protocol.

SMB's NTLM needs the NT hash (MD4 of the UTF-16LE password); OpenSSL 3 no
longer offers MD4, so a small implementation lives here.  The password itself
is kept only as a salted scrypt hash (for protocols that see it in clear).
The S3 secret is stored as is: SigV4 verification needs it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import string
import struct
import time

from core.errors import Exists, InvalidArgument, NotFound
from core.meta.store import MetaStore
from core.meta.txn import Txn
from core.meta.types import User


def _rotl(x: int, n: int) -> int:
    x &= 0xFFFFFFFF
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


def md4(data: bytes) -> bytes:
    """MD4 (RFC 1320).

    >>> md4(b"abc").hex()
    'a448017aaf21d8525fc10ae87aa6729d'
    """
    msg = data + b"\x80" + b"\0" * ((55 - len(data)) % 64) + struct.pack("<Q", len(data) * 8)
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
    for off in range(0, len(msg), 64):
        x = struct.unpack("<16I", msg[off: off + 64])
        a, b, c, d = h
        for i in range(16):
            k, s = i, (3, 7, 11, 19)[i % 4]
            a, b, c, d = d, _rotl(a + ((b & c) | (~b & d)) + x[k], s), b, c
        for i in range(16):
            k, s = (i % 4) * 4 + i // 4, (3, 5, 9, 13)[i % 4]
            a, b, c, d = d, _rotl(a + ((b & c) | (b & d) | (c & d)) + x[k] + 0x5A827999, s), b, c
        for i in range(16):
            k = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)[i]
            s = (3, 9, 11, 15)[i % 4]
            a, b, c, d = d, _rotl(a + (b ^ c ^ d) + x[k] + 0x6ED9EBA1, s), b, c
        h = [(v + w) & 0xFFFFFFFF for v, w in zip(h, (a, b, c, d), strict=True)]
    return struct.pack("<4I", *h)


def nt_hash(password: str) -> bytes:
    """The NT hash NTLM authenticates with.

    >>> nt_hash("password").hex()
    '8846f7eaee8fb117ad06bdd830b7586c'
    """
    return md4(password.encode("utf-16-le"))


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_password(stored: str | None, password: str) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt_b, dig_b = stored.split("$")
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b), n=2**14, r=8, p=1)
    return hmac.compare_digest(digest, base64.b64decode(dig_b))


def _access_key() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "TSR" + "".join(secrets.choice(alphabet) for _ in range(17))


def _secret_key() -> str:
    return base64.b64encode(secrets.token_bytes(30)).decode().replace("/", "x").replace("+", "z")


def valid_name(name: str) -> None:
    ok = set(string.ascii_letters + string.digits + "._-@")
    if not name or len(name) > 64 or not set(name) <= ok or name[0] in ".-":
        raise InvalidArgument(f"invalid user name {name!r}: use letters, digits, '.', '_', '-', '@'")


def valid_keys(access_key: str, secret_key: str) -> None:
    """Keys given by an operator (config-managed nodes): AWS-shaped, so every S3 client accepts them."""
    ak_ok = set(string.ascii_uppercase + string.digits)
    if not 16 <= len(access_key) <= 128 or not set(access_key) <= ak_ok:
        raise InvalidArgument("access key: 16-128 characters, upper-case letters and digits")
    if not 16 <= len(secret_key) <= 128 or not all(33 <= ord(c) < 127 for c in secret_key):
        raise InvalidArgument("secret key: 16-128 printable ASCII characters, no spaces")


def add_user(meta: MetaStore, name: str, password: str | None = None, *, uid: int | None = None,
             gid: int | None = None, access_key: str | None = None, secret_key: str | None = None) -> User:
    """Add a user with fresh S3 keys, or with the ones given (both or neither)."""
    valid_name(name)
    if (access_key is None) != (secret_key is None):
        raise InvalidArgument("give both the access key and the secret key, or neither")
    if access_key is not None and secret_key is not None:
        valid_keys(access_key, secret_key)
    nt = nt_hash(password) if password else None
    pw = hash_password(password) if password else None
    ak, sk = access_key or _access_key(), secret_key or _secret_key()

    def apply(t: Txn) -> User:
        if t.user(name) is not None:
            raise Exists(f"user {name!r} exists")
        if t.user_by_key(ak) is not None:
            raise Exists("that access key belongs to another user")
        u_id = uid if uid is not None else t.next_uid()
        user = User(name, u_id, gid if gid is not None else u_id, ak, sk, nt, pw)
        t.add_user(user, time.time_ns())
        return user
    return meta.write(apply)


def remove_user(meta: MetaStore, name: str) -> None:
    def apply(t: Txn) -> None:
        if not t.remove_user(name):
            raise NotFound(f"no user {name!r}")
    meta.write(apply)


def list_users(meta: MetaStore) -> list[User]:
    with meta.read() as t:
        return t.users()


def user_by_name(meta: MetaStore, name: str) -> User | None:
    with meta.read() as t:
        return t.user(name)


def user_by_access_key(meta: MetaStore, access_key: str) -> User | None:
    with meta.read() as t:
        return t.user_by_key(access_key)
