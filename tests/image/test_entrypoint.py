"""The service image's entrypoint (a POSIX sh script), run on the host against the project's own CLI:
first-boot store creation with fault domains, idempotent re-runs, a newly attached disk joining, users."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "image/containers/tessera/entrypoint.sh"


def entry(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **env}
    return subprocess.run(["sh", str(ENTRY), *args], env=e, capture_output=True, text=True, timeout=120, cwd=tmp)


def status(data: Path) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "--data", str(data), "status", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return dict(json.loads(out))


def test_node_init_first_boot_reboot_and_new_disk(tmp_path: Path) -> None:
    disks = [tmp_path / f"tessera-{i}" for i in range(3)]
    data = disks[0] / "store"
    users = tmp_path / "users"
    users.write_text("alice AKIAALICEKEY00000001 alice-secret-0123456789\nbob - - bob-logon-pw\n")
    env = {"TESSERA_DATA": str(data), "TESSERA_EC": "1+1", "TESSERA_USERS_FILE": str(users),
           "TESSERA_TARGETS": " ".join(str(d / f"t{j}") for d in disks[:2] for j in range(2)),
           "TESSERA_DOMAINS": "tessera-0 tessera-0 tessera-1 tessera-1"}
    p = entry(tmp_path, "node-init", **env)
    assert p.returncode == 0, p.stderr
    assert "user alice ready" in p.stdout and "user bob ready" in p.stdout
    st = status(data)
    targets = st["targets"]
    assert isinstance(targets, list)
    assert sorted(t["domain"] for t in targets) == ["tessera-0", "tessera-0", "tessera-1", "tessera-1"]
    # a reboot: nothing changes, nothing fails
    p = entry(tmp_path, "node-init", **env)
    assert p.returncode == 0, p.stderr
    assert len(status(data)["targets"]) == 4  # type: ignore[arg-type]
    # a third disk attached: its targets join in its own fault domain
    env["TESSERA_TARGETS"] += " " + " ".join(str(disks[2] / f"t{j}") for j in range(2))
    env["TESSERA_DOMAINS"] += " tessera-2 tessera-2"
    p = entry(tmp_path, "node-init", **env)
    assert p.returncode == 0, p.stderr
    doms = sorted(t["domain"] for t in status(data)["targets"])  # type: ignore[attr-defined]
    assert doms == ["tessera-0", "tessera-0", "tessera-1", "tessera-1", "tessera-2", "tessera-2"]
    listed = subprocess.run([sys.executable, "-m", "gateway.cli", "--data", str(data), "user", "list", "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=True).stdout
    keys = {u["name"]: u["access_key"] for u in json.loads(listed)}
    assert keys["alice"] == "AKIAALICEKEY00000001" and keys["bob"].startswith("TSR")
    assert {u["name"]: u["password"] for u in json.loads(listed)} == {"alice": False, "bob": True}  # SMB logons
    assert "bob-logon-pw" not in p.stdout + p.stderr
    from core.store import open_store
    s = open_store(str(data))
    try:
        assert s.identity.check_password("bob", "bob-logon-pw") and not s.identity.check_password("bob", "x")
    finally:
        s.close()


@pytest.mark.parametrize("role", ["s3", "nfs", "smb"])
def test_protocol_roles_wait_for_the_store_and_give_up_clearly(tmp_path: Path, role: str) -> None:
    p = entry(tmp_path, "serve", "--role", role, TESSERA_DATA=str(tmp_path / "nothing"), TESSERA_STORE_WAIT="2")
    assert p.returncode == 1
    assert "waiting for the store" in p.stdout and "no store in" in p.stderr
