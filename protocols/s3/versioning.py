"""S3 bucket versioning on top of core.fs's versions (core/fs/versions.py has the rules of what is kept).

A bucket is a directory; its versioning state is the directory's tree policy (``off`` until the first
PutBucketVersioning, then ``enabled`` or ``suspended``, never ``off`` again, as S3).  core.fs does the
keeping: a PUT, copy or Complete in an enabled bucket stamps the new object with a fresh version id and keeps
the one it replaces as a noncurrent version; a DELETE adds a delete marker; in a suspended bucket the new
object and the marker are the ``null`` version, and the previous ``null`` one goes (to the trash, which is
not an S3 version and never listed).  This module is what S3 adds:

* the store path of a key (``<root>/<bucket>/<key>``), the ``x-amz-version-id`` answer header (present only
  once the bucket's versioning was ever set; ``null`` for an object made without an id);
* reading one version (GET/HEAD ``?versionId=``): a noncurrent one through ``fs.reading_versions()``,
  its S3 metadata in the same xattr as a live object's; a delete marker by id is 405, a current delete
  marker makes GET/HEAD 404 with ``x-amz-delete-marker: true``;
* deleting with or without a version id (delete markers — also over a key with no live object, as S3 —
  and the version that becomes current again; a key's directories, pruned when its last live object went,
  are made again for that and pruned after), with
  ``x-amz-bypass-governance-retention`` honoured for a caller allowed ``s3:BypassGovernanceRetention``
  (:func:`protocols.s3.lock.may_bypass`: the admin, the bucket's owner, or whoever the bucket policy
  allows it; an explicit Deny wins);
* Put/GetBucketVersioning (suspending is refused while Object Lock is on, as S3).  **MFA delete is not
  supported**: ``MfaDelete`` ``Enabled`` answers NotImplemented (``Disabled`` is accepted, since it is what
  Tessera does), and the ``x-amz-mfa`` header is never required.

Whether a bucket was ever versioned is remembered per process (:func:`versioned`) so that GET/HEAD in
unversioned buckets read nothing more than before.

Version ids are core.fs's: 28 lower-case hex digits (time-ordered), or ``null``; anything else is
InvalidArgument, a well-formed id that names no version is NoSuchVersion.
"""

from __future__ import annotations

import dataclasses
import re
import time

from starlette.responses import Response

from core.errors import CoreError, Locked, NotFound
from core.fs import Attr, FileSystem, FileType, VersionInfo
from protocols.s3 import conditions, keys, lock, objmeta, xmlio
from protocols.s3.authz import authorize
from protocols.s3.body import read_body
from protocols.s3.context import Ctx
from protocols.s3.errors import S3Error, from_core
from protocols.s3.objmeta import ObjMeta
from protocols.s3.service import S3Fs

NULL = "null"
HEADER = "x-amz-version-id"
MARKER_HEADER = "x-amz-delete-marker"
_VID = re.compile(r"[0-9a-f]{28}")
DIR_XATTR = "tessera.s3.versioning"  # set on the bucket directory by PutBucketVersioning (touches its ctime)
OFF_TTL_S = 5.0
CACHE_MAX = 4096
_VERSIONED: set[int] = set()  # bucket directories whose versioning was ever set (this process's memory)
_OFF: dict[int, tuple[int, float]] = {}  # bucket directory -> (its ctime, until when) while never versioned
S3_KINDS = ("version", "marker")  # trash rows are not S3 versions


# -- names and states ---------------------------------------------------------------------
def bucket_path(s3: S3Fs, bucket: str) -> str:
    """The store path of a bucket's directory, with a trailing '/'."""
    return f"{s3.service.root_path.rstrip('/')}/{bucket}/"


def key_path(s3: S3Fs, bucket: str, key: str) -> str:
    return bucket_path(s3, bucket) + key


def check_vid(vid: str) -> str:
    """A version id as a request gives it; InvalidArgument when it cannot be one.

    >>> check_vid("null"), check_vid("0187c1d2e3f4a5b6" + "0123456789ab")
    ('null', '0187c1d2e3f4a5b60123456789ab')
    >>> check_vid("x")
    Traceback (most recent call last):
    protocols.s3.errors.S3Error: Invalid version id specified
    """
    if vid == NULL or _VID.fullmatch(vid):
        return vid
    raise S3Error("InvalidArgument", "Invalid version id specified", 400,
                  extra={"ArgumentName": "versionId", "ArgumentValue": vid})


