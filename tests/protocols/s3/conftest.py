"""A real `tessera serve` (S3 over HTTP and over HTTPS) shared by the S3 tests."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[3]
_names = itertools.count()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    data: Path
    cert: str | None
    proc: subprocess.Popen[bytes]

    def client(self, **cfg: Any) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name="us-east-1",
                            verify=self.cert if self.cert else None, config=Config(**cfg) if cfg else None)

    def env(self) -> dict[str, str]:
        return {**os.environ, "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null",
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}


def cli(data: Path, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "--data", str(data), *args], cwd=ROOT,
                          check=True, capture_output=True, text=True).stdout


def wait_port(port: int, proc: subprocess.Popen[bytes], limit_s: float = 60.0) -> None:
    """Until something accepts on 127.0.0.1:``port``; RuntimeError if ``proc`` exits or ``limit_s`` passes."""
    deadline = time.time() + limit_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError(f"nothing listens on {port}") from None
            time.sleep(0.2)


def _start(tmp: Path, tls: bool, env: dict[str, str] | None = None, s3_yaml: str = "",
           stderr: Path | None = None) -> Iterator[S3Server]:
    data = tmp / "data"
    cli(data, "init")
    user = json.loads(cli(data, "user", "add", "tester", "--password", "pw", "--json"))
    port = free_port()
    cfg = data / "tessera.yaml"
    cfg.write_text(f"admin:\n  enabled: false\nlog:\n  level: warning\ns3:\n  listen: 127.0.0.1:{port}\n"
                   f"  workers: 2\n  domain: s3.localtest\n  tls:\n    enabled: {str(tls).lower()}\n"
                   f"{s3_yaml}maintenance:\n  gc_interval_s: 0\n")
    err = open(stderr, "wb") if stderr else None  # noqa: SIM115 (closed with the server)
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "--data", str(data), "serve"], cwd=ROOT,
                            env={**os.environ, **(env or {})}, stderr=err)
    scheme = "https" if tls else "http"
    try:
        wait_port(port, proc)
    except RuntimeError:
        proc.kill()
        raise
    srv = S3Server(f"{scheme}://127.0.0.1:{port}", user["access_key"], user["secret_key"], data,
                   str(data / "tls" / "cert.pem") if tls else None, proc)
    try:
        yield srv
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if err is not None:
            err.close()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    yield from _start(tmp_path_factory.mktemp("s3http"), tls=False)


@pytest.fixture(scope="session")
def s3tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    yield from _start(tmp_path_factory.mktemp("s3https"), tls=True)


@pytest.fixture
def bucket(s3: S3Server) -> str:
    name = f"b{next(_names)}-{os.getpid()}"
    s3.client().create_bucket(Bucket=name)
    return name


HARD_LIMITS = {"TESSERA_S3_HEADER_TIMEOUT_S": "2", "TESSERA_S3_BODY_IDLE_TIMEOUT_S": "2",
               "TESSERA_S3_MAX_HEAD_BYTES": "32768", "TESSERA_S3_MAX_HEADERS": "64",
               "TESSERA_S3_MAX_CONN_PER_IP": "4", "TESSERA_S3_MAX_CONN": "6"}


@pytest.fixture(scope="session")
def s3hard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A server with tight connection limits (2 workers: caps are per worker) and the audit log on;
    its stderr is in ``<data>/../stderr.log``."""
    tmp = tmp_path_factory.mktemp("s3hard")
    yield from _start(tmp, tls=False, env=HARD_LIMITS, s3_yaml="  audit: true\n", stderr=tmp / "stderr.log")
