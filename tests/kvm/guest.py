"""A throwaway Linux guest with the kernel's own NFS and SMB clients: boot, run one shell script, power off.

The appliance's kernel (``make image``: image/build/out/vmlinuz and the modules of its root fs) boots under
qemu TCG with a small initramfs built here once per test session (``GuestImage.build``):

* static busybox and its applets, the client modules (virtio net; NFS: sunrpc ... nfsv3; SMB: cifs and its
  crypto) with their dependencies from modules.dep (the appliance's own ``initrd_modules.py``),
* Debian's rpcbind and rpc.statd with their shared libraries, when the host has them (the kernel's NLM
  client asks the local statd to monitor the server before any lock; without it a lock over NFS fails with
  ENOLCK unless the mount says ``nolock``), and util-linux ``flock``,
* ``tlock`` (tlock.c, built with the host's C compiler when there is one): fcntl/flock locks from a script,
* users root and ``user`` (uid/gid 1000; ``su user -c CMD`` runs a command as that user), an ``/init``.

Each boot (``Guest``) appends a tiny archive holding ``/kvm/run.sh`` (the kernel unpacks concatenated
archives), so the base is built once. ``/init`` loads the modules, configures eth0 as 10.0.2.15/24 with
gateway 10.0.2.2 (qemu user networking: 10.0.2.2:PORT is the host's 127.0.0.1:PORT, in qemu's network
namespace), starts rpcbind and statd, runs the script with ``/etc/kvm-lib.sh`` sourced, prints
``@@END rc=N`` and powers off. The script's output goes to the second serial port (ttyS1), kernel messages
to the first (ttyS0), so neither splits the other's lines. Every boot has a hard time limit; qemu is
killed by PID on every exit path (tests/image/vm.py, reused).

Script helpers (kvm-lib.sh): ``step NAME <<'EOF' ... EOF`` runs its body with ``sh -e`` and brackets the
output with markers, so one boot can run many independent checks and ``Result.step(NAME)`` gives each one's
exit status and output; ``await_line FILE LINE [SECONDS]`` polls a file (e.g. on the mount, written by the
host) until it holds the line; ``host_event NAME`` prints ``@@HOST NAME`` (``Guest.wait_output`` sees it).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from tests.image.vm import VM
from tests.kvm.cpio import Archive

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "image" / "build" / "out"
ROOTFS_MODULES = ROOT / "image" / "build" / "rootfs" / "usr" / "lib" / "modules"
HERE = Path(__file__).resolve().parent

# built-ins (aes, hmac, md5, sha256, af_packet) are skipped by initrd_modules; see shared KERNEL-CLIENTS.md
MODULES = ["virtio_pci", "virtio_net",
           "sunrpc", "nfs_acl", "grace", "lockd", "netfs", "fscache", "nfs", "nfsv3",
           "cifs_arc4", "cifs_md4", "dns_resolver", "cifs", "ecb", "cmac", "gcm", "ccm", "ctr", "gf128mul",
           "ghash-generic", "sha512_generic", "libdes", "des_generic", "nls_utf8"]
PROGRAMS = ["/usr/sbin/rpcbind", "/usr/sbin/rpc.statd", "/usr/sbin/rpcinfo", "/usr/bin/flock"]
ETC_COPIES = ["/etc/netconfig", "/etc/services", "/etc/protocols", "/etc/rpc"]
GUEST_IP, HOST_IP = "10.0.2.15", "10.0.2.2"


class GuestError(AssertionError):
    """The guest did not boot, timed out, or its script did not finish; the message has both logs."""


@dataclass(frozen=True)
class Kernel:
    vmlinuz: Path
    modules: Path          # .../lib/modules/<version>

    @classmethod
    def appliance(cls) -> Kernel | None:
        """The kernel of the built appliance image, or None when ``make image`` has not run."""
        versions = sorted(ROOTFS_MODULES.glob("*/modules.dep")) if ROOTFS_MODULES.is_dir() else []
        vmlinuz = OUT / "vmlinuz"
        if not versions or not vmlinuz.exists():
            return None
        return cls(vmlinuz, versions[-1].parent)


def missing_tools() -> list[str]:
    """Host tools a guest needs and the host lacks (a test skips with these names)."""
    need = {"qemu-system-x86_64": shutil.which("qemu-system-x86_64"), "busybox": shutil.which("busybox")}
    return [name for name, path in need.items() if path is None]


def _initrd_modules() -> ModuleType:
    spec = importlib.util.spec_from_file_location("initrd_modules", ROOT / "image/appliance/initrd_modules.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def is_static(path: str) -> bool:
    """True for an ELF executable without a program interpreter (PT_INTERP)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        phoff = int.from_bytes(head[0x20:0x28], "little")
        phentsize, phnum = int.from_bytes(head[0x36:0x38], "little"), int.from_bytes(head[0x38:0x3a], "little")
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(int.from_bytes(table[i * phentsize:i * phentsize + 4], "little") != 3 for i in range(phnum))


