"""``tessera lifecycle run [--dry-run] [--json]`` and the lifecycle pass the maintenance loop runs.

The engine is :mod:`core.fs.lifecycle` (core knows no S3); this module wires in what only the S3 layer
knows: object tags (:mod:`protocols.s3.objmeta`) for rules with tag filters, and the multipart uploads
of a bucket (:func:`protocols.s3.uploads.expire_in`) for AbortIncompleteMultipartUpload.  A tree maps to
S3 as ``s3.root``/BUCKET[/KEY PREFIX]; a tree that is not a bucket or inside one has no uploads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from core.errors import NoAttribute
from core.fs import FileSystem, lifecycle
from core.fs.lifecycle import AbortUploads, Progress, Report
from gateway.common import human, progress, store

Handler = Any


def tags_of(fs: FileSystem, ino: int) -> dict[str, str]:
    """An object's S3 tags (none for a file S3 never tagged)."""
    from protocols.s3.objmeta import XATTR, ObjMeta
    try:
        return dict(ObjMeta.decode(fs.getxattr(ino, XATTR)).tags)
    except NoAttribute:
        return {}


def uploads_aborter(fs: FileSystem, s3_root: str) -> AbortUploads:
    """``abort_uploads`` for the engine: a tree under ``s3_root`` is a bucket (or a key prefix in one).

    >>> calls = []
    >>> import protocols.s3.uploads as u
    >>> real, u.expire_in = u.expire_in, lambda fs, b, p, t, d: calls.append((b, p)) or 0
    >>> ab = uploads_aborter(None, "/s3")  # type: ignore[arg-type]
    >>> ab("/s3/b/logs", "2024/", 1, True), ab("/s3", "x", 1, True), ab("/other", "", 1, True)
    (0, 0, 0)
    >>> u.expire_in = real
    >>> calls
    [('b', 'logs/2024/')]
    """
    base = "/" + s3_root.strip("/")

    def abort(tree: str, prefix: str, older_than_ns: int, dry_run: bool) -> int:
        from protocols.s3 import uploads
        rel = tree[len(base):] if base == "/" or tree.startswith(base + "/") else None
        if rel is None or not rel.strip("/"):
            return 0
        bucket, _, sub = rel.strip("/").partition("/")
        return uploads.expire_in(fs, bucket, (sub + "/" if sub else "") + prefix, older_than_ns, dry_run)
    return abort


def s3_root_of(data_dir: str) -> str:
    """The config's ``s3.root`` ('/' without a config)."""
    from gateway import config as cfgmod
    path = os.path.join(data_dir, cfgmod.CONFIG_NAME)
    return cfgmod.load(path).s3.root if os.path.exists(path) else "/"


def run_pass(fs: FileSystem, s3_root: str = "/", *, dry_run: bool = False, now_ns: int | None = None,
             on_progress: Progress | None = None) -> Report:
    """One lifecycle pass with the S3 wiring (``fs``: an admin view)."""
    return lifecycle.run(fs, now_ns=now_ns, dry_run=dry_run, progress=on_progress, tags_of=tags_of,
                         abort_uploads=uploads_aborter(fs, s3_root))


VERBS = {"expire": "expire", "noncurrent": "purge noncurrent version", "marker": "remove delete marker",
         "uploads": "abort uploads"}


def summary(rep: Report) -> str:
    would = "would " if rep.dry_run else ""
    return (f"lifecycle: {rep.trees} tree(s) with rules; {would}expire {rep.expired} current version(s) "
            f"({human(rep.expired_bytes)}), {would}purge {rep.noncurrent} noncurrent version(s) "
            f"({human(rep.noncurrent_bytes)}), {would}remove {rep.markers} delete marker(s), "
            f"{would}abort {rep.uploads} upload(s); {rep.locked} locked skipped, {len(rep.errors)} error(s)")


def run_cmd(args: argparse.Namespace) -> int:
    """``tessera lifecycle run [--dry-run] [--json]``: exit 1 when something failed (each error on stderr)."""
    from gateway.common import data_dir
    s3_root = s3_root_of(data_dir(args))
    with store(args) as s, progress() as bar:
        task = bar.add_task("lifecycle", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
        rep = run_pass(s.fs, s3_root, dry_run=args.dry_run, on_progress=on_progress)
    if args.json:
        print(json.dumps(rep.to_json(), indent=2))
    else:
        for a in rep.planned:
            what = f"{a.count} in {a.path} under {a.prefix!r}" if a.kind == "uploads" else a.path
            vid = f" (version {a.vid})" if a.vid and a.kind != "uploads" else ""
            print(f"would {VERBS[a.kind]} {what}{vid}  [rule {a.rule!r}]")
        print(summary(rep) + (" (dry run: nothing changed)" if rep.dry_run else ""))
    for e in rep.errors:
        print(f"tessera: error: {e}", file=sys.stderr)
    return 1 if rep.errors else 0


def add_parsers(sub: Any, common: argparse.ArgumentParser, no_sub: Handler) -> None:
    """Add ``lifecycle`` (``lifecycle run``) to the top-level subparsers ``sub``."""
    help = "lifecycle rules: expire versions, delete markers and abandoned uploads"
    lc = sub.add_parser("lifecycle", parents=[common], help=help, description=help)
    lc.set_defaults(fn=no_sub)
    lsub = lc.add_subparsers(dest="lifecycle_cmd", required=True, metavar="ACTION")
    help = "run the lifecycle rules of every tree now (the maintenance loop does so every hour)"
    p = lsub.add_parser("run", parents=[common], help=help, description=help)
    p.add_argument("--dry-run", action="store_true", help="change nothing; list what would be done")
    p.add_argument("--json", action="store_true", help="the report as JSON on stdout")
    p.set_defaults(fn=run_cmd)


__all__ = ["add_parsers", "run_pass", "summary", "tags_of", "uploads_aborter"]
