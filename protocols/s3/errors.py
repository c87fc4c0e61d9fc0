"""S3 errors: one exception type, one CoreError mapper, one XML renderer."""

from __future__ import annotations

from xml.sax.saxutils import escape

from core import errors as ce


class S3Error(Exception):
    def __init__(self, code: str, message: str, status: int = 400, *, resource: str = "",
                 headers: dict[str, str] | None = None, extra: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.resource = resource
        self.headers = headers or {}
        self.extra = extra or {}


def err(code: str, message: str, status: int = 400, **kw: object) -> S3Error:
    return S3Error(code, message, status, **kw)  # type: ignore[arg-type]


def no_such_bucket(bucket: str) -> S3Error:
    return S3Error("NoSuchBucket", "The specified bucket does not exist", 404, resource=f"/{bucket}",
                   extra={"BucketName": bucket})


def no_such_key(key: str) -> S3Error:
    return S3Error("NoSuchKey", "The specified key does not exist.", 404, extra={"Key": key})


def from_core(e: ce.CoreError, key: str = "") -> S3Error:
    """The S3 error for a core error, by type (never by message)."""
    msg = str(e)
    if isinstance(e, ce.NotFound | ce.Stale):
        return no_such_key(key)
    if isinstance(e, ce.NotADirectory):
        return S3Error("InvalidArgument", f"key {key!r} needs a directory where an object exists "
                       f"(a prefix of it is an object)", 400)
    if isinstance(e, ce.IsADirectory):
        return S3Error("InvalidArgument", f"key {key!r} names a directory (a prefix of other keys); "
                       "objects and prefixes cannot share a name", 400)
    if isinstance(e, ce.NotEmpty):
        return S3Error("BucketNotEmpty", "The bucket you tried to delete is not empty", 409)
    if isinstance(e, ce.NameTooLong):
        return S3Error("KeyTooLongError", "Your key is too long: each '/'-separated part is at most 255 bytes",
                       400)
    if isinstance(e, ce.PermissionDenied | ce.NotPermitted):
        return S3Error("AccessDenied", "Access Denied", 403)
    if isinstance(e, ce.LockConflict | ce.ShareViolation):
        return S3Error("OperationAborted", "A conflicting operation is in progress on this object", 409)
    if isinstance(e, ce.NoSpace):
        return S3Error("ServiceUnavailable", "The store is out of space or healthy targets", 503)
    if isinstance(e, ce.DataUnavailable):
        return S3Error("ServiceUnavailable", "Data is temporarily unavailable: too many targets lost", 503)
    if isinstance(e, ce.MetaUnavailable):  # a metadata failover: SDKs retry a 503
        return S3Error("ServiceUnavailable", "The metadata service is briefly unavailable; please retry", 503)
    if isinstance(e, ce.Exists):
        return S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412)
    if isinstance(e, ce.InvalidArgument):
        return S3Error("InvalidArgument", msg, 400)
    return S3Error("InternalError", "We encountered an internal error. Please try again.", 500)


def error_xml(e: S3Error, request_id: str) -> bytes:
    extra = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in e.extra.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(e.code)}</Code>'
            f"<Message>{escape(e.message)}</Message>{extra}<Resource>{escape(e.resource)}</Resource>"
            f"<RequestId>{request_id}</RequestId></Error>").encode()
