"""The Linux kernel's SMB client (cifs.ko) against the Tessera SMB server (``make image-test`` phase: marked
``appliance``; it boots the appliance's kernel under qemu, see tests/kvm/guest.py).

One guest boot runs the whole workload (kernel_workload.sh, one step per check): an SMB 3.1.1 mount with
signing (the server requires it); create, write, append, overwrite, truncate; rename across directories;
rm and rmdir; a directory of 2,000 entries listed and removed; unlink of a file that is still open (delete on
close: the open handle still reads, the name is gone once it is closed); byte-range
locks (fcntl and flock) against a core.fs lock held by the host, both ways, and again after the host lets
go; a ``seal`` (encrypted) mount; the server stopped and a new one started on the same port over the same
store, with the mount still working afterwards. The host answers the guest's ``@@HOST`` events (lock checks,
the restart) through the file ``ctl`` in the share, checks through core.fs what the guest wrote (bytes,
owner uid 1000) and looks in the guest's captured network traffic (qemu's filter-dump) for what was written
through the plain and the sealed mount: the one is there in clear text, the other is not.

The server runs in this process (``protocols.smb.service.start``) on 127.0.0.1, which the guest reaches as
10.0.2.2 through qemu's user networking; no network namespace is needed. ``TESSERA_KVM_SAMBA=1`` also runs
the same workload against Samba's smbd (tests/kvm/samba.py, a plain directory; host locks are POSIX locks
there), to tell a workload bug from a server bug; its known failures are marked per server.

Leases and locks: cifs keeps byte-range locks to itself while it holds a write-caching lease (a lock no
other SMB open can see). The lock step therefore turns the client's oplocks off (``enable_oplocks=0``, which
cifs reads at each open) and works on a mount with its own connection (``nosharesock,cache=none``, also the
one the guest reads ``ctl`` through), so every lock is a LOCK request; the
``leased_locks`` step asks the same through the everyday mount, which needs the server to grant no caching
lease on a file other protocols hold locks on (Samba grants no read lease on a file with byte-range locks of
its own, but does not see POSIX locks taken outside it either: checked with smbd 4.17 and this kernel).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import socket
import struct
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from core.errors import CoreError, LockConflict
from core.store import Store, init_store, open_store
from protocols.smb.service import SmbService, SmbSettings, start
from protocols.smb.shares import Share
from tests.kvm import samba as smod
from tests.kvm.fixtures import guest_image  # noqa: F401  (a fixture)
from tests.kvm.guest import HOST_IP, Guest, GuestImage, Result

pytestmark = pytest.mark.appliance
WORKLOAD = Path(__file__).with_name("kernel_workload.sh")
BOOT_LIMIT_S = 240.0     # the whole boot (pytest-timeout's 300 s covers this fixture too)
CELL = 64 * 1024
ALICE_UID = 1000
PLAIN = "plain-text-3c9e51d7a0"      # written through the signed mount: visible on the wire
SEALED = "sealed-text-8b21f4e6c5"    # written through the seal mount: never visible on the wire
HOST_OWNER, HOST_OWNER2 = "host-test", "host-test2"
FILES = ("ctl", "locked", "locked2")      # made by the host before the boot


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Backend(Protocol):
    """A server plus host-side access to what it serves."""

    name: str
    port: int
    uid: int                                                   # alice's uid as the files show it

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def ctl(self, line: str) -> None: ...                      # append a line to ctl in the share
    def hold_lock(self, owner: str, name: str, start: int, length: int) -> None: ...   # kept held
    def release_locks(self, owner: str) -> None: ...           # what hold_lock took for owner
    def can_lock(self, name: str, start: int, length: int) -> bool: ...   # try (and release) one
    def read(self, name: str) -> bytes: ...
    def owner(self, name: str) -> int: ...
    def exists(self, name: str) -> bool: ...
    def close(self) -> None: ...


class Tessera:
    """The store, the SMB server over it in this process (stopped and started again on the same port)."""

    name = "tessera"
    uid = ALICE_UID

    def __init__(self, workdir: Path) -> None:
        data = str(workdir / "store")
        init_store(data, cell=CELL, shard_bytes=64 * CELL)
        self.store: Store = open_store(data)
        self.store.identity.add_user("alice", "alice-pw", uid=ALICE_UID, key=False)
        fs = self.store.fs
        d = fs.mkdir(fs.root, "data", 0o777)
        fs.setattr(d.ino, mode=0o777)           # not masked by a umask
        for name in FILES:                      # alice's: a non-owner may not open them GENERIC_WRITE
            fs.create(d.ino, name, 0o644, uid=ALICE_UID, gid=ALICE_UID)
        self.port = _free_port()
        self.srv: SmbService | None = None

    def start(self) -> None:
        self.srv = start(self.store, SmbSettings(host="127.0.0.1", port=self.port),
                         lambda: [Share("data", "/data")])

    def stop(self) -> None:
        if self.srv is not None:
            self.srv.close()
            self.srv = None

    def ino(self, name: str) -> int:
        return self.store.fs.resolve(f"/data/{name}").ino

    def ctl(self, line: str) -> None:
        ino = self.ino("ctl")
        size = self.store.fs.getattr(ino).size
        self.store.fs.write(ino, size, f"{line}\n".encode(), stable=True)

    def hold_lock(self, owner: str, name: str, start: int, length: int) -> None:
        """An exclusive core.fs lock, as an NFS client's (NLM) would be."""
        self.store.fs.lock(self.ino(name), owner, start, length, True)

    def release_locks(self, owner: str) -> None:
        self.store.fs.unlock_all(owner)

    def can_lock(self, name: str, start: int, length: int) -> bool:
        ino = self.ino(name)
        try:
            self.store.fs.lock(ino, "host-probe", start, length, True)
        except LockConflict:
            return False
        self.store.fs.unlock(ino, "host-probe", start, length)
        return True

    def read(self, name: str) -> bytes:
        ino = self.ino(name)
        return self.store.fs.read(ino, 0, self.store.fs.getattr(ino).size)

    def owner(self, name: str) -> int:
        return self.store.fs.resolve(f"/data/{name}").uid

    def exists(self, name: str) -> bool:
        try:
            self.store.fs.resolve(f"/data/{name}")
        except CoreError:
            return False
        return True

    def close(self) -> None:
        self.stop()
        self.store.close()


