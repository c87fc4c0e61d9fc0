"""``bench/nfs.py --kernel``: the Linux kernel's NFSv3 client in a qemu (TCG) guest, against both servers.

One boot of the kvm test guest (tests/kvm/guest.py: the appliance's kernel, busybox, qemu user networking)
mounts each server in turn (``vers=3,proto=tcp,nolock``, the ports given, so no portmapper) and runs:

* ``dd`` of a file of random bytes from the guest's tmpfs onto the mount, ``conv=fsync``;
* ``dd`` of it back to /dev/null after ``drop_caches`` and a fresh mount (so the bytes cross the wire);
* a shell loop creating ``--kernel-files`` files of 4 KiB (``printf`` is a shell builtin: no fork per file;
  each close flushes the file to the server, as close-to-open consistency requires);
* ``ls -l`` of that directory after a fresh mount (READDIRPLUS, then whatever the client still needs).

Times come from the guest's /proc/uptime (10 ms ticks).  The guest is emulated (TCG, no KVM here), so these
figures say more about the client's round trips than about either server's ceiling; the ratio is the point.
Run inside bench/nfs.py's network namespace: the guest's 10.0.2.2 is that namespace's 127.0.0.1.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Protocol

import kernel_common as kc


class Target(Protocol):
    name: str
    port: int
    mnt_port: int
    path: str
    figures: dict[str, tuple[float, float]]


MOUNT = 'mount -t nfs -o "$2" "$3" "$1"'
HEAD = ('# NAME EXPORT PORT MOUNTPORT\n'
        '  m=/mnt/$1 o="vers=3,proto=tcp,port=$3,mountport=$4,mountproto=tcp,nolock" src="@HOST@:$2"')


def script(servers: Sequence[Target], a: argparse.Namespace) -> str:
    return kc.guest_script(MOUNT, HEAD, a, [f"{s.name} {s.path} {s.port} {s.mnt_port}" for s in servers])


def figures(output: str, a: argparse.Namespace) -> dict[tuple[str, str], float]:
    """(server, figure) -> rate from the guest's output.

    >>> a = argparse.Namespace(kernel_mib=16, kernel_files=100)
    >>> figures("@@FIG Tessera k_dd_in 10.00 12.00\\n@@FIG Tessera k_create 1.0 3.0\\n", a)
    {('Tessera', 'k_dd_in'): 8.388608, ('Tessera', 'k_create'): 50.0}
    """
    return kc.figures(output, a)


def run(servers: Sequence[Target], a: argparse.Namespace, base: str) -> None:
    """Boot the guest once, measure every server; figures land in each server's ``figures``."""
    got = kc.run(a, base, script(servers, a), len(servers))
    for s in servers:
        for key, v in got.get(s.name, {}).items():
            s.figures[key] = (v, -1.0)
