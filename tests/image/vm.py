"""A qemu virtual machine for the appliance boot tests: TCG (no KVM here), 2 vCPUs, user networking with
hostfwd on 127.0.0.1, a serial log, and qemu killed by PID on every exit path."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
QEMU = shutil.which("qemu-system-x86_64") or "qemu-system-x86_64"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BootFailed(AssertionError):
    pass


class VM:
    def __init__(self, workdir: Path, name: str, *, disks: list[Path], boot: list[str], memory_mb: int = 2048,
                 netdev_extra: str = "", forwards: dict[str, int] | None = None) -> None:
        self.workdir, self.name = workdir, name
        self.serial = workdir / f"{name}-serial.log"
        self.ports = {label: free_port() for label in (forwards or {})}
        fwd = "".join(f",hostfwd=tcp:127.0.0.1:{self.ports[label]}-:{guest}"
                      for label, guest in (forwards or {}).items())
        # -cpu max: the CI machine has no KVM, and TCG's default CPU model lacks x86-64-v2 (numpy needs it)
        self.argv = [QEMU, "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", str(memory_mb), "-nodefaults",
                     "-display", "none", "-vga", "none", "-serial", f"file:{self.serial}",
                     "-netdev", f"user,id=n0{netdev_extra}{fwd}", "-device", "virtio-net-pci,netdev=n0", *boot]
        for d in disks:
            self.argv += ["-drive", f"file={d},if=virtio,format=raw,cache=writeback"]
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self._previous_serial = ""
        self._cycles = 0

    def start(self) -> VM:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        atexit.register(self.kill)
        return self

    def kill(self) -> None:
        """Kill qemu by PID (and its process group); safe to call any number of times."""
        p = self.proc
        if p is None or p.poll() is not None:
            return
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()

    def __enter__(self) -> VM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def power_cycle(self, remove_disk: Path | None = None) -> None:
        """Pull the plug and switch the machine on again: qemu killed by PID, started anew on the same disks, or
        without ``remove_disk`` (a failed drive). Nothing is shut down cleanly; serial output is kept."""
        self.kill()
        self._previous_serial = self.serial_text() + "\n===== power cycle =====\n"
        self._cycles += 1
        serial = self.workdir / f"{self.name}-serial.{self._cycles}.log"
        argv = [f"file:{serial}" if a == f"file:{self.serial}" else a for a in self.argv]
        if remove_disk is not None:
            i = argv.index(f"file={remove_disk},if=virtio,format=raw,cache=writeback")
            del argv[i - 1:i + 1]
        self.argv, self.serial = argv, serial
        self.start()

    def serial_text(self) -> str:
        """Everything the machine printed on its serial port, across power cycles."""
        try:
            return self._previous_serial + self.serial.read_text(errors="replace")
        except FileNotFoundError:
            return self._previous_serial

    def fail(self, msg: str, lines: int = 150) -> BootFailed:
        tail = "\n".join(self.serial_text().splitlines()[-lines:])
        qemu_out = ""
        if self.proc is not None and self.proc.poll() is not None and self.proc.stdout is not None:
            qemu_out = self.proc.stdout.read().decode(errors="replace")[-2000:]
        return BootFailed(f"{self.name}: {msg}\n--- qemu ---\n{qemu_out}\n--- serial log (last {lines} lines) "
                          f"---\n{tail}")

    def wait_for(self, what: str, probe: Callable[[], T | None], limit_s: float, every: float = 2.0) -> T:
        """Poll ``probe`` until it returns a value; fail with the serial log after ``limit_s``."""
        deadline = time.monotonic() + limit_s
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise self.fail(f"qemu exited ({self.proc.returncode}) while waiting for {what}")
            try:
                v = probe()
                if v is not None:
                    return v
            except Exception as e:  # not up yet
                last = e
            time.sleep(every)
        raise self.fail(f"no {what} after {limit_s:.0f} s (last error: {last!r})")

    def wait_serial(self, text: str, limit_s: float) -> float:
        self.wait_for(f"{text!r} on the serial console", lambda: True if text in self.serial_text() else None,
                      limit_s, every=1.0)
        return time.monotonic() - self.started


def raw_disk(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def config_disk(path: Path, text: str, label: str = "TESSERA-CFG") -> Path:
    """An ext4 image labelled TESSERA-CFG holding tessera-node.yaml (made without mounting anything)."""
    src = path.with_suffix(".d")
    src.mkdir(exist_ok=True)
    (src / "tessera-node.yaml").write_text(text)
    raw_disk(path, 8 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", label, "-d", str(src), str(path)], check=True, timeout=60)
    return path
