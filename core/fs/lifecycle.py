"""Lifecycle rules: what the maintenance loop (and ``tessera lifecycle run``) removes on its own.

Each directory tree may carry rules (``FileSystem.set_tree_policy(ino, lifecycle=[...])``), a JSON list of
dicts in one fixed format (the S3 layer produces it from a ``LifecycleConfiguration``)::

    {"id": str, "enabled": bool, "prefix": str (relative to the tree; "" = all), "tags": {key: value},
     "size_gt": int|null, "size_lt": int|null, "expire_days": int|null, "expire_date": "YYYY-MM-DDT00:00:00Z"|null,
     "expired_object_delete_marker": bool, "noncurrent_days": int|null, "newer_noncurrent": int|null,
     "abort_multipart_days": int|null}

A tree's rules cover everything under it except subtrees that set rules of their own (the nearest tree
with rules wins, as :meth:`FileSystem.tree_policy` reports).  Keys are paths relative to the tree.
The semantics are AWS S3's:

* **Expiration** (``expire_days`` / ``expire_date``) acts on current versions only: an ordinary delete
  through core.fs, so a versioning-enabled tree gets a delete marker (the content stays, noncurrent), a
  suspended one a ``null`` marker (the ``null`` version goes), an unversioned one a plain delete (that the
  tree's trash policy may keep).  Days count from the file's mtime and, as AWS, the time is rounded up to
  the next midnight UTC: a file is due once ``mtime + days`` rounded up to 00:00 UTC is not after now (so
  ``mtime + days <= the last midnight``).  A date rule expires every matching file once the date is reached.
* **Noncurrent versions** (``noncurrent_days`` and/or ``newer_noncurrent``): a kept version (or noncurrent
  delete marker) is purged once it has been noncurrent ``noncurrent_days`` (from when it was replaced,
  :attr:`VersionInfo.replaced_ns`; a marker from when the next newer version was made; rounded up to
  midnight likewise) unless it is one of the ``newer_noncurrent`` newest noncurrent versions of its key.
  The newest entry of a key is never noncurrent: the live file, else the newest marker, else (a key whose
  marker was removed by hand) the newest kept version, which S3 would show as the latest.
* **Expired object delete markers**: a delete marker that is the only version left of its key is removed
  when a rule says ``expired_object_delete_marker``, or expires current versions (as AWS: by date once
  reached, by days once the marker is that old).  Noncurrent purges of the same pass count: a marker left
  alone by them goes in the same pass.
* **Abandoned multipart uploads** (``abort_multipart_days``): core does not know S3's uploads; the caller
  passes ``abort_uploads(tree_path, prefix, older_than_ns, dry_run) -> count``.
* **Filters**: ``prefix`` (a string prefix of the key), ``tags`` (all must match; read with the caller's
  ``tags_of(fs, ino)``; without one a rule with tags matches nothing), ``size_gt`` / ``size_lt`` (strict).
  Delete markers have no tags and no size: rules with tag or size filters never act on them.  Rules with
  tags abort no uploads (AWS refuses that combination).

Content under retention or a legal hold is skipped and counted, never an error: a locked current version
is expired only where versioning keeps it (enabled trees: it becomes noncurrent, still locked, as S3).

A pass first plans (walks each tree's live files and kept versions through the FileSystem API) and then
applies the plan; a dry run stops after planning and returns the plan, so it reports the very set a real
pass would act on.
"""

from __future__ import annotations

import calendar
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from core.errors import CoreError, InvalidArgument, Locked, NotFound
from core.fs.vops import VersionInfo
from core.meta.types import FileType

if TYPE_CHECKING:
    from core.fs.fs import FileSystem

