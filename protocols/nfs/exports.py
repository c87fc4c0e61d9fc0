"""NFS exports: which store directories are served, to which clients, and how.

An :class:`Export` is one ``nfs.exports`` entry of ``tessera.yaml``, validated once
when it is built (a :class:`ValueError` names the bad field).  Its ``id`` is a stable
u32 carried in every file handle (``core.fs`` handle format v1): the CRC-32 of the
normalised path (UTF-8), so handles survive restarts and config reloads for as long
as the export keeps its path; renaming an export makes its old handles Stale.  Two
exports whose paths collide on the CRC are refused together by :func:`check_unique`.

>>> e = Export.build("/data/", ["127.0.0.1", "10.0.0.0/8"], access="ro")
>>> e.path, e.clients, e.access, e.squash, hex(e.id)
('/data', ('127.0.0.1', '10.0.0.0/8'), 'ro', 'root', '0x90463b7')
>>> e.allows("10.1.2.3"), e.allows("::ffff:10.1.2.3"), e.allows("192.168.0.1")
(True, True, False)
>>> Export.build("data", ["*"])
Traceback (most recent call last):
...
ValueError: export path 'data' must be absolute (start with /)
"""

from __future__ import annotations

import functools
import ipaddress
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

ACCESS = ("rw", "ro")
SQUASH = ("none", "root", "all")
MAX_ID = 2**32 - 2  # 2**32-1 is (u32)-1, "no id", in AUTH_SYS and on Linux

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def normalise_path(path: str) -> str:
    """The canonical store path of an export: absolute, no ``.``/``..``, no repeated or trailing ``/``.

    >>> [normalise_path(p) for p in ("/", "//data//x/", "/data/./x")]
    ['/', '/data/x', '/data/x']
    >>> normalise_path("/data/../etc")
    Traceback (most recent call last):
    ...
    ValueError: export path '/data/../etc' may not contain '..'
    """
    if not isinstance(path, str) or not path:
        raise ValueError(f"export path must be a non-empty string, got {path!r}")
    if not path.startswith("/"):
        raise ValueError(f"export path {path!r} must be absolute (start with /)")
    if "\0" in path:
        raise ValueError(f"export path {path!r} contains a NUL byte")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"export path {path!r} may not contain '..'")
    return "/" + "/".join(parts)


def export_id(path: str) -> int:
    """The u32 export id of a normalised path (CRC-32 of its UTF-8 bytes).

    >>> export_id("/"), export_id("/data")
    (2043925204, 151282615)
    """
    return zlib.crc32(path.encode("utf-8", "surrogateescape")) & 0xFFFFFFFF


