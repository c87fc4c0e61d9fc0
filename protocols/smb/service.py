"""The SMB service: a :class:`~protocols.smb.state.ServerContext` and the handlers on one TCP port.

The gateway (``tessera serve --role smb``, gateway/smb_role.py) and tests call :func:`start` and get a
running server on a thread::

    srv = start(volume, SmbSettings(host="127.0.0.1", port=0), lambda: shares)
    ... srv.port ...
    srv.close()

Shares come from a callable re-read at most every second, so edits to tessera.yaml apply to new
tree connects without a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.fs import Volume

from .conn import Handler
from .crypto import Dialect
from .header import Command
from .negotiate import NegotiateConfig
from .server import ServerThread, SmbServer
from .shares import Share
from .state import ServerContext

log = logging.getLogger("tessera.smb")


@dataclass
class SmbSettings:
    """How the SMB server listens and what it allows (``smb:`` in tessera.yaml, less the shares)."""

    host: str = "0.0.0.0"
    port: int = 445
    workers: int = 8
    signing_required: bool = True
    encryption: bool = True
    min_dialect: Dialect = Dialect.SMB202
    server_name: str = "TESSERA"
    domain: str = "WORKGROUP"
    extra: dict[str, object] = field(default_factory=dict)


def handlers() -> dict[Command, Handler]:
    """Every command's handler."""
    from . import (
        handlers_create,
        handlers_dir,
        handlers_file,
        handlers_info,
        handlers_ioctl,
        handlers_lock,
        handlers_notify,
        handlers_oplock,
        handlers_session,
    )
    out: dict[Command, Handler] = {}
    for mod in (handlers_session, handlers_create, handlers_file, handlers_dir, handlers_info, handlers_notify,
                handlers_lock, handlers_ioctl, handlers_oplock):
        out.update(mod.HANDLERS)  # type: ignore[arg-type]
    return out


class SmbService:
    """A running SMB server on its own thread: ``port``, ``ctx``, ``close()``."""

    def __init__(self, volume: Volume, settings: SmbSettings, shares: Callable[[], Sequence[Share]]) -> None:
        self.settings = settings
        dialects = frozenset(d for d in Dialect if d >= settings.min_dialect)
        neg = NegotiateConfig(dialects=dialects, signing_required=settings.signing_required,
                              encryption=settings.encryption)
        self.ctx = ServerContext(volume, shares, negotiate=neg, server_name=settings.server_name,
                                 domain=settings.domain)
        self._thread = ServerThread(SmbServer(self.ctx, handlers(), settings.host, settings.port, settings.workers))
        self._closed = False

    @property
    def port(self) -> int:
        return self._thread.port

    def start(self) -> SmbService:
        self._thread.start()
        log.info("SMB server listening on %s:%d; shares: %s", self.settings.host, self.port,
                 ", ".join(f"{s.name}={s.path}" for s in self.ctx.shares()) or "none")
        return self

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._thread.close()

    def __enter__(self) -> SmbService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start(volume: Volume, settings: SmbSettings, shares: Callable[[], Sequence[Share]]) -> SmbService:
    """Start serving on a thread; returns once the port is bound (``settings.port=0``: any free one)."""
    return SmbService(volume, settings, shares).start()
