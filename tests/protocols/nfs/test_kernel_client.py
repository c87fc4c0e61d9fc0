"""The Linux kernel's NFSv3 client against the Tessera NFS server (``make image-test`` phase: marked
``appliance``; it boots the appliance's kernel under qemu, see tests/kvm/guest.py).

One guest boot runs the whole workload (kernel_workload.sh, one step per check): two mounts (``vers=3`` with
NLM locks and with ``nolock``); create, write, append, overwrite, truncate; rename across directories; hard
and symbolic links; chmod/chown as root and as uid 1000; root squash; a directory of 2,000 entries listed
and removed; fcntl and flock locks against a core.fs lock held by the host (and the reverse); the server
restarted in the middle with writes in flight and the mount still working afterwards. The host answers the
guest's ``@@HOST`` events (lock checks, the restart) and checks through core.fs what the guest wrote.

The server, rpcbind (the guest's lockd finds NLM through the portmapper at 10.0.2.2:111) and qemu share a
private network namespace (tests/kvm/netns.py: needs root). ``TESSERA_KVM_GANESHA=1`` also runs the same
workload against NFS-Ganesha, to tell a workload bug from a server bug.

Locks through qemu's NAT: the guest runs rpcbind and rpc.statd, so its lockd monitors the server and locks
without ``nolock`` work (fcntl byte ranges, F_GETLK, flock as a whole-file NLM lock). Calls from the server
to the guest cannot get in: NLM_GRANTED callbacks (a blocked F_SETLKW still succeeds, by the client's own
retry every 30 s) and SM_NOTIFY after a restart (so lock reclaim is not exercised here).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from core.errors import LockConflict
from core.fs import Volume, open_volume
from core.store import init_store
from tests.kvm import ganesha
from tests.kvm.fixtures import guest_image  # noqa: F401  (a fixture)
from tests.kvm.guest import HOST_IP, Guest, GuestImage, Result
from tests.kvm.netns import Sandbox

pytestmark = pytest.mark.appliance
ROOT = Path(__file__).resolve().parents[3]
WORKLOAD = Path(__file__).with_name("kernel_workload.sh")
NFS_PORT = 2049
BOOT_LIMIT_S = 240.0     # the whole boot (pytest-timeout's 300 s covers this fixture too)
CELL = 64 * 1024
MOUNT_BASE = "vers=3,proto=tcp,mountproto=tcp,hard,timeo=100"


class Backend(Protocol):
    """A server in the sandbox plus host-side access to what it serves."""

    name: str
    n_src: str
    q_src: str
    n_opts: str
    q_opts: str

    def start(self) -> None: ...
    def stop(self, sig: int = signal.SIGTERM) -> None: ...
    def ctl(self, line: str) -> None: ...                      # append a line to ctl in the /mnt/n export
    def hold_lock(self, name: str, start: int, length: int) -> None: ...   # an exclusive lock kept held
    def can_lock(self, name: str, start: int, length: int) -> bool: ...   # try (and release) one
    def release_locks(self) -> None: ...                       # what hold_lock took
    def read(self, path: str) -> bytes: ...                    # "n/big" or "q/byroot"
    def owner(self, path: str) -> tuple[int, int, int]: ...    # uid, gid, permission bits
    def exists(self, path: str) -> bool: ...
    def close(self) -> None: ...


class Tessera:
    """``python -m protocols.nfs`` over a store with /data (0755, no root squash) and /sq (0777, root squash)."""

    name = "tessera"
    n_src, q_src = f"{HOST_IP}:/data", f"{HOST_IP}:/sq"
    n_opts = f"{MOUNT_BASE},port={NFS_PORT},mountport={NFS_PORT}"
    q_opts = f"{n_opts},nolock"

    def __init__(self, sb: Sandbox, workdir: Path) -> None:
        self.sb, self.workdir = sb, workdir
        self.data = workdir / "store"
        init_store(str(self.data), cell=CELL, shard_bytes=64 * CELL)
        self.volume: Volume = open_volume(str(self.data))
        fs = self.volume.fs
        fs.mkdir(fs.root, "data", 0o755)
        sq = fs.mkdir(fs.root, "sq", 0o777)
        fs.setattr(sq.ino, mode=0o777)          # not masked by a umask
        data = fs.resolve("/data").ino
        for name, mode in (("ctl", 0o644), ("locked", 0o666)):
            fs.create(data, name, mode)
        self.proc: Any = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "protocols.nfs", "--data", str(self.data), "--listen", f"0.0.0.0:{NFS_PORT}",
                "--export", "/data:rw:none", "--export", "/sq:rw:root"]
        self.proc = self.sb.popen(argv, log=self.workdir / "server.log", cwd=ROOT)
        self.sb.wait_port(NFS_PORT, 60, self.proc)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            self.sb.stop(self.proc, sig)
            self.proc = None

    def _ino(self, path: str) -> int:
        return self.volume.fs.resolve(self._store_path(path)).ino

    @staticmethod
    def _store_path(path: str) -> str:
        export, _, rest = path.partition("/")
        return f"/{'data' if export == 'n' else 'sq'}/{rest}"

    def ctl(self, line: str) -> None:
        ino = self._ino("n/ctl")
        size = self.volume.fs.getattr(ino).size
        self.volume.fs.write(ino, size, f"{line}\n".encode(), stable=True)

    def hold_lock(self, name: str, start: int, length: int) -> None:
        self.volume.fs.lock(self._ino(f"n/{name}"), "host-test", start, length, True)

    def release_locks(self) -> None:
        self.volume.fs.unlock_all("host-test")

    def can_lock(self, name: str, start: int, length: int) -> bool:
        ino = self._ino(f"n/{name}")
        try:
            self.volume.fs.lock(ino, "host-probe", start, length, True)
        except LockConflict:
            return False
        self.volume.fs.unlock(ino, "host-probe", start, length)
        return True

    def read(self, path: str) -> bytes:
        ino = self._ino(path)
        return self.volume.fs.read(ino, 0, self.volume.fs.getattr(ino).size)

    def owner(self, path: str) -> tuple[int, int, int]:
        a = self.volume.fs.resolve(self._store_path(path))
        return a.uid, a.gid, a.perm

    def exists(self, path: str) -> bool:
        try:
            self.volume.fs.resolve(self._store_path(path))
        except Exception:
            return False
        return True

    def close(self) -> None:
        self.stop()
        self.volume.close()


class GaneshaRef:
    """The same shape over NFS-Ganesha exporting two plain directories (the reference run)."""

    name = "ganesha"

    def __init__(self, sb: Sandbox, workdir: Path) -> None:
        self.n, self.q = workdir / "n", workdir / "q"
        self.n.mkdir(mode=0o755)
        self.q.mkdir()
        self.q.chmod(0o777)
        (self.n / "ctl").touch(0o644)
        (self.n / "locked").touch()
        (self.n / "locked").chmod(0o666)
        self.server = ganesha.Ganesha(sb, workdir / "ganesha", {self.n: "No_Root_Squash", self.q: "Root_Squash"})
        self.n_src, self.q_src = f"{HOST_IP}:{self.n}", f"{HOST_IP}:{self.q}"
        self.n_opts = f"{MOUNT_BASE},port={ganesha.NFS_PORT},mountport={ganesha.MNT_PORT}"
        self.q_opts = f"{self.n_opts},nolock"
        self._held: list[int] = []

    def start(self) -> None:
        self.server.start()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.server.stop(sig)

    def _path(self, path: str) -> Path:
        export, _, rest = path.partition("/")
        return (self.n if export == "n" else self.q) / rest

    def ctl(self, line: str) -> None:
        with open(self.n / "ctl", "a") as f:
            f.write(f"{line}\n")

    def hold_lock(self, name: str, start: int, length: int) -> None:
        fd = os.open(self.n / name, os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, length, start)
        self._held.append(fd)

    def release_locks(self) -> None:
        for fd in self._held:
            os.close(fd)
        self._held = []

    def can_lock(self, name: str, start: int, length: int) -> bool:
        # an open file description lock: a POSIX lock of this process would not conflict with the one it holds
        fd = os.open(self.n / name, os.O_RDWR)
        try:
            fcntl.fcntl(fd, 37, _flock_struct(fcntl.F_WRLCK, start, length))   # F_OFD_SETLK
            return True
        except OSError:
            return False
        finally:
            os.close(fd)

    def read(self, path: str) -> bytes:
        return self._path(path).read_bytes()

    def owner(self, path: str) -> tuple[int, int, int]:
        st = self._path(path).lstat()
        return st.st_uid, st.st_gid, st.st_mode & 0o7777

    def exists(self, path: str) -> bool:
        return self._path(path).exists()

    def close(self) -> None:
        self.release_locks()
        self.stop()


def _flock_struct(kind: int, start: int, length: int) -> bytes:
    import struct
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, start, length, 0)


@dataclass
class Run:
    """The workload's result and what the host saw at the guest's events."""

    backend: Any
    result: Result
    host: dict[str, object] = field(default_factory=dict)

    def step_ok(self, name: str) -> str:
        step = self.result.step(name)
        assert step.rc == 0, f"step {name} failed (rc={step.rc}):\n{step.output}\n{self.result.report(40)}"
        return step.output


def _script(b: Backend, tlock: bool) -> str:
    env = {"N_SRC": b.n_src, "Q_SRC": b.q_src, "N_OPTS": b.n_opts, "Q_OPTS": b.q_opts, "TLOCK": str(int(tlock)),
           "TEST_SEES_HOST_LOCKS": str(int(b.name == "tessera"))}
    return "".join(f"export {k}='{v}'\n" for k, v in env.items()) + WORKLOAD.read_text()


def _drive(g: Guest, b: Backend, host: dict[str, object], tlock: bool) -> None:
    """Answer the guest's events: the lock checks, then a restart (SIGTERM) and a crash (SIGKILL)."""
    def left() -> float:
        return BOOT_LIMIT_S - (time.monotonic() - g.vm.started)
    if tlock and g.wait_output("@@HOST locked", left(), stop_at=["@@STEP-END locks"]):
        host["guest_lock_blocks_host"] = not b.can_lock("glock", 0, 10)
        host["host_lock_beside_guest"] = b.can_lock("glock", 20, 10)
        b.ctl("checked")
    if tlock and g.wait_output("@@HOST blocking", left(), stop_at=["@@STEP-END blocking_lock"]):
        b.release_locks()       # the guest has seen its F_SETLKW wait for 3 s
        host["released"] = True
    for event, sig in (("restart", signal.SIGTERM), ("crash", signal.SIGKILL)):    # the step has the event's name
        if g.wait_output(f"@@HOST {event}", left(), stop_at=[f"@@STEP-END {event}"]):
            t = time.monotonic()
            b.stop(sig)
            time.sleep(1.0)
            b.start()
            host[f"{event}_s"] = round(time.monotonic() - t, 1)
            b.ctl(f"{event}ed")


