"""The one error mapper of the NFS front end: CoreError -> nfsstat3 (RFC 1813 §2.6), by type.

Protocol-level outcomes that have no core error (a read-only export, a handle from
another export, NOTSUPP) are raised as :class:`NfsError` with their status.

>>> from core.errors import NotFound, PermissionDenied, NotPermitted
>>> [nfsstat3(e("x")) for e in (NotFound, PermissionDenied, NotPermitted)]
[2, 13, 1]
>>> nfsstat3(NfsError(NFS3ERR_ROFS, "read-only export"))
30
"""

from __future__ import annotations

from core.errors import (
    BadCookie,
    BadHandle,
    Changed,
    Closed,
    ConfigError,
    CoreError,
    CrossDevice,
    DataUnavailable,
    Exists,
    InvalidArgument,
    IsADirectory,
    LockConflict,
    MetaUnavailable,
    NameTooLong,
    NoAttribute,
    NoSpace,
    NotADirectory,
    NotEmpty,
    NotFound,
    NotPermitted,
    PermissionDenied,
    ShareViolation,
    Stale,
    StoreError,
    TooManyLinks,
)

NFS3_OK = 0
NFS3ERR_PERM = 1
NFS3ERR_NOENT = 2
NFS3ERR_IO = 5
NFS3ERR_NXIO = 6
NFS3ERR_ACCES = 13
NFS3ERR_EXIST = 17
NFS3ERR_XDEV = 18
NFS3ERR_NODEV = 19
NFS3ERR_NOTDIR = 20
NFS3ERR_ISDIR = 21
NFS3ERR_INVAL = 22
NFS3ERR_FBIG = 27
NFS3ERR_NOSPC = 28
NFS3ERR_ROFS = 30
NFS3ERR_MLINK = 31
NFS3ERR_NAMETOOLONG = 63
NFS3ERR_NOTEMPTY = 66
NFS3ERR_DQUOT = 69
NFS3ERR_STALE = 70
NFS3ERR_REMOTE = 71
NFS3ERR_BADHANDLE = 10001
NFS3ERR_NOT_SYNC = 10002
NFS3ERR_BAD_COOKIE = 10003
NFS3ERR_NOTSUPP = 10004
NFS3ERR_TOOSMALL = 10005
NFS3ERR_SERVERFAULT = 10006
NFS3ERR_BADTYPE = 10007
NFS3ERR_JUKEBOX = 10008


class NfsError(Exception):
    """An NFS outcome decided by the NFS layer itself (export rules, unsupported requests)."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message or f"nfsstat3 {status}")
        self.status = status


_BY_TYPE: dict[type[CoreError], int] = {
    NotFound: NFS3ERR_NOENT,
    Exists: NFS3ERR_EXIST,
    NotADirectory: NFS3ERR_NOTDIR,
    IsADirectory: NFS3ERR_ISDIR,
    NotEmpty: NFS3ERR_NOTEMPTY,
    InvalidArgument: NFS3ERR_INVAL,
    NameTooLong: NFS3ERR_NAMETOOLONG,
    PermissionDenied: NFS3ERR_ACCES,
    NotPermitted: NFS3ERR_PERM,
    Stale: NFS3ERR_STALE,
    BadHandle: NFS3ERR_BADHANDLE,
    BadCookie: NFS3ERR_BAD_COOKIE,
    Changed: NFS3ERR_NOT_SYNC,
    NoSpace: NFS3ERR_NOSPC,
    CrossDevice: NFS3ERR_XDEV,
    NoAttribute: NFS3ERR_NOENT,
    TooManyLinks: NFS3ERR_MLINK,
    LockConflict: NFS3ERR_JUKEBOX,
    ShareViolation: NFS3ERR_JUKEBOX,  # an SMB deny-mode open: the client retries, as knfsd does on lease conflicts
    DataUnavailable: NFS3ERR_IO,
    MetaUnavailable: NFS3ERR_JUKEBOX,  # a metadata failover: the client retries (a hard mount waits it out)
    StoreError: NFS3ERR_IO,
    ConfigError: NFS3ERR_SERVERFAULT,
    Closed: NFS3ERR_STALE,
}


def nfsstat3(exc: BaseException) -> int:
    """The nfsstat3 for an exception raised while serving a procedure (by type, most specific first)."""
    if isinstance(exc, NfsError):
        return exc.status
    for cls in type(exc).__mro__:
        st = _BY_TYPE.get(cls)
        if st is not None:
            return st
    if isinstance(exc, CoreError):
        return NFS3ERR_IO
    return NFS3ERR_SERVERFAULT
