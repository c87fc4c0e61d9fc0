"""Security identifiers (SIDs) for SMB owners and ACLs.

Each store is its own domain: ``S-1-5-21-A-B-C``, the three sub-authorities
taken from the store's uuid (so two stores never share a domain SID), kept in
the metadata ``info`` table as ``domain_sid``.  A user's or group's SID is the
domain SID plus its RID; RIDs come from one counter (``info.next_rid``, from
1000, below which Windows keeps well-known RIDs) and are never reused, so a SID
in an old ACL never names a new account.

uids and gids that no user or group holds map as Samba maps them: ``S-1-22-1-UID``
(Unix user) and ``S-1-22-2-GID`` (Unix group).

>>> import uuid
>>> domain_sid(uuid.UUID("00000001-0000-0002-0000-000300000000"))
'S-1-5-21-16777216-33554432-50331648'
>>> parse("S-1-5-21-1-2-3-1000"), parse("S-1-22-2-100"), parse("S-1-5-32-544"), parse("bogus")
(('S-1-5-21-1-2-3', 1000), ('S-1-22-2', 100), ('S-1-5-32', 544), None)
"""

from __future__ import annotations

import re
import struct
import uuid

FIRST_RID = 1000
UNIX_USER = "S-1-22-1"
UNIX_GROUP = "S-1-22-2"
_SID = re.compile(r"S-1-\d{1,15}(?:-\d{1,10})+")


def domain_sid(store_id: uuid.UUID) -> str:
    a, b, c = struct.unpack("<3I", store_id.bytes[:12])
    return f"S-1-5-21-{a}-{b}-{c}"


def parse(sid: str) -> tuple[str, int] | None:
    """(prefix, last sub-authority), or None when ``sid`` is not a SID."""
    if not _SID.fullmatch(sid):
        return None
    prefix, _, rid = sid.rpartition("-")
    n = int(rid)
    return (prefix, n) if n < 2**32 and prefix.count("-") >= 2 else None
