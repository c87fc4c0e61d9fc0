"""Open files: write-back buffering, read-your-writes, commit.

Every handle on an inode in this process shares one :class:`FileState`, so
protocol servers see their clients' writes coherently before they are
committed.  Uncommitted writes are *runs*, each stamped with a sequence
number: in memory (``buf``) until a full stripe is buffered, then written to
a segment in the background (``ext``/``fut``).  Overlapping runs resolve by
sequence, newest wins — the same rule the committed slices follow.

``commit`` is the durability point: write what is buffered, wait for the
stripes, group-fdatasync their shard files, then one metadata transaction adds
the slices and the new size.  Files no larger than ``inline_max`` are stored
inline in the inode instead.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.data.store import Extent
from core.errors import Closed, InvalidArgument
from core.fs import namespace as ns
from core.fs.extents import to_slices
from core.meta.txn import Txn

if TYPE_CHECKING:
    from core.fs.fs import FileSystem

SPILL_AT = 8 << 20  # buffered bytes that trigger writing full stripes
MAX_INFLIGHT = 16  # stripes being written per file before a writer waits
MAX_FILE_SIZE = (1 << 63) - 1  # the largest size metadata holds (signed 64-bit, as off_t)


@dataclass
class Run:
    seq: int
    off: int
    buf: bytearray | None = None  # in memory
    ext: Extent | None = None  # or written to a segment
    fut: Future[None] | None = None

    @property
    def length(self) -> int:
        return len(self.buf) if self.buf is not None else (self.ext.length if self.ext else 0)


@dataclass
class FileState:
    ino: int
    lock: threading.RLock = field(default_factory=threading.RLock)
    refs: int = 0
    runs: list[Run] = field(default_factory=list)
    seq: int = 0
    buffered: int = 0
    written_end: int = 0
    mtime: int = 0

    @property
    def dirty(self) -> bool:
        return bool(self.runs)


class FileLayer:
    """Write-back and read logic for regular files (owned by a FileSystem)."""

    def __init__(self, fs: FileSystem) -> None:
        self.fs = fs
        self._states: dict[int, FileState] = {}
        self._lock = threading.Lock()

    def state(self, ino: int, create: bool = True) -> FileState | None:
        with self._lock:
            st = self._states.get(ino)
            if st is None and create:
                st = self._states[ino] = FileState(ino)
            return st

    def acquire(self, ino: int) -> FileState:
        with self._lock:
            st = self._states.get(ino)
            if st is None:
                st = self._states[ino] = FileState(ino)
            st.refs += 1
            return st

    def release(self, st: FileState) -> None:
        with self._lock:
            st.refs -= 1
            if st.refs <= 0 and not st.dirty:
                self._states.pop(st.ino, None)

    def discard(self, ino: int) -> None:
        """The inode is gone: forget its buffered writes (their segments become garbage for GC)."""
        with self._lock:
            st = self._states.get(ino)
            if st is None:
                return
            with st.lock:
                st.runs, st.buffered, st.written_end = [], 0, 0
            if st.refs <= 0:
                self._states.pop(ino, None)

    def reset(self) -> None:
        with self._lock:
            self._states.clear()

    # -- writes ---------------------------------------------------------------------
    def write(self, st: FileState, off: int, data: bytes | bytearray | memoryview) -> int:
        if off < 0:
            raise InvalidArgument("negative offset")
        n = len(data)
        if off + n > MAX_FILE_SIZE:  # checked before any state changes: sizes are signed 64-bit in metadata
            raise InvalidArgument(f"a file ends at {MAX_FILE_SIZE} bytes at most")
        if n == 0:
            return 0
        with st.lock:
            last = st.runs[-1] if st.runs else None
            if last is not None and last.buf is not None and last.off <= off <= last.off + len(last.buf):
                rel = off - last.off
                grow = rel + n - len(last.buf)
                last.buf[rel: rel + n] = data
                st.buffered += max(0, grow)
            else:
                st.seq += 1
                st.runs.append(Run(st.seq, off, buf=bytearray(data)))
                st.buffered += n
            st.written_end = max(st.written_end, off + n)
            st.mtime = time.time_ns()
            if st.buffered >= SPILL_AT:
                self._spill(st, full_only=True)
        return n

    def _spill(self, st: FileState, *, full_only: bool) -> None:
        """Send buffered runs to segments: whole stripes, or everything."""
        sd = self.fs._data.geo.stripe_data
        out: list[Run] = []
        for r in st.runs:
            if r.buf is None or (full_only and len(r.buf) < sd):
                out.append(r)
                continue
            take = len(r.buf) if not full_only else (len(r.buf) // sd) * sd
            view = memoryview(r.buf)
            pos = 0
            for ext, fut in self.fs._data.write_async(view[:take]):
                out.append(Run(r.seq, r.off + pos, ext=ext, fut=fut))
                pos += ext.length
            st.buffered -= take
            if take < len(r.buf):
                out.append(Run(r.seq, r.off + take, buf=r.buf[take:]))
        st.runs = sorted(out, key=lambda r: r.seq)  # stable: keeps file order within a seq
        inflight = [r.fut for r in st.runs if r.fut is not None and not r.fut.done()]
        for fut in inflight[: max(0, len(inflight) - MAX_INFLIGHT)]:
            fut.result()

    # -- commit ---------------------------------------------------------------------
    def commit(self, st: FileState, durable: bool = True) -> None:
        """Make this file's writes durable (no-op when nothing is buffered). ``durable=False``: the data is
        fsynced as always but the metadata commit only survives a killed process (see ``FileSystem.as_user``)."""
        with st.lock:
            if not st.runs:
                return
            try:
                self._commit(st, durable)
            finally:
                st.runs, st.buffered, st.written_end = [], 0, 0

    def _commit(self, st: FileState, durable: bool = True) -> None:
        fs = self.fs
        with fs._meta.read() as t:
            node = ns.get(t, st.ino)
        size = max(node.size, st.written_end)
        mtime = st.mtime
        if size <= fs.inline_max:
            content = bytearray(size)
            self.read_into(st, 0, memoryview(content), size_hint=size)
            self._wait(st)

            def inline(t: Txn) -> None:
                n = ns.get(t, st.ino)
                n.inline_data, n.size = bytes(content), size
                n.mtime, n.ctime = mtime, time.time_ns()
                t.delete_slices(st.ino)
                t.update_inode(n)
            fs._meta.write(inline, durable=durable)
            return
        if node.inline_data:  # converting an inline file: its bytes become the oldest run
            st.runs.insert(0, Run(0, 0, buf=bytearray(node.inline_data)))
        self._spill(st, full_only=False)
        self._wait(st)
        exts = [r.ext for r in st.runs if r.ext is not None]
        fs._data.sync(e.segment for e in exts)
        rows = [row for off, e in _coalesce(st.runs)
                for row in to_slices(off, e.length, e.segment, e.seg_off, fs.chunk)]
        marks = fs._data.stripe_marks(exts, fs._data.geo.stripe_data)
        end = st.written_end

        def apply(t: Txn) -> None:
            n = ns.get(t, st.ino)
            t.add_slices(st.ino, rows)
            for sid, hi in marks.items():
                t.bump_stripes(sid, hi)
            n.inline_data = None
            n.size = max(n.size, end)
            n.mtime, n.ctime = mtime, time.time_ns()
            t.update_inode(n)
        fs._meta.write(apply, durable=durable)

    @staticmethod
    def _wait(st: FileState) -> None:
        for r in st.runs:
            if r.fut is not None:
                r.fut.result()

    # -- reads ----------------------------------------------------------------------
    def read_into(self, st: FileState, off: int, out: memoryview, size_hint: int | None = None, *,
                  kept: bool = False) -> int:
        """Read committed data overlaid with this process's uncommitted writes (``kept``: the file may be a
        kept version, opened through a versions view)."""
        if off < 0:
            raise InvalidArgument("negative offset")
        fs = self.fs.reading_versions() if kept else self.fs
        if not st.runs:
            return fs.read_committed(st.ino, off, out)
        with st.lock:
            got = fs.read_committed(st.ino, off, out, allow_short=True)
            size = max(fs.size_of(st.ino), st.written_end) if size_hint is None else size_hint
            want = max(0, min(len(out), size - off))
            if got < want:
                out[got:want] = bytes(want - got)
            for r in st.runs:  # oldest first: newer runs overwrite older
                lo, hi = max(off, r.off), min(off + want, r.off + r.length)
                if lo >= hi:
                    continue
                dst = out[lo - off: hi - off]
                if r.buf is not None:
                    dst[:] = memoryview(r.buf)[lo - r.off: hi - r.off]
                elif r.ext is not None and r.fut is not None:
                    r.fut.result()
                    fs._data.read_into(r.ext.segment, r.ext.seg_off + (lo - r.off), dst)
            return want


def _coalesce(runs: list[Run]) -> list[tuple[int, Extent]]:
    """Written runs as (file offset, extent), joining neighbours of one write."""
    out: list[tuple[int, Extent]] = []
    last_seq = -1
    for r in runs:
        e = r.ext
        if e is None:
            continue
        if out and r.seq == last_seq:
            fo, pe = out[-1]
            if fo + pe.length == r.off and pe.segment == e.segment and pe.seg_off + pe.length == e.seg_off:
                out[-1] = (fo, Extent(pe.segment, pe.seg_off, pe.length + e.length))
                continue
        out.append((r.off, e))
        last_seq = r.seq
    return out


class FileHandle:
    """An open regular file: read/write at offsets, flush/commit, close."""

    def __init__(self, fs: FileSystem, st: FileState, gen: int, writable: bool,
                 share_id: int | None = None) -> None:
        self.fs = fs
        self.ino = st.ino
        self.gen = gen
        self._st: FileState | None = st
        self.writable = writable
        self.share_id = share_id

    def _state(self) -> FileState:
        if self._st is None:
            raise Closed("file handle is closed")
        return self._st

    def read(self, off: int, n: int) -> bytes:
        buf = bytearray(max(0, n))
        got = self.readinto(off, buf)
        del buf[got:]
        return bytes(buf)

    def readinto(self, off: int, buf: bytearray | memoryview) -> int:
        return self.fs.files.read_into(self._state(), off, memoryview(buf).cast("B"), kept=self.fs.kept_ok)

    def write(self, off: int, data: bytes | bytearray | memoryview) -> int:
        if not self.writable:
            raise InvalidArgument("file not open for writing")
        return self.fs.files.write(self._state(), off, data)

    def flush(self, durable: bool = True) -> None:
        """Durable on return: data and metadata survive kill -9 and power loss. ``durable=False``: the
        data is on stable storage and the metadata committed, surviving a killed process; a power cut
        may lose the metadata until the next durable commit."""
        st = self._state()
        self.fs.files.commit(st, durable=durable)
        if durable and not self.fs.durable:
            self.fs.sync_meta()  # what this non-durable view committed before is durable now too

    commit = flush

    def truncate(self, size: int) -> None:
        self.fs.setattr(self.ino, size=size)

    def size(self) -> int:
        st = self._state()
        return max(self.fs.size_of(self.ino), st.written_end)

    def close(self) -> None:
        st = self._st
        if st is None:
            return
        try:
            if self.writable:
                self.fs.files.commit(st, durable=self.fs.durable)
        finally:
            self._st = None
            self.fs.files.release(st)
            if self.share_id is not None:
                self.fs.close_share(self.share_id)

    def __enter__(self) -> FileHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

