"""Identity commands: ``tessera user …``, ``tessera user key …``, ``tessera group …``.

Every listing takes ``--json``.  ``user add`` keeps the flags scripts and the
appliance use (``--password``, ``--access-key/--secret-key``, ``--exist-ok``,
``--json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from core.errors import Exists, InvalidArgument
from core.identity import AccessKey, Group, Identity, KeyPair, User
from gateway.common import store

Handler = Callable[[argparse.Namespace], int]


# -- parsers ------------------------------------------------------------------------------
def add_parsers(sub: Any, common: argparse.ArgumentParser, no_sub: Handler) -> None:
    """Add ``user`` and ``group`` to the top-level subparsers ``sub``."""
    def action(parent: Any, name: str, fn: Handler, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(fn=fn)
        return p

    u = action(sub, "user", no_sub, "manage users and their S3 keys")
    usub = u.add_subparsers(dest="user_cmd", required=True, metavar="ACTION")
    p = action(usub, "add", user_add, "add a user; prints its S3 keys")
    p.add_argument("name")
    _password_args(p)
    p.add_argument("--access-key", help="import this S3 access key (with --secret-key) instead of a generated one")
    p.add_argument("--secret-key", help="the secret of --access-key")
    p.add_argument("--no-key", action="store_true", help="make no S3 key pair (SMB/NFS-only user)")
    _id_args(p)
    p.add_argument("--admin", action="store_true", help="may do anything (bypasses permission checks)")
    p.add_argument("--exist-ok", action="store_true",
                   help="succeed without change when the user exists (with the given keys, if any)")
    p.add_argument("--json", action="store_true")
    p = action(usub, "list", user_list, "list users")
    p.add_argument("--json", action="store_true")
    p = action(usub, "remove", user_remove, "remove a user and its keys (its files keep its uid)")
    p.add_argument("name")
    p = action(usub, "modify", user_modify, "change a user's ids, groups, admin flag or password")
    p.add_argument("name")
    _id_args(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--admin", dest="admin", action="store_true", default=None)
    g.add_argument("--no-admin", dest="admin", action="store_false")
    _password_args(p)
    p.add_argument("--no-password", action="store_true", help="remove the password (no SMB/NFS logins)")
    p.add_argument("--json", action="store_true")

    k = action(usub, "key", no_sub, "manage a user's S3 key pairs (several at once: rotate without downtime)")
    ksub = k.add_subparsers(dest="key_cmd", required=True, metavar="ACTION")
    p = action(ksub, "add", key_add, "add a key pair (generated, or imported with --access-key/--secret-key)")
    p.add_argument("name")
    p.add_argument("--access-key")
    p.add_argument("--secret-key")
    p.add_argument("--json", action="store_true")
    p = action(ksub, "list", key_list, "list key pairs (of NAME, or of every user)")
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true")
    for verb, fn, what in (("remove", key_remove, "remove a key pair"),
                           ("disable", key_disable, "stop a key pair working (until enabled again)"),
                           ("enable", key_enable, "let a disabled key pair work again")):
        p = action(ksub, verb, fn, what)
        p.add_argument("name")
        p.add_argument("access_key")

    g2 = action(sub, "group", no_sub, "manage groups")
    gsub = g2.add_subparsers(dest="group_cmd", required=True, metavar="ACTION")
    p = action(gsub, "add", group_add, "add a group")
    p.add_argument("name")
    p.add_argument("--gid", type=int, help="the group id (default: the next free id from 1000)")
    p.add_argument("--json", action="store_true")
    p = action(gsub, "list", group_list, "list groups and their members")
    p.add_argument("--json", action="store_true")
    p = action(gsub, "remove", group_remove, "remove a group (not while it is a user's primary group)")
    p.add_argument("name")
    p = action(gsub, "adduser", group_adduser, "add users to a group")
    p.add_argument("group")
    p.add_argument("users", nargs="+", metavar="USER")
    p = action(gsub, "deluser", group_deluser, "remove users from a group")
    p.add_argument("group")
    p.add_argument("users", nargs="+", metavar="USER")


def _password_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--password", help="password for SMB/NFS logins (stored as hashes)")
    g.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")


def _id_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--uid", type=int, help="user id (default: the next free id from 1000); files keep their owner")
    p.add_argument("--gid", help="primary group: a gid or a group name (default: the uid)")
    p.add_argument("--groups", metavar="G1,G2", help="supplementary groups, names or gids ('' for none)")


def _password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise InvalidArgument("no password on stdin")
        return line
    return str(args.password) if args.password is not None else None


def _gid(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.isascii() and value.isdigit() else value


def _groups(value: str | None) -> list[str] | None:
    return None if value is None else [g.strip() for g in value.split(",") if g.strip()]


# -- records as JSON and text ---------------------------------------------------------------
def _user_doc(u: User, keys: list[AccessKey]) -> dict[str, Any]:
    active = [k.access_key for k in keys if k.active]
    return {"name": u.name, "uid": u.uid, "gid": u.gid, "groups": list(u.groups), "admin": u.admin, "sid": u.sid,
            "password": u.has_password, "access_key": active[0] if active else None,
            "keys": [{"access_key": k.access_key, "status": k.status} for k in keys]}


def _key_doc(k: AccessKey) -> dict[str, Any]:
    return {"user": k.user, "access_key": k.access_key, "status": k.status, "created": _when(k.created)}


def _group_doc(g: Group) -> dict[str, Any]:
    return {"name": g.name, "gid": g.gid, "sid": g.sid, "members": list(g.members)}


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _print_user(u: User) -> None:
    print(f"user {u.name}: uid {u.uid}, gid {u.gid}, groups {','.join(u.groups) or '-'}, "
          f"{'admin' if u.admin else 'not admin'}, {'password' if u.has_password else 'no password'}")


# -- users --------------------------------------------------------------------------------
def user_add(args: argparse.Namespace) -> int:
    if args.no_key and args.access_key:
        raise InvalidArgument("--no-key and --access-key exclude each other")
    password = _password(args)
    with store(args) as s:
        ident = s.identity
        try:
            u, pair = ident.add_user(args.name, password, uid=args.uid, gid=_gid(args.gid),
                                     groups=_groups(args.groups) or [], admin=args.admin,
                                     access_key=args.access_key, secret_key=args.secret_key, key=not args.no_key)
        except Exists:
            old = ident.user(args.name)
            if not args.exist_ok or old is None:
                raise
            u, pair = old, _existing_pair(ident, args)
    if args.json:
        print(json.dumps({"name": u.name, "access_key": pair.access_key if pair else None,
                          "secret_key": pair.secret_key if pair else None, "uid": u.uid, "gid": u.gid,
                          "groups": list(u.groups), "admin": u.admin, "sid": u.sid}))
    elif pair is None:
        print(f"user {u.name} (uid {u.uid}), no S3 keys")
    else:
        print(f"user {u.name} (uid {u.uid})\naccess key: {pair.access_key}\nsecret key: {pair.secret_key}")
    return 0


def _existing_pair(ident: Identity, args: argparse.Namespace) -> KeyPair | None:
    """``--exist-ok``: the user's given key pair (which must be there), else its oldest active one."""
    keys = ident.access_keys(args.name)
    if args.access_key:
        mine = any(k.access_key == args.access_key for k in keys)
        pair = ident.key_pair(args.name, args.access_key) if mine else None
        if pair is None or pair.secret_key != args.secret_key:
            raise Exists(f"user {args.name!r} exists with other keys (remove it first to change them)")
        return pair
    active = [k for k in keys if k.active]
    return ident.key_pair(args.name, active[0].access_key) if active else None


