"""torch.distributed.checkpoint storage on Tessera: ``tessera:///path`` or ``s3://bucket/prefix``.

Built on torch's own fsspec StorageWriter/StorageReader over the ``tessera``
fsspec filesystem (or s3fs for S3 endpoints), so each rank writes its files in
parallel and the metadata file is published by rename.
"""

from __future__ import annotations

import os
from typing import Any

from torch.distributed.checkpoint._fsspec_filesystem import FsspecReader, FsspecWriter


def _options(path: str, data: str | None, endpoint: str | None, key: str | None, secret: str | None,
             region: str | None) -> dict[str, Any]:
    if path.startswith("tessera://"):
        store = data or os.environ.get("TESSERA_DATA")
        if not store:
            raise ValueError(f"{path}: say where the store is (data=DIR or $TESSERA_DATA)")
        return {"data": store}
    if path.startswith("s3://"):
        opts: dict[str, Any] = {"client_kwargs": {"region_name": region or "us-east-1"}}
        if endpoint:
            opts["endpoint_url"] = endpoint
        if key:
            opts["key"], opts["secret"] = key, secret
        return opts
    raise ValueError(f"{path}: expected tessera:///path or s3://bucket/prefix")


class TesseraStorageWriter(FsspecWriter):  # type: ignore[misc]
    def __init__(self, path: str, *, data: str | None = None, endpoint: str | None = None, key: str | None = None,
                 secret: str | None = None, region: str | None = None, thread_count: int = 4,
                 single_file_per_rank: bool = True, sync_files: bool = True, **kw: Any) -> None:
        super().__init__(path, single_file_per_rank=single_file_per_rank, sync_files=sync_files,
                         thread_count=thread_count, **kw, **_options(path, data, endpoint, key, secret, region))


class TesseraStorageReader(FsspecReader):  # type: ignore[misc]
    def __init__(self, path: str, *, data: str | None = None, endpoint: str | None = None, key: str | None = None,
                 secret: str | None = None, region: str | None = None, **kw: Any) -> None:
        super().__init__(path, **kw, **_options(path, data, endpoint, key, secret, region))
