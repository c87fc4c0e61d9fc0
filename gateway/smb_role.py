"""``tessera serve --role smb``: the SMB server (SMB 2.0.2 to 3.1.1) in this process.

The shares come from the config file and follow it: the server asks a :class:`~gateway.reload.Watched`
for the current ``smb.shares`` on each tree connect (and share listing); it re-reads ``tessera.yaml`` when
the file changes, so an edit of ``smb.shares`` applies to new connections without a restart, and an invalid
edit is logged and the previous shares kept. Other ``smb:`` keys (listen, signing, dialects, workers...)
apply at the next start. Users log on with their password (``tessera user add NAME --password ...``).
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
from gateway.protocols import SMB, Paths
from gateway.reload import Watched
from protocols.smb.service import SmbSettings, start
from protocols.smb.shares import Share

log = logging.getLogger("tessera.smb")


def describe(shares: Sequence[Share]) -> list[str]:
    """Shares for a log line.

    >>> describe([Share("data", "/data", users=("alice",), read_only=True, encrypt=True), Share("pub", "/")])
    ['data=/data ro encrypt users=alice', 'pub=/ rw']
    """
    out = []
    for s in shares:
        words = [f"{s.name}={s.path}", "ro" if s.read_only else "rw"]
        words += [w for w, on in (("encrypt", s.encrypt), ("guest", s.guest), ("hidden", not s.browseable)) if on]
        words += [f"{k}={','.join(v)}" for k, v in (("users", s.users), ("groups", s.groups)) if v]
        out.append(" ".join(words))
    return out


def settings(cfg: cfgmod.Config) -> SmbSettings:
    """The SMB layer's :class:`~protocols.smb.service.SmbSettings` for ``cfg.smb`` (its listen address as
    settled by ``serve``).

    >>> s = settings(cfgmod.Config(smb=cfgmod.SmbConfig(listen="127.0.0.1:4445", min_dialect="3.0")))
    >>> (s.host, s.port, s.signing_required, s.min_dialect.name, s.server_name)
    ('127.0.0.1', 4445, True, 'SMB30', 'TESSERA')
    """
    smb = cfg.smb
    host, port = cfgmod.parse_listen(smb.listen)
    return SmbSettings(host=host, port=port, workers=smb.workers, signing_required=smb.signing_required,
                       min_dialect=smb.dialect, server_name=smb.server_name, domain=smb.domain)


def run(cfg: cfgmod.Config, paths: Paths) -> int:
    """Serve SMB on ``cfg.smb.listen`` until SIGTERM or SIGINT. Returns the exit code."""
    if not is_store(paths.data_dir):
        raise StoreError(f"no Tessera store in {paths.data_dir} (run 'tessera init' first)")
    SMB.probe(cfg)
    smb = settings(cfg)
    shares = Watched(paths.config, cfg.smb.shares, lambda c: c.smb.shares, "smb shares", describe, log)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    store = open_store(paths.data_dir, threads=cfg.store.io_threads)
    try:
        try:
            server = start(store, smb, shares)
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                raise listen.bind_error(SMB.listen_key, cfg.smb.listen, e, SMB.hint) from None
            raise
        try:
            while not stop.wait(1.0):
                pass
        finally:
            server.close()
    finally:
        store.close()
    log.info("stopped")
    return 0
