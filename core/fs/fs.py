"""FileSystem: the one storage interface every protocol uses.

Inodes are persistent 64-bit numbers with a generation (a handle is
``(ino, gen)``; a mismatch is :class:`Stale`).  Names are str (bytes are
kept exactly through surrogateescape).  Every mutation is one metadata
transaction; file data goes through :class:`FileHandle` (write-back, durable
on flush/commit/close) or :meth:`FileSystem.write_file` (whole-file, atomic
create-or-replace, as S3 PUT needs).
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from core.data.store import DataStore
from core.errors import Changed, Exists, InvalidArgument, IsADirectory, NotADirectory, NotFound, NotPermitted, Stale
from core.fs import acl as A
from core.fs import names, perm, retention, versions
from core.fs import namespace as ns
from core.fs.attrs import AttrOps
from core.fs.caseless import CaselessOps
from core.fs.extents import CHUNK, chunks_of, resolve, to_slices
from core.fs.files import FileHandle, FileLayer, FileState
from core.fs.join import JoinOps
from core.fs.stage import Stager
from core.fs.stateless import StatelessOps, Wcc, cookie_after, snap
from core.fs.trash import TrashOps
from core.fs.types import DOS_KEEP, FILE_TYPES, NOW, ROOT, Attr, Cred, DirEntry, StatFs
from core.meta.store import MetaStore
from core.meta.txn import Txn
from core.meta.types import BLK, CHR, DIR, FIFO, KEPT, LNK, LOCKED, REG, SOCK, FileType, Inode

DataLike = bytes | bytearray | memoryview
T = TypeVar("T")


class FileSystem(AttrOps, CaselessOps, JoinOps, StatelessOps, TrashOps):
    """The store's namespace and files, as seen by one caller (:attr:`cred`).

    The store opens it as the admin; a protocol takes a view per caller with :meth:`as_user`,
    and every operation of that view is checked against the caller's credential.
    """

    def __init__(self, meta: MetaStore, data: DataStore, *, inline_max: int = 16 * 1024,
                 chunk: int = CHUNK, cred: Cred = ROOT) -> None:
        self._meta = meta
        self._data = data
        self.inline_max = inline_max
        self.chunk = chunk
        self.files = FileLayer(self)
        self.root = ns.ROOT
        self.cred = cred
        self.durable = True
        self._handle_key: list[bytes] = []
        self._handles_seen: dict[bytes, tuple[int, int, int]] = {}
        self.kept_ok = False  # a versions view (reading_versions) may read kept versions by inode
        self.write_verifier = os.urandom(8)  # NFS: changes on every start, so clients re-send what was not committed

    def as_user(self, cred: Cred, *, durable: bool | None = None) -> FileSystem:
        """The same file system, every call of which runs with ``cred`` (shares buffers and caches).

        ``durable=False``: the view's metadata changes (and the commits of files it opened) return once
        they survive a killed process, not yet a power loss; :meth:`FileHandle.flush` and :meth:`sync_meta`
        make everything before them durable. For protocols whose clients ask for durability explicitly
        (SMB's FLUSH); NFS keeps the default, every change durable before it is acknowledged.
        """
        view = copy.copy(self)
        view.cred = cred
        if durable is not None:
            view.durable = durable
        return view

    def reading_versions(self) -> FileSystem:
        """A view that may also read kept versions and trash entries by inode (:attr:`VersionInfo.ino`):
        attributes, xattrs and data, with the usual permission checks.  Writing to them stays refused."""
        view = copy.copy(self)
        view.kept_ok = True
        return view

    def sync_meta(self) -> None:
        """Make every metadata change committed so far durable (after non-durable ones)."""
        self._meta.sync()

    def _mut(self, wcc: Wcc | None, inos: list[int], op: Callable[[Txn], T], *, result: bool = False) -> T:
        """Run ``op`` in one write transaction, recording ``inos`` (and the resulting inode if ``result``)
        into ``wcc`` just before and just after it."""
        if wcc is None:
            return self._write(op)

        def apply(t: Txn) -> T:
            snap(t, wcc, inos, after=False)
            r = op(t)
            snap(t, wcc, inos + ([r.ino] if result and isinstance(r, Inode) else []), after=True)
            return r
        return self._write(apply)

    def _ids(self, uid: int | None, gid: int | None) -> tuple[int, int]:
        """Owner of a new inode: the caller's ids unless given; only an admin may give others'."""
        c = self.cred
        u = c.uid if uid is None else uid
        g = c.gid if gid is None else gid
        if not c.admin and (u != c.uid or not c.in_group(g)):
            raise NotPermitted("only an admin may create files owned by another user or group")
        return u, g

    def access(self, ino: int, want: int) -> int:
        """Which of the access bits ``want`` (core.fs.acl masks) the caller has on ``ino``."""
        with self._meta.read() as t:
            return perm.granted(t, self.cred, ns.get(t, ino, kept=self.kept_ok), want)

    def _need(self, ino: int, want: int, what: str) -> None:
        if not self.cred.admin:
            t = self._meta.peek()
            perm.need(t, self.cred, ns.get(t, ino, kept=self.kept_ok), want, what)

    # -- attributes and lookup ------------------------------------------------------
    def getattr(self, ino: int, gen: int | None = None) -> Attr:
        attr = Attr.of(ns.get(self._meta.peek(), ino, gen, kept=self.kept_ok))
        return self._with_buffered(attr) if attr.type == REG else attr  # our own uncommitted growth

    def size_of(self, ino: int) -> int:
        with self._meta.read() as t:
            return ns.get(t, ino, kept=self.kept_ok).size

    def lookup(self, parent: int, name: str, *, fold: bool = False) -> Attr:
        """The entry ``name`` of ``parent``; ``fold``: case-insensitively (see :mod:`core.fs.caseless`)."""
        if fold:
            return self.lookup_entry(parent, name, fold=True)[1]
        raw = names.encode(name)
        t = self._meta.peek()
        if self.cred.admin:
            node = t.lookup_inode(parent, raw)
        else:  # the directory comes along in the same statement, for the search check
            d, node = t.lookup_with_parent(parent, raw)
            if d is not None and d.type == DIR:
                perm.may_search(t, self.cred, d)
        if node is not None:
            return Attr.of(node)
        with self._meta.read() as t:  # a miss: say precisely why
            ns.get_dir(t, parent)
        raise NotFound(f"{name!r} not found")

    def resolve(self, path: str, *, fold: bool = False) -> Attr:
        parts = [names.encode(p) for p in names.split_path(path)]
        with self._meta.read() as t:
            node = ns.walk(t, self.cred, parts, fold=fold)
        return self.getattr(node.ino) if node.type == REG else Attr.of(node)

    def resolve_parent(self, path: str, *, fold: bool = False) -> tuple[int, str]:
        """(parent inode, last name) of a path whose parent must exist (``fold``: found case-insensitively)."""
        parts = names.split_path(path)
        if not parts:
            raise InvalidArgument("the root has no parent")
        parent = self.resolve("/" + "/".join(parts[:-1]), fold=fold)
        if not parent.is_dir:
            raise NotADirectory(f"{'/'.join(parts[:-1])} is not a directory")
        return parent.ino, parts[-1]

    def readdir(self, ino: int, cookie: int = 0, limit: int = 1024) -> list[DirEntry]:
        """Entries after ``cookie`` (0 = from the start), in byte order of name."""
        with self._meta.read() as t:
            perm.need(t, self.cred, ns.get_dir(t, ino), A.LIST_DIRECTORY, "list the directory")
            rows = t.list_dir(ino, cookie_after(t, ino, cookie), limit)
        return [DirEntry(names.decode(n), i, FILE_TYPES[k], c) for n, i, k, c in rows]

    def listdir(self, ino: int) -> list[DirEntry]:
        out: list[DirEntry] = []
        cookie = 0
        while True:
            page = self.readdir(ino, cookie)
            out.extend(page)
            if len(page) < 1024:
                return out
            cookie = page[-1].cookie

    # -- namespace ------------------------------------------------------------------
    def create(self, parent: int, name: str, mode: int = 0o644, uid: int | None = None, gid: int | None = None,
               exclusive: bool = True, acl: A.Acl | None = None, wcc: Wcc | None = None,
               verifier: bytes | None = None, fold: bool = False) -> Attr:
        """A new regular file.  ``verifier`` makes an exclusive create retryable (NFS EXCLUSIVE): it is kept
        with the file in the same transaction, and a later create of the same name with the same verifier
        answers that file instead of :class:`Exists`.  ``fold``: a name differing only by case is the same
        name (:class:`Exists`, or that file when not ``exclusive``)."""
        raw = names.encode(name)
        node = ns.new_inode(REG, mode, *self._ids(uid, gid))

        def op(t: Txn) -> Inode:
            if verifier is not None:
                again = ns.created_with(t, self.cred, parent, raw, verifier)
                if again is not None:
                    return again
            n = ns.add_entry(t, self.cred, parent, raw, node, exclusive=exclusive or verifier is not None, acl=acl,
                             fold=fold)
            if verifier is not None:
                t.set_xattr(n.ino, ns.VERIFIER_XATTR, verifier)
            return n
        return Attr.of(self._mut(wcc, [parent], op, result=True))

    def mkdir(self, parent: int, name: str, mode: int = 0o755, uid: int | None = None, gid: int | None = None,
              acl: A.Acl | None = None, wcc: Wcc | None = None, fold: bool = False) -> Attr:
        """A new directory (``fold``: :class:`Exists` also for a name that differs only by case)."""
        raw = names.encode(name)
        node = ns.new_inode(DIR, mode, *self._ids(uid, gid))
        return Attr.of(self._mut(wcc, [parent],
                                 lambda t: ns.add_entry(t, self.cred, parent, raw, node, acl=acl, fold=fold),
                                 result=True))

    def makedirs(self, path: str, mode: int = 0o755, uid: int | None = None, gid: int | None = None) -> Attr:
        attr = self.getattr(self.root)
        for part in names.split_path(path):
            try:
                attr = self.mkdir(attr.ino, part, mode, uid, gid)
            except Exists:
                attr = self.lookup(attr.ino, part)
                if not attr.is_dir:
                    raise NotADirectory(f"{part!r} exists and is not a directory") from None
        return attr

    def symlink(self, parent: int, name: str, target: str, uid: int | None = None, gid: int | None = None,
                wcc: Wcc | None = None) -> Attr:
        raw, tgt = names.encode(name), target.encode("utf-8", "surrogateescape")
        ns.check_symlink(tgt)
        node = ns.new_inode(LNK, 0o777, *self._ids(uid, gid), size=len(tgt), symlink=tgt)
        return Attr.of(self._mut(wcc, [parent], lambda t: ns.add_entry(t, self.cred, parent, raw, node),
                                 result=True))

    def mknod(self, parent: int, name: str, kind: FileType, mode: int = 0o644, uid: int | None = None,
              gid: int | None = None, rdev: int = 0, wcc: Wcc | None = None) -> Attr:
        if kind not in (CHR, BLK, FIFO, SOCK):
            raise InvalidArgument("mknod makes only devices, fifos and sockets")
        if kind in (CHR, BLK) and not self.cred.admin:
            raise NotPermitted("only an admin may make device nodes")
        raw = names.encode(name)
        node = ns.new_inode(kind, mode, *self._ids(uid, gid), rdev=rdev)
        return Attr.of(self._mut(wcc, [parent], lambda t: ns.add_entry(t, self.cred, parent, raw, node),
                                 result=True))

    def readlink(self, ino: int) -> str:
        with self._meta.read() as t:
            node = ns.get(t, ino)
        if node.type != LNK or node.symlink is None:
            raise InvalidArgument("not a symbolic link")
        return node.symlink.decode("utf-8", "surrogateescape")

    def link(self, ino: int, parent: int, name: str, wcc: Wcc | None = None) -> Attr:
        raw = names.encode(name)
        return Attr.of(self._mut(wcc, [parent, ino], lambda t: ns.link(t, self.cred, ino, parent, raw)))

    def unlink(self, parent: int, name: str, wcc: Wcc | None = None, *, keep_locked: bool = False) -> None:
        """Remove a name; ``keep_locked``: a locked file may go where versioning keeps it (S3 DELETE)."""
        raw = names.encode(name)
        node = self._mut(wcc, [parent], lambda t: ns.unlink(t, self.cred, parent, raw, keep_locked=keep_locked))
        if node.nlink <= 0:
            self.files.discard(node.ino)

    def rmdir(self, parent: int, name: str, wcc: Wcc | None = None) -> None:
        raw = names.encode(name)
        self._mut(wcc, [parent], lambda t: ns.unlink(t, self.cred, parent, raw, want_dir=True))

    def rename(self, src_parent: int, src: str, dst_parent: int, dst: str, *, replace: bool = True,
               wcc: Wcc | None = None) -> None:
        a, b = names.encode(src), names.encode(dst)
        gone = self._mut(wcc, [src_parent, dst_parent],
                         lambda t: ns.rename(t, self.cred, src_parent, a, dst_parent, b, replace=replace))
        if gone is not None:
            self.files.discard(gone.ino)

    def setattr(self, ino: int, *, mode: int | None = None, uid: int | None = None, gid: int | None = None,
                size: int | None = None, atime_ns: int | None = None, mtime_ns: int | None = None,
                wcc: Wcc | None = None, if_ctime_ns: int | None = None, btime_ns: int | None = None,
                dos: int | None = None) -> Attr:
        """chmod/chown/truncate/utimes in one transaction; a time of :data:`NOW` is the server's clock
        (allowed to anyone who may write; explicit times only to the owner, or to whom an ACL grants
        WRITE_ATTRIBUTES), as NFS's SET_TO_SERVER_TIME.
        ``if_ctime_ns`` applies the change only if the inode's ctime is still that (NFS's guard), else
        :class:`Changed`.

        ``btime_ns`` (birth time) and ``dos`` (DOS attributes, SMB's FILE_ATTRIBUTE_* bits; bits outside
        :data:`~core.fs.types.DOS_KEEP` are dropped) need the owner or the WRITE_ATTRIBUTES right, as
        Windows asks for FileBasicInformation; they touch metadata only."""
        if dos is not None and not 0 <= dos < 1 << 32:
            raise InvalidArgument("DOS attributes are a 32-bit mask")
        if size is not None:
            if size < 0:
                raise InvalidArgument("negative size")
            st = self.files.state(ino, create=False)
            if st is not None:
                self.files.commit(st)  # our buffered writes land before the size changes

        def apply(t: Txn) -> Inode:
            node = ns.get(t, ino)
            if if_ctime_ns is not None and node.ctime != if_ctime_ns:
                raise Changed("the file changed since the caller's guard time")
            ts = time.time_ns()
            self._check_setattr(t, node, mode, uid, gid, size, atime_ns, mtime_ns)
            if (btime_ns is not None or dos is not None) and not self.cred.admin:
                perm.need(t, self.cred, node, A.WRITE_ATTRIBUTES, "set attributes")
            if size is not None:
                if node.type == DIR:
                    raise IsADirectory("cannot change the size of a directory")
                if node.type != REG:
                    raise InvalidArgument("size applies to regular files only")
                self._truncate(t, node, size)
                node.mtime = ts if mtime_ns in (None, NOW) else mtime_ns
            if mode is not None:
                node.mode = perm.chmod_bits(self.cred, node, mode)
                acl = perm.acl_of(t, node)
                if acl is not None:
                    perm.store_acl(t, node, A.chmod(acl, node.mode, node.type == DIR))
            if (uid is not None and uid != node.uid) or (gid is not None and gid != node.gid):
                if node.type == REG and mode is None:  # a new owner never inherits set-id bits (as Linux does)
                    node.mode &= ~0o6000
                node.uid = node.uid if uid is None else uid
                node.gid = node.gid if gid is None else gid
            if atime_ns is not None:
                node.atime = ts if atime_ns == NOW else atime_ns
            if mtime_ns is not None:
                node.mtime = ts if mtime_ns == NOW else mtime_ns
            if btime_ns is not None:
                node.btime = ts if btime_ns == NOW else btime_ns
            if dos is not None:
                node.dos = dos & DOS_KEEP
            node.ctime = ts
            t.update_inode(node)
            return node
        return Attr.of(self._mut(wcc, [ino], apply))

    def _check_setattr(self, t: Txn, node: Inode, mode: int | None, uid: int | None, gid: int | None,
                       size: int | None, atime_ns: int | None, mtime_ns: int | None) -> None:
        c = self.cred
        if c.admin:
            return
        if size is not None:
            perm.need(t, c, node, A.WRITE_DATA, "change the size")
        perm.check_chown(c, node, uid, gid)
        if mode is not None:
            perm.owner_or_admin(c, node, "change the mode")
        times = [v for v in (atime_ns, mtime_ns) if v is not None]
        if any(v != NOW for v in times):  # the owner, or whom an ACL grants WRITE_ATTRIBUTES (RFC 8881 6.2.1.3.1)
            if c.uid != node.uid and not perm.granted(t, c, node, A.WRITE_ATTRIBUTES):
                raise NotPermitted("only the owner may set times")
        elif times and c.uid != node.uid:
            perm.need(t, c, node, A.WRITE_DATA, "set times to now")

    def _truncate(self, t: Txn, node: Inode, size: int) -> None:
        """Metadata-only truncate: trim slices past ``size`` (extending leaves a hole).  A truncate to zero
        keeps the old content as a version or in the trash where the tree's policy says so."""
        retention.check(t, node, "change its size")
        if size == 0 and node.size > 0:
            versions.retire_content(t, self.cred, node, time.time_ns())
        if node.inline_data is not None:
            node.inline_data = node.inline_data[:size]
        if size < node.size:
            last = size // self.chunk
            t.delete_slices(node.ino, last + 1)
            edge = size - last * self.chunk
            for s in t.slices(node.ino, last, last):
                if s.off >= edge:
                    t.delete_slice(s.id)
                elif s.off + s.len > edge:
                    t.trim_slice(s.id, edge - s.off)
        node.size = size

    # -- file data ------------------------------------------------------------------
    def open(self, ino: int, write: bool = False, *, truncate: bool = False,
             share: tuple[str, int, int] | None = None) -> FileHandle:
        """Open a regular file.  ``share`` = (owner, access, share) takes a share mode."""
        t = self._meta.peek()  # the inode once, for the type, the permission and (writing) the retention checks
        node = ns.get(t, ino, kept=self.kept_ok)
        if node.type != REG:
            raise IsADirectory("is a directory") if node.type == DIR else InvalidArgument("not a regular file")
        if not self.cred.admin:
            perm.need(t, self.cred, node, A.WRITE_DATA if write else A.READ_DATA,
                      "open for " + ("writing" if write else "reading"))
        if write and (node.flags & LOCKED or node.nlink <= 0):  # a kept version, or locked content
            retention.check_write(t, node)
        gen = node.gen
        share_id = None
        if share is not None:
            owner, access, allow = share
            share_id = self.open_share(ino, owner, access, allow)
        st = self.files.acquire(ino)
        h = FileHandle(self, st, gen, write, share_id)
        if truncate and write:
            self.setattr(ino, size=0)
        return h

    def read(self, ino: int, off: int, n: int) -> bytes:
        """Read without a handle (each call is checked, as NFS READ is)."""
        return bytes(self.read_buffer(ino, off, n))

    def read_buffer(self, ino: int, off: int, n: int) -> bytearray:
        """:meth:`read` into a new buffer the caller keeps (no copy into ``bytes``: large NFS READs)."""
        buf = bytearray(max(0, n))
        st = self.files.state(ino, create=False)
        if st is not None:  # this process has buffered writes: read through them (checked here)
            self._need(ino, A.READ_DATA, "read")
        with memoryview(buf) as view:  # read_committed checks inside its own snapshot
            got = self.files.read_into(st, off, view) if st else self.read_committed(ino, off, view)
        del buf[got:]
        return buf

    def read_committed(self, ino: int, off: int, out: memoryview, allow_short: bool = False) -> int:
        """Read committed bytes at ``off``; returns how many (short at EOF)."""
        if off < 0:
            raise InvalidArgument("negative offset")
        with self._meta.read() as t:
            node = ns.get(t, ino, kept=self.kept_ok)
            if node.type != REG:
                raise IsADirectory("is a directory") if node.type == DIR else InvalidArgument("not a file")
            perm.need(t, self.cred, node, A.READ_DATA, "read")
            n = max(0, min(len(out), node.size - off))
            if n == 0:
                return 0
            if node.inline_data is not None:
                data = node.inline_data[off: off + n]
                out[: len(data)] = data
                if len(data) < n:
                    out[len(data): n] = bytes(n - len(data))
                return n
            c0, c1 = chunks_of(off, off + n, self.chunk)
            slices = t.slices(ino, c0, c1)
        pieces = resolve(slices, off, off + n, self.chunk)
        self._read_pieces(pieces, off, out)
        return n

    def read_many(self, inos: list[int]) -> list[bytes]:
        """Whole committed contents of several files: one metadata snapshot for all of them.

        For batches of small files (a DataLoader batch) this replaces a transaction and two
        queries per file with one transaction and two queries per batch.
        """
        uniq = list(dict.fromkeys(inos))
        with self._meta.read() as t:
            nodes = t.inodes(uniq)
            for n in nodes.values():
                perm.need(t, self.cred, n, A.READ_DATA, "read")
            need = [i for i in uniq if i in nodes and nodes[i].type == REG and nodes[i].inline_data is None]
            slices = t.slices_of(need) if need else {}
        out: dict[int, bytes | bytearray] = {}
        jobs: list[tuple[int, int, memoryview]] = []
        for ino in uniq:
            node = nodes.get(ino)
            if node is None or (node.flags & KEPT and not self.kept_ok):
                raise Stale(f"inode {ino} no longer exists")
            if node.type != REG:
                raise IsADirectory("is a directory") if node.type == DIR else InvalidArgument("not a file")
            if node.inline_data is not None:
                out[ino] = node.inline_data[: node.size] + bytes(max(0, node.size - len(node.inline_data)))
                continue
            buf = out[ino] = bytearray(node.size)
            if node.size:  # every file's pieces go into one job list: cold batches read in parallel
                self._piece_jobs(resolve(slices.get(ino, []), 0, node.size, self.chunk), 0, memoryview(buf), jobs)
        self._run_jobs(jobs)
        return [bytes(out[i]) for i in inos]

    def _piece_jobs(self, pieces: list[Any], base: int, out: memoryview,
                    jobs: list[tuple[int, int, memoryview]]) -> None:
        """Stripe-sized read jobs (segment, offset, destination) for pieces; holes are zeroed here."""
        sd = self._data.geo.stripe_data
        for p in pieces:
            dst = out[p.off - base: p.off - base + p.len]
            if p.segment == 0:
                dst[:] = bytes(p.len)
                continue
            pos = 0
            while pos < p.len:
                step = min(p.len - pos, sd - (p.seg_off + pos) % sd)
                jobs.append((p.segment, p.seg_off + pos, dst[pos: pos + step]))
                pos += step

    def _run_jobs(self, jobs: list[tuple[int, int, memoryview]], lanes: int = 8) -> None:
        """Run read jobs in up to ``lanes`` sequential groups on the I/O pool.

        Only large jobs (stripe-sized pieces of big files) are spread over threads: for a
        batch of small files the per-job thread hand-off costs more CPU than the overlap
        saves on two cores (measured with bench/torch.py: warm 4,631 vs 3,951 samples/s).
        """
        if len(jobs) <= 2 or sum(len(j[2]) for j in jobs) < len(jobs) * 512 * 1024:
            for seg, so, dst in jobs:
                self._data.read_into(seg, so, dst)
            return
        n = min(lanes, len(jobs))
        groups = [jobs[i::n] for i in range(n)]

        def run(group: list[tuple[int, int, memoryview]]) -> None:
            for seg, so, dst in group:
                self._data.read_into(seg, so, dst)
        list(self._data.pool().map(run, groups))

    def _read_pieces(self, pieces: list[Any], base: int, out: memoryview) -> None:
        jobs: list[tuple[int, int, memoryview]] = []
        self._piece_jobs(pieces, base, out, jobs)
        self._run_jobs(jobs)

    def stager(self) -> Stager:
        """A writer for a whole new file's bytes; link it with :meth:`write_file`."""
        return Stager(self)

    def write_file(self, parent: int, name: str, data: DataLike | Iterable[DataLike] | Stager, *,
                   mode: int = 0o644, uid: int | None = None, gid: int | None = None,
                   xattrs: dict[str, bytes] | None = None, exclusive: bool = False,
                   mtime_ns: int | None = None, keep_locked: bool = False) -> Attr:
        """Create or atomically replace ``name`` with ``data`` (bytes, chunks, or a Stager).

        Readers see the old file or the new one, never a mix; durable on return.  The replaced file is kept
        as a version or in the trash as the tree's policy says (:mod:`core.fs.versions`); a file under
        retention is replaced only with ``keep_locked`` and where versioning keeps it (S3 PUT).  A new file
        in a tree with an object-lock default retention gets that retention.
        """
        raw = names.encode(name)
        if isinstance(data, Stager):
            stg = data
        else:
            stg = Stager(self)
            for c in [data] if isinstance(data, bytes | bytearray | memoryview) else data:
                stg.write(c)
        inline, exts = stg.finish()
        rows = []
        for fo, e in exts:
            rows += to_slices(fo, e.length, e.segment, e.seg_off, self.chunk)
        marks = self._data.stripe_marks((e for _, e in exts), self._data.geo.stripe_data)
        node = ns.new_inode(REG, mode, *self._ids(uid, gid), size=stg.size, ts=mtime_ns)
        node.inline_data = inline

        def apply(t: Txn) -> Inode:
            self._place(t, parent, raw, node, exclusive, keep_locked)
            t.add_slices(node.ino, rows)
            for sid, hi in marks.items():
                t.bump_stripes(sid, hi)
            self._set_xattrs(t, node.ino, xattrs)
            versions.default_retention(t, parent, node)
            return node
        return Attr.of(self._write(apply))

    def _place(self, t: Txn, parent: int, raw: bytes, node: Inode, exclusive: bool, keep_locked: bool = False) -> None:
        """Link a new inode as ``parent/raw``, replacing a non-directory there unless ``exclusive`` (the old
        one is kept as the tree's policy says; a locked one only with ``keep_locked`` where versioning keeps it)."""
        ns.get_dir(t, parent)
        hit = t.lookup(parent, raw)
        if hit is not None:
            shown = names.decode(raw)
            if exclusive:
                raise Exists(f"{shown!r} exists")
            old = ns.get(t, hit[0])
            if old.type == DIR:
                raise IsADirectory(f"{shown!r} is a directory")
            ns.unlink(t, self.cred, parent, raw, reason="overwrite", keep_locked=keep_locked)
        ns.add_entry(t, self.cred, parent, raw, node)

    def _set_xattrs(self, t: Txn, ino: int, xattrs: dict[str, bytes] | None) -> None:
        for k, v in (xattrs or {}).items():
            self._check_xattr(k, v)
            t.set_xattr(ino, k, v)

    def system_dir(self, name: str) -> int:
        """A directory no path reaches (for protocol bookkeeping such as multipart parts).

        It belongs to the admin (mode 0700): a protocol works in it through an admin view and
        decides itself who may reach what it keeps there.
        """
        if not self.cred.admin:
            raise NotPermitted("system directories are for the admin")
        key = f"sysdir:{name}"
        with self._meta.read() as t:
            val = t.info(key)
        if val is not None:
            return int(val)

        def make(t: Txn) -> int:
            cur = t.info(key)
            if cur is not None:
                return int(cur)
            node = ns.new_inode(DIR, 0o700, 0, 0, parent=ns.ROOT)
            t.insert_inode(node)
            t.set_info(key, str(node.ino))
            return node.ino
        return self._write(make)

    # -- the store as a whole -------------------------------------------------------
    def statfs(self) -> StatFs:
        geo = self._data.geo
        total = free = 0
        for info in self._data.target_infos():
            if info.state != "ok":
                continue
            tb, fb = self._data.target(info.id).capacity()
            total += tb
            free += fb
        with self._meta.read() as t:
            files = t.count_inodes()
        ratio = geo.k / geo.n
        return StatFs(int(total * ratio), int(free * ratio), files + (1 << 32), 1 << 32, geo.cell)

    def sync(self) -> None:
        """Commit every buffered write of this process (a file removed meanwhile is skipped: its bytes are gone)."""
        for st in list(self.files._states.values()):
            try:
                self.files.commit(st)
            except Stale:
                self.files.discard(st.ino)

    def close(self) -> None:
        self.sync()


__all__ = ["FileHandle", "FileState", "FileSystem"]
