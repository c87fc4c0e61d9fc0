"""S3 authorization: what S3 adds on top of core.fs's one permission decision.

A request runs as its principal's credential (anonymous: ``ANONYMOUS``), and
core.fs decides every file operation with it, exactly as for NFS, SMB and the
PyTorch adapter.  S3 adds only what S3 defines:

1. The admin may do anything.
2. A bucket policy (``tessera.s3.policy`` on the bucket directory) is evaluated
   first: an explicit Deny refuses the request, for everyone but the admin.
   An Allow is the bucket owner's grant: that one request then runs with the
   owner's authority (the requester's uid, so what it writes is the
   requester's, with permission checks passed), limited to the bucket and key
   the request names.
3. Every other bucket-level operation (policy, public access block, deletion,
   location, versioning, the sub-resources Tessera keeps no settings for) is
   the owner's; listing is decided by the bucket directory's permissions, ACL
   operations by the ACL, DeleteObjects key by key.
4. Otherwise the file permissions decide: S3 ACLs are stored as the core ACL
   of the bucket directory or object file (protocols/s3/grants.py), so an ACL
   grant is seen by every protocol.
5. A Public Access Block (``tessera.s3.pab``) refuses public ACLs and policies
   when asked to, ignores public ACL grants for anonymous requests
   (IgnorePublicAcls), and keeps public policy grants from anonymous requests
   (RestrictPublicBuckets).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from core.fs import ANONYMOUS, ROOT, Attr, Cred, FileSystem
from core.identity import KeyMatch
from protocols.s3 import objmeta
from protocols.s3.errors import S3Error
from protocols.s3.pab import PublicAccessBlock
from protocols.s3.policy import Decision, Policy, PolicyError, PolicyRequest, evaluate, load_policy, request_keys
from protocols.s3.policy_actions import ACTIONS, Level, iam_action, resource_arn
from protocols.s3.service import S3Fs, S3Service

POLICY_XATTR = "tessera.s3.policy"
PAB_XATTR = "tessera.s3.pab"
# bucket-level operations decided by the file permissions of the bucket directory (listing) or
# by their own checks (ACLs, each key of DeleteObjects); every other bucket-level one is the owner's
FILE_DECIDED = {"ListObjects", "ListObjectsV2", "ListObjectVersions", "ListMultipartUploads", "HeadBucket",
                "GetBucketAcl", "PutBucketAcl", "DeleteObjects", "CreateBucket"}
POLICY_OPS = {"PutBucketPolicy", "GetBucketPolicy", "DeleteBucketPolicy"}


def denied() -> S3Error:
    return S3Error("AccessDenied", "Access Denied", 403)


@dataclass
class BucketInfo:
    name: str
    ino: int
    owner: int  # uid
    policy: Policy | None = None
    pab: PublicAccessBlock = field(default_factory=PublicAccessBlock)


_BUCKETS: dict[str, tuple[int, int, BucketInfo]] = {}  # name -> (ino, ctime, info), this process's
_BUCKETS_MAX = 4096


def load_bucket(admin: FileSystem, name: str, a: Attr) -> BucketInfo:
    """The bucket's S3 settings, read in one snapshot and kept per process while the bucket
    directory's ctime is unchanged (setting a policy or an access block changes it)."""
    hit = _BUCKETS.get(name)
    if hit is not None and hit[0] == a.ino and hit[1] == a.ctime_ns and hit[2].owner == a.uid:
        return hit[2]
    info = BucketInfo(name, a.ino, a.uid)
    got = admin.getxattrs(a.ino, [POLICY_XATTR, PAB_XATTR])
    if POLICY_XATTR in got:
        try:
            info.policy = load_policy(got[POLICY_XATTR].decode(), name)
        except (PolicyError, UnicodeDecodeError):  # not valid under this parser: ignored, file permissions decide
            info.policy = None
    if PAB_XATTR in got:
        try:
            info.pab = PublicAccessBlock.from_json(got[PAB_XATTR].decode())
        except ValueError:
            pass
    if len(_BUCKETS) >= _BUCKETS_MAX:
        _BUCKETS.clear()
    _BUCKETS[name] = (a.ino, a.ctime_ns, info)
    return info