def shared_libraries(program: str) -> list[str]:
    """The absolute paths of the libraries (and loader) ``program`` needs, from ldd."""
    out = subprocess.run(["ldd", program], capture_output=True, text=True, timeout=30, check=True).stdout
    libs = re.findall(r"=>\s*(/\S+)", out) + re.findall(r"^\s*(/\S+ld-linux\S*)", out, re.M)
    return sorted(set(libs))


class _Tree:
    """Builds an archive, creating each parent directory once."""

    def __init__(self) -> None:
        self.archive = Archive()
        self.dirs: set[str] = set()

    def mkdir(self, path: str, mode: int = 0o755) -> None:
        path = path.strip("/")
        if not path or path in self.dirs:
            return
        self.mkdir(os.path.dirname(path))
        self.dirs.add(path)
        self.archive.dir(path, mode)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        path = path.strip("/")
        self.mkdir(os.path.dirname(path))
        self.archive.file(path, data, mode)

    def copy(self, src: str, dst: str | None = None) -> None:
        mode = os.stat(src).st_mode & 0o7777
        self.file(dst or src, Path(src).read_bytes(), mode)

    def symlink(self, path: str, target: str) -> None:
        path = path.strip("/")
        self.mkdir(os.path.dirname(path))
        self.archive.symlink(path, target)