def no_such_version(key: str, vid: str) -> S3Error:
    return S3Error("NoSuchVersion", "The specified version does not exist.", 404,
                   extra={"Key": key, "VersionId": vid})


def state(s3: S3Fs, bucket: str) -> str:
    """The bucket's versioning: 'off' (never set), 'enabled' or 'suspended'."""
    b = s3.bucket(bucket)
    st = s3.admin.tree_policy(b.ino).versioning
    if st != "off":
        _VERSIONED.add(b.ino)
    else:
        if len(_OFF) >= CACHE_MAX:
            _OFF.clear()
        _OFF[b.ino] = (b.ctime_ns, time.monotonic() + OFF_TTL_S)
    return st


def versioned(s3: S3Fs, bucket: str) -> bool:
    """Was the bucket's versioning ever set?  Answered from this process's memory when it can be: once set
    it stays set (versioning never goes back to off).  'Never' is remembered for OFF_TTL_S (the longest
    versioning set by other means than S3, such as the CLI, goes unseen); within that time it holds while
    the bucket directory's ctime is unchanged, and when the ctime changed (an entry added or removed, or
    PutBucketVersioning, which also sets DIR_XATTR) the mark PutBucketVersioning leaves is read again."""
    b = s3.bucket(bucket)
    if b.ino in _VERSIONED:
        return True
    hit = _OFF.get(b.ino)
    now = time.monotonic()
    if hit is None or hit[1] <= now:
        return state(s3, bucket) != "off"
    if hit[0] == b.ctime_ns:
        return False
    try:
        s3.admin.getxattr(b.ino, DIR_XATTR)
    except CoreError:
        _OFF[b.ino] = (b.ctime_ns, hit[1])
        return False
    return state(s3, bucket) != "off"


def live_headers(s3: S3Fs, bucket: str, a: Attr, *, read: bool = False) -> dict[str, str]:
    """``x-amz-version-id`` of a live object (nothing while the bucket was never versioned); ``read``
    (GET/HEAD): skip reading the id in a bucket known never to have been versioned."""
    if not a.is_file or (read and not versioned(s3, bucket)):
        return {}
    try:
        vid = s3.admin.version_id(a.ino)
    except CoreError:
        vid = NULL  # replaced meanwhile: its id is no longer the current one's
    if vid != NULL:
        return {HEADER: vid}
    return {HEADER: NULL} if versioned(s3, bucket) else {}


# -- reading ------------------------------------------------------------------------------
def find(s3: S3Fs, bucket: str, key: str, vid: str) -> VersionInfo:
    """The S3 version ``vid`` of ``key`` (the live object's, a noncurrent one or a delete marker)."""
    check_vid(vid)
    s3.bucket(bucket)
    try:
        keys.key_parts(key)
        v = s3.fs.version(key_path(s3, bucket, key), vid)
    except (NotFound, S3Error):
        raise no_such_version(key, vid) from None
    except CoreError as e:
        raise from_core(e, key) from None
    if v.kind == "trash" or (v.kind == "current" and v.type != FileType.REG):
        raise no_such_version(key, vid)
    return v


def open_version(ctx: Ctx, vid: str) -> tuple[Attr, ObjMeta, FileSystem, dict[str, str]]:
    """GET/HEAD ``?versionId=``: (attributes, S3 metadata, the view to read its bytes with, headers)."""
    s3 = ctx.s3
    v = find(s3, ctx.bucket, ctx.key, vid)
    if v.kind == "marker":
        raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405,
                      headers={MARKER_HEADER: "true", HEADER: v.vid, "Last-Modified": xmlio.http_date(v.mtime_ns),
                               "Allow": "DELETE"})
    fs = s3.fs.reading_versions()
    try:
        a = fs.getattr(v.ino)
    except CoreError:
        raise no_such_version(ctx.key, vid) from None
    return a, objmeta.load(fs, a), fs, {HEADER: v.vid}


