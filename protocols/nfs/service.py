"""The NFS service: NFSv3, MOUNT, NLM and NSM assembled on one port over one :class:`Context`.

Start-up order: the Context, NLM/NSM (:func:`protocols.nfs.nlm.start` moves NSM's state
number on and opens a grace period when the previous run had lock clients), bind the
port, register with rpcbind, then send SM_NOTIFY to the previous run's lock clients (so
their reclaims find the server listening).  Close runs it backwards.

The gateway (``tessera serve --role nfs``) calls :func:`run`; tests call :func:`start`
and get a running server on a thread::

    srv = start(volume, NfsSettings(host="127.0.0.1", port=0, rpcbind=False), lambda: exports)
    ... srv.port ...
    srv.close()

Every program listens on the same TCP and UDP port (2049 by default), so clients need
no portmapper (libnfs: ``?nfsport=P&mountport=P``; Linux: ``-o port=P,mountport=P``).
When ``rpcbind`` is on, each program and version is registered with the local
portmapper at start and unregistered at close; without a portmapper that is one log
line and nothing else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.errors import CoreError
from core.fs import Volume

from . import mount, nfs3, nlm, rpcbind
from .context import Context
from .exports import Export
from .server import DEFAULT_MAX_RECORD, RpcServer, ServerThread

log = logging.getLogger("tessera.nfs")


@dataclass
class NfsSettings:
    """How the NFS server listens (``nfs:`` in tessera.yaml; the exports come separately)."""

    host: str = "0.0.0.0"
    port: int = 2049
    udp: bool = True
    rpcbind: bool = True
    workers: int = 8
    grace_s: float = 90.0
    max_record: int = DEFAULT_MAX_RECORD


class NfsServer:
    """A running NFS server (its event loop on a thread): ``port``, ``ctx``, ``close()``."""

    def __init__(self, volume: Volume, settings: NfsSettings, exports: Callable[[], Sequence[Export]]) -> None:
        self.settings = settings
        self.ctx = Context(volume, exports)
        self.locking = nlm.start(self.ctx, grace_s=settings.grace_s)  # NSM's state moves on: a new server run
        self.programs = [mount.program(self.ctx), nfs3.program(self.ctx), *self.locking.programs()]
        self._rpc = RpcServer(self.programs, settings.host, settings.port, udp=settings.udp,
                              max_record=settings.max_record, workers=settings.workers)
        self._thread = ServerThread(self._rpc)
        self._maps: list[rpcbind.Mapping] = []
        self._closed = False

    @property
    def port(self) -> int:
        return self._rpc.port

    def start(self) -> NfsServer:
        try:
            self._thread.start()
        except BaseException:
            self.locking.close()
            raise
        log.info("NFS server listening on %s:%d (%s); exports: %s", self.settings.host, self.port,
                 "tcp+udp" if self.settings.udp else "tcp", _describe(self.ctx))
        if self.settings.rpcbind:
            maps = rpcbind.mappings([(p.prog, sorted(p.versions)) for p in self.programs], self.port,
                                    self.settings.udp)
            if rpcbind.register(maps):
                self._maps = maps
                log.info("registered with rpcbind: programs %s", sorted({m.prog for m in maps}))
        self.locking.announce()  # SM_NOTIFY to the previous run's lock clients, now that they can reclaim
        return self

    def close(self) -> None:
        """Unregister from rpcbind, stop listening, wait for calls in flight (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._maps:
            rpcbind.unregister(self._maps)
        self._thread.close()
        self.locking.close()
        log.info("NFS server on port %d stopped", self.port)

    def __enter__(self) -> NfsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe(ctx: Context) -> str:
    """The exports for the start-up line; a missing export directory is flagged (MNT would say NOENT)."""
    out = []
    for e in ctx.exports():
        try:
            ctx.root_ino(e)
            missing = ""
        except CoreError as err:
            missing = f" [not servable: {err}]"
        out.append(f"{e.path} ({','.join(e.clients)} {e.access} squash={e.squash}){missing}")
    return "; ".join(out) or "none"


def start(volume: Volume, settings: NfsSettings, exports: Callable[[], Sequence[Export]]) -> NfsServer:
    """Start serving on a thread; returns once the port is bound (``settings.port=0``: any free one)."""
    return NfsServer(volume, settings, exports).start()


def run(volume: Volume, settings: NfsSettings, exports: Callable[[], Sequence[Export]],
        stop: threading.Event) -> None:
    """Serve NFS3 + MOUNT3 + NLM4 + NSM on one port until ``stop`` is set (OSError if it cannot bind)."""
    with start(volume, settings, exports):
        while not stop.wait(1.0):
            pass
