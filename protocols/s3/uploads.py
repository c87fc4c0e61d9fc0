"""Multipart upload records: what an upload is, its parts, and what its Complete produced.

Layout, version 1, in the hidden system directory ``s3-uploads`` (no path reaches it)::

    <upload id>/                a directory per upload (mode 0700); the id is 32 hex digits
        xattr tessera.s3.upload   JSON record: {"v": 1, "bucket", "key", "initiated" (ns), "meta" (the
                                  object's ObjMeta JSON), "algorithm" ('' or CRC32, ...), "type" ('',
                                  COMPOSITE or FULL_OBJECT), "user"} and, once completed, "done" (below)
        xattr tessera.s3.joining  JSON {"at": ns} while a Complete joins the parts: made with create=True,
                                  so one Complete joins at a time; one older than STALE_JOIN_S was abandoned
        00001 ... 10000           the parts; xattr tessera.s3.part: {"etag", "size", "checksum": [algo,
                                  base64] or null}
        final                     the object while it is being joined, then renamed into place

``done`` is {"completed" (ns), "etag", "parts" (sha256 of the completed part list, see :func:`digest`),
"ino", "gen", "size", "mtime" (the object as placed), "checksum" ({algorithm, value, type} or {})}.  A
completed upload keeps its directory, without parts, until the expiry sweep, so that a repeated Complete
(an SDK retrying a lost response) is answered as the first one was while the object is still that result.
Records written before version 1 have no "v" and no "type" (their checksums are COMPOSITE).
"""

from __future__ import annotations

import hashlib
import json
import time

from core.errors import CoreError, Exists, NoAttribute, NotFound
from core.fs import Attr, FileSystem
from protocols.s3.errors import S3Error

UPLOAD = "tessera.s3.upload"
PART = "tessera.s3.part"
JOINING = "tessera.s3.joining"
FINAL = "final"
VERSION = 1
STALE_JOIN_S = 600.0


def root(fs: FileSystem) -> int:
    return fs.system_dir("s3-uploads")


def no_upload(upload_id: str) -> S3Error:
    return S3Error("NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the "
                   "upload may have been aborted or completed.", 404, extra={"UploadId": upload_id})


def load(fs: FileSystem, upload_id: str, bucket: str, key: str) -> tuple[int, dict[str, object]]:
    """(directory inode, record) of an upload of ``bucket/key``, completed or not; NoSuchUpload otherwise."""
    if not upload_id or "/" in upload_id or upload_id.startswith("."):
        raise no_upload(upload_id)
    try:
        d = fs.lookup(root(fs), upload_id)
        info: dict[str, object] = json.loads(fs.getxattr(d.ino, UPLOAD))
    except (CoreError, ValueError):
        raise no_upload(upload_id) from None
    if not isinstance(info, dict) or info.get("bucket") != bucket or info.get("key") != key:
        raise no_upload(upload_id)
    return d.ino, info


def active(fs: FileSystem, upload_id: str, bucket: str, key: str) -> tuple[int, dict[str, object]]:
    """Like :func:`load`, for operations on an upload in progress: a completed one is NoSuchUpload."""
    d, info = load(fs, upload_id, bucket, key)
    if info.get("done"):
        raise no_upload(upload_id)
    return d, info


def parts(fs: FileSystem, d: int) -> dict[int, tuple[Attr, dict[str, object]]]:
    out = {}
    for e in fs.listdir(d):
        if e.name.isdigit():
            try:
                out[int(e.name)] = (fs.getattr(e.ino), json.loads(fs.getxattr(e.ino, PART)))
            except (CoreError, ValueError):
                continue
    return out


def digest(asked: list[tuple[int, str]]) -> str:
    """What identifies a Complete's part list: its part numbers and ETags, in order.

    >>> digest([(1, "a"), (2, "b")]) == digest([(1, '"a"'), (2, "b")]) != digest([(1, "a")])
    True
    """
    h = hashlib.sha256()
    for n, etag in asked:
        h.update(f"{n}:{etag.strip().strip(chr(34))}\n".encode())
    return h.hexdigest()


