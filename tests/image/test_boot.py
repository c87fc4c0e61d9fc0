"""Boot the appliance under qemu (TCG, 2 vCPUs) and use it as a client would (``make image-test``).

* ISO: two blank virtual disks become targets, the node's config comes from a TESSERA-CFG disk; boto3
  creates a bucket, puts and gets objects byte-identical; libnfs reads them back through the node's NFS
  export as their owner (and a squashed root is refused); the power is cut (qemu killed, started again) and
  the objects are still there (the targets persist; RAM held only the OS); the power is cut again and one
  target disk is gone: the node serves the object from the other (1+1), health DEGRADED.
* PXE: qemu's iPXE ROM fetches a script over qemu's TFTP, which chains to the shipped boot.ipxe over HTTP:
  the same kernel, initrd and root image; config from the kernel command line and a URL.
* One kernel + one initrd (initrd-full.img), config only on the kernel command line, an explicit disk list.
* A bad node config: a clear line on the console, nothing formatted, no services.
* A cluster node (kernel command line): one-member metadata (etcd + Patroni/PostgreSQL containers) on itself,
  cluster init, `tessera cluster status` on the console with the node up, S3 through the PostgreSQL metadata.

Needs ``make image`` first (image/build/out). Every wait has a hard limit; the serial log is in the failure
message; qemu is killed by PID on every exit path. Boot times go to image/build/boot-times.json.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import os
import re
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.image.vm import VM, config_disk, raw_disk

pytestmark = pytest.mark.appliance
ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "image" / "build" / "out"
TIMES = ROOT / "image" / "build" / "boot-times.json"
BOOT_LIMIT_S = float(os.environ.get("TESSERA_BOOT_LIMIT_S", "600"))
AK, SK = "AKIATESSERAIMAGETEST", "image-test-secret-0123456789"


@pytest.fixture(scope="module")
def image() -> Path:
    need = ["vmlinuz", "initrd.img", "initrd-full.img", "root.squashfs", "boot.ipxe", "tessera.iso"]
    missing = [n for n in need if not (OUT / n).exists()]
    assert not missing, f"image outputs missing in {OUT}: {missing} (run `make image` first)"
    return OUT


def nfs_cat(port: int, path: str, uid: int) -> bytes | None:
    """``path`` read through the node's NFS export with libnfs (AUTH_SYS ``uid``), None if refused."""
    url = f"nfs://127.0.0.1{path}?version=3&nfsport={port}&mountport={port}&uid={uid}&gid={uid}"
    p = subprocess.run(["nfs-cat", url], capture_output=True, timeout=60, check=False)
    return p.stdout if p.returncode == 0 else None


def record(name: str, seconds: float) -> None:
    times: dict[str, Any] = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    times[name] = round(seconds, 1)
    TIMES.write_text(json.dumps(times, indent=1, sort_keys=True))


def s3_client(port: int, ak: str = AK, sk: str = SK) -> Any:
    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=ak,
                        aws_secret_access_key=sk, region_name="us-east-1",
                        config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 1}))


def wait_serving(vm: VM, s3: Any, what: str) -> float:
    def probe() -> bool:
        s3.list_buckets()
        return True
    vm.wait_for(f"S3 answering ({what})", probe, BOOT_LIMIT_S, every=3.0)
    return time.monotonic() - vm.started


