"""NFS-Ganesha (Debian nfs-ganesha + nfs-ganesha-vfs) as a reference NFSv3 server inside a ``Sandbox``.

Used to tell a workload bug from a server bug (the kernel-client suite runs against it with
``TESSERA_KVM_GANESHA=1``) and as the peer of benchmarks. It needs rpcbind (it refuses to start without it)
and, for NLM locks, an rpc.statd beside it: both run in the sandbox. Ganesha caches directory entries and
attributes: the config turns that off so files the host changes behind its back are seen (see
KERNEL-CLIENTS.md).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.kvm.netns import Sandbox

NFS_PORT, MNT_PORT, NLM_PORT = 2049, 20048, 32803

_EXPORT = """EXPORT {{ Export_Id = {id}; Path = {path}; Pseudo = {path}; Access_Type = RW; Squash = {squash};
  Anonymous_Uid = 65534; Anonymous_Gid = 65534; Protocols = 3; Transports = TCP; SecType = sys;
  FSAL {{ Name = VFS; }} }}
"""
_CONFIG = f"""NFS_CORE_PARAM {{ Protocols = 3; NFS_Port = {NFS_PORT}; MNT_Port = {MNT_PORT}; NLM_Port = {NLM_PORT};
  Enable_RQUOTA = false; }}
NFSV4 {{ Graceless = true; }}
MDCACHE {{ Dir_Chunk = 0; }}
EXPORT_DEFAULTS {{ Attr_Expiration_Time = 0; }}
LOG {{ Default_Log_Level = WARN; }}
"""


def missing() -> str | None:
    """None when Ganesha, rpcbind and rpc.statd are installed, else what is missing."""
    need = ["ganesha.nfsd", "rpcbind", "rpc.statd"]
    absent = [n for n in need if shutil.which(n) is None]
    return f"missing {', '.join(absent)} (apt-get install nfs-ganesha nfs-ganesha-vfs rpcbind nfs-common)" \
        if absent else None


@dataclass
class Ganesha:
    """Ganesha exporting ``exports`` (directory -> squash: "No_Root_Squash" | "Root_Squash")."""

    sandbox: Sandbox
    workdir: Path
    exports: dict[Path, str]
    proc: subprocess.Popen[Any] | None = None
    statd: subprocess.Popen[Any] | None = None

    def start(self) -> Ganesha:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "ganesha.conf"
        conf.write_text(_CONFIG + "".join(_EXPORT.format(id=i + 1, path=p, squash=s)
                                          for i, (p, s) in enumerate(self.exports.items())))
        if self.statd is None:
            self.sandbox.run(["mkdir", "-p", "/run/statd/sm", "/run/statd/sm.bak"])
            self.statd = self.sandbox.popen(["rpc.statd", "-F", "--no-notify", "-P", "/run/statd"],
                               log=self.workdir / "statd.log")
        self.proc = self.sandbox.popen(["ganesha.nfsd", "-F", "-L", "/dev/stdout", "-f", str(conf),
                                        "-p", "/run/ganesha/ganesha.pid"], log=self.workdir / "ganesha.log")
        self.sandbox.wait_port(NFS_PORT, 60, self.proc)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            self.sandbox.stop(self.proc, sig)
            self.proc = None
