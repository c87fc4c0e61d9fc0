"""FileSystem's trash-can calls (mixed into :class:`core.fs.fs.FileSystem` through :class:`TrashOps`).

What the trash keeps and when is decided by :mod:`core.fs.versions`; this is the caller-facing surface:
list what was deleted under a tree, put it back (a directory with what was deleted with it), empty it,
and the maintenance loop's expiry (age, then each tree's byte cap).  Permissions as in :mod:`core.fs.vops`.
"""

from __future__ import annotations

import time

from core.errors import Exists, NotFound, NotPermitted
from core.fs import acl as A
from core.fs import names, perm, retention, versions
from core.fs import namespace as ns
from core.fs.types import Attr
from core.fs.vops import Progress, VersionInfo, VersionOps, _next_prefix, _raw
from core.meta.txn import Txn
from core.meta.types import DIR, Inode
from core.meta.vtxn import VersionRow


class TrashOps(VersionOps):
    # -- the trash can -----------------------------------------------------------------
    def trash(self, tree: str = "/", *, after: tuple[str, int] | None = None, limit: int = 1000) -> list[VersionInfo]:
        """What was deleted under ``tree`` and is still kept (files and directories, newest first per path):
        rows removed by a delete or rmdir, whether the trash or versioning keeps them."""
        out: list[VersionInfo] = []
        cur = after
        while len(out) < limit:
            batch = self.list_versions(tree.rstrip("/") + "/" if tree.strip("/") else "/", after=cur,
                                       limit=limit, kinds=("version", "trash"))
            if not batch:
                break
            out += [v for v in batch if v.reason in ("delete", "rmdir") and v.ino]
            cur = (batch[-1].path, batch[-1].row)
        return out[:limit]

    def trash_restore(self, path: str, *, to: str | None = None, row: int | None = None) -> Attr:
        """Put a deleted file or directory back at ``path`` (or ``to``), moving it (no copy); a directory
        comes back with the contents that were deleted with it (each path's newest entry removed no later
        than the directory).  Refused (:class:`Exists`) if something lives there now."""
        raw = _raw(path)
        with self._meta.read() as t:
            rows = [r for r in t.versions_at(raw) if r.ino and r.reason in ("delete", "rmdir")
                    and (row is None or r.id == row)]
        if not rows:
            raise NotFound(f"{path} is not in the trash")
        top = rows[0]
        dest = to or path
        parts = names.split_path(dest)
        parent = self.makedirs("/" + "/".join(parts[:-1])) if len(parts) > 1 else None
        pino = parent.ino if parent is not None else ns.ROOT
        dname = names.encode(parts[-1])

        def apply(t: Txn) -> Inode:
            cur = t.version_by_id(top.id)
            if cur is None:
                raise NotFound(f"{path} is not in the trash any more")
            od, _, _ = self._live(t, raw)  # the caller must reach where it was, and own it, have removed it,
            if not self.cred.admin and self.cred.uid not in (cur.uid, cur.by_uid):  # or may write there
                if od is None:
                    raise NotPermitted("only its owner, the one who removed it, or the admin may restore it")
                perm.need(t, self.cred, od, A.WRITE_DATA, "restore into the directory it was in")
            d = ns.get_dir(t, pino)
            perm.may_search(t, self.cred, d)
            if t.lookup(pino, dname) is not None:
                raise Exists(f"{dest} exists: restore it elsewhere with --to")
            node = ns.get(t, cur.ino, kept=True)
            perm.may_add(t, self.cred, d, node.type == DIR)
            node = self._relink(t, cur, d, dname)
            if node.type == DIR:
                self._restore_children(t, raw, node, cur.replaced)
            return node
        return Attr.of(self._write(apply))

    def _restore_children(self, t: Txn, raw: bytes, d: Inode, before: int) -> None:
        lo = raw + b"/"
        rows = t.versions_under(lo, _next_prefix(lo), None, 1_000_000, ("version", "trash"))
        seen: set[bytes] = set()
        dirs: dict[bytes, Inode] = {raw: d}
        for r in sorted(rows, key=lambda r: (r.path.count(b"/"), r.path, -r.id)):
            if r.path in seen or not r.ino or r.reason not in ("delete", "rmdir") or r.replaced > before:
                continue
            seen.add(r.path)
            head, _, name = r.path.rpartition(b"/")
            parent = dirs.get(head)
            if parent is None or t.lookup(parent.ino, name) is not None:
                continue
            node = self._relink(t, r, parent, name)
            if node.type == DIR:
                dirs[r.path] = node

    def trash_empty(self, tree: str = "/", *, older_than_ns: int | None = None,
                    progress: Progress | None = None) -> tuple[int, int, int]:
        """Purge the trash under ``tree`` (entries removed before ``older_than_ns`` only, if given):
        (entries purged, bytes, entries kept because they are locked).  Needs the admin or, per entry, the
        right to remove it."""
        lo = _raw(tree) + b"/" if tree.strip("/") else b""
        done = nbytes = locked = 0
        after: tuple[bytes, int] | None = None
        with self._meta.read() as t:
            total = len(t.versions_under(lo, _next_prefix(lo), None, 10_000_000, ("trash",)))
        while True:
            with self._meta.read() as t:
                rows = t.versions_under(lo, _next_prefix(lo), after, 500, ("trash",))
            if not rows:
                break
            after = (rows[-1].path, rows[-1].id)
            picked = [r for r in rows if older_than_ns is None or r.replaced < older_than_ns]

            def apply(t: Txn, picked: list[VersionRow] = picked) -> tuple[int, int, int]:
                n = b = lk = 0
                for r in picked:
                    cur = t.version_by_id(r.id)
                    if cur is None:
                        continue
                    kept = t.inode(cur.ino) if cur.ino else None
                    if kept is not None and retention.get(t, kept).locked():
                        lk += 1
                        continue
                    if not self.cred.admin:
                        d, _, _ = self._live(t, cur.path, check=False)
                        self._may_drop(t, d, kept, cur)
                    versions.purge_row(t, cur)
                    n, b = n + 1, b + cur.size
                return n, b, lk
            n, b, lk = self._write(apply)
            done, nbytes, locked = done + n, nbytes + b, locked + lk
            if progress is not None:
                progress(done + locked, total)
        return done, nbytes, locked

    def expire_trash(self, now_ns: int | None = None, progress: Progress | None = None) -> tuple[int, int]:
        """The maintenance loop's pass: purge trash entries past their time, then the oldest entries of trees
        over their byte cap.  Locked entries wait for their retention.  (entries, bytes) purged; admin only."""
        if not self.cred.admin:
            raise NotPermitted("trash expiry is for the admin")
        now = now_ns or time.time_ns()
        done = nbytes = 0
        while True:
            with self._meta.read() as t:
                rows = t.expired_versions(now, 500)
            if not rows:
                break

            def drop(t: Txn, rows: list[VersionRow] = rows) -> tuple[int, int]:
                n = b = 0
                for r in rows:
                    kept = t.inode(r.ino) if r.ino else None
                    if kept is not None:
                        ret = retention.get(t, kept)
                        if ret.locked(now):
                            t.exec("UPDATE versions SET expires = ? WHERE id = ?",
                                   (max(ret.until_ns, now + versions.DAY_NS), r.id))
                            continue
                    versions.purge_row(t, r)
                    n, b = n + 1, b + r.size
                return n, b
            n, b = self._write(drop)
            done, nbytes = done + n, nbytes + b
            if progress is not None:
                progress(done, done)
            if n == 0:
                break
        with self._meta.read() as t:
            caps = []
            for tree, _count, used in t.trash_totals():
                pol = versions.policy(t, tree) if tree and t.inode(tree) is not None else None
                cap = pol.trash_bytes if pol is not None else int(t.info("trash_bytes") or 0)
                if cap and used > cap:
                    caps.append((tree, used - cap))
        for tree, excess in caps:
            while excess > 0:
                with self._meta.read() as t:
                    rows = t.oldest_trash(tree, 200)
                if not rows:
                    break

                def trim(t: Txn, rows: list[VersionRow] = rows, excess: int = excess) -> tuple[int, int]:
                    n = b = 0
                    for r in rows:
                        if b >= excess:
                            break
                        kept = t.inode(r.ino) if r.ino else None
                        if kept is not None and retention.get(t, kept).locked(now):
                            continue
                        versions.purge_row(t, r)
                        n, b = n + 1, b + r.size
                    return n, b
                n, b = self._write(trim)
                done, nbytes, excess = done + n, nbytes + b, excess - b
                if n == 0:
                    break
        return done, nbytes


__all__ = ["TrashOps"]
