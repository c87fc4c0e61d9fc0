"""S3 access control lists: canned ACLs, x-amz-grant-* headers, AccessControlPolicy XML, and the check.

An ACL is an owner and a list of grants; a grant gives one permission (READ, WRITE, READ_ACP,
WRITE_ACP, FULL_CONTROL) to a grantee: a user, named by its canonical ID -- which in Tessera is
the user name -- or one of S3's groups (AllUsers = everyone, anonymous included;
AuthenticatedUsers = every signed-in user; LogDelivery, which no request here acts as).

>>> acl = canned("public-read", "ann")
>>> [(g.grantee.id, g.permission.value) for g in acl.grants]
[('ann', 'FULL_CONTROL'), ('http://acs.amazonaws.com/groups/global/AllUsers', 'READ')]
>>> permits(acl, None, Permission.READ), permits(acl, None, Permission.WRITE), acl_is_public(acl.grants)
(True, False, True)
>>> grantees('id="bob", uri="http://acs.amazonaws.com/groups/global/AuthenticatedUsers"')
[Grantee(id='bob', group=False), Grantee(id='http://acs.amazonaws.com/groups/global/AuthenticatedUsers', group=True)]
"""

from __future__ import annotations

import enum
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from protocols.s3 import xmlio
from protocols.s3.errors import S3Error

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
GROUPS = (ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY)
PUBLIC_GROUPS = (ALL_USERS, AUTHENTICATED_USERS)
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MAX_GRANTS = 100
_ID = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
_GRANT_ITEM = re.compile(r'\s*([A-Za-z]+)\s*=\s*(?:"([^"]*)"|([^,"]*?))\s*(?:,|$)')

UserExists = Callable[[str], bool]


class Permission(enum.Enum):
    READ = "READ"
    WRITE = "WRITE"
    READ_ACP = "READ_ACP"
    WRITE_ACP = "WRITE_ACP"
    FULL_CONTROL = "FULL_CONTROL"


@dataclass(frozen=True)
class Grantee:
    """A user (``id`` = user name) or a group (``id`` = the group's URI)."""

    id: str
    group: bool = False


@dataclass(frozen=True)
class Grant:
    grantee: Grantee
    permission: Permission


