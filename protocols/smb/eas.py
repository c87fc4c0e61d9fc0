"""Extended attributes (EAs) as SMB shows them: the file's ``user.*`` xattrs, as Samba's
``ea support = yes`` maps them (EA ``NAME`` is xattr ``user.NAME``), so an EA set over SMB is an
xattr over NFS/core.fs and the reverse. Alternate data streams (``user.DosStream.*``) are not EAs.

- FileFullEaInformation queries list them (NO_EAS_ON_FILE when there are none; BUFFER_OVERFLOW
  with the entries that fit, at least one, else BUFFER_TOO_SMALL);
- SET_INFO FileFullEaInformation and the CREATE context ExtA set them (an empty value removes one);
- FileEaInformation's EaSize is the size of the full list.
EA names are ASCII without ``"*/:<>?\\|`` (MS-FSCC 2.4.15); others are INVALID_EA_NAME... answered
INVALID_PARAMETER here.
"""

from __future__ import annotations

import re

from core.errors import NoAttribute
from core.fs import FileSystem

from .createctx import EaEntry, encode_ea_list
from .errors import SmbError
from .status import NtStatus
from .streams import PREFIX as STREAM_PREFIX

USER = "user."
_BAD = re.compile(r'[\x00-\x1f"*/:<>?\\|]')


def listing(fs: FileSystem, ino: int) -> list[EaEntry]:
    names = [n for n in fs.listxattr(ino) if n.startswith(USER) and not n.startswith(STREAM_PREFIX)]
    if not names:
        return []
    values = fs.getxattrs(ino, names)
    return [EaEntry(n[len(USER):].encode("ascii", "replace"), v) for n, v in sorted(values.items())]


def query(fs: FileSystem, ino: int, out_len: int) -> tuple[NtStatus, bytes]:
    entries = listing(fs, ino)
    if not entries:
        raise SmbError(NtStatus.NO_EAS_ON_FILE, "no EAs")
    for n in range(len(entries), 0, -1):
        data = encode_ea_list(entries[:n])
        if len(data) <= out_len:
            return (NtStatus.SUCCESS if n == len(entries) else NtStatus.BUFFER_OVERFLOW), data
    raise SmbError(NtStatus.BUFFER_TOO_SMALL, "OutputBufferLength holds no EA")


def size(fs: FileSystem, ino: int) -> int:
    entries = listing(fs, ino)
    return len(encode_ea_list(entries)) if entries else 0


def apply(fs: FileSystem, ino: int, entries: list[EaEntry]) -> None:
    for e in entries:
        try:
            name = e.name.decode("ascii")
        except UnicodeDecodeError:
            raise SmbError(NtStatus.INVALID_PARAMETER, "an EA name is not ASCII") from None
        if not name or _BAD.search(name) or (USER + name).startswith(STREAM_PREFIX):
            raise SmbError(NtStatus.INVALID_PARAMETER, f"EA name {name!r}")
        if e.value:
            fs.setxattr(ino, USER + name, e.value)
        else:
            try:
                fs.removexattr(ino, USER + name)
            except NoAttribute:
                pass
