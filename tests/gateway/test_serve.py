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
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _init(d: Path) -> None:
    subprocess.run([sys.executable, "-m", "gateway.cli", "--data", str(d), "init"], cwd=ROOT, check=True,
                   capture_output=True)


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


def test_serve_reports_port_in_use(tmp_path: Path) -> None:
    d = tmp_path / "data"
    _init(d)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        (d / "tessera.yaml").write_text(f"admin:\n  listen: 127.0.0.1:{_free_port()}\n"
                                        f"s3:\n  listen: 127.0.0.1:{port}\n")
        p = subprocess.run([sys.executable, "-m", "gateway.cli", "--data", str(d), "serve"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60, env={**os.environ})
    assert p.returncode == 1 and "tessera: error:" in p.stderr


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
