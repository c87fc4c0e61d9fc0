"""SMB shares: the ``smb.shares`` list of tessera.yaml, validated, and who may connect.

One share (the shape others script against, issue 11)::

    - name: data             # 1-80 characters, none of  \\ / : * ? " < > |  and no control characters
      path: /data            # a store path (absolute, normalised: no '.', '..' or '//')
      users: [alice]         # and/or groups: [studio]; both empty = any authenticated user
      groups: []
      read_only: false
      browseable: true       # listed by NetShareEnum (smbclient -L, Explorer)
      encrypt: false         # true = a session must encrypt to use it
      case_insensitive: true # Windows semantics: names looked up without case (an index, not a scan)
      guest: false           # true = an anonymous/guest session may connect (off by default: Windows 11
                             # refuses guest logons anyway)

:func:`parse_shares` turns the raw YAML list into :class:`Share` objects or raises ``ValueError``
naming the offending key (``smb.shares[1].name: ...``), so the gateway's config check and the
server report the same message. Names are unique ignoring case (Windows compares share names
without case); ``IPC$`` is the server's own and cannot be configured.

>>> s = parse_shares([{"name": "data", "path": "/data", "users": ["alice"]}])[0]
>>> s.allows("alice", ()), s.allows("bob", ("studio",)), s.key
(True, False, 'data')
>>> parse_shares([{"name": "a/b", "path": "/x"}])
Traceback (most recent call last):
...
ValueError: smb.shares[0].name: 'a/b' may not contain any of \\ / : * ? " < > |
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

BAD_NAME_CHARS: Final = frozenset('\\/:*?"<>|')
MAX_NAME: Final = 80
IPC_SHARE: Final = "IPC$"
_BOOL_KEYS: Final = ("read_only", "browseable", "encrypt", "case_insensitive", "guest")
_KEYS: Final = frozenset(("name", "path", "users", "groups", "comment", *_BOOL_KEYS))


@dataclass(frozen=True)
class Share:
    """One configured share (see the module docstring)."""

    name: str
    path: str
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    read_only: bool = False
    browseable: bool = True
    encrypt: bool = False
    case_insensitive: bool = True
    guest: bool = False
    comment: str = ""

    @property
    def key(self) -> str:
        """The name as share lookups compare it (case folded)."""
        return self.name.casefold()

    def allows(self, user: str | None, groups: Iterable[str]) -> bool:
        """Whether ``user`` (None: anonymous/guest) in ``groups`` may connect."""
        if user is None:
            return self.guest
        if not self.users and not self.groups:
            return True
        return user in self.users or any(g in self.groups for g in groups)


def check_name(name: object, where: str) -> str:
    """A valid share name, or ValueError naming ``where``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: a share name is a non-empty string")
    if len(name) > MAX_NAME:
        raise ValueError(f"{where}: {name!r} is longer than {MAX_NAME} characters")
    if any(c in BAD_NAME_CHARS for c in name):
        raise ValueError(f"{where}: {name!r} may not contain any of \\ / : * ? \" < > |")
    if any(ord(c) < 32 for c in name):
        raise ValueError(f"{where}: {name!r} contains a control character")
    if name.casefold() == IPC_SHARE.casefold():
        raise ValueError(f"{where}: IPC$ is the server's own share")
    return name


def check_path(path: object, where: str) -> str:
    """A normalised absolute store path, or ValueError naming ``where``."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"{where}: a share path is an absolute store path such as /data")
    parts = path.split("/")[1:]
    if path != "/" and any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{where}: {path!r} is not a normalised path (no '.', '..', '//' or trailing '/')")
    return path


def _names(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{where}: a list of names")
    return tuple(value)


def parse_share(raw: object, where: str) -> Share:
    """One share from its YAML mapping (ValueError naming ``where`` and the key)."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a share is a mapping with name and path")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    flags: dict[str, bool] = {}
    for k in _BOOL_KEYS:
        if k in raw:
            if not isinstance(raw[k], bool):
                raise ValueError(f"{where}.{k}: true or false")
            flags[k] = raw[k]
    comment = raw.get("comment", "")
    if not isinstance(comment, str):
        raise ValueError(f"{where}.comment: a string")
    return Share(name=check_name(raw.get("name"), f"{where}.name"), path=check_path(raw.get("path"), f"{where}.path"),
                 users=_names(raw.get("users"), f"{where}.users"), groups=_names(raw.get("groups"), f"{where}.groups"),
                 comment=comment, **flags)


def parse_shares(raw: object, where: str = "smb.shares") -> list[Share]:
    """Every share of ``smb.shares``; ValueError for a bad one or two names equal ignoring case."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"{where}: a list of shares")
    out: list[Share] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(raw):
        share = parse_share(item, f"{where}[{i}]")
        if share.key in seen:
            raise ValueError(f"{where}[{i}].name: {share.name!r} is already the name of share {seen[share.key]!r} "
                             "(share names are compared without case)")
        seen[share.key] = share.name
        out.append(share)
    return out


def by_name(shares: Sequence[Share], name: str) -> Share | None:
    """The share called ``name`` (ignoring case), if any."""
    key = name.casefold()
    return next((s for s in shares if s.key == key), None)
