"""``tessera serve`` and SMB: ``serve --role smb`` (the SMB container's command) in process, the share list
following tessera.yaml edits, SMB as a supervised child of ``serve``; smbprotocol's ``smbclient`` is the client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import smbclient
from smbprotocol.exceptions import LogonFailure, SMBConnectionClosed, SMBOSError

from core.store import open_store
from tests.gateway.test_serve import ROOT, _free_port, _init, _logged, _reaped, _serving, _until

PASSWORD = "alice-pw-1"
SMB_YAML = "admin:\n  enabled: false\nlog:\n  format: text\nsmb:\n  listen: 127.0.0.1:{port}\n  shares:\n{shares}"


def _shares_yaml(*entries: str) -> str:
    return "".join(f"    - {{{e}}}\n" for e in entries)


def smb_store(d: Path, *dirs: str) -> None:
    """A store with alice (uid 1000, an SMB password, made by the CLI as an admin would) and world-writable
    top-level directories ``dirs``."""
    _init(d)
    subprocess.run([sys.executable, "-m", "gateway.cli", "--data", str(d), "user", "add", "alice", "--password",
                    PASSWORD, "--uid", "1000", "--no-key"], cwd=ROOT, check=True, capture_output=True)
    store = open_store(str(d))
    try:
        for name in dirs:
            store.fs.mkdir(store.fs.root, name, 0o777)
    finally:
        store.close()


class Client:
    """smbprotocol's high-level client as alice, with a connection cache of its own (a fresh client: new
    sessions and tree connects)."""

    def __init__(self, port: int, password: str = PASSWORD) -> None:
        self.port = port
        self.cache: dict[str, Any] = {}
        smbclient.register_session("127.0.0.1", username="alice", password=password, port=port,
                                   connection_cache=self.cache, connection_timeout=10)

    def unc(self, path: str) -> str:
        return "\\\\127.0.0.1\\" + path.replace("/", "\\")

    def write(self, path: str, text: str) -> None:
        with smbclient.open_file(self.unc(path), mode="w", port=self.port, connection_cache=self.cache) as f:
            f.write(text)

    def read(self, path: str) -> str:
        with smbclient.open_file(self.unc(path), mode="r", port=self.port, connection_cache=self.cache) as f:
            return str(f.read())

    def listdir(self, path: str) -> list[str]:
        return list(smbclient.listdir(self.unc(path), port=self.port, connection_cache=self.cache))

    def close(self) -> None:
        smbclient.reset_connection_cache(fail_on_error=False, connection_cache=self.cache)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(port: int, limit: float = 30) -> Client:
    """A client once the server answers (it may still be starting)."""
    deadline = time.time() + limit
    while True:
        try:
            return Client(port)
        except (ValueError, SMBConnectionClosed) as e:  # "Failed to connect to ...: Connection refused", or a
            # connection the backlog of a server being killed took and then reset
            assert time.time() < deadline, f"no SMB server on port {port}: {e}"
            time.sleep(0.2)


def core_get(d: Path, path: str) -> str:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "--data", str(d), "get", path, "-"], cwd=ROOT,
                          check=True, capture_output=True, text=True).stdout


def test_role_smb_serves_in_process_and_follows_share_edits(tmp_path: Path) -> None:
    """``serve --role smb`` is the SMB server itself; a share added to tessera.yaml is connectable without a
    restart; an invalid edit is logged and the shares stay as they were."""
    d = tmp_path / "data"
    smb_store(d, "data", "more")
    port = _free_port()
    cfg = d / "tessera.yaml"
    cfg.write_text(SMB_YAML.format(port=9, shares=_shares_yaml("name: data, path: /data")))  # --smb-listen wins
    with _serving("--data", str(d), "serve", "--role", "smb", "--smb-listen", f"127.0.0.1:{port}", log=True) as p:
        with connect(port) as c:
            c.write("data/hello.txt", "hello over SMB\n")
            assert c.listdir("data") == ["hello.txt"]
            with pytest.raises(SMBOSError, match="STATUS_BAD_NETWORK_NAME"):  # not shared (yet)
                c.listdir("more")
        assert core_get(d, "/data/hello.txt") == "hello over SMB\n"  # the same file, through the core
        with open(f"/proc/{p.pid}/cmdline", "rb") as f:  # no child process: this PID serves SMB
            assert b"--role\0smb" in f.read()
        assert subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True).stdout == b""
        with pytest.raises(LogonFailure):  # a wrong password gets nothing
            Client(port, "wrong").close()

        # a new share: connectable within a second or two, no restart
        text = cfg.read_text() + _shares_yaml("name: More, path: /more, read_only: true")
        tmp = d / "tessera.yaml.new"
        tmp.write_text(text)
        os.replace(tmp, cfg)  # as an editor saves
        core_put = subprocess.run([sys.executable, "-m", "gateway.cli", "--data", str(d), "put", "-", "/more/m.txt"],
                                  cwd=ROOT, input="more\n", text=True, capture_output=True, check=True)
        assert core_put.returncode == 0

        def more() -> str:
            with Client(port) as c:
                return c.read("more/m.txt")  # share names are compared without case
        assert _until(more, lambda v: v == "more\n") == "more\n"

        # an invalid edit (two shares named alike): logged; both shares stay
        cfg.write_text(cfg.read_text().replace("name: More", "name: DATA"))
        time.sleep(2.5)  # longer than the server's share refresh (1 s)
        assert more() == "more\n"
        with Client(port) as c:
            assert c.read("data/hello.txt") == "hello over SMB\n"
    _logged(p, "smb shares reloaded: data=/data rw; More=/more ro", "smb shares not reloaded",
            "smb.shares[1].name: 'DATA' is already the name of share 'data'")


def test_serve_runs_smb_as_a_supervised_child(tmp_path: Path) -> None:
    """``tessera serve`` with an smb: section starts ``serve --role smb`` as its own process (at the address it
    settled on), restarts it when it dies, and stops it on SIGTERM."""
    d = tmp_path / "data"
    smb_store(d, "data")
    admin, smb = _free_port(), _free_port()
    (d / "tessera.yaml").write_text(f"admin:\n  listen: 127.0.0.1:{admin}\ns3:\n  enabled: false\n"
                                    f"smb:\n  listen: 127.0.0.1:{smb}\n  shares:\n    - {{name: data, path: /data}}\n")
    kids: list[str] = []
    with _serving("--data", str(d), "serve") as p:
        with connect(smb) as c:
            c.write("data/a.txt", "via the child\n")
        kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
        [kid] = kids
        assert Path(f"/proc/{kid}/cmdline").read_bytes().split(b"\0")[1:] == [
            b"-m", b"gateway.cli", b"--data", str(d).encode(), b"serve", b"--role", b"smb", b"--config",
            str(d / "tessera.yaml").encode(), b"--smb-listen", f"127.0.0.1:{smb}".encode(), b""]
        os.kill(int(kid), signal.SIGKILL)  # the supervisor starts it again
        with connect(smb) as c:
            assert c.read("data/a.txt") == "via the child\n"
    _reaped(kids)
