"""Name and path validation: what may be a directory entry."""

from __future__ import annotations

import os

from core.errors import InvalidArgument, NameTooLong

NAME_MAX = 255
PATH_MAX = 4096


def encode(name: str | bytes) -> bytes:
    """A directory entry name as stored: bytes, validated."""
    raw = name if isinstance(name, bytes) else os.fsencode(name)
    if not raw or raw in (b".", b".."):
        raise InvalidArgument(f"invalid name {name!r}")
    if b"/" in raw or b"\0" in raw:
        raise InvalidArgument(f"name may not contain '/' or NUL: {name!r}")
    if len(raw) > NAME_MAX:
        raise NameTooLong(f"name is {len(raw)} bytes, at most {NAME_MAX} allowed")
    return raw


def decode(raw: bytes) -> str:
    return os.fsdecode(raw)


def split_path(path: str) -> list[str]:
    """Components of an absolute store path; '.' and empty parts are skipped.

    >>> split_path("/a//b/./c/")
    ['a', 'b', 'c']
    """
    if not path.startswith("/"):
        raise InvalidArgument(f"path must be absolute: {path!r}")
    if len(os.fsencode(path)) > PATH_MAX:
        raise NameTooLong("path too long")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidArgument(f"'..' is not allowed in store paths: {path!r}")
    return parts
