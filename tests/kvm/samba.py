"""Samba's smbd 4.17 (Debian ``samba``) as a reference server (bench/smb.py, the SMB kernel-client test).

    with Samba(share_dir, workdir, port, user="alice", password="alice-pw") as s:
        ... smbclient //127.0.0.1/{s.share} -p {s.port} -U alice%alice-pw

Everything smbd keeps lives under ``workdir``: its smb.conf, the pid/lock/state/cache/private
directories, a tdbsam passdb holding the one user (added with ``pdbedit`` reading the password twice
from stdin), its log.  It listens on 127.0.0.1:``port`` only (``bind interfaces only``), serves one
share of a plain directory, requires signing (as Tessera does by default) and no encryption, and
uses SMB 2.0.2 to 3.1.1.  Samba needs a Unix account behind each passdb user: ``ensure_unix_user``
creates one (no home, no shell) when the name does not exist; the share directory is given to it.

``smbd -F --no-process-group`` kills its process group on exit, so it is started in its own session
(``setsid``: ``start_new_session``) and stopped by signalling that group (smbd forks a child per
client connection).  Needs root (smbd binds its sockets and switches to the user per connection).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from types import TracebackType

CONF = """\
[global]
  server role = standalone server
  workgroup = WORKGROUP
  netbios name = SAMBABENCH
  smb ports = {port}
  interfaces = 127.0.0.1
  bind interfaces only = yes
  disable netbios = yes
  server min protocol = SMB2_02
  server signing = mandatory
  server smb encrypt = if_required
  passdb backend = tdbsam:{work}/private/passdb.tdb
  private dir = {work}/private
  pid directory = {work}/pid
  lock directory = {work}/lock
  state directory = {work}/state
  cache directory = {work}/cache
  ncalrpc dir = {work}/ncalrpc
  log file = {work}/log.%m
  log level = 1
  map to guest = never
  load printers = no
  printcap name = /dev/null
  disable spoolss = yes
  usershare path =

[{share}]
  path = {path}
  read only = no
  browseable = yes
  valid users = {user}
"""


def missing() -> str | None:
    """Why Samba cannot run here, or None."""
    if os.geteuid() != 0:
        return "smbd needs root"
    absent = [p for p in ("smbd", "pdbedit") if shutil.which(p) is None]
    return f"missing {', '.join(absent)} (apt-get install samba)" if absent else None


def ensure_unix_user(name: str) -> pwd.struct_passwd:
    """The Unix account ``name``, created (no home, no login shell) when it does not exist."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True,
                       capture_output=True)
        return pwd.getpwnam(name)


class Samba:
    """One smbd serving ``share_dir`` as ``share`` to ``user`` (see the module docstring)."""

    def __init__(self, share_dir: str, workdir: str, port: int, *, user: str, password: str,
                 share: str = "bench") -> None:
        self.share_dir, self.workdir, self.port = share_dir, workdir, port
        self.user, self.password, self.share = user, password, share
        self.conf = os.path.join(workdir, "smb.conf")
        self.proc: subprocess.Popen[bytes] | None = None

    def setup(self) -> None:
        for d in ("private", "pid", "lock", "state", "cache", "ncalrpc"):
            os.makedirs(os.path.join(self.workdir, d), exist_ok=True)
        account = ensure_unix_user(self.user)
        os.chown(self.share_dir, account.pw_uid, account.pw_gid)
        with open(self.conf, "w") as f:
            f.write(CONF.format(port=self.port, work=self.workdir, share=self.share, path=self.share_dir,
                                user=self.user))
        r = subprocess.run(["pdbedit", "-s", self.conf, "-a", "-u", self.user, "-t"],
                           input=f"{self.password}\n{self.password}\n", capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"pdbedit -a {self.user} failed: {r.stderr.strip() or r.stdout.strip()}")

    def start(self) -> None:
        log = os.path.join(self.workdir, "smbd.out")
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(["smbd", "-F", "--no-process-group", "-s", self.conf, "--debug-stdout"],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                with open(log, errors="replace") as f:
                    raise RuntimeError(f"smbd exited with {self.proc.returncode}:\n{f.read()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"smbd did not listen on 127.0.0.1:{self.port} within 30 s") from None
                time.sleep(0.1)

    def stop(self) -> None:
        p = self.proc
        if p is None or p.poll() is not None:
            return
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)

    def __enter__(self) -> Samba:
        self.setup()
        self.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

