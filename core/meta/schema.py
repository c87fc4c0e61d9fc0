"""Metadata schema, version 7, and its migrations.

The SQL is kept portable (no SQLite-only types or upserts beyond
``ON CONFLICT``), so the PostgreSQL MetaStore can run the same statements:
it translates the column types of CREATE TABLE / ADD COLUMN (INTEGER ->
BIGINT, BLOB -> BYTEA, REAL -> DOUBLE PRECISION, TEXT -> TEXT COLLATE "C",
INTEGER PRIMARY KEY AUTOINCREMENT -> an identity column; :mod:`core.meta.pgsql`)
and nothing else.  A migration step is a statement, or a Python function of a
DB-API connection (:class:`core.meta.dbapi.Conn`, ``?`` placeholders on both
engines) for what SQL cannot compute (such as a Unicode case fold).

Tables
------
``info``       key/value: schema version, store uuid, geometry, sizes.
``targets``    one row per target directory (state ``ok`` or ``failed``).
``segments``   k+m shard files; ``state`` open/sealed, ``owner`` the writing
               process, ``nstripes`` the committed high-water mark.
``shards``     segment shard index -> target (the recorded placement).
``inodes``     attributes; ``inline_data`` holds small files; ``parent`` is a
               directory's ``..``; times are nanoseconds; ``flags`` bit 1 = the
               inode has an ACL (xattr ``system.tessera.acl``), so permission
               checks of the many inodes without one need no second lookup;
               ``dos`` the FILE_ATTRIBUTE_* bits an SMB client set and keeps
               (READONLY, HIDDEN, SYSTEM, ARCHIVE, ...), NULL when none ever
               did (the SMB layer then derives them from the mode bits).
``dentries``   (parent, name) -> inode; ``id`` is the readdir cookie; ``folded``
               is the name's case-folded key (:mod:`core.meta.fold`), indexed
               with the parent, for case-insensitive lookup without a scan.
``dentry_tombs`` cookies of removed entries, so a readdir resumes after them.
``slices``     file chunk -> segment range; a higher ``id`` wins on overlap.
``xattrs``     extended attributes.
``users``      identities: uid, primary gid, admin flag, RID (the SID is the
               store's domain SID + RID), NT hash, password hash.
``groups``     name, gid, RID; ``group_members`` (group, user) supplementary
               memberships.
``user_keys``  S3 key pairs: access key, user, the secret sealed with the store
               key (core.identity.secretbox), status active/disabled.
``locks``      byte-range locks; ``opens`` share modes (both name the process).
               ``start_off``/``end_off`` is the range every protocol compares
               (signed 64-bit, end 2**63-1 = to end of file); an SMB lock also
               keeps its exact unsigned 64-bit ``smb_start``/``smb_len``
               (stored wrapped to signed), NULL for POSIX locks
               (:mod:`core.fs.smblocks` explains the mapping).
``repairs``    cells found bad by reads, for scrub/repair.
``nodes``      cluster members (version 6): name, the target server's
               ``host:port``, the node's service endpoints (JSON: s3, admin, ...),
               state ``up``/``draining``/``removed``, ``heartbeat`` (ns, written
               by the node every few seconds), ``joined``.  ``targets.node``
               names the node a target's disk is on ('' on a one-node store:
               all targets are local).
``trees``      (version 7) per-directory-tree policy: ``versioning`` off/enabled/suspended,
               ``trash_days`` (0 = no trash) and ``trash_bytes`` (0 = no cap), ``lock`` (object-lock
               configuration, JSON) and ``lifecycle`` (rules, JSON); NULL = inherit from the nearest
               ancestor tree, then the store default (``info`` keys ``trash_days``/``trash_bytes``).
``versions``   (version 7) kept content: one row per noncurrent version, delete marker or trash entry.
               ``path`` is where it lived (from the store root, ``/``-joined, no leading ``/``), ``ino``
               the kept inode (its slices stay referenced, so GC keeps its data; 0 = a delete marker),
               ``kind`` version/marker/trash, ``reason`` overwrite/truncate/delete/rename/rmdir,
               ``replaced`` when it stopped being current and ``by_uid``/``by_name`` who did it,
               ``expires`` when the trash lets it go (NULL = until purged).  See :mod:`core.fs.versions`.
"""

from __future__ import annotations

from collections.abc import Callable

from core.meta.dbapi import Conn
from core.meta.fold import fold

Step = str | Callable[[Conn], None]

SCHEMA_VERSION = 7