def healthz(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
        return str(r.read().decode().strip())


SMB_PW = "appliance-smb-pw"


def smb_get(port: int, path: str, password: str, dest: Path) -> bytes | None:
    """``path`` (backslash-separated, in the node's ``tessera`` share) read with Debian's smbclient over
    SMB 3.1.1 as the node's user, None if refused."""
    dest.unlink(missing_ok=True)
    p = subprocess.run(["smbclient", "//127.0.0.1/tessera", "-p", str(port), "-U", f"image-test%{password}",
                        "-s", "/dev/null", "-m", "SMB3_11", "-c", f"get {path} {dest}"],
                       capture_output=True, timeout=60, check=False)
    return dest.read_bytes() if p.returncode == 0 and dest.exists() else None


NODE_YAML = f"""\
# the node config a real deployment would put on its config disk
disks: auto
ec: "1+1"
users:
  - name: image-test
    access_key: {AK}
    secret_key: {SK}
    password: {SMB_PW}
s3:
  workers: 1
"""


@pytest.mark.timeout(4 * BOOT_LIMIT_S)
def test_iso_boot_s3_round_trip_and_reboot_persistence(image: Path, tmp_path: Path) -> None:
    disks = [raw_disk(tmp_path / "d0.img", 2 << 30), raw_disk(tmp_path / "d1.img", 2 << 30),
             config_disk(tmp_path / "cfg.img", NODE_YAML)]
    big = os.urandom(3 * 1024 * 1024 + 17)
    with VM(tmp_path, "iso", disks=disks, boot=["-cdrom", str(image / "tessera.iso"), "-boot", "d"],
            forwards={"s3": 9000, "admin": 9100, "nfs": 2049, "smb": 445}) as vm:
        s3 = s3_client(vm.ports["s3"])
        record("iso_boot_to_serving_s", wait_serving(vm, s3, "first boot"))
        assert vm.wait_for("healthz", lambda: healthz(vm.ports["admin"]), 120) == "OK"
        s3.create_bucket(Bucket="appliance")
        s3.put_object(Bucket="appliance", Key="big.bin", Body=big)
        s3.put_object(Bucket="appliance", Key="dir/small.txt", Body=b"hello from the appliance\n")
        got = s3.get_object(Bucket="appliance", Key="big.bin")["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(big).digest()
        # the same objects through the node's NFS export, as their owner (the first user: uid 1000); a
        # squashed root may not read them (S3 objects are 0600 in a 0700 bucket)
        small = vm.wait_for("NFS", lambda: nfs_cat(vm.ports["nfs"], "/appliance/dir/small.txt", 1000), 180)
        assert small == b"hello from the appliance\n"
        assert nfs_cat(vm.ports["nfs"], "/appliance/big.bin", 1000) == big
        assert nfs_cat(vm.ports["nfs"], "/appliance/big.bin", 0) is None
        # and through the node's SMB share with the user's password (signed SMB 3.1.1); a wrong one gets nothing
        out = tmp_path / "smb.out"
        got_smb = vm.wait_for("SMB", lambda: smb_get(vm.ports["smb"], "appliance\\big.bin", SMB_PW, out), 180)
        assert got_smb == big
        assert smb_get(vm.ports["smb"], "appliance\\big.bin", "wrong", out) is None
        with urllib.request.urlopen(f"http://127.0.0.1:{vm.ports['admin']}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        assert 'tessera_health{state="OK"} 1.0' in metrics
        assert metrics.count("tessera_target_free_bytes{") == 2  # one target on each disk
        serial = vm.serial_text()
        assert "tessera-init: switching to the root file system" in serial
        assert "disk formatted" in serial  # both blank disks became targets
        assert '"msg": "tessera serving"' in serial  # container logs reach the journal and the serial console

        vm.power_cycle()  # only what was acknowledged and is on the disks may come back; RAM held only the OS
        record("iso_reboot_to_serving_s", wait_serving(vm, s3, "after the power cycle"))
        got = s3.get_object(Bucket="appliance", Key="big.bin")["Body"].read()
        assert got == big
        assert s3.get_object(Bucket="appliance", Key="dir/small.txt")["Body"].read() == b"hello from the appliance\n"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="appliance")["Contents"]]
        assert keys == ["big.bin", "dir/small.txt"]
        assert healthz(vm.ports["admin"]) == "OK"
        assert vm.serial_text().count("disk formatted") == 2  # nothing was formatted again

        # a drive fails: the node comes up on the disk that holds the metadata, reads are served degraded
        meta_label = re.search(r'"data": "/var/lib/tessera/disks/(tessera-[0-9a-f]{8})/store"', vm.serial_text())
        assert meta_label is not None
        formatted = dict(re.findall(r'"disk formatted", "device": "(/dev/vd[a-z])", "label": "(tessera-[0-9a-f]{8})"',
                                    vm.serial_text()))
        other = next(dev for dev, label in formatted.items() if label != meta_label.group(1))
        vm.power_cycle(remove_disk=disks[["/dev/vda", "/dev/vdb"].index(other)])
        record("iso_degraded_boot_to_serving_s", wait_serving(vm, s3, "with one target disk gone"))
        assert s3.get_object(Bucket="appliance", Key="big.bin")["Body"].read() == big
        assert vm.wait_for("DEGRADED health", lambda: healthz(vm.ports["admin"]) == "DEGRADED" or None, 120)


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A plain HTTP server on 127.0.0.1 (qemu's user network reaches it as 10.0.2.2)."""
    root = tmp_path / "http"
    root.mkdir()
    for name in ("vmlinuz", "initrd.img", "root.squashfs", "boot.ipxe"):
        (root / name).symlink_to(OUT / name)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    th = threading.Thread(target=server.serve_forever, daemon=True)
    th.start()
    try:
        yield root, int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.timeout(2 * BOOT_LIMIT_S)
def test_pxe_boot_over_tftp_and_http(image: Path, tmp_path: Path, http_dir: tuple[Path, int]) -> None:
    root, port = http_dir
    (root / "node.yaml").write_text("disks: auto\ns3:\n  workers: 1\n")
    tftp = tmp_path / "tftp"
    tftp.mkdir()
    # what a site's DHCP/TFTP server hands out: a tiny script that sets the node's parameters and chains to the
    # shipped boot.ipxe over HTTP (the root image is too big for TFTP)
    (tftp / "boot.ipxe").write_text(
        "#!ipxe\ndhcp\n"
        f"set tessera-args tessera.config=http://10.0.2.2:{port}/node.yaml tessera.ec=1+1 "
        f"tessera.user=pxe:{AK}:{SK}\n"
        f"chain http://10.0.2.2:{port}/boot.ipxe\n")
    disks = [raw_disk(tmp_path / "d0.img", 2 << 30), raw_disk(tmp_path / "d1.img", 2 << 30)]
    with VM(tmp_path, "pxe", disks=disks, boot=["-boot", "n"], netdev_extra=f",tftp={tftp},bootfile=boot.ipxe",
            forwards={"s3": 9000}) as vm:
        record("pxe_kernel_started_s", vm.wait_serial("Linux version", BOOT_LIMIT_S))
        s3 = s3_client(vm.ports["s3"])
        record("pxe_boot_to_serving_s", wait_serving(vm, s3, "PXE boot"))
        assert "root image is in the initramfs" in vm.serial_text()
        s3.create_bucket(Bucket="pxe")
        body = os.urandom(1 << 20)
        s3.put_object(Bucket="pxe", Key="k", Body=body)
        assert s3.get_object(Bucket="pxe", Key="k")["Body"].read() == body


@pytest.mark.timeout(BOOT_LIMIT_S)
def test_bad_node_config_is_a_clear_console_error(image: Path, tmp_path: Path) -> None:
    """A config naming a disk the node does not have: one clear line on the serial console, nothing formatted,
    no service container started (and the blank disk is left as it was)."""
    blank = raw_disk(tmp_path / "d0.img", 2 << 30)
    cfg = config_disk(tmp_path / "cfg.img", "disks: [/dev/vdz]\n")
    with VM(tmp_path, "badcfg", disks=[blank, cfg], boot=["-cdrom", str(image / "tessera.iso"), "-boot", "d"],
            forwards={"s3": 9000}) as vm:
        vm.wait_serial("tessera-node: error: disks: /dev/vdz is not a whole disk on this node", BOOT_LIMIT_S)
        vm.wait_serial("Dependency failed for tessera-s3.service", 120)
        text = vm.serial_text()
        assert "disk formatted" not in text and "Traceback" not in text
    with open(blank, "rb") as f:
        assert f.read(1 << 20) == bytes(1 << 20)  # still blank


@pytest.mark.timeout(BOOT_LIMIT_S)
def test_single_initrd_boot_with_kernel_command_line_config(image: Path, tmp_path: Path) -> None:
    """What PXELINUX or GRUB netboot do: one kernel, one initrd (initrd-full.img, the root inside), the whole node
    config on the kernel command line with an explicit disk list; a disk that is not listed is left alone."""
    disks = [raw_disk(tmp_path / f"d{i}.img", 2 << 30) for i in range(3)]
    append = ("console=ttyS0,115200n8 tessera.disks=/dev/vda,/dev/vdb tessera.s3.workers=1 "
              f"tessera.user=cmdline:{AK}:{SK}")
    boot = ["-kernel", str(image / "vmlinuz"), "-initrd", str(image / "initrd-full.img"), "-append", append]
    with VM(tmp_path, "direct", disks=disks, boot=boot, forwards={"s3": 9000}) as vm:
        s3 = s3_client(vm.ports["s3"])
        record("single_initrd_boot_to_serving_s", wait_serving(vm, s3, "direct kernel boot"))
        s3.create_bucket(Bucket="direct")
        s3.put_object(Bucket="direct", Key="k", Body=b"x" * 100_000)
        assert s3.get_object(Bucket="direct", Key="k")["Body"].read() == b"x" * 100_000
        text = vm.serial_text()
        assert "root image is in the initramfs" in text
        assert text.count("disk formatted") == 2 and '"device": "/dev/vdc"' not in text


@pytest.mark.timeout(BOOT_LIMIT_S + 120)
def test_cluster_node_one_member_metadata_and_init(image: Path, tmp_path: Path) -> None:
    """Cluster mode on one VM: a metadata node (etcd + Patroni/PostgreSQL 15 in containers) whose only meta peer is
    itself and which makes the cluster (cluster.init), configured on the kernel command line; the console shows
    `tessera cluster status` with the node up, and S3 PUT/GET works through the PostgreSQL metadata."""
    disks = [raw_disk(tmp_path / f"d{i}.img", 2 << 30) for i in range(2)]
    key = base64.b64encode(bytes(range(32))).decode()
    addr = "10.0.2.15"  # the address qemu's user network hands the guest
    append = ("console=ttyS0,115200n8 tessera.s3.workers=1 tessera.nfs.enabled=false tessera.smb.enabled=false "
              f"tessera.ec=1+1 tessera.user=cluster:{AK}:{SK} tessera.cluster.name=n1 "
              f"tessera.cluster.addr={addr}:7070 tessera.cluster.meta_peers={addr} tessera.cluster.init=1 "
              f"tessera.cluster.expect=1 tessera.cluster.key={key}")
    boot = ["-kernel", str(image / "vmlinuz"), "-initrd", str(image / "initrd-full.img"), "-append", append]
    with VM(tmp_path, "cluster", disks=disks, boot=boot, memory_mb=3072, forwards={"s3": 9000}) as vm:
        s3 = s3_client(vm.ports["s3"])
        record("cluster_node_boot_to_serving_s", wait_serving(vm, s3, "cluster node"))
        s3.create_bucket(Bucket="cluster")
        body = os.urandom(300_000)
        s3.put_object(Bucket="cluster", Key="k", Body=body)
        assert s3.get_object(Bucket="cluster", Key="k")["Body"].read() == body
        record("cluster_node_boot_to_status_s", vm.wait_serial("tessera cluster status: {", 300))
        text = vm.serial_text()
        line = next(x for x in text.splitlines() if "tessera cluster status: {" in x)
        doc = json.loads(line[line.index("{"):line.rindex("}") + 1])
        assert doc["geometry"] == "1+1" and doc["nodes_up"] == 1, line
        (n1,) = doc["nodes"]
        assert (n1["name"], n1["state"], n1["addr"], len(n1["targets"])) == ("n1", "up", f"{addr}:7070", 2), line
        assert "initialised cluster store" in text and "initialized a new cluster" in text  # tessera, Patroni
        assert key not in text.replace(f"tessera.cluster.key={key}", "")  # the key is on the command line only
