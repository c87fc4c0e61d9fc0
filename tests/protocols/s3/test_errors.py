"""The one CoreError -> S3 error mapper: by type, never by message."""

from core import errors as E
from protocols.s3.errors import from_core


def test_metadata_failover_is_a_retryable_503() -> None:
    e = from_core(E.MetaUnavailable("metadata database: connection lost"))
    assert (e.code, e.status) == ("ServiceUnavailable", 503)
    assert from_core(E.StoreError("store damaged")).status == 500
