"""SET_INFO (InfoType FILE) buffers decoded into small dataclasses (MS-FSCC 2.4, MS-SMB2 2.2.39). Sans-IO.

:func:`decode_set_info` takes the FileInformationClass and the request's Buffer and returns one of the
dataclasses below, or raises :class:`~protocols.smb.fileinfo.InfoError` (never anything else, whatever
the bytes) carrying the NTSTATUS to answer with:

- a buffer shorter than the class's fixed part -> INFO_LENGTH_MISMATCH (MS-FSA 2.1.5.15);
- a field out of range (negative size or offset, a name length that is odd or runs past the buffer, an
  empty name, a RootDirectory other than 0, which MS-SMB2 3.3.5.21.1 requires of SMB2 renames)
  -> INVALID_PARAMETER; a name that is not valid UTF-16LE -> OBJECT_NAME_INVALID;
- a class this module does not set -> INVALID_INFO_CLASS (the server may answer NOT_SUPPORTED instead).

FileBasicInformation times (MS-FSA 2.1.5.15.2): 0 means "leave as is", -1 means "stop updating this time
for the rest of this handle's life" and -2 (Windows 8+) "resume updating"; any other value is a FILETIME,
given here as ns since the Unix epoch; below -2 is INVALID_PARAMETER.  FileAttributes 0 means "leave as
is"; other values are masked to the settable bits (DIRECTORY kept, so the server can refuse it on a file
and TEMPORARY on a directory with INVALID_PARAMETER, as MS-FSA says: that needs the open, not the bytes).

Public interface: :class:`BasicInfo`, :class:`EndOfFile`, :class:`Allocation`, :class:`Disposition`,
:class:`RenameInfo` (also FileLinkInformation), :class:`Position`, :class:`SetInfo` (their union),
:func:`decode_set_info`, and the ``DISPOSITION_*`` flags.

>>> decode_set_info(20, (4096).to_bytes(8, "little"))
EndOfFile(size=4096)
>>> r = decode_set_info(10, b"\\x01" + bytes(15) + b"\\x06\\x00\\x00\\x00a\\x00\\\\\\x00b\\x00")
>>> r.name, r.replace, r.link
('a\\\\b', True, False)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, TypeAlias

from .fileinfo import FileAttribute, FileInfoClass, InfoError, from_filetime
from .status import NtStatus

TIME_UNCHANGED: Final = 0
TIME_FREEZE: Final = -1   # stop updating this time on this handle
TIME_RESUME: Final = -2   # resume updating it

DISPOSITION_DELETE: Final = 0x1
DISPOSITION_POSIX_SEMANTICS: Final = 0x2
DISPOSITION_FORCE_IMAGE_SECTION_CHECK: Final = 0x4
DISPOSITION_ON_CLOSE: Final = 0x8
DISPOSITION_IGNORE_READONLY_ATTRIBUTE: Final = 0x10
_DISPOSITION_KNOWN: Final = 0x1F

_SETTABLE_ATTRS: Final = int(FileAttribute.READONLY | FileAttribute.HIDDEN | FileAttribute.SYSTEM
                             | FileAttribute.DIRECTORY | FileAttribute.ARCHIVE | FileAttribute.NORMAL
                             | FileAttribute.TEMPORARY | FileAttribute.OFFLINE
                             | FileAttribute.NOT_CONTENT_INDEXED)


@dataclass(frozen=True, slots=True)
class BasicInfo:
    """FileBasicInformation: each time is ns since 1970 to set, or None to leave; see ``frozen``/``resumed``."""

    created_ns: int | None
    accessed_ns: int | None
    written_ns: int | None
    changed_ns: int | None
    attributes: int | None            # None: leave as is
    frozen: frozenset[str] = frozenset()   # names of the times given as -1
    resumed: frozenset[str] = frozenset()  # names of the times given as -2


@dataclass(frozen=True, slots=True)
class EndOfFile:
    """FileEndOfFileInformation: truncate or extend to ``size``."""

    size: int


@dataclass(frozen=True, slots=True)
class Allocation:
    """FileAllocationInformation: reserve ``size`` bytes (shrinks the file when below its end)."""

    size: int


@dataclass(frozen=True, slots=True)
class Disposition:
    """FileDispositionInformation (``flags`` is DELETE or 0) or FileDispositionInformationEx."""

    flags: int

    @property
    def delete(self) -> bool:
        return bool(self.flags & DISPOSITION_DELETE)


@dataclass(frozen=True, slots=True)
class RenameInfo:
    """FileRenameInformation (or FileLinkInformation when ``link``): the new name, share-relative."""

    name: str
    replace: bool
    link: bool = False


@dataclass(frozen=True, slots=True)
class Position:
    """FilePositionInformation: the handle's CurrentByteOffset."""

    offset: int


