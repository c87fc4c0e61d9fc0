"""core.fs: the one storage interface every protocol uses, and all it may import from core.

Protocols import from this package (and ``core.identity``, ``core.errors``) only; the
metadata and data stores behind it are private to core.  A protocol opens a
:class:`Volume`, authenticates its caller through ``volume.identity`` and works through
``volume.fs.as_user(cred)``: every call of that view is decided with the caller's
credential (mode bits or the ACL, see :mod:`core.fs.perm`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from core.fs import acl
from core.fs.acl import Ace, AceType, Acl, Who, WhoKind
from core.fs.files import FileHandle
from core.fs.fs import FileSystem
from core.fs.names import windows_reserved
from core.fs.retention import Retention
from core.fs.stage import Stager
from core.fs.stateless import HANDLE_SIZE, Wcc
from core.fs.types import (
    ANONYMOUS,
    DELETE,
    DOS_ARCHIVE,
    DOS_HIDDEN,
    DOS_KEEP,
    DOS_NOT_CONTENT_INDEXED,
    DOS_OFFLINE,
    DOS_READONLY,
    DOS_SPARSE,
    DOS_SYSTEM,
    DOS_TEMPORARY,
    NOBODY_ID,
    NOW,
    READ,
    ROOT,
    WRITE,
    Attr,
    Cred,
    DirEntry,
    LockInfo,
    StatFs,
)
from core.fs.vops import TreePolicy, VersionInfo
from core.meta.types import FileType

if TYPE_CHECKING:
    from core.identity import Identity


class Volume(Protocol):
    """An opened store as a protocol sees it: the file system (as the admin) and the identities."""

    @property
    def fs(self) -> FileSystem: ...

    @property
    def identity(self) -> Identity: ...

    def close(self) -> None: ...


def open_volume(data_dir: str, *, threads: int = 4) -> Volume:
    """Open the store in ``data_dir`` for a protocol server."""
    from core.store import open_store  # core.store builds on this package

    return open_store(data_dir, threads=threads)


__all__ = [
    "ANONYMOUS", "DELETE", "DOS_ARCHIVE", "DOS_HIDDEN", "DOS_KEEP", "DOS_NOT_CONTENT_INDEXED", "DOS_OFFLINE",
    "DOS_READONLY", "DOS_SPARSE", "DOS_SYSTEM", "DOS_TEMPORARY", "HANDLE_SIZE", "NOBODY_ID", "NOW", "READ", "ROOT",
    "WRITE", "Ace", "AceType", "Acl", "Attr", "Cred", "DirEntry", "FileHandle", "FileSystem", "FileType", "LockInfo",
    "Retention", "Stager", "StatFs", "TreePolicy", "VersionInfo", "Volume", "Wcc", "Who", "WhoKind", "acl",
    "open_volume", "windows_reserved",
]
