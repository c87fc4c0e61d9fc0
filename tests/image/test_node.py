"""tessera-node, the appliance's boot-time node setup: config sources and validation, disk choice, layout.

Disk commands (lsblk, blkid, mkfs, mount) are answered by a recording fake: there is no spare block device on a
test host. The real commands run in the qemu boot tests (make image-test).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    sys.path.insert(0, str(ROOT / "image/appliance"))  # as on the appliance: tessera_cluster beside it
    spec = importlib.util.spec_from_file_location("tessera_node", ROOT / "image/appliance/tessera_node.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["tessera_node"] = mod
    spec.loader.exec_module(mod)
    return mod


node = _load()


class FakeHost:
    """Answers the node's commands from a table of disks and records what it was asked to do."""

    def __init__(self, disks: list[dict[str, object]], config_disk: str | None = None,
                 signatures: set[str] | None = None) -> None:
        self.disks = disks
        self.config_disk = config_disk
        self.signatures = signatures or set()
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], check: bool = True) -> str:
        argv = list(argv)
        self.calls.append(argv)
        if argv[0] == "lsblk":
            return json.dumps({"blockdevices": self.disks})
        if argv[:2] == ["blkid", "-L"]:
            return (self.config_disk or "") + "\n"
        if argv[:2] == ["blkid", "-p"]:
            return f'{argv[2]}: TYPE="LVM2_member"\n' if argv[2] in self.signatures else ""
        return ""

    def did(self, cmd: str) -> list[list[str]]:
        return [c for c in self.calls if c[0] == cmd]


def disk(name: str, size: int = 4 << 30, fstype: str | None = None, label: str | None = None,
         typ: str = "disk", children: bool = False, ro: bool = False) -> dict[str, object]:
    d: dict[str, object] = {"name": name, "type": typ, "size": size, "ro": ro, "rm": False, "fstype": fstype,
                            "label": label}
    if children:
        d["children"] = [{"name": name + "1"}]
    return d


def test_cmdline_parsing() -> None:
    cfg, src = node.parse_cmdline(
        "BOOT_IMAGE=/boot/vmlinuz console=ttyS0 tessera.disks=/dev/vdb,/dev/vdc tessera.ec=4+2 "
        "tessera.user=alice:AKIAALICE0000000001:alice-secret-000000 tessera.config=http://10.0.0.1/n.yaml "
        "tessera.s3.workers=4 tessera.s3.listen=0.0.0.0:80 tessera.targets_per_disk=2 tessera.nfs.listen=0.0.0.0:3049 "
        "tessera.smb.listen=0.0.0.0:1445 tessera.smb.signing_required=false quiet "
        "tessera.user=bob:AKIABOB00000000000001:bob-secret-0000000:bob:pw")
    assert src == "http://10.0.0.1/n.yaml"
    assert cfg["disks"] == ["/dev/vdb", "/dev/vdc"] and cfg["ec"] == "4+2" and cfg["targets_per_disk"] == 2
    assert cfg["s3"] == {"workers": 4, "listen": "0.0.0.0:80"}
    assert cfg["nfs"] == {"listen": "0.0.0.0:3049"}
    assert cfg["smb"] == {"listen": "0.0.0.0:1445", "signing_required": False}
    assert cfg["users"] == [{"name": "alice", "access_key": "AKIAALICE0000000001", "secret_key": "alice-secret-000000"},
                            {"name": "bob", "access_key": "AKIABOB00000000000001", "secret_key": "bob-secret-0000000",
                             "password": "bob:pw"}]  # an SMB/NFS logon password (it may hold ':')
    for bad, msg in [("tessera.user=alice", "NAME:ACCESS_KEY:SECRET_KEY"), ("tessera.nope=1", "unknown kernel"),
                     ("tessera.targets_per_disk=x", "not a number")]:
        with pytest.raises(node.NodeError, match=msg):
            node.parse_cmdline(bad)


def test_sources_merge_in_order() -> None:
    base = node.merge(node.DEFAULTS, node.load_yaml("ec: 2+1\ns3:\n  workers: 8\nusers:\n  - name: a\n", "disk"))
    merged = node.merge(base, {"ec": "4+2", "s3": {"listen": "0.0.0.0:80"}, "users": [{"name": "b"}]})
    cfg = node.validate(merged)
    assert cfg.ec == "4+2"
    assert cfg.services["s3"] == {"enabled": True, "listen": "0.0.0.0:80", "workers": 8}
    assert [u["name"] for u in cfg.users] == ["a", "b"]


