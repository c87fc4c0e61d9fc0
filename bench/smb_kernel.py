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
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from tests.kvm.guest import HOST_IP, Guest, GuestImage, Kernel, missing_tools

MiB = 1 << 20


class Target(Protocol):
    name: str
    port: int
    share: str
    figures: dict[str, tuple[float, float, float]]


SCRIPT = r"""
t() { cut -d' ' -f1 /proc/uptime; }
fresh() { umount "$1" 2>/dev/null; sync; echo 3 > /proc/sys/vm/drop_caches; mount -t cifs "$3" "$1" -o "$2"; }
head -c @NBYTES@ /dev/urandom > /tmp/src
blk=$(head -c 4096 /dev/zero | tr '\000' x)
bench() {  # NAME SHARE PORT
  m=/mnt/$1 o="port=$3,username=@USER@,password=@PASSWORD@,vers=3.1.1" src="//@HOST@/$2"
  mkdir -p $m
  fresh $m "$o" "$src" || { echo "@@FAIL $1 mount"; return 1; }
  s=$(t); dd if=/tmp/src of=$m/kernel.bin bs=1M conv=fsync 2>/dev/null || echo "@@FAIL $1 dd-in"; e=$(t)
  echo "@@FIG $1 k_dd_in $s $e"
  fresh $m "$o" "$src"
  s=$(t); dd if=$m/kernel.bin of=/dev/null bs=1M 2>/dev/null || echo "@@FAIL $1 dd-out"; e=$(t)
  echo "@@FIG $1 k_dd_out $s $e"
  cmp -s /tmp/src $m/kernel.bin || echo "@@FAIL $1 bytes differ"
  mkdir $m/kc
  s=$(t); i=0
  while [ $i -lt @FILES@ ]; do printf '%s' "$blk" > $m/kc/f$i || break; i=$((i+1)); done
  e=$(t)
  [ $i -eq @FILES@ ] || echo "@@FAIL $1 create stopped at $i"
  echo "@@FIG $1 k_create $s $e"
  fresh $m "$o" "$src"
  s=$(t); n=$(ls -l $m/kc | grep -c '^-'); e=$(t)
  [ "$n" -eq @FILES@ ] || echo "@@FAIL $1 ls -l saw $n files"
  echo "@@FIG $1 k_list $s $e"
  umount $m
}
"""

_FIG = re.compile(r"^@@FIG (\S+) (\S+) ([\d.]+) ([\d.]+)$", re.M)
_FAIL = re.compile(r"^@@FAIL .*$", re.M)


def script(servers: Sequence[Target], a: argparse.Namespace, user: str, password: str) -> str:
    body = (SCRIPT.replace("@NBYTES@", str(a.kernel_mib * MiB)).replace("@FILES@", str(a.kernel_files))
            .replace("@HOST@", HOST_IP).replace("@USER@", user).replace("@PASSWORD@", password))
    return body + "".join(f"bench {s.name} {s.share} {s.port}\n" for s in servers)


def figures(output: str, a: argparse.Namespace) -> dict[tuple[str, str], float]:
    """(server, figure) -> rate (MB/s, files/s) or, for the listing, seconds, from the guest's output.

    >>> a = argparse.Namespace(kernel_mib=16, kernel_files=100)
    >>> figures("@@FIG Samba k_dd_in 10.00 12.00\\n@@FIG Samba k_create 1.0 3.0\\n@@FIG Samba k_list 4 4.5\\n", a)
    {('Samba', 'k_dd_in'): 8.388608, ('Samba', 'k_create'): 50.0, ('Samba', 'k_list'): 0.5}
    """
    out = {}
    for m in _FIG.finditer(output):
        took = max(float(m[4]) - float(m[3]), 0.01)
        if m[2] == "k_list":
            out[(m[1], m[2])] = took
            continue
        work = a.kernel_mib * MiB / 1e6 if m[2].startswith("k_dd") else a.kernel_files
        out[(m[1], m[2])] = work / took
    return out


def run(servers: Sequence[Target], a: argparse.Namespace, base: str, user: str, password: str) -> None:
    """Boot the guest once, measure every server; figures land in each server's ``figures``."""
    kernel = Kernel.appliance()
    missing = missing_tools()
    if kernel is None or missing:
        why = "the appliance kernel is not built (make image)" if kernel is None else f"missing {missing}"
        print(f"# --kernel skipped: {why}", flush=True)
        return
    work = Path(base) / "kvm"
    image = GuestImage.build(work, kernel)
    print(f"# kernel client: {kernel.vmlinuz} ({kernel.modules.name}) cifs under qemu TCG, one boot for both "
          "servers", flush=True)
    # not Guest.run(): it enters `with self.start()`, and __enter__ starts a second qemu on the same script
    with Guest(image, work, script(servers, a, user, password), name="bench", memory_mb=1024) as guest:
        res = guest.finish(a.kernel_limit_s)
    got = figures(res.output, a)
    fails = _FAIL.findall(res.output)
    if len(got) != 4 * len(servers):
        fails.append(f"figures missing: only {sorted(got)}")
    if fails or res.rc != 0:
        print(res.report(), file=sys.stderr)
        raise RuntimeError(f"kernel client run failed: {fails or res.rc}")
    for s in servers:
        for (name, key), v in got.items():
            if name == s.name:
                s.figures[key] = (v, -1.0, -1.0)
