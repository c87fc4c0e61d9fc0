"""Alternate data streams (``file.txt:Zone.Identifier``, macOS's ``AFP_AfpInfo``/``AFP_Resource``),
kept as extended attributes of the file, as Samba's ``vfs_streams_xattr`` does: the stream
``NAME`` of a file is the xattr ``user.DosStream.NAME:$DATA`` (so NFS and core.fs see them too).

A stream holds at most core.fs's xattr value limit (64 KiB): a write past it is DISK_FULL, the
same limit Samba has on file systems with small xattrs. Stream opens read and write the value
whole (read-modify-write under the connection's lock); they take the base file's share mode
and byte-range locks do not apply to them. Deleting (delete-on-close or a delete disposition on
a stream open) removes the xattr.
"""

from __future__ import annotations

from core.errors import NoAttribute
from core.fs import FileSystem

from .errors import SmbError
from .status import NtStatus

PREFIX = "user.DosStream."
SUFFIX = ":$DATA"
MAX_STREAM = 64 * 1024


def xattr_name(stream: str) -> str:
    """The xattr holding stream ``stream``.

    >>> xattr_name("Zone.Identifier")
    'user.DosStream.Zone.Identifier:$DATA'
    """
    return PREFIX + stream + SUFFIX


def listing(fs: FileSystem, ino: int) -> list[tuple[str, int]]:
    """(stream name, size) of every named stream of ``ino``."""
    names = [n for n in fs.listxattr(ino) if n.startswith(PREFIX) and n.endswith(SUFFIX)]
    if not names:
        return []
    values = fs.getxattrs(ino, names)
    return sorted((n[len(PREFIX):-len(SUFFIX)], len(v)) for n, v in values.items())


def exists(fs: FileSystem, ino: int, stream: str) -> bool:
    try:
        fs.getxattr(ino, xattr_name(stream))
    except NoAttribute:
        return False
    return True


def read(fs: FileSystem, ino: int, stream: str) -> bytes:
    try:
        return fs.getxattr(ino, xattr_name(stream))
    except NoAttribute:
        raise SmbError(NtStatus.OBJECT_NAME_NOT_FOUND, f"no stream {stream!r}") from None


def put(fs: FileSystem, ino: int, stream: str, value: bytes) -> None:
    if len(value) > MAX_STREAM:
        raise SmbError(NtStatus.DISK_FULL, f"a stream holds at most {MAX_STREAM} bytes here")
    fs.setxattr(ino, xattr_name(stream), value)


def write(fs: FileSystem, ino: int, stream: str, offset: int, data: bytes) -> None:
    old = read(fs, ino, stream)
    if offset + len(data) > MAX_STREAM:
        raise SmbError(NtStatus.DISK_FULL, f"a stream holds at most {MAX_STREAM} bytes here")
    buf = bytearray(old.ljust(offset, b"\0"))
    buf[offset:offset + len(data)] = data
    put(fs, ino, stream, bytes(buf))


def truncate(fs: FileSystem, ino: int, stream: str, size: int) -> None:
    old = read(fs, ino, stream)
    put(fs, ino, stream, old[:size].ljust(size, b"\0"))


def remove(fs: FileSystem, ino: int, stream: str) -> None:
    try:
        fs.removexattr(ino, xattr_name(stream))
    except NoAttribute:
        pass
