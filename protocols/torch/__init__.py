"""PyTorch dataset adapter: datasets, checkpoints, DCP storage and an fsspec filesystem.

Importing connects to nothing; each process opens the store (or makes its S3
client) on first use.  Needs torch: ``pip install 'tessera[torch]'``.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised only without torch
    raise ImportError("protocols.torch needs PyTorch: pip install 'tessera[torch]'") from e

from protocols.torch.checkpoint import TesseraCheckpoint
from protocols.torch.dataset import TesseraIterableDataset, TesseraMapDataset
from protocols.torch.dcp import TesseraStorageReader, TesseraStorageWriter
from protocols.torch.fs import TesseraFileSystem
from protocols.torch.reader import LazyReader

__all__ = ["LazyReader", "TesseraCheckpoint", "TesseraFileSystem", "TesseraIterableDataset", "TesseraMapDataset",
           "TesseraStorageReader", "TesseraStorageWriter"]
