"""A fixture for end-to-end SMB suites: the server logs no unexpected exception while a test runs.

The server answers bad requests with an NTSTATUS and closes connections that break the protocol,
logging those at INFO; an ERROR from ``tessera.smb`` (``log.exception`` in the frame loop or a
handler) means something escaped. Use it by importing it into a test module::

    from .serverlog import no_server_errors  # noqa: F401  (an autouse fixture)

Tests marked xfail are not checked (they may be about exactly such an error).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def no_server_errors(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO, logger="tessera.smb")
    yield
    if request.node.get_closest_marker("xfail") is None:
        assert_no_server_errors(caplog, caplog.get_records("setup") + caplog.get_records("call"))


def assert_no_server_errors(caplog: pytest.LogCaptureFixture, records: list[logging.LogRecord] | None = None) -> None:
    """Fail naming every ERROR record the server logged (``records``; default: this phase's so far)."""
    seen = caplog.records if records is None else records
    errors = [r for r in seen if r.name.startswith("tessera.smb") and r.levelno >= logging.ERROR]
    assert not errors, [f"{r.getMessage()}: {r.exc_info[1] if r.exc_info else ''}" for r in errors]
