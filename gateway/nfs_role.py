"""``tessera serve --role nfs``: the NFS server (NFSv3, MOUNT, NLM, NSM) in this process.

The exports come from the config file and follow it: :class:`ExportsWatcher` is the callable the NFS
server asks for the current exports; it re-reads ``tessera.yaml`` when the file changes, so an edit of
``nfs.exports`` applies without a restart, and an invalid edit is logged and the previous exports kept.
Other ``nfs:`` keys (listen, udp, workers...) apply at the next start.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from gateway import config as cfgmod
from gateway.protocols import NFS, Paths
from gateway.reload import Watched
from gateway.role import run_role
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
    from protocols.nfs.service import NfsSettings
    from protocols.nfs.service import run as serve_nfs
    host, port = cfgmod.parse_listen(cfg.nfs.listen)
    settings = NfsSettings(host=host, port=port, udp=cfg.nfs.udp, rpcbind=cfg.nfs.rpcbind,
                           workers=cfg.nfs.workers, grace_s=cfg.nfs.grace_s)
    exports = ExportsWatcher(paths.config, cfg.nfs.built_exports())
    return run_role(NFS, cfg, paths, lambda store, stop: serve_nfs(store, settings, exports, stop), log)
