"""The identity service: users, groups, S3 keys and SIDs, one for every protocol.

Protocols call it instead of reading metadata rows: ``lookup_key`` (S3),
``cred_for`` (a named user's credential), ``user``/``user_by_uid``,
``sid_of_*``/``lookup_sid`` (SMB), ``check_password``.  Every change goes
through one metadata transaction that also bumps ``info.identity_epoch``;
lookups are cached per process and the cache follows that counter, so

    a removed or disabled key, a removed user or a changed group stops (or
    starts) working in every process within ``refresh_s`` = 1 s of the commit,
    and at once in the process that made the change.

S3 secrets are sealed with the store key (``core.identity.secretbox``); they
are opened only for ``lookup_key`` and when a key is made or shown.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from core.errors import Exists, InvalidArgument, NotEmpty, NotFound
from core.fs.types import NOBODY_ID, Cred
from core.identity import sids
from core.identity.cache import EpochCache
from core.identity.hashes import check_password, hash_password, nt_hash
from core.identity.records import AccessKey, Group, KeyMatch, KeyPair, User
from core.identity.secretbox import StoreKey
from core.identity.validate import new_access_key, new_secret_key, valid_id, valid_keys, valid_name
from core.meta.idtxn import GroupRow, KeyRow, UserRow
from core.meta.store import MetaStore
from core.meta.txn import Txn

T = TypeVar("T")
log = logging.getLogger("tessera.identity")
REFRESH_S = 1.0
ACTIVE, DISABLED = "active", "disabled"


class Identity:
    def __init__(self, meta: MetaStore, key: StoreKey, *, refresh_s: float = REFRESH_S) -> None:
        self._meta = meta
        self._key = key
        self._cache = EpochCache(self._read_epoch, refresh_s=refresh_s)
        self._warned: set[str] = set()
        self.resealed = 0  # secrets carried over from schema 1 that this instance sealed
        self.domain_sid = self._prepare()

    # -- setup ------------------------------------------------------------------------
    def _prepare(self) -> str:
        """The domain SID (made on first use); seals secrets carried over from schema 1."""
        with self._meta.read() as t:
            dsid, store_id, unsealed = t.info("domain_sid"), t.info("store_id"), t.unsealed_keys()
            foreign = [k.access_key for k in t.access_keys() if StoreKey.sealed_by(k.secret) not in
                       (None, self._key.id)]
        if foreign:
            log.warning("%d S3 secret keys were sealed with a store key other than this store.key: they do not "
                        "work until that key file is restored (or replace them): %s", len(foreign),
                        ", ".join(foreign))
        if dsid is not None and not unsealed:
            return dsid
        new_dsid = dsid or sids.domain_sid(uuid.UUID(store_id) if store_id else uuid.uuid4())

        def fix(t: Txn) -> str:
            current = t.info("domain_sid")
            if current is None:
                t.set_info("domain_sid", new_dsid)
            unsealed = t.unsealed_keys()
            for k in unsealed:
                t.set_key_secret(k.access_key, self._key.seal(k.secret.removeprefix("plain:"), k.access_key))
            self.resealed = len(unsealed)
            t.bump_identity_epoch()
            return current or new_dsid
        return self._meta.write(fix)

    def _read_epoch(self) -> int:
        return self._meta.peek().identity_epoch()

    def _write(self, fn: Callable[[Txn], T]) -> T:
        def apply(t: Txn) -> T:
            out = fn(t)
            t.bump_identity_epoch()
            return out
        try:
            return self._meta.write(apply)
        finally:
            self._cache.invalidate()

    # -- records --------------------------------------------------------------------------
    def _sid(self, rid: int) -> str:
        return f"{self.domain_sid}-{rid}"

    def _user(self, t: Txn, row: UserRow, groups: Sequence[tuple[str, int]] | None = None) -> User:
        gs = t.groups_of(row.name) if groups is None else groups
        return User(row.name, row.uid, row.gid, tuple(n for n, _ in gs), frozenset(g for _, g in gs), row.admin,
                    row.rid, self._sid(row.rid), row.created, row.nt_hash, row.pw_hash)

    def _group(self, t: Txn, row: GroupRow, members: Sequence[str] | None = None) -> Group:
        ms = t.members(row.name) if members is None else members
        return Group(row.name, row.gid, row.rid, self._sid(row.rid), tuple(ms), row.created)

    @staticmethod
    def _need_user(t: Txn, name: str) -> UserRow:
        row = t.user(name)
        if row is None:
            raise NotFound(f"no user {name!r}")
        return row

    @staticmethod
    def _need_group(t: Txn, name: str) -> GroupRow:
        row = t.group(name)
        if row is None:
            raise NotFound(f"no group {name!r}")
        return row

    # -- lookups (cached) -----------------------------------------------------------------
    def lookup_key(self, access_key: str) -> KeyMatch | None:
        """The active key ``access_key``: its user, secret and credential; None if unknown or disabled."""
        return self._cache.get(("key", access_key), lambda: self._load_key(access_key))

    def _load_key(self, access_key: str) -> KeyMatch | None:
        with self._meta.read() as t:
            k = t.access_key(access_key)
            row = None if k is None or k.status != ACTIVE else t.user(k.user)
            user = None if row is None else self._user(t, row)
        if k is None or user is None:
            return None
        secret = self._key.open(k.secret, k.access_key)
        if secret is None:
            if k.access_key not in self._warned:
                self._warned.add(k.access_key)
                log.warning("S3 key %s of %s cannot be opened with this store.key", k.access_key, k.user)
            return None
        return KeyMatch(user, k.access_key, secret, user.cred)

    def user(self, name: str) -> User | None:
        return self._cache.get(("user", name), lambda: self._load_user(name))

    def _load_user(self, name: str) -> User | None:
        with self._meta.read() as t:
            row = t.user(name)
            return None if row is None else self._user(t, row)

    def cred_for(self, name: str) -> Cred:
        """The credential core.fs calls run with for user ``name`` (NotFound if there is none)."""
        u = self.user(name)
        if u is None:
            raise NotFound(f"no user {name!r}")
        return u.cred

    def user_by_uid(self, uid: int) -> User | None:
        def load() -> User | None:
            with self._meta.read() as t:
                row = t.user_by("uid", uid)
                return None if row is None else self._user(t, row)
        return self._cache.get(("uid", uid), load)

    def group(self, name: str) -> Group | None:
        def load() -> Group | None:
            with self._meta.read() as t:
                row = t.group(name)
                return None if row is None else self._group(t, row)
        return self._cache.get(("group", name), load)

    def group_by_gid(self, gid: int) -> Group | None:
        def load() -> Group | None:
            with self._meta.read() as t:
                row = t.group_by("gid", gid)
                return None if row is None else self._group(t, row)
        return self._cache.get(("gid", gid), load)

    def check_password(self, name: str, password: str) -> bool:
        u = self.user(name)
        return u is not None and check_password(u.pw_hash, password)

    # -- SIDs ------------------------------------------------------------------------------
    def sid_of_user(self, name: str) -> str:
        u = self.user(name)
        if u is None:
            raise NotFound(f"no user {name!r}")
        return u.sid

    def sid_of_group(self, name: str) -> str:
        g = self.group(name)
        if g is None:
            raise NotFound(f"no group {name!r}")
        return g.sid

    def sid_of_uid(self, uid: int) -> str:
        """The owner SID of a file owned by ``uid`` (``S-1-22-1-UID`` when no user has it)."""
        u = self.user_by_uid(uid)
        return u.sid if u is not None else f"{sids.UNIX_USER}-{uid}"

    def sid_of_gid(self, gid: int) -> str:
        g = self.group_by_gid(gid)
        return g.sid if g is not None else f"{sids.UNIX_GROUP}-{gid}"

    def lookup_sid(self, sid: str) -> User | Group | None:
        """The user or group a SID names (domain SIDs and Samba's S-1-22 forms)."""
        parsed = sids.parse(sid)
        if parsed is None:
            return None
        prefix, n = parsed
        if prefix == sids.UNIX_USER:
            return self.user_by_uid(n)
        if prefix == sids.UNIX_GROUP:
            return self.group_by_gid(n)
        if prefix != self.domain_sid:
            return None

        def load() -> User | Group | None:
            with self._meta.read() as t:
                u = t.user_by("rid", n)
                if u is not None:
                    return self._user(t, u)
                g = t.group_by("rid", n)
                return None if g is None else self._group(t, g)
        return self._cache.get(("rid", n), load)

    def id_of_sid(self, sid: str) -> tuple[str, int] | None:
        """("uid", N) or ("gid", N) for a SID, e.g. an owner SMB sets; None if it names nobody here."""
        parsed = sids.parse(sid)
        if parsed is not None and parsed[0] == sids.UNIX_USER:
            return "uid", parsed[1]
        if parsed is not None and parsed[0] == sids.UNIX_GROUP:
            return "gid", parsed[1]
        who = self.lookup_sid(sid)
        if isinstance(who, User):
            return "uid", who.uid
        return None if who is None else ("gid", who.gid)

    # -- users ------------------------------------------------------------------------------
    def users(self) -> list[User]:
        with self._meta.read() as t:
            gids = {g.name: g.gid for g in t.groups()}
            member_of: dict[str, list[tuple[str, int]]] = {}
            for g, names in t.all_members().items():
                for n in names:
                    member_of.setdefault(n, []).append((g, gids[g]))
            return [self._user(t, r, member_of.get(r.name, [])) for r in t.users()]

    def add_user(self, name: str, password: str | None = None, *, uid: int | None = None,
                 gid: int | str | None = None, groups: Iterable[str] = (), admin: bool = False,
                 access_key: str | None = None, secret_key: str | None = None,
                 key: bool = True) -> tuple[User, KeyPair | None]:
        """Add a user with a fresh S3 key pair, the one given (both or neither), or none (``key=False``).

        uid: the next free id from 1000 unless given; gid: the uid (a private
        group) unless given, as a number or a group name.
        """
        valid_name(name)
        if (access_key is None) != (secret_key is None):
            raise InvalidArgument("give both the access key and the secret key, or neither")
        if access_key is not None and secret_key is not None:
            valid_keys(access_key, secret_key)
        for n, what in ((uid, "uid"), (gid if isinstance(gid, int) else None, "gid")):
            if n is not None:
                _valid_owner_id(n, what)
        hashes = _hashes(password)
        pair = KeyPair(name, access_key or new_access_key(), secret_key or new_secret_key()) if key else None
        group_list = list(groups)

        def apply(t: Txn) -> User:
            if t.user(name) is not None:
                raise Exists(f"user {name!r} exists")
            if pair is not None and t.access_key(pair.access_key) is not None:
                raise Exists("that access key belongs to another user")
            u_id = uid if uid is not None else t.next_id()
            _free_uid(t, u_id)
            g_id = _resolve_gid(t, gid) if gid is not None else u_id
            row = UserRow(name, u_id, g_id, admin, t.take_rid(), *hashes, time.time_ns())
            t.add_user(row)
            for g in _resolve_groups(t, group_list):
                t.add_member(g, name)
            if pair is not None:
                t.add_access_key(KeyRow(pair.access_key, name, self._key.seal(pair.secret_key, pair.access_key),
                                        ACTIVE, row.created))
            return self._user(t, row)
        return self._write(apply), pair

    def remove_user(self, name: str) -> None:
        """Remove a user, its keys and memberships (files it owns keep its uid; its RID is never reused)."""
        def apply(t: Txn) -> None:
            if not t.remove_user(name):
                raise NotFound(f"no user {name!r}")
        self._write(apply)

    def modify_user(self, name: str, *, uid: int | None = None, gid: int | str | None = None,
                    groups: Iterable[str] | None = None, admin: bool | None = None,
                    password: str | None = None, clear_password: bool = False) -> User:
        """Change what is given; ``groups`` replaces the supplementary groups (names or gids).

        A new uid or gid does not change the owner of existing files.
        """
        for n, what in ((uid, "uid"), (gid if isinstance(gid, int) else None, "gid")):
            if n is not None:
                _valid_owner_id(n, what)
        hashes = _hashes(password) if password is not None else None
        group_list = None if groups is None else list(groups)

        def apply(t: Txn) -> User:
            row = self._need_user(t, name)
            if uid is not None and uid != row.uid:
                _free_uid(t, uid)
            new = UserRow(name, row.uid if uid is None else uid,
                          row.gid if gid is None else _resolve_gid(t, gid),
                          row.admin if admin is None else admin, row.rid,
                          *(hashes or ((None, None) if clear_password else (row.nt_hash, row.pw_hash))), row.created)
            t.update_user(new)
            if group_list is not None:
                wanted = _resolve_groups(t, group_list)
                t.clear_memberships(name)
                for g in wanted:
                    t.add_member(g, name)
            return self._user(t, new)
        return self._write(apply)

    # -- S3 keys ----------------------------------------------------------------------------
    def add_key(self, user: str, access_key: str | None = None, secret_key: str | None = None) -> KeyPair:
        """A new key pair for ``user`` (generated, or imported: both or neither); old keys keep working."""
        if (access_key is None) != (secret_key is None):
            raise InvalidArgument("give both the access key and the secret key, or neither")
        if access_key is not None and secret_key is not None:
            valid_keys(access_key, secret_key)
        pair = KeyPair(user, access_key or new_access_key(), secret_key or new_secret_key())

        def apply(t: Txn) -> KeyPair:
            self._need_user(t, user)
            if t.access_key(pair.access_key) is not None:
                raise Exists("that access key is in use")
            t.add_access_key(KeyRow(pair.access_key, user, self._key.seal(pair.secret_key, pair.access_key),
                                    ACTIVE, time.time_ns()))
            return pair
        return self._write(apply)

    def access_keys(self, user: str | None = None) -> list[AccessKey]:
        """The key pairs of ``user`` (all users' if None), oldest first, without secrets."""
        with self._meta.read() as t:
            if user is not None:
                self._need_user(t, user)
            return [AccessKey(k.access_key, k.user, k.status, k.created) for k in t.access_keys(user)]

    def key_pair(self, user: str, access_key: str) -> KeyPair:
        """A key pair of ``user`` with its secret (for operators re-reading what they configured)."""
        with self._meta.read() as t:
            k = self._users_key(t, user, access_key)
        secret = self._key.open(k.secret, k.access_key)
        if secret is None:
            raise NotFound(f"the secret of key {access_key} cannot be opened with this store.key")
        return KeyPair(user, access_key, secret)

    def disable_key(self, user: str, access_key: str) -> None:
        self._set_status(user, access_key, DISABLED)

    def enable_key(self, user: str, access_key: str) -> None:
        self._set_status(user, access_key, ACTIVE)

    def remove_key(self, user: str, access_key: str) -> None:
        def apply(t: Txn) -> None:
            self._users_key(t, user, access_key)
            t.remove_access_key(access_key)
        self._write(apply)

    def _set_status(self, user: str, access_key: str, status: str) -> None:
        def apply(t: Txn) -> None:
            self._users_key(t, user, access_key)
            t.set_key_status(access_key, status)
        self._write(apply)

    def _users_key(self, t: Txn, user: str, access_key: str) -> KeyRow:
        self._need_user(t, user)
        k = t.access_key(access_key)
        if k is None or k.user != user:
            raise NotFound(f"user {user!r} has no access key {access_key!r}")
        return k

    # -- groups -----------------------------------------------------------------------------
    def groups(self) -> list[Group]:
        with self._meta.read() as t:
            members = t.all_members()
            return [self._group(t, g, members.get(g.name, [])) for g in t.groups()]

    def add_group(self, name: str, gid: int | None = None, members: Iterable[str] = ()) -> Group:
        valid_name(name, "group")
        if gid is not None:
            _valid_owner_id(gid, "gid")
        member_list = list(members)

        def apply(t: Txn) -> Group:
            if t.group(name) is not None:
                raise Exists(f"group {name!r} exists")
            g_id = gid if gid is not None else t.next_id()
            other = t.group_by("gid", g_id)
            if other is not None:
                raise Exists(f"gid {g_id} belongs to group {other.name!r}")
            row = GroupRow(name, g_id, t.take_rid(), time.time_ns())
            t.add_group(row)
            for u in member_list:
                self._need_user(t, u)
                t.add_member(name, u)
            return self._group(t, row)
        return self._write(apply)

    def remove_group(self, name: str) -> None:
        """Remove a group (not while it is some user's primary group)."""
        def apply(t: Txn) -> None:
            row = self._need_group(t, name)
            primary = t.users_with_gid(row.gid)
            if primary:
                raise NotEmpty(f"group {name!r} is the primary group of {', '.join(primary)}")
            t.remove_group(name)
        self._write(apply)

    def add_to_group(self, group: str, user: str) -> bool:
        """Make ``user`` a member of ``group``; False if it already was."""
        def apply(t: Txn) -> bool:
            self._need_group(t, group)
            self._need_user(t, user)
            return t.add_member(group, user)
        return self._write(apply)

    def remove_from_group(self, group: str, user: str) -> None:
        def apply(t: Txn) -> None:
            self._need_group(t, group)
            if not t.remove_member(group, user):
                raise NotFound(f"{user!r} is not a member of group {group!r}")
        self._write(apply)


def _valid_owner_id(n: int, what: str) -> None:
    valid_id(n, what)
    if n == NOBODY_ID:
        raise InvalidArgument(f"{what} {n} is kept for anonymous access")


def _hashes(password: str | None) -> tuple[bytes | None, str | None]:
    if password is None:
        return None, None
    if not 1 <= len(password) <= 256 or "\0" in password:
        raise InvalidArgument("password: 1-256 characters, no NUL")
    return nt_hash(password), hash_password(password)


def _free_uid(t: Txn, uid: int) -> None:
    other = t.user_by("uid", uid)
    if other is not None:
        raise Exists(f"uid {uid} belongs to user {other.name!r}")


def _resolve_gid(t: Txn, gid: int | str) -> int:
    """A gid given as a number (any) or a group name (must exist)."""
    if isinstance(gid, int):
        return gid
    g = t.group(gid)
    if g is None:
        raise NotFound(f"no group {gid!r}")
    return g.gid


def _resolve_groups(t: Txn, groups: Sequence[str]) -> list[str]:
    """Group names for names or decimal gids; every one must exist."""
    out: list[str] = []
    for g in groups:
        row = t.group(g) or (t.group_by("gid", int(g)) if g.isascii() and g.isdigit() and len(g) <= 10 else None)
        if row is None:
            raise NotFound(f"no group {g!r}")
        if row.name not in out:
            out.append(row.name)
    return out
