"""S3's IAM action names: which exist, what resource each applies to, and which one each operation needs.

``KNOWN`` lists the s3: actions a bucket policy may name (AWS's list, less the account-,
access-point-, job- and Outposts-level ones that never apply to a bucket), each with the
resource it applies to. ``ACTIONS`` maps every operation name the router produces
(``protocols/s3/router.py``), and the few the server will route next, to the action a
request for it is authorised as. The router's names with no entry are not S3 operations a
bucket policy can govern: ``UnknownSubresource``, and S3 Express's ``CreateSession`` and
``RenameObject`` (authorised as ``s3express:*`` on AWS); answer those NotImplemented.

>>> ACTIONS["HeadObject"]
OpAction(action='s3:GetObject', level=<Level.OBJECT: 'object'>)
>>> iam_action("DeleteObject", version_id="3"), iam_action("ListObjectsV2")
('s3:DeleteObjectVersion', 's3:ListBucket')
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Level(enum.Enum):
    """The resource an action applies to: the service (no bucket), a bucket, or an object."""

    SERVICE = "service"
    BUCKET = "bucket"
    OBJECT = "object"


_S, _B, _O = Level.SERVICE, Level.BUCKET, Level.OBJECT

_BUCKET_ACTIONS = """
CreateBucket DeleteBucket ListBucket ListBucketVersions ListBucketMultipartUploads GetBucketLocation
GetBucketAcl PutBucketAcl GetBucketPolicy PutBucketPolicy DeleteBucketPolicy GetBucketPolicyStatus
GetBucketVersioning PutBucketVersioning GetBucketTagging PutBucketTagging GetBucketCORS PutBucketCORS
GetLifecycleConfiguration PutLifecycleConfiguration GetEncryptionConfiguration PutEncryptionConfiguration
GetBucketPublicAccessBlock PutBucketPublicAccessBlock GetBucketOwnershipControls PutBucketOwnershipControls
GetBucketObjectLockConfiguration PutBucketObjectLockConfiguration GetBucketWebsite PutBucketWebsite
DeleteBucketWebsite GetBucketLogging PutBucketLogging GetBucketNotification PutBucketNotification
GetReplicationConfiguration PutReplicationConfiguration DeleteBucketOwnershipControls
GetBucketRequestPayment PutBucketRequestPayment GetAccelerateConfiguration PutAccelerateConfiguration
GetAnalyticsConfiguration PutAnalyticsConfiguration GetInventoryConfiguration PutInventoryConfiguration
GetMetricsConfiguration PutMetricsConfiguration GetIntelligentTieringConfiguration
PutIntelligentTieringConfiguration ListBucketByTags GetBucketAbac PutBucketAbac
GetBucketMetadataTableConfiguration CreateBucketMetadataTableConfiguration DeleteBucketMetadataTableConfiguration
"""
_OBJECT_ACTIONS = """
GetObject GetObjectVersion PutObject DeleteObject DeleteObjectVersion GetObjectAcl GetObjectVersionAcl
PutObjectAcl PutObjectVersionAcl GetObjectTagging GetObjectVersionTagging PutObjectTagging
PutObjectVersionTagging DeleteObjectTagging DeleteObjectVersionTagging GetObjectAttributes
GetObjectVersionAttributes AbortMultipartUpload ListMultipartUploadParts RestoreObject GetObjectTorrent
GetObjectVersionTorrent GetObjectRetention PutObjectRetention GetObjectLegalHold PutObjectLegalHold
BypassGovernanceRetention GetObjectVersionForReplication ReplicateObject ReplicateDelete ReplicateTags
ObjectOwnerOverrideToBucketOwner
"""
_SERVICE_ACTIONS = "ListAllMyBuckets GetAccountPublicAccessBlock PutAccountPublicAccessBlock"

KNOWN: dict[str, Level] = {
    **{f"s3:{a}": _B for a in _BUCKET_ACTIONS.split()},
    **{f"s3:{a}": _O for a in _OBJECT_ACTIONS.split()},
    **{f"s3:{a}": _S for a in _SERVICE_ACTIONS.split()},
}
KNOWN_LOWER: dict[str, str] = {a.lower(): a for a in KNOWN}


@dataclass(frozen=True)
class OpAction:
    """The action an operation is authorised as, and the resource it is checked against."""

    action: str
    level: Level


def _t(action: str) -> OpAction:
    return OpAction(f"s3:{action}", KNOWN[f"s3:{action}"])


ACTIONS: dict[str, OpAction] = {
    "ListBuckets": _t("ListAllMyBuckets"),
    "CreateBucket": _t("CreateBucket"),
    "DeleteBucket": _t("DeleteBucket"),
    "HeadBucket": _t("ListBucket"),
    "ListObjects": _t("ListBucket"),
    "ListObjectsV2": _t("ListBucket"),
    "ListObjectVersions": _t("ListBucketVersions"),
    "ListMultipartUploads": _t("ListBucketMultipartUploads"),
    "GetBucketLocation": _t("GetBucketLocation"),
    "GetBucketVersioning": _t("GetBucketVersioning"),
    "PutBucketVersioning": _t("PutBucketVersioning"),
    "GetBucketAcl": _t("GetBucketAcl"),
    "PutBucketAcl": _t("PutBucketAcl"),
    "GetBucketPolicy": _t("GetBucketPolicy"),
    "PutBucketPolicy": _t("PutBucketPolicy"),
    "DeleteBucketPolicy": _t("DeleteBucketPolicy"),
    "GetBucketPolicyStatus": _t("GetBucketPolicyStatus"),
    "GetPublicAccessBlock": _t("GetBucketPublicAccessBlock"),
    "PutPublicAccessBlock": _t("PutBucketPublicAccessBlock"),
    "DeletePublicAccessBlock": _t("PutBucketPublicAccessBlock"),
    "GetBucketTagging": _t("GetBucketTagging"),
    "PutBucketTagging": _t("PutBucketTagging"),
    "DeleteBucketTagging": _t("PutBucketTagging"),
    "GetBucketCors": _t("GetBucketCORS"),
    "PutBucketCors": _t("PutBucketCORS"),
    "DeleteBucketCors": _t("PutBucketCORS"),
    "GetBucketLifecycle": _t("GetLifecycleConfiguration"),
    "GetBucketLifecycleConfiguration": _t("GetLifecycleConfiguration"),
    "PutBucketLifecycle": _t("PutLifecycleConfiguration"),
    "PutBucketLifecycleConfiguration": _t("PutLifecycleConfiguration"),
    "DeleteBucketLifecycle": _t("PutLifecycleConfiguration"),
    "GetBucketEncryption": _t("GetEncryptionConfiguration"),
    "PutBucketEncryption": _t("PutEncryptionConfiguration"),
    "DeleteBucketEncryption": _t("PutEncryptionConfiguration"),
    "GetObjectLockConfiguration": _t("GetBucketObjectLockConfiguration"),
    "PutObjectLockConfiguration": _t("PutBucketObjectLockConfiguration"),
    "GetBucketWebsite": _t("GetBucketWebsite"),
    "PutBucketWebsite": _t("PutBucketWebsite"),
    "DeleteBucketWebsite": _t("DeleteBucketWebsite"),
    "GetBucketLogging": _t("GetBucketLogging"),
    "PutBucketLogging": _t("PutBucketLogging"),
    "GetBucketReplication": _t("GetReplicationConfiguration"),
    "PutBucketReplication": _t("PutReplicationConfiguration"),
    "DeleteBucketReplication": _t("PutReplicationConfiguration"),
    "GetBucketOwnershipControls": _t("GetBucketOwnershipControls"),
    "PutBucketOwnershipControls": _t("PutBucketOwnershipControls"),
    "DeleteBucketOwnershipControls": _t("PutBucketOwnershipControls"),
    "GetBucketNotification": _t("GetBucketNotification"),
    "GetBucketNotificationConfiguration": _t("GetBucketNotification"),
    "PutBucketNotification": _t("PutBucketNotification"),
    "PutBucketNotificationConfiguration": _t("PutBucketNotification"),
    "GetBucketRequestPayment": _t("GetBucketRequestPayment"),
    "PutBucketRequestPayment": _t("PutBucketRequestPayment"),
    "GetBucketAccelerate": _t("GetAccelerateConfiguration"),
    "GetBucketAccelerateConfiguration": _t("GetAccelerateConfiguration"),
    "PutBucketAccelerate": _t("PutAccelerateConfiguration"),
    "PutBucketAccelerateConfiguration": _t("PutAccelerateConfiguration"),
    "ListBucketIntelligentTieringConfigurations": _t("GetIntelligentTieringConfiguration"),
    "GetBucketIntelligentTieringConfiguration": _t("GetIntelligentTieringConfiguration"),
    "PutBucketIntelligentTieringConfiguration": _t("PutIntelligentTieringConfiguration"),
    "DeleteBucketIntelligentTieringConfiguration": _t("PutIntelligentTieringConfiguration"),
    "ListBucketAnalyticsConfigurations": _t("GetAnalyticsConfiguration"),
    "GetBucketAnalyticsConfiguration": _t("GetAnalyticsConfiguration"),
    "PutBucketAnalyticsConfiguration": _t("PutAnalyticsConfiguration"),
    "DeleteBucketAnalyticsConfiguration": _t("PutAnalyticsConfiguration"),
    "ListBucketMetricsConfigurations": _t("GetMetricsConfiguration"),
    "GetBucketMetricsConfiguration": _t("GetMetricsConfiguration"),
    "PutBucketMetricsConfiguration": _t("PutMetricsConfiguration"),
    "DeleteBucketMetricsConfiguration": _t("PutMetricsConfiguration"),
    "ListBucketInventoryConfigurations": _t("GetInventoryConfiguration"),
    "GetBucketInventoryConfiguration": _t("GetInventoryConfiguration"),
    "PutBucketInventoryConfiguration": _t("PutInventoryConfiguration"),
    "DeleteBucketInventoryConfiguration": _t("PutInventoryConfiguration"),
    "GetBucketMetadataTableConfiguration": _t("GetBucketMetadataTableConfiguration"),
    "CreateBucketMetadataTableConfiguration": _t("CreateBucketMetadataTableConfiguration"),
    "DeleteBucketMetadataTableConfiguration": _t("DeleteBucketMetadataTableConfiguration"),
    "DeleteObjects": _t("DeleteObject"),  # checked per key, against each key's object ARN
    "PostObject": _t("PutObject"),  # browser-form upload: the key comes from the form
    "GetObject": _t("GetObject"),
    "HeadObject": _t("GetObject"),
    "GetObjectAttributes": _t("GetObjectAttributes"),
    "PutObject": _t("PutObject"),
    "CopyObject": _t("PutObject"),  # and s3:GetObject on the source object
    "UploadPart": _t("PutObject"),
    "UploadPartCopy": _t("PutObject"),  # and s3:GetObject on the source object
    "CreateMultipartUpload": _t("PutObject"),
    "CompleteMultipartUpload": _t("PutObject"),
    "AbortMultipartUpload": _t("AbortMultipartUpload"),
    "ListParts": _t("ListMultipartUploadParts"),
    "DeleteObject": _t("DeleteObject"),
    "GetObjectTagging": _t("GetObjectTagging"),
    "PutObjectTagging": _t("PutObjectTagging"),
    "DeleteObjectTagging": _t("DeleteObjectTagging"),
    "GetObjectAcl": _t("GetObjectAcl"),
    "PutObjectAcl": _t("PutObjectAcl"),
    "RestoreObject": _t("RestoreObject"),
    "SelectObjectContent": _t("GetObject"),
    "GetObjectTorrent": _t("GetObjectTorrent"),
    "GetObjectRetention": _t("GetObjectRetention"),
    "PutObjectRetention": _t("PutObjectRetention"),
    "GetObjectLegalHold": _t("GetObjectLegalHold"),
    "PutObjectLegalHold": _t("PutObjectLegalHold"),
}

# With ?versionId= an object operation is authorised as its version action (as on AWS).
VERSIONED: dict[str, str] = {
    "s3:GetObject": "s3:GetObjectVersion", "s3:DeleteObject": "s3:DeleteObjectVersion",
    "s3:GetObjectAcl": "s3:GetObjectVersionAcl", "s3:PutObjectAcl": "s3:PutObjectVersionAcl",
    "s3:GetObjectTagging": "s3:GetObjectVersionTagging", "s3:PutObjectTagging": "s3:PutObjectVersionTagging",
    "s3:DeleteObjectTagging": "s3:DeleteObjectVersionTagging",
    "s3:GetObjectAttributes": "s3:GetObjectVersionAttributes",
}


def iam_action(op: str, *, version_id: str | None = None) -> str:
    """The IAM action a request for ``op`` needs (KeyError for an operation not in ACTIONS)."""
    action = ACTIONS[op].action
    return VERSIONED.get(action, action) if version_id else action


def resource_arn(bucket: str | None = None, key: str | None = None) -> str:
    """The ARN a request is checked against: ``*`` for the service, the bucket, or the object.

    >>> resource_arn("photos"), resource_arn("photos", "2024/a b.jpg")
    ('arn:aws:s3:::photos', 'arn:aws:s3:::photos/2024/a b.jpg')
    """
    if bucket is None:
        return "*"
    return f"arn:aws:s3:::{bucket}" if key is None else f"arn:aws:s3:::{bucket}/{key}"
