"""DataStore: this process's view of the targets and segments.

Writes go to a segment this process *owns* (``segments.owner``): stripes are
reserved under a lock, then encoded and written by a small thread pool (ISA-L,
crc32c and the syscalls all release the GIL).  Data becomes durable through
:meth:`DataStore.sync` (group fdatasync per shard file) followed by the
caller's metadata transaction — that transaction is the durability point;
stripes without one are garbage for GC.

Reads resolve a segment's recorded targets, read only the data cells they
need, verify crc32c, and decode from parity when cells are bad.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from core.data import stripe as sio
from core.data.codec import Codec, make_codec
from core.data.layout import Geometry, pack_header
from core.data.placement import Candidate, place
from core.data.target import DirTarget, MemTarget, ShardFile, Target
from core.errors import DataUnavailable, NoSpace
from core.meta import proc
from core.meta.store import MetaStore
from core.meta.txn import Txn
from core.meta.types import SegmentInfo, TargetInfo

log = logging.getLogger("tessera.data")


@dataclass(frozen=True, slots=True)
class Extent:
    """``length`` bytes written at ``seg_off`` of ``segment``."""

    segment: int
    seg_off: int
    length: int


class _FileSync:
    """Group fdatasync for one shard file: concurrent committers share a sync."""

    __slots__ = ("count_lock", "flushing", "lock", "synced", "written")

    EARLY_EVERY = 128  # records per shard file (32 MiB at 256 KiB cells) between background syncs

    def __init__(self) -> None:
        self.lock = threading.Lock()  # held across fdatasync: later committers wait and share it
        self.count_lock = threading.Lock()
        self.written = 0
        self.synced = 0
        self.flushing = False

    def wrote(self) -> bool:
        """Count a record; True when a background sync should start writeback early."""
        with self.count_lock:
            self.written += 1
            if not self.flushing and self.written - self.synced >= self.EARLY_EVERY:
                self.flushing = True
                return True
            return False

    def early(self, f: ShardFile) -> None:
        """Background writeback: large writes overlap the disk instead of piling up for commit."""
        try:
            self.sync(f)
        except OSError:
            pass
        finally:
            self.flushing = False

    def sync(self, f: ShardFile) -> None:
        seq = self.written
        if self.synced >= seq:
            return
        with self.lock:
            if self.synced >= seq:
                return
            upto = self.written
            f.sync()
            self.synced = max(self.synced, upto)


class _Budget:
    """Bytes of stripes in flight per process: writers wait when it is spent.

    Bounds memory however many streams write at once (each stripe holds its
    data and parity until its shard writes finish).
    """

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self.cond = threading.Condition()

    def take(self, n: int) -> None:
        with self.cond:
            while self.used and self.used + n > self.limit:
                self.cond.wait()
            self.used += n

    def give(self, n: int) -> None:
        with self.cond:
            self.used -= n
            self.cond.notify_all()

    def release_for(self, n: int) -> Callable[[Future[None]], None]:
        def done(_: Future[None]) -> None:
            self.give(n)
        return done


IN_FLIGHT_BYTES = 48 * 1024 * 1024


@dataclass
class _Open:
    info: SegmentInfo
    next_stripe: int
    placeable: frozenset[int] = frozenset()  # the healthy targets when it was placed


TargetFactory = Callable[[TargetInfo], Target]


def default_target(info: TargetInfo) -> Target:
    if info.path.startswith("mem:"):
        return MemTarget(info.id, info.path)
    return DirTarget(info.id, info.path)


class DataStore:
    def __init__(self, meta: MetaStore, geometry: Geometry, store_id: uuid.UUID, *,
                 segment_stripes: int = 1024, threads: int = 4, codec: str = "isal",
                 target_factory: TargetFactory = default_target) -> None:
        self.meta = meta
        self.geo = geometry
        self.store_id = store_id
        self.segment_stripes = segment_stripes
        self.codec: Codec = make_codec(geometry.k, geometry.m, kind=codec)
        self._codecs: dict[tuple[int, int], Codec] = {(geometry.k, geometry.m): self.codec}
        self._codec_kind = codec
        self._factory = target_factory
        self._targets: dict[int, Target] = {}
        self._tinfo: dict[int, TargetInfo] = {}
        self._segs: dict[int, SegmentInfo] = {}
        self._syncs: dict[tuple[int, int, int], _FileSync] = {}
        self._open: _Open | None = None
        self._lock = threading.RLock()
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._flush_pool: ThreadPoolExecutor | None = None
        self._pid = os.getpid()
        self._refreshed = 0.0
        self._pending_repairs: set[tuple[int, int, int]] = set()
        self._budget = _Budget(IN_FLIGHT_BYTES)
        self._watch: threading.Thread | None = None
        self._closing = threading.Event()
        self.refresh()

    # -- targets --------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload targets from metadata; roll off the open segment when one of its targets failed, or when
        targets it could not use are healthy now (a node joined or came back: new data spreads onto it)."""
        with self.meta.read() as t:
            infos = t.targets()
        with self._lock:
            for info in infos:
                if info.id not in self._targets or self._tinfo[info.id].path != info.path:
                    self._targets[info.id] = self._factory(info)
                self._tinfo[info.id] = info
            self._refreshed = time.monotonic()
            o = self._open
            if o is not None and (any(not self._healthy(t) for t in o.info.targets)
                                  or any(t not in o.placeable and self._healthy(t) for t in self._tinfo)):
                self._seal_open()

    def _healthy(self, tid: int) -> bool:
        info = self._tinfo.get(tid)
        return info is not None and info.state == "ok" and self._targets[tid].available()

    def target(self, tid: int) -> Target:
        with self._lock:
            if tid not in self._targets:
                self.refresh()
            return self._targets[tid]

    def target_infos(self) -> list[TargetInfo]:
        with self._lock:
            return list(self._tinfo.values())

    def codec_for(self, k: int, m: int) -> Codec:
        with self._lock:
            c = self._codecs.get((k, m))
            if c is None:
                c = self._codecs[(k, m)] = make_codec(k, m, kind=self._codec_kind)
            return c

    # -- fork safety and the pool ---------------------------------------------------
    def _check_fork(self) -> None:
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._pool = None
            self._flush_pool = None
            self._open = None  # the parent owns that segment
            self._lock = threading.RLock()
            self._budget = _Budget(IN_FLIGHT_BYTES)
            self._syncs = {}
            self._targets = {}
            self._watch = None
            self._closing = threading.Event()
            self.refresh()

    def _flusher(self) -> ThreadPoolExecutor:
        self._check_fork()
        if self._flush_pool is None:
            self._flush_pool = ThreadPoolExecutor(2, thread_name_prefix="early-sync")
        return self._flush_pool

    def pool(self) -> ThreadPoolExecutor:
        self._check_fork()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="stripe")
        return self._pool

    # -- segments -------------------------------------------------------------------
    def segment(self, sid: int, *, reload: bool = False) -> SegmentInfo:
        info = None if reload else self._segs.get(sid)
        if info is None:
            with self.meta.read() as t:
                info = t.segment(sid)
            if info is None:
                raise DataUnavailable(f"segment {sid} is not in the metadata")
            self._segs[sid] = info
        return info

    def forget_segment(self, sid: int) -> None:
        self._segs.pop(sid, None)

    def _new_segment(self) -> _Open:
        geo = self.geo
        owner = proc.current()
        now = time.time_ns()
        cands = [Candidate(t.id, t.weight, t.domain) for t in self._tinfo.values() if self._healthy(t.id)]

        def create(t: Txn) -> SegmentInfo:
            sid = t.new_segment(geo.k, geo.m, geo.cell, owner, self.segment_stripes, now)
            targets = place(sid, cands, geo.n)
            t.set_shards(sid, targets)
            return SegmentInfo(sid, geo.k, geo.m, geo.cell, "open", owner, 0, self.segment_stripes,
                               tuple(targets))

        if len(cands) < geo.n:
            raise NoSpace(f"{geo.k}+{geo.m} needs {geo.n} healthy targets, {len(cands)} available")
        info = self.meta.write(create)
        for idx, tid in enumerate(info.targets):  # headers first, so every shard file identifies itself
            try:
                f = self._targets[tid].open_shard(info.id, idx, create=True)
                f.pwritev([pack_header(geo, info.id, idx, self.store_id)], 0)
            except OSError as e:
                log.warning("shard header write failed", extra={"target": tid, "error": str(e)})
        self._segs[info.id] = info
        self._watch_open()
        return _Open(info, 0, frozenset(c.id for c in cands))

    WATCH_S = 2.0

    def _watch_open(self) -> None:
        """While this process holds an open segment, notice target failures (and new targets) even when it
        writes nothing: a writer gone quiet must not keep a segment open on a failed target, or rebuild waits."""
        if self._watch is not None and self._watch.is_alive():
            return

        def run() -> None:
            while not self._closing.wait(self.WATCH_S):
                if self._open is None:
                    continue
                if time.monotonic() - self._refreshed < self.WATCH_S:
                    continue
                try:
                    self.refresh()
                except Exception as e:  # metadata unreachable for a moment: try again next round
                    log.warning("target refresh failed", extra={"error": str(e)})
        self._watch = threading.Thread(target=run, name="segment-watch", daemon=True)
        self._watch.start()

    def _seal_open(self) -> None:
        o, self._open = self._open, None
        if o is not None:
            sid = o.info.id
            self.meta.write(lambda t: t.seal_segment(sid))
            self._segs.pop(sid, None)

    def _reserve(self, nstripes: int) -> list[tuple[SegmentInfo, int, int]]:
        """Reserve stripes, possibly across segments: (segment, first, count)."""
        out = []
        with self._lock:
            if time.monotonic() - self._refreshed > 2.0:
                self.refresh()
            while nstripes:
                o = self._open
                if o is None or o.next_stripe >= o.info.capacity:
                    self._seal_open()
                    o = self._open = self._new_segment()
                take = min(nstripes, o.info.capacity - o.next_stripe)
                out.append((o.info, o.next_stripe, take))
                o.next_stripe += take
                nstripes -= take
        return out

    def seal(self) -> None:
        """Seal this process's open segment (on shutdown)."""
        with self._lock:
            self._seal_open()

    # -- writes ---------------------------------------------------------------------
    def _shard_getter(self, info: SegmentInfo, create: bool = False) -> Callable[[int], ShardFile]:
        def get(idx: int) -> ShardFile:
            return self._targets[info.targets[idx]].open_shard(info.id, idx, create=create)
        return get

    def _write_one(self, info: SegmentInfo, stripe: int, data: memoryview) -> None:
        geo = Geometry(info.k, info.m, info.cell, self.geo.block)
        failed = sio.write_stripe(geo, self.codec_for(info.k, info.m), stripe, data,
                                  self._shard_getter(info, create=True))
        for idx in range(geo.n):
            key = (info.targets[idx], info.id, idx)
            fs = self._syncs.get(key)
            if fs is None:
                fs = self._syncs.setdefault(key, _FileSync())
            if fs.wrote():
                try:
                    f = self._targets[info.targets[idx]].open_shard(info.id, idx)
                except OSError:
                    fs.flushing = False
                    continue
                self._flusher().submit(fs.early, f)
        if failed:
            if len(failed) > geo.m:
                raise DataUnavailable(f"segment {info.id} stripe {stripe}: {len(failed)} shard writes failed")
            for idx in failed:
                self._pending_repairs.add((info.id, stripe, idx))
            with self._lock:
                if self._open is not None and self._open.info.id == info.id:
                    self._seal_open()

    def write_async(self, data: bytes | bytearray | memoryview) -> list[tuple[Extent, Future[None]]]:
        """Start writing ``data`` as stripes; the last one may be partial."""
        self._check_fork()
        mv = memoryview(data).cast("B")
        sd = self.geo.stripe_data
        count = -(-len(mv) // sd)
        out: list[tuple[Extent, Future[None]]] = []
        pos = 0
        pool = self.pool()
        for info, first, n in self._reserve(count):
            for s in range(first, first + n):
                chunk = mv[pos: pos + sd]
                ext = Extent(info.id, s * sd, len(chunk))
                cost = len(chunk) * self.geo.n // self.geo.k  # data and parity held until written
                self._budget.take(cost)
                fut = pool.submit(self._write_one, info, s, chunk)
                fut.add_done_callback(self._budget.release_for(cost))
                out.append((ext, fut))
                pos += len(chunk)
        return out

    def write(self, data: bytes | bytearray | memoryview) -> list[Extent]:
        """Write ``data`` and wait; returns its extents (not yet synced)."""
        pairs = self.write_async(data)
        for _, fut in pairs:
            fut.result()
        return merge_extents(e for e, _ in pairs)

    def sync(self, segments: Iterable[int]) -> None:
        """Make everything written so far to these segments durable."""
        jobs = []
        for sid in set(segments):
            info = self.segment(sid)
            for idx, tid in enumerate(info.targets):
                fs = self._syncs.get((tid, sid, idx))
                if fs is None or fs.synced >= fs.written:
                    continue
                jobs.append((fs, tid, sid, idx))
        if self._pending_repairs:
            self.flush_repairs()

        def run(job: tuple[_FileSync, int, int, int]) -> None:
            fs, tid, sid, idx = job
            try:
                fs.sync(self._targets[tid].open_shard(sid, idx))
            except OSError as e:  # a lost target: its cells are recovered from parity
                log.warning("shard sync failed", extra={"target": tid, "segment": sid, "error": str(e)})
        if len(jobs) == 1:
            run(jobs[0])
        elif jobs:
            list(self.pool().map(run, jobs))

    @staticmethod
    def stripe_marks(extents: Iterable[Extent], stripe_data: int) -> dict[int, int]:
        """segment -> committed stripe high-water mark covering these extents."""
        marks: dict[int, int] = {}
        for e in extents:
            hi = -(-(e.seg_off + e.length) // stripe_data)
            marks[e.segment] = max(marks.get(e.segment, 0), hi)
        return marks

    # -- reads ----------------------------------------------------------------------
    def read_into(self, segment: int, seg_off: int, out: memoryview) -> None:
        """Fill ``out`` from ``seg_off`` of ``segment``: verified, degraded if need be."""
        self._check_fork()
        info = self.segment(segment)
        try:
            bad = self._read(info, seg_off, out)
        except DataUnavailable:
            # the placement may have moved (rebuild): retry once with fresh metadata
            self.refresh()
            info = self.segment(segment, reload=True)
            bad = self._read(info, seg_off, out)
        if bad:  # cells to repair, unless rebuild moved the segment since it was cached (then they are fine)
            fresh = self.segment(segment, reload=True)
            if fresh.targets == info.targets:
                self._pending_repairs.update(bad)

    def _read(self, info: SegmentInfo, seg_off: int, out: memoryview) -> set[tuple[int, int, int]]:
        """Read (degraded if need be); the (segment, stripe, index) cells found bad on healthy targets."""
        geo = Geometry(info.k, info.m, info.cell, self.geo.block)
        codec = self.codec_for(info.k, info.m)
        reads: dict[int, sio.StripeRead] = {}
        for stripe, cell, pos, n, oo in geo.split(seg_off, len(out)):
            reads.setdefault(stripe, sio.StripeRead(stripe)).pieces.append((cell, pos, n, oo))

        def shard(idx: int) -> ShardFile | None:
            tid = info.targets[idx]
            t = self._targets.get(tid)
            info_t = self._tinfo.get(tid)
            if t is None or info_t is None or info_t.state not in ("ok", "draining"):
                return None
            try:
                return t.open_shard(info.id, idx)
            except OSError:
                return None

        found: set[tuple[int, int, int]] = set()
        for sr in reads.values():
            bad = sio.read_pieces(geo, codec, sr, out, shard)
            for idx in bad:
                if self._tinfo.get(info.targets[idx]) and self._tinfo[info.targets[idx]].state == "ok":
                    found.add((info.id, sr.stripe, idx))
        return found

    def flush_repairs(self) -> None:
        pending, self._pending_repairs = self._pending_repairs, set()
        if pending:
            def add(t: Txn) -> None:
                for sid, stripe, idx in pending:
                    t.add_repair(sid, stripe, idx)
            self.meta.write(add)

    def close(self) -> None:
        self._closing.set()
        try:
            self.flush_repairs()
            self.seal()
        finally:
            if self._pool is not None and os.getpid() == self._pid:
                self._pool.shutdown(wait=True)
            if self._flush_pool is not None and os.getpid() == self._pid:
                self._flush_pool.shutdown(wait=True)
            for t in self._targets.values():
                t.close()


def merge_extents(extents: Iterable[Extent]) -> list[Extent]:
    """Coalesce extents that continue each other in the same segment."""
    out: list[Extent] = []
    for e in extents:
        if out and out[-1].segment == e.segment and out[-1].seg_off + out[-1].length == e.seg_off:
            last = out[-1]
            out[-1] = Extent(last.segment, last.seg_off, last.length + e.length)
        else:
            out.append(e)
    return out
