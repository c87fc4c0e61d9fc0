"""The one YAML configuration file of a store (``DIR/tessera.yaml``).

Validated with pydantic; unknown keys and bad values are reported with their
location, e.g. ``tessera.yaml: admin.listen: expected HOST:PORT, got 'x'``.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SkipValidation, ValidationError, field_validator

from core.errors import ConfigError
from protocols.nfs import exports as nfs_exports
from protocols.nfs.exports import Export
from protocols.smb.crypto import Dialect
from protocols.smb.shares import Share, parse_shares

CONFIG_NAME = "tessera.yaml"


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LogConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"


class AdminConfig(_Strict):
    enabled: bool = True
    listen: str = "127.0.0.1:9100"

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        parse_listen(v)
        return v


class MaintenanceConfig(_Strict):
    gc_interval_s: float = Field(300.0, ge=0)
    repair_interval_s: float = Field(60.0, ge=0)
    lifecycle_interval_s: float = 3600.0  # lifecycle rules and trash expiry; 0 = off

    @field_validator("lifecycle_interval_s")
    @classmethod
    def _lifecycle(cls, v: float) -> float:
        if v < 0:
            raise ValueError(f"must be 0 (off) or a number of seconds between lifecycle passes, got {v}")
        return v


class TrashConfig(_Strict):
    """The store's default trash policy (trees may set their own), applied by ``tessera serve`` at start.
    A config without a ``trash:`` section leaves the store's as it is (a store migrated to versions keeps
    its trash off until the config says otherwise)."""

    days: float = 1.0  # keep deleted and overwritten files this long; 0 = no trash
    max_bytes: int = 0  # and at most this much per tree (oldest go first); 0 = no cap

    @field_validator("days")
    @classmethod
    def _days(cls, v: float) -> float:
        if not 0 <= v <= 36500:
            raise ValueError(f"must be between 0 (no trash) and 36500 days, got {v}")
        return v

    @field_validator("max_bytes")
    @classmethod
    def _bytes(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"must be 0 (no cap) or a number of bytes, got {v}")
        return v


class ClusterConfig(_Strict):
    """Used by cluster nodes only (a data directory with meta/node.json: 'tessera cluster init' / 'node join')."""

    target_listen: str = ""  # where this node's target server binds; '' = the node's address (node.json)
    heartbeat_s: float = Field(2.0, gt=0, le=60)
    dead_after_s: float = Field(300.0, ge=3)  # a node silent this long: its targets are failed, rebuilt elsewhere
    auto_rebuild: bool = True  # the maintenance leader rebuilds failed targets' cells onto the other nodes

    @field_validator("target_listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        if v:
            parse_listen(v)
        return v


class TlsConfig(_Strict):
    enabled: bool = False
    cert: str = "tls/cert.pem"  # relative to the data directory
    key: str = "tls/key.pem"


class S3Config(_Strict):
    enabled: bool = True
    listen: str = "0.0.0.0:9000"
    workers: int = Field(2, ge=1, le=64)
    root: str = "/"  # buckets are the directories under this path
    region: str = "us-east-1"
    domain: str | None = None  # enables virtual-host-style requests: <bucket>.<domain>
    min_part_size: int = Field(5 * 1024 * 1024, ge=0)
    upload_expiry_h: float = Field(24.0, ge=0)  # abandoned multipart uploads are removed after this; 0 = never
    audit: bool = False  # one JSON line per request on logger tessera.s3.audit
    bucket_mode: int = Field(0o700, ge=0, le=0o7777)  # a new bucket's directory, owned by its creator
    object_mode: int = Field(0o600, ge=0, le=0o777)  # a new object's file, owned by its writer
    tls: TlsConfig = TlsConfig()

    @field_validator("bucket_mode", "object_mode", mode="before")
    @classmethod
    def _octal(cls, v: object) -> object:
        """Modes are octal: 0o700, '0700' or '700' (YAML 1.1 reads a bare 0700 as octal already)."""
        if isinstance(v, str):
            try:
                return int(v.strip().removeprefix("0o").removeprefix("0O") or "0", 8)
            except ValueError:
                raise ValueError(f"{v!r} is not an octal mode such as 0o700") from None
        return v

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        parse_listen(v)
        return v

    @field_validator("root")
    @classmethod
    def _root(cls, v: str) -> str:
        if not v.startswith("/") or "/../" in v + "/":
            raise ValueError("must be an absolute store path without '..'")
        return v


def _one_of(v: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(v, str) or v not in allowed:
        raise ValueError(f"must be one of {', '.join(allowed)}, got {v!r}")
    return v


class NfsExportConfig(_Strict):
    """One entry of ``nfs.exports``; :meth:`build` makes the NFS layer's ``Export`` of it.

    Each field is checked with the NFS layer's own rules, so a message names its key
    (``nfs.exports[0].clients: ...``).
    """

    path: str
    clients: list[str] = Field(min_length=1)
    access: Literal["rw", "ro"] = "rw"
    squash: Literal["none", "root", "all"] = "root"
    anonuid: int = Field(65534, ge=0, le=nfs_exports.MAX_ID)
    anongid: int = Field(65534, ge=0, le=nfs_exports.MAX_ID)

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return nfs_exports.normalise_path(v)

    @field_validator("clients", mode="before")
    @classmethod
    def _clients(cls, v: object) -> object:
        if isinstance(v, str):  # clients: 10.0.0.0/8 (one, not in a list)
            v = [v]
        if isinstance(v, list):
            for c in v:
                nfs_exports.parse_client(str(c))
            return [str(c) for c in v]
        return v

    @field_validator("access", mode="before")
    @classmethod
    def _access(cls, v: object) -> str:
        return _one_of(v, nfs_exports.ACCESS)

    @field_validator("squash", mode="before")
    @classmethod
    def _squash(cls, v: object) -> str:
        return _one_of(v, nfs_exports.SQUASH)

    def build(self) -> Export:
        return Export.build(self.path, self.clients, self.access, self.squash, self.anonuid, self.anongid)


class NfsConfig(_Strict):
    """The NFS server: NFSv3, MOUNT, NLM and NSM on one TCP and UDP port."""

    enabled: bool = True  # a tessera.yaml without an nfs: section serves no NFS (see Config.nfs)
    listen: str = "0.0.0.0:2049"
    user_listen: str = "127.0.0.1:12049"  # instead of listen when serve runs as a user (not root)
    udp: bool = True
    rpcbind: bool = True  # register with rpcbind when it runs (clients then need no port options)
    workers: int = Field(8, ge=1, le=256)
    grace_s: float = Field(90.0, ge=0, le=3600)  # NLM grace period after a start: lock reclaims only
    exports: list[NfsExportConfig] = []

    @field_validator("listen", "user_listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        parse_listen(v)
        return v

    @field_validator("exports")
    @classmethod
    def _unique(cls, v: list[NfsExportConfig]) -> list[NfsExportConfig]:
        nfs_exports.check_unique([e.build() for e in v])
        return v

    def built_exports(self) -> list[Export]:
        """The exports as the NFS server takes them."""
        return [e.build() for e in self.exports]


SMB_DIALECTS: dict[str, Dialect] = {"2.0.2": Dialect.SMB202, "2.1": Dialect.SMB21, "3.0": Dialect.SMB30,
                                     "3.0.2": Dialect.SMB302, "3.1.1": Dialect.SMB311}
NETBIOS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")


class SmbConfig(_Strict):
    """The SMB server: SMB 2.0.2 to 3.1.1 on one TCP port, sharing store paths (``smb.shares``).

    The shares are checked with the SMB layer's own :func:`~protocols.smb.shares.parse_shares`, so a message
    names its key (``smb.shares[1].name: ...``); names are unique ignoring case.

    >>> SmbConfig(min_dialect=3.0).dialect.name  # YAML reads a bare 3.0 or 2.1 as a number
    'SMB30'
    """

    enabled: bool = True  # a tessera.yaml without an smb: section serves no SMB (see Config.smb)
    listen: str = "0.0.0.0:445"
    user_listen: str = "127.0.0.1:4445"  # instead of listen when serve runs as a user (not root)
    workers: int = Field(8, ge=1, le=256)
    signing_required: bool = True  # Windows 11 24H2 requires signing too
    min_dialect: Literal["2.0.2", "2.1", "3.0", "3.0.2", "3.1.1"] = "2.0.2"
    server_name: str = "TESSERA"  # the NetBIOS name in NTLM challenges (1-15 characters)
    domain: str = "WORKGROUP"  # the NetBIOS domain (workgroup) in NTLM challenges
    shares: Annotated[list[Share], SkipValidation] = []

    @field_validator("listen", "user_listen", mode="before")
    @classmethod
    def _listen(cls, v: object) -> object:
        if not isinstance(v, str):  # listen: 445
            raise ValueError(f"expected HOST:PORT, got {v!r}")
        parse_listen(v)
        return v

    @field_validator("min_dialect", mode="before")
    @classmethod
    def _dialect(cls, v: object) -> object:
        if isinstance(v, float | int) and not isinstance(v, bool):
            v = str(v)  # min_dialect: 2.1 (a YAML number)
        return _one_of(v, tuple(SMB_DIALECTS))

    @field_validator("server_name", "domain")
    @classmethod
    def _netbios(cls, v: str) -> str:
        if not NETBIOS_NAME.fullmatch(v):
            raise ValueError(f"{v!r} is not a NetBIOS name (1-15 letters, digits, '-', '_' or '.')")
        return v

    @field_validator("shares", mode="before")
    @classmethod
    def _shares(cls, v: object) -> list[Share]:
        return parse_shares(v, where="smb.shares")

    @property
    def dialect(self) -> Dialect:
        """``min_dialect`` as the SMB layer's :class:`~protocols.smb.crypto.Dialect`."""
        return SMB_DIALECTS[self.min_dialect]


