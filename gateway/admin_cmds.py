"""Store commands: init, status, scrub, rebuild, gc, target (users and groups: identity_cmds; serve: serve.py)."""

from __future__ import annotations

import argparse
import json
import os

from core.data.layout import parse_ec
from core.errors import Exists, InvalidArgument
from core.fs.compact import compact
from core.store import init_store, is_store, open_store
from gateway import config as cfgmod
from gateway.common import CliError, data_dir, human, progress, store


def no_sub(args: argparse.Namespace) -> int:
    raise CliError("missing action")


def init(args: argparse.Namespace) -> int:
    d = data_dir(args)
    if is_store(d):
        raise Exists(f"a store already exists in {d}")
    try:
        ec = parse_ec(args.ec) if args.ec else None
    except ValueError as e:
        raise InvalidArgument(str(e)) from None
    if args.targets is not None and args.targets < 1:
        raise InvalidArgument("--targets must be at least 1")
    if args.target_domain and len(args.target_domain) != len(args.target or []):
        raise InvalidArgument("give one --target-domain per --target, or none")
    os.makedirs(d, exist_ok=True)
    sid = init_store(d, targets=args.target, ntargets=args.targets or 6, domains=args.target_domain, ec=ec,
                     cell=args.cell_size, meta_url=getattr(args, "meta", None))
    cfgmod.write_default(d)
    from gateway.tls import self_signed
    self_signed(os.path.join(d, "tls", "cert.pem"), os.path.join(d, "tls", "key.pem"))
    with open_store(d) as s:
        geo = s.geometry
        n = len(s.targets())
    print(f"initialised store {sid} in {d}: {n} targets, {geo.k}+{geo.m}, cell {geo.cell // 1024} KiB")
    return 0


def status(args: argparse.Namespace) -> int:
    with store(args) as s:
        h = s.health()
        geo = s.geometry
        fsst = s.fs.statfs()
        kept = s.fs.version_usage("/")
    doc = {
        "health": h.state,
        "degraded_stripes": h.degraded_stripes,
        "lost_segments": h.lost_segments,
        "geometry": {"k": geo.k, "m": geo.m, "cell": geo.cell},
        "capacity": {"total": fsst.total_bytes, "free": fsst.free_bytes},
        "files": fsst.total_files - fsst.free_files,
        "targets": h.targets,
        "kept": {kind: {"count": n, "bytes": b} for kind, (n, b) in sorted(kept.items())},
    }
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"health: {h.state}   geometry: {geo.k}+{geo.m}, cell {geo.cell // 1024} KiB   "
          f"degraded stripes: {h.degraded_stripes}")
    print(f"capacity: {human(fsst.total_bytes)} usable, {human(fsst.free_bytes)} free, "
          f"{doc['files']} files")
    if kept:
        held = ", ".join(f"{n} {kind}{'s' if n != 1 else ''} {human(float(b))}"
                         for kind, (n, b) in sorted(kept.items()))
        print(f"kept (versions and trash; logical sizes): {held}")
    print(f"{'ID':>3} {'STATE':8} {'USED':>10} {'FREE':>10} {'SHARDS':>6}  PATH")
    for t in h.targets:
        print(f"{t['id']:>3} {t['state']!s:8} {human(float(t['used'])):>10} "  # type: ignore[arg-type]
              f"{human(float(t['free'])):>10} {t['shards']:>6}  {t['path']}")  # type: ignore[arg-type]
    return 0


def scrub(args: argparse.Namespace) -> int:
    with store(args) as s, progress() as bar:
        task = bar.add_task("scrub", total=None)
        rep = s.scrub(repair=args.repair, progress=lambda done, total: bar.update(task, completed=done, total=total))
    print(f"blocks checked: {rep.blocks_checked}  bad: {rep.blocks_bad}  "
          f"repaired cells: {rep.cells_repaired}  stripes: {rep.stripes}")
    if rep.unrecoverable:
        print(f"unrecoverable stripes: {len(rep.unrecoverable)}")
        return 2
    return 1 if rep.cells_bad and not args.repair else 0


def rebuild(args: argparse.Namespace) -> int:
    with store(args) as s, progress() as bar:
        task = bar.add_task("rebuild", total=None)
        rep = s.rebuild(progress=lambda done, total: bar.update(task, completed=done, total=total))
        h = s.health()
    print(f"rebuilt {rep.shards} shards in {rep.segments} segments ({rep.stripes} stripes); health {h.state}")
    if rep.lost:
        print(f"segments beyond repair (more than m targets lost): {rep.lost}")
        return 2
    if rep.waiting:
        print(f"segments still open by running writers, run rebuild again: {rep.waiting}")
        return 1
    return 0


def gc(args: argparse.Namespace) -> int:
    with store(args) as s:
        crep = compact(s.fs)
        rep = s.collect(seal=True)
    print(f"compacted {crep.chunks} chunks ({human(crep.bytes_rewritten)} rewritten); "
          f"sealed {rep.sealed} abandoned segments, deleted {rep.deleted_segments} segments "
          f"({human(rep.freed_bytes)}), {rep.orphan_shards} orphan shard files")
    return 0


def target_add(args: argparse.Namespace) -> int:
    path = os.path.abspath(args.path)
    with store(args) as s:
        tid = s.add_target(path, args.weight, args.domain)
    print(f"added target {tid}: {path}")
    return 0


def target_fail(args: argparse.Namespace) -> int:
    with store(args) as s:
        s.fail_target(args.id)
    print(f"target {args.id} marked failed; run 'tessera rebuild' to restore redundancy")
    return 0

