"""``tessera serve --role nfs``: the NFS server (NFSv3, MOUNT, NLM, NSM) in this process.

The exports come from the config file and follow it: :class:`ExportsWatcher` is the callable the NFS
server asks for the current exports; it re-reads ``tessera.yaml`` when the file changes, so an edit of
``nfs.exports`` applies without a restart, and an invalid edit is logged and the previous exports kept.
Other ``nfs:`` keys (listen, udp, workers...) apply at the next start.
"""

from __future__ import annotations

import errno
import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from core.errors import StoreError
from core.store import is_store, open_store
from gateway import config as cfgmod
from gateway import listen
from gateway.protocols import NFS, Paths
from gateway.reload import Watched
from protocols.nfs.exports import Export

log = logging.getLogger("tessera.nfs")


def describe(exports: Sequence[Export]) -> list[str]:
    """Exports for a log line.

    >>> describe([Export.build("/data", ["10.0.0.0/8"], "ro", "all")])
    ['/data 10.0.0.0/8 ro squash=all']
    """
    return [f"{e.path} {','.join(e.clients)} {e.access} squash={e.squash}" for e in exports]


class ExportsWatcher(Watched[Export]):
    """The current ``nfs.exports`` of a config file, re-read whenever the file changes (see
    :class:`gateway.reload.Watched`)."""

    def __init__(self, path: str, exports: Sequence[Export]) -> None:
        super().__init__(path, exports, lambda cfg: cfg.nfs.built_exports(), "nfs exports", describe, log)


def run(cfg: cfgmod.Config, paths: Paths) -> int:
    """Serve NFS on ``cfg.nfs.listen`` until SIGTERM or SIGINT. Returns the exit code."""
    if not is_store(paths.data_dir):
        raise StoreError(f"no Tessera store in {paths.data_dir} (run 'tessera init' first)")
    NFS.probe(cfg)
    from protocols.nfs.service import NfsSettings
    from protocols.nfs.service import run as serve_nfs
    host, port = cfgmod.parse_listen(cfg.nfs.listen)
    settings = NfsSettings(host=host, port=port, udp=cfg.nfs.udp, rpcbind=cfg.nfs.rpcbind,
                           workers=cfg.nfs.workers, grace_s=cfg.nfs.grace_s)
    exports = ExportsWatcher(paths.config, cfg.nfs.built_exports())
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    store = open_store(paths.data_dir, threads=cfg.store.io_threads)
    try:
        serve_nfs(store, settings, exports, stop)
    except OSError as e:
        if e.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise listen.bind_error(NFS.listen_key, cfg.nfs.listen, e, NFS.hint) from None
        raise
    finally:
        store.close()
    log.info("stopped")
    return 0
