"""QUERY_INFO answers built from core.fs attributes (MS-FSCC 2.4 and 2.5, MS-SMB2 2.2.37/2.2.38). Sans-IO.

Everything here is a pure function from an :class:`~core.fs.Attr` / :class:`~core.fs.StatFs` (plus a few
facts only the server knows: the name, the access mask granted, the handle's position) to the bytes of
one information class.  All integers are little-endian.

Times: a FILETIME is 100 ns intervals since 1601-01-01 UTC; core.fs keeps ns since 1970.  A FILETIME of 0
means "not known", so a time before 1601 encodes as 0 (:func:`filetime`, :func:`from_filetime`).

DOS attributes (:func:`dos_attributes`) follow Samba's mode-bit fallback, ``dos_mode_from_sbuf`` with
``map readonly = yes`` (the classic rule; recent Samba defaults to ``no`` and relies on DOS attributes
stored in an xattr, which Tessera passes in as ``stored`` once core.fs keeps them): DIRECTORY for
directories; READONLY for a non-directory whose owner write bit is clear (never on a directory: Explorer
reads a read-only folder as a "customised" one, so Samba and Windows leave it off); HIDDEN for a name
starting with ``.`` only when the share asks for it (Samba's ``hide dot files``); NORMAL when nothing else
is set.  ``stored`` attributes win, except that DIRECTORY always follows the inode's type.  Symlinks are
followed by the server and reported as what they point at, so the reparse tag is always 0.

Buffer rule (:func:`fit`, MS-SMB2 3.3.5.20.1 passing MS-FSA 2.1.5.12/2.1.5.13 through): if
OutputBufferLength is smaller than a class's fixed part the answer is INFO_LENGTH_MISMATCH with no data;
a class with a variable tail (a name) that does not fit whole is cut at OutputBufferLength and answered
with BUFFER_OVERFLOW (a warning: the truncated bytes are still sent), except FileStreamInformation, whose
entries are sent whole or not at all (MS-FSA 2.1.5.12.29).  The fixed part is each class's
``FieldOffset(name)`` block-aligned as MS-FSA says (FileAllInformation 104, FileFsVolumeInformation 24,
FileFsAttributeInformation 12, FileNameInformation 4, FileStreamInformation 24).

FileFsAttributeInformation reports the file system name "NTFS", as Samba does: Windows clients enable
features (and Office stops complaining) only for names they know; the attribute bits say only what is
true of Tessera (case preserved, Unicode on disk, persistent ACLs, case-sensitive search when the share is
case sensitive, read-only volume for a read-only share).

Public interface: :class:`FileInfoClass`, :class:`FsInfoClass`, :class:`FileAttribute`, :class:`FsAttribute`,
:func:`filetime`, :func:`from_filetime`, :func:`dos_attributes`, :func:`allocation_size`,
:class:`FileFacts` -> :func:`query_file` (status and bytes within OutputBufferLength) or
:func:`query_file_info` (the whole structure); :class:`VolumeFacts` -> :func:`query_fs` /
:func:`query_fs_info`; :func:`fit`; :class:`InfoError` (INVALID_INFO_CLASS for a class not served here).
SET_INFO decoding is in ``setinfo``, QUERY_DIRECTORY entries and patterns in ``dirinfo``.

>>> filetime(0)
116444736000000000
>>> from_filetime(filetime(1_700_000_000_123_456_700))
1700000000123456700
>>> len(query_file_info(FileInfoClass.BASIC, FileFacts(_ATTR_EXAMPLE)))
40
>>> fit(b"12345678", 4, fixed=8)
(<NtStatus.INFO_LENGTH_MISMATCH: 3221225476>, b'')
>>> fit(b"1234" + b"abcdef", 8, fixed=4)
(<NtStatus.BUFFER_OVERFLOW: 2147483653>, b'1234abcd')
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Final

from core.fs import Attr, FileType, StatFs

from .status import NtStatus

EPOCH_DELTA: Final = 116_444_736_000_000_000  # FILETIME of 1970-01-01, in 100 ns units
BYTES_PER_SECTOR: Final = 512
MAX_COMPONENT: Final = 255
FS_NAME: Final = "NTFS"
DEFAULT_STREAM: Final = "::$DATA"


class InfoError(Exception):
    """A request this module must refuse; ``status`` is the NTSTATUS to answer with."""

    def __init__(self, status: NtStatus, why: str = "") -> None:
        super().__init__(f"{status.name}: {why}" if why else status.name)
        self.status = status


class FileInfoClass(IntEnum):
    """FileInformationClass values (MS-FSCC 2.4) for QUERY_INFO / SET_INFO with InfoType FILE."""

    DIRECTORY = 1
    FULL_DIRECTORY = 2
    BOTH_DIRECTORY = 3
    BASIC = 4
    STANDARD = 5
    INTERNAL = 6
    EA = 7
    ACCESS = 8
    NAME = 9
    RENAME = 10
    LINK = 11
    NAMES = 12
    DISPOSITION = 13
    POSITION = 14
    FULL_EA = 15
    MODE = 16
    ALIGNMENT = 17
    ALL = 18
    ALLOCATION = 19
    END_OF_FILE = 20
    ALTERNATE_NAME = 21
    STREAM = 22
    COMPRESSION = 28
    NETWORK_OPEN = 34
    ATTRIBUTE_TAG = 35
    ID_BOTH_DIRECTORY = 37
    ID_FULL_DIRECTORY = 38
    NORMALIZED_NAME = 48
    DISPOSITION_EX = 64


class FsInfoClass(IntEnum):
    """FsInformationClass values (MS-FSCC 2.5) for QUERY_INFO with InfoType FILESYSTEM."""

    VOLUME = 1
    LABEL = 2
    SIZE = 3
    DEVICE = 4
    ATTRIBUTE = 5
    CONTROL = 6
    FULL_SIZE = 7
    OBJECT_ID = 8
    SECTOR_SIZE = 11


class FileAttribute(IntFlag):
    """FILE_ATTRIBUTE_* (MS-FSCC 2.6)."""

    READONLY = 0x1
    HIDDEN = 0x2
    SYSTEM = 0x4
    DIRECTORY = 0x10
    ARCHIVE = 0x20
    NORMAL = 0x80
    TEMPORARY = 0x100
    SPARSE_FILE = 0x200
    REPARSE_POINT = 0x400
    COMPRESSED = 0x800
    OFFLINE = 0x1000
    NOT_CONTENT_INDEXED = 0x2000
    ENCRYPTED = 0x4000


class FsAttribute(IntFlag):
    """FileSystemAttributes bits of FileFsAttributeInformation (MS-FSCC 2.5.1)."""

    CASE_SENSITIVE_SEARCH = 0x1
    CASE_PRESERVED_NAMES = 0x2
    UNICODE_ON_DISK = 0x4
    PERSISTENT_ACLS = 0x8
    NAMED_STREAMS = 0x40000
    READ_ONLY_VOLUME = 0x80000


def filetime(ns: int) -> int:
    """ns since the Unix epoch -> FILETIME; before 1601 (never in practice) -> 0, "unknown".

    >>> filetime(-11_644_473_600_000_000_000), filetime(-11_644_473_600_000_000_001)
    (0, 0)
    """
    return max(0, ns // 100 + EPOCH_DELTA)


def from_filetime(ft: int) -> int:
    """FILETIME -> ns since the Unix epoch (may be negative for dates before 1970).

    >>> from_filetime(EPOCH_DELTA + 1)
    100
    """
    return (ft - EPOCH_DELTA) * 100


def dos_attributes(attr: Attr, name: str = "", *, hide_dot_files: bool = False, stored: int | None = None) -> int:
    """The FILE_ATTRIBUTE_* bits for ``attr`` (see the module docstring for the mapping).

    >>> import dataclasses
    >>> dos_attributes(_ATTR_EXAMPLE) == FileAttribute.NORMAL
    True
    >>> dos_attributes(dataclasses.replace(_ATTR_EXAMPLE, mode=0o100444)) == FileAttribute.READONLY
    True
    >>> dos_attributes(_ATTR_EXAMPLE, ".profile", hide_dot_files=True) == FileAttribute.HIDDEN
    True
    """
    bits: int
    if stored is not None:
        bits = stored & ~(FileAttribute.DIRECTORY | FileAttribute.NORMAL)
    else:
        bits = FileAttribute(0)
        if not attr.is_dir and not attr.mode & 0o200:
            bits |= FileAttribute.READONLY
        if hide_dot_files and name.startswith(".") and name not in (".", ".."):
            bits |= FileAttribute.HIDDEN
    if attr.is_dir:
        bits |= FileAttribute.DIRECTORY
    return int(bits) if bits else int(FileAttribute.NORMAL)


def allocation_size(attr: Attr, unit: int = 4096) -> int:
    """Bytes allocated, rounded up to ``unit`` (what Windows shows as "size on disk"); 0 for directories.

    >>> allocation_size(_ATTR_EXAMPLE), allocation_size(_ATTR_EXAMPLE, 512)
    (4096, 1024)
    """
    return 0 if attr.is_dir else -(-attr.size // unit) * unit


def fit(data: bytes, output_length: int, *, fixed: int) -> tuple[NtStatus, bytes]:
    """Apply the QUERY_INFO buffer rule: (status, the bytes to send); see the module docstring."""
    if output_length < fixed:
        return NtStatus.INFO_LENGTH_MISMATCH, b""
    if len(data) > output_length:
        return NtStatus.BUFFER_OVERFLOW, data[:output_length]
    return NtStatus.SUCCESS, data


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What a QUERY_INFO file class needs beyond the Attr: supplied by the server from the open."""

    attr: Attr
    name: str = ""               # the path from the share root, backslash-separated, as FileAllInformation shows
    access: int = 0              # the open's granted access mask (FileAccessInformation)
    position: int = 0            # the open's CurrentByteOffset (FilePositionInformation)
    mode: int = 0                # FILE_WRITE_THROUGH etc. from CreateOptions (FileModeInformation)
    delete_pending: bool = False
    dos_attributes: int | None = None  # as computed by dos_attributes(); None = compute with defaults
    alloc_unit: int = 4096
    streams: tuple[tuple[str, int], ...] = ()  # named streams (name, size) after the default one
    ea_size: int = 0                  # bytes of the file's FILE_FULL_EA_INFORMATION list (FileEaInformation)