@dataclass(frozen=True)
class Acl:
    owner: str
    grants: tuple[Grant, ...]

    def to_json(self) -> str:
        """A compact form to store (an xattr).

        >>> Acl.from_json(canned("private", "ann").to_json()) == canned("private", "ann")
        True
        """
        return json.dumps({"owner": self.owner, "grants": [
            ["group" if g.grantee.group else "user", g.grantee.id, g.permission.value] for g in self.grants]},
            separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Acl:
        d = json.loads(text)
        return cls(d["owner"], tuple(Grant(Grantee(i, kind == "group"), Permission(p)) for kind, i, p in d["grants"]))


def _user(name: str) -> Grant:
    return Grant(Grantee(name), Permission.FULL_CONTROL)


def _group(uri: str, *perms: Permission) -> list[Grant]:
    return [Grant(Grantee(uri, True), p) for p in perms]


CANNED = ("private", "public-read", "public-read-write", "authenticated-read", "bucket-owner-read",
          "bucket-owner-full-control", "log-delivery-write")


def canned(name: str, owner: str, bucket_owner: str | None = None) -> Acl:
    """The ACL a canned ACL name stands for. ``bucket_owner`` is the bucket's owner, for an object's
    bucket-owner-read / bucket-owner-full-control (on a bucket, or when it is the object's owner,
    those are just ``private``).

    >>> [(g.grantee.id, g.permission.value) for g in canned("bucket-owner-read", "bob", "ann").grants]
    [('bob', 'FULL_CONTROL'), ('ann', 'READ')]
    """
    R, W = Permission.READ, Permission.WRITE
    grants = [_user(owner)]
    if name == "public-read":
        grants += _group(ALL_USERS, R)
    elif name == "public-read-write":
        grants += _group(ALL_USERS, R, W)
    elif name == "authenticated-read":
        grants += _group(AUTHENTICATED_USERS, R)
    elif name == "log-delivery-write":
        grants += _group(LOG_DELIVERY, W, Permission.READ_ACP)
    elif name in ("bucket-owner-read", "bucket-owner-full-control"):
        if bucket_owner is not None and bucket_owner != owner:
            perm = R if name == "bucket-owner-read" else Permission.FULL_CONTROL
            grants.append(Grant(Grantee(bucket_owner), perm))
    elif name != "private":
        raise S3Error("InvalidArgument", f"The canned ACL {name[:64]!r} is not valid", 400,
                      extra={"ArgumentName": "x-amz-acl", "ArgumentValue": name[:64]})
    return Acl(owner, tuple(grants))


# -- x-amz-grant-* headers --------------------------------------------------------------------

GRANT_HEADERS = {"x-amz-grant-read": Permission.READ, "x-amz-grant-write": Permission.WRITE,
                 "x-amz-grant-read-acp": Permission.READ_ACP, "x-amz-grant-write-acp": Permission.WRITE_ACP,
                 "x-amz-grant-full-control": Permission.FULL_CONTROL}


def _unresolvable(email: str) -> S3Error:
    return S3Error("UnresolvableGrantByEmailAddress", "The e-mail address you provided does not match any account "
                   "on record.", 400, extra={"EmailAddress": email[:256]})


def _user_grantee(name: str, user_exists: UserExists | None) -> Grantee:
    if not _ID.match(name) or (user_exists is not None and not user_exists(name)):
        raise S3Error("InvalidArgument", "Invalid id", 400, extra={"ArgumentName": "CanonicalUser/ID",
                                                                      "ArgumentValue": name[:64]})
    return Grantee(name)


def _group_grantee(uri: str) -> Grantee:
    if uri not in GROUPS:
        raise S3Error("InvalidArgument", "Invalid group uri", 400, extra={"ArgumentName": "Group/URI",
                                                                           "ArgumentValue": uri[:256]})
    return Grantee(uri, True)


def grantees(value: str, user_exists: UserExists | None = None) -> list[Grantee]:
    """The grantees of one x-amz-grant-* header: ``id="..."``, ``uri="..."`` or ``emailAddress="..."``,
    comma-separated.

    >>> grantees('emailAddress="a@example.com"')
    Traceback (most recent call last):
    protocols.s3.errors.S3Error: The e-mail address you provided does not match any account on record.
    """
    bad = S3Error("InvalidArgument", "Argument format not recognized", 400)
    out: list[Grantee] = []
    pos = 0
    value = value.strip()
    while pos < len(value):
        m = _GRANT_ITEM.match(value, pos)
        if m is None or m.end() == pos:
            raise bad
        kind, v = m.group(1).lower(), m.group(2) if m.group(2) is not None else m.group(3)
        if kind == "id":
            out.append(_user_grantee(v, user_exists))
        elif kind == "uri":
            out.append(_group_grantee(v))
        elif kind == "emailaddress":
            raise _unresolvable(v)
        else:
            raise bad
        pos = m.end()
    if not out:
        raise bad
    return out


def _header(headers: Mapping[str, str | Sequence[str]], name: str) -> str | None:
    v = headers.get(name)
    if v is None:
        return None
    return v if isinstance(v, str) else ",".join(v)


def acl_from_headers(headers: Mapping[str, str | Sequence[str]], owner: str, bucket_owner: str | None = None,
                     user_exists: UserExists | None = None) -> Acl | None:
    """The ACL a request's x-amz-acl or x-amz-grant-* headers set (lower-case header names), or None
    when it has neither. Both at once is InvalidRequest, as on AWS.

    >>> acl_from_headers({"x-amz-grant-read": ['uri="http://acs.amazonaws.com/groups/global/AllUsers"']}, "ann")
    Acl(owner='ann', grants=(Grant(grantee=Grantee(id='http://acs.amazonaws.com/groups/global/AllUsers', \
group=True), permission=<Permission.READ: 'READ'>),))
    """
    cannedname = _header(headers, "x-amz-acl")
    found = [(p, v) for h, p in GRANT_HEADERS.items() if (v := _header(headers, h)) is not None]
    if cannedname is not None and found:
        raise S3Error("InvalidRequest", "Specifying both Canned ACLs and Header Grants is not allowed", 400)
    if cannedname is not None:
        return canned(cannedname.strip(), owner, bucket_owner)
    if not found:
        return None
    grants = [Grant(g, perm) for perm, v in found for g in grantees(v, user_exists)]
    return Acl(owner, _dedupe(grants))


def _dedupe(grants: Sequence[Grant]) -> tuple[Grant, ...]:
    if len(grants) > MAX_GRANTS:
        raise _malformed(f"An ACL may have at most {MAX_GRANTS} grants")
    return tuple(dict.fromkeys(grants))


# -- AccessControlPolicy XML ------------------------------------------------------------------

def _malformed(message: str = "The XML you provided was not well-formed or did not validate against our published "
               "schema") -> S3Error:
    return S3Error("MalformedACLError", message, 400)


def _child_text(e: ET.Element, tag: str) -> str | None:
    c = e.find(tag)
    return None if c is None or c.text is None else c.text.strip()


def _xsi_type(e: ET.Element) -> str | None:
    for k, v in e.attrib.items():
        if k == f"{{{XSI}}}type" or k == "type" or k.endswith(":type"):
            return v.split(":")[-1]
    return None


def _xml_grantee(e: ET.Element, user_exists: UserExists | None) -> Grantee:
    kind = _xsi_type(e)
    uid, uri, email = _child_text(e, "ID"), _child_text(e, "URI"), _child_text(e, "EmailAddress")
    if kind is None:  # AWS requires xsi:type; infer it from the one child given, as RGW does
        kind = "CanonicalUser" if uid else "Group" if uri else "AmazonCustomerByEmail" if email else None
    if kind == "CanonicalUser" and uid:
        return _user_grantee(uid, user_exists)
    if kind == "Group" and uri:
        return _group_grantee(uri)
    if kind == "AmazonCustomerByEmail" and email:
        raise _unresolvable(email)
    raise _malformed()


def parse_acl_xml(body: bytes, user_exists: UserExists | None = None) -> Acl:
    """Parse an AccessControlPolicy request body (PutBucketAcl / PutObjectAcl). The handler checks
    that the Owner named is the resource's owner."""
    root = xmlio.parse(body)
    if root.tag != "AccessControlPolicy":
        raise _malformed()
    owner_el = root.find("Owner")
    owner = _child_text(owner_el, "ID") if owner_el is not None else None
    if not owner:
        raise _malformed()
    grants: list[Grant] = []
    acl_el = root.find("AccessControlList")
    for g in acl_el.findall("Grant") if acl_el is not None else ():
        grantee_el, perm = g.find("Grantee"), _child_text(g, "Permission")
        if grantee_el is None or perm is None or perm not in Permission.__members__:
            raise _malformed()
        grants.append(Grant(_xml_grantee(grantee_el, user_exists), Permission[perm]))
        if len(grants) > MAX_GRANTS:
            break
    return Acl(owner, _dedupe(grants))


def _grantee_xml(g: Grantee, display: Callable[[str], str]) -> str:
    if g.group:
        return f'<Grantee xmlns:xsi="{XSI}" xsi:type="Group">{xmlio.el("URI", g.id)}</Grantee>'
    return (f'<Grantee xmlns:xsi="{XSI}" xsi:type="CanonicalUser">{xmlio.el("ID", g.id)}'
            f'{xmlio.el("DisplayName", display(g.id))}</Grantee>')


def acl_xml(acl: Acl, display: Callable[[str], str] = str) -> bytes:
    """The GetBucketAcl / GetObjectAcl response body; ``display`` gives a user's DisplayName.

    >>> parse_acl_xml(acl_xml(canned("log-delivery-write", "ann"))) == canned("log-delivery-write", "ann")
    True
    """
    owner = f"<Owner>{xmlio.el('ID', acl.owner)}{xmlio.el('DisplayName', display(acl.owner))}</Owner>"
    grants = "".join(f"<Grant>{_grantee_xml(g.grantee, display)}{xmlio.el('Permission', g.permission.value)}</Grant>"
                     for g in acl.grants)
    return xmlio.doc("AccessControlPolicy", f"{owner}<AccessControlList>{grants}</AccessControlList>")


# -- what an ACL allows -----------------------------------------------------------------------

def acl_is_public(grants: Sequence[Grant]) -> bool:
    """AWS's "public" ACL: it grants anything to AllUsers or AuthenticatedUsers."""
    return any(g.grantee.group and g.grantee.id in PUBLIC_GROUPS for g in grants)


def _covers(g: Grantee, user: str | None, ignore_public: bool) -> bool:
    if not g.group:
        return user is not None and g.id == user
    if ignore_public:
        return False
    return g.id == ALL_USERS or (g.id == AUTHENTICATED_USERS and user is not None)


def permits(acl: Acl, user: str | None, permission: Permission, *, ignore_public: bool = False) -> bool:
    """Whether the ACL gives ``user`` (None: anonymous) ``permission``. FULL_CONTROL covers all; the
    owner may always read and write the ACL itself; ``ignore_public`` (IgnorePublicAcls) drops the
    AllUsers and AuthenticatedUsers grants.

    >>> acl = Acl("ann", (Grant(Grantee("bob"), Permission.FULL_CONTROL),))
    >>> permits(acl, "bob", Permission.WRITE), permits(acl, "ann", Permission.READ_ACP), permits(acl, "ann",
    ...   Permission.READ)
    (True, True, False)
    """
    if user is not None and user == acl.owner and permission in (Permission.READ_ACP, Permission.WRITE_ACP):
        return True
    return any(_covers(g.grantee, user, ignore_public) and g.permission in (permission, Permission.FULL_CONTROL)
               for g in acl.grants)


# IAM action -> (the ACL permission that grants it, whether it is the bucket's ACL that counts);
# actions missing here are not grantable by ACL (policy, configuration: owner and policy only).
_R, _W, _RA, _WA = Permission.READ, Permission.WRITE, Permission.READ_ACP, Permission.WRITE_ACP
ACL_PERMISSIONS: dict[str, tuple[Permission, bool]] = {
    "s3:ListBucket": (_R, True), "s3:ListBucketVersions": (_R, True), "s3:ListBucketMultipartUploads": (_R, True),
    "s3:ListMultipartUploadParts": (_R, True),
    "s3:PutObject": (_W, True), "s3:DeleteObject": (_W, True), "s3:DeleteObjectVersion": (_W, True),
    "s3:AbortMultipartUpload": (_W, True), "s3:PutObjectTagging": (_W, True),
    "s3:PutObjectVersionTagging": (_W, True), "s3:DeleteObjectTagging": (_W, True),
    "s3:DeleteObjectVersionTagging": (_W, True),
    "s3:GetBucketAcl": (_RA, True), "s3:PutBucketAcl": (_WA, True),
    "s3:GetObject": (_R, False), "s3:GetObjectVersion": (_R, False), "s3:GetObjectTorrent": (_R, False),
    "s3:GetObjectTagging": (_R, False), "s3:GetObjectVersionTagging": (_R, False),
    "s3:GetObjectAttributes": (_R, False), "s3:GetObjectVersionAttributes": (_R, False),
    "s3:GetObjectAcl": (_RA, False), "s3:GetObjectVersionAcl": (_RA, False),
    "s3:PutObjectAcl": (_WA, False), "s3:PutObjectVersionAcl": (_WA, False),
}


def acl_permission(action: str) -> tuple[Permission, bool] | None:
    """(permission, on the bucket's ACL?) that grants an IAM action, or None when no ACL can.

    >>> acl_permission("s3:PutObject"), acl_permission("s3:PutBucketPolicy")
    ((<Permission.WRITE: 'WRITE'>, True), None)
    """
    return ACL_PERMISSIONS.get(action)
