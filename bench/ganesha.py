"""NFS-Ganesha 4.3 (Debian nfs-ganesha + nfs-ganesha-vfs) as a benchmark peer.

    with sandbox_ready(workdir):            # inside a private network + mount namespace (see enter_sandbox)
        with Ganesha(export_dir, workdir, nfs_port, mnt_port) as g:
            ... nfs://127.0.0.1{g.path}?nfsport={g.port}&mountport={g.mnt_port}

Ganesha refuses to start without rpcbind, and Debian's rpcbind 1.2.6 can only bind 0.0.0.0:111
and /run/rpcbind.sock (``-h 127.0.0.1`` aborts).  Other helpers on this box may run their own
rpcbind, so the benchmark runs in its own namespaces: ``enter_sandbox`` re-executes the script
under ``unshare --net --mount`` (loopback only, nothing reachable from outside), a private tmpfs
is mounted over /run, and rpcbind is started there.  Both servers and every client (nfs-cp, the
raw RPC client, qemu) run in the same namespace, so they all see the same loopback.

The export follows the pitfalls in /work/shared/KERNEL-CLIENTS.md: VFS FSAL, NFSv3 only,
``MDCACHE { Dir_Chunk = 0; }`` and ``Attr_Expiration_Time = 0`` (Ganesha's dirent cache made a
create after a delete behind its back write into a deleted inode), no NLM/RQUOTA (no rpc.statd
here), graceless start, its v4 recovery directory kept under the work directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from types import TracebackType

from common import stop_process  # bench/ is not a package: its own directory is on sys.path

SANDBOX_ENV = "TESSERA_BENCH_SANDBOX"


def enter_sandbox() -> None:
    """Re-execute this script in private network and mount namespaces (root only); return inside them."""
    if os.environ.get(SANDBOX_ENV) == "1":
        return
    if os.geteuid() != 0 or not shutil.which("unshare"):
        sys.exit("bench/nfs.py needs root and unshare(1): Ganesha needs its own rpcbind, run in a private "
                 "network namespace")
    env = {**os.environ, SANDBOX_ENV: "1"}
    cmd = ["unshare", "--net", "--mount", "--propagation", "private", "--", sys.executable, *sys.argv]
    os.execvpe(cmd[0], cmd, env)


def start_sandbox(workdir: str) -> subprocess.Popen[bytes]:
    """Inside the namespaces: loopback up, a private /run, rpcbind in the foreground.  Returns rpcbind."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tessera-bench-run", "/run"], check=True)
    with open(os.path.join(workdir, "rpcbind.log"), "wb") as log:
        rpcbind = subprocess.Popen(["rpcbind", "-f", "-w"], stdout=subprocess.DEVNULL, stderr=log)
    wait_port(111, rpcbind, "rpcbind")
    return rpcbind


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30.0,
              log: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = ""
            if log and os.path.exists(log):
                with open(log, errors="replace") as f:
                    tail = f.read()[-2000:]
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}\n{tail}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


CONFIG = """\
NFS_CORE_PARAM {{
    Protocols = 3;
    NFS_Port = {port};
    MNT_Port = {mnt_port};
    Enable_NLM = false;
    Enable_RQUOTA = false;
}}
NFSv4 {{
    Graceless = true;
    RecoveryRoot = "{workdir}/recovery";
}}
MDCACHE {{
    Dir_Chunk = 0;
}}
EXPORT {{
    Export_Id = 1;
    Path = "{path}";
    Pseudo = "{path}";
    Protocols = 3;
    Transports = TCP;
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    Attr_Expiration_Time = 0;
    FSAL {{
        Name = VFS;
    }}
}}
LOG {{
    Default_Log_Level = EVENT;
}}
"""


class Ganesha:
    """ganesha.nfsd in the foreground, exporting ``path`` (a plain directory) over NFSv3/TCP."""

    def __init__(self, path: str, workdir: str, port: int, mnt_port: int) -> None:
        self.path = os.path.abspath(path)
        self.workdir = os.path.abspath(workdir)
        self.port = port
        self.mnt_port = mnt_port
        self.conf = os.path.join(self.workdir, "ganesha.conf")
        self.log = os.path.join(self.workdir, "ganesha.log")
        self.pidfile = os.path.join(self.workdir, "ganesha.pid")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        os.makedirs(os.path.join(self.workdir, "recovery"), exist_ok=True)
        with open(self.conf, "w") as f:
            f.write(CONFIG.format(port=self.port, mnt_port=self.mnt_port, workdir=self.workdir, path=self.path))
        self.proc = subprocess.Popen(["ganesha.nfsd", "-F", "-f", self.conf, "-L", self.log, "-p", self.pidfile,
                                      "-N", "NIV_EVENT"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, "ganesha.nfsd", log=self.log)
        wait_port(self.mnt_port, self.proc, "ganesha.nfsd (MOUNT)", log=self.log)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def __enter__(self) -> Ganesha:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
