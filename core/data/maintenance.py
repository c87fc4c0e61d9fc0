"""Scrub, rebuild, garbage collection and health of the data core.

* :func:`scrub` reads every committed cell, verifies every block's crc32c and,
  with ``repair``, rewrites bad cells decoded from the good ones.
* :func:`rebuild` restores full redundancy after targets failed or vanished:
  for each segment (most-degraded first) it decodes the lost shards onto
  healthy targets chosen by rendezvous, fsyncs them, then switches the
  segment's target list in one transaction.
* :func:`collect` seals segments of dead writers, deletes segments no slice
  references and orphan shard files, and prunes old readdir tombstones.
* :func:`health` summarises targets and degraded stripes for ``status``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core.data import stripe as sio
from core.data.codec import Codec
from core.data.layout import HEADER_SIZE, Geometry, pack_header
from core.data.placement import Candidate, place
from core.data.store import DataStore
from core.data.target import ShardFile
from core.errors import DataUnavailable, NoSpace
from core.meta import proc
from core.meta.txn import Txn
from core.meta.types import SegmentInfo

log = logging.getLogger("tessera.maintenance")
Progress = Callable[[int, int], None]  # (done, total)


def _geo(ds: DataStore, seg: SegmentInfo) -> Geometry:
    return Geometry(seg.k, seg.m, seg.cell, ds.geo.block)


def _bad_targets(ds: DataStore) -> set[int]:
    """Targets whose shards rebuild moves elsewhere: failed, unreachable, or draining (a node leaving)."""
    return {t.id for t in ds.target_infos() if t.state != "ok" or not ds.target(t.id).available()}


def _unreadable(ds: DataStore) -> set[int]:
    """Targets nothing can be read from (a draining target is still read while its shards move off)."""
    return {t.id for t in ds.target_infos()
            if t.state not in ("ok", "draining") or not ds.target(t.id).available()}


def _opener(ds: DataStore, seg: SegmentInfo, skip: set[int]) -> Callable[[int], ShardFile | None]:
    def shard(idx: int) -> ShardFile | None:
        tid = seg.targets[idx]
        if tid in skip:
            return None
        try:
            return ds.target(tid).open_shard(seg.id, idx)
        except OSError:
            return None
    return shard


def physical_stripes(ds: DataStore, seg: SegmentInfo, skip: set[int]) -> int:
    """Stripes present in the segment's surviving shard files."""
    geo = _geo(ds, seg)
    best = seg.nstripes
    opener = _opener(ds, seg, skip)
    for idx in range(geo.n):
        f = opener(idx)
        if f is not None:
            try:
                size = f.size()
            except OSError:
                continue
            best = max(best, -(-(size - HEADER_SIZE) // geo.record_size))
    return min(best, seg.capacity)


# -- scrub ------------------------------------------------------------------------------
@dataclass
class ScrubReport:
    stripes: int = 0
    blocks_checked: int = 0
    blocks_bad: int = 0
    cells_bad: int = 0
    cells_repaired: int = 0
    unrecoverable: list[tuple[int, int]] = field(default_factory=list)  # (segment, stripe)


def scrub(ds: DataStore, *, repair: bool = False, progress: Progress | None = None) -> ScrubReport:
    ds.refresh()
    with ds.meta.read() as t:
        segs = t.segments()
        queued = set(t.repairs())
    skip = _bad_targets(ds)
    total = sum(s.nstripes for s in segs)
    rep = ScrubReport()
    for seg in segs:
        geo = _geo(ds, seg)
        codec = ds.codec_for(seg.k, seg.m)
        opener = _opener(ds, seg, skip)
        for stripe in range(seg.nstripes):
            bad: list[int] = []
            for idx in range(geo.n):
                f = opener(idx)
                rep.blocks_checked += geo.blocks_per_cell
                ok = f is not None and sio.read_cell(geo, f, stripe, 0, geo.blocks_per_cell) is not None
                if not ok:
                    bad.append(idx)
                    rep.blocks_bad += _count_bad_blocks(geo, f, stripe)
            rep.stripes += 1
            rep.cells_bad += len(bad)
            if bad and repair:
                rep.cells_repaired += _repair(ds, seg, geo, codec, stripe, bad, skip, rep)
            done_q = [(seg.id, stripe, i) for i in range(geo.n)
                      if (seg.id, stripe, i) in queued and (i not in bad or repair)]
            if done_q:
                _clear_repairs(ds, done_q)
            if progress:
                progress(rep.stripes, total)
    return rep


def _clear_repairs(ds: DataStore, entries: list[tuple[int, int, int]]) -> None:
    def apply(t: Txn) -> None:
        for sid, stripe, idx in entries:
            t.clear_repair(sid, stripe, idx)
    ds.meta.write(apply)


def _seal(ds: DataStore, sid: int) -> None:
    def apply(t: Txn) -> None:
        t.seal_segment(sid)
    ds.meta.write(apply)


def _count_bad_blocks(geo: Geometry, f: ShardFile | None, stripe: int) -> int:
    if f is None:
        return geo.blocks_per_cell
    return sum(1 for b in range(geo.blocks_per_cell) if sio.read_cell(geo, f, stripe, b, b + 1) is None)


def _repair(ds: DataStore, seg: SegmentInfo, geo: Geometry, codec: Codec, stripe: int,
            bad: list[int], skip: set[int], rep: ScrubReport) -> int:
    fixable = [i for i in bad if seg.targets[i] not in skip]
    if not fixable:
        return 0
    try:
        cells = sio.reconstruct_cells(geo, codec, stripe, bad, _opener(ds, seg, skip | set()))
    except DataUnavailable:
        rep.unrecoverable.append((seg.id, stripe))
        return 0
    done = 0
    for idx in fixable:
        try:
            f = ds.target(seg.targets[idx]).open_shard(seg.id, idx, create=True)
            if f.size() < HEADER_SIZE:
                f.pwritev([pack_header(geo, seg.id, idx, ds.store_id)], 0)
            sio.write_cell(geo, f, stripe, cells[idx])
            f.sync()
            done += 1
        except OSError as e:
            log.warning("repair write failed", extra={"segment": seg.id, "shard": idx, "error": str(e)})
    return done


# -- rebuild ----------------------------------------------------------------------------
@dataclass
class RebuildReport:
    segments: int = 0
    shards: int = 0
    stripes: int = 0
    lost: list[int] = field(default_factory=list)  # segments beyond repair
    waiting: list[int] = field(default_factory=list)  # open segments of live writers


def rebuild(ds: DataStore, *, progress: Progress | None = None, wait_open: float = 10.0) -> RebuildReport:
    ds.refresh()
    bad = _bad_targets(ds)
    gone = _unreadable(ds)
    rep = RebuildReport()
    deadline = time.monotonic() + wait_open
    while True:
        todo = _degraded_segments(ds, bad)
        live_open = [s for s in todo if s.state == "open" and proc.alive(s.owner) and s.owner != proc.current()]
        if not live_open or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # live writers roll off failed targets within a couple of seconds
    rep.waiting = [s.id for s in live_open]
    if bad:
        log.info("rebuild", extra={"evacuate": sorted(bad), "unreadable": sorted(gone),
                                   "segments": len(todo), "waiting": rep.waiting})
    todo = [s for s in todo if s.id not in rep.waiting]
    total = sum(s.capacity if s.nstripes == 0 else s.nstripes for s in todo) or 1
    done = 0
    cands = [Candidate(t.id, t.weight, t.domain) for t in ds.target_infos() if t.id not in bad]
    domain_of = {t.id: t.domain or f"t{t.id}" for t in ds.target_infos()}
    for seg in todo:
        if seg.state == "open":
            if seg.owner == proc.current():
                ds.seal()
            _seal(ds, seg.id)
        lost_idx = [i for i, tid in enumerate(seg.targets) if tid in bad]
        if sum(tid in gone for tid in seg.targets) > seg.m:
            rep.lost.append(seg.id)
            continue
        keep = {tid for tid in seg.targets if tid not in bad}
        new_targets = list(seg.targets)
        for idx in lost_idx:
            try:  # a target that holds none of the segment's shards, in a new fault domain if any
                chosen = place(seg.id * 131 + idx, cands, 1, exclude=frozenset(keep),
                               avoid_domains=frozenset(domain_of[t] for t in keep))
            except NoSpace:  # none left: double up on a healthy one (still restores redundancy)
                chosen = place(seg.id * 131 + idx, cands, 1)
            new_targets[idx] = chosen[0]
            keep.add(chosen[0])
        n = _restore(ds, seg, lost_idx, new_targets, gone)
        rep.segments += 1
        rep.shards += len(lost_idx)
        rep.stripes += n
        done += seg.nstripes
        if progress:
            progress(min(done, total), total)
    if progress:
        progress(total, total)
    return rep


def _degraded_segments(ds: DataStore, bad: set[int]) -> list[SegmentInfo]:
    with ds.meta.read() as t:
        segs = t.segments()
    hit = [s for s in segs if any(tid in bad for tid in s.targets)]
    return sorted(hit, key=lambda s: -sum(tid in bad for tid in s.targets))


def _restore(ds: DataStore, seg: SegmentInfo, lost: list[int], new_targets: list[int], gone: set[int]) -> int:
    geo = _geo(ds, seg)
    codec = ds.codec_for(seg.k, seg.m)
    opener = _opener(ds, seg, gone)
    count = physical_stripes(ds, seg, gone)
    outs = {}
    for idx in lost:
        tgt = ds.target(new_targets[idx])
        tgt.remove_shard(seg.id, idx)
        f = tgt.open_shard(seg.id, idx, create=True)
        f.pwritev([pack_header(geo, seg.id, idx, ds.store_id)], 0)
        outs[idx] = f
    written = 0
    for stripe in range(count):
        try:
            cells = sio.reconstruct_cells(geo, codec, stripe, lost, opener)
        except DataUnavailable:
            if stripe < seg.nstripes:
                log.error("stripe unrecoverable during rebuild", extra={"segment": seg.id, "stripe": stripe})
            continue  # an uncommitted, half-written stripe: garbage, nothing to restore
        for idx, f in outs.items():
            sio.write_cell(geo, f, stripe, cells[idx])
        written += 1
    for f in outs.values():
        f.sync()
    old = seg.targets

    def switch(t: Txn) -> None:
        cur = t.segment(seg.id)
        if cur is None or cur.targets != old:
            raise NoSpace(f"segment {seg.id} changed during rebuild")
        t.set_shards(seg.id, new_targets)
        for idx in lost:
            t.exec("DELETE FROM repairs WHERE segment = ? AND idx = ?", (seg.id, idx))
    ds.meta.write(switch)
    ds.forget_segment(seg.id)
    for idx in lost:  # drop what is left on the old target, if it is still reachable
        try:
            ds.target(old[idx]).remove_shard(seg.id, idx)
        except OSError:
            pass
    return written


# -- garbage collection -----------------------------------------------------------------
@dataclass
class GcReport:
    sealed: int = 0
    deleted_segments: int = 0
    orphan_shards: int = 0
    freed_bytes: int = 0


def collect(ds: DataStore, *, tomb_age_s: float = 86400.0) -> GcReport:
    rep = GcReport()
    me = proc.current()
    with ds.meta.read() as t:
        segs = t.segments()
    for seg in segs:
        if seg.state == "open" and seg.owner != me and not proc.alive(seg.owner):
            _seal(ds, seg.id)
            rep.sealed += 1
    with ds.meta.read() as t:
        segs = t.segments()
        live = t.segment_live_bytes()
    for seg in segs:
        if seg.state != "sealed" or seg.id in live:
            continue

        def drop(t: Txn, s: int = seg.id) -> bool:
            if t.segment_refs(s):
                return False  # referenced since we looked
            t.delete_segment(s)
            return True
        if ds.meta.write(drop):
            rep.deleted_segments += 1
            rep.freed_bytes += _remove_shards(ds, seg)
    with ds.meta.read() as t:
        known = {s.id for s in t.segments()}
        top = t.segment_id_high()  # files of segments created after this are not ours to judge
    for info in ds.target_infos():
        tgt = ds.target(info.id)
        for sid, idx in tgt.list_shards():
            if sid not in known and sid <= top:
                tgt.remove_shard(sid, idx)
                rep.orphan_shards += 1
    cutoff = time.time_ns() - int(tomb_age_s * 1e9)
    ds.meta.write(lambda t: t.prune_tombs(cutoff))
    return rep


def _remove_shards(ds: DataStore, seg: SegmentInfo) -> int:
    freed = 0
    for idx, tid in enumerate(seg.targets):
        try:
            tgt = ds.target(tid)
            try:
                freed += tgt.open_shard(seg.id, idx).size()
            except OSError:
                pass
            tgt.remove_shard(seg.id, idx)
        except (OSError, KeyError):
            continue
    ds.forget_segment(seg.id)
    return freed


# -- health -----------------------------------------------------------------------------
@dataclass
class Health:
    state: str  # OK, DEGRADED, FAILED
    degraded_stripes: int
    lost_segments: int
    targets: list[dict[str, object]]


def health(ds: DataStore) -> Health:
    ds.refresh()
    bad = _bad_targets(ds)
    with ds.meta.read() as t:
        segs = t.segments()
        repairs = t.repairs()
    degraded: set[tuple[int, int]] = {(s, st) for s, st, _ in repairs}
    lost = 0
    for seg in segs:
        nbad = sum(tid in bad for tid in seg.targets)
        if nbad > seg.m:
            lost += 1
        if nbad:
            degraded.update((seg.id, st) for st in range(seg.nstripes))
    shard_count: dict[int, int] = {}
    for seg in segs:
        for tid in seg.targets:
            shard_count[tid] = shard_count.get(tid, 0) + 1
    targets = []
    for info in sorted(ds.target_infos(), key=lambda x: x.id):
        tgt = ds.target(info.id)
        total, free = tgt.capacity()
        used = tgt.usage()
        state = info.state if info.state != "ok" or tgt.available() else "missing"
        targets.append({"id": info.id, "path": info.path, "domain": info.domain, "state": state, "total": total,
                        "used": used, "free": free, "shards": shard_count.get(info.id, 0)})
    state = "FAILED" if lost else ("DEGRADED" if degraded else "OK")
    return Health(state, len(degraded), lost, targets)


__all__ = ["GcReport", "Health", "NoSpace", "RebuildReport", "ScrubReport", "collect", "health",
           "physical_stripes", "rebuild", "scrub"]
