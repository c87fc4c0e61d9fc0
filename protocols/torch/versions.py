"""Reading a file as it was: checkpoints (and fsspec files) at an earlier version.

When a tree keeps versions (``tessera versioning DIR enable``) or the trash is on (new stores keep
replaced and deleted files 1 day), saving a checkpoint over an older one keeps the older content as a
version of the path, metadata only.  A bad save is then undone by loading the one before::

    ck = TesseraCheckpoint("tessera:///ckpt/run1", data="/srv/tessera")
    ck.versions("latest.pt")                   # newest first: the live file, then kept versions
    state = ck.load("latest.pt", version=1)    # the content before the last save

``version`` picks one of :meth:`CoreBackend.versions` (only versions with content: the live file, kept
versions and trash entries of a regular file, newest first; delete markers are left out):

* an ``int`` n: the n-th newest (0: the current content, 1: the one before it, ...);
* a ``str``: a version id (``VersionInfo.vid``; in a tree that never had versioning enabled every id is
  ``null``, so pick by position or by the ``VersionInfo`` itself);
* a :class:`core.fs.VersionInfo` from that list.

A pinned version is read by its inode through ``fs.reading_versions()`` (the caller's permissions, as
for any read): :class:`PinnedVersion` is a read-only :class:`~protocols.torch.backend.Backend` whose
``size``/``read``/``readinto`` go to that inode whatever the path says, so the checkpoint reader reads
it as it reads the live file.  The fsspec filesystem (:mod:`protocols.torch.fs`) takes the same versions
as ``tessera:///path?versionId=ID`` or ``version_id=ID`` (``~N`` for the int form).  Only ``tessera://``
has versions here; the S3 backend refuses (NotImplementedError).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from core.errors import CoreError
from core.fs import FileType, VersionInfo
from protocols.torch.backend import Backend, CoreBackend
from protocols.torch.errors import os_error

Version = int | str | VersionInfo


def versions(backend: Backend, path: str) -> list[VersionInfo]:
    """The versions of ``path`` that have content, newest first."""
    core = _core(backend)
    try:
        vs = core.fs.versions(path)
    except CoreError as e:
        raise os_error(e, f"tessera://{path}") from None
    return [v for v in vs if v.ino and v.type == FileType.REG]


def pick(backend: Backend, path: str, version: Version) -> VersionInfo:
    """The version ``version`` of ``path`` (see the module docstring); FileNotFoundError if there is none."""
    if isinstance(version, VersionInfo):
        if version.path.rstrip("/") != "/" + path.strip("/"):
            raise ValueError(f"version {version.vid} is of {version.path}, not of {path}")
        return version
    vs = versions(backend, path)
    if isinstance(version, int) and not isinstance(version, bool):
        if not 0 <= version < len(vs):
            raise FileNotFoundError(f"tessera://{path}: no version {version} back ({len(vs)} with content)")
        return vs[version]
    if isinstance(version, str):
        hits = [v for v in vs if v.vid == version]
        hits.sort(key=lambda v: v.kind == "trash")  # as fs.version: a real version before a trash entry
        if not hits:
            raise FileNotFoundError(f"tessera://{path}: no version {version!r}")
        return hits[0]
    raise TypeError(f"version must be an int, a version id or a VersionInfo, not {type(version).__name__}")


def _core(backend: Backend) -> CoreBackend:
    if isinstance(backend, PinnedVersion):
        return backend.core
    if not isinstance(backend, CoreBackend):
        raise NotImplementedError(f"{backend.uri('')}: reading earlier versions needs tessera:// (core.fs)")
    return backend


@dataclass
class PinnedVersion:
    """One version of one file as a read-only Backend (reads ignore the path they are given)."""

    core: CoreBackend
    info: VersionInfo
    _fs: Any = field(default=None, repr=False, compare=False)

    @property
    def fs(self) -> Any:
        if self._fs is None:
            self._fs = self.core.fs.reading_versions()
        return self._fs

    def _err(self, e: CoreError) -> OSError:
        return os_error(e, self.uri(self.info.path))

    def uri(self, path: str) -> str:
        return f"tessera://{self.info.path}?versionId={quote(self.info.vid)}"

    def list(self, prefix: str, pattern: str | None = None) -> list[tuple[str, int]]:
        return [(self.info.path, self.info.size)]

    def size(self, path: str) -> int:
        try:
            return int(self.fs.getattr(self.info.ino).size)
        except CoreError as e:
            raise self._err(e) from None

    def read(self, path: str, off: int, n: int) -> bytes:
        try:
            return bytes(self.fs.read(self.info.ino, off, n))
        except CoreError as e:
            raise self._err(e) from None

    def readinto(self, path: str, off: int, buf: memoryview) -> int:
        try:
            return int(self.fs.read_committed(self.info.ino, off, buf))
        except CoreError as e:
            raise self._err(e) from None

    def write(self, path: str, chunks: Iterable[bytes]) -> None:
        raise PermissionError(f"{self.uri(path)}: a kept version is read-only")


def pin(backend: Backend, path: str, version: Version) -> PinnedVersion:
    """A Backend reading version ``version`` of ``path``."""
    return PinnedVersion(_core(backend), pick(backend, path, version))


__all__ = ["PinnedVersion", "Version", "VersionInfo", "pick", "pin", "versions"]
