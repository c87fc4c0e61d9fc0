"""``tessera serve --role smb``: the SMB server (SMB 2.0.2 to 3.1.1) in this process.

The shares come from the config file and follow it: the server asks a :class:`~gateway.reload.Watched`
for the current ``smb.shares`` on each tree connect (and share listing); it re-reads ``tessera.yaml`` when
the file changes, so an edit of ``smb.shares`` applies to new connections without a restart, and an invalid
edit is logged and the previous shares kept. Other ``smb:`` keys (listen, signing, dialects, workers...)
apply at the next start. Users log on with their password (``tessera user add NAME --password ...``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from core.fs import Volume
from gateway import config as cfgmod
from gateway.protocols import SMB, Paths
from gateway.reload import Watched
from gateway.role import run_role
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
    smb = settings(cfg)
    shares = Watched(paths.config, cfg.smb.shares, lambda c: c.smb.shares, "smb shares", describe, log)

    def serve(store: Volume, stop: threading.Event) -> None:
        with start(store, smb, shares):
            while not stop.wait(1.0):
                pass
    return run_role(SMB, cfg, paths, serve, log)
