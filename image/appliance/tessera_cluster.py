"""The cluster part of an appliance node's config: which cluster it belongs to and what it runs for it.

Used by ``tessera_node.py`` (the appliance's boot-time node setup; host Python: stdlib + PyYAML). A node
config with a ``cluster`` section makes the node a member of a multi-node store whose metadata lives in
PostgreSQL; without one the node is a one-node store with SQLite metadata, exactly as before.

``cluster`` keys (YAML; on the kernel command line ``tessera.cluster.<key>=VALUE``)::

    name: n1                  # this node's name: 1-63 of a-z, 0-9, '-' (its fault domain)
    addr: 10.0.0.11:7070      # HOST:PORT where the other nodes reach this node's target server; HOST is this
                              # node's address on the cluster network (no 0.0.0.0)
    meta_peers: [10.0.0.11, 10.0.0.12, 10.0.0.13]   # the metadata nodes' addresses: 1, 3, 5 or 7 of them
                              # (kernel command line: comma-separated); the same list on every node
    role: meta                # meta: runs etcd + Patroni/PostgreSQL (its addr HOST must be in meta_peers);
                              # storage: only joins. Default: meta when HOST is in meta_peers, else storage
    init: false               # true on exactly one node: it makes the cluster store ('tessera cluster init')
                              # once PostgreSQL accepts writes; every other node waits for it, then joins
    key: BASE64               # the store key, the cluster's one secret, the same on every node: base64 of 32
                              # random bytes (head -c 32 /dev/urandom | base64), or an http(s) URL or a
                              # file path holding it (base64 or the 32 raw bytes)
    expect: 3                 # nodes the cluster will have: cluster init picks a geometry that survives one
                              # node failing once they have joined (init node only; 'ec' overrides it)
    target_listen: ""         # where the target server binds (default: addr); passed to the services

Metadata (role ``meta``): ``tessera-etcd`` (one etcd member per meta peer, peer port 2380, client port 2379,
members named ``meta0..`` in meta_peers order) and ``tessera-patroni`` (PostgreSQL 15 on port 5432 under
Patroni, REST API on 8008, ``synchronous_mode: true``: a commit waits for a synchronous standby while there is
one). Both keep their data on the node's store disk (``<disk>/etcd``, ``<disk>/pg``). Every node reaches the
metadata by the libpq multi-host URL over all meta peers with ``target_session_attrs=read-write`` (the
current primary), as role ``tessera`` in database ``tessera`` (made by Patroni's post_bootstrap hook).

Secrets: the PostgreSQL passwords (superuser ``postgres``, ``replicator``, ``tessera``) and the etcd cluster
token are derived from the store key (HMAC-SHA256 with a label per purpose), so the key is the only secret
an operator hands out. etcd itself has no client authentication: keep ports 2379/2380 on the cluster network.

Run files (in /run/tessera, next to tessera_node's): ``cluster.env`` (TESSERA_CLUSTER_* and TESSERA_META_URL
for the tessera containers; 0600), ``store.key`` (the 32 raw bytes; 0600), and on meta nodes ``etcd.env``
(ETCD_* settings), ``patroni.env`` (TESSERA_PG_HOME, TESSERA_DB_PASSWORD; 0600) and ``patroni.yml`` (0600).
The etcd and Patroni units start only where their file exists.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KEYS = {"name", "addr", "meta_peers", "role", "init", "key", "expect", "target_listen"}
KEY_BYTES = 32
PG_PORT = 5432
PATRONI_PORT = 8008
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
DB_NAME = "tessera"
DB_USER = "tessera"
PG_BIN = "/usr/lib/postgresql/15/bin"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


class ClusterConfigError(ValueError):
    """A cluster setting that cannot work; tessera_node turns it into its one-line NodeError."""


@dataclass(frozen=True)
class ClusterConfig:
    name: str
    addr: str
    host: str  # addr's HOST
    meta_peers: list[str]
    role: str  # "meta" | "storage"
    init: bool
    key: str  # as configured: base64, or a URL / path to read it from (see resolve_key)
    expect: int
    target_listen: str

    @property
    def meta_index(self) -> int:
        return self.meta_peers.index(self.host)


def parse_cmdline_value(sub: str, value: str) -> Any:
    """One ``tessera.cluster.SUB=VALUE`` word -> its config value (lists and flags parsed, the rest text)."""
    if sub == "meta_peers":
        return [p for p in value.split(",") if p]
    if sub == "init":
        return value.lower() in ("1", "true", "yes", "on")
    if sub == "expect":
        try:
            return int(value)
        except ValueError:
            raise ClusterConfigError(f"tessera.cluster.expect={value}: not a number") from None
    return value


def _host_ok(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOST.fullmatch(host)) and not host.replace(".", "").isdigit()
    return not ip.is_unspecified and not ip.is_multicast


def split_addr(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or not _host_ok(host):
        raise ClusterConfigError(f"cluster.addr: {addr!r} is not HOST:PORT with this node's address as HOST "
                                 "(for example 10.0.0.11:7070)")
    return host, int(port)


def validate(raw: Any) -> ClusterConfig | None:
    """The ``cluster`` section (None or empty: not a cluster node) -> ClusterConfig; every problem is one line."""
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, dict):
        raise ClusterConfigError("cluster: expected a mapping (name, addr, meta_peers, role, init, key, expect)")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise ClusterConfigError(f"cluster: unknown setting(s): {', '.join(unknown)} "
                                 f"(known: {', '.join(sorted(KEYS))})")
    for need in ("name", "addr", "meta_peers", "key"):
        if raw.get(need) in (None, "", []):
            raise ClusterConfigError(f"cluster.{need} is required for a cluster node")
    name = str(raw["name"])
    if not _NAME.fullmatch(name):
        raise ClusterConfigError(f"cluster.name: {name!r}: use 1-63 of a-z, 0-9 and '-' (not starting with '-')")
    host, _ = split_addr(str(raw["addr"]))
    peers = raw["meta_peers"]
    if isinstance(peers, str):
        peers = [p for p in peers.split(",") if p]
    if not isinstance(peers, list) or not all(isinstance(p, str) and _host_ok(p) for p in peers):
        raise ClusterConfigError("cluster.meta_peers: a list of the metadata nodes' addresses (no ports)")
    if len(set(peers)) != len(peers):
        raise ClusterConfigError("cluster.meta_peers: an address is listed twice")
    if len(peers) not in (1, 3, 5, 7):
        raise ClusterConfigError(f"cluster.meta_peers: {len(peers)} given; etcd needs an odd number: 1, 3, 5 or 7 "
                                 "(3 survives one metadata node failing)")
    role = raw.get("role") or ("meta" if host in peers else "storage")
    if role not in ("meta", "storage"):
        raise ClusterConfigError(f"cluster.role: {role!r} is not 'meta' or 'storage'")
    if role == "meta" and host not in peers:
        raise ClusterConfigError(f"cluster.role: meta, but this node's address {host} (cluster.addr) is not in "
                                 f"cluster.meta_peers ({', '.join(peers)})")
    if role == "storage" and host in peers:
        raise ClusterConfigError(f"cluster.role: storage, but this node's address {host} is in cluster.meta_peers: "
                                 "the metadata nodes listed there must run the metadata (role: meta)")
    init = raw.get("init", False)
    if not isinstance(init, bool):
        raise ClusterConfigError("cluster.init: true on the one node that makes the cluster, else false")
    expect = raw.get("expect", 3)
    if not isinstance(expect, int) or isinstance(expect, bool) or not 1 <= expect <= 1000:
        raise ClusterConfigError("cluster.expect: a whole number of nodes from 1 to 1000")
    key = str(raw["key"])
    if not _is_source(key):
        decode_key(key, "cluster.key")
    listen = str(raw.get("target_listen") or "")
    h, sep, port = listen.rpartition(":")
    if listen and (not sep or not h or not port.isdigit() or not 0 < int(port) < 65536):
        raise ClusterConfigError(f"cluster.target_listen: {listen!r} is not HOST:PORT")
    return ClusterConfig(name, str(raw["addr"]), host, list(peers), role, init, key, expect, listen)


def _is_source(key: str) -> bool:
    return key.startswith(("http://", "https://", "/"))


def decode_key(text: str | bytes, where: str) -> bytes:
    """Base64 text (or, from a file or URL, the raw bytes) -> the 32-byte store key."""
    if isinstance(text, bytes) and len(text) == KEY_BYTES:
        return text
    s = text.decode(errors="replace") if isinstance(text, bytes) else text
    try:
        key = base64.b64decode(s.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise ClusterConfigError(f"{where}: not base64 of {KEY_BYTES} bytes "
                                 "(make a key once with: head -c 32 /dev/urandom | base64)")
    return key


def resolve_key(cfg: ClusterConfig, fetch: Callable[[str], bytes]) -> bytes:
    """The store key's 32 bytes: decoded from the config, or read from the URL / path it names."""
    if _is_source(cfg.key):
        return decode_key(fetch(cfg.key), f"cluster.key from {cfg.key}")
    return decode_key(cfg.key, "cluster.key")


