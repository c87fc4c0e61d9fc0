"""podman-compose up (core and S3 containers on one store), an S3 round trip, down.

Builds the images first (image/build.sh: mmdebstrap base, host-downloaded wheels,
podman build --pull=never).  Every stage has a hard time limit; containers are
removed on every exit path.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str], env: dict[str, str], limit: float) -> str:
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit)
    assert p.returncode == 0, f"{cmd} failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p.stdout


def test_compose_s3_round_trip() -> None:
    env = {**os.environ, "CONTAINERS_CONF": str(ROOT / "tests/image/containers.conf"),
           "PY": sys.executable, "TESSERA_S3_PORT": str(_port()), "TESSERA_ADMIN_PORT": str(_port())}
    _run(["bash", "image/build.sh"], env, 900)
    project = f"tessera-test-{os.getpid()}"
    compose = [str(BIN / "podman-compose"), "-p", project]
    try:
        _run([*compose, "up", "-d"], env, 180)
        deadline = time.time() + 180
        while True:  # the admin endpoint says the store is up
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{env['TESSERA_ADMIN_PORT']}/healthz", timeout=5) as r:
                    if r.read() == b"OK\n":
                        break
            except OSError:
                pass
            assert time.time() < deadline, "the containerised server did not become healthy"
            time.sleep(1)
        user = json.loads(_run([*compose, "exec", "-T", "core", "tessera", "user", "add", "ci", "--json"],
                               env, 120).strip().splitlines()[-1])
        # the two services are separate containers of the same store
        names = _run(["podman", "ps", "--format", "{{.Names}}", "--filter",
                      f"label=io.podman.compose.project={project}"], env, 60).split()
        assert sorted(n.split("_")[1] for n in names) == ["core", "s3"], names
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{env['TESSERA_S3_PORT']}",
                          aws_access_key_id=user["access_key"], aws_secret_access_key=user["secret_key"],
                          region_name="us-east-1")
        deadline = time.time() + 120
        while True:  # the S3 workers may start a moment after the admin endpoint
            try:
                s3.create_bucket(Bucket="compose")
                break
            except Exception:
                assert time.time() < deadline, "the containerised S3 server did not answer"
                time.sleep(1)
        body = os.urandom(5 * 1024 * 1024 + 3)
        s3.put_object(Bucket="compose", Key="dir/obj.bin", Body=body)
        assert s3.get_object(Bucket="compose", Key="dir/obj.bin")["Body"].read() == body
    finally:
        subprocess.run([*compose, "down", "-v", "-t", "20"], cwd=ROOT, env=env, capture_output=True, timeout=180)
        left = subprocess.run(["podman", "ps", "-aq", "--filter", f"label=io.podman.compose.project={project}"],
                              env=env, capture_output=True, text=True, timeout=60).stdout.split()
        if left:
            subprocess.run(["podman", "rm", "-f", *left], env=env, capture_output=True, timeout=120)