def _backends() -> list[Any]:
    """Tessera; and NFS-Ganesha too with TESSERA_KVM_GANESHA=1 (the reference run)."""
    params: list[Any] = [pytest.param(Tessera, id="tessera")]
    if os.environ.get("TESSERA_KVM_GANESHA") == "1":
        params.append(pytest.param(GaneshaRef, id="ganesha"))
    return params


@pytest.fixture(scope="module", params=_backends())
def run(request: pytest.FixtureRequest, guest_image: GuestImage,  # noqa: F811
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    reason = Sandbox.available()
    if reason:
        pytest.skip(reason)
    if request.param is GaneshaRef and ganesha.missing():
        pytest.skip(str(ganesha.missing()))
    if not guest_image.locking:
        pytest.skip("no rpcbind/rpc.statd on the host to put in the guest (apt-get install rpcbind nfs-common)")
    workdir = tmp_path_factory.mktemp(f"kernel-{request.param.name}")
    with Sandbox() as sb:
        sb.rpcbind()
        backend: Backend = request.param(sb, workdir)
        try:
            backend.hold_lock("locked", 0, 100)
            backend.start()
            host: dict[str, object] = {}
            with Guest(guest_image, workdir, _script(backend, guest_image.tlock), prefix=sb.prefix) as g:
                _drive(g, backend, host, guest_image.tlock)
                result = g.finish(BOOT_LIMIT_S)
            yield Run(backend, result, host)
        finally:
            backend.close()


def test_mount_with_and_without_nolock(run: Run) -> None:
    out = run.step_ok("mount")
    assert re.search(r" /mnt/q nfs .*nolock", out), out
    assert run.result.rc == 0, run.result.report()


def test_create_write_append_overwrite_truncate(run: Run) -> None:
    out = run.step_ok("files")
    md5 = re.search(r"big-md5 ([0-9a-f]{32})", out)
    assert md5, out
    assert hashlib.md5(run.backend.read("n/big")).hexdigest() == md5[1]    # the host reads what the guest wrote
    assert run.backend.read("n/f1") == b"short"


def test_rename_across_directories(run: Run) -> None:
    run.step_ok("rename")
    assert run.backend.read("n/d2/c") == b"r\n"
    assert run.backend.read("n/d2/sub2/inner") == b"s\n"
    assert not run.backend.exists("n/d1/a")
    assert not run.backend.exists("n/d2/b")


def test_hard_and_symbolic_links(run: Run) -> None:
    run.step_ok("links")
    assert run.backend.read("n/hard") == b"data\n"
    assert not run.backend.exists("n/orig")


def test_chmod_chown_as_root(run: Run) -> None:
    run.step_ok("perms_root")
    assert run.backend.owner("n/secret") == (0, 0, 0o600)
    assert run.backend.owner("n/userdir")[:2] == (1000, 1000)


def test_permissions_as_a_user(run: Run) -> None:
    run.step_ok("perms_user")
    assert run.backend.owner("n/userdir/mine2") == (1000, 1000, 0o600)
    assert not run.backend.exists("n/newfile")
    assert run.backend.read("n/public") == b"p\n"


def test_root_squash(run: Run) -> None:
    run.step_ok("squash")
    assert run.backend.owner("q/byroot")[:2] == (65534, 65534)
    assert run.backend.owner("q/byuser")[:2] == (1000, 1000)


def test_directory_of_2000_entries(run: Run) -> None:
    run.step_ok("bigdir")
    assert not run.backend.exists("n/many")


def test_removed_file_goes_to_the_trash(run: Run) -> None:
    run.step_ok("trash")
    assert not run.backend.exists("n/trashed")
    if not isinstance(run.backend, Tessera):
        return  # Ganesha: a plain directory, no trash
    fs = run.backend.volume.fs
    [entry] = fs.versions("/data/trashed")  # (the trash also holds bigdir's 2,000 removed entries)
    assert (entry.kind, entry.reason, entry.by_uid) == ("trash", "delete", 0)
    assert fs.reading_versions().read(entry.ino, 0, 100) == b"deleted by mistake\n"


def test_locks_conflict_with_core_fs_locks(run: Run, guest_image: GuestImage) -> None:  # noqa: F811
    if not guest_image.tlock:
        pytest.skip("no C compiler with a static libc for the tlock helper (apt-get install gcc libc6-dev)")
    run.step_ok("locks")
    assert run.host == run.host | {"guest_lock_blocks_host": True, "host_lock_beside_guest": True}, run.host
    assert run.backend.can_lock("glock", 0, 10)      # released when the guest's process ended


def test_blocking_lock_waits_for_the_host(run: Run, guest_image: GuestImage) -> None:  # noqa: F811
    if not guest_image.tlock:
        pytest.skip("no C compiler with a static libc for the tlock helper (apt-get install gcc libc6-dev)")
    run.step_ok("blocking_lock")
    assert run.host.get("released") is True, run.host


def test_server_restart_with_the_mount_in_use(run: Run) -> None:
    run.step_ok("restart")
    assert "restart_s" in run.host
    assert run.backend.read("n/restart-after") == b"after\n"
    assert hashlib.md5(run.backend.read("n/inflight")).digest() == hashlib.md5(run.backend.read("n/big")).digest()


def test_server_crash_with_unstable_writes(run: Run) -> None:
    out = run.step_ok("crash")
    assert "crash_s" in run.host
    md5 = re.search(r"crashed-md5 ([0-9a-f]{32})", out)
    assert md5, out
    data = run.backend.read("n/crashed")
    assert len(data) == 16 << 20
    assert hashlib.md5(data).hexdigest() == md5[1]


def test_unmount(run: Run) -> None:
    run.step_ok("umount")
    assert run.result.rc == 0