def derive(key: bytes, purpose: str) -> str:
    """A secret for one purpose, from the store key (hex of HMAC-SHA256)."""
    return hmac.new(key, f"tessera appliance: {purpose}".encode(), hashlib.sha256).hexdigest()


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def meta_url(cfg: ClusterConfig, key: bytes) -> str:
    """libpq multi-host URL over every meta peer; target_session_attrs=read-write finds the primary."""
    hosts = ",".join(f"{_bracket(p)}:{PG_PORT}" for p in cfg.meta_peers)
    return (f"postgresql://{DB_USER}:{derive(key, 'postgres tessera')}@{hosts}/{DB_NAME}"
            "?target_session_attrs=read-write&connect_timeout=5")


def cluster_env(cfg: ClusterConfig, key: bytes, ec: str | None) -> dict[str, str]:
    """Variables for the tessera containers (entrypoint node-init: cluster init or node join)."""
    return {"TESSERA_CLUSTER": "1", "TESSERA_CLUSTER_NAME": cfg.name, "TESSERA_CLUSTER_ADDR": cfg.addr,
            "TESSERA_CLUSTER_INIT": "1" if cfg.init else "0", "TESSERA_CLUSTER_EXPECT": str(cfg.expect),
            "TESSERA_CLUSTER_EC": ec or "", "TESSERA_META_URL": meta_url(cfg, key),
            "TESSERA_KEY_FILE": "/run/tessera/store.key"}


