"""Case-insensitive lookup through the (parent, folded) index: what SMB's case-insensitive shares use."""

from __future__ import annotations

import sqlite3

import pytest

from core.errors import Exists, NotFound, PermissionDenied
from core.fs import namespace as ns
from core.fs.fs import FileSystem
from core.fs.types import REG, Cred
from core.meta.txn import FOLD_LOOKUP_SQL, Txn
from core.store import Store, meta_path


@pytest.fixture
def fs(mem_store: Store) -> FileSystem:
    return mem_store.fs


def test_fold_lookup_finds_other_case_and_names_it(fs: FileSystem) -> None:
    f = fs.create(fs.root, "Readme.TXT")
    with pytest.raises(NotFound):
        fs.lookup(fs.root, "README.txt")  # exact by default (NFS, S3, POSIX)
    assert fs.lookup(fs.root, "README.txt", fold=True).ino == f.ino
    assert fs.lookup_entry(fs.root, "readme.txt", fold=True) == ("Readme.TXT", fs.getattr(f.ino))
    assert fs.lookup_entry(fs.root, "Readme.TXT")[0] == "Readme.TXT"
    with pytest.raises(NotFound):
        fs.lookup(fs.root, "readme.txt.bak", fold=True)
    with pytest.raises(NotFound):
        fs.lookup_entry(fs.root, "readme.tx", fold=True)


def test_unicode_folding_and_normalisation(fs: FileSystem) -> None:
    a = fs.create(fs.root, "Straße")
    b = fs.create(fs.root, "caf\u00e9")  # precomposed
    c = fs.create(fs.root, "ΟΔΟΣ")
    assert fs.lookup(fs.root, "STRASSE", fold=True).ino == a.ino
    assert fs.lookup(fs.root, "CAFE\u0301", fold=True).ino == b.ino  # decomposed, as macOS sends it
    assert fs.lookup(fs.root, "οδος", fold=True).ino == c.ino  # final sigma folds as sigma
    assert fs.lookup(fs.root, "ΟΔΟς", fold=True).ino == c.ino
    raw = fs.create(fs.root, "bad\udcff")  # not UTF-8: folds by its ASCII part only
    assert fs.lookup(fs.root, "BAD\udcff", fold=True).ino == raw.ino


def test_exact_name_wins_then_byte_order(fs: FileSystem) -> None:
    made = {n: fs.create(fs.root, n).ino for n in ("foo", "Foo", "FOO")}
    for n, ino in made.items():
        assert fs.lookup(fs.root, n, fold=True).ino == ino
    assert fs.lookup_entry(fs.root, "fOO", fold=True)[0] == "FOO"  # b"FOO" < b"Foo" < b"foo"
    fs.unlink(fs.root, "FOO")
    assert fs.lookup_entry(fs.root, "fOO", fold=True)[0] == "Foo"


def test_rename_and_unlink_keep_the_key_right(fs: FileSystem) -> None:
    d = fs.mkdir(fs.root, "Dir")
    f = fs.create(fs.root, "old")
    fs.rename(fs.root, "old", fs.root, "NewName")  # same directory
    assert fs.lookup(fs.root, "newname", fold=True).ino == f.ino
    with pytest.raises(NotFound):
        fs.lookup(fs.root, "OLD", fold=True)
    fs.rename(fs.root, "NewName", d.ino, "Moved.Txt")  # to another directory
    assert fs.lookup_entry(d.ino, "MOVED.TXT", fold=True) == ("Moved.Txt", fs.getattr(f.ino))
    with pytest.raises(NotFound):
        fs.lookup(fs.root, "newname", fold=True)
    fs.rename(d.ino, "Moved.Txt", d.ino, "moved.txt")  # a case-only rename
    assert fs.lookup_entry(d.ino, "MOVED.TXT", fold=True)[0] == "moved.txt"
    fs.link(f.ino, fs.root, "HardLink")
    assert fs.lookup(fs.root, "hardlink", fold=True).ino == f.ino
    fs.unlink(d.ino, "moved.txt")
    with pytest.raises(NotFound):
        fs.lookup(d.ino, "MOVED.TXT", fold=True)
    w = fs.write_file(fs.root, "Put.bin", b"x")
    assert fs.lookup(fs.root, "PUT.BIN", fold=True).ino == w.ino