def _busybox(tree: _Tree) -> None:
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not is_static(busybox):
        raise GuestError(f"{busybox} is not statically linked (apt-get install busybox-static)")
    tree.copy(busybox, "bin/busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, timeout=30, check=True).stdout
    for name in applets.split():
        # a link named busybox onto itself would replace the binary: boot fails with ELOOP (-40)
        if name != "busybox":
            tree.symlink(f"bin/{name}", "busybox")


def _programs(tree: _Tree) -> list[str]:
    present = [p for p in PROGRAMS if os.access(p, os.X_OK)]
    libs = sorted({lib for p in present for lib in shared_libraries(p)})
    for path in present + libs:
        tree.copy(os.path.realpath(path), path)
    for path in ETC_COPIES:
        if os.path.exists(path):
            tree.copy(path)
    return present


def _tlock(tree: _Tree, workdir: Path) -> bool:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return False
    binary = workdir / "tlock"
    r = subprocess.run([cc, "-static", "-Os", "-o", str(binary), str(HERE / "tlock.c")], capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0:   # no static libc (libc6-dev): the lock checks skip
        return False
    tree.copy(str(binary), "usr/bin/tlock")
    return True


ETC = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n"
                  "_rpc:x:102:65534::/run/rpcbind:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "etc/group": "root:x:0:\nuser:x:1000:\nstaff:x:50:user\nnogroup:x:65534:\n",
    "etc/hosts": "127.0.0.1 localhost\n10.0.2.15 kvm-guest\n10.0.2.2 host\n",
    "etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\nservices: files\nrpc: files\n",
}


@dataclass(frozen=True)
class GuestImage:
    """A bootable guest: the kernel and a base initramfs (uncompressed newc: nothing to inflate in TCG)."""

    kernel: Path
    initrd: Path
    locking: bool          # rpcbind + rpc.statd are in the image (NLM locks without ``nolock``)
    tlock: bool            # the tlock helper is in the image

    @classmethod
    def build(cls, workdir: Path, kernel: Kernel) -> GuestImage:
        workdir.mkdir(parents=True, exist_ok=True)
        tree = _Tree()
        for d in ("proc", "sys", "dev", "run", "tmp", "mnt", "root", "var/lib/nfs/sm", "var/lib/nfs/sm.bak",
                  "sbin", "usr/sbin"):
            tree.mkdir(d)
        _busybox(tree)
        mods = _initrd_modules()
        try:
            order: list[str] = mods.resolve(MODULES, mods.load_dep(str(kernel.modules)),
                                            mods.builtin(str(kernel.modules)))
        except SystemExit as e:     # initrd_modules reports an unknown module that way
            raise GuestError(f"{kernel.modules}: {e}") from None
        for rel in order:
            tree.copy(str(kernel.modules / rel), f"lib/modules/{rel}")
        tree.file("etc/kvm-modules", "".join(f"{rel}\n" for rel in order).encode())
        programs = _programs(tree)
        locking = {"/usr/sbin/rpcbind", "/usr/sbin/rpc.statd"} <= set(programs)
        tlock = _tlock(tree, workdir)
        for path, text in ETC.items():
            tree.file(path, text.encode())
        tree.file("etc/kvm-lib.sh", (HERE / "kvm-lib.sh").read_bytes())
        tree.file("init", (HERE / "init.sh").read_bytes(), 0o755)
        initrd = workdir / "initramfs.cpio"
        initrd.write_bytes(tree.archive.finish())
        return cls(kernel.vmlinuz, initrd, locking, tlock)


@dataclass(frozen=True)
class Step:
    name: str
    rc: int | None         # None: the step started but never ended (the guest stopped or timed out)
    output: str


@dataclass
class Result:
    rc: int | None         # the script's exit status; None when it did not finish
    output: str            # what the script printed (ttyS1)
    console: str           # kernel and init messages (ttyS0)
    seconds: float
    steps: dict[str, Step] = field(default_factory=dict)

    def step(self, name: str) -> Step:
        """The named step; an AssertionError with the whole output when the script never reached it."""
        if name not in self.steps:
            raise AssertionError(f"step {name!r} did not run; steps: {list(self.steps)}\n{self.report()}")
        return self.steps[name]

    def report(self, lines: int = 80) -> str:
        def tail(text: str) -> str:
            return "\n".join(text.splitlines()[-lines:])
        return f"--- script output ---\n{tail(self.output)}\n--- console ---\n{tail(self.console)}"


# markers start a line, except after output that did not end with a newline
_STEP = re.compile(r"@@STEP-BEGIN (\S+)\n(.*?)(?:@@STEP-END \1 rc=(\d+)$|\Z)", re.M | re.S)
_END = re.compile(r"@@END rc=(\d+)$", re.M)


def parse_steps(output: str) -> dict[str, Step]:
    """Steps from the script output (markers printed by kvm-lib.sh's ``step``).

    >>> s = parse_steps("x\\n@@STEP-BEGIN a\\nhi\\n@@STEP-END a rc=0\\n@@STEP-BEGIN b\\nno newline@@STEP-END b rc=1\\n"
    ...                 "@@STEP-BEGIN c\\noops\\n")
    >>> s["a"], s["b"]
    (Step(name='a', rc=0, output='hi\\n'), Step(name='b', rc=1, output='no newline'))
    >>> s["c"]
    Step(name='c', rc=None, output='oops\\n')
    """
    return {m[1]: Step(m[1], None if m[3] is None else int(m[3]), m[2]) for m in _STEP.finditer(output)}


class Guest:
    """One boot of a ``GuestImage`` running ``script``; ``prefix`` runs qemu under another command (e.g.
    nsenter into a network namespace). Use as a context manager, or ``run`` for start + finish."""

    def __init__(self, image: GuestImage, workdir: Path, script: str, *, name: str = "guest",
                 prefix: Sequence[str] = (), memory_mb: int = 512, append: str = "") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.image, self.name = image, name
        run = Archive()
        run.dir("kvm")
        run.file("kvm/run.sh", ("#!/bin/sh\n. /etc/kvm-lib.sh\n" + script).encode(), 0o755)
        initrd = workdir / f"{name}-initramfs.cpio"
        with open(initrd, "wb") as f:
            f.write(image.initrd.read_bytes())
            f.write(run.finish())
        self.output_path = workdir / f"{name}-output.log"
        cmdline = f"console=ttyS0 quiet panic=-1 {append}".strip()
        self.vm = VM(workdir, name, disks=[], memory_mb=memory_mb,
                     boot=["-kernel", str(image.kernel), "-initrd", str(initrd), "-append", cmdline,
                           "-no-reboot", "-serial", f"file:{self.output_path}"])
        nic = self.vm.argv.index("virtio-net-pci,netdev=n0")
        self.vm.argv[nic] += ",romfile="      # no iPXE option ROM: -kernel boots directly
        self.vm.argv[:0] = list(prefix)

    def start(self) -> Guest:
        assert self.vm.proc is None, "one boot per Guest"
        self.vm.start()
        return self

    def kill(self) -> None:
        self.vm.kill()

    def __enter__(self) -> Guest:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def output(self) -> str:
        try:
            return self.output_path.read_text(errors="replace").replace("\r\n", "\n")
        except FileNotFoundError:
            return ""

    def result(self) -> Result:
        out = self.output()
        end = _END.search(out)
        return Result(int(end[1]) if end else None, out, self.vm.serial_text(),
                      time.monotonic() - self.vm.started, parse_steps(out))

    def _fail(self, msg: str) -> GuestError:
        return GuestError(f"{self.name}: {msg}\n{self.result().report()}")

    def wait_output(self, text: str, limit_s: float, *, stop_at: Sequence[str] = ()) -> bool:
        """Wait until the script has printed ``text`` (e.g. ``@@HOST restart``): True. False when it printed
        one of ``stop_at`` first (e.g. the end of the step that would have printed ``text``) or the guest
        stopped; GuestError after ``limit_s``."""
        deadline = time.monotonic() + limit_s
        while True:
            out = self.output()
            if text in out:
                return True
            proc = self.vm.proc
            if any(s in out for s in stop_at) or (proc is not None and proc.poll() is not None):
                return False
            if time.monotonic() > deadline:
                raise self._fail(f"no {text!r} from the script after {limit_s:.0f} s")
            time.sleep(0.2)

    def finish(self, limit_s: float) -> Result:
        """Wait for the guest to power off (qemu killed after ``limit_s``); GuestError unless the script
        ran to its end (its exit status is in the Result)."""
        proc = self.vm.proc
        assert proc is not None, "start() first"
        try:
            proc.wait(max(0.0, limit_s - (time.monotonic() - self.vm.started)))
        except subprocess.TimeoutExpired:
            self.kill()
            raise self._fail(f"no power-off within {limit_s:.0f} s (qemu killed)") from None
        res = self.result()
        if res.rc is None:
            raise self._fail(f"the script did not finish (qemu exit status {proc.returncode})")
        return res

    def run(self, limit_s: float) -> Result:
        """Boot, wait for the power-off (``finish``), kill qemu whatever happens."""
        with self:
            return self.finish(limit_s)
