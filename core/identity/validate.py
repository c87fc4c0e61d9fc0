"""What names and S3 keys look like, and fresh keys.

Generated access keys are AWS-shaped (``TSR`` + 17 upper-case letters and
digits).  Keys imported from other S3 servers are accepted as those servers
issue them, so users can move their keys over:

- AWS: 16-128 upper-case letters and digits (``AKIA…``);
- Ceph RGW: 20 characters, upper-case letters and digits, or lower-case hex;
- MinIO: 3 or more characters (root user 3+, IAM keys 8-20); Tessera accepts
  letters, digits, ``.``, ``_`` and ``-`` — never ``/`` (SigV4's credential
  separator), ``:`` (SigV2's), ``=`` or ``,`` (MinIO's reserved characters).

Secrets: 8-128 printable ASCII characters without spaces (MinIO's minimum is 8).

>>> valid_access_key("AKIAIOSFODNN7EXAMPLE"); valid_access_key("0555b35654ad1656d804")
>>> valid_access_key("minio_admin-1.x"); valid_secret_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
>>> valid_access_key("ak:1")
Traceback (most recent call last):
  ...
core.errors.InvalidArgument: access key: 3-128 characters, letters, digits, '.', '_' and '-'
"""

from __future__ import annotations

import base64
import re
import secrets
import string

from core.errors import InvalidArgument

_NAME = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9._@-]{0,63}")
_ACCESS_KEY = re.compile(r"[A-Za-z0-9._-]{3,128}")
NAME_RULE = "1-64 letters, digits, '.', '_', '-', '@', not starting with '.' or '-'"


def valid_name(name: str, what: str = "user") -> None:
    """User and group names (they become S3 principals and SMB account names).

    >>> valid_name("alice.b@corp"); valid_name("-x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    core.errors.InvalidArgument: invalid user name '-x': 1-64 letters, digits, ...
    """
    if not _NAME.fullmatch(name):
        raise InvalidArgument(f"invalid {what} name {name!r}: {NAME_RULE}")


def valid_access_key(access_key: str) -> None:
    if not _ACCESS_KEY.fullmatch(access_key):
        raise InvalidArgument("access key: 3-128 characters, letters, digits, '.', '_' and '-'")


def valid_secret_key(secret_key: str) -> None:
    if not 8 <= len(secret_key) <= 128 or not all(33 <= ord(c) < 127 for c in secret_key):
        raise InvalidArgument("secret key: 8-128 printable ASCII characters, no spaces")


def valid_keys(access_key: str, secret_key: str) -> None:
    valid_access_key(access_key)
    valid_secret_key(secret_key)


def valid_id(value: int, what: str) -> None:
    """uids and gids: 0 .. 2^32-2 (4294967295 is (uid_t)-1)."""
    if not 0 <= value < 2**32 - 1:
        raise InvalidArgument(f"{what} {value} out of range (0-{2**32 - 2})")


def new_access_key() -> str:
    """``TSR`` + 17 upper-case letters and digits.

    >>> k = new_access_key(); len(k), k[:3], k == k.upper() and k.isalnum()
    (20, 'TSR', True)
    """
    alphabet = string.ascii_uppercase + string.digits
    return "TSR" + "".join(secrets.choice(alphabet) for _ in range(17))


def new_secret_key() -> str:
    """40 characters of base64 without '/' and '+' (as AWS issues them, minus the symbols)."""
    return base64.b64encode(secrets.token_bytes(30)).decode().replace("/", "x").replace("+", "z")
