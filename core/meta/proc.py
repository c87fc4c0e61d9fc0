"""Process identity for ownership of open segments, locks and share modes.

A process is named ``host:pid:starttime`` so a recycled pid is not mistaken
for the original owner.  Liveness is only decidable for processes on this host;
others are assumed alive (a multi-node store expires them by lease instead).
"""

from __future__ import annotations

import functools
import os
import socket


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


def current() -> str:
    """This process's identity (recomputed after fork)."""
    pid = os.getpid()
    return f"{_host()}:{pid}:{_start_time(pid) or '0'}"


def alive(proc: str) -> bool:
    try:
        host, pid_s, start = proc.rsplit(":", 2)
        pid = int(pid_s)
    except ValueError:
        return False
    if host != _host():
        return True
    now = _start_time(pid)
    return now is not None and (start == "0" or now == start)
