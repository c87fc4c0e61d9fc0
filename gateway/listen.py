"""Listen addresses: probed before a server starts, reported by their config key when they cannot be bound.

A port held by another program is one clear line naming the key and what to change, e.g.
``nfs.listen 0.0.0.0:2049: address already in use (another NFS server? set nfs.listen or
--nfs-listen)``, never a bare "Address already in use".

Ports below ``net.ipv4.ip_unprivileged_port_start`` (1024) need root or CAP_NET_BIND_SERVICE;
:func:`privileged` says whether this process has them. ``tessera serve`` run by a user (``make run``)
serves a protocol that has a ``user_listen`` (NFS) there: a user's server neither needs nor takes the
machine's NFS port.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterable

from core.errors import ConfigError
from gateway.config import parse_listen

CAP_NET_BIND_SERVICE = 10


def bind_error(key: str, address: str, err: OSError, hint: str, transport: str = "tcp") -> ConfigError:
    """The one-line error for a listen address that could not be bound.

    >>> str(bind_error("s3.listen", "0.0.0.0:9000", OSError(errno.EADDRINUSE, "x"), "set s3.listen"))
    's3.listen 0.0.0.0:9000: address already in use (set s3.listen)'
    >>> str(bind_error("nfs.listen", "10.9.9.9:2049", OSError(errno.EADDRNOTAVAIL, "x"), "..."))
    'nfs.listen 10.9.9.9:2049: no such address on this machine'
    """
    if err.errno == errno.EADDRINUSE:
        why = f"address already in use{' (UDP)' if transport == 'udp' else ''} ({hint})"
    elif err.errno == errno.EACCES:
        why = (f"permission denied (ports below {unprivileged_port_start()} need root or CAP_NET_BIND_SERVICE; "
               f"set {key})")
    elif err.errno == errno.EADDRNOTAVAIL:
        why = "no such address on this machine"
    else:
        why = (err.strerror or str(err)).lower()
    return ConfigError(f"{key} {address}: {why}")


def probe(key: str, address: str, transports: Iterable[str], hint: str) -> None:
    """Bind ``address`` once per transport (``tcp``, ``udp``) and let go; :func:`bind_error` when one fails.

    TCP binds with SO_REUSEADDR, as servers do (a port in TIME_WAIT is free; one a program listens on is
    not); UDP binds without it, so a socket bound there already is found.
    """
    host, port = parse_listen(address)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ConfigError(f"{key} {address}: {e.strerror}") from None
    family = infos[0][0]
    for t in transports:
        kind = socket.SOCK_STREAM if t == "tcp" else socket.SOCK_DGRAM
        with socket.socket(family, kind) as s:
            if t == "tcp":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as e:
                raise bind_error(key, address, e, hint, t) from None


def unprivileged_port_start() -> int:
    """The lowest port anyone may bind (Linux's ``net.ipv4.ip_unprivileged_port_start``, 1024 by default)."""
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1024


def _has_cap(cap: int) -> bool:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> cap & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def privileged() -> bool:
    """Whether this process may bind any port (root, or CAP_NET_BIND_SERVICE)."""
    return os.geteuid() == 0 or _has_cap(CAP_NET_BIND_SERVICE)