def user_list(args: argparse.Namespace) -> int:
    with store(args) as s:
        users = s.identity.users()
        keys: dict[str, list[AccessKey]] = {}
        for k in s.identity.access_keys():
            keys.setdefault(k.user, []).append(k)
    if args.json:
        print(json.dumps([_user_doc(u, keys.get(u.name, [])) for u in users]))
        return 0
    for u in users:
        ks = ",".join(k.access_key + ("" if k.active else "(disabled)") for k in keys.get(u.name, [])) or "-"
        print(f"{u.name}\tuid={u.uid}\tgid={u.gid}\tgroups={','.join(u.groups) or '-'}\t"
              f"{'admin' if u.admin else '-'}\t{'password' if u.has_password else 'no password'}\t{ks}")
    return 0


def user_remove(args: argparse.Namespace) -> int:
    with store(args) as s:
        s.identity.remove_user(args.name)
    return 0


def user_modify(args: argparse.Namespace) -> int:
    password = _password(args)
    if password is not None and args.no_password:
        raise InvalidArgument("--no-password and a password exclude each other")
    with store(args) as s:
        u = s.identity.modify_user(args.name, uid=args.uid, gid=_gid(args.gid), groups=_groups(args.groups),
                                   admin=args.admin, password=password, clear_password=args.no_password)
        keys = s.identity.access_keys(args.name)
    if args.json:
        print(json.dumps(_user_doc(u, keys)))
    else:
        _print_user(u)
    return 0