DAY_NS = 86400 * 1_000_000_000
TagsOf = Callable[["FileSystem", int], dict[str, str]]
AbortUploads = Callable[[str, str, int, bool], int]
Progress = Callable[[int, int], None]
_INTS = ("size_gt", "size_lt", "expire_days", "noncurrent_days", "newer_noncurrent", "abort_multipart_days")


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    enabled: bool = True
    prefix: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    size_gt: int | None = None
    size_lt: int | None = None
    expire_days: int | None = None
    expire_date: str | None = None
    expired_object_delete_marker: bool = False
    noncurrent_days: int | None = None
    newer_noncurrent: int | None = None
    abort_multipart_days: int | None = None

    @staticmethod
    def parse(d: Any) -> Rule:
        """One rule from its stored dict; :class:`InvalidArgument` naming what is wrong."""
        if not isinstance(d, dict):
            raise InvalidArgument("a lifecycle rule must be a mapping")
        unknown = set(d) - set(Rule.__dataclass_fields__)
        if unknown:
            raise InvalidArgument(f"lifecycle rule: unknown field(s) {', '.join(sorted(unknown))}")
        rid = str(d.get("id") or "")
        for k in _INTS:
            v = d.get(k)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise InvalidArgument(f"lifecycle rule {rid!r}: {k} must be a non-negative integer")
        tags = d.get("tags") or {}
        if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
            raise InvalidArgument(f"lifecycle rule {rid!r}: tags must map strings to strings")
        date = d.get("expire_date")
        if date is not None:
            _date_ns(str(date), rid)
        return Rule(rid, bool(d.get("enabled", True)), str(d.get("prefix") or ""), dict(tags), d.get("size_gt"),
                    d.get("size_lt"), d.get("expire_days"), date, bool(d.get("expired_object_delete_marker")),
                    d.get("noncurrent_days"), d.get("newer_noncurrent"), d.get("abort_multipart_days"))

    @property
    def expires(self) -> bool:
        return self.expire_days is not None or self.expire_date is not None

    @property
    def noncurrent(self) -> bool:
        return self.noncurrent_days is not None or self.newer_noncurrent is not None

    def matches(self, key: str, size: int | None, tags: Callable[[], dict[str, str] | None]) -> bool:
        """Whether the rule's filter takes ``key`` (``size`` None: a delete marker)."""
        if not self.enabled or not key.startswith(self.prefix):
            return False
        if size is None:
            return not self.tags and self.size_gt is None and self.size_lt is None
        if self.size_gt is not None and not size > self.size_gt:
            return False
        if self.size_lt is not None and not size < self.size_lt:
            return False
        if self.tags:
            have = tags()
            return have is not None and all(have.get(k) == v for k, v in self.tags.items())
        return True

    def current_due(self, mtime: int, now: int) -> bool:
        if self.expire_date is not None and now >= _date_ns(self.expire_date, self.id):
            return True
        return self.expire_days is not None and mtime <= _cutoff(now, self.expire_days)


def parse_rules(rules: Any) -> list[Rule]:
    """Check a tree's rule list (what the S3 layer stores); :class:`InvalidArgument` if it is malformed."""
    if not isinstance(rules, list):
        raise InvalidArgument("lifecycle rules must be a list")
    out = [Rule.parse(r) for r in rules]
    ids = [r.id for r in out if r.id]
    if len(ids) != len(set(ids)):
        raise InvalidArgument("lifecycle rule ids must be unique")
    return out


def _date_ns(date: str, rid: str) -> int:
    try:
        return calendar.timegm(time.strptime(date, "%Y-%m-%dT%H:%M:%SZ")) * 1_000_000_000
    except ValueError:
        raise InvalidArgument(f"lifecycle rule {rid!r}: expire_date must be YYYY-MM-DDT00:00:00Z") from None


def _cutoff(now: int, days: int) -> int:
    """The latest creation time that ``days`` (AWS: added, then rounded up to the next midnight UTC) makes due
    at ``now``: ``ceil_midnight(t + days) <= now`` exactly when ``t + days <= floor_midnight(now)``.

    >>> _cutoff(3 * DAY_NS + 5, 1) == 2 * DAY_NS
    True
    """
    return now - now % DAY_NS - days * DAY_NS