def claim(fs: FileSystem, d: int) -> bool:
    """Take the right to join this upload's parts; False while another Complete holds it."""
    mark = json.dumps({"at": time.time_ns()}).encode()
    try:
        fs.setxattr(d, JOINING, mark, create=True)
        return True
    except Exists:
        pass
    try:
        at = int(json.loads(fs.getxattr(d, JOINING)).get("at", 0))
    except NoAttribute:
        return False  # released meanwhile: look at the record again
    except (CoreError, ValueError, AttributeError):
        at = 0
    if time.time_ns() - at < STALE_JOIN_S * 1e9:
        return False
    fs.setxattr(d, JOINING, mark)  # the holder died mid-join: take over
    return True


def record(fs: FileSystem, d: int) -> dict[str, object]:
    """The upload's record as stored now."""
    try:
        info: dict[str, object] = json.loads(fs.getxattr(d, UPLOAD))
    except (CoreError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def release(fs: FileSystem, d: int) -> None:
    """Give up a claim: drop the half-joined object and the mark."""
    try:
        fs.unlink(d, FINAL)
    except CoreError:
        pass
    try:
        fs.removexattr(d, JOINING)
    except CoreError:
        pass


def finish(fs: FileSystem, d: int, info: dict[str, object], done: dict[str, object]) -> None:
    """Record a completed upload and drop its parts (the object now holds their slices)."""
    fs.setxattr(d, UPLOAD, json.dumps({**info, "v": VERSION, "done": done}).encode())
    for e in fs.listdir(d):
        if e.name.isdigit():
            try:
                fs.unlink(d, e.name)
            except CoreError:
                pass
    release(fs, d)


def remove(fs: FileSystem, upload_id: str) -> None:
    up = root(fs)
    try:
        d = fs.lookup(up, upload_id)
    except NotFound:
        return
    for e in fs.listdir(d.ino):
        try:
            fs.unlink(d.ino, e.name)
        except CoreError:
            pass
    for name in (UPLOAD, JOINING):
        try:
            fs.removexattr(d.ino, name)
        except NoAttribute:
            pass
    fs.rmdir(up, upload_id)


def expire(fs: FileSystem, older_than_s: float, now_ns: int | None = None) -> int:
    """Remove multipart uploads started more than ``older_than_s`` ago (clients that never completed or
    aborted them; their parts become garbage for GC) and records of uploads completed that long ago.
    Returns how many uploads in progress were removed."""
    now = time.time_ns() if now_ns is None else now_ns
    cutoff = now - int(older_than_s * 1e9)
    gone = 0
    for e in fs.listdir(root(fs)):
        try:
            info = json.loads(fs.getxattr(e.ino, UPLOAD))
            done = info.get("done") or {}
            started = int(done.get("completed", 0) if done else info.get("initiated", 0))
        except (CoreError, ValueError, AttributeError):
            done, started = {}, 0  # half-made upload directory: expire it too
        if started < cutoff:
            try:
                remove(fs, e.name)
            except CoreError:
                continue
            gone += 0 if done else 1
    return gone


def expire_in(fs: FileSystem, bucket: str, prefix: str, older_than_ns: int, dry_run: bool = False) -> int:
    """Lifecycle's AbortIncompleteMultipartUpload: remove the uploads in progress of ``bucket`` whose key starts
    with ``prefix`` and that were started before ``older_than_ns`` (``dry_run``: only count them)."""
    gone = 0
    for e in fs.listdir(root(fs)):
        info = record(fs, e.ino)
        started = info.get("initiated", 0)
        if (info.get("done") or info.get("bucket") != bucket or not str(info.get("key", "")).startswith(prefix)
                or not isinstance(started, int) or started >= older_than_ns):
            continue
        if not dry_run:
            try:
                remove(fs, e.name)
            except CoreError:
                continue
        gone += 1
    return gone
