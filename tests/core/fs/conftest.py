"""Run some core.fs suites on PostgreSQL metadata too (the ``pg`` variants; see tests/conftest.py)."""

from __future__ import annotations

import pytest

PG_SUITES = {"test_namespace", "test_files", "test_locks", "test_stateless", "test_smblocks"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    suite = metafunc.module.__name__.rsplit(".", 1)[-1]
    if suite in PG_SUITES and "meta_backend" in metafunc.fixturenames:
        metafunc.parametrize("meta_backend", ["sqlite", "pg"], indirect=True)
