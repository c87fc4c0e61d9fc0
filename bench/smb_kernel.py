"""``bench/smb.py --kernel``: the Linux kernel's SMB client (cifs.ko) in a qemu (TCG) guest, against both servers.

One boot of the kvm test guest (tests/kvm/guest.py: the appliance's kernel, busybox, qemu user networking)
mounts each server in turn (``vers=3.1.1``, signed as both servers require, the port given) and runs:

* ``dd`` of a file of random bytes from the guest's tmpfs onto the mount, ``conv=fsync``;
* ``dd`` of it back to /dev/null after ``drop_caches`` and a fresh mount (so the bytes cross the wire);
* a shell loop creating ``--kernel-files`` files of 4 KiB (``printf`` is a shell builtin: no fork per file);
* ``ls -l`` of that directory after a fresh mount.

Times come from the guest's /proc/uptime (10 ms ticks).  The guest is emulated (TCG, no KVM here), so these
figures say more about the client's round trips than about either server's ceiling; the ratio is the point.
The guest's 10.0.2.2 is this machine's 127.0.0.1, where both servers listen.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Protocol

import kernel_common as kc


class Target(Protocol):
    name: str
    port: int
    share: str
    figures: dict[str, tuple[float, float, float]]


MOUNT = 'mount -t cifs "$3" "$1" -o "$2"'
HEAD = ('# NAME SHARE PORT\n'
        '  m=/mnt/$1 o="port=$3,username=@USER@,password=@PASSWORD@,vers=3.1.1" src="//@HOST@/$2"')


def script(servers: Sequence[Target], a: argparse.Namespace, user: str, password: str) -> str:
    return kc.guest_script(MOUNT, HEAD, a, [f"{s.name} {s.share} {s.port}" for s in servers],
                           USER=user, PASSWORD=password)


def figures(output: str, a: argparse.Namespace) -> dict[tuple[str, str], float]:
    """(server, figure) -> rate (MB/s, files/s) or, for the listing, seconds, from the guest's output.

    >>> a = argparse.Namespace(kernel_mib=16, kernel_files=100)
    >>> figures("@@FIG Samba k_dd_in 10.00 12.00\\n@@FIG Samba k_create 1.0 3.0\\n@@FIG Samba k_list 4 4.5\\n", a)
    {('Samba', 'k_dd_in'): 8.388608, ('Samba', 'k_create'): 50.0, ('Samba', 'k_list'): 0.5}
    """
    return kc.figures(output, a, {"k_list"})


def run(servers: Sequence[Target], a: argparse.Namespace, base: str, user: str, password: str) -> None:
    """Boot the guest once, measure every server; figures land in each server's ``figures``."""
    got = kc.run(a, base, script(servers, a, user, password), len(servers), "cifs ", {"k_list"})
    for s in servers:
        for key, v in got.get(s.name, {}).items():
            s.figures[key] = (v, -1.0, -1.0)
