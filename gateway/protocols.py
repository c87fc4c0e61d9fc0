"""The protocol registry: every protocol server ``tessera serve`` can run, as data.

Each :class:`Entry` names its config section (typed, in :mod:`gateway.config`), its ``serve --role``,
its container image (``image/containers/<name>/`` built as ``localhost/tessera-<name>``), the transports
its ``listen`` address binds, and two ways to run it: as a child process supervised by ``tessera serve``
(:attr:`Entry.child`) and in the current process for ``serve --role <role>`` (:attr:`Entry.run`), which is
how the appliance runs one protocol per container. Adding a protocol is adding an entry to
:data:`REGISTRY`; serve.py has no per-protocol code.

>>> for e in REGISTRY:
...     print(e.name, e.role, e.container, e.listen_flag)
s3 s3 tessera-s3 --s3-listen
nfs nfs tessera-nfs --nfs-listen
smb smb tessera-smb --smb-listen
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, Protocol

from core.errors import ConfigError, InvalidArgument, StoreError
from core.store import is_store
from gateway import listen
from gateway.config import Config, parse_listen


class Section(Protocol):
    """What every protocol's config section has (``s3:``, ``nfs:``...)."""

    enabled: bool
    listen: str


@dataclass(frozen=True)
class Paths:
    """Where a server finds its store and its config (the file it re-reads, e.g. for NFS exports)."""

    data_dir: str
    config: str


@dataclass(frozen=True)
class ChildSpec:
    """A protocol server as a process: its name (in logs), argv and environment."""

    name: str
    argv: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class Entry:
    name: str  # the config section, the log name, --<name>-listen
    section: Callable[[Config], Section]
    transports: Callable[[Config], tuple[str, ...]]  # what its listen address binds: tcp, udp
    hint: str  # what else may hold its port, and what to change (in the address-in-use error)
    child: Callable[[Config, Paths], ChildSpec]
    run: Callable[[Config, Paths], int]  # serve --role <role>: this process serves it until SIGTERM

    @property
    def role(self) -> str:
        return self.name

    @property
    def container(self) -> str:
        """Its container's name in the appliance (unit ``<container>.service``) and its image's name."""
        return f"tessera-{self.name}"

    @property
    def image(self) -> str:
        """The container image that runs ``serve --role <role>`` (image/containers/<name>/Containerfile)."""
        return f"localhost/{self.container}:latest"

    @property
    def listen_key(self) -> str:
        return f"{self.name}.listen"

    @property
    def listen_flag(self) -> str:
        return f"--{self.name}-listen"

    def probe(self, cfg: Config) -> None:
        """Fail with one clear line when its listen address cannot be bound."""
        listen.probe(self.listen_key, self.section(cfg).listen, self.transports(cfg), self.hint)


# --- S3 ------------------------------------------------------------------------------------------------------

def s3_child(cfg: Config, paths: Paths) -> ChildSpec:
    """The S3 server as a process: its argv and environment (every uvicorn worker opens the store itself)."""
    s3 = cfg.s3
    data_dir = paths.data_dir
    env = {**os.environ, "TESSERA_DATA": os.path.abspath(data_dir), "TESSERA_S3_LISTEN": s3.listen,
           "TESSERA_S3_WORKERS": str(s3.workers), "TESSERA_S3_ROOT": s3.root, "TESSERA_S3_REGION": s3.region,
           "TESSERA_S3_DOMAIN": s3.domain or "", "TESSERA_S3_MIN_PART": str(s3.min_part_size),
           "TESSERA_IO_THREADS": str(cfg.store.io_threads), "TESSERA_LOG": cfg.log.level,
           "TESSERA_S3_AUDIT": "1" if s3.audit else "0", "TESSERA_S3_BUCKET_MODE": oct(s3.bucket_mode),
           "TESSERA_S3_OBJECT_MODE": oct(s3.object_mode)}
    if s3.tls.enabled:
        cert = os.path.join(data_dir, s3.tls.cert)
        key = os.path.join(data_dir, s3.tls.key)
        for p in (cert, key):
            if not os.path.exists(p):
                raise ConfigError(f"s3.tls: {p} not found")
        env["TESSERA_S3_CERT"], env["TESSERA_S3_KEY"] = cert, key
    return ChildSpec("s3", [sys.executable, "-m", "protocols.s3.server"], env)


