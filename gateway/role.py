"""What every in-process ``serve --role <protocol>`` shares: the store check, the listen probe, SIGTERM/
SIGINT as a stop event, the store opened and closed, and a bind failure reported by config key.

``run_role(entry, cfg, paths, serve)`` calls ``serve(volume, stop)``, which serves until ``stop`` is
set (``gateway/nfs_role.py``, ``gateway/smb_role.py``).
"""

from __future__ import annotations

import errno
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from core.errors import StoreError
from core.fs import Volume
from core.store import is_store, open_store
from gateway import config as cfgmod
from gateway import listen
from gateway.protocols import Entry, Paths

BIND_ERRNOS = (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL)


def stop_on_signals(log: logging.Logger) -> threading.Event:
    """An event SIGTERM and SIGINT set (logged)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def run_role(entry: Entry, cfg: cfgmod.Config, paths: Paths, serve: Callable[[Volume, threading.Event], None],
             log: logging.Logger) -> int:
    """Serve one protocol in this process until SIGTERM or SIGINT. Returns the exit code."""
    if not is_store(paths.data_dir):
        raise StoreError(f"no Tessera store in {paths.data_dir} (run 'tessera init' first)")
    entry.probe(cfg)
    stop = stop_on_signals(log)
    store = open_store(paths.data_dir, threads=cfg.store.io_threads)
    try:
        serve(store, stop)
    except OSError as e:
        if e.errno in BIND_ERRNOS:
            raise listen.bind_error(entry.listen_key, entry.section(cfg).listen, e, entry.hint) from None
        raise
    finally:
        store.close()
    log.info("stopped")
    return 0
