"""Opening a store: its metadata files are private and S3 secrets need the key file."""

from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path

import pytest

from core.store import Store, init_store, key_path, meta_path, open_store


def _mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _meta_files(d: str) -> list[str]:
    return [p for p in (meta_path(d) + sfx for sfx in ("", "-wal", "-shm")) if os.path.exists(p)]


def test_init_makes_private_metadata(tmp_path: Path) -> None:
    old = os.umask(0o022)  # what a shell usually has: files 0644 unless made private
    try:
        d = str(tmp_path / "store")
        init_store(d, targets=[f"mem:{i}" for i in range(6)], cell=64 * 1024)
        with open_store(d) as s:
            s.identity.add_user("alice")
            assert len(_meta_files(d)) == 3  # the WAL and its index exist while it is open
            assert all(_mode(p) == 0o600 for p in _meta_files(d))
        assert _mode(os.path.dirname(meta_path(d))) == 0o700
        assert _mode(key_path(d)) == 0o600 and os.path.getsize(key_path(d)) == 32
    finally:
        os.umask(old)


def test_open_fixes_modes_of_older_stores(mem_store: Store) -> None:
    d = mem_store.data_dir
    os.chmod(os.path.dirname(meta_path(d)), 0o755)
    for p in [*_meta_files(d), key_path(d)]:
        os.chmod(p, 0o644)
    with open_store(d):
        pass
    assert _mode(os.path.dirname(meta_path(d))) == 0o700
    assert all(_mode(p) == 0o600 for p in [*_meta_files(d), key_path(d)])


def test_copied_metadata_without_the_key_file_gives_no_secrets(mem_store: Store, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    _, pair = mem_store.identity.add_user("alice")
    assert pair is not None
    d = mem_store.data_dir
    raw = b"".join(Path(p).read_bytes() for p in _meta_files(d))
    assert pair.access_key.encode() in raw and pair.secret_key.encode() not in raw  # sealed at rest
    copy = str(tmp_path / "copy")
    os.makedirs(os.path.join(copy, "meta"))
    for p in _meta_files(d):
        shutil.copy(p, os.path.join(copy, "meta", os.path.basename(p)))
    with caplog.at_level(logging.WARNING, "tessera.identity"), open_store(copy) as s:
        assert os.path.exists(key_path(copy))  # a new key, not the original one
        assert s.identity.user("alice") is not None  # the accounts are there...
        assert s.identity.lookup_key(pair.access_key) is None  # ...their S3 secrets are not
    assert "store key other than this store.key" in caplog.text
    with open_store(d) as s:  # the original, with its key file, still works
        m = s.identity.lookup_key(pair.access_key)
        assert m is not None and m.secret_key == pair.secret_key
