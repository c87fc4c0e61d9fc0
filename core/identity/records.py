"""The identity records protocols see (they never see core.meta's rows)."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.fs.types import Cred


@dataclass(frozen=True, slots=True)
class User:
    """A person (or service) across every protocol.

    ``gid`` is the primary group; ``groups`` the supplementary groups by name
    and ``gids`` the same by number.  ``nt_hash`` is what SMB's NTLM checks;
    ``pw_hash`` a salted scrypt hash for protocols that see a clear password
    (both None without a password).
    """

    name: str
    uid: int
    gid: int
    groups: tuple[str, ...]
    gids: frozenset[int]
    admin: bool
    rid: int
    sid: str
    created: int  # nanoseconds since the epoch
    nt_hash: bytes | None = field(default=None, repr=False)
    pw_hash: str | None = field(default=None, repr=False)

    @property
    def has_password(self) -> bool:
        return self.nt_hash is not None

    @property
    def cred(self) -> Cred:
        return Cred(self.uid, self.gid, self.gids, self.admin, self.name)


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    gid: int
    rid: int
    sid: str
    members: tuple[str, ...]
    created: int


@dataclass(frozen=True, slots=True)
class AccessKey:
    """An S3 key pair as listed (the secret is shown once, when it is made)."""

    access_key: str
    user: str
    status: str  # "active" | "disabled"
    created: int

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A key just made or imported: the only time the secret is handed out to an operator."""

    user: str
    access_key: str
    secret_key: str


@dataclass(frozen=True, slots=True)
class KeyMatch:
    """What an S3 request signed with ``access_key`` authenticates as.

    ``name``, ``uid`` and ``gid`` mirror the user's, so code written against the
    old user record (``.name``, ``.uid``, ``.gid``, ``.secret_key``) works as is.
    """

    user: User
    access_key: str
    secret_key: str = field(repr=False)
    cred: Cred

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def uid(self) -> int:
        return self.user.uid

    @property
    def gid(self) -> int:
        return self.user.gid
