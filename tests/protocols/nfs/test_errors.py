"""The one CoreError -> nfsstat3 mapper: by type, most specific first."""

from core import errors as E
from protocols.nfs.errors import NFS3ERR_IO, NFS3ERR_JUKEBOX, nfsstat3


def test_metadata_failover_asks_the_client_to_retry() -> None:
    assert nfsstat3(E.MetaUnavailable("metadata database: connection lost")) == NFS3ERR_JUKEBOX
    assert nfsstat3(E.StoreError("store damaged")) == NFS3ERR_IO  # the parent class stays an I/O error