def test_resolve_with_fold_and_stored_path(fs: FileSystem) -> None:
    d = fs.makedirs("/Docs/Sub")
    f = fs.create(d.ino, "File.txt")
    with pytest.raises(NotFound):
        fs.resolve("/docs/SUB/file.TXT")
    assert fs.resolve("/docs/SUB/file.TXT", fold=True).ino == f.ino
    assert fs.resolve_entry("/DOCS/sub/FILE.TXT", fold=True) == ("/Docs/Sub/File.txt", fs.getattr(f.ino))
    assert fs.resolve_entry("/", fold=True)[0] == "/"
    assert fs.resolve_parent("/docs/sub/new.txt", fold=True) == (d.ino, "new.txt")
    with pytest.raises(NotFound):
        fs.resolve_entry("/Docs/Nope/File.txt", fold=True)


def test_fold_lookup_checks_search_permission(fs: FileSystem) -> None:
    d = fs.mkdir(fs.root, "Private", 0o700)
    fs.create(d.ino, "Secret")
    other = fs.as_user(Cred(1500, 1500, name="eve"))
    with pytest.raises(PermissionDenied):
        other.lookup(d.ino, "SECRET", fold=True)
    with pytest.raises(PermissionDenied):
        other.resolve_entry("/private/secret", fold=True)


def test_create_with_fold_treats_case_variants_as_the_same_name(fs: FileSystem) -> None:
    f = fs.create(fs.root, "Report.doc")
    with pytest.raises(Exists):
        fs.create(fs.root, "REPORT.DOC", fold=True)
    assert fs.create(fs.root, "report.doc", exclusive=False, fold=True).ino == f.ino  # open-if: that file
    with pytest.raises(Exists):
        fs.mkdir(fs.root, "report.DOC", fold=True)
    assert fs.create(fs.root, "REPORT.DOC").ino != f.ino  # without fold, POSIX clients may make both
    fs.mkdir(fs.root, "Folder")
    with pytest.raises(Exists):
        fs.mkdir(fs.root, "FOLDER", fold=True)


def _steps(conn: sqlite3.Connection, parent: int, name: bytes) -> int:
    """SQLite virtual-machine steps one fold lookup takes (a scan grows with the directory, an index does not)."""
    from core.meta.fold import fold

    n = [0]

    def tick() -> int:
        n[0] += 1
        return 0
    conn.set_progress_handler(tick, 1)
    row = conn.execute(FOLD_LOOKUP_SQL, (parent, fold(name), name)).fetchone()
    conn.set_progress_handler(None, 1)
    assert row is not None
    return n[0]


def test_fold_lookup_uses_the_index_in_a_big_directory(mem_store: Store) -> None:
    fs = mem_store.fs
    big = fs.mkdir(fs.root, "Big")
    small = fs.mkdir(fs.root, "Small")

    def fill(t: Txn) -> None:
        for i in range(10_000):
            ns.add_entry(t, fs.cred, big.ino, f"Entry-{i:05d}.DAT".encode(), ns.new_inode(REG, 0o644, 0, 0))
        for i in range(10):
            ns.add_entry(t, fs.cred, small.ino, f"Entry-{i:05d}.DAT".encode(), ns.new_inode(REG, 0o644, 0, 0))
    fs._meta.write(fill)
    assert fs.lookup_entry(big.ino, "entry-09999.dat", fold=True)[0] == "Entry-09999.DAT"
    conn = sqlite3.connect(meta_path(mem_store.data_dir))
    try:
        plan = " ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + FOLD_LOOKUP_SQL, (1, b"x", b"x")))
        assert "dentries_folded" in plan and "SCAN" not in plan.replace("TEMP B-TREE", ""), plan
        in_big = _steps(conn, big.ino, b"ENTRY-07777.dat")
        in_small = _steps(conn, small.ino, b"ENTRY-00007.dat")
        assert in_big < 2 * in_small + 50, (in_big, in_small)  # a scan of 10,000 rows would be ~100,000 steps
    finally:
        conn.close()
