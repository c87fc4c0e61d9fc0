"""Server, session, tree and open state (MS-SMB2 3.3.1), as plain objects. No I/O.

- :class:`ServerContext`: one per server process: the volume, the shares (re-read from the
  config source at most every second), identities, the negotiate configuration, the ServerGuid
  and the table of every open (across connections: share modes and oplocks/leases are per file).
- :class:`Session`: one authenticated user on a connection: the NTLM exchange while it runs,
  then the user, the core.fs view as that user, the signing/encryption keys, its trees.
- :class:`Tree`: a TREE_CONNECT to a share (or IPC$), with the maximal access it grants.
- :class:`Open`: a CREATE's result: the FileId, the inode, the granted access, the core.fs
  handle (files) or listing cursor (directories) or pipe (IPC$), delete-on-close.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.fs import Attr, Cred, FileHandle, FileSystem, Volume
from core.identity import Identity

from .auth import NtlmServer
from .crypto import Cipher, SessionKeys, SigningAlgorithm
from .negotiate import NegotiateConfig
from .shares import Share

REFRESH_S = 1.0


class ServerContext:
    """What every connection of one SMB server shares."""

    def __init__(self, volume: Volume, shares: Callable[[], Sequence[Share]], *,
                 negotiate: NegotiateConfig | None = None, server_name: str = "TESSERA",
                 domain: str = "WORKGROUP", refresh_s: float = REFRESH_S) -> None:
        self.volume = volume
        self.fs: FileSystem = volume.fs
        self.identity: Identity = volume.identity
        self.negotiate = negotiate or NegotiateConfig()
        self.server_name = server_name
        self.domain = domain
        self.server_guid = os.urandom(16)
        self.start_filetime = filetime_now()
        self._source = shares
        self._refresh_s = refresh_s
        self._shares: tuple[Share, ...] = tuple(shares())
        self._read_at = time.monotonic()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.opens: dict[int, Open] = {}       # volatile id -> open, every connection's
        self._views: dict[Cred, FileSystem] = {}
        self.doomed: set[int] = set()          # inodes with a delete pending (removed at their last close)
        from .leases import LeaseTable
        self.leases = LeaseTable()
        self.lease_lock = threading.Lock()
        self.stamps: dict[int, tuple[int, int] | None] = {}  # leased file -> (ctime, size) last seen
        self.kick: Callable[[], None] = lambda: None        # the server's: run the poller now

    @property
    def lock_prefix(self) -> str:
        """The start of every lock owner this server process uses (``smb:<guid>:<open>``)."""
        return f"smb:{self.server_guid.hex()[:8]}:"

    def foreign_locks(self, ino: int) -> bool:
        """Whether byte-range locks from outside this server (NFS, core.fs, another process) cover ``ino``."""
        return any(not lk.owner.startswith(self.lock_prefix) for lk in self.fs.locks(ino))

    def delete_pending(self, ino: int) -> bool:
        return ino in self.doomed

    def opens_of(self, ino: int) -> list[Open]:
        return [o for o in self.opens.values() if o.ino == ino]

    def shares(self) -> tuple[Share, ...]:
        """The current shares (a failing source keeps the previous list)."""
        if time.monotonic() - self._read_at >= self._refresh_s:
            with self._lock:
                try:
                    self._shares = tuple(self._source())
                except Exception:
                    import logging
                    logging.getLogger("tessera.smb").exception("reading the SMB shares failed; keeping the old ones")
                self._read_at = time.monotonic()
        return self._shares

    def next_id(self) -> int:
        return next(self._ids)

    def view(self, cred: Cred) -> FileSystem:
        """The file system as ``cred`` (cached per credential).

        Views are not durable per call (core.fs ``durable=False``): as on Windows and Samba, a change is
        on stable storage once the client asks (FLUSH, WRITE_THROUGH); before that it survives a
        killed server but not a power cut.
        """
        v = self._views.get(cred)
        if v is None:
            if len(self._views) > 4096:
                self._views.clear()
            v = self._views[cred] = self.fs.as_user(cred, durable=False)
        return v


def filetime_now() -> int:
    return time.time_ns() // 100 + 116444736000000000


@dataclass
class Session:
    """One session (MS-SMB2 3.3.1.8)."""

    id: int
    ntlm: NtlmServer
    valid: bool = False
    user: str | None = None            # None: anonymous (guest) once valid
    cred: Cred | None = None
    fs: FileSystem | None = None
    groups: tuple[str, ...] = ()
    keys: SessionKeys | None = None
    signing: SigningAlgorithm = SigningAlgorithm.HMAC_SHA256
    cipher: Cipher | None = None
    signing_required: bool = True
    encrypt_data: bool = False         # every message of the session must be encrypted
    client_signs: bool = False         # the client signed a request: sign every answer
    preauth: bytes = b""               # 3.1.1 session preauth hash while setting up
    trees: dict[int, Tree] = field(default_factory=dict)
    tree_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def anonymous(self) -> bool:
        return self.valid and self.user is None


@dataclass
class Tree:
    """A tree connect (3.3.1.10)."""

    id: int
    share: Share | None                # None: IPC$
    root: Attr | None
    fs: FileSystem | None
    maximal_access: int
    encrypt: bool = False
    origin: Tree | None = None         # a Previous Versions view of this tree (``snapshots``): read only
    snapshot_ns: int = 0               # ... as it was at this time

    @property
    def ipc(self) -> bool:
        return self.share is None

    @property
    def read_only(self) -> bool:
        return self.origin is not None or (self.share is not None and self.share.read_only)

    @property
    def connected(self) -> Tree:
        """The tree connect itself (a snapshot view's origin): what an open's FileId is checked against."""
        return self.origin or self


@dataclass
class Listing:
    """A directory open's enumeration: the pattern and the entries still to send."""

    pattern: str
    cursor: Any = None                 # handlers_dir's page-at-a-time reader


@dataclass
class Open:
    """An open (3.3.1.10): FileId = persistent (8) + volatile (8)."""

    volatile: int
    persistent: int
    session: Session
    tree: Tree
    path: str                          # backslash-separated, from the share root ('' = the root)
    ino: int
    gen: int
    is_dir: bool
    access: int                        # granted NT access mask
    parent: int = 0                    # the directory inode holding it (for rename/delete)
    name: str = ""                     # its name in ``parent``
    handle: FileHandle | None = None
    share_id: int | None = None
    delete_on_close: bool = False
    options: int = 0
    position: int = 0
    listing: Listing | None = None
    pipe: Any = None                   # IPC$: the named pipe's state (srvsvc)
    stream: str = ""
    written: bool = False
    conn: Any = None                   # the Connection it belongs to (for oplock/lease breaks)
    encrypted: bool = False            # made over an encrypted session: breaks go encrypted
    lock_owner: str = ""
    locks: list[tuple[int, int, bool]] = field(default_factory=list)

    @property
    def file_id(self) -> bytes:
        return self.persistent.to_bytes(8, "little") + self.volatile.to_bytes(8, "little")
