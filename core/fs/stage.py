"""Stager: write a whole new file's bytes before it has a name.

Bytes are fed in any pieces; full stripes go to segments in the background
(bounded in flight, so memory stays flat however large the file), the tail is
kept until :meth:`finish`.  ``finish`` waits for the stripes and fdatasyncs
their shard files; the caller then links the result into the namespace in one
transaction (:meth:`FileSystem.write_file`).  Files up to the inline threshold
never touch segments.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING

from core.data.store import Extent

if TYPE_CHECKING:
    from core.fs.fs import FileSystem

MAX_PENDING = 2  # batches of stripes in flight per stager (the DataStore also bounds the total)


class Stager:
    def __init__(self, fs: FileSystem) -> None:
        self.fs = fs
        self.size = 0
        self._flush_at = max(2 * 1024 * 1024, 2 * fs._data.geo.stripe_data)
        self._buf = bytearray(0)  # grows to a full batch only once the file outgrows inline size
        self._fill = 0
        self._pending: list[tuple[int, list[tuple[Extent, Future[None]]]]] = []
        self._done: tuple[bytes | None, list[tuple[int, Extent]]] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        mv = memoryview(data).cast("B")
        self.size += len(mv)
        if len(self._buf) < self._flush_at:
            if self._fill + len(mv) <= self.fs.inline_max:  # small so far: a plain append
                self._buf[self._fill:] = mv
                self._fill += len(mv)
                return
            big = bytearray(self._flush_at)
            big[: self._fill] = self._buf[: self._fill]
            self._buf = big
        pos = 0
        while pos < len(mv):
            n = min(len(mv) - pos, self._flush_at - self._fill)
            self._buf[self._fill: self._fill + n] = mv[pos: pos + n]
            self._fill += n
            pos += n
            if self._fill == self._flush_at:  # a full batch of stripes: hand the buffer over
                full, self._buf, self._fill = self._buf, bytearray(self._flush_at), 0
                self._submit(full, self.size - (len(mv) - pos) - len(full))

    def _submit(self, data: bytearray | bytes, start: int) -> None:
        self._pending.append((start, self.fs._data.write_async(data)))
        if len(self._pending) > MAX_PENDING:
            for _, fut in self._pending[-MAX_PENDING - 1][1]:
                fut.result()

    def finish(self) -> tuple[bytes | None, list[tuple[int, Extent]]]:
        """(inline bytes or None, [(file offset, extent)]), durable on return."""
        if self._done is not None:
            return self._done
        if not self._pending and self.size <= self.fs.inline_max:
            self._done = (bytes(self._buf[: self._fill]), [])
            return self._done
        if self._fill:
            self._submit(self._buf[: self._fill], self.size - self._fill)
            self._buf, self._fill = bytearray(0), 0
        exts: list[tuple[int, Extent]] = []
        for fo, pairs in self._pending:
            pos = fo
            for e, fut in pairs:
                fut.result()
                if exts:
                    pf, pe = exts[-1]
                    if pf + pe.length == pos and pe.segment == e.segment and pe.seg_off + pe.length == e.seg_off:
                        exts[-1] = (pf, Extent(pe.segment, pe.seg_off, pe.length + e.length))
                        pos += e.length
                        continue
                exts.append((pos, e))
                pos += e.length
        self.fs._data.sync({e.segment for _, e in exts})
        self._done = (None, exts)
        return self._done

    def abort(self) -> None:
        """Drop what was staged (the stripes become garbage for GC)."""
        for _, pairs in self._pending:
            for _, fut in pairs:
                try:
                    fut.result()
                except Exception:
                    pass
        self._pending.clear()
        self._buf, self._fill = bytearray(0), 0
