"""Txn: the portable SQL behind the MetaStore interface.

A Txn wraps one DB-API connection inside one transaction.  Methods are small
and typed; POSIX rules live in core.fs, which composes them.  Only ``?``
placeholders are used; a PostgreSQL store rewrites them to ``%s``
(:mod:`core.meta.pgsql`).  New ids come back through ``INSERT ... RETURNING``
(SQLite >= 3.35 and PostgreSQL alike); ``dialect`` picks the one statement of
each pair that cannot be portable (see :meth:`Txn.segment_id_high`).

A PostgreSQL write batch may be run again after a serialization failure, so a
Txn remembers the inodes whose number :meth:`insert_inode` assigned
(``inserted``); the store gives them back their number 0 before a re-run, so
the re-run draws fresh numbers exactly as the first run did.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from core.meta.dbapi import PG, SQLITE, Conn, Cursor
from core.meta.fold import fold
from core.meta.idtxn import IdentityTxn
from core.meta.nodetxn import NodeTxn
from core.meta.types import INODE_COLS, Inode, SegmentInfo, Slice, TargetInfo
from core.meta.vtxn import VersionTxn

Row = tuple[Any, ...]

# A case-insensitive lookup: one search of the (parent, folded) index; the exact name wins, then byte order.
SEGMENT_SETTLE_S = 600  # PostgreSQL: a segment row older than this is committed or gone (see segment_id_high)

FOLD_LOOKUP_SQL = ("SELECT ino, type, id, name FROM dentries WHERE parent = ? AND folded = ? "
                   "ORDER BY name <> ?, name LIMIT 1")


class Txn(IdentityTxn, NodeTxn, VersionTxn):
    """The identity methods (users, groups, S3 keys) come from ``core.meta.idtxn``, cluster membership from
    ``core.meta.nodetxn``, versions and tree policies from ``core.meta.vtxn``."""

    def __init__(self, conn: Conn, dialect: str = SQLITE) -> None:
        self.conn = conn
        self.dialect = dialect
        self.inserted: list[Inode] = []  # inodes numbered by insert_inode in this transaction
        self.memo: dict[Any, Any] = {}  # lookups one operation repeats (tree policies); cleared per operation

    # -- primitives -----------------------------------------------------------------
    def one(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self.conn.execute(sql, args).fetchone()
        return row

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        return list(self.conn.execute(sql, args).fetchall())

    def exec(self, sql: str, args: Sequence[Any] = ()) -> Cursor:
        return self.conn.execute(sql, args)

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    # -- info -----------------------------------------------------------------------
    def info(self, key: str) -> str | None:
        row = self.one("SELECT value FROM info WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    def set_info(self, key: str, value: str) -> None:
        self.exec("INSERT INTO info (key, value) VALUES (?, ?) "
                  "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    # -- inodes ---------------------------------------------------------------------
    def inode(self, ino: int) -> Inode | None:
        row = self.one(f"SELECT {INODE_COLS} FROM inodes WHERE ino = ?", (ino,))
        return None if row is None else Inode(*row)

    def insert_inode(self, node: Inode) -> int:
        cols = INODE_COLS.split(", ")[1:]
        vals = [getattr(node, c) for c in cols]
        if node.ino:  # an explicit number (the root)
            self.exec(f"INSERT INTO inodes ({INODE_COLS}) VALUES ({', '.join('?' * (len(cols) + 1))})",
                      [node.ino, *vals])
            if self.dialect == PG:  # keep the identity sequence past it (never backwards: see pgsql)
                self.exec("SELECT setval('inodes_ino_seq', ?) FROM inodes_ino_seq "
                          "WHERE NOT is_called OR last_value < ?", (node.ino, node.ino))
            return node.ino
        rows = self.all(f"INSERT INTO inodes ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                        "RETURNING ino", vals)
        node.ino = int(rows[0][0])
        if self.dialect == PG:  # only a PostgreSQL batch runs again (and its Txn lives for one try)
            self.inserted.append(node)
        return node.ino

    def update_inode(self, node: Inode) -> None:
        cols = INODE_COLS.split(", ")[1:]
        self.exec(f"UPDATE inodes SET {', '.join(c + ' = ?' for c in cols)} WHERE ino = ?",
                  [*(getattr(node, c) for c in cols), node.ino])

    def delete_inode(self, ino: int) -> None:
        self.exec("DELETE FROM inodes WHERE ino = ?", (ino,))
        self.exec("DELETE FROM slices WHERE ino = ?", (ino,))
        self.exec("DELETE FROM xattrs WHERE ino = ?", (ino,))
        self.exec("DELETE FROM locks WHERE ino = ?", (ino,))
        self.exec("DELETE FROM opens WHERE ino = ?", (ino,))

    def count_inodes(self) -> int:
        row = self.one("SELECT COUNT(*) FROM inodes")
        return int(row[0]) if row else 0

    # -- dentries -------------------------------------------------------------------
    def lookup_inode(self, parent: int, name: bytes) -> Inode | None:
        """The inode ``name`` in ``parent`` names, in one statement."""
        cols = ", ".join("i." + c for c in INODE_COLS.split(", "))
        row = self.one(f"SELECT {cols} FROM dentries d JOIN inodes i ON i.ino = d.ino "
                       "WHERE d.parent = ? AND d.name = ?", (parent, name))
        return None if row is None else Inode(*row)

    def lookup_with_parent(self, parent: int, name: bytes) -> tuple[Inode | None, Inode | None]:
        """(the directory, the inode ``name`` names in it) in one statement (a permission-checked lookup)."""
        n = len(INODE_COLS.split(", "))
        pcols = ", ".join("p." + c for c in INODE_COLS.split(", "))
        icols = ", ".join("i." + c for c in INODE_COLS.split(", "))
        row = self.one(f"SELECT {pcols}, {icols} FROM inodes p LEFT JOIN dentries d ON d.parent = p.ino "
                       "AND d.name = ? LEFT JOIN inodes i ON i.ino = d.ino WHERE p.ino = ?", (name, parent))
        if row is None:
            return None, None
        return Inode(*row[:n]), (Inode(*row[n:]) if row[n] is not None else None)

    def lookup(self, parent: int, name: bytes) -> tuple[int, int, int] | None:
        """(ino, type, cookie) of ``name`` in ``parent``."""
        row = self.one("SELECT ino, type, id FROM dentries WHERE parent = ? AND name = ?", (parent, name))
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]))

    def lookup_folded(self, parent: int, name: bytes) -> tuple[int, int, int, bytes] | None:
        """(ino, type, cookie, stored name) of the entry whose name equals ``name`` under case folding
        (:mod:`core.meta.fold`); an exact match wins over others that differ only by case."""
        row = self.one(FOLD_LOOKUP_SQL, (parent, fold(name), name))
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]), bytes(row[3]))

    def add_dentry(self, parent: int, name: bytes, ino: int, kind: int) -> None:
        self.exec("INSERT INTO dentries (parent, name, ino, type, folded) VALUES (?, ?, ?, ?, ?)",
                  (parent, name, ino, kind, fold(name)))

    def remove_dentry(self, parent: int, name: bytes, now: int) -> None:
        row = self.one("SELECT id FROM dentries WHERE parent = ? AND name = ?", (parent, name))
        if row is None:
            return
        self.exec("DELETE FROM dentries WHERE id = ?", (row[0],))
        self.exec("INSERT INTO dentry_tombs (id, parent, name, at) VALUES (?, ?, ?, ?)",
                  (row[0], parent, name, now))

    def move_dentry(self, parent: int, name: bytes, new_parent: int, new_name: bytes, now: int) -> None:
        """Rename a dentry in place (it keeps its cookie inside one directory)."""
        row = self.one("SELECT id, ino, type FROM dentries WHERE parent = ? AND name = ?", (parent, name))
        if row is None:
            return
        if new_parent == parent:
            self.exec("INSERT INTO dentry_tombs (id, parent, name, at) VALUES (?, ?, ?, ?)",
                      (-int(row[0]), parent, name, now))
            self.exec("UPDATE dentries SET name = ?, folded = ? WHERE id = ?", (new_name, fold(new_name), row[0]))
        else:
            self.remove_dentry(parent, name, now)
            self.add_dentry(new_parent, new_name, int(row[1]), int(row[2]))

    def has_children(self, parent: int) -> bool:
        return self.one("SELECT 1 FROM dentries WHERE parent = ? LIMIT 1", (parent,)) is not None

    def cookie_name(self, parent: int, cookie: int) -> bytes | None:
        """The name a readdir cookie stood for, even if the entry is gone."""
        row = self.one("SELECT name FROM dentries WHERE id = ? AND parent = ?", (cookie, parent))
        if row is None:
            row = self.one("SELECT name FROM dentry_tombs WHERE id = ? AND parent = ?", (cookie, parent))
        return None if row is None else bytes(row[0])

    def list_dir(self, parent: int, after: bytes | None, limit: int) -> list[tuple[bytes, int, int, int]]:
        """(name, ino, type, cookie) in byte order of name, strictly after ``after``."""
        if after is None:
            rows = self.all("SELECT name, ino, type, id FROM dentries WHERE parent = ? "
                            "ORDER BY name LIMIT ?", (parent, limit))
        else:
            rows = self.all("SELECT name, ino, type, id FROM dentries WHERE parent = ? AND name > ? "
                            "ORDER BY name LIMIT ?", (parent, after, limit))
        return [(bytes(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows]

    def prune_tombs(self, before: int) -> None:
        self.exec("DELETE FROM dentry_tombs WHERE at < ?", (before,))

    # -- slices ---------------------------------------------------------------------
    def slices(self, ino: int, first_chunk: int, last_chunk: int) -> list[Slice]:
        rows = self.all("SELECT id, chunk, off, len, segment, seg_off FROM slices "
                        "WHERE ino = ? AND chunk BETWEEN ? AND ? ORDER BY chunk, id",
                        (ino, first_chunk, last_chunk))
        return [Slice(*r) for r in rows]

    def inodes(self, inos: Sequence[int]) -> dict[int, Inode]:
        """Several inodes in one statement."""
        if not inos:
            return {}
        rows = self.all(f"SELECT {INODE_COLS} FROM inodes WHERE ino IN ({', '.join('?' * len(inos))})", inos)
        return {int(r[0]): Inode(*r) for r in rows}

    def slices_of(self, inos: Sequence[int]) -> dict[int, list[Slice]]:
        """All slices of several files in one statement."""
        out: dict[int, list[Slice]] = {i: [] for i in inos}
        if not inos:
            return out
        rows = self.all("SELECT ino, id, chunk, off, len, segment, seg_off FROM slices WHERE ino IN "
                        f"({', '.join('?' * len(inos))}) ORDER BY ino, chunk, id", inos)
        for r in rows:
            out[int(r[0])].append(Slice(*r[1:]))
        return out

    def add_slices(self, ino: int, slices: Iterable[tuple[int, int, int, int, int]]) -> None:
        """Append (chunk, off, len, segment, seg_off) slices; later rows win."""
        self.many("INSERT INTO slices (ino, chunk, off, len, segment, seg_off) VALUES (?, ?, ?, ?, ?, ?)",
                  [(ino, *s) for s in slices])

    def delete_slices(self, ino: int, from_chunk: int = 0) -> None:
        self.exec("DELETE FROM slices WHERE ino = ? AND chunk >= ?", (ino, from_chunk))

    def delete_slice(self, slice_id: int) -> None:
        self.exec("DELETE FROM slices WHERE id = ?", (slice_id,))

    def trim_slice(self, slice_id: int, new_len: int) -> None:
        self.exec("UPDATE slices SET len = ? WHERE id = ?", (new_len, slice_id))

    def chunk_stats(self, min_slices: int) -> list[tuple[int, int, int]]:
        """(ino, chunk, count) of chunks with at least ``min_slices`` slices."""
        rows = self.all("SELECT ino, chunk, COUNT(*) FROM slices GROUP BY ino, chunk "
                        "HAVING COUNT(*) >= ?", (min_slices,))
        return [(int(a), int(b), int(c)) for a, b, c in rows]

    # -- xattrs ---------------------------------------------------------------------
    def xattr(self, ino: int, name: str) -> bytes | None:
        row = self.one("SELECT value FROM xattrs WHERE ino = ? AND name = ?", (ino, name))
        return None if row is None else bytes(row[0])

    def set_xattr(self, ino: int, name: str, value: bytes) -> None:
        self.exec("INSERT INTO xattrs (ino, name, value) VALUES (?, ?, ?) "
                  "ON CONFLICT (ino, name) DO UPDATE SET value = excluded.value", (ino, name, value))

    def remove_xattr(self, ino: int, name: str) -> bool:
        return self.exec("DELETE FROM xattrs WHERE ino = ? AND name = ?", (ino, name)).rowcount > 0

    def xattr_values(self, ino: int, names: Sequence[str]) -> dict[str, bytes]:
        """Several attributes of one inode in one statement (those that exist)."""
        if not names:
            return {}
        rows = self.all(f"SELECT name, value FROM xattrs WHERE ino = ? AND name IN ({', '.join('?' * len(names))})",
                        (ino, *names))
        return {str(r[0]): bytes(r[1]) for r in rows}

    def xattrs(self, ino: int) -> list[str]:
        return [str(r[0]) for r in self.all("SELECT name FROM xattrs WHERE ino = ? ORDER BY name", (ino,))]

    # -- targets and segments -------------------------------------------------------
    def targets(self) -> list[TargetInfo]:
        rows = self.all("SELECT id, path, state, weight, domain, node FROM targets ORDER BY id")
        return [TargetInfo(int(a), str(b), str(c), float(d), str(e), str(f)) for a, b, c, d, e, f in rows]

    def add_target(self, path: str, weight: float, domain: str, now: int, node: str = "") -> int:
        row = self.one("SELECT COALESCE(MAX(id), -1) + 1 FROM targets")
        tid = int(row[0]) if row else 0
        self.exec("INSERT INTO targets (id, path, state, weight, domain, added, node) VALUES (?, ?, 'ok', ?, ?, ?, ?)",
                  (tid, path, weight, domain, now, node))
        return tid

    def set_target_weight(self, tid: int, weight: float) -> None:
        self.exec("UPDATE targets SET weight = ? WHERE id = ?", (weight, tid))

    def set_target_state(self, tid: int, state: str) -> None:
        self.exec("UPDATE targets SET state = ? WHERE id = ?", (state, tid))

    def segment(self, sid: int) -> SegmentInfo | None:
        row = self.one("SELECT id, k, m, cell, state, owner, nstripes, capacity FROM segments WHERE id = ?",
                       (sid,))
        if row is None:
            return None
        tg = self.all("SELECT target FROM shards WHERE segment = ? ORDER BY idx", (sid,))
        return SegmentInfo(int(row[0]), int(row[1]), int(row[2]), int(row[3]), str(row[4]), str(row[5]),
                           int(row[6]), int(row[7]), tuple(int(t[0]) for t in tg))

    def segments(self, where: str = "1 = 1", args: Sequence[Any] = ()) -> list[SegmentInfo]:
        ids = [int(r[0]) for r in self.all(f"SELECT id FROM segments WHERE {where} ORDER BY id", args)]
        return [s for s in (self.segment(i) for i in ids) if s is not None]

    def new_segment(self, k: int, m: int, cell: int, owner: str, capacity: int, now: int) -> int:
        rows = self.all("INSERT INTO segments (k, m, cell, state, owner, nstripes, capacity, created) "
                        "VALUES (?, ?, ?, 'open', ?, 0, ?, ?) RETURNING id", (k, m, cell, owner, capacity, now))
        return int(rows[0][0])

    def set_shards(self, sid: int, targets: Sequence[int]) -> None:
        self.exec("DELETE FROM shards WHERE segment = ?", (sid,))
        self.many("INSERT INTO shards (segment, idx, target) VALUES (?, ?, ?)",
                  [(sid, i, t) for i, t in enumerate(targets)])

    def bump_stripes(self, sid: int, nstripes: int) -> None:
        self.exec("UPDATE segments SET nstripes = ? WHERE id = ? AND nstripes < ?", (nstripes, sid, nstripes))

    def seal_segment(self, sid: int) -> None:
        self.exec("UPDATE segments SET state = 'sealed' WHERE id = ?", (sid,))

    def delete_segment(self, sid: int) -> None:
        self.exec("DELETE FROM segments WHERE id = ?", (sid,))
        self.exec("DELETE FROM shards WHERE segment = ?", (sid,))
        self.exec("DELETE FROM repairs WHERE segment = ?", (sid,))

    def segment_id_high(self) -> int:
        """The highest segment id handed out (ids are never reused) such that no segment at or below it can
        still appear uncommitted: GC removes shard files of unknown segments at or below it.

        SQLite commits one writer at a time, so its sequence is exactly that.  PostgreSQL hands out ids
        before commit and commits them in any order, so there it is the highest id of a segment created
        more than SEGMENT_SETTLE_S ago (a conservative bound: shards of segments deleted above it wait)."""
        if self.dialect == PG:
            row = self.one("SELECT COALESCE(MAX(id), 0) FROM segments WHERE created < ?",
                           (time.time_ns() - SEGMENT_SETTLE_S * 1_000_000_000,))
            return int(row[0]) if row else 0
        row = self.one("SELECT seq FROM sqlite_sequence WHERE name = 'segments'")
        return int(row[0]) if row else 0

    def segment_refs(self, sid: int) -> int:
        row = self.one("SELECT COUNT(*) FROM slices WHERE segment = ?", (sid,))
        return int(row[0]) if row else 0

    def segment_live_bytes(self) -> dict[int, int]:
        return {int(s): int(b) for s, b in self.all("SELECT segment, CAST(SUM(len) AS BIGINT) FROM slices "
                                                      "GROUP BY segment")}

    def add_repair(self, sid: int, stripe: int, idx: int) -> None:
        self.exec("INSERT INTO repairs (segment, stripe, idx) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                  (sid, stripe, idx))

    def repairs(self) -> list[tuple[int, int, int]]:
        return [(int(a), int(b), int(c)) for a, b, c in self.all("SELECT segment, stripe, idx FROM repairs")]

    def clear_repair(self, sid: int, stripe: int, idx: int) -> None:
        self.exec("DELETE FROM repairs WHERE segment = ? AND stripe = ? AND idx = ?", (sid, stripe, idx))
