"""The SMB error mapper: every core.fs error becomes one NTSTATUS (the one mapper of this protocol).

Handlers raise :class:`SmbError` (a status and a reason for the log) or let a core.fs error
through; :func:`status_of` turns either into what the client sees. The table follows what
Windows and Samba answer for the same condition (MS-FSA, MS-ERREF); an unknown error is
INTERNAL_ERROR (logged with its traceback by the connection), never a dropped connection.

>>> from core.errors import NotFound, ShareViolation
>>> status_of(NotFound("x")).name, status_of(ShareViolation("y")).name
('OBJECT_NAME_NOT_FOUND', 'SHARING_VIOLATION')
"""

from __future__ import annotations

from typing import Final

from core import errors as E

from .status import NtStatus


class SmbError(Exception):
    """Answer ``status`` (an ERROR response unless the handler says otherwise)."""

    def __init__(self, status: NtStatus, reason: str = "", *, data: bytes = b"") -> None:
        super().__init__(reason or status.name)
        self.status = status
        self.data = data  # the ERROR response's ErrorData (BUFFER_TOO_SMALL: the size needed)


_MAP: Final[tuple[tuple[type[Exception], NtStatus], ...]] = (
    (E.BadCookie, NtStatus.INVALID_PARAMETER),
    (E.InvalidLockRange, NtStatus.INVALID_LOCK_RANGE),
    (E.RangeNotLocked, NtStatus.RANGE_NOT_LOCKED),
    (E.NotFound, NtStatus.OBJECT_NAME_NOT_FOUND),
    (E.Exists, NtStatus.OBJECT_NAME_COLLISION),
    (E.NotADirectory, NtStatus.NOT_A_DIRECTORY),
    (E.IsADirectory, NtStatus.FILE_IS_A_DIRECTORY),
    (E.NotEmpty, NtStatus.DIRECTORY_NOT_EMPTY),
    (E.NameTooLong, NtStatus.OBJECT_NAME_INVALID),
    (E.PermissionDenied, NtStatus.ACCESS_DENIED),
    (E.NotPermitted, NtStatus.ACCESS_DENIED),
    (E.Stale, NtStatus.FILE_DELETED),
    (E.NoSpace, NtStatus.DISK_FULL),
    (E.CrossDevice, NtStatus.NOT_SAME_DEVICE),
    (E.NoAttribute, NtStatus.OBJECT_NAME_NOT_FOUND),
    (E.TooManyLinks, NtStatus.INSUFFICIENT_RESOURCES),
    (E.LockConflict, NtStatus.LOCK_NOT_GRANTED),
    (E.ShareViolation, NtStatus.SHARING_VIOLATION),
    (E.DataUnavailable, NtStatus.IO_DEVICE_ERROR),
    (E.Changed, NtStatus.UNSUCCESSFUL),
    (E.BadHandle, NtStatus.INVALID_HANDLE),
    (E.Closed, NtStatus.FILE_CLOSED),
    (E.InvalidArgument, NtStatus.INVALID_PARAMETER),
    (E.StoreError, NtStatus.IO_DEVICE_ERROR),
)


def status_of(err: BaseException) -> NtStatus:
    """The NTSTATUS for ``err`` (an SmbError's own, a core.fs error's mapping, else INTERNAL_ERROR)."""
    status = getattr(err, "status", None)
    if isinstance(status, NtStatus):
        return status
    for cls, st in _MAP:
        if isinstance(err, cls):
            return st
    return NtStatus.INTERNAL_ERROR


def expected(err: BaseException) -> bool:
    """True for errors that are a client's answer, not a server fault worth a traceback."""
    return isinstance(err, (SmbError, E.CoreError)) or isinstance(getattr(err, "status", None), NtStatus)