@dataclass(frozen=True, slots=True)
class Action:
    """One thing a pass does (or, dry, would do)."""

    kind: str           # expire (a current version) / noncurrent (purge a kept version) / marker / uploads
    path: str           # the store path ('/bucket/key'; uploads: the tree)
    vid: str = ""
    size: int = 0
    rule: str = ""
    count: int = 1      # uploads: how many
    prefix: str = ""    # uploads: the rule's prefix
    ino: int = 0        # expire: the live file; noncurrent/marker: its kept row (VersionInfo.row); uploads: cutoff
    parent: int = 0     # expire: the directory it is in


@dataclass(slots=True)
class Report:
    """What a pass did: counts and bytes per action, locked content skipped, errors (one line each)."""

    dry_run: bool = False
    trees: int = 0
    expired: int = 0
    expired_bytes: int = 0
    noncurrent: int = 0
    noncurrent_bytes: int = 0
    markers: int = 0
    uploads: int = 0
    locked: int = 0
    errors: list[str] = field(default_factory=list)
    planned: list[Action] = field(default_factory=list)  # a dry run: what a real pass would do

    def count(self, a: Action, n: int = 1) -> None:
        if a.kind == "expire":
            self.expired, self.expired_bytes = self.expired + 1, self.expired_bytes + a.size
        elif a.kind == "noncurrent":
            self.noncurrent, self.noncurrent_bytes = self.noncurrent + 1, self.noncurrent_bytes + a.size
        elif a.kind == "marker":
            self.markers += 1
        else:
            self.uploads += n

    def to_json(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("dry_run", "trees", "expired", "expired_bytes", "noncurrent",
                                             "noncurrent_bytes", "markers", "uploads", "locked", "errors")}
        if self.dry_run:
            d["planned"] = [{k: v for k, v in asdict(a).items() if k not in ("ino", "parent")} for a in self.planned]
        return d


@dataclass(slots=True)
class _Tree:
    path: str
    rules: list[Rule]
    skip: list[tuple[str, int]]  # subtrees with rules of their own: (path, ino)

    def key(self, path: str) -> str:
        return path[len(self.path.rstrip("/")) + 1:]

    def covers(self, path: str) -> bool:
        return not any(path == p or path.startswith(p + "/") for p, _ in self.skip)


