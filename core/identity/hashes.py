"""Password hashes: the NT hash SMB's NTLM needs and a salted scrypt hash.

NTLM authenticates with the NT hash (MD4 of the UTF-16LE password); OpenSSL 3
no longer offers MD4, so a small implementation lives here.  The password
itself is kept only as a salted scrypt hash, for protocols that see it in
clear.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct


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
    """``scrypt$SALT$DIGEST`` (base64), N=2^14, r=8, p=1.

    >>> check_password(hash_password("pw"), "pw"), check_password(hash_password("pw"), "PW")
    (True, False)
    """
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_password(stored: str | None, password: str) -> bool:
    if not stored or not stored.startswith("scrypt$") or stored.count("$") != 2:
        return False
    _, salt_b, dig_b = stored.split("$")
    try:
        salt, want = base64.b64decode(salt_b, validate=True), base64.b64decode(dig_b, validate=True)
    except (binascii.Error, ValueError):
        return False
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return hmac.compare_digest(digest, want)