_BASIC = struct.Struct("<qqqqII")          # 40
_STANDARD = struct.Struct("<qqIBBH")       # 24
_NETWORK_OPEN = struct.Struct("<qqqqqqII")  # 56
_STREAM = struct.Struct("<IIqq")            # 24 + name


def _attrs(f: FileFacts) -> int:
    return f.dos_attributes if f.dos_attributes is not None else dos_attributes(f.attr)


def _times(a: Attr) -> tuple[int, int, int, int]:
    return filetime(a.btime_ns), filetime(a.atime_ns), filetime(a.mtime_ns), filetime(a.ctime_ns)


def _basic(f: FileFacts) -> bytes:
    return _BASIC.pack(*_times(f.attr), _attrs(f), 0)


def _standard(f: FileFacts) -> bytes:
    a = f.attr
    eof = 0 if a.is_dir else a.size
    return _STANDARD.pack(allocation_size(a, f.alloc_unit), eof, a.nlink, f.delete_pending, a.is_dir, 0)


def _name_info(name: str) -> bytes:
    raw = name.encode("utf-16-le")
    return struct.pack("<I", len(raw)) + raw


def _network_open(f: FileFacts) -> bytes:
    a = f.attr
    return _NETWORK_OPEN.pack(*_times(a), allocation_size(a, f.alloc_unit), 0 if a.is_dir else a.size,
                              _attrs(f), 0)


