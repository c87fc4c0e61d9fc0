"""S3 Public Access Block: the per-bucket PublicAccessBlockConfiguration, parsed, rendered and stored.

The four settings, as AWS defines them (the handler enforces them):

- BlockPublicAcls: PutBucketAcl, PutObjectAcl, PutObject and CreateBucket fail (AccessDenied)
  when the ACL they set is public (``acl.acl_is_public``);
- IgnorePublicAcls: public grants in existing ACLs are ignored (``acl.permits(..., ignore_public=True)``);
- BlockPublicPolicy: PutBucketPolicy fails (AccessDenied) when the policy is public (``policy.is_public``);
- RestrictPublicBuckets: a public policy's grants stop applying to anonymous requests
  (``policy.evaluate(..., restrict_public=True)``).

>>> pab = parse_pab(b'<PublicAccessBlockConfiguration><BlockPublicAcls>TRUE</BlockPublicAcls>'
...                 b'</PublicAccessBlockConfiguration>')
>>> pab
PublicAccessBlock(block_public_acls=True, ignore_public_acls=False, block_public_policy=False, \
restrict_public_buckets=False)
>>> PublicAccessBlock.from_json(pab.to_json()) == pab, parse_pab(render_pab(pab)) == pab
(True, True)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from protocols.s3 import xmlio
from protocols.s3.errors import S3Error

_ELEMENTS = {"BlockPublicAcls": "block_public_acls", "IgnorePublicAcls": "ignore_public_acls",
             "BlockPublicPolicy": "block_public_policy", "RestrictPublicBuckets": "restrict_public_buckets"}


@dataclass(frozen=True)
class PublicAccessBlock:
    block_public_acls: bool = False
    ignore_public_acls: bool = False
    block_public_policy: bool = False
    restrict_public_buckets: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> PublicAccessBlock:
        d = json.loads(text)
        return cls(**{f.name: bool(d.get(f.name, False)) for f in fields(cls)})


def _malformed() -> S3Error:
    return S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our "
                   "published schema.", 400)


def parse_pab(body: bytes) -> PublicAccessBlock:
    """Parse a PutPublicAccessBlock body; a missing setting is false, as on AWS."""
    root = xmlio.parse(body)
    if root.tag != "PublicAccessBlockConfiguration":
        raise _malformed()
    values: dict[str, bool] = {}
    for child in root:
        name = _ELEMENTS.get(child.tag) if isinstance(child.tag, str) else None
        text = (child.text or "").strip().lower()
        if name is None or name in values or text not in ("true", "false"):
            raise _malformed()
        values[name] = text == "true"
    return PublicAccessBlock(**values)


def render_pab(pab: PublicAccessBlock) -> bytes:
    """The GetPublicAccessBlock response body."""
    inner = "".join(xmlio.el(tag, str(getattr(pab, attr)).lower()) for tag, attr in _ELEMENTS.items())
    return xmlio.doc("PublicAccessBlockConfiguration", inner)
