"""A store on disk: its data directory, metadata and targets, opened as one.

Layout of a data directory (``tessera init``)::

    DIR/tessera.yaml          the configuration (gateway.config)
    DIR/meta/                 mode 0700
    DIR/meta/meta.db          SQLite metadata (WAL; it and its -wal/-shm files 0600), or
    DIR/meta/url              the libpq URL of the PostgreSQL metadata (0600; core.meta.factory)
    DIR/meta/store.key        the key S3 secrets are sealed with (0600; core.identity.secretbox)
    DIR/targets/t0 .. tN-1    default target directories (each may live on its own disk)

Store-wide constants (geometry, cell size, inline threshold, chunk size,
segment size) are fixed at init and kept in the metadata ``info`` table.
Opening a store also tightens the modes above on stores made before they were
set, makes a store key for stores made before it existed, and brings the
metadata schema up to date.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass

from core.cluster import DEFAULT_DEAD_AFTER_S, ClusterPlane, Liveness, NodeInfo, install, load_node, token
from core.cluster import target_factory as cluster_factory
from core.data import maintenance as mt
from core.data.layout import BLOCK_SIZE, Geometry, default_geometry
from core.data.store import DataStore, TargetFactory, default_target
from core.data.target import DirTarget
from core.errors import Exists, InvalidArgument, NotFound, StoreError
from core.fs import namespace as ns
from core.fs.extents import CHUNK, Piece, resolve
from core.fs.fs import FileSystem
from core.identity import KEY_FILE, Identity, StoreKey
from core.identity.sids import domain_sid
from core.meta.factory import open_meta, url_path, write_url
from core.meta.sqlite import SqliteMeta
from core.meta.store import MetaStore
from core.meta.txn import Txn
from core.meta.types import SegmentInfo, TargetInfo

DEFAULT_CELL = 256 * 1024
DEFAULT_SHARD_BYTES = 256 * 1024 * 1024


def meta_path(data_dir: str) -> str:
    return os.path.join(data_dir, "meta", "meta.db")


def key_path(data_dir: str) -> str:
    return os.path.join(data_dir, "meta", KEY_FILE)


def is_store(data_dir: str) -> bool:
    return os.path.exists(meta_path(data_dir)) or os.path.exists(url_path(data_dir))


def _secure_meta(data_dir: str, *, create: bool = False) -> None:
    """The metadata directory 0700 and its files 0600 (only what this process owns is changed)."""
    meta_dir = os.path.dirname(meta_path(data_dir))
    if create:
        os.makedirs(meta_dir, mode=0o700, exist_ok=True)
        os.close(os.open(meta_path(data_dir), os.O_WRONLY | os.O_CREAT, 0o600))
    for path, mode in ((meta_dir, 0o700), *((meta_path(data_dir) + sfx, 0o600) for sfx in ("", "-wal", "-shm")),
                       (key_path(data_dir), 0o600)):
        try:
            if os.stat(path).st_mode & 0o777 & ~mode:
                os.chmod(path, mode)
        except (FileNotFoundError, PermissionError):
            pass


@dataclass
class Store(ClusterPlane):
    """An opened store.  Protocols see it as a ``core.fs.Volume`` (``fs`` + ``identity``); the
    gateway's admin plane uses the methods below (and the cluster's, from :class:`core.cluster.ClusterPlane`).
    The metadata and data stores stay private to core (``_meta``, ``_data``)."""

    data_dir: str
    _meta: MetaStore
    _data: DataStore
    fs: FileSystem
    id: uuid.UUID
    identity: Identity
    node: NodeInfo | None = None  # this data directory's cluster node (None: a one-node store)
    _secret: bytes = b""  # the target servers' cluster token
    _live: Liveness | None = None

    def close(self) -> None:
        try:
            self.fs.close()
            self._data.close()
        finally:
            self._meta.close()

    # -- the admin plane (CLI, admin endpoint, maintenance loop) ----------------------------
    @property
    def geometry(self) -> Geometry:
        return self._data.geo

    def targets(self) -> list[TargetInfo]:
        return self._data.target_infos()

    def health(self) -> mt.Health:
        return mt.health(self._data)

    def scrub(self, *, repair: bool = False, progress: mt.Progress | None = None) -> mt.ScrubReport:
        return mt.scrub(self._data, repair=repair, progress=progress)

    def rebuild(self, *, progress: mt.Progress | None = None) -> mt.RebuildReport:
        return mt.rebuild(self._data, progress=progress)

    def collect(self, *, seal: bool = False) -> mt.GcReport:
        """Segment GC; ``seal`` first seals this process's open segments (the CLI's ``gc``)."""
        if seal:
            self._data.seal()
        return mt.collect(self._data)

    def refresh(self) -> None:
        """Pick up target changes other processes made."""
        self._data.refresh()

    def repair_pending(self) -> bool:
        """Cells found bad by reads and not yet repaired (this process's reports flushed first)."""
        self._data.flush_repairs()
        with self._meta.read() as t:
            return bool(t.repairs())

    def add_target(self, path: str, weight: float, domain: str) -> int:
        if any(t.path == path for t in self.targets()):
            raise Exists(f"{path} is already a target")
        if os.path.exists(os.path.join(path, "target.json")):
            raise Exists(f"{path} is already a target (of some store)")
        tid = self._meta.write(lambda t: t.add_target(path, weight, domain, time.time_ns()))
        DirTarget.format(path, tid, self.id)
        return tid

    def fail_target(self, tid: int) -> None:
        if not any(t.id == tid for t in self.targets()):
            raise NotFound(f"no target {tid}")
        self._meta.write(lambda t: t.set_target_state(tid, "failed"))

    def layout(self, ino: int, size: int) -> tuple[bool, list[Piece], dict[int, SegmentInfo]]:
        """Where a file's bytes are: (inline?, its pieces, the segments they name)."""
        with self._meta.read() as t:
            node = t.inode(ino)
            inline = node is not None and node.inline_data is not None
            slices = t.slices(ino, 0, max(0, (size - 1) // self.fs.chunk)) if size else []
        pieces = [] if inline else resolve(slices, 0, size, self.fs.chunk)
        segs = {p.segment: self._data.segment(p.segment) for p in pieces if p.segment}
        return inline, pieces, segs

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def init_store(data_dir: str, *, targets: list[str] | None = None, ntargets: int = 6,
               domains: list[str] | None = None, ec: tuple[int, int] | None = None, cell: int = DEFAULT_CELL,
               inline_max: int = 16 * 1024, shard_bytes: int = DEFAULT_SHARD_BYTES,
               meta_url: str | None = None, node: str = "", trash_days: float = 1.0) -> uuid.UUID:
    """Create a new store; raises Exists if one is already there.  ``meta_url``: keep the metadata in
    that PostgreSQL database (which must exist and hold no store yet) instead of SQLite.  ``node``: the
    first node of a cluster (:func:`core.cluster.init_cluster`): its targets are that node's, the node is
    their fault domain, and the geometry may need more targets than this node has (more nodes join).
    ``trash_days``: the store's default trash policy (deleted and replaced files are kept that long; 0 = off)."""
    if is_store(data_dir):
        raise Exists(f"a store already exists in {data_dir}")
    if cell < 64 * 1024 or cell % BLOCK_SIZE:
        raise InvalidArgument(f"cell size must be a multiple of {BLOCK_SIZE} and at least 64 KiB")
    paths = targets or [os.path.join(data_dir, "targets", f"t{i}") for i in range(ntargets)]
    if not paths:
        raise InvalidArgument("a store needs at least one target")
    if domains is not None and len(domains) != len(paths):
        raise InvalidArgument(f"{len(domains)} fault domains given for {len(paths)} targets")
    if len(set(map(os.path.abspath, paths))) != len(paths) and not all(p.startswith("mem:") for p in paths):
        raise InvalidArgument("target paths must be distinct")
    k, m = ec or default_geometry(len(paths))
    if k + m > len(paths) and not node:
        raise InvalidArgument(f"{k}+{m} needs at least {k + m} targets, got {len(paths)}")
    Geometry(k, m, cell)
    store_id = uuid.uuid4()
    os.makedirs(os.path.dirname(meta_path(data_dir)), mode=0o700, exist_ok=True)
    abs_paths = [p if p.startswith("mem:") else os.path.abspath(p) for p in paths]
    for i, p in enumerate(abs_paths):
        if not p.startswith("mem:"):
            _check_target_dir(p)
            DirTarget.format(p, i, store_id)
    if meta_url is None:
        _secure_meta(data_dir, create=True)
    else:
        _check_empty_pg(meta_url)
        write_url(data_dir, meta_url)
        _secure_meta(data_dir)
    StoreKey.load_or_create(key_path(data_dir))
    meta = open_meta(data_dir, create=True)
    now = time.time_ns()
    settings = {"store_id": str(store_id), "k": k, "m": m, "cell": cell, "inline_max": inline_max,
                "chunk": CHUNK, "segment_stripes": max(1, shard_bytes // cell), "created": now,
                "domain_sid": domain_sid(store_id), "trash_days": repr(float(trash_days)), "trash_bytes": 0}

    def setup(t: Txn) -> None:
        for key, val in settings.items():
            t.set_info(key, str(val))
        for i, p in enumerate(abs_paths):
            t.add_target(p, 1.0, domains[i] if domains else node, now, node)
        ns.make_root(t)
    try:
        meta.write(setup)
    finally:
        meta.close()
    return store_id


def _check_empty_pg(url: str) -> None:
    """Refuse a PostgreSQL database that already holds a store (init never adopts one)."""
    from core.meta.pg import PgMeta
    try:
        meta = PgMeta(url)
    except StoreError as e:
        if "no Tessera metadata" in str(e):
            return
        raise
    try:
        with meta.read() as t:
            sid = t.info("store_id")
    finally:
        meta.close()
    if sid is not None:
        raise Exists(f"the metadata database already holds store {sid}")


def _check_target_dir(path: str) -> None:
    if os.path.exists(os.path.join(path, "target.json")):
        raise Exists(f"{path} is already a target")
    if os.path.exists(path) and not os.path.isdir(path):
        raise InvalidArgument(f"{path} is not a directory")


def open_store(data_dir: str, *, codec: str = "isal", threads: int = 4,
               target_factory: TargetFactory = default_target, dead_after: float = DEFAULT_DEAD_AFTER_S) -> Store:
    """Open the store in ``data_dir``.  A cluster node's directory (``meta/node.json``) opens the other
    nodes' targets through their target servers and judges their processes by heartbeat (``dead_after``)."""
    if not is_store(data_dir):
        raise StoreError(f"no Tessera store in {data_dir} (run 'tessera init' first)")
    _secure_meta(data_dir)
    node = load_node(data_dir)
    meta = open_meta(data_dir)
    live: Liveness | None = None
    secret = b""
    try:
        key, _ = StoreKey.load_or_create(key_path(data_dir))
        if node is not None:
            live = install(meta, node.name, dead_after)
            secret = token(key)
            target_factory = cluster_factory(meta, node.name, secret, live)
        identity = Identity(meta, key)
        if identity.resealed and isinstance(meta, SqliteMeta):  # no schema-1 secret left in the WAL either
            meta.checkpoint()
        with meta.read() as t:
            info = {k: t.info(k) for k in ("store_id", "k", "m", "cell", "inline_max", "chunk",
                                           "segment_stripes")}
        if any(v is None for v in info.values()):
            raise StoreError(f"store metadata in {data_dir} is incomplete")
        geo = Geometry(int(info["k"] or 0), int(info["m"] or 0), int(info["cell"] or 0))
        sid = uuid.UUID(info["store_id"])
        data = DataStore(meta, geo, sid, segment_stripes=int(info["segment_stripes"] or 1),
                         threads=threads, codec=codec, target_factory=target_factory)
        fs = FileSystem(meta, data, inline_max=int(info["inline_max"] or 0), chunk=int(info["chunk"] or CHUNK))
    except BaseException:
        meta.close()
        raise
    return Store(data_dir, meta, data, fs, sid, identity, node, secret, live)
