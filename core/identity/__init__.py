"""Identity: one set of users, groups, S3 keys and SIDs for every protocol.

Protocols use this package (never core.meta): an ``Identity`` service comes
with each opened store (``Store.identity``) and answers ``lookup_key`` (S3),
``cred_for`` (core.fs credentials), ``user``/``user_by_uid``/``group_by_gid``,
the SID calls (SMB) and ``check_password``.  See ``service`` for the
revocation bound and ``secretbox`` for secrets at rest.
"""

from __future__ import annotations

from core.identity.hashes import check_password, hash_password, md4, nt_hash
from core.identity.records import AccessKey, Group, KeyMatch, KeyPair, User
from core.identity.secretbox import KEY_FILE, StoreKey
from core.identity.service import REFRESH_S, Identity
from core.identity.validate import valid_access_key, valid_keys, valid_name, valid_secret_key

__all__ = [
    "KEY_FILE", "REFRESH_S", "AccessKey", "Group", "Identity", "KeyMatch", "KeyPair", "StoreKey", "User",
    "check_password", "hash_password", "md4", "nt_hash", "valid_access_key", "valid_keys", "valid_name",
    "valid_secret_key",
]
