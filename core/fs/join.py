"""Joining files without copying data (a part of FileSystem): concat and clone-into-place.

Both re-point the sources' slices; only inline (tiny) sources are written out to segments
first, unless the result is small enough to stay inline itself.  :meth:`JoinOps.clone` is
the one "clone into place" primitive: S3 CopyObject (one source), multipart Complete (the
parts) and the fsspec ``cp`` (one source) all use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from core.data.store import DataStore, Extent
from core.errors import InvalidArgument
from core.fs import acl as A
from core.fs import names, perm, retention, versions
from core.fs import namespace as ns
from core.fs.extents import resolve, to_slices
from core.fs.types import Attr, Cred
from core.meta.store import MetaStore
from core.meta.txn import Txn
from core.meta.types import LOCKED, REG, Inode

if TYPE_CHECKING:
    from core.fs.files import FileLayer

T = TypeVar("T")
Rows = list[tuple[int, int, int, int, int]]
Staged = dict[int, tuple[int, list[tuple[int, Extent]]]]


class JoinOps:
    _meta: MetaStore
    _data: DataStore
    cred: Cred
    chunk: int
    inline_max: int
    files: FileLayer
    kept_ok: bool

    if TYPE_CHECKING:  # FileSystem's own
        def _ids(self, uid: int | None, gid: int | None) -> tuple[int, int]: ...
        def _place(self, t: Txn, parent: int, raw: bytes, node: Inode, exclusive: bool,
                   keep_locked: bool = False) -> None: ...
        def _set_xattrs(self, t: Txn, ino: int, xattrs: dict[str, bytes] | None) -> None: ...
        def _write(self, fn: Callable[[Txn], T]) -> T: ...

    def _prepare(self, sources: list[int], stage_inline: bool) -> tuple[dict[int, int], Staged]:
        """Check the sources (readable regular files), land their buffered writes; their ctimes,
        and the inline ones written out to segments when ``stage_inline``."""
        ctimes: dict[int, int] = {}
        staged: Staged = {}
        for src in sources:
            with self._meta.read() as t:
                node = ns.get(t, src, kept=self.kept_ok)
                perm.need(t, self.cred, node, A.READ_DATA, "read a source")
            if node.type != REG:
                raise InvalidArgument("only regular files can be joined")
            st = self.files.state(src, create=False)
            if st is not None:
                self.files.commit(st)
                with self._meta.read() as t:
                    node = ns.get(t, src, kept=self.kept_ok)
            ctimes[src] = node.ctime
            if stage_inline and node.inline_data:
                staged[src] = (node.ctime, self._stage_force(node.inline_data))
        return ctimes, staged

    def _rows(self, t: Txn, sources: list[int], ctimes: dict[int, int], staged: Staged, pos: int) -> tuple[Rows, int]:
        """Slice rows placing ``sources`` one after the other from ``pos``; the end position."""
        rows: Rows = []
        for src in sources:
            s = ns.get(t, src, kept=self.kept_ok)
            if s.ctime != ctimes[src]:
                raise InvalidArgument("a source changed during the join; try again")
            if src in staged:
                for fo, e in staged[src][1]:
                    rows += to_slices(pos + fo, e.length, e.segment, e.seg_off, self.chunk)
            elif s.inline_data:
                raise InvalidArgument("a source changed during the join; try again")
            elif s.size:
                c1 = (s.size - 1) // self.chunk
                for p in resolve(t.slices(src, 0, c1), 0, s.size, self.chunk):
                    if p.segment:
                        rows += to_slices(pos + p.off, p.len, p.segment, p.seg_off, self.chunk)
            pos += s.size
        return rows, pos

    def concat(self, dst: int, sources: list[int]) -> Attr:
        """Append the contents of ``sources`` to ``dst`` without copying data.

        Sources are left as they are (the caller removes them).
        """
        with self._meta.read() as t:
            dnode = ns.get(t, dst)
            perm.need(t, self.cred, dnode, A.WRITE_DATA, "write the target")
        ctimes, staged = self._prepare([dst, *sources], stage_inline=True)

        def apply(t: Txn) -> Inode:
            d = ns.get(t, dst)
            if d.type != REG:
                raise InvalidArgument("concat target must be a regular file")
            if d.flags & LOCKED or d.nlink <= 0:
                retention.check_write(t, d)
            if d.ctime != ctimes[dst]:
                raise InvalidArgument("the target changed during the join; try again")
            own = self._rows(t, [dst], ctimes, staged, 0)[0] if dst in staged else []
            rows, end = self._rows(t, sources, ctimes, staged, d.size)
            t.add_slices(dst, own + rows)
            d.inline_data = None  # from now on the file is slices only
            d.size = end
            d.mtime = d.ctime = time.time_ns()
            t.update_inode(d)
            return d
        return Attr.of(self._write(apply))

    def clone(self, parent: int, name: str, sources: list[int], *, mode: int = 0o644, uid: int | None = None,
              gid: int | None = None, xattrs: dict[str, bytes] | None = None, exclusive: bool = False,
              mtime_ns: int | None = None, keep_locked: bool = False) -> Attr:
        """Create or atomically replace ``parent/name`` with the concatenated contents of ``sources``,
        sharing their data (no copy).  Readers see the old file or the new one, never a mix.  The replaced
        file is kept as :meth:`write_file` keeps it (``keep_locked`` likewise)."""
        raw = names.encode(name)
        with self._meta.read() as t:
            nodes = [ns.get(t, s, kept=self.kept_ok) for s in sources]
        small = sum(n.size for n in nodes) <= self.inline_max and all(n.inline_data is not None or not n.size
                                                                       for n in nodes)
        ctimes, staged = self._prepare(sources, stage_inline=not small)
        node = ns.new_inode(REG, mode, *self._ids(uid, gid), ts=mtime_ns)

        def apply(t: Txn) -> Inode:
            if small:
                srcs = [ns.get(t, s, kept=self.kept_ok) for s in sources]
                if any(s.ctime != ctimes[s.ino] for s in srcs):
                    raise InvalidArgument("a source changed during the join; try again")
                node.inline_data = b"".join((s.inline_data or b"")[: s.size] for s in srcs)
                node.size, rows = len(node.inline_data), list[tuple[int, int, int, int, int]]()
            else:
                rows, node.size = self._rows(t, sources, ctimes, staged, 0)
            self._place(t, parent, raw, node, exclusive, keep_locked)
            t.add_slices(node.ino, rows)
            self._set_xattrs(t, node.ino, xattrs)
            versions.default_retention(t, parent, node)
            return node
        return Attr.of(self._write(apply))

    def _stage_force(self, data: bytes) -> list[tuple[int, Extent]]:
        """Write bytes to segments even if small (joins need slices); (file offset, extent) pairs."""
        exts = self._data.write(data)
        self._data.sync({e.segment for e in exts})
        out, pos = [], 0
        for e in exts:
            out.append((pos, e))
            pos += e.length
        marks = self._data.stripe_marks(exts, self._data.geo.stripe_data)

        def bump(t: Txn) -> None:
            for sid, hi in marks.items():
                t.bump_stripes(sid, hi)
        self._write(bump)
        return out
