#!/usr/bin/python3
"""tessera-node: get an appliance node ready before its service containers start.

Runs once per boot (``tessera-node.service``) on the appliance's own Python (stdlib + PyYAML).

1. Config, later sources overriding earlier ones, key by key:
   built-in defaults < config disk (a filesystem labelled TESSERA-CFG holding ``tessera-node.yaml``)
   < a URL or file named by ``tessera.config=`` < the kernel command line (``tessera.<key>=...``).
2. Disks: ``disks: auto`` takes every whole disk that is blank or already carries a Tessera filesystem;
   a list names devices. Blank disks get ext4 labelled ``tessera-XXXXXXXX``; a disk with anything else on
   it is never touched unless it is listed and ``format: force`` is set. Disks are mounted by label under
   /var/lib/tessera/disks/<label>, so the target paths recorded in the store survive device renames.
3. Cluster nodes (a ``cluster`` section; see ``tessera_cluster.py`` for its keys, the metadata services and
   the secrets derived from the store key): the run files for etcd + Patroni on metadata nodes and for
   ``cluster init`` / ``node join`` in the tessera containers. A disk holding a one-node store is never
   turned into a cluster node, nor a cluster node's disk into a one-node store.
4. Writes /run/tessera/: ``node.env`` (TESSERA_DATA, TESSERA_TARGETS, TESSERA_EC for the containers),
   ``tessera.yaml`` (the services' config) and ``users`` (users to ensure, one per line: NAME ACCESS_KEY
   SECRET_KEY [PASSWORD], ``-`` for keys to generate; mode 0600). A user's password is what SMB (and NFS)
   logons check; it is set again at every boot, as the node config says.

Kernel command line keys: tessera.disks=auto|/dev/vdb,/dev/vdc  tessera.format=blank|force
tessera.ec=K+M  tessera.targets_per_disk=N  tessera.user=NAME:ACCESS_KEY:SECRET_KEY[:PASSWORD] (repeatable)
tessera.config=http://host/node.yaml  tessera.s3.listen=HOST:PORT  tessera.s3.workers=N
tessera.nfs.listen=HOST:PORT  tessera.nfs.enabled=false  tessera.smb.listen=HOST:PORT  tessera.smb.enabled=false
tessera.admin.listen=HOST:PORT  tessera.log.level=LEVEL
tessera.cluster.name=NAME  tessera.cluster.addr=HOST:PORT  tessera.cluster.meta_peers=HOST,HOST,HOST
tessera.cluster.role=meta|storage  tessera.cluster.init=1  tessera.cluster.key=BASE64|URL|PATH
tessera.cluster.expect=N  tessera.cluster.target_listen=HOST:PORT
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import tessera_cluster as tc
import yaml

CONFIG_LABEL = "TESSERA-CFG"
CONFIG_FILE = "tessera-node.yaml"
DISK_LABEL_PREFIX = "tessera-"
DISKS_DIR = "/var/lib/tessera/disks"
RUN_DIR = "/run/tessera"
NODE_KEYS = {"disks", "format", "ec", "targets_per_disk", "users", "s3", "nfs", "smb", "admin", "log", "maintenance",
             "cluster"}
PASS_THROUGH = ("s3", "nfs", "smb", "admin", "log", "maintenance")
# NFS serves the whole store to private networks (a LAN, qemu's user network) with root squashed; a node config's
# nfs.exports replaces the list. SMB shares the same path as share 'tessera' to users who log on with a password
# (SMB has no client-address lists; who may connect is the share's users/groups); smb.shares replaces the list.
PRIVATE_NETWORKS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10", "127.0.0.1", "::1"]
DEFAULTS: dict[str, Any] = {
    "disks": "auto", "format": "blank", "targets_per_disk": 1, "users": [],
    "s3": {"enabled": True, "listen": "0.0.0.0:9000", "workers": 2},
    "nfs": {"enabled": True, "listen": "0.0.0.0:2049",
            "exports": [{"path": "/", "clients": PRIVATE_NETWORKS, "access": "rw", "squash": "root"}]},
    "smb": {"enabled": True, "listen": "0.0.0.0:445", "shares": [{"name": "tessera", "path": "/"}]},
    "admin": {"enabled": True, "listen": "0.0.0.0:9100"},
    "log": {"level": "info", "format": "json"},
}


class NodeError(Exception):
    """A config or disk problem, reported on the console and in the journal as one clear line."""


def log(msg: str, **fields: object) -> None:
    print(json.dumps({"msg": msg, **fields}), flush=True)


# --- configuration ------------------------------------------------------------------------------------------

def parse_cmdline(text: str) -> tuple[dict[str, Any], str | None]:
    """``tessera.*`` keys of a kernel command line -> (config overrides, config source or None)."""
    cfg: dict[str, Any] = {}
    source = None
    for word in text.split():
        if not word.startswith("tessera.") or "=" not in word:
            continue
        key, value = word[len("tessera."):].split("=", 1)
        if key == "config":
            source = value
        elif key == "user":
            parts = value.split(":", 3)  # a password may hold ':'
            if len(parts) not in (3, 4) or not all(parts):
                raise NodeError(f"tessera.user={value}: expected NAME:ACCESS_KEY:SECRET_KEY[:PASSWORD]")
            user = dict(zip(("name", "access_key", "secret_key", "password"), parts, strict=False))
            cfg.setdefault("users", []).append(user)
        elif key == "disks":
            cfg["disks"] = "auto" if value == "auto" else [d for d in value.split(",") if d]
        elif key == "targets_per_disk":
            cfg["targets_per_disk"] = _int(value, "tessera.targets_per_disk")
        elif key in ("format", "ec"):
            cfg[key] = value
        elif key.startswith("cluster.") and key != "cluster.":
            try:
                cfg.setdefault("cluster", {})[key[8:]] = tc.parse_cmdline_value(key[8:], value)
            except tc.ClusterConfigError as e:
                raise NodeError(str(e)) from None
        elif "." in key and key.split(".", 1)[0] in PASS_THROUGH:
            section, sub = key.split(".", 1)
            cfg.setdefault(section, {})[sub] = _scalar(value)
        else:
            raise NodeError(f"unknown kernel parameter tessera.{key}")
    return cfg, source


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise NodeError(f"{what}={value}: not a number") from None


def _scalar(value: str) -> Any:
    return yaml.safe_load(value) if value else ""


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Key-by-key merge; sections (dicts) merge one level down, users from later sources are added."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        elif k == "users" and isinstance(v, list):
            named = {u.get("name"): u for u in [*out.get("users", []), *v] if isinstance(u, dict)}
            out[k] = list(named.values())
        else:
            out[k] = v
    return out


def load_yaml(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise NodeError(f"{where}: not valid YAML ({e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise NodeError(f"{where}: expected a mapping of settings")
    return data


@dataclass
class NodeConfig:
    disks: str | list[str]
    format: str
    ec: str | None
    targets_per_disk: int
    users: list[dict[str, str]]
    services: dict[str, Any] = field(default_factory=dict)
    cluster: tc.ClusterConfig | None = None


def validate(raw: dict[str, Any]) -> NodeConfig:
    unknown = sorted(set(raw) - NODE_KEYS)
    if unknown:
        raise NodeError(f"unknown setting(s): {', '.join(unknown)} (known: {', '.join(sorted(NODE_KEYS))})")
    disks = raw.get("disks", "auto")
    if disks != "auto" and not (isinstance(disks, list) and disks and all(
            isinstance(d, str) and d.startswith("/dev/") for d in disks)):
        raise NodeError("disks: 'auto' or a list of device paths such as /dev/vdb")
    fmt = raw.get("format", "blank")
    if fmt not in ("blank", "force"):
        raise NodeError("format: 'blank' (only blank disks are formatted) or 'force'")
    if fmt == "force" and disks == "auto":
        raise NodeError("format: force needs an explicit disks list")
    ec = raw.get("ec")
    if ec is not None and not re.fullmatch(r"\d+\+\d+", str(ec)):
        raise NodeError(f"ec: {ec!r} is not K+M (for example 4+2)")
    tpd = raw.get("targets_per_disk", 1)
    if not isinstance(tpd, int) or isinstance(tpd, bool) or not 1 <= tpd <= 64:
        raise NodeError("targets_per_disk: a whole number from 1 to 64")
    users = raw.get("users") or []
    if not isinstance(users, list):
        raise NodeError("users: a list of {name, access_key, secret_key, password}")
    for u in users:
        if not isinstance(u, dict) or set(u) - {"name", "access_key", "secret_key", "password"} or "name" not in u:
            raise NodeError("users: each entry needs name, and optionally access_key and secret_key, password")
        if ("access_key" in u) != ("secret_key" in u):
            raise NodeError(f"users: {u.get('name')}: give both access_key and secret_key, or neither")
        for k, v in u.items():
            if not isinstance(v, str) or not v or any(c.isspace() for c in v):
                raise NodeError(f"users: {u.get('name')}: {k} must be a non-empty string without spaces")
    services = {}
    for section in PASS_THROUGH:
        val = raw.get(section)
        if val is not None and not isinstance(val, dict):
            raise NodeError(f"{section}: expected a mapping")
        if val:
            services[section] = val
    try:
        cluster = tc.validate(raw.get("cluster"))
    except tc.ClusterConfigError as e:
        raise NodeError(str(e)) from None
    if cluster is not None and cluster.target_listen:
        services["cluster"] = {"target_listen": cluster.target_listen}
    return NodeConfig(disks, fmt, None if ec is None else str(ec), tpd, users, services, cluster)


def fetch(source: str, timeout_s: float = 60.0, what: str = "tessera.config") -> str:
    """The config named by tessera.config=: an http(s) URL (retried while the network comes up) or a path."""
    return fetch_bytes(source, timeout_s, what).decode(errors="replace")


def fetch_bytes(source: str, timeout_s: float = 60.0, what: str = "tessera.config") -> bytes:
    if not source.startswith(("http://", "https://")):
        try:
            with open(source, "rb") as f:
                return f.read()
        except OSError as e:
            raise NodeError(f"{what}={source}: {e.strerror}") from None
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(source, timeout=10) as r:
                return bytes(r.read())
        except OSError as e:
            if time.monotonic() > deadline:
                raise NodeError(f"{what}={source}: {e}") from None
            time.sleep(1.0)


def store_key(cfg: NodeConfig) -> bytes | None:
    """A cluster node's store key (fetched when the config names a URL or file), None for a one-node store."""
    if cfg.cluster is None:
        return None
    try:
        return tc.resolve_key(cfg.cluster, lambda src: fetch_bytes(src, what="cluster.key"))
    except tc.ClusterConfigError as e:
        raise NodeError(str(e)) from None


