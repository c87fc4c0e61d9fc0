"""podman-compose up (core, S3, NFS and SMB containers on one store), an S3 round trip, the object read back
through NFS (libnfs's nfs-cat) and SMB (smbprotocol's smbclient), down.

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
import smbclient
import yaml

from gateway.protocols import REGISTRY
from protocols.nfs.mount import unpack_exports
from protocols.nfs.rpcclient import RpcClient

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSWORD = "ci-password-1"


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
           "PY": sys.executable, "TESSERA_S3_PORT": str(_port()), "TESSERA_ADMIN_PORT": str(_port()),
           "TESSERA_NFS_PORT": str(_port()), "TESSERA_SMB_PORT": str(_port())}
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
        user = json.loads(_run([*compose, "exec", "-T", "core", "tessera", "user", "add", "ci", "--password",
                                PASSWORD, "--json"], env, 120).strip().splitlines()[-1])
        # the four services are separate containers of the same store
        names = _run(["podman", "ps", "--format", "{{.Names}}", "--filter",
                      f"label=io.podman.compose.project={project}"], env, 60).split()
        assert sorted(n.split("_")[1] for n in names) == ["core", "nfs", "s3", "smb"], names
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
        # NFS: the export, over TCP and UDP through the published port, and the object read through it as its owner
        nfs = int(env["TESSERA_NFS_PORT"])
        for transport in ("tcp", "udp"):
            with RpcClient("127.0.0.1", nfs, transport=transport, timeout=10) as c:
                [(path, clients)] = unpack_exports(c.call_ok(100005, 3, 5))  # MOUNT EXPORT
            assert path == "/" and "10.0.0.0/8" in clients
        url = (f"nfs://127.0.0.1/compose/dir/obj.bin?nfsport={nfs}&mountport={nfs}&uid={user['uid']}"
               f"&gid={user['gid']}")
        got = subprocess.run(["nfs-cat", url], capture_output=True, timeout=120)
        assert got.returncode == 0 and got.stdout == body, got.stderr[-2000:]
        # SMB: the default share (the whole store) through the published port, the object read as its owner
        smb = int(env["TESSERA_SMB_PORT"])
        cache: dict[str, object] = {}
        smbclient.register_session("127.0.0.1", username="ci", password=PASSWORD, port=smb, connection_cache=cache)
        try:
            with smbclient.open_file(r"\\127.0.0.1\tessera\compose\dir\obj.bin", mode="rb", port=smb,
                                     connection_cache=cache) as f:
                assert f.read() == body
        finally:
            smbclient.reset_connection_cache(fail_on_error=False, connection_cache=cache)
    finally:
        subprocess.run([*compose, "down", "-v", "-t", "20"], cwd=ROOT, env=env, capture_output=True, timeout=180)
        left = subprocess.run(["podman", "ps", "-aq", "--filter", f"label=io.podman.compose.project={project}"],
                              env=env, capture_output=True, text=True, timeout=60).stdout.split()
        if left:
            subprocess.run(["podman", "rm", "-f", *left], env=env, capture_output=True, timeout=120)


def test_every_protocol_has_its_image_compose_service_and_appliance_unit() -> None:
    """Each registry entry runs as `serve --role <role>` in its own image (image/containers/<name>), which
    build.sh builds and preloads with the others, compose.yaml runs, and an appliance unit starts at boot."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    build = (ROOT / "image/build.sh").read_text()
    units = ROOT / "image/appliance/rootfs/etc/systemd/system"
    for e in REGISTRY:
        containerfile = (ROOT / "image/containers" / e.name / "Containerfile").read_text()
        assert f'CMD ["serve", "--role", "{e.role}"]' in containerfile
        assert "FROM localhost/tessera:latest" in containerfile
        assert compose[e.name]["image"] == e.image and compose[e.name]["volumes"] == ["tessera-data:/data"]
        unit = (units / f"{e.container}.service").read_text()
        assert f"--name {e.container} " in unit and f" {e.image}\n" in unit and "--network host" in unit
        enable = next(line for line in build.splitlines() if "enable -q systemd-networkd" in line)
        assert f" {e.container}" in enable
    nfs = compose["nfs"]["ports"]
    assert nfs == ["127.0.0.1:${TESSERA_NFS_PORT:-2049}:2049/tcp", "127.0.0.1:${TESSERA_NFS_PORT:-2049}:2049/udp"]
    assert "EXPOSE 2049/tcp 2049/udp" in (ROOT / "image/containers/nfs/Containerfile").read_text()
    assert compose["smb"]["ports"] == ["127.0.0.1:${TESSERA_SMB_PORT:-4445}:445/tcp"]
    assert "EXPOSE 445/tcp" in (ROOT / "image/containers/smb/Containerfile").read_text()


def test_the_service_image_config_serves_every_protocol() -> None:
    """The config baked into the service image (compose's containers use it) enables each protocol on its
    standard port: SMB on 445 with the whole store shared, as NFS exports it; the SMB role waits for the store."""
    from gateway.config import load
    cfg = load(str(ROOT / "image/containers/tessera/tessera.yaml"))
    assert [e.section(cfg).enabled for e in REGISTRY] == [True] * len(REGISTRY)
    assert cfg.smb.listen == "0.0.0.0:445" and cfg.nfs.listen == "0.0.0.0:2049"
    [share] = cfg.smb.shares
    [export] = cfg.nfs.built_exports()
    assert (share.name, share.path, share.read_only) == ("tessera", export.path, False)
    entry = (ROOT / "image/containers/tessera/entrypoint.sh").read_text()
    assert all(f'*" --role {e.role} "*' in entry for e in REGISTRY)
