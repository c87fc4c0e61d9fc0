"""tessera serve: admin endpoint, metrics, config validation, clean stop on signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, TypeVar

import pytest

from core.errors import InvalidArgument
from protocols.nfs.mount import unpack_exports
from protocols.nfs.rpcclient import RpcClient

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _init(d: Path) -> None:
    subprocess.run([sys.executable, "-m", "gateway.cli", "--data", str(d), "init"], cwd=ROOT, check=True,
                   capture_output=True)


@contextmanager
def _serving(*args: str, log: bool = False) -> Iterator[subprocess.Popen[str]]:
    """``tessera ARGS...`` running from the repository (with ``log``, its stderr piped, as text); when the block
    ends without an error it must stop on SIGTERM with status 0; it is killed if it still runs after."""
    p = subprocess.Popen([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT,
                         stderr=subprocess.PIPE if log else None, text=True)
    try:
        yield p
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()


def _logged(p: subprocess.Popen[str], *says: str) -> None:
    """The stderr of ``p`` (a finished ``_serving(..., log=True)``) holds each of ``says`` and no traceback."""
    err = p.stderr.read() if p.stderr else ""
    for text in says:
        assert text in err
    assert "Traceback" not in err


def _reaped(kids: list[str]) -> None:
    """The processes ``kids`` (PIDs) are gone, or zombies."""
    for k in kids:
        assert not Path(f"/proc/{k}").exists() or b"zombie" in Path(f"/proc/{k}/status").read_bytes()


def _get(url: str, timeout: float = 30) -> tuple[int, str]:
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.read().decode()
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def _get_status(url: str) -> tuple[int, str]:
    deadline = time.time() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_health_metrics_and_stop(tmp_path: Path, sig: signal.Signals) -> None:
    d = tmp_path / "data"
    _init(d)
    port, s3port = _free_port(), _free_port()
    cfg = tmp_path / "alt.yaml"
    cfg.write_text(f"store:\n  data: data\nadmin:\n  listen: 127.0.0.1:{port}\nlog:\n  format: json\n"
                   f"s3:\n  listen: 127.0.0.1:{s3port}\n  workers: 1\n")
    p = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--config", str(cfg)], cwd=ROOT,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert _get(f"http://127.0.0.1:{port}/healthz") == (200, "OK\n")
        _, body = _get(f"http://127.0.0.1:{port}/metrics")
        assert 'tessera_health{state="OK"} 1.0' in body and "tessera_target_up" in body
        code, xml = _get_status(f"http://127.0.0.1:{s3port}/")  # the S3 server runs too
        assert code == 403 and "<Code>AccessDenied</Code>" in xml
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/nope", timeout=5)
        p.send_signal(sig)
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
    err = p.stderr.read() if p.stderr else ""
    assert '"msg": "stopped"' in err and '"level": "info"' in err


def test_serve_s3_listen_flag(tmp_path: Path) -> None:
    d = tmp_path / "data"
    _init(d)
    (d / "tessera.yaml").write_text("admin:\n  enabled: false\ns3:\n  workers: 1\n")
    port = _free_port()
    p = subprocess.Popen([sys.executable, "-m", "gateway.cli", "--data", str(d), "serve", "--s3-listen",
                          f"127.0.0.1:{port}"], cwd=ROOT)
    try:
        code, xml = _get_status(f"http://127.0.0.1:{port}/")
        assert code == 403 and "AccessDenied" in xml
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
    bad = subprocess.run([sys.executable, "-m", "gateway.cli", "--data", str(d), "serve", "--s3-listen", "nope"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "--s3-listen" in bad.stderr


def test_serve_rejects_bad_config(tmp_path: Path) -> None:
    d = tmp_path / "data"
    _init(d)
    (d / "tessera.yaml").write_text("admin:\n  listen: everywhere\ns3:\n  enabled: false\n")
    p = subprocess.run([sys.executable, "-m", "gateway.cli", "--data", str(d), "serve"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "admin.listen" in p.stderr and "Traceback" not in p.stderr


HINTS = {"s3": "another S3 server? set s3.listen or --s3-listen",
         "nfs": "another NFS server? set nfs.listen or --nfs-listen",
         "smb": "another SMB server (smbd)? set smb.listen or --smb-listen",
         "admin": "another tessera serve? set admin.listen"}


@pytest.mark.parametrize(("key", "kind", "role"), [
    ("s3", socket.SOCK_STREAM, "all"), ("s3", socket.SOCK_STREAM, "s3"),
    ("nfs", socket.SOCK_STREAM, "all"), ("nfs", socket.SOCK_DGRAM, "all"), ("nfs", socket.SOCK_STREAM, "nfs"),
    ("nfs", socket.SOCK_DGRAM, "nfs"), ("smb", socket.SOCK_STREAM, "all"), ("smb", socket.SOCK_STREAM, "smb"),
    ("admin", socket.SOCK_STREAM, "all"), ("admin", socket.SOCK_STREAM, "core"),
])
def test_serve_reports_port_in_use(tmp_path: Path, key: str, kind: socket.SocketKind, role: str) -> None:
    """A listen address another program holds: one line naming the key, the address and what to change;
    exit 1, no traceback. NFS checks its TCP and its UDP port."""
    d = tmp_path / "data"
    _init(d)
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            s.listen()
        port = s.getsockname()[1]
        ports = {k: _free_port() for k in HINTS}
        ports[key] = port
        (d / "tessera.yaml").write_text(
            f"admin:\n  listen: 127.0.0.1:{ports['admin']}\ns3:\n  listen: 127.0.0.1:{ports['s3']}\n  workers: 1\n"
            f"nfs:\n  listen: 127.0.0.1:{ports['nfs']}\n  rpcbind: false\n  exports: []\n"
            f"smb:\n  listen: 127.0.0.1:{ports['smb']}\n  shares: []\n")
        p = subprocess.run([sys.executable, "-m", "gateway.cli", "--data", str(d), "serve", "--role", role],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    udp = " (UDP)" if kind == socket.SOCK_DGRAM else ""
    want = f"tessera: error: {key}.listen 127.0.0.1:{port}: address already in use{udp} ({HINTS[key]})\n"
    assert p.returncode == 1 and p.stderr.endswith(want), p.stderr
    assert "Traceback" not in p.stderr and "Errno" not in p.stderr


def test_serve_roles_core_and_s3_side_by_side(tmp_path: Path) -> None:
    """The appliance runs `serve --role core` and `serve --role s3` in separate containers on one store."""
    d = tmp_path / "data"
    _init(d)
    admin, s3 = _free_port(), _free_port()
    (d / "tessera.yaml").write_text(f"admin:\n  listen: 127.0.0.1:{admin}\ns3:\n  listen: 127.0.0.1:{s3}\n"
                                    "  workers: 1\n")
    base = [sys.executable, "-m", "gateway.cli", "--data", str(d), "serve", "--role"]
    core = subprocess.Popen([*base, "core"], cwd=ROOT)
    s3p = subprocess.Popen([*base, "s3"], cwd=ROOT)
    try:
        assert _get(f"http://127.0.0.1:{admin}/healthz")[1].strip() == "OK"
        code, xml = _get_status(f"http://127.0.0.1:{s3}/")
        assert code == 403 and "AccessDenied" in xml
        # the s3 role replaced its own process: the PID we started is the S3 server, and it has no admin port
        with open(f"/proc/{s3p.pid}/cmdline", "rb") as f:
            assert b"protocols.s3.server" in f.read()
        # the core role started no S3 child of its own
        kids = subprocess.run(["pgrep", "-P", str(core.pid)], capture_output=True, text=True).stdout.split()
        assert kids == []
    finally:
        for p in (core, s3p):
            p.send_signal(signal.SIGTERM)
        assert core.wait(30) == 0
        assert s3p.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a graceful shutdown


MOUNT, MOUNT_V3, MOUNT_EXPORT = 100005, 3, 5
NFS_YAML = "nfs:\n  listen: 127.0.0.1:{port}\n  rpcbind: false\n  grace_s: 0\n  exports:\n{exports}"


def _exports_yaml(*entries: str) -> str:
    return "".join(f"    - {{{e}}}\n" for e in entries)


def _mount_exports(port: int, transport: Literal["tcp", "udp"] = "tcp") -> list[tuple[str, list[str]]]:
    """MOUNT v3 EXPORT, as showmount -e asks it."""
    with RpcClient("127.0.0.1", port, transport=transport, timeout=5) as c:
        return unpack_exports(c.call_ok(MOUNT, MOUNT_V3, MOUNT_EXPORT))


def _until(probe: Callable[[], T], want: Callable[[T], bool], limit: float = 30) -> T:
    deadline = time.time() + limit
    while True:
        try:
            v = probe()
            if want(v):
                return v
        except OSError:
            v = None  # type: ignore[assignment]
        assert time.time() < deadline, f"gave up waiting; last: {v!r}"
        time.sleep(0.2)


def test_role_nfs_serves_in_process_and_follows_export_edits(tmp_path: Path) -> None:
    """``serve --role nfs`` (the NFS container's command) is the NFS server itself, on one TCP+UDP port; an edit
    of nfs.exports in tessera.yaml applies without a restart, an invalid edit is logged and changes nothing."""
    d = tmp_path / "data"
    _init(d)
    port = _free_port()
    cfg = d / "tessera.yaml"
    cfg.write_text("admin:\n  enabled: false\nlog:\n  format: text\n"
                   + NFS_YAML.format(port=9, exports=_exports_yaml("path: /, clients: [127.0.0.1]")))
    with _serving("--data", str(d), "serve", "--role", "nfs", "--nfs-listen", f"127.0.0.1:{port}", log=True) as p:
        first = [("/", ["127.0.0.1"])]
        assert _until(lambda: _mount_exports(port), lambda v: v == first) == first
        assert _mount_exports(port, "udp") == first
        ls = ["nfs-ls", f"nfs://127.0.0.1/?nfsport={port}&mountport={port}"]
        assert subprocess.run(ls, capture_output=True, timeout=60).returncode == 0  # libnfs mounts and lists
        with open(f"/proc/{p.pid}/cmdline", "rb") as f:  # no child process: this PID serves NFS
            assert b"--role\0nfs" in f.read()
        assert subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True).stdout == b""

        # a new export, the old one narrowed: served within a second or two, no restart
        text = cfg.read_text().replace("    - {path: /, clients: [127.0.0.1]}\n", _exports_yaml(
            "path: /, clients: [127.0.0.2]", "path: /data, clients: [10.0.0.0/8, '::1'], access: ro"))
        tmp = d / "tessera.yaml.new"
        tmp.write_text(text)
        os.replace(tmp, cfg)  # as an editor saves
        second = [("/", ["127.0.0.2"]), ("/data", ["10.0.0.0/8", "::1"])]
        assert _until(lambda: _mount_exports(port), lambda v: v == second) == second
        refused = subprocess.run(ls, capture_output=True, text=True, timeout=60)  # 127.0.0.1 is no client now
        assert refused.returncode != 0 and "MNT3ERR_ACCES" in refused.stderr, refused.stderr

        # an invalid edit: logged, the exports stay as they were
        cfg.write_text(cfg.read_text().replace("access: ro", "access: rx"))
        time.sleep(2.5)  # longer than the server's exports refresh (1 s)
        assert _mount_exports(port) == second
    _logged(p, "nfs exports reloaded", "nfs exports not reloaded",
            "nfs.exports[1].access: must be one of rw, ro, got 'rx'")


def test_serve_runs_nfs_as_a_supervised_child(tmp_path: Path) -> None:
    """``tessera serve`` starts every protocol the config enables (S3 and NFS here) as its own process, restarts
    one that dies, and stops them all on SIGTERM."""
    d = tmp_path / "data"
    _init(d)
    (tmp_path / "hello.txt").write_text("hello over NFS\n")
    cli = [sys.executable, "-m", "gateway.cli", "--data", str(d)]
    subprocess.run([*cli, "mkdir", "/dir"], cwd=ROOT, check=True, capture_output=True)
    subprocess.run([*cli, "put", str(tmp_path / "hello.txt"), "/dir/hello.txt"], cwd=ROOT, check=True,
                   capture_output=True)
    admin, s3, nfs = _free_port(), _free_port(), _free_port()
    (d / "tessera.yaml").write_text(f"admin:\n  listen: 127.0.0.1:{admin}\ns3:\n  listen: 127.0.0.1:{s3}\n"
                                    "  workers: 1\n" + NFS_YAML.format(port=nfs, exports=_exports_yaml(
                                        "path: /, clients: ['*']")))
    url = f"nfs://127.0.0.1/dir/hello.txt?nfsport={nfs}&mountport={nfs}&uid=1000&gid=1000"
    kids: list[str] = []
    with _serving("--data", str(d), "serve") as p:
        assert _until(lambda: _mount_exports(nfs), bool) == [("/", ["*"])]
        cat = subprocess.run(["nfs-cat", url], capture_output=True, text=True, timeout=60)  # libnfs, as uid 1000
        assert cat.stdout == "hello over NFS\n", cat.stderr
        assert _get_status(f"http://127.0.0.1:{s3}/")[0] == 403
        kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
        cmds = {k: Path(f"/proc/{k}/cmdline").read_bytes().split(b"\0") for k in kids}
        [nfs_pid] = [k for k, c in cmds.items() if b"nfs" in c]
        assert cmds[nfs_pid][1:] == [b"-m", b"gateway.cli", b"--data", str(d).encode(), b"serve", b"--role", b"nfs",
                                     b"--config", str(d / "tessera.yaml").encode(), b"--nfs-listen",
                                     f"127.0.0.1:{nfs}".encode(), b""]
        assert any(b"protocols.s3.server" in c for c in cmds.values())
        os.kill(int(nfs_pid), signal.SIGKILL)  # the supervisor starts it again
        assert _until(lambda: _mount_exports(nfs), bool) == [("/", ["*"])]
        assert subprocess.run(["nfs-cat", url], capture_output=True, text=True, timeout=60).stdout == "hello over NFS\n"
    _reaped(kids)


def test_listen_flags_win_and_a_user_serves_nfs_on_user_listen(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import listen
    from gateway.config import Config, NfsConfig
    from gateway.protocols import apply_listen
    cfg = Config(nfs=NfsConfig(listen="0.0.0.0:2049", user_listen="127.0.0.1:12049"))
    monkeypatch.setattr(listen, "privileged", lambda: False)
    assert apply_listen(cfg, {})["nfs"] == ("tessera: NFS listens on 127.0.0.1:12049 (nfs.user_listen: not running "
                                            "as root; nfs.listen is 0.0.0.0:2049)")
    assert cfg.nfs.listen == "127.0.0.1:12049" and cfg.s3.listen == "0.0.0.0:9000"  # S3 has no user_listen
    cfg = Config(nfs=NfsConfig(listen="0.0.0.0:2049"))
    assert "nfs" not in apply_listen(cfg, {"nfs": "[::1]:111", "s3": "127.0.0.1:80"})  # an explicit flag is obeyed
    assert (cfg.nfs.listen, cfg.s3.listen) == ("[::1]:111", "127.0.0.1:80")
    monkeypatch.setattr(listen, "privileged", lambda: True)  # root, or CAP_NET_BIND_SERVICE
    cfg = Config(nfs=NfsConfig(listen="0.0.0.0:2049"))
    assert apply_listen(cfg, {}) == {} and cfg.nfs.listen == "0.0.0.0:2049"
    with pytest.raises(InvalidArgument, match="--nfs-listen: expected HOST:PORT, got 'x'"):
        apply_listen(cfg, {"nfs": "x"})


def test_a_user_serves_smb_on_user_listen(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import listen
    from gateway.config import Config, SmbConfig
    from gateway.protocols import apply_listen
    monkeypatch.setattr(listen, "privileged", lambda: False)
    cfg = Config(smb=SmbConfig())
    assert apply_listen(cfg, {})["smb"] == ("tessera: SMB listens on 127.0.0.1:4445 (smb.user_listen: not running "
                                            "as root; smb.listen is 0.0.0.0:445)")
    assert cfg.smb.listen == "127.0.0.1:4445"
    cfg = Config(smb=SmbConfig())
    assert "smb" not in apply_listen(cfg, {"smb": "0.0.0.0:1445"}) and cfg.smb.listen == "0.0.0.0:1445"
    with pytest.raises(InvalidArgument, match="--smb-listen: expected HOST:PORT, got '445'"):
        apply_listen(cfg, {"smb": "445"})
    monkeypatch.setattr(listen, "privileged", lambda: True)
    cfg = Config(smb=SmbConfig())
    assert apply_listen(cfg, {}) == {} and cfg.smb.listen == "0.0.0.0:445"


def test_serve_as_a_user_serves_nfs_and_smb_on_user_listen_and_says_so(tmp_path: Path) -> None:
    """What `make run` does for a user who is not root: NFS and SMB come up on their user_listen, not on the
    machine's NFS and SMB ports (nfs.listen, smb.listen), and the first lines of output say where."""
    from tests.gateway.test_smb_role import PASSWORD, connect
    d = tmp_path / "data"
    _init(d)
    subprocess.run([sys.executable, "-m", "gateway.cli", "--data", str(d), "user", "add", "alice", "--password",
                    PASSWORD, "--no-key"], cwd=ROOT, check=True, capture_output=True)
    nfs, smb, s3, admin = _free_port(), _free_port(), _free_port(), _free_port()
    text = (d / "tessera.yaml").read_text()
    assert "listen: 0.0.0.0:2049" in text and "listen: 0.0.0.0:445" in text  # the default config, with its other
    # ports moved out of the way
    text = text.replace("user_listen: 127.0.0.1:12049", f"user_listen: 127.0.0.1:{nfs}")
    text = text.replace("user_listen: 127.0.0.1:4445", f"user_listen: 127.0.0.1:{smb}")
    text = text.replace("0.0.0.0:9000", f"127.0.0.1:{s3}").replace("127.0.0.1:9100", f"127.0.0.1:{admin}")
    (d / "tessera.yaml").write_text(text.replace("rpcbind: true", "rpcbind: false"))
    argv = [sys.executable, "-m", "gateway.cli", "--data", str(d), "serve"]
    if os.geteuid() == 0:  # a user: uid 1000 in a user namespace (no capabilities; still the files' owner)
        argv = ["unshare", "--user", "--map-user=1000", "--map-group=1000", *argv]
    p = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert p.stdout is not None
        assert p.stdout.readline() == (f"tessera: NFS listens on 127.0.0.1:{nfs} (nfs.user_listen: not running as "
                                       "root; nfs.listen is 0.0.0.0:2049)\n")
        assert p.stdout.readline() == (f"tessera: SMB listens on 127.0.0.1:{smb} (smb.user_listen: not running as "
                                       "root; smb.listen is 0.0.0.0:445)\n")
        assert _until(lambda: _mount_exports(nfs), bool) == [("/", ["127.0.0.1", "::1"])]
        with connect(smb) as c:  # the default share: the store's root, as NFS exports it
            assert "meta" not in c.listdir("tessera")
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0


def test_registry_entries_roles_images_and_children(tmp_path: Path) -> None:
    """Each protocol is one registry entry: its config section, role, image, listen key and flag, transports, and
    the child process `tessera serve` runs for it."""
    from core.errors import ConfigError
    from gateway.cli import build_parser
    from gateway.config import Config, NfsConfig, S3Config, SmbConfig
    from gateway.protocols import BY_ROLE, REGISTRY, Paths
    cfg = Config(s3=S3Config(listen="127.0.0.1:9001", workers=3), nfs=NfsConfig(listen="127.0.0.1:3049"),
                 smb=SmbConfig(listen="127.0.0.1:1445"))
    paths = Paths(str(tmp_path / "d"), str(tmp_path / "t.yaml"))
    assert [(e.name, e.role, e.image, e.listen_key, e.listen_flag, e.transports(cfg), e.section(cfg).listen)
            for e in REGISTRY] == [
        ("s3", "s3", "localhost/tessera-s3:latest", "s3.listen", "--s3-listen", ("tcp",), "127.0.0.1:9001"),
        ("nfs", "nfs", "localhost/tessera-nfs:latest", "nfs.listen", "--nfs-listen", ("tcp", "udp"), "127.0.0.1:3049"),
        ("smb", "smb", "localhost/tessera-smb:latest", "smb.listen", "--smb-listen", ("tcp",), "127.0.0.1:1445")]
    s3 = BY_ROLE["s3"].child(cfg, paths)
    assert (s3.name, s3.argv) == ("s3", [sys.executable, "-m", "protocols.s3.server"])
    assert {k: s3.env[k] for k in ("TESSERA_DATA", "TESSERA_S3_LISTEN", "TESSERA_S3_WORKERS")} == {
        "TESSERA_DATA": paths.data_dir, "TESSERA_S3_LISTEN": "127.0.0.1:9001", "TESSERA_S3_WORKERS": "3"}
    nfs = BY_ROLE["nfs"].child(cfg, paths)
    assert nfs.name == "nfs" and nfs.argv == [sys.executable, "-m", "gateway.cli", "--data", paths.data_dir, "serve",
                                              "--role", "nfs", "--config", paths.config, "--nfs-listen",
                                              "127.0.0.1:3049"]
    assert nfs.env == dict(os.environ)
    smb = BY_ROLE["smb"].child(cfg, paths)
    assert smb.name == "smb" and smb.argv == [sys.executable, "-m", "gateway.cli", "--data", paths.data_dir, "serve",
                                              "--role", "smb", "--config", paths.config, "--smb-listen",
                                              "127.0.0.1:1445"]
    cfg.nfs.udp = False
    assert BY_ROLE["nfs"].transports(cfg) == ("tcp",)
    cfg.s3.tls.enabled = True
    with pytest.raises(ConfigError, match=r"s3\.tls: .*cert\.pem not found"):
        BY_ROLE["s3"].child(cfg, paths)
    # the command line offers every role and listen flag the registry has
    args = build_parser().parse_args(["serve", "--role", "nfs", "--nfs-listen", "h:1", "--s3-listen", "h:2"])
    assert (args.role, args.nfs_listen, args.s3_listen) == ("nfs", "h:1", "h:2")
    args = build_parser().parse_args(["serve", "--role", "smb", "--smb-listen", "h:3"])
    assert (args.role, args.smb_listen) == ("smb", "h:3")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--role", "ftp"])