def missing(ctx: Ctx, err: S3Error) -> S3Error:
    """A GET/HEAD of a key with no live object: when its current version is a delete marker, say so."""
    if err.code != "NoSuchKey" or not versioned(ctx.s3, ctx.bucket):
        return err
    try:
        vs = ctx.s3.fs.versions(key_path(ctx.s3, ctx.bucket, ctx.key))
    except CoreError:
        return err
    if vs and vs[0].kind == "marker" and vs[0].latest:
        err.headers.update({MARKER_HEADER: "true", HEADER: vs[0].vid})
    return err


def copy_source_version(s3: S3Fs, bucket: str, key: str, vid: str | None) -> tuple[Attr, FileSystem, str | None]:
    """A copy's source by version id (None: the live object): (attributes, the view to read it with, the
    id to answer as ``x-amz-copy-source-version-id``, None when the source bucket was never versioned)."""
    if vid is None:
        a = s3.lookup(bucket, key)
        vh = live_headers(s3, bucket, a)
        return a, s3.fs, vh.get(HEADER)
    v = find(s3, bucket, key, vid)
    if v.kind == "marker":
        raise S3Error("InvalidRequest", "The source of a copy request may not specifically refer to a delete "
                      "marker by version id.", 400)
    fs = s3.fs.reading_versions()
    return fs.getattr(v.ino), fs, v.vid


# -- deleting -----------------------------------------------------------------------------
def view_for(ctx: Ctx, op: str, bucket: str, key: str, vid: str | None) -> S3Fs:
    """The view one part of a request runs with (one DeleteObjects key, a copy's source), authorised as
    ``op`` or, with a version id, its version action (s3:DeleteObjectVersion, s3:GetObjectVersion)."""
    assert ctx.facts is not None
    query = {k: v for k, v in ctx.facts.query.items() if k != "versionId"}
    if vid is not None:
        query["versionId"] = vid
    facts = dataclasses.replace(ctx.facts, op=op, bucket=bucket, key=key, existing_tags=None, query=query)
    return authorize(ctx.s3.service, ctx.auth.user, facts)[0]


def marker_headers(s3: S3Fs, bucket: str, key: str) -> dict[str, str]:
    """After a DELETE without a version id: the delete marker it made, if versioning made one."""
    try:
        vs = s3.admin.versions(key_path(s3, bucket, key))
    except CoreError:
        return {}
    if vs and vs[0].kind == "marker" and vs[0].latest:
        return {MARKER_HEADER: "true", HEADER: vs[0].vid}
    return {}


def delete_current(ctx: Ctx, s3: S3Fs, key: str, cond: conditions.DeleteIf) -> dict[str, str]:
    """DELETE without a version id (as ``s3``, the caller's view for this key): the live object goes (core.fs
    keeps it and adds a delete marker where versioning is on); a key with no live object in a versioned bucket
    gets a delete marker all the same, as S3 does."""
    kctx = ctx if s3 is ctx.s3 else dataclasses.replace(ctx, s3=s3)
    if key.endswith("/") or not versioned(s3, ctx.bucket):
        conditions.delete(kctx, key, cond)
        return {}
    try:
        s3.lookup(ctx.bucket, key)
        existed = True
    except S3Error as e:
        if e.code != "NoSuchKey":
            raise
        existed = False
    conditions.delete(kctx, key, cond)
    return marker_headers(s3, ctx.bucket, key) if existed else _mark(s3, ctx.bucket, key)


def _mark(s3: S3Fs, bucket: str, key: str) -> dict[str, str]:
    """A delete marker over a key with no live object (its directories made for it, then pruned)."""
    b = s3.bucket(bucket)
    try:
        parts, _ = keys.key_parts(key)
    except S3Error:
        return {}  # such a key cannot exist
    chain = _chain(s3, b.ino, parts)
    if chain is None:
        try:
            s3.parent_for(bucket, key)
        except S3Error:
            return {}  # no directory may be made there (or an object has its name): nothing to mark
        chain = _chain(s3, b.ino, parts)
    try:
        m = s3.fs.add_marker(key_path(s3, bucket, key))
    except CoreError as e:
        raise from_core(e, key) from None
    finally:
        if chain is not None:
            s3.prune(chain, parts)
    return {MARKER_HEADER: "true", HEADER: m.vid} if m is not None else {}