SetInfo: TypeAlias = BasicInfo | EndOfFile | Allocation | Disposition | RenameInfo | Position

_TIME_NAMES: Final = ("created", "accessed", "written", "changed")
_BASIC = struct.Struct("<qqqqI")  # + 4 reserved bytes
_BASIC_SIZE: Final = 40  # sizeof(FILE_BASIC_INFORMATION): MS-FSA 2.1.5.15.2 wants it whole
_RENAME_FIXED: Final = 20  # ReplaceIfExists, Reserved[7], RootDirectory, FileNameLength


def _need(buf: bytes, size: int) -> None:
    if len(buf) < size:
        raise InfoError(NtStatus.INFO_LENGTH_MISMATCH, f"{len(buf)} bytes, need {size}")


def _basic(buf: bytes) -> BasicInfo:
    _need(buf, _BASIC_SIZE)
    *times, attrs = _BASIC.unpack_from(buf)
    values: list[int | None] = []
    frozen: set[str] = set()
    resumed: set[str] = set()
    for name, t in zip(_TIME_NAMES, times, strict=True):
        if t == TIME_FREEZE:
            frozen.add(name)
        elif t == TIME_RESUME:
            resumed.add(name)
        elif t < 0:
            raise InfoError(NtStatus.INVALID_PARAMETER, f"{name} time {t}")
        values.append(None if t <= 0 else from_filetime(t))
    masked = attrs & _SETTABLE_ATTRS  # MS-FSA 2.1.5.15.2: bits that cannot be set are ignored
    created, accessed, written, changed = values
    return BasicInfo(created, accessed, written, changed, masked if attrs else None,
                     frozenset(frozen), frozenset(resumed))


def _size(buf: bytes, what: str) -> int:
    _need(buf, 8)
    (value,) = struct.unpack_from("<q", buf)
    if value < 0:
        raise InfoError(NtStatus.INVALID_PARAMETER, f"{what} {value}")
    return int(value)


def _disposition(buf: bytes) -> Disposition:
    _need(buf, 1)
    return Disposition(DISPOSITION_DELETE if buf[0] else 0)


def _disposition_ex(buf: bytes) -> Disposition:
    _need(buf, 4)
    (flags,) = struct.unpack_from("<I", buf)
    if flags & ~_DISPOSITION_KNOWN:
        raise InfoError(NtStatus.INVALID_PARAMETER, f"disposition flags {flags:#x}")
    return Disposition(flags)


def _rename(buf: bytes, link: bool) -> RenameInfo:
    _need(buf, _RENAME_FIXED)
    replace, root, length = buf[0], *struct.unpack_from("<QI", buf, 8)
    if root != 0:
        raise InfoError(NtStatus.INVALID_PARAMETER, "RootDirectory must be 0 in SMB2")
    if length == 0 or length % 2 or _RENAME_FIXED + length > len(buf):
        raise InfoError(NtStatus.INVALID_PARAMETER, f"FileNameLength {length} in {len(buf)} bytes")
    try:
        name = buf[_RENAME_FIXED:_RENAME_FIXED + length].decode("utf-16-le")
    except UnicodeDecodeError:
        raise InfoError(NtStatus.OBJECT_NAME_INVALID, "not UTF-16LE") from None
    return RenameInfo(name, bool(replace), link)


def decode_set_info(cls: int, buffer: bytes | bytearray | memoryview) -> SetInfo:
    """Decode a SET_INFO Buffer of FileInformationClass ``cls`` (see the module docstring for errors)."""
    buf = bytes(buffer)
    if cls == FileInfoClass.BASIC:
        return _basic(buf)
    if cls == FileInfoClass.END_OF_FILE:
        return EndOfFile(_size(buf, "end of file"))
    if cls == FileInfoClass.ALLOCATION:
        return Allocation(_size(buf, "allocation size"))
    if cls == FileInfoClass.POSITION:
        return Position(_size(buf, "position"))
    if cls == FileInfoClass.DISPOSITION:
        return _disposition(buf)
    if cls == FileInfoClass.DISPOSITION_EX:
        return _disposition_ex(buf)
    if cls in (FileInfoClass.RENAME, FileInfoClass.LINK):
        return _rename(buf, link=cls == FileInfoClass.LINK)
    raise InfoError(NtStatus.INVALID_INFO_CLASS, f"set info class {cls}")