# Version 1.  A released version is never edited: stores in the field were made with it.
V1 = [
    "CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE targets (
        id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, state TEXT NOT NULL,
        weight REAL NOT NULL, domain TEXT NOT NULL, added INTEGER NOT NULL)""",
    """CREATE TABLE segments (
        id INTEGER PRIMARY KEY AUTOINCREMENT, k INTEGER NOT NULL, m INTEGER NOT NULL,
        cell INTEGER NOT NULL, state TEXT NOT NULL, owner TEXT NOT NULL,
        nstripes INTEGER NOT NULL, capacity INTEGER NOT NULL, created INTEGER NOT NULL)""",
    """CREATE TABLE shards (
        segment INTEGER NOT NULL, idx INTEGER NOT NULL, target INTEGER NOT NULL,
        PRIMARY KEY (segment, idx))""",
    "CREATE INDEX shards_target ON shards (target)",
    """CREATE TABLE inodes (
        ino INTEGER PRIMARY KEY AUTOINCREMENT, gen INTEGER NOT NULL, type INTEGER NOT NULL,
        mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,
        nlink INTEGER NOT NULL, size INTEGER NOT NULL, rdev INTEGER NOT NULL,
        atime INTEGER NOT NULL, mtime INTEGER NOT NULL, ctime INTEGER NOT NULL,
        btime INTEGER NOT NULL, parent INTEGER NOT NULL, symlink BLOB, inline_data BLOB)""",
    """CREATE TABLE dentries (
        id INTEGER PRIMARY KEY AUTOINCREMENT, parent INTEGER NOT NULL, name BLOB NOT NULL,
        ino INTEGER NOT NULL, type INTEGER NOT NULL)""",
    "CREATE UNIQUE INDEX dentries_name ON dentries (parent, name)",
    "CREATE INDEX dentries_ino ON dentries (ino)",
    """CREATE TABLE dentry_tombs (
        id INTEGER PRIMARY KEY, parent INTEGER NOT NULL, name BLOB NOT NULL, at INTEGER NOT NULL)""",
    """CREATE TABLE slices (
        id INTEGER PRIMARY KEY AUTOINCREMENT, ino INTEGER NOT NULL, chunk INTEGER NOT NULL,
        off INTEGER NOT NULL, len INTEGER NOT NULL, segment INTEGER NOT NULL,
        seg_off INTEGER NOT NULL)""",
    "CREATE INDEX slices_chunk ON slices (ino, chunk, id)",
    "CREATE INDEX slices_segment ON slices (segment)",
    """CREATE TABLE xattrs (
        ino INTEGER NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (ino, name))""",
    """CREATE TABLE users (
        name TEXT PRIMARY KEY, uid INTEGER NOT NULL UNIQUE, gid INTEGER NOT NULL,
        access_key TEXT NOT NULL UNIQUE, secret_key TEXT NOT NULL, nt_hash BLOB,
        pw_hash TEXT, created INTEGER NOT NULL)""",
    """CREATE TABLE locks (
        id INTEGER PRIMARY KEY AUTOINCREMENT, ino INTEGER NOT NULL, owner TEXT NOT NULL,
        proc TEXT NOT NULL, start_off INTEGER NOT NULL, end_off INTEGER NOT NULL,
        exclusive INTEGER NOT NULL)""",
    "CREATE INDEX locks_ino ON locks (ino)",
    """CREATE TABLE opens (
        id INTEGER PRIMARY KEY AUTOINCREMENT, ino INTEGER NOT NULL, owner TEXT NOT NULL,
        proc TEXT NOT NULL, access INTEGER NOT NULL, share INTEGER NOT NULL)""",
    "CREATE INDEX opens_ino ON opens (ino)",
    """CREATE TABLE repairs (
        segment INTEGER NOT NULL, stripe INTEGER NOT NULL, idx INTEGER NOT NULL,
        PRIMARY KEY (segment, stripe, idx))""",
]

# Version 2: one identity for every protocol.  Users lose their single key pair
# (it becomes a row of user_keys, its secret marked ``plain:`` until the
# identity service seals it on open) and gain an admin flag and a RID; groups,
# memberships and the identity counters arrive.  The users table is rebuilt
# (SQLite cannot drop a UNIQUE column); RIDs of existing users follow name order.
V2 = [
    """CREATE TABLE users_v2 (
        name TEXT PRIMARY KEY, uid INTEGER NOT NULL UNIQUE, gid INTEGER NOT NULL,
        admin INTEGER NOT NULL, rid INTEGER NOT NULL UNIQUE, nt_hash BLOB, pw_hash TEXT,
        created INTEGER NOT NULL)""",
    """INSERT INTO users_v2 (name, uid, gid, admin, rid, nt_hash, pw_hash, created)
        SELECT u.name, u.uid, u.gid, 0, 1000 + (SELECT COUNT(*) FROM users o WHERE o.name < u.name),
               u.nt_hash, u.pw_hash, u.created FROM users u""",
    """CREATE TABLE user_keys (
        access_key TEXT PRIMARY KEY, user_name TEXT NOT NULL, secret TEXT NOT NULL,
        status TEXT NOT NULL, created INTEGER NOT NULL)""",
    "CREATE INDEX user_keys_user ON user_keys (user_name)",
    """INSERT INTO user_keys (access_key, user_name, secret, status, created)
        SELECT access_key, name, 'plain:' || secret_key, 'active', created FROM users""",
    "DROP TABLE users",
    "ALTER TABLE users_v2 RENAME TO users",
    """CREATE TABLE groups (
        name TEXT PRIMARY KEY, gid INTEGER NOT NULL UNIQUE, rid INTEGER NOT NULL UNIQUE,
        created INTEGER NOT NULL)""",
    """CREATE TABLE group_members (
        group_name TEXT NOT NULL, user_name TEXT NOT NULL, PRIMARY KEY (group_name, user_name))""",
    "CREATE INDEX group_members_user ON group_members (user_name)",
    "INSERT INTO info (key, value) SELECT 'next_rid', CAST(1000 + COUNT(*) AS TEXT) FROM users",
    "INSERT INTO info (key, value) VALUES ('identity_epoch', '0')",
    "ALTER TABLE inodes ADD COLUMN flags INTEGER NOT NULL DEFAULT 0",
]

# Version 3: DOS attributes per inode (SMB), kept without touching the data; NULL = never set.
V3 = [
    "ALTER TABLE inodes ADD COLUMN dos INTEGER",
]



def _fill_folded(conn: Conn, batch: int = 10_000) -> None:
    """Give every existing dentry its folded key (in id order, a batch at a time)."""
    last = 0
    while True:
        rows = conn.execute("SELECT id, name FROM dentries WHERE id > ? ORDER BY id LIMIT ?", (last, batch)).fetchall()
        if not rows:
            return
        conn.executemany("UPDATE dentries SET folded = ? WHERE id = ?", [(fold(bytes(n)), i) for i, n in rows])
        last = rows[-1][0]


# Version 4: case-insensitive lookup (SMB shares) through an index on each entry's folded name.
V4: list[Step] = [
    "ALTER TABLE dentries ADD COLUMN folded BLOB",
    _fill_folded,
    "CREATE INDEX dentries_folded ON dentries (parent, folded)",
]

# Version 5: SMB byte-range locks (stacking, exact unlock, unsigned 64-bit ranges) in the same locks table.
V5 = [
    "ALTER TABLE locks ADD COLUMN smb_start INTEGER",
    "ALTER TABLE locks ADD COLUMN smb_len INTEGER",
]

# Version 6: the cluster: members and the node each target lives on.
V6 = [
    """CREATE TABLE nodes (
        name TEXT PRIMARY KEY, addr TEXT NOT NULL, endpoints TEXT NOT NULL, state TEXT NOT NULL,
        heartbeat INTEGER NOT NULL, joined INTEGER NOT NULL)""",
    "ALTER TABLE targets ADD COLUMN node TEXT NOT NULL DEFAULT ''",
]

# Version 7: versions, the trash can, retention and lifecycle (core.fs.versions).
V7 = [
    """CREATE TABLE trees (
        ino INTEGER PRIMARY KEY, versioning TEXT, trash_days REAL, trash_bytes INTEGER, lock TEXT,
        lifecycle TEXT, updated INTEGER NOT NULL)""",
    """CREATE TABLE versions (
        id INTEGER PRIMARY KEY AUTOINCREMENT, path BLOB NOT NULL, vid TEXT NOT NULL, ino INTEGER NOT NULL,
        kind TEXT NOT NULL, reason TEXT NOT NULL, tree INTEGER NOT NULL, parent INTEGER NOT NULL,
        type INTEGER NOT NULL, size INTEGER NOT NULL, uid INTEGER NOT NULL, mtime INTEGER NOT NULL,
        replaced INTEGER NOT NULL, by_uid INTEGER NOT NULL, by_name TEXT NOT NULL, expires INTEGER)""",
    "CREATE INDEX versions_path ON versions (path, id)",
    "CREATE INDEX versions_expires ON versions (expires)",
    "INSERT INTO info (key, value) VALUES ('trash_days', '0')",
    "INSERT INTO info (key, value) VALUES ('trash_bytes', '0')",
]

# version -> steps that bring the schema from version-1 to version.
MIGRATIONS: dict[int, list[Step]] = {1: list(V1), 2: list(V2), 3: list(V3), 4: V4, 5: list(V5), 6: list(V6),
                                     7: list(V7)}