class _Planner:
    def __init__(self, fs: FileSystem, now: int, tags_of: TagsOf | None, report: Report) -> None:
        self.fs, self.vfs, self.now, self.tags_of, self.report = fs, fs.reading_versions(), now, tags_of, report
        self.plan: list[Action] = []

    def tags(self, ino: int) -> Callable[[], dict[str, str] | None]:
        """The tags of ``ino``, read once when a rule first asks (None: no ``tags_of``, or unreadable)."""
        got: list[dict[str, str] | None] = []

        def get() -> dict[str, str] | None:
            if not got:
                try:
                    got.append(None if self.tags_of is None else self.tags_of(self.vfs, ino))
                except CoreError:
                    got.append(None)
            return got[0]
        return get

    # -- current versions ------------------------------------------------------------------
    def current(self, tree: _Tree) -> None:
        rules = [r for r in tree.rules if r.expires]
        if not rules:
            return
        skip = {ino for _, ino in tree.skip}
        for d in _start_dirs(tree.path, [r.prefix for r in rules]):
            try:
                start = self.fs.resolve(d)
            except CoreError:
                continue
            if start.is_dir and start.ino not in skip:
                self._walk(tree, rules, d, start.ino, skip)

    def _walk(self, tree: _Tree, rules: list[Rule], path: str, ino: int, skip: set[int]) -> None:
        versioning: str | None = None
        for e in self.fs.listdir(ino):
            p = path.rstrip("/") + "/" + e.name
            if e.type == FileType.DIR:
                if e.ino not in skip:
                    self._walk(tree, rules, p, e.ino, skip)
                continue
            if e.type != FileType.REG:
                continue
            try:
                a = self.fs.getattr(e.ino)
            except CoreError:
                continue
            key = tree.key(p)
            tags = self.tags(e.ino)
            hit = next((r for r in rules if r.matches(key, a.size, tags) and r.current_due(a.mtime_ns, self.now)), None)
            if hit is None:
                continue
            if self.fs.locked(e.ino):
                if versioning is None:
                    versioning = self.fs.tree_policy(ino).versioning
                if versioning != "enabled":  # only a versioned tree keeps a locked current version
                    self.report.locked += 1
                    continue
            self.plan.append(Action("expire", p, self.fs.version_id(e.ino), a.size, hit.id, ino=e.ino, parent=ino))

    # -- kept versions and markers -------------------------------------------------------------
    def kept(self, tree: _Tree) -> None:
        rules = [r for r in tree.rules if r.noncurrent or r.expires or r.expired_object_delete_marker]
        if not rules:
            return
        for path in _kept_paths(self.fs, tree.path):
            if tree.covers(path):
                vs = [v for v in self.fs.versions(path) if v.kind != "trash"]
                self._key(tree, rules, path, vs)

    def _key(self, tree: _Tree, rules: list[Rule], path: str, vs: list[VersionInfo]) -> None:
        key = tree.key(path)
        left = list(vs)
        nc = 0
        for i, v in enumerate(vs):
            if i == 0:  # the current one: the live file, the newest marker, or (neither) the newest version
                continue
            since = v.replaced_ns if v.kind != "marker" else max(v.replaced_ns, _made(vs[i - 1]))
            size = None if v.kind == "marker" else v.size
            hit = next((r for r in rules if r.noncurrent and r.matches(key, size, self.tags(v.ino))
                        and (r.noncurrent_days is None or since <= _cutoff(self.now, r.noncurrent_days))
                        and (r.newer_noncurrent is None or nc >= r.newer_noncurrent)), None)
            nc += 1
            if hit is None:
                continue
            if v.ino and self.vfs.locked(v.ino):
                self.report.locked += 1
                continue
            self.plan.append(Action("noncurrent", path, v.vid, v.size, hit.id, ino=v.row))
            left.remove(v)
        if len(left) == 1 and left[0].kind == "marker":
            m = left[0]
            hit = next((r for r in rules if r.matches(key, None, self.tags(0)) and (
                r.expired_object_delete_marker or r.current_due(m.replaced_ns, self.now))), None)
            if hit is not None:
                self.plan.append(Action("marker", path, m.vid, 0, hit.id, ino=m.row))


def _made(v: VersionInfo) -> int:
    """When a version was made (so when the one before it became noncurrent): a marker's creation, a file's
    mtime (a restored old version may carry an old mtime: the caller takes the later of this and the marker's
    own creation)."""
    return v.replaced_ns if v.kind == "marker" else v.mtime_ns


def _start_dirs(tree: str, prefixes: list[str]) -> list[str]:
    """The directories to walk for rules with these prefixes: the deepest whole directory of each, without
    those inside another.

    >>> _start_dirs("/b", ["logs/2024-", "logs/x/", "tmp"])
    ['/b']
    >>> _start_dirs("/b", ["logs/2024/", "logs/", "img/a"])
    ['/b/img', '/b/logs']
    """
    base = tree.rstrip("/")
    dirs = sorted({p.rpartition("/")[0] for p in prefixes})
    if "" in dirs:
        return [tree]
    out: list[str] = []
    for d in dirs:
        if not any(d.startswith(o + "/") for o in out):
            out.append(d)
    return [f"{base}/{d}" for d in out]