@dataclass
class RequestFacts:
    """What conditions may test about a request."""

    op: str
    bucket: str | None
    key: str | None
    source_ip: str
    secure: bool
    query: dict[str, str]
    headers: dict[str, list[str]]
    existing_tags: dict[str, str] | None = None

    def context(self) -> dict[str, list[str]]:
        heads = {k: v[0] for k, v in self.headers.items() if v}
        return request_keys(source_ip=self.source_ip, secure=self.secure, now=time.time(), query=self.query,
                            headers=heads, existing_tags=self.existing_tags)


def policy_request(user: KeyMatch | None, facts: RequestFacts) -> PolicyRequest:
    op = ACTIONS[facts.op]
    key = facts.key if op.level is Level.OBJECT else None
    return PolicyRequest(user.name if user else None, frozenset(user.user.groups) if user else frozenset(),
                         iam_action(facts.op, version_id=facts.query.get("versionId")),
                         resource_arn(facts.bucket, key), facts.context())


def decide(user: KeyMatch | None, info: BucketInfo | None, facts: RequestFacts) -> Cred:
    """The credential this request runs with, or AccessDenied."""
    cred = user.cred if user is not None else ANONYMOUS
    if cred.admin or info is None or facts.op not in ACTIONS:
        return cred
    is_owner = user is not None and cred.uid == info.owner
    dec = Decision.NONE
    if info.policy is not None:
        dec = evaluate(info.policy, policy_request(user, facts), restrict_public=info.pab.restrict_public_buckets)
    if dec is Decision.DENY and not (is_owner and facts.op in POLICY_OPS):
        raise denied()  # (the owner can always read, replace or delete the policy: no lock-out, as on AWS)
    if dec is Decision.ALLOW:
        return Cred(cred.uid, cred.gid, cred.groups, admin=True, name=cred.name)  # the owner's grant
    if not is_owner and ACTIONS[facts.op].level is Level.BUCKET and facts.op not in FILE_DECIDED:
        raise denied()  # bucket configuration: the owner's (or a policy's, or the admin's)
    if user is None and info.pab.ignore_public_acls:
        raise denied()
    return cred


def policy_mentions_tags(info: BucketInfo | None) -> bool:
    return info is not None and info.policy is not None and "existingobjecttag" in info.policy.text.lower()


def existing_tags(admin: FileSystem, a: Attr) -> dict[str, str]:
    """The object's tags, for s3:ExistingObjectTag conditions."""
    return dict(objmeta.load(admin, a, need_etag=False).tags)


def check_expected_owner(header: str | None, info: BucketInfo | None, owner_name: str | None) -> None:
    """``x-amz-expected-bucket-owner``: the owner's user name or uid; 403 when it differs."""
    if header is None or info is None:
        return
    if header.strip() not in {str(info.owner), owner_name or ""}:
        raise denied()


def may_use_upload(cred: Cred, upload: dict[str, object], info: BucketInfo | None) -> None:
    """Parts, listing, abort and complete of a multipart upload: its initiator, the bucket's owner,
    a policy grant or the admin."""
    owner = info.owner if info is not None else None
    if not (cred.admin or upload.get("uid", cred.uid) == cred.uid or cred.uid == owner):
        raise denied()


def authorize(service: S3Service, user: KeyMatch | None, facts: RequestFacts) -> tuple[S3Fs, BucketInfo | None]:
    """The view a request (or one key of it: DeleteObjects, a copy source) runs with, and its bucket's
    S3 settings (None: no such bucket; the handler answers NoSuchBucket, or creates it)."""
    admin_view = service.view(ROOT)
    info = None
    b = None
    if facts.bucket is not None and facts.op != "CreateBucket":
        try:
            b = admin_view.bucket(facts.bucket)
            info = load_bucket(admin_view.admin, facts.bucket, b)
        except S3Error:
            info = None
    if info is not None and facts.key is not None and policy_mentions_tags(info):
        try:
            facts.existing_tags = existing_tags(admin_view.admin, admin_view.lookup(info.name, facts.key))
        except S3Error:
            facts.existing_tags = {}
    cred = decide(user, info, facts)
    if info is not None and "x-amz-expected-bucket-owner" in facts.headers:
        check_expected_owner(facts.headers["x-amz-expected-bucket-owner"][0], info, admin_view.owner_name(info.owner))
    view = service.view(cred)
    if b is not None and facts.bucket is not None:
        view.known[facts.bucket] = b  # the handler needs it again: one lookup per request
    return view, info