def _stream(f: FileFacts) -> bytes:
    entries: list[tuple[str, int]] = [] if f.attr.is_dir else [(DEFAULT_STREAM, f.attr.size)]
    entries += [(f":{name}:$DATA", size) for name, size in f.streams]
    out = bytearray()
    last = -1
    for name, size in entries:  # a directory has no default data stream (NTFS lists only named ones)
        raw = name.encode("utf-16-le")
        if last >= 0:
            out += bytes(-len(out) % 8)
            struct.pack_into("<I", out, last, len(out) - last)
        last = len(out)
        out += _STREAM.pack(0, len(raw), size, -(-size // f.alloc_unit) * f.alloc_unit) + raw
    return bytes(out)


def _all(f: FileFacts) -> bytes:
    return b"".join((_basic(f), _standard(f), struct.pack("<QIIqII", f.attr.ino, f.ea_size, f.access, f.position,
                                                                      f.mode, 0), _name_info(f.name or "\\")))


_FILE_CLASSES: Final = {
    FileInfoClass.BASIC: (_basic, 40),
    FileInfoClass.STANDARD: (_standard, 24),
    FileInfoClass.INTERNAL: (lambda f: struct.pack("<Q", f.attr.ino), 8),
    FileInfoClass.EA: (lambda f: struct.pack("<I", f.ea_size), 4),
    FileInfoClass.ACCESS: (lambda f: struct.pack("<I", f.access), 4),
    FileInfoClass.NAME: (lambda f: _name_info(f.name or "\\"), 4),  # the share root is "\\" (Linux needs a name)
    FileInfoClass.POSITION: (lambda f: struct.pack("<q", f.position), 8),
    FileInfoClass.MODE: (lambda f: struct.pack("<I", f.mode), 4),
    FileInfoClass.ALIGNMENT: (lambda f: struct.pack("<I", 0), 4),  # FILE_BYTE_ALIGNMENT
    FileInfoClass.ALL: (_all, 104),
    FileInfoClass.STREAM: (_stream, 24),
    FileInfoClass.NETWORK_OPEN: (_network_open, 56),
    FileInfoClass.ATTRIBUTE_TAG: (lambda f: struct.pack("<II", _attrs(f), 0), 8),
    FileInfoClass.NORMALIZED_NAME: (lambda f: _name_info(f.name), 4),
}


def query_file_info(cls: int, facts: FileFacts) -> bytes:
    """The whole structure of file information class ``cls``; InfoError(INVALID_INFO_CLASS) for any other.

    Use :func:`query_file` for the buffer rule too.
    """
    if cls == FileInfoClass.ALTERNATE_NAME:  # no 8.3 short names are kept (smbclient's allinfo goes on)
        raise InfoError(NtStatus.NOT_SUPPORTED, "no 8.3 short names")
    try:
        build, _ = _FILE_CLASSES[FileInfoClass(cls)]
    except (ValueError, KeyError):
        raise InfoError(NtStatus.INVALID_INFO_CLASS, f"file info class {cls}") from None
    return build(facts)


def query_file(cls: int, facts: FileFacts, output_length: int) -> tuple[NtStatus, bytes]:
    """QUERY_INFO (InfoType FILE) answered within OutputBufferLength: (status, bytes to send).

    >>> query_file(FileInfoClass.BASIC, FileFacts(_ATTR_EXAMPLE), 39)[0].name
    'INFO_LENGTH_MISMATCH'
    """
    data = query_file_info(cls, facts)
    status, out = fit(data, output_length, fixed=_FILE_CLASSES[FileInfoClass(cls)][1])
    if cls == FileInfoClass.STREAM and status == NtStatus.BUFFER_OVERFLOW:
        return status, b""  # MS-FSA 2.1.5.12.29: stream entries go whole or not at all (we have only one)
    return status, out


@dataclass(frozen=True, slots=True)
class VolumeFacts:
    """What the FS classes need beyond StatFs: per share, from the server's configuration."""

    stat: StatFs
    label: str = ""
    serial: int = 0
    created_ns: int = 0
    read_only: bool = False
    case_sensitive: bool = False
    named_streams: bool = False


def _units(v: VolumeFacts) -> tuple[int, int, int]:
    """(sectors per allocation unit, total units, free units)."""
    spu = max(1, v.stat.block_size // BYTES_PER_SECTOR)
    unit = spu * BYTES_PER_SECTOR
    return spu, v.stat.total_bytes // unit, v.stat.free_bytes // unit


def _fs_volume(v: VolumeFacts) -> bytes:
    raw = v.label.encode("utf-16-le")
    return struct.pack("<qIIBB", filetime(v.created_ns), v.serial & 0xFFFF_FFFF, len(raw), 0, 0) + raw


def _fs_size(v: VolumeFacts) -> bytes:
    spu, total, free = _units(v)
    return struct.pack("<qqII", total, free, spu, BYTES_PER_SECTOR)


def _fs_full_size(v: VolumeFacts) -> bytes:
    spu, total, free = _units(v)
    return struct.pack("<qqqII", total, free, free, spu, BYTES_PER_SECTOR)


FILE_DEVICE_DISK: Final = 0x7
FILE_READ_ONLY_DEVICE: Final = 0x2
FILE_DEVICE_IS_MOUNTED: Final = 0x20


def _fs_device(v: VolumeFacts) -> bytes:
    chars = FILE_DEVICE_IS_MOUNTED | (FILE_READ_ONLY_DEVICE if v.read_only else 0)  # as Samba
    return struct.pack("<II", FILE_DEVICE_DISK, chars)


def fs_attributes(v: VolumeFacts) -> int:
    """FileSystemAttributes: only what is true of the share (module docstring)."""
    bits = FsAttribute.CASE_PRESERVED_NAMES | FsAttribute.UNICODE_ON_DISK | FsAttribute.PERSISTENT_ACLS
    if v.case_sensitive:
        bits |= FsAttribute.CASE_SENSITIVE_SEARCH
    if v.named_streams:
        bits |= FsAttribute.NAMED_STREAMS
    if v.read_only:
        bits |= FsAttribute.READ_ONLY_VOLUME
    return int(bits)


def _fs_attribute(v: VolumeFacts) -> bytes:
    raw = FS_NAME.encode("utf-16-le")
    return struct.pack("<IiI", fs_attributes(v), min(MAX_COMPONENT, v.stat.name_max), len(raw)) + raw


SSINFO_FLAGS_ALIGNED_DEVICE: Final = 0x1
SSINFO_FLAGS_PARTITION_ALIGNED_ON_DEVICE: Final = 0x2


def _fs_sector_size(v: VolumeFacts) -> bytes:
    flags = SSINFO_FLAGS_ALIGNED_DEVICE | SSINFO_FLAGS_PARTITION_ALIGNED_ON_DEVICE  # as Samba
    s = BYTES_PER_SECTOR
    return struct.pack("<IIIIIII", s, s, s, s, flags, 0, 0)


_FS_CLASSES: Final = {
    FsInfoClass.VOLUME: (_fs_volume, 24),
    FsInfoClass.SIZE: (_fs_size, 24),
    FsInfoClass.DEVICE: (_fs_device, 8),
    FsInfoClass.ATTRIBUTE: (_fs_attribute, 12),
    FsInfoClass.FULL_SIZE: (_fs_full_size, 32),
    FsInfoClass.SECTOR_SIZE: (_fs_sector_size, 28),
}


def query_fs_info(cls: int, facts: VolumeFacts) -> bytes:
    """The whole structure of FS information class ``cls``; InfoError(INVALID_INFO_CLASS) for any other."""
    try:
        build, _ = _FS_CLASSES[FsInfoClass(cls)]
    except (ValueError, KeyError):
        raise InfoError(NtStatus.INVALID_INFO_CLASS, f"fs info class {cls}") from None
    return build(facts)


def query_fs(cls: int, facts: VolumeFacts, output_length: int) -> tuple[NtStatus, bytes]:
    """QUERY_INFO (InfoType FILESYSTEM) answered within OutputBufferLength: (status, bytes to send).

    >>> v = VolumeFacts(StatFs(1 << 30, 1 << 29, 100, 50, 4096))
    >>> query_fs(FsInfoClass.ATTRIBUTE, v, 14)
    (<NtStatus.BUFFER_OVERFLOW: 2147483653>, b'\\x0e\\x00\\x00\\x00\\xff\\x00\\x00\\x00\\x08\\x00\\x00\\x00N\\x00')
    """
    data = query_fs_info(cls, facts)
    return fit(data, output_length, fixed=_FS_CLASSES[FsInfoClass(cls)][1])


_ATTR_EXAMPLE: Final = Attr(ino=42, gen=1, type=FileType.REG, mode=0o100644, nlink=1, uid=1000, gid=1000,
                            size=1000, rdev=0, atime_ns=0, mtime_ns=0, ctime_ns=0, btime_ns=0)