def exec_s3(cfg: Config, paths: Paths) -> NoReturn:
    """``serve --role s3``: this process becomes the S3 server (uvicorn and its workers)."""
    import logging
    if not is_store(paths.data_dir):
        raise StoreError(f"no Tessera store in {paths.data_dir} (run 'tessera init' first)")
    child = s3_child(cfg, paths)
    S3.probe(cfg)
    logging.getLogger("tessera.serve").info("exec s3 server", extra={"data": paths.data_dir,
                                                                     "listen": cfg.s3.listen})
    os.execve(child.argv[0], child.argv, child.env)


S3 = Entry("s3", lambda c: c.s3, lambda c: ("tcp",), "another S3 server? set s3.listen or --s3-listen",
           s3_child, exec_s3)


# --- NFS -----------------------------------------------------------------------------------------------------

def role_child(name: str, address: str, paths: Paths) -> ChildSpec:
    """A server that runs in-process under ``serve --role <name>``, as a child: that command on the same
    config, at the listen address this ``serve`` settled on (after ``--<name>-listen`` and the
    unprivileged-port rule)."""
    argv = [sys.executable, "-m", "gateway.cli", "--data", paths.data_dir, "serve", "--role", name,
            "--config", paths.config, f"--{name}-listen", address]
    return ChildSpec(name, argv, dict(os.environ))


def nfs_child(cfg: Config, paths: Paths) -> ChildSpec:
    """The NFS server as a process: ``serve --role nfs`` (see :func:`role_child`)."""
    return role_child("nfs", cfg.nfs.listen, paths)


def run_nfs(cfg: Config, paths: Paths) -> int:
    from gateway.nfs_role import run
    return run(cfg, paths)


NFS = Entry("nfs", lambda c: c.nfs, lambda c: ("tcp", "udp") if c.nfs.udp else ("tcp",),
            "another NFS server? set nfs.listen or --nfs-listen", nfs_child, run_nfs)


# --- SMB -----------------------------------------------------------------------------------------------------

def smb_child(cfg: Config, paths: Paths) -> ChildSpec:
    """The SMB server as a process: ``serve --role smb`` (see :func:`role_child`)."""
    return role_child("smb", cfg.smb.listen, paths)


def run_smb(cfg: Config, paths: Paths) -> int:
    from gateway.smb_role import run
    return run(cfg, paths)


SMB = Entry("smb", lambda c: c.smb, lambda c: ("tcp",), "another SMB server (smbd)? set smb.listen or --smb-listen",
            smb_child, run_smb)

REGISTRY: tuple[Entry, ...] = (S3, NFS, SMB)
BY_ROLE = {e.role: e for e in REGISTRY}


def apply_listen(cfg: Config, flags: dict[str, str | None]) -> dict[str, str]:
    """Settle each protocol's listen address: its ``--<name>-listen`` flag wins; else, when this process is
    not privileged (not root, no CAP_NET_BIND_SERVICE) and the section has a ``user_listen``, that is used
    instead of ``listen``. Returns, by protocol, the line to print at start about such a substitution.
    """
    notes = {}
    for e in REGISTRY:
        sec = e.section(cfg)
        flag = flags.get(e.name)
        if flag:
            try:
                parse_listen(flag)
            except ValueError as err:
                raise InvalidArgument(f"{e.listen_flag}: {err}") from None
            sec.listen = flag
            continue
        user = getattr(sec, "user_listen", None)
        if user and not listen.privileged():
            notes[e.name] = (f"tessera: {e.name.upper()} listens on {user} ({e.name}.user_listen: not running "
                             f"as root; {e.listen_key} is {sec.listen})")
            sec.listen = user
    return notes
