"""The kernel-client run shared by ``bench/smb.py --kernel`` (smb_kernel.py) and ``bench/nfs.py --kernel``
(nfs_kernel.py): one guest script, its figures, one boot of the kvm test guest.

The protocol modules give only what differs: the ``mount`` command inside ``fresh MOUNTPOINT OPTIONS SOURCE``
and the head of ``bench NAME ...`` (a comment naming its arguments, then ``m=``, ``o=`` and ``src=``):

* ``guest_script(mount, head, a, calls, **subs)``: the whole script, ``@NBYTES@``, ``@FILES@``, ``@HOST@`` and
  then each ``@KEY@`` of ``subs`` filled in, one ``bench`` line per entry of ``calls`` after it;
* ``figures(output, a, seconds)``: (server, figure) -> rate from the guest's ``@@FIG`` lines;
* ``run(a, base, script, what, seconds)``: boot, run, check; server name -> figure -> value (empty when the
  appliance kernel or a tool is missing, which it prints).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Collection, Iterable
from pathlib import Path

from tests.kvm.guest import HOST_IP, Guest, GuestImage, Kernel, missing_tools

MiB = 1 << 20

SCRIPT = r"""
t() { cut -d' ' -f1 /proc/uptime; }
fresh() { umount "$1" 2>/dev/null; sync; echo 3 > /proc/sys/vm/drop_caches; @MOUNT@; }
head -c @NBYTES@ /dev/urandom > /tmp/src
blk=$(head -c 4096 /dev/zero | tr '\000' x)
bench() {  @HEAD@
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


def guest_script(mount: str, head: str, a: argparse.Namespace, calls: Iterable[str], **subs: str) -> str:
    """The guest's script: ``fresh`` mounts with ``mount``, ``bench`` starts with ``head``.

    >>> a = argparse.Namespace(kernel_mib=1, kernel_files=7)
    >>> text = guest_script('mount "$3" "$1"', '# NAME\\n  m=/mnt/$1 o=@OPT@ src=@HOST@:/', a, ["x"], OPT="ro")
    >>> "@" in text.replace("@@", ""), text.count(" 7 ]"), text.splitlines()[-1]
    (False, 3, 'bench x')
    >>> [line for line in text.splitlines() if "src=" in line or "fresh()" in line][:2]
    ['fresh() { umount "$1" 2>/dev/null; sync; echo 3 > /proc/sys/vm/drop_caches; mount "$3" "$1"; }', \
'  m=/mnt/$1 o=ro src=10.0.2.2:/']
    """
    body = SCRIPT.replace("@MOUNT@", mount).replace("@HEAD@", head)
    fill = {"NBYTES": str(a.kernel_mib * MiB), "FILES": str(a.kernel_files), "HOST": HOST_IP, **subs}
    for key, value in fill.items():
        body = body.replace(f"@{key}@", value)
    return body + "".join(f"bench {c}\n" for c in calls)


def figures(output: str, a: argparse.Namespace, seconds: Collection[str] = ()) -> dict[tuple[str, str], float]:
    """(server, figure) -> rate (MB/s, files/s) from the guest's output; a figure in ``seconds`` in seconds.

    >>> a = argparse.Namespace(kernel_mib=16, kernel_files=100)
    >>> out = "@@FIG Samba k_dd_in 10.00 12.00\\n@@FIG Samba k_create 1.0 3.0\\n@@FIG Samba k_list 4 4.5\\n"
    >>> figures(out, a, {"k_list"})
    {('Samba', 'k_dd_in'): 8.388608, ('Samba', 'k_create'): 50.0, ('Samba', 'k_list'): 0.5}
    >>> figures(out, a)[("Samba", "k_list")]
    200.0
    """
    out = {}
    for m in _FIG.finditer(output):
        took = max(float(m[4]) - float(m[3]), 0.01)
        if m[2] in seconds:
            out[(m[1], m[2])] = took
            continue
        work = a.kernel_mib * MiB / 1e6 if m[2].startswith("k_dd") else a.kernel_files
        out[(m[1], m[2])] = work / took
    return out


def run(a: argparse.Namespace, base: str, script: str, servers: int, what: str = "",
        seconds: Collection[str] = ()) -> dict[str, dict[str, float]]:
    """Boot the guest once and run ``script`` (``servers`` bench lines); server name -> figure -> value.

    ``what`` goes before "under qemu TCG" in the line it prints (e.g. ``"cifs "``).
    """
    kernel = Kernel.appliance()
    missing = missing_tools()
    if kernel is None or missing:
        why = "the appliance kernel is not built (make image)" if kernel is None else f"missing {missing}"
        print(f"# --kernel skipped: {why}", flush=True)
        return {}
    work = Path(base) / "kvm"
    image = GuestImage.build(work, kernel)
    print(f"# kernel client: {kernel.vmlinuz} ({kernel.modules.name}) {what}under qemu TCG, one boot for both "
          "servers", flush=True)
    # not Guest.run(): it enters `with self.start()`, and __enter__ starts a second qemu on the same script
    with Guest(image, work, script, name="bench", memory_mb=1024) as guest:
        res = guest.finish(a.kernel_limit_s)
    got = figures(res.output, a, seconds)
    fails = _FAIL.findall(res.output)
    if len(got) != 4 * servers:
        fails.append(f"figures missing: only {sorted(got)}")
    if fails or res.rc != 0:
        print(res.report(), file=sys.stderr)
        raise RuntimeError(f"kernel client run failed: {fails or res.rc}")
    by_server: dict[str, dict[str, float]] = {}
    for (name, key), v in got.items():
        by_server.setdefault(name, {})[key] = v
    return by_server
