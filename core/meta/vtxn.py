"""Versions, the trash can and tree policies in the metadata (schema 7): the ``trees`` and ``versions`` tables.

Mixed into :class:`core.meta.txn.Txn`; the rules (what is kept, when, for whom) live in
:mod:`core.fs.versions`.  A kept version is an ordinary inode with no name: its slices stay in
``slices``, so segment GC (which counts slice references) keeps its data without knowing about versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.meta.dbapi import Cursor

Row = tuple[Any, ...]

VERSION_COLS = ("id, path, vid, ino, kind, reason, tree, parent, type, size, uid, mtime, replaced, by_uid, "
                "by_name, expires")


@dataclass(slots=True)
class VersionRow:
    id: int
    path: bytes       # where it lived, from the store root, b'/'-joined, no leading b'/'
    vid: str          # the version id clients see ('null' for content made while versioning was off/suspended)
    ino: int          # the kept inode; 0 = a delete marker
    kind: str         # 'version' | 'marker' | 'trash'
    reason: str       # 'overwrite' | 'truncate' | 'delete' | 'rename' | 'rmdir' | 'restore'
    tree: int         # the tree whose policy kept it (0 = the store default)
    parent: int       # the directory it was in
    type: int
    size: int
    uid: int          # its owner
    mtime: int        # when its content was last written (a marker: when it was made)
    replaced: int     # when it stopped being current
    by_uid: int       # who replaced or removed it
    by_name: str
    expires: int | None  # trash: when the maintenance loop purges it; None = kept until purged

    @staticmethod
    def of(r: Row) -> VersionRow:
        return VersionRow(int(r[0]), bytes(r[1]), str(r[2]), int(r[3]), str(r[4]), str(r[5]), int(r[6]),
                          int(r[7]), int(r[8]), int(r[9]), int(r[10]), int(r[11]), int(r[12]), int(r[13]),
                          str(r[14]), None if r[15] is None else int(r[15]))


@dataclass(slots=True)
class TreeRow:
    ino: int
    versioning: str | None
    trash_days: float | None
    trash_bytes: int | None
    lock: str | None
    lifecycle: str | None


class VersionTxn:
    """Txn's version and tree-policy methods (Txn supplies the primitives below)."""

    if TYPE_CHECKING:  # Txn's own
        def one(self, sql: str, args: Sequence[Any] = ()) -> Row | None: ...
        def all(self, sql: str, args: Sequence[Any] = ()) -> list[Row]: ...
        def exec(self, sql: str, args: Sequence[Any] = ()) -> Cursor: ...
        memo: dict[Any, Any]

    # -- trees ----------------------------------------------------------------------
    def trees_of(self, inos: Sequence[int]) -> dict[int, TreeRow]:
        if not inos:
            return {}
        rows = self.all("SELECT ino, versioning, trash_days, trash_bytes, lock, lifecycle FROM trees "
                        f"WHERE ino IN ({', '.join('?' * len(inos))})", list(inos))
        return {int(r[0]): TreeRow(int(r[0]), r[1], None if r[2] is None else float(r[2]),
                                   None if r[3] is None else int(r[3]), r[4], r[5]) for r in rows}

    def all_trees(self) -> list[TreeRow]:
        rows = self.all("SELECT ino, versioning, trash_days, trash_bytes, lock, lifecycle FROM trees ORDER BY ino")
        return [TreeRow(int(r[0]), r[1], None if r[2] is None else float(r[2]),
                        None if r[3] is None else int(r[3]), r[4], r[5]) for r in rows]

    def tree_flags(self) -> tuple[bool, bool]:
        """(some tree has versioning enabled or suspended, some tree has an object-lock configuration), in one
        statement, remembered for the operation (:attr:`memo`)."""
        got = self.memo.get("tree_flags")
        if got is None:
            row = self.one("SELECT COALESCE(MAX(CASE WHEN versioning IN ('enabled', 'suspended') THEN 1 ELSE 0 END), "
                           "0), COALESCE(MAX(CASE WHEN lock IS NOT NULL THEN 1 ELSE 0 END), 0) FROM trees")
            got = self.memo["tree_flags"] = (bool(row and row[0]), bool(row and row[1]))
        return got  # type: ignore[no-any-return]

    def any_versioned_tree(self) -> bool:
        return self.tree_flags()[0]

    def any_lock_tree(self) -> bool:
        return self.tree_flags()[1]

    def lookup_any_name(self, ino: int) -> tuple[int, bytes] | None:
        """(parent, name) of one name of ``ino``, if it has any."""
        row = self.one("SELECT parent, name FROM dentries WHERE ino = ? LIMIT 1", (ino,))
        return None if row is None else (int(row[0]), bytes(row[1]))

    def set_tree(self, row: TreeRow, now: int) -> None:
        self.memo.clear()
        if all(v is None for v in (row.versioning, row.trash_days, row.trash_bytes, row.lock, row.lifecycle)):
            self.exec("DELETE FROM trees WHERE ino = ?", (row.ino,))
            return
        self.exec("INSERT INTO trees (ino, versioning, trash_days, trash_bytes, lock, lifecycle, updated) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ino) DO UPDATE SET versioning = excluded.versioning, "
                  "trash_days = excluded.trash_days, trash_bytes = excluded.trash_bytes, lock = excluded.lock, "
                  "lifecycle = excluded.lifecycle, updated = excluded.updated",
                  (row.ino, row.versioning, row.trash_days, row.trash_bytes, row.lock, row.lifecycle, now))

    def ancestry_trees(self, ino: int) -> tuple[list[tuple[int, int, bytes]] | None, dict[int, TreeRow],
                                                 dict[str, str]]:
        """:meth:`ancestry` of directory ``ino``, the tree rows of the chain and of the root, and the store's
        trash defaults (``info``), in two statements."""
        rows = [] if ino == 1 else self.all(
            "WITH RECURSIVE up(ino, parent, name, depth) AS ("
            " SELECT d.ino, d.parent, d.name, 0 FROM dentries d WHERE d.ino = ?"
            " UNION ALL SELECT d.ino, d.parent, d.name, up.depth + 1 FROM dentries d JOIN up ON d.ino = up.parent"
            " WHERE up.parent <> 1 AND up.depth < 4096"
            ") SELECT up.ino, up.parent, up.name, up.depth, t.versioning, t.trash_days, t.trash_bytes, t.lock, "
            "t.lifecycle, t.ino FROM up LEFT JOIN trees t ON t.ino = up.ino ORDER BY up.depth", (ino,))
        extra = self.all("SELECT 'tree', versioning, trash_days, trash_bytes, lock, lifecycle FROM trees WHERE ino = 1 "
                         "UNION ALL SELECT key, value, NULL, NULL, NULL, NULL FROM info "
                         "WHERE key IN ('trash_days', 'trash_bytes')")
        trees: dict[int, TreeRow] = {}
        info: dict[str, str] = {}
        for r in extra:
            if r[0] == "tree":
                trees[1] = TreeRow(1, r[1], None if r[2] is None else float(r[2]), None if r[3] is None else int(r[3]),
                                   r[4], r[5])
            else:
                info[str(r[0])] = str(r[1])
        chain: list[tuple[int, int, bytes]] = []
        for r in rows:
            if int(r[3]) != len(chain):
                continue
            i = int(r[0])
            chain.append((i, int(r[1]), bytes(r[2])))
            if r[9] is not None:
                trees[i] = TreeRow(i, r[4], None if r[5] is None else float(r[5]), None if r[6] is None else int(r[6]),
                                   r[7], r[8])
        if ino != 1 and (not chain or chain[-1][1] != 1):
            return None, trees, info
        return chain, trees, info

    def ancestry(self, ino: int) -> list[tuple[int, int, bytes]] | None:
        """(ino, parent, name) of ``ino`` and each directory above it up to the root's child, nearest first,
        in one statement; [] for the root; None when the chain does not reach the root (a directory no
        path reaches, such as a protocol's system directory)."""
        if ino == 1:
            return []
        rows = self.all(
            "WITH RECURSIVE up(ino, parent, name, depth) AS ("
            " SELECT d.ino, d.parent, d.name, 0 FROM dentries d WHERE d.ino = ?"
            " UNION ALL SELECT d.ino, d.parent, d.name, up.depth + 1 FROM dentries d JOIN up ON d.ino = up.parent"
            " WHERE up.parent <> 1 AND up.depth < 4096"
            ") SELECT ino, parent, name, depth FROM up ORDER BY depth", (ino,))
        out: list[tuple[int, int, bytes]] = []
        seen: set[int] = set()
        for r in rows:
            i = int(r[0])
            if i in seen or int(r[3]) != len(out):  # a hard-linked start (several names): keep the first chain
                continue
            seen.add(i)
            out.append((i, int(r[1]), bytes(r[2])))
        if not out or out[-1][1] != 1:
            return None
        return out

    # -- versions -------------------------------------------------------------------
    def add_version(self, v: VersionRow) -> int:
        rows = self.all(f"INSERT INTO versions ({VERSION_COLS.split(', ', 1)[1]}) VALUES "
                        f"({', '.join('?' * 15)}) RETURNING id",
                        (v.path, v.vid, v.ino, v.kind, v.reason, v.tree, v.parent, v.type, v.size, v.uid, v.mtime,
                         v.replaced, v.by_uid, v.by_name, v.expires))
        v.id = int(rows[0][0])
        return v.id

    def versions_at(self, path: bytes) -> list[VersionRow]:
        """Every kept row of ``path``, newest first."""
        rows = self.all(f"SELECT {VERSION_COLS} FROM versions WHERE path = ? ORDER BY id DESC", (path,))
        return [VersionRow.of(r) for r in rows]

    def version_by_vid(self, path: bytes, vid: str) -> VersionRow | None:
        row = self.one(f"SELECT {VERSION_COLS} FROM versions WHERE path = ? AND vid = ? ORDER BY id DESC LIMIT 1",
                       (path, vid))
        return None if row is None else VersionRow.of(row)

    def version_by_id(self, vid_row: int) -> VersionRow | None:
        row = self.one(f"SELECT {VERSION_COLS} FROM versions WHERE id = ?", (vid_row,))
        return None if row is None else VersionRow.of(row)

    def versions_under(self, lo: bytes, hi: bytes | None, after: tuple[bytes, int] | None, limit: int,
                       kinds: Sequence[str] = ("version", "marker", "trash")) -> list[VersionRow]:
        """Rows with ``lo <= path < hi`` (``hi`` None: no upper bound), by path then newest first, strictly
        after ``after`` = (path, id) in that order."""
        where = ["path >= ?"]
        args: list[Any] = [lo]
        if hi is not None:
            where.append("path < ?")
            args.append(hi)
        if after is not None:
            where.append("(path > ? OR (path = ? AND id < ?))")
            args += [after[0], after[0], after[1]]
        where.append(f"kind IN ({', '.join('?' * len(kinds))})")
        args += list(kinds)
        rows = self.all(f"SELECT {VERSION_COLS} FROM versions WHERE {' AND '.join(where)} "
                        "ORDER BY path, id DESC LIMIT ?", (*args, limit))
        return [VersionRow.of(r) for r in rows]

    def expired_versions(self, now: int, limit: int) -> list[VersionRow]:
        rows = self.all(f"SELECT {VERSION_COLS} FROM versions WHERE expires IS NOT NULL AND expires <= ? "
                        "ORDER BY expires LIMIT ?", (now, limit))
        return [VersionRow.of(r) for r in rows]

    def trash_totals(self) -> list[tuple[int, int, int]]:
        """(tree, count, bytes) of trash rows per tree."""
        rows = self.all("SELECT tree, COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM versions "
                        "WHERE kind = 'trash' GROUP BY tree")
        return [(int(a), int(b), int(c)) for a, b, c in rows]

    def oldest_trash(self, tree: int, limit: int) -> list[VersionRow]:
        rows = self.all(f"SELECT {VERSION_COLS} FROM versions WHERE kind = 'trash' AND tree = ? "
                        "ORDER BY replaced, id LIMIT ?", (tree, limit))
        return [VersionRow.of(r) for r in rows]

    def version_totals(self, lo: bytes, hi: bytes | None) -> list[tuple[str, int, int]]:
        """(kind, count, bytes) of the rows with ``lo <= path < hi``."""
        if hi is None:
            rows = self.all("SELECT kind, COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM versions "
                            "WHERE path >= ? GROUP BY kind", (lo,))
        else:
            rows = self.all("SELECT kind, COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM versions "
                            "WHERE path >= ? AND path < ? GROUP BY kind", (lo, hi))
        return [(str(a), int(b), int(c)) for a, b, c in rows]

    def drop_version_row(self, row_id: int) -> None:
        self.exec("DELETE FROM versions WHERE id = ?", (row_id,))

    def move_slices(self, src: int, dst: int) -> None:
        """Give every slice of inode ``src`` to inode ``dst`` (metadata only: the data stays where it is)."""
        self.exec("UPDATE slices SET ino = ? WHERE ino = ?", (dst, src))

    def copy_xattrs(self, src: int, dst: int) -> None:
        self.exec("INSERT INTO xattrs (ino, name, value) SELECT ?, name, value FROM xattrs WHERE ino = ?",
                  (dst, src))