def parse_client(spec: str) -> tuple[Net, ...]:
    """One client spec: ``*`` (everyone, IPv4 and IPv6), an address or a network in CIDR form.

    Host bits set in a network are ignored, as exports(5) does (``10.1.2.3/8`` is ``10.0.0.0/8``).

    >>> [[str(n) for n in parse_client(s)] for s in ("*", "::1", "10.1.2.3/8")]
    [['0.0.0.0/0', '::/0'], ['::1/128'], ['10.0.0.0/8']]
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"export client must be an address, a network or '*', got {spec!r}")
    s = spec.strip()
    if s == "*":
        return ipaddress.IPv4Network("0.0.0.0/0"), ipaddress.IPv6Network("::/0")
    try:
        return (ipaddress.ip_network(s, strict=False),)
    except ValueError:
        raise ValueError(f"export client {spec!r} is not an IP address, an address/prefix network or '*' "
                         "(host names are not supported)") from None


@functools.lru_cache(maxsize=4096)
def peer_addresses(ip: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
    """The addresses a peer counts as: itself, plus the IPv4 address inside an IPv4-mapped IPv6 one.

    >>> [str(a) for a in peer_addresses("::ffff:127.0.0.1")]
    ['::ffff:7f00:1', '127.0.0.1']
    >>> peer_addresses("not an address")
    ()
    """
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    except ValueError:
        return ()
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr, addr.ipv4_mapped
    return (addr,)


def _shown(spec: str, net: Net) -> str:
    """How a client spec is listed (MOUNT EXPORT's groups): ``*``, an address, or a network."""
    if spec.strip() == "*":
        return "*"
    return str(net.network_address) if "/" not in spec else str(net)


def _check_id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise ValueError(f"export {name} must be an integer from 0 to {MAX_ID}, got {value!r}")
    return value


@dataclass(frozen=True)
class Export:
    """One export.  Build it with :meth:`build` (or the constructor: both validate and normalise).

    ``clients`` holds the normalised network of each spec (``*`` stays ``*``); ``id`` is
    derived from ``path`` (see the module text).
    """

    path: str
    clients: tuple[str, ...] = ("*",)
    access: str = "rw"
    squash: str = "root"
    anonuid: int = 65534
    anongid: int = 65534
    id: int = field(init=False)
    _nets: tuple[Net, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        path = normalise_path(self.path)
        if isinstance(self.clients, str) or not isinstance(self.clients, Iterable):
            raise ValueError(f"export {path}: clients must be a list, got {self.clients!r}")
        specs = tuple(self.clients)
        if not specs:
            raise ValueError(f"export {path}: clients is empty (use ['*'] for every client)")
        parsed = [parse_client(c) for c in specs]
        shown = tuple(_shown(c, n[0]) for c, n in zip(specs, parsed, strict=True))
        nets = tuple(n for ns in parsed for n in ns)
        if self.access not in ACCESS:
            raise ValueError(f"export {path}: access must be one of {', '.join(ACCESS)}, got {self.access!r}")
        if self.squash not in SQUASH:
            raise ValueError(f"export {path}: squash must be one of {', '.join(SQUASH)}, got {self.squash!r}")
        _check_id("anonuid", self.anonuid)
        _check_id("anongid", self.anongid)
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "clients", shown)
        object.__setattr__(self, "id", export_id(path))
        object.__setattr__(self, "_nets", nets)

    @classmethod
    def build(cls, path: str, clients: Iterable[str] = ("*",), access: str = "rw", squash: str = "root",
              anonuid: int = 65534, anongid: int = 65534) -> Export:
        """Validate and normalise one export (``ValueError`` with a message naming the field)."""
        if isinstance(clients, str):
            clients = [clients]
        return cls(path, tuple(clients), access, squash, anonuid, anongid)

    @property
    def read_only(self) -> bool:
        return self.access == "ro"

    def allows(self, ip: str) -> bool:
        """Whether a peer at ``ip`` (IPv4, IPv6 or IPv4-mapped IPv6) is one of this export's clients."""
        return _allows(self._nets, ip)

    def contains(self, path: str) -> bool:
        """Whether a normalised ``path`` is this export's directory or below it.

        >>> e = Export.build("/data", ["*"])
        >>> e.contains("/data"), e.contains("/data/x"), e.contains("/database")
        (True, True, False)
        """
        return self.path == "/" or path == self.path or path.startswith(self.path + "/")


@functools.lru_cache(maxsize=4096)
def _allows(nets: tuple[Net, ...], ip: str) -> bool:
    return any(a in n for a in peer_addresses(ip) for n in nets if a.version == n.version)


def check_unique(exports: Sequence[Export]) -> None:
    """Refuse two exports of one path, or two paths whose ids collide (handles must name one export)."""
    seen: dict[int, str] = {}
    for e in exports:
        other = seen.get(e.id)
        if other == e.path:
            raise ValueError(f"export {e.path} is listed twice")
        if other is not None:
            raise ValueError(f"exports {other} and {e.path} have the same id {e.id} (CRC-32 of the path): "
                             "rename one")
        seen[e.id] = e.path


def find_export(exports: Sequence[Export], path: str, ip: str) -> tuple[Export | None, bool]:
    """The export serving a MOUNT of ``path`` to a peer at ``ip``: (export, whether one contains the path).

    The deepest export containing ``path`` that allows the peer wins; ``(None, True)`` means some
    export contains the path but none allows this peer (MNT3ERR_ACCES), ``(None, False)`` that no
    export contains it (MNT3ERR_NOENT).

    >>> ex = [Export.build("/", ["10.0.0.0/8"]), Export.build("/data", ["127.0.0.1"])]
    >>> find_export(ex, "/data/x", "127.0.0.1")[0].path, find_export(ex, "/data/x", "10.0.0.1")[0].path
    ('/data', '/')
    >>> find_export(ex, "/data", "192.168.1.1")
    (None, True)
    """
    holders = [e for e in exports if e.contains(path)]
    allowed = [e for e in holders if e.allows(ip)]
    if not allowed:
        return None, bool(holders)
    return max(allowed, key=lambda e: len(e.path)), True
