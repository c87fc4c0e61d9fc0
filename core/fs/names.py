"""Name and path validation: what may be a directory entry.

core.fs accepts any byte string but '/' and NUL as a name (a POSIX client may make ``CON`` or
``name.``); :func:`windows_reserved` tells the SMB layer which names a Windows client must not
be able to create or open, so it can refuse them (OBJECT_NAME_INVALID) at its own edge.
"""

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


_DEVICES = frozenset({"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
                     | {f"{d}{n}" for d in ("COM", "LPT") for n in "123456789\u00b9\u00b2\u00b3"})


def windows_reserved(name: str) -> bool:
    """True for a name Windows reserves: a DOS device (CON, PRN, AUX, NUL, COM1-COM9, LPT1-LPT9, the
    superscript COM¹-COM³ and LPT¹-LPT³, CONIN$, CONOUT$), in any case, alone or with an extension
    (``nul.txt``, ``Con .tar.gz``: Win32 opens the device for these), or a name ending in a dot or a
    space (Win32 strips those, so the name could never be reached).  COM0 and LPT0 are not reserved.

    >>> [windows_reserved(n) for n in ("CON", "con.txt", "Lpt9.tar.gz", "nul .x", "COM\u00b2", "CONOUT$")]
    [True, True, True, True, True, True]
    >>> [windows_reserved(n) for n in ("name.", "name ", "..", "")]
    [True, True, True, True]
    >>> [windows_reserved(n) for n in ("console", "COM0", "LPT10", "acon", "x.con", "nul_", "com1x.txt")]
    [False, False, False, False, False, False, False]
    """
    if not name or name[-1] in ". ":
        return True
    return name.split(".", 1)[0].rstrip(" ").upper() in _DEVICES