class StoreConfig(_Strict):
    data: str = "."  # relative to the config file's directory
    io_threads: int = Field(4, ge=1, le=64)


class Config(_Strict):
    store: StoreConfig = StoreConfig()
    log: LogConfig = LogConfig()
    admin: AdminConfig = AdminConfig()
    s3: S3Config = S3Config()
    # no nfs: section (a store made before NFS, a test's config) = no NFS server; a section = enabled unless
    # it says otherwise. 'tessera init' writes one (see DEFAULT_YAML).
    nfs: NfsConfig = NfsConfig(enabled=False)
    smb: SmbConfig = SmbConfig(enabled=False)  # likewise: no smb: section = no SMB server
    maintenance: MaintenanceConfig = MaintenanceConfig()
    trash: TrashConfig | None = None  # None (no trash: section): the store's default stays as it is
    cluster: ClusterConfig = ClusterConfig()

    def data_dir(self, config_path: str) -> str:
        base = os.path.dirname(os.path.abspath(config_path))
        return os.path.normpath(os.path.join(base, self.store.data))


DEFAULT_YAML = """\
# Tessera configuration — one file per store, validated at start.
store:
  data: .              # the data directory, relative to this file
  io_threads: 4        # stripe encode/write threads per process
log:
  level: info          # debug | info | warning | error
  format: json         # json (structured) | text
admin:
  enabled: true
  listen: 127.0.0.1:9100   # /healthz and Prometheus /metrics
s3:
  enabled: true
  listen: 0.0.0.0:9000     # like MinIO; 'tessera serve --s3-listen HOST:PORT' overrides
  workers: 2               # uvicorn worker processes
  root: /                  # buckets are the directories under this store path
  region: us-east-1        # reported to clients; requests may sign any region
  domain: null             # set (e.g. s3.example.com) for virtual-host-style buckets
  upload_expiry_h: 24      # remove multipart uploads never completed or aborted (0 = keep)
  audit: false             # one JSON line per S3 request (who, what, status, bytes, time, from where)
  bucket_mode: 0o700       # a new bucket's directory (owner = its creator); NFS and SMB see the same
  object_mode: 0o600       # a new object's file (owner = its writer); S3 ACLs add grants on top
  tls:
    enabled: false         # HTTPS with the pair below ('tessera init' makes a self-signed one)
    cert: tls/cert.pem
    key: tls/key.pem
nfs:
  enabled: true            # NFSv3 + MOUNT + NLM (locks) on one TCP and UDP port
  listen: 0.0.0.0:2049     # 'tessera serve --nfs-listen HOST:PORT' overrides
  user_listen: 127.0.0.1:12049  # used instead when serve runs as a user, not root (make run); printed at start
  udp: true
  rpcbind: true            # register with rpcbind when it runs (else clients give nfsport=/mountport=)
  workers: 8               # request threads
  grace_s: 90              # after a restart, clients reclaim their NLM locks for this long before new ones
  exports:                 # edits apply without a restart
    - path: /              # a store path
      clients: [127.0.0.1, "::1"]   # addresses or networks (10.0.0.0/8), or '*'
      access: rw           # rw | ro
      squash: root         # none | root | all: who becomes anonuid/anongid
      anonuid: 65534
      anongid: 65534
smb:
  enabled: true            # SMB 2.0.2 to 3.1.1 (Windows, macOS, smbclient); NTLMv2 logins, no guests
  listen: 0.0.0.0:445      # 'tessera serve --smb-listen HOST:PORT' overrides
  user_listen: 127.0.0.1:4445   # used instead when serve runs as a user, not root (make run); printed at start
  workers: 8               # request threads
  signing_required: true   # every session signs (Windows 11 24H2 requires it as well)
  min_dialect: 2.0.2       # 2.0.2 | 2.1 | 3.0 | 3.0.2 | 3.1.1
  server_name: TESSERA     # NetBIOS name and workgroup in logins
  domain: WORKGROUP
  shares:                  # edits apply without a restart; logins are users with a password (tessera user add)
    - name: tessera        # \\\\host\\tessera
      path: /              # a store path
      users: []            # and/or groups: [studio]; both empty = any user
      groups: []
      read_only: false
      browseable: true     # listed by smbclient -L and Explorer
      encrypt: false       # true = sessions must encrypt
      case_insensitive: true   # Windows semantics
maintenance:
  gc_interval_s: 300       # garbage-collect unreferenced segments
  repair_interval_s: 60    # repair cells that reads found bad
  lifecycle_interval_s: 3600   # run lifecycle rules and expire the trash (0 = off)
trash:                     # the store's default; trees (buckets, exports, shares) may set their own
  days: 1                  # keep deleted and overwritten files this long (0 = no trash)
  max_bytes: 0             # and at most this many bytes per tree, oldest purged first (0 = no cap)
cluster:                   # used by cluster nodes only ('tessera cluster init' / 'tessera node join')
  target_listen: ""        # the target server's HOST:PORT; "" = the node's address given at init/join
  heartbeat_s: 2
  dead_after_s: 300        # a node silent this long has its targets failed and their cells rebuilt elsewhere
  auto_rebuild: true
"""


def load(path: str) -> Config:
    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        errs = "; ".join(_message(err['loc'], err['msg']) for err in e.errors())
        raise ConfigError(f"{os.path.basename(path)}: {errs}") from None


def _message(loc: tuple[int | str, ...], msg: str) -> str:
    """One validation error as ``key: message``; a message that names its key already (the SMB layer's
    ``smb.shares[0].name: ...``) is not prefixed twice.

    >>> _message(("smb", "shares"), "Value error, smb.shares[0].path: a share path is absolute")
    'smb.shares[0].path: a share path is absolute'
    >>> _message(("nfs", "listen"), "Value error, expected HOST:PORT, got 'x'")
    "nfs.listen: expected HOST:PORT, got 'x'"
    """
    key, msg = _loc(loc), msg.removeprefix("Value error, ")
    return msg if msg.startswith((f"{key}:", f"{key}[", f"{key}.")) else f"{key}: {msg}"


def _loc(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the YAML key a user edits.

    >>> _loc(("nfs", "exports", 0, "squash"))
    'nfs.exports[0].squash'
    """
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def write_default(data_dir: str) -> str:
    path = os.path.join(data_dir, CONFIG_NAME)
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(DEFAULT_YAML)
    return path
