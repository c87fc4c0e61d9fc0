"""Schema migrations: a store made by an older Tessera opens, its data preserved."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from core.errors import LockConflict
from core.identity import nt_hash
from core.meta.schema import MIGRATIONS, SCHEMA_VERSION
from core.meta.sqlite import SqliteMeta
from core.store import init_store, key_path, meta_path, open_store

# The users table as schema 1 created it (stores in the field have exactly this).
V1_USERS = """CREATE TABLE users (
        name TEXT PRIMARY KEY, uid INTEGER NOT NULL UNIQUE, gid INTEGER NOT NULL,
        access_key TEXT NOT NULL UNIQUE, secret_key TEXT NOT NULL, nt_hash BLOB,
        pw_hash TEXT, created INTEGER NOT NULL)"""
V1_USER_ROWS = [
    ("zed", 1002, 1002, "TSRZEDKEY00000000000", "zed-secret-0123456789", None, None, 3),
    ("alice", 1000, 100, "TSRALICEKEY000000000", "alice-secret-0123456789", nt_hash("pw"), "scrypt$a$b", 1),
    ("bob", 1001, 1001, "TSRBOBKEY00000000000", "bob-secret-0123456789", None, None, 2),
]


def test_schema_1_is_frozen() -> None:
    assert V1_USERS in MIGRATIONS[1] and sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION + 1))


def _v1_database(path: str) -> None:
    c = sqlite3.connect(path)
    for stmt in MIGRATIONS[1]:
        assert isinstance(stmt, str)
        c.execute(stmt)
    c.execute("INSERT INTO info (key, value) VALUES ('schema_version', '1')")
    c.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?)", V1_USER_ROWS)
    c.commit()
    c.close()


def test_v1_to_v2_keeps_users_and_turns_keys_into_rows(tmp_path: Path) -> None:
    p = str(tmp_path / "m.db")
    _v1_database(p)
    SqliteMeta(p).close()
    c = sqlite3.connect(p)
    assert c.execute("SELECT value FROM info WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    users = c.execute("SELECT name, uid, gid, admin, rid, nt_hash, pw_hash, created FROM users "
                      "ORDER BY name").fetchall()
    assert users == [("alice", 1000, 100, 0, 1000, nt_hash("pw"), "scrypt$a$b", 1),
                     ("bob", 1001, 1001, 0, 1001, None, None, 2),
                     ("zed", 1002, 1002, 0, 1002, None, None, 3)]  # RIDs in name order
    keys = c.execute("SELECT access_key, user_name, secret, status, created FROM user_keys "
                     "ORDER BY user_name").fetchall()
    assert keys == [(r[3], r[0], "plain:" + r[4], "active", r[7]) for r in sorted(V1_USER_ROWS)]
    cols = [r[1] for r in c.execute("PRAGMA table_info(users)")]
    assert "access_key" not in cols and "secret_key" not in cols
    info = dict(c.execute("SELECT key, value FROM info"))
    assert info["next_rid"] == "1003" and info["identity_epoch"] == "0"
    assert c.execute("SELECT COUNT(*) FROM groups").fetchone() == (0,)
    assert c.execute("SELECT COUNT(*) FROM group_members").fetchone() == (0,)
    c.close()


# What each schema after 2 added, to take away again (newest first) to make an older store.
UNDO = {
    7: ["DROP TABLE versions", "DROP TABLE trees", "DELETE FROM info WHERE key IN ('trash_days', 'trash_bytes')"],
    6: ["ALTER TABLE targets DROP COLUMN node", "DROP TABLE nodes"],
    5: ["ALTER TABLE locks DROP COLUMN smb_len", "ALTER TABLE locks DROP COLUMN smb_start"],
    4: ["DROP INDEX dentries_folded", "ALTER TABLE dentries DROP COLUMN folded"],
    3: ["ALTER TABLE inodes DROP COLUMN dos"],
}


def _undo_after(c: sqlite3.Connection, version: int) -> None:
    """Take away what schemas after ``version`` (>= 2) added."""
    assert sorted(UNDO) == list(range(3, SCHEMA_VERSION + 1))  # a new schema needs its undo here
    for v in range(SCHEMA_VERSION, version, -1):
        for stmt in UNDO[v]:
            c.execute(stmt)


def _downgrade_to_v1(data_dir: str) -> None:
    """Turn a fresh store into what schema 1 left on disk: old users table, no key file, 0644/0755."""
    c = sqlite3.connect(meta_path(data_dir))
    for t in ("users", "user_keys", "groups", "group_members"):
        c.execute(f"DROP TABLE {t}")
    c.execute(V1_USERS)
    c.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?)", V1_USER_ROWS)
    c.execute("DELETE FROM info WHERE key IN ('next_rid', 'identity_epoch', 'domain_sid')")
    c.execute("UPDATE info SET value = '1' WHERE key = 'schema_version'")
    c.execute("ALTER TABLE inodes DROP COLUMN flags")  # schema 2 added it
    _undo_after(c, 2)
    c.commit()
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    os.unlink(key_path(data_dir))
    os.chmod(os.path.dirname(meta_path(data_dir)), 0o755)
    for sfx in ("", "-wal", "-shm"):
        if os.path.exists(meta_path(data_dir) + sfx):
            os.chmod(meta_path(data_dir) + sfx, 0o644)


def test_v1_store_opens_with_keys_working_and_secrets_sealed(tmp_path: Path) -> None:
    d = str(tmp_path / "store")
    init_store(d, targets=[f"mem:{i}" for i in range(6)], cell=64 * 1024)
    _downgrade_to_v1(d)
    with open_store(d) as s:
        ident = s.identity
        for name, uid, gid, ak, sk, _, _, _ in V1_USER_ROWS:
            m = ident.lookup_key(ak)
            assert m is not None and (m.name, m.uid, m.gid, m.secret_key) == (name, uid, gid, sk)
        assert ident.check_password("alice", "pw") is False  # the stored hash was a placeholder...
        assert ident.user("alice").nt_hash == nt_hash("pw")  # type: ignore[union-attr]  # ...kept as it was
        assert ident.domain_sid.startswith("S-1-5-21-")
        new, _ = ident.add_user("carol")
        assert new.rid == 1003 and new.uid == 1003
        raw = b"".join(Path(meta_path(d) + sfx).read_bytes() for sfx in ("", "-wal")
                       if os.path.exists(meta_path(d) + sfx))
        for row in V1_USER_ROWS:  # a copy taken while it runs: sealed, and no schema-1 copies left over
            assert row[4].encode() not in raw
    assert stat.S_IMODE(os.stat(key_path(d)).st_mode) == 0o600  # made on first open
    assert stat.S_IMODE(os.stat(os.path.dirname(meta_path(d))).st_mode) == 0o700
    for sfx in ("", "-wal", "-shm"):
        if os.path.exists(meta_path(d) + sfx):
            assert stat.S_IMODE(os.stat(meta_path(d) + sfx).st_mode) == 0o600
    with open_store(d) as s:  # a second open changes nothing
        assert s.identity.resealed == 0 and s.identity.lookup_key(V1_USER_ROWS[0][3]) is not None


def _downgrade(data_dir: str, version: int) -> None:
    c = sqlite3.connect(meta_path(data_dir))
    _undo_after(c, version)
    c.execute("UPDATE info SET value = ? WHERE key = 'schema_version'", (str(version),))
    c.commit()
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()


def test_v2_store_gains_dos_attributes(tmp_path: Path) -> None:
    d = str(tmp_path / "store")
    init_store(d, targets=[f"mem:{i}" for i in range(6)], cell=64 * 1024)
    with open_store(d) as s:
        f = s.fs.write_file(s.fs.root, "f", b"kept")
        s.fs.setattr(f.ino, btime_ns=77)
    _downgrade(d, 2)
    c = sqlite3.connect(meta_path(d))
    assert "dos" not in [r[1] for r in c.execute("PRAGMA table_info(inodes)")]
    c.close()
    with open_store(d) as s:
        a = s.fs.getattr(f.ino)
        assert (a.dos, a.btime_ns, a.size) == (None, 77, 4)  # never set; the rest as it was
        assert s.fs.setattr(f.ino, dos=0x2).dos == 0x2
        assert s.fs.read(f.ino, 0, 4) == b"kept"
    c = sqlite3.connect(meta_path(d))
    assert c.execute("SELECT value FROM info WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    c.close()


def test_v3_store_gains_the_folded_index(tmp_path: Path) -> None:
    d = str(tmp_path / "store")
    init_store(d, targets=[f"mem:{i}" for i in range(6)], cell=64 * 1024)
    with open_store(d) as s:
        fs = s.fs
        sub = fs.mkdir(fs.root, "Docs")
        inos = {n: fs.create(sub.ino, n).ino for n in ("Readme.TXT", "Straße", "caf\u00e9", "x", "X")}
    _downgrade(d, 3)
    c = sqlite3.connect(meta_path(d))
    assert "folded" not in [r[1] for r in c.execute("PRAGMA table_info(dentries)")]
    c.close()
    with open_store(d) as s:
        fs = s.fs
        assert fs.resolve_entry("/DOCS/readme.txt", fold=True) == ("/Docs/Readme.TXT", fs.getattr(inos["Readme.TXT"]))
        assert fs.lookup(sub.ino, "STRASSE", fold=True).ino == inos["Straße"]
        assert fs.lookup(sub.ino, "CAFE\u0301", fold=True).ino == inos["caf\u00e9"]
        assert fs.lookup(sub.ino, "X", fold=True).ino == inos["X"]  # exact still wins
        assert fs.lookup(sub.ino, "x", fold=True).ino == inos["x"]
        fs.create(sub.ino, "New")  # new entries get their key too
        assert fs.lookup(sub.ino, "NEW", fold=True).is_file
    c = sqlite3.connect(meta_path(d))
    assert c.execute("SELECT COUNT(*) FROM dentries WHERE folded IS NULL").fetchone() == (0,)
    assert c.execute("SELECT name FROM sqlite_master WHERE name = 'dentries_folded'").fetchone() is not None
    c.close()


def test_v4_store_gains_smb_lock_columns_and_keeps_its_locks(tmp_path: Path) -> None:
    d = str(tmp_path / "store")
    init_store(d, targets=[f"mem:{i}" for i in range(6)], cell=64 * 1024)
    with open_store(d) as s:
        f = s.fs.create(s.fs.root, "f")
        s.fs.lock(f.ino, "nlm:1", 0, 100, exclusive=True)
    _downgrade(d, 4)
    c = sqlite3.connect(meta_path(d))
    assert "smb_start" not in [r[1] for r in c.execute("PRAGMA table_info(locks)")]
    c.close()
    with open_store(d) as s:
        with pytest.raises(LockConflict):
            s.fs.lock(f.ino, "nlm:2", 50, 1, exclusive=False)  # the lock taken before the upgrade holds
        s.fs.smb_lock(f.ino, "smb:1", 100, 10, exclusive=True)
        assert [(lk.owner, lk.smb) for lk in s.fs.locks(f.ino)] == [("nlm:1", False), ("smb:1", True)]
        assert s.fs.smb_test_lock(f.ino, "smb:2", 50, 1, exclusive=False) is not None