@pytest.mark.parametrize("raw, msg", [
    ({"disk": "auto"}, "unknown setting"),
    ({"disks": "/dev/vdb"}, "list of device paths"),
    ({"disks": ["vdb"]}, "list of device paths"),
    ({"format": "always"}, "format:"),
    ({"format": "force"}, "explicit disks list"),
    ({"ec": "4-2"}, "not K\\+M"),
    ({"targets_per_disk": 0}, "targets_per_disk"),
    ({"users": [{"name": "a", "access_key": "AKIA0000000000000000"}]}, "both access_key"),
    ({"users": [{"name": "a", "pass": "x"}]}, "each entry"),
    ({"users": [{"name": "a", "password": "two words"}]}, "password must be a non-empty string without spaces"),
    ({"s3": "on"}, "s3: expected a mapping"),
])
def test_validation_messages(raw: dict[str, object], msg: str) -> None:
    with pytest.raises(node.NodeError, match=msg):
        node.validate(raw)


def test_bad_yaml_is_a_clear_error() -> None:
    with pytest.raises(node.NodeError, match="not valid YAML"):
        node.load_yaml("disks: [", "TESSERA-CFG:tessera-node.yaml")
    with pytest.raises(node.NodeError, match="mapping"):
        node.load_yaml("- a\n- b\n", "x")


def test_auto_takes_blank_and_tessera_disks_only() -> None:
    host = FakeHost([
        disk("/dev/vda", fstype="iso9660", label="TESSERA"),       # the boot medium
        disk("/dev/vdb"),                                          # blank
        disk("/dev/vdc", fstype="ext4", label="tessera-1a2b3c4d"),  # ours from an earlier boot
        disk("/dev/vdd", fstype="xfs", label="data"),              # someone else's
        disk("/dev/vde", children=True),                           # partitioned
        disk("/dev/vdf", size=8 << 20, fstype="ext4", label="TESSERA-CFG"),  # the config disk (small)
        disk("/dev/vdg"),                                          # looks blank to udev, has a signature
        disk("/dev/sr0", typ="rom"),
    ], signatures={"/dev/vdg"})
    cfg = node.validate(node.DEFAULTS)
    use, fmt = node.choose_disks(cfg, node.list_disks(host), host)
    assert [d.path for d in use] == ["/dev/vdc"]
    assert [d.path for d in fmt] == ["/dev/vdb"]


def test_listed_disk_with_data_needs_force() -> None:
    host = FakeHost([disk("/dev/vdb", fstype="xfs", label="data"), disk("/dev/vdc")])
    listed = node.validate({"disks": ["/dev/vdb", "/dev/vdc"]})
    with pytest.raises(node.NodeError, match="has xfs on it; set format: force"):
        node.choose_disks(listed, node.list_disks(host), host)
    forced = node.validate({"disks": ["/dev/vdb", "/dev/vdc"], "format": "force"})
    use, fmt = node.choose_disks(forced, node.list_disks(host), host)
    assert use == [] and [d.path for d in fmt] == ["/dev/vdb", "/dev/vdc"]
    with pytest.raises(node.NodeError, match="not a whole disk"):
        node.choose_disks(node.validate({"disks": ["/dev/nope"]}), node.list_disks(host), host)


def test_layout_first_boot_and_later_boots(tmp_path: Path) -> None:
    a, b = tmp_path / "tessera-aaaa", tmp_path / "tessera-bbbb"
    a.mkdir()
    b.mkdir()
    lay = node.plan_layout([str(b), str(a)], 2)
    assert lay.fresh and lay.data_dir == str(a / "store")
    assert lay.targets == [str(a / "t0"), str(a / "t1"), str(b / "t0"), str(b / "t1")]
    assert lay.domains == ["tessera-aaaa", "tessera-aaaa", "tessera-bbbb", "tessera-bbbb"]
    # later boot: the store is wherever it was made, even if the disks now sort differently
    (b / "store" / "meta").mkdir(parents=True)
    (b / "store" / "meta" / "meta.db").write_bytes(b"")
    lay = node.plan_layout([str(a), str(b)], 1)
    assert not lay.fresh and lay.data_dir == str(b / "store")
    (b / "store" / "meta" / "meta.db").unlink()
    (a / "t0").mkdir()
    (a / "t0" / "target.json").write_text("{}")
    with pytest.raises(node.NodeError, match="metadata is missing"):
        node.plan_layout([str(a), str(b)], 1)
    with pytest.raises(node.NodeError, match="no disks"):
        node.plan_layout([], 1)


