"""Bucket names and object keys, and how they map onto paths in core.fs.

A bucket is a top-level directory under the S3 root; a key's '/'-separated
parts are the directories and file below it.  A zero-byte key ending in '/'
is a directory.  Keys that cannot be paths are refused with ``InvalidArgument``
(empty or '.'/'..' parts, NUL) or ``KeyTooLongError`` (a part over 255 bytes,
or a key over 1024 bytes).

>>> key_parts("a/b/c.txt")
(['a', 'b', 'c.txt'], False)
>>> key_parts("photos/")
(['photos'], True)
"""

from __future__ import annotations

import re

from protocols.s3.errors import S3Error

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
MAX_KEY = 1024


def valid_bucket(name: str) -> bool:
    """AWS's rules for general purpose bucket names.

    3-63 characters of lowercase letters, digits, '.' and '-', starting and
    ending with a letter or digit; no '..', '.-' or '-.'; not shaped like an
    IPv4 address; none of the prefixes and suffixes AWS reserves.

    >>> [valid_bucket(n) for n in ("photos", "my.bucket-1", "a1b")]
    [True, True, True]
    >>> [valid_bucket(n) for n in ("ok.-bad", "ok-.bad", "a..b", "Up", "ab", "-ab", "192.168.5.4", "xn--ab",
    ...                            "sthree-x", "x-s3alias", "x--ol-s3", "a" * 64, "under_score")]
    [False, False, False, False, False, False, False, False, False, False, False, False, False]
    """
    return (bool(_BUCKET.match(name)) and ".." not in name and ".-" not in name and "-." not in name
            and not _IP.match(name) and not name.startswith(_RESERVED_PREFIXES)
            and not name.endswith(_RESERVED_SUFFIXES))


def check_bucket(name: str) -> None:
    if not valid_bucket(name):
        raise S3Error("InvalidBucketName", "The specified bucket is not valid.", 400, extra={"BucketName": name})


def key_parts(key: str) -> tuple[list[str], bool]:
    """(path components, is a directory marker) for a key, or an S3 error."""
    raw = key.encode("utf-8", "surrogateescape")
    if len(raw) > MAX_KEY:
        raise S3Error("KeyTooLongError", "Your key is too long", 400)
    if "\0" in key:
        raise S3Error("InvalidArgument", "Object keys may not contain NUL", 400)
    is_dir = key.endswith("/")
    parts = key[:-1].split("/") if is_dir else key.split("/")
    for p in parts:
        if p in ("", ".", ".."):
            raise S3Error("InvalidArgument", f"Object key {key!r} has an empty, '.' or '..' part, which "
                          "cannot map onto a path", 400)
        if len(p.encode("utf-8", "surrogateescape")) > 255:
            raise S3Error("KeyTooLongError", f"A '/'-separated part of key {key!r} is over 255 bytes", 400)
    return parts, is_dir
