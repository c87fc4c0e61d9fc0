"""Version, trash and object-lock commands: the CLI face of core.fs's versions and the trash can.

    tessera versions PATH [--json]                      every version of PATH, newest first
    tessera restore PATH [--version ID] [--to PATH]     make a kept version current again
    tessera trash list [TREE] [--json]                  what was deleted under TREE, when and by whom
    tessera trash restore PATH [--to PATH] [--id ROW]   put a deleted file or directory (with its contents) back
    tessera trash empty [TREE] [--older-than DAYS] [--yes]
    tessera trash policy DIR [--days N] [--max-bytes N] [--inherit] [--json]
    tessera versioning DIR [enable|suspend] [--json]
    tessera retention PATH [--version ID] [--mode M --until ISO8601 | --clear] [--bypass-governance]
    tessera hold PATH [--version ID] [on|off]

Each command opens the store and calls the core.fs version API (:mod:`core.fs.vops`) with the store's
admin credential, as the other file commands do; core.fs makes every decision (what is kept, what
retention forbids), so a refusal arrives as a :class:`core.errors.CoreError` and ``gateway.cli`` prints it
as one ``tessera: error: …`` line with exit status 1.  Listings print a rich table on stdout, or with
``--json`` one JSON document (times in nanoseconds since the epoch, sizes in bytes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from core.errors import InvalidArgument
from core.fs.fs import FileSystem
from core.fs.retention import Retention
from core.fs.vops import UNSET, TreePolicy, VersionInfo
from gateway.common import CliError, human, progress, store

Handler = Callable[[argparse.Namespace], int]
DAY_NS = 86400 * 1_000_000_000


def add_parsers(sub: Any, common: argparse.ArgumentParser, no_sub: Handler) -> None:
    """Add ``versions``, ``restore``, ``trash``, ``versioning``, ``retention`` and ``hold``."""
    def action(parent: Any, name: str, fn: Handler, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(fn=fn)
        return p

    p = action(sub, "versions", versions, "every version of a path, newest first")
    p.add_argument("path")
    p.add_argument("--json", action="store_true")
    p = action(sub, "restore", restore, "make a kept version current again (the newest by default)")
    p.add_argument("path")
    p.add_argument("--version", metavar="ID", help="the version id (see tessera versions)")
    p.add_argument("--to", metavar="PATH", help="restore there instead of at PATH")

    t = action(sub, "trash", no_sub, "the trash can: list, restore, empty, policy")
    tsub = t.add_subparsers(dest="trash_cmd", required=True, metavar="ACTION")
    p = action(tsub, "list", trash_list, "deleted paths under TREE (default /), with when and by whom")
    p.add_argument("tree", nargs="?", default="/")
    p.add_argument("--json", action="store_true")
    p = action(tsub, "restore", trash_restore, "put a deleted file or directory (with its contents) back")
    p.add_argument("path")
    p.add_argument("--to", metavar="PATH", help="restore there instead of at PATH")
    p.add_argument("--id", dest="row", type=int, metavar="ROW", help="which entry (see trash list; default newest)")
    p = action(tsub, "empty", trash_empty, "purge the trash under TREE (default /) for good")
    p.add_argument("tree", nargs="?", default="/")
    p.add_argument("--older-than", type=float, metavar="DAYS", help="only entries deleted more than DAYS ago")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = action(tsub, "policy", trash_policy, "show or set a directory tree's trash policy")
    p.add_argument("path")
    p.add_argument("--days", type=float, metavar="N", help="keep deleted and replaced files N days (0: no trash)")
    p.add_argument("--max-bytes", type=int, metavar="N", help="keep at most N bytes (0: no cap)")
    p.add_argument("--inherit", action="store_true", help="drop this tree's own trash settings (inherit again)")
    p.add_argument("--json", action="store_true")

    p = action(sub, "versioning", versioning, "show or set a directory tree's versioning")
    p.add_argument("path")
    p.add_argument("state", nargs="?", choices=("enable", "suspend"))
    p.add_argument("--json", action="store_true")
    p = action(sub, "retention", retention, "show or set a version's retention (object lock)")
    p.add_argument("path")
    p.add_argument("--version", metavar="ID", help="a kept version (default: the live file)")
    p.add_argument("--mode", type=str.upper, choices=("GOVERNANCE", "COMPLIANCE"))
    p.add_argument("--until", metavar="ISO8601", help="retain until then (UTC unless it says otherwise)")
    p.add_argument("--clear", action="store_true", help="remove the retention (governance: with --bypass-governance)")
    p.add_argument("--bypass-governance", action="store_true", help="admin: shorten or remove a governance retention")
    p.add_argument("--json", action="store_true")
    p = action(sub, "hold", hold, "show, set or clear a version's legal hold")
    p.add_argument("path")
    p.add_argument("state", nargs="?", choices=("on", "off"))
    p.add_argument("--version", metavar="ID", help="a kept version (default: the live file)")
    p.add_argument("--json", action="store_true")


# -- presentation -------------------------------------------------------------------------------
def _console() -> Console:
    """Tables on stdout; wide enough for version ids when stdout is not a terminal."""
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


def _when(ns: int | None) -> str:
    if not ns:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns / 1e9))


def _doc(v: VersionInfo) -> dict[str, Any]:
    d = dataclasses.asdict(v)
    d["type"] = v.type.name.lower()
    return d


def _table(rows: list[VersionInfo], *, with_path: bool) -> Table:
    t = Table(box=None, pad_edge=False)
    cols = ["row", "path"] if with_path else []
    cols += ["version id", "kind", "size", "modified", "replaced", "by", "reason", "expires"]
    for c in cols:
        t.add_column(c, justify="right" if c in ("row", "size") else "left", no_wrap=c in ("path", "version id"))
    for v in rows:
        kind = v.kind + ("/dir" if v.type.name == "DIR" else "")
        cells = [str(v.row), v.path] if with_path else []
        cells += [v.vid, kind, "-" if v.kind == "marker" else str(v.size), _when(v.mtime_ns), _when(v.replaced_ns),
                  v.by_name or (str(v.by_uid) if v.replaced_ns else "-"), v.reason or "-", _when(v.expires_ns)]
        t.add_row(*cells)
    return t


def _usage_line(usage: dict[str, tuple[int, int]]) -> str:
    label = {"version": ("version", "versions"), "marker": ("delete marker", "delete markers"),
             "trash": ("trash entry", "trash entries")}
    parts = [f"{n} {label.get(k, (k, k))[n != 1]} ({human(b)})" for k, (n, b) in sorted(usage.items())]
    return "kept: " + (", ".join(parts) if parts else "nothing")


# -- versions and restore ---------------------------------------------------------------------------
def versions(args: argparse.Namespace) -> int:
    with store(args) as s:
        vs = s.fs.versions(args.path)
    if not vs:
        raise CliError(f"{args.path}: no such file and no kept versions")
    kept = [v for v in vs if v.kind != "current" and v.ino]
    held = sum(v.size for v in kept)
    if args.json:
        print(json.dumps({"path": vs[0].path, "versions": [_doc(v) for v in vs],
                          "kept": {"count": len(kept), "bytes": held}}, indent=2))
        return 0
    _console().print(_table(vs, with_path=False))
    markers = sum(1 for v in vs if v.kind == "marker")
    print(f"{len(kept)} kept version{'s' if len(kept) != 1 else ''} hold {human(held)} ({held} bytes)"
          + (f"; {markers} delete marker{'s' if markers != 1 else ''}" if markers else ""))
    return 0


def restore(args: argparse.Namespace) -> int:
    with store(args) as s:
        a = s.fs.restore_version(args.path, args.version, to=args.to)
        vid = s.fs.version_id(a.ino)
    print(f"restored {args.path}{f' version {args.version}' if args.version else ''} as {args.to or args.path} "
          f"({a.size} bytes, version {vid})")
    return 0


# -- the trash can ------------------------------------------------------------------------------------
def trash_list(args: argparse.Namespace) -> int:
    with store(args) as s:
        rows: list[VersionInfo] = []
        after: tuple[str, int] | None = None
        while True:
            batch = s.fs.trash(args.tree, after=after, limit=1000)
            rows += batch
            if len(batch) < 1000:
                break
            after = (batch[-1].path, batch[-1].row)
        usage = s.fs.version_usage(args.tree)
    if args.json:
        print(json.dumps({"tree": args.tree, "entries": [_doc(v) for v in rows],
                          "usage": {k: {"count": n, "bytes": b} for k, (n, b) in usage.items()}}, indent=2))
        return 0
    if rows:
        _console().print(_table(rows, with_path=True))
    size = sum(v.size for v in rows)
    print(f"{len(rows)} deleted entr{'ies' if len(rows) != 1 else 'y'} under {args.tree} ({human(size)}); "
          + _usage_line(usage))
    return 0


def trash_restore(args: argparse.Namespace) -> int:
    with store(args) as s:
        a = s.fs.trash_restore(args.path, to=args.to, row=args.row)
    what = "directory" if a.is_dir else "file"
    print(f"restored {what} {args.path} as {args.to or args.path}")
    return 0


def trash_empty(args: argparse.Namespace) -> int:
    older = None if args.older_than is None else time.time_ns() - round(args.older_than * DAY_NS)
    with store(args) as s:
        if not args.yes:
            _confirm(s.fs, args.tree, args.older_than)
        with progress() as bar:
            task = bar.add_task(f"emptying the trash under {args.tree}", total=None)

            def step(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)
            n, nbytes, locked = s.fs.trash_empty(args.tree, older_than_ns=older, progress=step)
    print(f"purged {n} entr{'ies' if n != 1 else 'y'} ({human(nbytes)}, {nbytes} bytes); "
          f"{locked} kept because locked")
    return 0


def _confirm(fs: FileSystem, tree: str, older_than: float | None) -> None:
    n, b = fs.version_usage(tree).get("trash", (0, 0))
    scope = f" deleted more than {older_than:g} days ago" if older_than is not None else ""
    if not sys.stdin.isatty():
        raise CliError(f"emptying the trash under {tree} purges up to {n} entries ({human(b)}) for good: "
                       "add --yes to confirm")
    answer = input(f"purge the trash under {tree}{scope} (up to {n} entries, {human(b)}) for good? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise CliError("nothing purged")


# -- tree policies -----------------------------------------------------------------------------------
def _dir(fs: FileSystem, path: str) -> int:
    a = fs.resolve(path)
    if not a.is_dir:
        raise CliError(f"{path} is not a directory (policies are set on directory trees)")
    return a.ino


def _print_policy(p: TreePolicy, as_json: bool) -> None:
    if as_json:
        print(json.dumps(dataclasses.asdict(p), indent=2))
        return
    own = "set here" if p.own_versioning is not None else "inherited"
    print(f"{p.path}: versioning {p.versioning} ({own})")
    days = "off" if p.trash_days <= 0 else f"{p.trash_days:g} day{'s' if p.trash_days != 1 else ''}"
    cap = f", at most {human(p.trash_bytes)}" if p.trash_bytes else ""
    own = "set here" if p.own_trash_days is not None or p.own_trash_bytes is not None else "inherited"
    print(f"{p.path}: trash {days}{cap} ({own})")
    if p.lock:
        print(f"{p.path}: object lock {json.dumps(p.lock, sort_keys=True)}")


def versioning(args: argparse.Namespace) -> int:
    with store(args) as s:
        ino = _dir(s.fs, args.path)
        if args.state is None:
            pol = s.fs.tree_policy(ino)
        else:
            pol = s.fs.set_tree_policy(ino, versioning={"enable": "enabled", "suspend": "suspended"}[args.state])
    _print_policy(pol, args.json)
    return 0


def trash_policy(args: argparse.Namespace) -> int:
    if args.inherit and (args.days is not None or args.max_bytes is not None):
        raise CliError("--inherit excludes --days and --max-bytes")
    with store(args) as s:
        ino = _dir(s.fs, args.path)
        if args.inherit:
            pol = s.fs.set_tree_policy(ino, trash_days=None, trash_bytes=None)
        elif args.days is not None or args.max_bytes is not None:
            pol = s.fs.set_tree_policy(ino, trash_days=UNSET if args.days is None else args.days,
                                       trash_bytes=UNSET if args.max_bytes is None else args.max_bytes)
        else:
            pol = s.fs.tree_policy(ino)
    _print_policy(pol, args.json)
    return 0


# -- retention and legal hold --------------------------------------------------------------------------------
def _until_ns(text: str) -> int:
    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(f"--until {text!r}: not an ISO 8601 date (e.g. 2030-01-31T12:00:00Z)") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return round(d.timestamp() * 1e9)


def _print_retention(path: str, vid: str | None, r: Retention, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"path": path, "version": vid, "mode": r.mode, "until_ns": r.until_ns or None,
                          "hold": r.hold, "locked": r.locked()}))
        return
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.until_ns / 1e9)) if r.until_ns else ""
    ret = f"{r.mode.lower()} retention until {until}" if r.mode else "no retention"
    if r.mode and not r.active():
        ret += " (expired)"
    where = f"{path} version {vid}" if vid else path
    print(f"{where}: {ret}; legal hold {'on' if r.hold else 'off'}; {'locked' if r.locked() else 'not locked'}")


def retention(args: argparse.Namespace) -> int:
    if args.clear and (args.mode or args.until):
        raise CliError("--clear excludes --mode and --until")
    if bool(args.mode) != bool(args.until):
        raise CliError("--mode and --until go together")
    with store(args) as s:
        if args.clear:
            r = s.fs.set_retention(args.path, args.version, None, bypass_governance=args.bypass_governance)
        elif args.mode:
            r = s.fs.set_retention(args.path, args.version, args.mode, _until_ns(args.until),
                                   bypass_governance=args.bypass_governance)
        else:
            r = s.fs.retention(args.path, args.version)
    _print_retention(args.path, args.version, r, args.json)
    return 0


def hold(args: argparse.Namespace) -> int:
    with store(args) as s:
        if args.state is None:
            r = s.fs.retention(args.path, args.version)
        else:
            r = s.fs.set_legal_hold(args.path, args.version, args.state == "on")
    _print_retention(args.path, args.version, r, args.json)
    return 0


__all__ = ["add_parsers", "hold", "restore", "retention", "trash_empty", "trash_list", "trash_policy",
           "trash_restore", "versioning", "versions"]