# -- keys ---------------------------------------------------------------------------------
def key_add(args: argparse.Namespace) -> int:
    with store(args) as s:
        pair = s.identity.add_key(args.name, args.access_key, args.secret_key)
    if args.json:
        print(json.dumps({"user": pair.user, "access_key": pair.access_key, "secret_key": pair.secret_key}))
    else:
        print(f"access key: {pair.access_key}\nsecret key: {pair.secret_key}")
    return 0


def key_list(args: argparse.Namespace) -> int:
    with store(args) as s:
        keys = s.identity.access_keys(args.name)
    if args.json:
        print(json.dumps([_key_doc(k) for k in keys]))
        return 0
    for k in keys:
        print(f"{k.user}\t{k.access_key}\t{k.status}\t{_when(k.created)}")
    return 0


def _key_change(args: argparse.Namespace, change: str) -> int:
    """``user key remove|disable|enable NAME KEY``: one Identity call."""
    with store(args) as s:
        getattr(s.identity, f"{change}_key")(args.name, args.access_key)
    return 0


def key_remove(args: argparse.Namespace) -> int:
    return _key_change(args, "remove")


def key_disable(args: argparse.Namespace) -> int:
    return _key_change(args, "disable")


def key_enable(args: argparse.Namespace) -> int:
    return _key_change(args, "enable")


# -- groups -------------------------------------------------------------------------------
def group_add(args: argparse.Namespace) -> int:
    with store(args) as s:
        g = s.identity.add_group(args.name, args.gid)
    if args.json:
        print(json.dumps(_group_doc(g)))
    else:
        print(f"group {g.name} (gid {g.gid})")
    return 0


def group_list(args: argparse.Namespace) -> int:
    with store(args) as s:
        groups = s.identity.groups()
    if args.json:
        print(json.dumps([_group_doc(g) for g in groups]))
        return 0
    for g in groups:
        print(f"{g.name}\tgid={g.gid}\t{','.join(g.members) or '-'}")
    return 0


def group_remove(args: argparse.Namespace) -> int:
    with store(args) as s:
        s.identity.remove_group(args.name)
    return 0


def group_adduser(args: argparse.Namespace) -> int:
    with store(args) as s:
        for u in args.users:
            s.identity.add_to_group(args.group, u)
    return 0


def group_deluser(args: argparse.Namespace) -> int:
    with store(args) as s:
        for u in args.users:
            s.identity.remove_from_group(args.group, u)
    return 0
