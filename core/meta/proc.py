"""Process identity for ownership of open segments, locks and share modes.

A process is named ``host:pid:starttime`` so a recycled pid is not mistaken
for the original owner.  Liveness is decidable from ``/proc`` for processes on
this host.  In a cluster ``host`` is the node's name (:func:`set_node`) and a
process of another node is alive while that node's heartbeat is (the callback
given to :func:`set_node`, :class:`core.cluster.Liveness`); with no callback
others are assumed alive.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable

_NODE: list[str] = []  # this process's cluster node name, when it is one
_NODE_ALIVE: list[Callable[[str], bool]] = []


def set_node(name: str | None, node_alive: Callable[[str], bool] | None = None) -> None:
    """Name processes after the cluster node ``name`` and judge other nodes' by ``node_alive(node)``."""
    _NODE[:] = [name] if name else []
    _NODE_ALIVE[:] = [node_alive] if node_alive else []


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name may hold spaces; fields after the closing paren are plain
    fields = stat[stat.rfind(b")") + 2:].split()
    return fields[19].decode() if len(fields) > 19 else None


@functools.cache
def _host() -> str:
    return socket.gethostname()


def _me() -> str:
    return _NODE[0] if _NODE else _host()


def current() -> str:
    """This process's identity (recomputed after fork)."""
    pid = os.getpid()
    return f"{_me()}:{pid}:{_start_time(pid) or '0'}"


def alive(proc: str) -> bool:
    try:
        host, pid_s, start = proc.rsplit(":", 2)
        pid = int(pid_s)
    except ValueError:
        return False
    if host != _me():
        return _NODE_ALIVE[0](host) if _NODE_ALIVE else True
    now = _start_time(pid)
    return now is not None and (start == "0" or now == start)