class SambaRef:
    """The same shape over Samba's smbd sharing a plain directory (the reference run); host locks are POSIX
    locks on the files, which smbd's own POSIX locks (posix locking = yes) conflict with."""

    name = "samba"

    def __init__(self, workdir: Path) -> None:
        # outside pytest's 0700 base directory: smbd must reach the share as alice
        self.top = Path(tempfile.mkdtemp(prefix="tessera-kvm-samba-"))
        self.top.chmod(0o755)
        self.dir = self.top / "share"
        self.dir.mkdir(mode=0o777)
        self.port = _free_port()
        self.smbd = smod.Samba(str(self.dir), str(workdir / "samba"), self.port, user="alice",
                               password="alice-pw", share="data")
        self.smbd.setup()                       # the share directory now belongs to alice's Unix account
        self.uid = self.dir.stat().st_uid
        for name in FILES:
            (self.dir / name).touch(0o644)
            os.chown(self.dir / name, self.uid, self.dir.stat().st_gid)
        self._held: dict[str, list[int]] = {}

    def start(self) -> None:
        self.smbd.start()

    def stop(self) -> None:
        self.smbd.stop()

    def ctl(self, line: str) -> None:
        with open(self.dir / "ctl", "a") as f:
            f.write(f"{line}\n")

    def hold_lock(self, owner: str, name: str, start: int, length: int) -> None:
        fd = os.open(self.dir / name, os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, length, start)
        self._held.setdefault(owner, []).append(fd)

    def release_locks(self, owner: str) -> None:
        for fd in self._held.pop(owner, []):
            os.close(fd)

    def can_lock(self, name: str, start: int, length: int) -> bool:
        # an open file description lock: a POSIX lock of this process would not conflict with its own
        fd = os.open(self.dir / name, os.O_RDWR)
        try:
            fcntl.fcntl(fd, 37, struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, start, length, 0))  # F_OFD_SETLK
            return True
        except OSError:
            return False
        finally:
            os.close(fd)

    def read(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()

    def owner(self, name: str) -> int:
        return (self.dir / name).lstat().st_uid

    def exists(self, name: str) -> bool:
        return (self.dir / name).exists()

    def close(self) -> None:
        for owner in list(self._held):
            self.release_locks(owner)
        self.stop()
        shutil.rmtree(self.top, ignore_errors=True)


@dataclass
class Run:
    """The workload's result, what the host saw at the guest's events, and the guest's traffic."""

    host: Any                   # a Backend
    result: Result
    wire: bytes = field(repr=False)
    seen: dict[str, object] = field(default_factory=dict)

    def step_ok(self, name: str) -> str:
        step = self.result.step(name)
        assert step.rc == 0, f"step {name} failed (rc={step.rc}):\n{step.output}\n{self.result.report(40)}"
        return step.output


def _script(h: Backend, tlock: bool) -> str:
    env = {"SRC": f"//{HOST_IP}/data", "OPTS": f"port={h.port},username=alice,password=alice-pw,vers=3.1.1",
           "TLOCK": str(int(tlock)), "PLAIN": PLAIN, "SEALED": SEALED}
    return "".join(f"export {k}='{v}'\n" for k, v in env.items()) + WORKLOAD.read_text()


def _drive(g: Guest, h: Backend, seen: dict[str, object], tlock: bool) -> None:
    """Answer the guest's events: the lock checks, the release, then the restart."""
    def left() -> float:
        return BOOT_LIMIT_S - (time.monotonic() - g.vm.started)
    if tlock and g.wait_output("@@HOST locked", left(), stop_at=["@@STEP-END locks"]):
        seen["guest_lock_blocks_host"] = not h.can_lock("glock", 0, 10)
        seen["host_lock_beside_guest"] = h.can_lock("glock", 20, 10)
        h.ctl("checked")
    if tlock and g.wait_output("@@HOST release", left(), stop_at=["@@STEP-END locks"]):
        h.release_locks(HOST_OWNER)
        seen["released"] = True
        h.ctl("released")
    if g.wait_output("@@HOST restart", left(), stop_at=["@@STEP-END restart"]):
        t = time.monotonic()
        h.stop()
        time.sleep(1.0)
        h.start()
        seen["restart_s"] = round(time.monotonic() - t, 1)
        h.ctl("restarted")


def _backends() -> list[Any]:
    """Tessera; and Samba's smbd too with TESSERA_KVM_SAMBA=1 (the reference run: a workload bug or a
    server bug?)."""
    params: list[Any] = [pytest.param(Tessera, id="tessera")]
    if os.environ.get("TESSERA_KVM_SAMBA") == "1":
        params.append(pytest.param(SambaRef, id="samba"))
    return params


@pytest.fixture(scope="module", params=_backends())
def run(request: pytest.FixtureRequest, guest_image: GuestImage,  # noqa: F811
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    if request.param is SambaRef and smod.missing():
        pytest.skip(str(smod.missing()))
    workdir = tmp_path_factory.mktemp(f"kernel-smb-{request.param.name}")
    h: Backend = request.param(workdir)
    try:
        h.hold_lock(HOST_OWNER, "locked", 0, 100)
        h.hold_lock(HOST_OWNER2, "locked2", 0, 100)
        h.start()
        seen: dict[str, object] = {}
        pcap = workdir / "guest.pcap"
        g = Guest(guest_image, workdir, _script(h, guest_image.tlock), name="smb")
        g.vm.argv += ["-object", f"filter-dump,id=dump0,netdev=n0,file={pcap}"]
        with g:
            _drive(g, h, seen, guest_image.tlock)
            result = g.finish(BOOT_LIMIT_S)
        yield Run(h, result, pcap.read_bytes() if pcap.exists() else b"", seen)
    finally:
        h.close()


def xfail_on(request: pytest.FixtureRequest, run: Run, backends: tuple[str, ...], reason: str) -> None:
    """A known failure of these backends (strict: the test fails once it passes there)."""
    if run.host.name in backends:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def test_mount_3_1_1_signed(run: Run) -> None:
    out = run.step_ok("mount")
    assert re.search(r" /mnt/s cifs .*vers=3\.1\.1", out), out
    assert run.result.rc == 0, run.result.report()


def test_create_write_append_overwrite_truncate(run: Run) -> None:
    out = run.step_ok("files")
    md5 = re.search(r"big-md5 ([0-9a-f]{32})", out)
    assert md5, out
    big = run.host.read("big")
    assert len(big) == 4 * 1024 * 1024 + 4 and big.endswith(b"tail")
    assert hashlib.md5(big).hexdigest() == md5[1]        # the host reads what the guest wrote
    assert run.host.read("f1") == b"short"
    assert run.host.owner("f1") == run.host.owner("big") == run.host.uid


def test_rename_across_directories(run: Run) -> None:
    run.step_ok("rename")
    assert run.host.read("d2/c") == b"r\n"
    assert run.host.read("d2/sub2/inner") == b"s\n"
    assert run.host.owner("d2/sub2") == run.host.uid
    assert not run.host.exists("d1/a")
    assert not run.host.exists("d2/b")
    assert not run.host.exists("d1/sub")


def test_rm_and_rmdir(run: Run) -> None:
    run.step_ok("remove")
    assert not any(run.host.exists(n) for n in ("gone", "rmd", "rmd/in/f", "empty"))


def test_directory_of_2000_entries(run: Run) -> None:
    run.step_ok("bigdir")
    assert not run.host.exists("many")


def test_unlink_of_an_open_file(run: Run) -> None:
    run.step_ok("delete_on_close")
    assert not run.host.exists("doomed")


def test_locks_conflict_with_core_fs_locks(run: Run, guest_image: GuestImage) -> None:  # noqa: F811
    if not guest_image.tlock:
        pytest.skip("no C compiler with a static libc for the tlock helper (apt-get install gcc libc6-dev)")
    run.step_ok("locks")
    assert run.seen == run.seen | {"guest_lock_blocks_host": True, "host_lock_beside_guest": True,
                                   "released": True}, run.seen
    assert run.host.can_lock("glock", 0, 10)        # released when the guest's process ended
    assert run.host.can_lock("locked", 0, 100)


def test_locks_through_a_leased_mount(request: pytest.FixtureRequest, run: Run,
                                      guest_image: GuestImage) -> None:  # noqa: F811
    xfail_on(request, run, ("samba",), "smbd 4.17 grants a write-caching lease on a file that locks of other "
             "owners cover (it withholds the lease only for its own byte-range locks, not for POSIX locks taken "
             "outside it), so cifs keeps its lock to itself; Tessera withholds W and breaks it on such locks")
    if not guest_image.tlock:
        pytest.skip("no C compiler with a static libc for the tlock helper (apt-get install gcc libc6-dev)")
    run.step_ok("leased_locks")


def test_seal_mount_encrypts(run: Run) -> None:
    run.step_ok("seal")
    assert run.host.read("sealed") == SEALED.encode()
    assert run.host.read("sdir/x") == b"in\n"
    assert run.wire, "no traffic captured"
    assert PLAIN.encode() in run.wire            # the capture works: the signed mount's data is in clear
    assert SEALED.encode() not in run.wire


def test_server_restart_with_the_mount_in_use(run: Run) -> None:
    run.step_ok("restart")
    assert "restart_s" in run.seen
    assert run.host.read("restart-after") == b"after\n"
    assert run.host.owner("restart-after") == run.host.uid


def test_unmount(run: Run) -> None:
    run.step_ok("umount")
    assert run.result.rc == 0
