"""Run some core.fs suites on PostgreSQL metadata too (the ``pg`` variants; see tests/conftest.py)."""

from __future__ import annotations

import pytest

PG_SUITES = {"test_namespace", "test_versions", "test_lifecycle", "test_files", "test_locks", "test_stateless",
             "test_smblocks", "test_perm", "test_dos_attrs", "test_compact", "test_names", "test_stage",
             "test_caseless"}

SQLITE_ONLY = {"test_fold_lookup_uses_the_index_in_a_big_directory"}  # reads SQLite's query plan


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    suite = metafunc.module.__name__.rsplit(".", 1)[-1]
    if suite in PG_SUITES and "meta_backend" in metafunc.fixturenames and metafunc.function.__name__ not in SQLITE_ONLY:
        metafunc.parametrize("meta_backend", ["sqlite", "pg"], indirect=True)
