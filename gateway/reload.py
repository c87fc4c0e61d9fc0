"""Config-file lists that follow edits: NFS exports, SMB shares.

A :class:`Watched` is the callable a protocol server asks for its current list (``nfs.exports``,
``smb.shares``). It re-reads ``tessera.yaml`` when the file changes (mtime, ctime, size or inode: an
editor's rename counts), so an edit applies without a restart; an invalid edit is logged once and the
previous list kept. One ``stat`` per call; thread-safe.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "tessera.yaml")
>>> with open(path, "w") as f:
...     _ = f.write("nfs:\\n  workers: 2\\n")
>>> w = Watched(path, [2], lambda cfg: [cfg.nfs.workers], "nfs workers", lambda ws: [str(w) for w in ws])
>>> w()
(2,)
>>> with open(path, "w") as f:
...     _ = f.write("nfs:\\n  workers: 33\\n")
>>> w()
(33,)
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from core.errors import ConfigError
from gateway import config as cfgmod

T = TypeVar("T")
Stamp = tuple[int, int, int, int] | None

log = logging.getLogger("tessera.reload")


def stamp(path: str) -> Stamp:
    """What tells a changed file: (mtime, ctime, size, inode), None when it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino


class Watched(Generic[T]):
    """The current value of ``pick(config)`` for the config file at ``path`` (see the module docstring).

    ``what`` names the list in log lines (``nfs exports reloaded: ...``, ``smb shares not reloaded, the
    previous ones stay: ...``); ``describe`` turns it into words for them.
    """

    def __init__(self, path: str, current: Sequence[T], pick: Callable[[cfgmod.Config], Sequence[T]], what: str,
                 describe: Callable[[Sequence[T]], list[str]], logger: logging.Logger = log) -> None:
        self.path = path
        self._items: tuple[T, ...] = tuple(current)
        self._pick, self._what, self._describe, self._log = pick, what, describe, logger
        self._stamp = stamp(path)
        self._lock = threading.Lock()

    def __call__(self) -> Sequence[T]:
        now = stamp(self.path)
        if now != self._stamp:
            with self._lock:
                if now != self._stamp:
                    self._stamp = now  # an invalid edit is reported once, not on every call
                    self._reload()
        return self._items

    def _reload(self) -> None:
        try:
            new = tuple(self._pick(cfgmod.load(self.path)))
        except ConfigError as e:
            self._log.error("%s not reloaded, the previous ones stay: %s", self._what, e, extra={"config": self.path})
            return
        if new != self._items:
            self._log.info("%s reloaded: %s", self._what, "; ".join(self._describe(new)) or "none",
                           extra={"config": self.path})
            self._items = new
