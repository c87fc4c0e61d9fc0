"""Identity SQL (users, groups, memberships, S3 keys), mixed into Txn.

Portable statements only (``?`` placeholders, no SQLite-only syntax); the
rules (validation, sealing secrets, caching) live in core.identity.
Every change made through core.identity bumps ``info.identity_epoch`` in the
same transaction, which is how other processes notice it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.meta.dbapi import Cursor

Row = tuple[Any, ...]
FIRST_ID = 1000  # first uid/gid handed out
FIRST_RID = 1000


@dataclass(frozen=True, slots=True)
class UserRow:
    name: str
    uid: int
    gid: int
    admin: bool
    rid: int
    nt_hash: bytes | None
    pw_hash: str | None
    created: int


@dataclass(frozen=True, slots=True)
class GroupRow:
    name: str
    gid: int
    rid: int
    created: int


@dataclass(frozen=True, slots=True)
class KeyRow:
    access_key: str
    user: str
    secret: str  # sealed (see core.identity.secretbox)
    status: str  # "active" | "disabled"
    created: int


_U = "name, uid, gid, admin, rid, nt_hash, pw_hash, created"
_G = "name, gid, rid, created"
_K = "access_key, user_name, secret, status, created"


def _user(r: Row) -> UserRow:
    return UserRow(str(r[0]), int(r[1]), int(r[2]), bool(r[3]), int(r[4]),
                   None if r[5] is None else bytes(r[5]), None if r[6] is None else str(r[6]), int(r[7]))


def _group(r: Row) -> GroupRow:
    return GroupRow(str(r[0]), int(r[1]), int(r[2]), int(r[3]))


def _key(r: Row) -> KeyRow:
    return KeyRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]))


class IdentityTxn:
    """Txn's identity methods (Txn supplies the primitives below)."""

    if TYPE_CHECKING:  # Txn's own
        def one(self, sql: str, args: Sequence[Any] = ()) -> Row | None: ...
        def all(self, sql: str, args: Sequence[Any] = ()) -> list[Row]: ...
        def exec(self, sql: str, args: Sequence[Any] = ()) -> Cursor: ...
        def info(self, key: str) -> str | None: ...
        def set_info(self, key: str, value: str) -> None: ...

    # -- counters -------------------------------------------------------------------
    def identity_epoch(self) -> int:
        return int(self.info("identity_epoch") or 0)

    def bump_identity_epoch(self) -> int:
        epoch = self.identity_epoch() + 1
        self.set_info("identity_epoch", str(epoch))
        return epoch

    def take_rid(self) -> int:
        """A RID never handed out before (users and groups share the counter)."""
        rid = int(self.info("next_rid") or FIRST_RID)
        self.set_info("next_rid", str(rid + 1))
        return rid

    def next_id(self, floor: int = FIRST_ID) -> int:
        """One past every uid and gid in use (so a new user's private gid = uid is free too)."""
        row = self.one("SELECT MAX(m) FROM (SELECT MAX(uid) AS m FROM users UNION ALL "
                       "SELECT MAX(gid) FROM users UNION ALL SELECT MAX(gid) FROM groups) ids")
        return max(floor, int(row[0]) + 1 if row and row[0] is not None else floor)

    # -- users ----------------------------------------------------------------------
    def user(self, name: str) -> UserRow | None:
        row = self.one(f"SELECT {_U} FROM users WHERE name = ?", (name,))
        return None if row is None else _user(row)

    def user_by(self, column: str, value: int) -> UserRow | None:
        """By ``uid`` or ``rid``."""
        assert column in ("uid", "rid")
        row = self.one(f"SELECT {_U} FROM users WHERE {column} = ?", (value,))
        return None if row is None else _user(row)

    def users(self) -> list[UserRow]:
        return [_user(r) for r in self.all(f"SELECT {_U} FROM users ORDER BY name")]

    def add_user(self, u: UserRow) -> None:
        self.exec(f"INSERT INTO users ({_U}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  (u.name, u.uid, u.gid, int(u.admin), u.rid, u.nt_hash, u.pw_hash, u.created))

    def update_user(self, u: UserRow) -> None:
        self.exec("UPDATE users SET uid = ?, gid = ?, admin = ?, nt_hash = ?, pw_hash = ? WHERE name = ?",
                  (u.uid, u.gid, int(u.admin), u.nt_hash, u.pw_hash, u.name))

    def remove_user(self, name: str) -> bool:
        self.exec("DELETE FROM user_keys WHERE user_name = ?", (name,))
        self.exec("DELETE FROM group_members WHERE user_name = ?", (name,))
        return self.exec("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

    def users_with_gid(self, gid: int) -> list[str]:
        return [str(r[0]) for r in self.all("SELECT name FROM users WHERE gid = ? ORDER BY name", (gid,))]

    # -- groups ---------------------------------------------------------------------
    def group(self, name: str) -> GroupRow | None:
        row = self.one(f"SELECT {_G} FROM groups WHERE name = ?", (name,))
        return None if row is None else _group(row)

    def group_by(self, column: str, value: int) -> GroupRow | None:
        """By ``gid`` or ``rid``."""
        assert column in ("gid", "rid")
        row = self.one(f"SELECT {_G} FROM groups WHERE {column} = ?", (value,))
        return None if row is None else _group(row)

    def groups(self) -> list[GroupRow]:
        return [_group(r) for r in self.all(f"SELECT {_G} FROM groups ORDER BY name")]

    def add_group(self, g: GroupRow) -> None:
        self.exec(f"INSERT INTO groups ({_G}) VALUES (?, ?, ?, ?)", (g.name, g.gid, g.rid, g.created))

    def remove_group(self, name: str) -> bool:
        self.exec("DELETE FROM group_members WHERE group_name = ?", (name,))
        return self.exec("DELETE FROM groups WHERE name = ?", (name,)).rowcount > 0

    def members(self, group: str) -> list[str]:
        return [str(r[0]) for r in self.all("SELECT user_name FROM group_members WHERE group_name = ? "
                                            "ORDER BY user_name", (group,))]

    def all_members(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for g, u in self.all("SELECT group_name, user_name FROM group_members ORDER BY group_name, user_name"):
            out.setdefault(str(g), []).append(str(u))
        return out

    def groups_of(self, user: str) -> list[tuple[str, int]]:
        """(name, gid) of the user's supplementary groups."""
        rows = self.all("SELECT g.name, g.gid FROM group_members m JOIN groups g ON g.name = m.group_name "
                        "WHERE m.user_name = ? ORDER BY g.name", (user,))
        return [(str(n), int(g)) for n, g in rows]

    def add_member(self, group: str, user: str) -> bool:
        if self.one("SELECT 1 FROM group_members WHERE group_name = ? AND user_name = ?", (group, user)):
            return False
        self.exec("INSERT INTO group_members (group_name, user_name) VALUES (?, ?)", (group, user))
        return True

    def remove_member(self, group: str, user: str) -> bool:
        return self.exec("DELETE FROM group_members WHERE group_name = ? AND user_name = ?",
                         (group, user)).rowcount > 0

    def clear_memberships(self, user: str) -> None:
        self.exec("DELETE FROM group_members WHERE user_name = ?", (user,))

    # -- S3 keys --------------------------------------------------------------------
    def access_key(self, access_key: str) -> KeyRow | None:
        row = self.one(f"SELECT {_K} FROM user_keys WHERE access_key = ?", (access_key,))
        return None if row is None else _key(row)

    def access_keys(self, user: str | None = None) -> list[KeyRow]:
        if user is None:
            rows = self.all(f"SELECT {_K} FROM user_keys ORDER BY user_name, created, access_key")
        else:
            rows = self.all(f"SELECT {_K} FROM user_keys WHERE user_name = ? ORDER BY created, access_key",
                            (user,))
        return [_key(r) for r in rows]

    def add_access_key(self, k: KeyRow) -> None:
        self.exec(f"INSERT INTO user_keys ({_K}) VALUES (?, ?, ?, ?, ?)",
                  (k.access_key, k.user, k.secret, k.status, k.created))

    def set_key_status(self, access_key: str, status: str) -> None:
        self.exec("UPDATE user_keys SET status = ? WHERE access_key = ?", (status, access_key))

    def set_key_secret(self, access_key: str, secret: str) -> None:
        self.exec("UPDATE user_keys SET secret = ? WHERE access_key = ?", (secret, access_key))

    def remove_access_key(self, access_key: str) -> bool:
        return self.exec("DELETE FROM user_keys WHERE access_key = ?", (access_key,)).rowcount > 0

    def unsealed_keys(self) -> list[KeyRow]:
        """Keys whose secret is still in clear (carried over from schema 1)."""
        return [_key(r) for r in self.all(f"SELECT {_K} FROM user_keys WHERE secret LIKE 'plain:%'")]