def etcd_env(cfg: ClusterConfig, key: bytes, data_dir: str) -> dict[str, str]:
    """ETCD_* settings of this meta node's etcd member (etcd reads them from its environment)."""
    me = f"http://{_bracket(cfg.host)}"
    initial = ",".join(f"meta{i}=http://{_bracket(p)}:{ETCD_PEER_PORT}" for i, p in enumerate(cfg.meta_peers))
    return {"ETCD_NAME": f"meta{cfg.meta_index}", "ETCD_DATA_DIR": data_dir,
            "ETCD_LISTEN_CLIENT_URLS": f"http://0.0.0.0:{ETCD_CLIENT_PORT}",
            "ETCD_ADVERTISE_CLIENT_URLS": f"{me}:{ETCD_CLIENT_PORT}",
            "ETCD_LISTEN_PEER_URLS": f"http://0.0.0.0:{ETCD_PEER_PORT}",
            "ETCD_INITIAL_ADVERTISE_PEER_URLS": f"{me}:{ETCD_PEER_PORT}",
            "ETCD_INITIAL_CLUSTER": initial, "ETCD_INITIAL_CLUSTER_STATE": "new",
            "ETCD_INITIAL_CLUSTER_TOKEN": "tessera-" + derive(key, "etcd cluster token")[:16]}


def patroni_env(key: bytes, pg_home: str) -> dict[str, str]:
    return {"TESSERA_PG_HOME": pg_home, "TESSERA_DB_PASSWORD": derive(key, "postgres tessera")}


def patroni_config(cfg: ClusterConfig, key: bytes, pg_home: str) -> dict[str, Any]:
    """Patroni's YAML (as a dict) for this meta node: PostgreSQL 15 in ``pg_home/data``, synchronous mode."""
    me = _bracket(cfg.host)
    pg_params = {"max_connections": 100, "shared_buffers": "64MB", "wal_level": "replica", "hot_standby": "on",
                 "wal_log_hints": "on", "max_wal_senders": 10, "max_replication_slots": 10,
                 "wal_keep_size": "256MB", "synchronous_commit": "on", "jit": "off"}
    return {
        "scope": "tessera", "name": cfg.name, "log": {"level": "INFO"},
        "restapi": {"listen": f"0.0.0.0:{PATRONI_PORT}", "connect_address": f"{me}:{PATRONI_PORT}"},
        "etcd3": {"hosts": [f"{_bracket(p)}:{ETCD_CLIENT_PORT}" for p in cfg.meta_peers]},
        "bootstrap": {
            "dcs": {"ttl": 30, "loop_wait": 10, "retry_timeout": 10, "maximum_lag_on_failover": 1 << 20,
                    "synchronous_mode": True, "synchronous_mode_strict": False,
                    "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": pg_params}},
            "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, "data-checksums"],
            "post_bootstrap": "/usr/local/bin/tessera-meta-bootstrap",
        },
        "postgresql": {
            "listen": f"0.0.0.0:{PG_PORT}", "connect_address": f"{me}:{PG_PORT}",
            "data_dir": os.path.join(pg_home, "data"), "bin_dir": PG_BIN,
            "pgpass": os.path.join(pg_home, "pgpass"),
            "authentication": {
                "superuser": {"username": "postgres", "password": derive(key, "postgres superuser")},
                "replication": {"username": "replicator", "password": derive(key, "postgres replication")},
            },
            "parameters": {"unix_socket_directories": pg_home},
            "pg_hba": ["local all all trust",
                       "host replication replicator 0.0.0.0/0 scram-sha-256",
                       "host replication replicator ::/0 scram-sha-256",
                       "host all all 0.0.0.0/0 scram-sha-256", "host all all ::/0 scram-sha-256"],
        },
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
    }


def run_files(cfg: ClusterConfig, key: bytes, ec: str | None, home_disk: str) -> dict[str, tuple[bytes, int]]:
    """File name in /run/tessera -> (content, mode) for this node's cluster duties."""
    def env(d: dict[str, str]) -> bytes:
        return "".join(f"{k}={v}\n" for k, v in d.items()).encode()
    files = {"cluster.env": (env(cluster_env(cfg, key, ec)), 0o600), "store.key": (key, 0o600)}
    if cfg.role == "meta":
        pg_home = os.path.join(home_disk, "pg")
        files["etcd.env"] = (env(etcd_env(cfg, key, os.path.join(home_disk, "etcd"))), 0o644)
        files["patroni.env"] = (env(patroni_env(key, pg_home)), 0o600)
        files["patroni.yml"] = (json.dumps(patroni_config(cfg, key, pg_home), indent=1).encode(), 0o600)
    return files