def read_config_disk(run: Runner) -> str | None:
    dev = run(["blkid", "-L", CONFIG_LABEL], check=False).strip()
    if not dev:
        return None
    mnt = os.path.join(RUN_DIR, "config-disk")
    os.makedirs(mnt, exist_ok=True)
    run(["mount", "-o", "ro", dev, mnt])
    try:
        path = os.path.join(mnt, CONFIG_FILE)
        if not os.path.exists(path):
            raise NodeError(f"config disk {dev} ({CONFIG_LABEL}) has no {CONFIG_FILE}")
        with open(path) as f:
            text = f.read()
    finally:
        run(["umount", mnt])
    log("config disk read", device=dev)
    return text


def gather(cmdline: str, run: Runner) -> NodeConfig:
    over, source = parse_cmdline(cmdline)
    raw = dict(DEFAULTS)
    disk = read_config_disk(run)
    if disk is not None:
        raw = merge(raw, load_yaml(disk, f"{CONFIG_LABEL}:{CONFIG_FILE}"))
    if source:
        raw = merge(raw, load_yaml(fetch(source), source))
        log("config fetched", source=source)
    return validate(merge(raw, over))


def wait_address(host: str, run: Runner, limit_s: float = 90.0, every: float = 1.0) -> None:
    """A cluster node's cluster.addr HOST (an IP address) must be its own: wait for DHCP to assign it, then
    fail clearly (a typo, or the wrong node's config) before any disk is touched. A host name is not checked."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return
    deadline = time.monotonic() + limit_s
    while True:
        try:
            ifaces = json.loads(run(["ip", "-j", "addr", "show"], check=False) or "[]")
            have = {a.get("local") for i in ifaces for a in i.get("addr_info", [])} - {None}
        except (ValueError, AttributeError, TypeError):
            have = set()
        if host in have:
            return
        if time.monotonic() >= deadline:
            raise NodeError(f"cluster.addr: {host} is not an address of this node after {limit_s:.0f} s "
                            f"(it has {', '.join(sorted(have)) or 'none'})")
        time.sleep(every)


# --- disks --------------------------------------------------------------------------------------------------

Runner = Callable[..., str]


def run_cmd(argv: Sequence[str], check: bool = True) -> str:
    p = subprocess.run(list(argv), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise NodeError(f"{' '.join(argv)}: {p.stderr.strip() or 'exit ' + str(p.returncode)}")
    return p.stdout


@dataclass
class Disk:
    path: str
    size: int
    fstype: str | None
    label: str | None
    children: bool
    readonly: bool
    removable: bool
    kind: str

    @property
    def is_tessera(self) -> bool:
        return self.fstype == "ext4" and (self.label or "").startswith(DISK_LABEL_PREFIX)


def list_disks(run: Runner) -> list[Disk]:
    out = run(["lsblk", "-J", "-b", "-p", "-o", "NAME,TYPE,SIZE,RO,RM,FSTYPE,LABEL"])
    disks = []
    for d in json.loads(out).get("blockdevices", []):
        disks.append(Disk(d["name"], int(d.get("size") or 0), d.get("fstype"), d.get("label"),
                          bool(d.get("children")), _flag(d.get("ro")), _flag(d.get("rm")), d.get("type", "")))
    return disks


def _flag(v: object) -> bool:
    return v in (True, 1, "1", "true")


def is_blank(disk: Disk, run: Runner) -> bool:
    if disk.fstype or disk.children:
        return False
    # blkid -p probes the device itself, not udev's cache; it prints nothing when there is no signature at all
    return not run(["blkid", "-p", disk.path], check=False).strip()


def choose_disks(cfg: NodeConfig, disks: list[Disk], run: Runner) -> tuple[list[Disk], list[Disk]]:
    """-> (disks to use as they are, disks to format). Logs why each other disk is left alone."""
    use: list[Disk] = []
    fmt: list[Disk] = []
    by_path = {d.path: d for d in disks}
    if cfg.disks == "auto":
        candidates = [d for d in disks if d.kind == "disk" and not d.readonly and d.size >= 1 << 30]
    else:
        candidates = []
        for p in cfg.disks:
            real = os.path.realpath(p)
            if real not in by_path:
                raise NodeError(f"disks: {p} is not a whole disk on this node")
            candidates.append(by_path[real])
    for d in candidates:
        if d.is_tessera:
            use.append(d)
        elif is_blank(d, run):
            fmt.append(d)
        elif cfg.format == "force":
            log("formatting a disk that has data on it (format: force)", device=d.path, fstype=d.fstype)
            fmt.append(d)
        else:
            what = d.fstype or ("partitions" if d.children else "data")
            if cfg.disks == "auto":
                log("disk skipped: not blank", device=d.path, has=what)
            else:
                raise NodeError(f"disks: {d.path} has {what} on it; set format: force to format it")
    return use, fmt


def format_disk(d: Disk, run: Runner) -> str:
    label = DISK_LABEL_PREFIX + uuid.uuid4().hex[:8]
    run(["wipefs", "-a", "-q", d.path])
    run(["mkfs.ext4", "-q", "-F", "-L", label, "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1", d.path])
    log("disk formatted", device=d.path, label=label)
    return label


def mount_disk(device: str, label: str, run: Runner) -> str:
    mnt = os.path.join(DISKS_DIR, label)
    os.makedirs(mnt, exist_ok=True)
    if not os.path.ismount(mnt):
        run(["mount", "-o", "noatime", device, mnt])
    return mnt


@dataclass
class Layout:
    data_dir: str
    targets: list[str]
    domains: list[str]  # the disk (label) each target is on: its fault domain
    fresh: bool


def plan_layout(mounts: list[str], targets_per_disk: int, cluster: bool = False) -> Layout:
    """Where the store's metadata and targets live on the mounted disks (sorted by label).

    The metadata (a one-node store's meta.db, a cluster node's meta/url, store key and node.json, and on a
    metadata node PostgreSQL's and etcd's data) goes with the disk that already has it; on a new node, on the
    first disk.
    """
    if not mounts:
        raise NodeError("no disks to store data on (attach a blank disk, or list disks in the config)")
    mounts = sorted(mounts)
    one = [m for m in mounts if os.path.exists(os.path.join(m, "store", "meta", "meta.db"))]
    member = [m for m in mounts if os.path.exists(os.path.join(m, "store", "meta", "url"))]
    if cluster and one:
        raise NodeError(f"{one[0]} holds a one-node store; a cluster node needs blank disks or its own cluster "
                        "disks (remove the cluster settings to serve that store)")
    if not cluster and member:
        raise NodeError(f"{member[0]} holds a cluster node's store; give this node its tessera.cluster.* settings "
                        "to serve it")
    have = member if cluster else one
    if len(have) > 1:
        raise NodeError(f"more than one store on this node's disks: {', '.join(have)}")
    if not have and any(os.path.exists(os.path.join(m, "t0", "target.json")) for m in mounts):
        raise NodeError("disks hold Tessera targets but the disk with the store's metadata is missing")
    home = have[0] if have else mounts[0]
    targets = [os.path.join(m, f"t{i}") for m in mounts for i in range(targets_per_disk)]
    domains = [os.path.basename(m) for m in mounts for _ in range(targets_per_disk)]
    return Layout(os.path.join(home, "store"), targets, domains, not have)


def service_config(cfg: NodeConfig, data_dir: str) -> dict[str, Any]:
    return {"store": {"data": data_dir}, **cfg.services}  # gather() already merged DEFAULTS in


def write_run_files(cfg: NodeConfig, layout: Layout, run_dir: str = RUN_DIR, key: bytes | None = None) -> None:
    """The run files (module docstring). ``cluster.env`` is always written (empty on a one-node store):
    the tessera units name it with --env-file."""
    os.makedirs(run_dir, exist_ok=True)
    cluster_files: dict[str, tuple[bytes, int]] = {"cluster.env": (b"", 0o600)}
    if cfg.cluster is not None:
        if key is None:
            raise NodeError("a cluster node needs its store key (cluster.key)")
        cluster_files = tc.run_files(cfg.cluster, key, cfg.ec, os.path.dirname(layout.data_dir))
    for name, (content, mode) in cluster_files.items():
        _write(os.path.join(run_dir, name), content, mode)
    env = {"TESSERA_DATA": layout.data_dir, "TESSERA_TARGETS": " ".join(layout.targets),
           "TESSERA_DOMAINS": " ".join(layout.domains), "TESSERA_EC": cfg.ec or ""}
    _write(os.path.join(run_dir, "node.env"), "".join(f"{k}={v}\n" for k, v in env.items()), 0o644)
    _write(os.path.join(run_dir, "tessera.yaml"), yaml.safe_dump(service_config(cfg, layout.data_dir)), 0o644)
    lines = "".join(" ".join([u["name"], u.get("access_key", "-"), u.get("secret_key", "-")]
                             + ([u["password"]] if "password" in u else [])) + "\n" for u in cfg.users)
    _write(os.path.join(run_dir, "users"), lines, 0o600)


def _write(path: str, text: str | bytes, mode: int) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None, run: Runner = run_cmd) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    cmdline_path = args[0] if args else "/proc/cmdline"
    try:
        with open(cmdline_path) as f:
            cmdline = f.read()
        cfg = gather(cmdline, run)
        key = store_key(cfg)
        if cfg.cluster is not None:
            wait_address(cfg.cluster.host, run)
        run(["udevadm", "settle", "--timeout=30"], check=False)
        use, fmt = choose_disks(cfg, list_disks(run), run)
        mounts = [mount_disk(d.path, d.label or "", run) for d in use]
        mounts += [mount_disk(d.path, format_disk(d, run), run) for d in fmt]
        layout = plan_layout(mounts, cfg.targets_per_disk, cfg.cluster is not None)
        write_run_files(cfg, layout, RUN_DIR, key=key)
    except NodeError as e:
        log(f"tessera-node: {e}", level="error")
        print(f"tessera-node: error: {e}", file=sys.stderr, flush=True)
        return 1
    c = cfg.cluster
    log("node ready", data=layout.data_dir, targets=layout.targets, new_store=layout.fresh, ec=cfg.ec,
        users=[u["name"] for u in cfg.users],
        **({} if c is None else {"cluster": {"name": c.name, "addr": c.addr, "role": c.role, "init": c.init,
                                             "meta_peers": c.meta_peers}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
