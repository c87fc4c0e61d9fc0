"""The closed family of errors ``core`` raises.

Every protocol maps these in exactly one place (``protocols/*/errors.py``) by
*type*, never by message text.  Each class carries the POSIX errno it
corresponds to, which the CLI and NFS use directly.
"""

from __future__ import annotations

import errno


class CoreError(Exception):
    """Base of every error the core raises on purpose."""

    errno: int = errno.EIO

    def __init__(self, message: str = "", *, path: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.__class__.__name__)
        self.path = path

    def __str__(self) -> str:
        msg = super().__str__()
        return f"{self.path}: {msg}" if self.path else msg


class NotFound(CoreError):
    """No such file or directory."""

    errno = errno.ENOENT


class Exists(CoreError):
    """File exists."""

    errno = errno.EEXIST


class NotADirectory(CoreError):
    """Not a directory."""

    errno = errno.ENOTDIR


class IsADirectory(CoreError):
    """Is a directory."""

    errno = errno.EISDIR


class NotEmpty(CoreError):
    """Directory not empty."""

    errno = errno.ENOTEMPTY


class InvalidArgument(CoreError):
    """Invalid argument."""

    errno = errno.EINVAL


class NameTooLong(CoreError):
    """File name too long."""

    errno = errno.ENAMETOOLONG


class PermissionDenied(CoreError):
    """Permission denied."""

    errno = errno.EACCES


class Locked(PermissionDenied):
    """The content is under retention (object lock) or a legal hold: it cannot be deleted or overwritten."""


class NotPermitted(CoreError):
    """Operation not permitted."""

    errno = errno.EPERM


class Stale(CoreError):
    """Stale file handle: the inode was removed or its generation changed."""

    errno = errno.ESTALE


class NoSpace(CoreError):
    """No space left on the targets."""

    errno = errno.ENOSPC


class CrossDevice(CoreError):
    """Invalid cross-link (e.g. renaming a directory into itself)."""

    errno = errno.EXDEV


class NoAttribute(CoreError):
    """No such extended attribute."""

    errno = errno.ENODATA


class TooManyLinks(CoreError):
    """Too many links or symlink levels."""

    errno = errno.ELOOP


class LockConflict(CoreError):
    """A conflicting byte-range lock is held."""

    errno = errno.EAGAIN


class ShareViolation(CoreError):
    """The open conflicts with another open's share mode."""

    errno = errno.EBUSY


class DataUnavailable(CoreError):
    """More cells of a stripe are lost or corrupt than parity can recover."""

    errno = errno.EIO


class StoreError(CoreError):
    """The store is missing, damaged or not initialised."""

    errno = errno.EIO


class MetaUnavailable(StoreError):
    """The metadata database cannot be reached for now (a failover, a network fault): retry shortly."""

    errno = errno.EAGAIN


class ConfigError(CoreError):
    """The configuration is invalid."""

    errno = errno.EINVAL


class Changed(CoreError):
    """The object changed since the caller looked (a guarded or conditional update was not applied)."""

    errno = errno.EAGAIN


class BadHandle(CoreError):
    """A file handle that was not issued by this store or has been altered."""

    errno = errno.EBADF


class BadCookie(InvalidArgument):
    """A directory cookie this directory never issued (or has forgotten)."""


class RangeNotLocked(CoreError):
    """No lock of this owner covers exactly this range (an SMB unlock names the range it locked)."""

    errno = errno.ENOLCK


class InvalidLockRange(InvalidArgument):
    """The lock range runs past the largest 64-bit offset (offset + length > 2**64)."""


class Closed(CoreError):
    """The handle or store is closed."""

    errno = errno.EBADF


__all__ = [
    "BadCookie",
    "BadHandle",
    "Changed",
    "Closed",
    "ConfigError",
    "CoreError",
    "CrossDevice",
    "DataUnavailable",
    "Exists",
    "InvalidArgument",
    "InvalidLockRange",
    "IsADirectory",
    "LockConflict",
    "MetaUnavailable",
    "NameTooLong",
    "NoAttribute",
    "NoSpace",
    "NotADirectory",
    "NotEmpty",
    "NotFound",
    "NotPermitted",
    "PermissionDenied",
    "RangeNotLocked",
    "ShareViolation",
    "Stale",
    "StoreError",
    "TooManyLinks",
]
