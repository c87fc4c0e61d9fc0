"""Metadata schema, version 1, and its migrations.

The SQL is kept portable (no SQLite-only types or upserts beyond
``ON CONFLICT``), so the PostgreSQL MetaStore can run the same statements.

Tables
------
``info``       key/value: schema version, store uuid, geometry, sizes.
``targets``    one row per target directory (state ``ok`` or ``failed``).
``segments``   k+m shard files; ``state`` open/sealed, ``owner`` the writing
               process, ``nstripes`` the committed high-water mark.
``shards``     segment shard index -> target (the recorded placement).
``inodes``     attributes; ``inline_data`` holds small files; ``parent`` is a
               directory's ``..``; times are nanoseconds.
``dentries``   (parent, name) -> inode; ``id`` is the readdir cookie.
``dentry_tombs`` cookies of removed entries, so a readdir resumes after them.
``slices``     file chunk -> segment range; a higher ``id`` wins on overlap.
``xattrs``     extended attributes.
``users``      identities: uid/gid, S3 keys, NT hash, password hash.
``locks``      byte-range locks; ``opens`` share modes (both name the process).
``repairs``    cells found bad by reads, for scrub/repair.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

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

# version -> statements that bring the schema from version-1 to version.
MIGRATIONS: dict[int, list[str]] = {1: V1}
