"""SMB path names: checking what a client sends and walking it inside one share. Sans-IO apart from
the core.fs lookups it is given.

A CREATE names a path relative to the share root, components separated by ``\\`` (MS-SMB2 2.2.13:
no leading ``\\``). :func:`split` refuses, with the NTSTATUS Windows servers use:

- a leading ``\\`` (an absolute path) -> INVALID_PARAMETER;
- ``.`` or ``..`` components (a client normalises them away; one that sends them is trying to walk
  out of the share) -> OBJECT_PATH_SYNTAX_BAD, as Samba answers;
- empty components (``a\\\\b``) and names with ``" * / < > ? |`` or control characters ->
  OBJECT_NAME_INVALID; a stream suffix (``name:stream[:$DATA]``) is split off the last component
  (a stream on the share root or on a directory is OBJECT_NAME_INVALID);
- Windows device names (CON, PRN, AUX, NUL, COM1-9, LPT1-9, with any extension) and names ending in
  a space or a dot -> OBJECT_NAME_INVALID (creating them would make files Windows clients cannot
  open); existing ones made by POSIX clients stay reachable through the directory listing only.

:func:`walk` looks the components up from the share's root inode, case-insensitively when the
share says so (core.fs's folded-name index), following symlinks only when their target stays inside
the share (else ACCESS_DENIED: nothing escapes a share), at most 40 of them.

>>> split("dir\\\\file.txt")
SmbPath(parts=('dir', 'file.txt'), stream='')
>>> split("a\\\\..\\\\b")
Traceback (most recent call last):
...
protocols.smb.paths.PathError: '..' in a path
>>> split("f.txt:meta:$DATA").stream
'meta'
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from core.errors import NotADirectory
from core.fs import Attr, FileType, windows_reserved

from .status import NtStatus

MAX_SYMLINKS: Final = 40
_BAD_CHARS: Final = re.compile(r'[\x00-\x1f"*/<>?|]')


class PathError(Exception):
    """A path the server refuses; answer ``status``."""

    def __init__(self, reason: str, status: NtStatus) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class SmbPath:
    """A checked path: its components and the named stream ('' = the default data stream)."""

    parts: tuple[str, ...]
    stream: str = ""

    @property
    def name(self) -> str:
        return self.parts[-1] if self.parts else ""

    def text(self) -> str:
        """Backslash-separated, as FileNameInformation shows it."""
        return "\\".join(self.parts)


def reserved(name: str) -> bool:
    """Windows cannot use this name for a file.

    >>> reserved("con"), reserved("LPT1.txt"), reserved("a."), reserved("console")
    (True, True, True, False)
    """
    return windows_reserved(name)


def check_component(name: str, *, creating: bool = True) -> None:
    """PathError unless ``name`` can be one component of an SMB path."""
    if name in (".", ".."):
        raise PathError(f"{name!r} in a path", NtStatus.OBJECT_PATH_SYNTAX_BAD)
    if not name:
        raise PathError("an empty path component", NtStatus.OBJECT_NAME_INVALID)
    if _BAD_CHARS.search(name):
        raise PathError(f"{name!r} contains a character Windows forbids in names", NtStatus.OBJECT_NAME_INVALID)
    if len(name.encode("utf-8", "surrogateescape")) > 255:
        raise PathError(f"{name[:40]!r}... is longer than 255 bytes", NtStatus.OBJECT_NAME_INVALID)
    if creating and reserved(name):
        raise PathError(f"{name!r} is a Windows device name or ends in a dot or space", NtStatus.OBJECT_NAME_INVALID)


def _stream(last: str) -> tuple[str, str]:
    """Split ``name:stream[:type]`` into (name, stream); '' when it names the default stream."""
    if ":" not in last:
        return last, ""
    bits = last.split(":")
    if len(bits) > 3:
        raise PathError(f"{last!r}: too many ':'", NtStatus.OBJECT_NAME_INVALID)
    name, stream = bits[0], bits[1]
    if not stream and len(bits) == 2:
        raise PathError(f"{last!r}: an empty stream name needs its type (name::$DATA)", NtStatus.OBJECT_NAME_INVALID)
    kind = bits[2] if len(bits) == 3 else "$DATA"
    if kind.upper() != "$DATA":
        raise PathError(f"stream type {kind!r} (only $DATA)", NtStatus.OBJECT_NAME_INVALID)
    if stream and _BAD_CHARS.search(stream):
        raise PathError(f"stream name {stream!r} is invalid", NtStatus.OBJECT_NAME_INVALID)
    return name, stream


def split(path: str) -> SmbPath:
    """Check a CREATE path (see the module docstring) and split it."""
    if path.startswith("\\"):
        raise PathError("an absolute path (leading backslash)", NtStatus.INVALID_PARAMETER)
    if not path:
        return SmbPath(())
    parts = path.split("\\")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()  # "dir\" names the directory
    last, stream = _stream(parts[-1])
    if last == "" and len(parts) == 1:
        raise PathError("a stream on the share root", NtStatus.OBJECT_NAME_INVALID)
    parts[-1] = last
    for p in parts[:-1]:
        check_component(p, creating=False)
    check_component(parts[-1], creating=False)
    return SmbPath(tuple(parts), stream)


Lookup = Callable[[int, str], Attr]
ReadLink = Callable[[int], str]


def _inside(share_path: str, target: str) -> bool:
    base = share_path.rstrip("/") + "/"
    return share_path == "/" or target == share_path or target.startswith(base)


def walk(share_path: str, root: Attr, parts: tuple[str, ...], lookup: Lookup, readlink: ReadLink) -> Attr:
    """The inode ``parts`` names below the share root ``root`` (core.fs errors propagate).

    Symlinks met on the way (and as the last component) are followed when their target, made
    absolute against the link's store directory and normalised, stays inside the share: the walk
    restarts from the share root with the target's components, so no intermediate link can lead
    out either. Otherwise PathError ACCESS_DENIED (nothing escapes a share); more than 40 links
    is STOPPED_ON_SYMLINK. ``lookup(parent_ino, name)`` is the (case-folding) lookup.
    """
    cur, here = root, share_path
    pending = list(reversed(parts))
    hops = 0
    while pending:
        name = pending.pop()
        if cur.type != FileType.DIR:
            raise NotADirectory(f"{here} is not a directory")
        attr = lookup(cur.ino, name)
        path = posixpath.join(here, name)
        if attr.type == FileType.LNK:
            hops += 1
            if hops > MAX_SYMLINKS:
                raise PathError("too many symlinks", NtStatus.STOPPED_ON_SYMLINK)
            target = posixpath.normpath(posixpath.join(here, readlink(attr.ino)))
            if not _inside(share_path, target):
                raise PathError(f"the symlink {path} points outside the share", NtStatus.ACCESS_DENIED)
            rel = target[len(share_path):].strip("/")
            pending.extend(reversed([p for p in rel.split("/") if p]))
            cur, here = root, share_path
            continue
        cur, here = attr, path
    return cur
