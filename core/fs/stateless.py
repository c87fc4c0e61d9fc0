"""What stateless protocols (NFSv3 first) need from the file system (a part of FileSystem).

- **File handles** (format v1, below): opaque, persistent across restarts, built from
  core ids only, and unforgeable: a MAC under a per-store key covers every field, so a
  client cannot make a handle that reaches an inode (or an export) it was never given.
- **Parent lookup** (``..`` of a directory) and **readdir with attributes** from one
  metadata snapshot (READDIRPLUS without a transaction per entry); a cookie verifier.
- **wcc data**: every mutation takes ``wcc=``, a :class:`Wcc` that receives the touched
  inodes' attributes just before and just after the change, inside the same transaction.
- **Writes without an open**: ``write`` buffers (UNSTABLE) or is durable before it
  returns (``stable=True``, FILE_SYNC); ``commit`` makes an inode's buffered writes
  durable; ``write_verifier`` changes whenever the process starts, so a client that saw
  a different verifier re-sends what it has not seen committed.

Handle format v1 (36 bytes, network byte order)::

    0   u8    version (1)
    1   3     zero (reserved)
    4   u32   export id (chosen by the protocol, e.g. a hash of the export path)
    8   u64   inode number
    16  u32   inode generation (a reused number gets a new generation: old handles are Stale)
    20  16    keyed BLAKE2b-128 (RFC 7693's MAC mode) of bytes 0..19 under the store's handle key

The key (32 random bytes) is made on first use and kept in the store's metadata
(``info`` row ``handle_key``), so every process and node of a store agrees on it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.errors import BadCookie, BadHandle, InvalidArgument, IsADirectory
from core.fs import acl as A
from core.fs import names, perm
from core.fs import namespace as ns
from core.fs.retention import check_write
from core.fs.types import FILE_TYPES, Attr, Cred, DirEntry
from core.meta.store import MetaStore
from core.meta.txn import Txn
from core.meta.types import DIR, LOCKED, REG

if TYPE_CHECKING:
    from core.fs.files import FileLayer

HANDLE_VERSION = 1
HANDLE_SIZE = 36
_FH = struct.Struct(">B3xIQI")
_MAC = 16
_SEEN_MAX = 1 << 16


@dataclass
class Wcc:
    """Attributes of the inodes a mutation touched, just before and just after it (NFS wcc_data)."""

    before: dict[int, Attr] = field(default_factory=dict)
    after: dict[int, Attr] = field(default_factory=dict)


def snap(t: Txn, wcc: Wcc | None, inos: list[int], *, after: bool) -> None:
    """Record the current attributes of ``inos`` into ``wcc`` (inside the mutation's transaction)."""
    if wcc is None:
        return
    into = wcc.after if after else wcc.before
    for ino in inos:
        node = t.inode(ino)
        if node is not None:
            into[ino] = Attr.of(node)
        else:
            into.pop(ino, None)


class StatelessOps:
    _meta: MetaStore
    cred: Cred
    files: FileLayer
    _handle_key: list[bytes]  # shared by every as_user view: [] until first use
    _handles_seen: dict[bytes, tuple[int, int, int]]  # handles that passed the MAC check (shared too)
    write_verifier: bytes

    if TYPE_CHECKING:  # FileSystem's own
        def getattr(self, ino: int, gen: int | None = None) -> Attr: ...

    # -- handles --------------------------------------------------------------------
    def _key(self) -> bytes:
        if not self._handle_key:
            def make(t: Txn) -> str:
                cur = t.info("handle_key")
                if cur is None:
                    cur = os.urandom(32).hex()
                    t.set_info("handle_key", cur)
                return cur
            with self._meta.read() as t:
                val = t.info("handle_key")
            self._handle_key[:] = [bytes.fromhex(val if val is not None else self._meta.write(make))]
        return self._handle_key[0]

    def make_handle(self, export_id: int, attr: Attr) -> bytes:
        """A v1 handle for ``attr`` under ``export_id`` (see the module docstring)."""
        body = _FH.pack(HANDLE_VERSION, export_id & 0xFFFFFFFF, attr.ino, attr.gen & 0xFFFFFFFF)
        return body + hashlib.blake2b(body, key=self._key(), digest_size=_MAC).digest()

    def parse_handle(self, fh: bytes) -> tuple[int, int, int]:
        """(export id, inode, generation) of a handle this store issued; :class:`BadHandle` otherwise."""
        hit = self._handles_seen.get(fh)
        if hit is not None:  # verified before (the key never changes): skip the MAC
            return hit
        if len(fh) != HANDLE_SIZE or fh[0] != HANDLE_VERSION:
            raise BadHandle("not a Tessera file handle (wrong size or version)")
        body, mac = fh[:_FH.size], fh[_FH.size:]
        if not hmac.compare_digest(mac, hashlib.blake2b(body, key=self._key(), digest_size=_MAC).digest()):
            raise BadHandle("file handle failed its integrity check")
        _, export_id, ino, gen = _FH.unpack(body)
        if len(self._handles_seen) >= _SEEN_MAX:
            self._handles_seen.clear()
        self._handles_seen[bytes(fh)] = (export_id, ino, gen)
        return export_id, ino, gen

    # -- directories ----------------------------------------------------------------
    def parent(self, ino: int) -> Attr:
        """The ``..`` of directory ``ino`` (the root's is the root); needs search on ``ino``."""
        with self._meta.read() as t:
            d = ns.get_dir(t, ino)
            perm.may_search(t, self.cred, d)
            return Attr.of(ns.get(t, d.parent or ns.ROOT))

    def cookie_verifier(self, ino: int) -> int:
        """Cookies are stable dentry ids (they survive removals), so one verifier per directory suffices."""
        with self._meta.read() as t:
            return ns.get_dir(t, ino).btime & 0xFFFFFFFFFFFFFFFF

    def readdir_plus(self, ino: int, cookie: int = 0, limit: int = 1024) -> list[tuple[DirEntry, Attr]]:
        """Entries after ``cookie`` with their attributes, all from one metadata snapshot."""
        with self._meta.read() as t:
            perm.need(t, self.cred, ns.get_dir(t, ino), A.LIST_DIRECTORY, "list the directory")
            rows = t.list_dir(ino, cookie_after(t, ino, cookie), limit)
            nodes = t.inodes([r[1] for r in rows])
        out = []
        for n, i, k, c in rows:
            node = nodes.get(i)
            if node is None:  # cannot happen inside one snapshot; be safe
                continue
            attr = Attr.of(node)
            if node.type == REG:
                attr = self._with_buffered(attr)
            out.append((DirEntry(names.decode(n), i, FILE_TYPES[k], c), attr))
        return out

    def _with_buffered(self, attr: Attr) -> Attr:
        """``attr`` with this process's uncommitted growth and write time."""
        if not self.files._states:  # nothing buffered in this process (the common case): no lock
            return attr
        st = self.files.state(attr.ino, create=False)
        if st is None or not st.dirty:
            return attr
        size = max(attr.size, st.written_end)
        mtime = max(attr.mtime_ns, st.mtime)
        if size == attr.size and mtime == attr.mtime_ns:
            return attr
        return Attr(attr.ino, attr.gen, attr.type, attr.mode, attr.nlink, attr.uid, attr.gid, size, attr.rdev,
                    attr.atime_ns, mtime, max(attr.ctime_ns, mtime), attr.btime_ns, attr.dos)

    # -- writes without an open ---------------------------------------------------
    def write(self, ino: int, off: int, data: bytes | bytearray | memoryview, *, stable: bool = False,
              wcc: Wcc | None = None) -> int:
        """Write at ``off`` as NFS WRITE does: checked on each call (the owner may always write its own
        file, as knfsd allows, so a file created read-only can still be filled); buffered unless ``stable``."""
        if off < 0:
            raise InvalidArgument("negative offset")
        t = self._meta.peek()  # one statement: the check needs no snapshot of its own
        node = ns.get(t, ino)
        if node.type != REG:
            raise IsADirectory("is a directory") if node.type == DIR else InvalidArgument("not a regular file")
        if self.cred.uid != node.uid:
            perm.need(t, self.cred, node, A.WRITE_DATA, "write")
        if node.flags & LOCKED or node.nlink <= 0:
            check_write(t, node)
        committed = Attr.of(node)
        if wcc is not None:
            wcc.before[ino] = self._with_buffered(committed)
        st = self.files.acquire(ino)
        try:
            n = self.files.write(st, off, data)
            if stable:
                self.files.commit(st)
        finally:
            self.files.release(st)
        if wcc is not None:  # unstable: the committed attributes plus our buffered growth, no query
            wcc.after[ino] = self.getattr(ino) if stable else self._with_buffered(committed)
        return n

    def commit(self, ino: int, wcc: Wcc | None = None) -> None:
        """Make every buffered write of ``ino`` in this process durable (NFS COMMIT)."""
        if wcc is not None:
            wcc.before[ino] = self.getattr(ino)
        st = self.files.state(ino, create=False)
        if st is not None:
            st = self.files.acquire(ino)
            try:
                self.files.commit(st)
            finally:
                self.files.release(st)
        if wcc is not None:
            wcc.after[ino] = self.getattr(ino)


def cookie_after(t: Txn, ino: int, cookie: int) -> bytes | None:
    """The name a readdir cookie of ``ino`` stands for (None = from the start); BadCookie if never issued."""
    if not cookie:
        return None
    name = t.cookie_name(ino, cookie)
    if name is None:
        raise BadCookie(f"readdir cookie {cookie} is not valid for this directory")
    return name