def delete_version(ctx: Ctx, s3: S3Fs, key: str, vid: str) -> dict[str, str]:
    """DELETE ``?versionId=``: that version goes for good (a delete marker too); when it was the current
    one, the newest remaining version becomes current (core.fs does that where the key's directory
    exists, so a directory pruned since is made again first, and pruned again if it stays empty)."""
    check_vid(vid)
    bucket = ctx.bucket
    b = s3.bucket(bucket)
    try:
        parts, is_dir = keys.key_parts(key)
    except S3Error:
        return {HEADER: vid}  # such a key cannot exist
    if is_dir:
        return {HEADER: vid}
    path = key_path(s3, bucket, key)
    chain = _chain(s3, b.ino, parts)
    if chain is None:
        try:
            s3.parent_for(bucket, key)
            chain = _chain(s3, b.ino, parts)
        except S3Error:
            pass  # an object stands where a directory was: the version goes, nothing becomes current
    try:
        try:
            info = s3.fs.delete_version(path, vid)
        except Locked:
            if not (lock.bypass_asked(ctx) and lock.may_bypass(ctx, key)):
                raise
            info = s3.admin.delete_version(path, vid, bypass_governance=True)  # its permission check passed
    except NotFound:
        info = None  # already gone: a delete is idempotent
    except CoreError as e:
        raise from_core(e, key) from None
    finally:
        if chain is not None:
            s3.prune(chain, parts)
    out = {HEADER: vid}
    if info is not None and info.kind == "marker":
        out[MARKER_HEADER] = "true"
    return out


def _chain(s3: S3Fs, bucket_ino: int, parts: list[str]) -> list[int] | None:
    """The bucket and the directories of a key's path, or None when one is missing."""
    chain = [bucket_ino]
    for p in parts[:-1]:
        try:
            a = s3.admin.lookup(chain[-1], p)
        except CoreError:
            return None
        if not a.is_dir:
            return None
        chain.append(a.ino)
    return chain


# -- Put/GetBucketVersioning --------------------------------------------------------------
async def put_bucket_versioning(ctx: Ctx) -> Response:
    """PutBucketVersioning: Status Enabled or Suspended (the bucket owner's, or a policy's grant; authz).
    MFA delete is not supported: MfaDelete Enabled is NotImplemented."""
    raw = bytearray()
    await read_body(ctx.request, ctx.auth, ctx.headers, raw.extend)
    root = xmlio.parse(bytes(raw))
    status = xmlio.text(root, "Status")
    mfa = xmlio.text(root, "MfaDelete")
    if mfa is not None and mfa not in ("Enabled", "Disabled"):
        raise S3Error("MalformedXML", "MfaDelete must be Enabled or Disabled", 400)
    if mfa == "Enabled":
        raise S3Error("NotImplemented", "MFA delete is not supported by Tessera: versions are deleted without "
                      "an MFA token; leave MfaDelete Disabled", 501, extra={"Header": "MfaDelete"})
    if status not in ("Enabled", "Suspended"):
        raise S3Error("IllegalVersioningConfigurationException", "The Versioning element must be specified and "
                      "its Status must be Enabled or Suspended", 400)

    def apply() -> None:
        b = ctx.s3.bucket(ctx.bucket)
        pol = ctx.s3.admin.tree_policy(b.ino)
        if status == "Suspended" and pol.lock is not None and pol.lock.get("enabled"):
            raise S3Error("InvalidBucketState", "An Object Lock configuration is present on this bucket, so the "
                          "versioning state cannot be changed.", 409)
        ctx.s3.fs.set_tree_policy(b.ino, versioning=status.lower())
        ctx.s3.admin.setxattr(b.ino, DIR_XATTR, status.encode())  # other processes see the ctime change
        _VERSIONED.add(b.ino)
    await ctx.run(apply)
    return Response(status_code=200)


async def get_bucket_versioning(ctx: Ctx) -> Response:
    """GetBucketVersioning: no Status while the bucket was never versioned."""
    def get() -> str:
        return state(ctx.s3, ctx.bucket)
    st = await ctx.run(get)
    inner = xmlio.el("Status", st.capitalize()) if st != "off" else ""
    return Response(xmlio.doc("VersioningConfiguration", inner), media_type="application/xml")

