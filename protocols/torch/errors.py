"""The PyTorch adapter's one CoreError mapper: core errors become the OSErrors Python code expects.

>>> from core.errors import PermissionDenied
>>> type(os_error(PermissionDenied("no"), "tessera:///x")).__name__
'PermissionError'
"""

from __future__ import annotations

from core import errors as ce


def os_error(e: ce.CoreError, where: str) -> OSError:
    if isinstance(e, ce.NotFound | ce.Stale):
        return FileNotFoundError(e.errno, f"{where}: no such file")
    if isinstance(e, ce.PermissionDenied | ce.NotPermitted):
        return PermissionError(e.errno, f"{where}: {e}")
    if isinstance(e, ce.IsADirectory):
        return IsADirectoryError(e.errno, f"{where}: is a directory")
    if isinstance(e, ce.NotADirectory):
        return NotADirectoryError(e.errno, f"{where}: not a directory")
    if isinstance(e, ce.Exists):
        return FileExistsError(e.errno, f"{where}: exists")
    return OSError(e.errno, f"{where}: {e}")
