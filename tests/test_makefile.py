"""The Makefile's install steps, read with ``make -n`` on a fresh virtual environment path (nothing runs):
`make run` installs the package and its runtime dependencies only; the test targets add torch and the
test tools on top; `make deps` names the system packages the NFS tests and benchmarks use."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def planned(target: str, tmp: Path, *, touch: tuple[str, ...] = ()) -> list[str]:
    """The commands `make -n TARGET` would run against a virtual environment at ``tmp/venv``."""
    venv = tmp / "venv"
    for stamp in touch:  # an environment where these steps were done already
        (venv / "bin").mkdir(parents=True, exist_ok=True)
        (venv / "bin" / "python").touch()
        (venv / stamp).touch()
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "TESSERA_DATA")}
    p = subprocess.run(["make", "--no-print-directory", "-n", target, f"VENV={venv}", f"DATA={tmp / 'data'}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60, check=True, env=env)
    text = p.stdout.replace("\\\n", " ")  # a recipe line continued with a backslash is one command
    return [line.replace(str(venv), "$VENV") for line in text.splitlines()]


def pip_installs(cmds: list[str]) -> list[str]:
    return [c.split(" install ", 1)[1] for c in cmds if "/bin/pip install" in c and "--upgrade pip" not in c]


def test_make_run_installs_the_runtime_only(tmp_path: Path) -> None:
    cmds = planned("run", tmp_path)
    assert pip_installs(cmds) == ["-q -e ."]
    assert "touch $VENV/.runtime" in cmds and not any(".installed" in c for c in cmds)
    assert cmds[-1].endswith("tessera serve --data \"" + str(tmp_path / "data") + "\"")


def test_the_test_targets_install_torch_and_the_test_tools_on_the_runtime(tmp_path: Path) -> None:
    for target in ("unit", "lint", "typecheck", "deps"):
        assert pip_installs(planned(target, tmp_path)) == ["-q -e .", "-q torch==2.13.0", "-q -e '.[test,torch]'"]
    # after `make run`: only the test layer is added
    assert pip_installs(planned("unit", tmp_path, touch=(".runtime",))) == ["-q torch==2.13.0",
                                                                           "-q -e '.[test,torch]'"]
    # after `make test`: `make run` installs nothing more
    assert pip_installs(planned("run", tmp_path, touch=(".runtime", ".installed"))) == []


def test_deps_names_the_nfs_clients_ganesha_and_rpcbind(tmp_path: Path) -> None:
    [line] = [c for c in planned("deps", tmp_path) if "system-deps.sh" in c]
    pkgs = line.split("system-deps.sh", 1)[1].split()
    assert {"libnfs-utils", "nfs-ganesha", "nfs-ganesha-vfs", "rpcbind", "rclone", "podman", "qemu-system-x86",
            "busybox-static"} <= set(pkgs)