def test_run_files(tmp_path: Path) -> None:
    cfg = node.validate(node.merge(node.DEFAULTS, {
        "ec": "1+1", "users": [{"name": "u", "access_key": "AKIA0000000000000001", "secret_key": "s" * 20},
                               {"name": "v", "password": "v-logon-pw"}], "s3": {"workers": 1}}))
    lay = node.Layout("/var/lib/tessera/disks/tessera-a/store", ["/x/t0", "/y/t0"], ["a", "b"], True)
    node.write_run_files(cfg, lay, str(tmp_path))
    env = dict(line.split("=", 1) for line in (tmp_path / "node.env").read_text().splitlines())
    assert env == {"TESSERA_DATA": lay.data_dir, "TESSERA_TARGETS": "/x/t0 /y/t0", "TESSERA_DOMAINS": "a b",
                   "TESSERA_EC": "1+1"}
    users = tmp_path / "users"
    assert users.read_text() == f"u AKIA0000000000000001 {'s' * 20}\nv - - v-logon-pw\n"
    assert os.stat(users).st_mode & 0o777 == 0o600
    svc = node.yaml.safe_load((tmp_path / "tessera.yaml").read_text())
    assert svc["store"] == {"data": lay.data_dir}
    assert svc["s3"] == {"enabled": True, "listen": "0.0.0.0:9000", "workers": 1}
    # the service config the node writes is one the services accept
    from gateway.config import Config
    services = Config.model_validate(svc)
    # NFS on 2049, the whole store exported to private networks: qemu's user network (the host is 10.0.2.2 to the
    # node), a LAN; not to the internet
    assert services.nfs.enabled and services.nfs.listen == "0.0.0.0:2049"
    [export] = services.nfs.built_exports()
    assert export.path == "/" and export.access == "rw" and export.squash == "root"
    assert export.allows("10.0.2.2") and export.allows("192.168.1.20") and not export.allows("8.8.8.8")
    # SMB on 445, the same path shared (to users with a password: SMB has no client-address lists)
    assert services.smb.enabled and services.smb.listen == "0.0.0.0:445"
    [share] = services.smb.shares
    assert (share.name, share.path, share.read_only, share.guest) == ("tessera", export.path, False, False)


def test_main_formats_mounts_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(node, "DISKS_DIR", str(tmp_path / "disks"))
    monkeypatch.setattr(node, "RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setattr(node.os.path, "ismount", lambda p: False)
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("console=ttyS0 tessera.ec=1+1\n")
    host = FakeHost([disk("/dev/vdb"), disk("/dev/vdc")])
    assert node.main([str(cmdline)], run=host) == 0
    labels = [c[c.index("-L") + 1] for c in host.did("mkfs.ext4")]
    assert len(labels) == 2 and all(lbl.startswith("tessera-") and len(lbl) <= 16 for lbl in labels)
    assert sorted(c[-1] for c in host.did("mount")) == sorted(str(tmp_path / "disks" / lbl) for lbl in labels)
    assert "node ready" in capsys.readouterr().out
    # a config error is one clear line and a failing exit, nothing formatted
    cmdline.write_text("tessera.ec=lots\n")
    host2 = FakeHost([disk("/dev/vdb")])
    assert node.main([str(cmdline)], run=host2) == 1
    assert "ec: 'lots' is not K+M" in capsys.readouterr().err
    assert host2.did("mkfs.ext4") == []


def test_config_disk_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node, "RUN_DIR", str(tmp_path / "run"))
    mnt = tmp_path / "run" / "config-disk"

    class WithDisk(FakeHost):
        def __call__(self, argv: Sequence[str], check: bool = True) -> str:
            if argv[0] == "mount":
                (mnt / "tessera-node.yaml").write_text("ec: 2+1\ns3:\n  workers: 3\n")
            if argv[0] == "umount":
                (mnt / "tessera-node.yaml").unlink()
            return super().__call__(argv, check)

    host = WithDisk([], config_disk="/dev/vdz")
    cfg = node.gather("tessera.s3.workers=5", host)
    assert cfg.ec == "2+1" and cfg.services["s3"]["workers"] == 5  # the command line wins
    assert ["mount", "-o", "ro", "/dev/vdz", str(mnt)] in host.calls and host.did("umount")