def _kept_paths(fs: FileSystem, tree: str) -> Iterator[str]:
    """Each path under ``tree`` with kept versions or markers, once, in order."""
    prefix = tree.rstrip("/") + "/"
    after: tuple[str, int] | None = None
    last = None
    while True:
        rows = fs.list_versions(prefix, after=after, limit=1000, kinds=("version", "marker"))
        if not rows:
            return
        for r in rows:
            if r.path != last:
                last = r.path
                yield r.path
        after = (rows[-1].path, rows[-1].row)


def _trees(fs: FileSystem, report: Report) -> list[_Tree]:
    own = []
    for path, row in fs.trees():
        if row.lifecycle is None:
            continue
        try:
            own.append((path, row.ino, parse_rules(json.loads(row.lifecycle))))
        except (InvalidArgument, ValueError) as e:
            report.errors.append(f"{path}: {e}")
    out = []
    for path, _, rules in own:
        base = path.rstrip("/")
        skip = [(p, i) for p, i, _ in own if p != path and p.startswith(base + "/")]
        if any(r.enabled for r in rules):  # a tree whose rules are all disabled still shadows its parent's
            out.append(_Tree(path, rules, skip))
    return out


def run(fs: FileSystem, *, now_ns: int | None = None, dry_run: bool = False, progress: Progress | None = None,
        tags_of: TagsOf | None = None, abort_uploads: AbortUploads | None = None) -> Report:
    """One lifecycle pass over every tree with rules (``fs``: an admin view).  ``dry_run``: change nothing,
    return the plan in :attr:`Report.planned`.  ``progress(done, total)`` is called as actions are applied."""
    now = time.time_ns() if now_ns is None else now_ns
    report = Report(dry_run=dry_run)
    planner = _Planner(fs, now, tags_of, report)
    for tree in _trees(fs, report):
        report.trees += 1
        try:
            planner.current(tree)
            planner.kept(tree)
        except CoreError as e:
            report.errors.append(f"{tree.path}: {e}")
        for r in tree.rules:
            if r.enabled and r.abort_multipart_days is not None and not r.tags and abort_uploads is not None:
                cutoff = _cutoff(now, r.abort_multipart_days)
                try:
                    n = abort_uploads(tree.path, r.prefix, cutoff, True)
                except Exception as e:  # the S3 layer's bookkeeping: never fails the pass
                    report.errors.append(f"{tree.path}: aborting uploads: {e}")
                    continue
                if n:
                    planner.plan.append(Action("uploads", tree.path, "", 0, r.id, n, r.prefix, cutoff))
    if dry_run:
        report.planned = planner.plan
        for a in planner.plan:
            report.count(a, a.count)
        if progress is not None:
            progress(len(planner.plan), len(planner.plan))
        return report
    _apply(fs, planner.plan, report, abort_uploads, progress)
    return report


def _apply(fs: FileSystem, plan: list[Action], report: Report, abort_uploads: AbortUploads | None,
           progress: Progress | None) -> None:
    for i, a in enumerate(plan):
        try:
            n = _do(fs, a, abort_uploads)
            if n:
                report.count(a, n)
        except Locked:
            report.locked += 1
        except CoreError as e:
            report.errors.append(f"{a.kind} {a.path}: {e}")
        if progress is not None:
            progress(i + 1, len(plan))


def _do(fs: FileSystem, a: Action, abort_uploads: AbortUploads | None) -> int:
    """Apply one action: how many things went (0: nothing to do any more)."""
    if a.kind == "expire":
        name = a.path.rpartition("/")[2]
        try:
            if fs.lookup(a.parent, name).ino != a.ino:
                return 0  # replaced since the plan was made
        except NotFound:
            return 0
        fs.unlink(a.parent, name, keep_locked=True)
        return 1
    if a.kind in ("noncurrent", "marker"):
        return fs.purge_versions(a.path, rows=[a.ino])
    return abort_uploads(a.path, a.prefix, a.ino, False) if abort_uploads is not None else 0


__all__ = ["Action", "Report", "Rule", "parse_rules", "run"]
