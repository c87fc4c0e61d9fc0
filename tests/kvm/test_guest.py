"""The kvm guest harness itself: what every kernel-client test relies on (one boot, no servers), and the
hard time limit. Marked ``appliance`` (needs ``make image``'s kernel)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.kvm.cpio import names
from tests.kvm.fixtures import guest_image  # noqa: F401  (a fixture)
from tests.kvm.guest import Guest, GuestError, GuestImage, Result

SCRIPT = r"""
step identity <<'EOF'
id -u
as_user 'id -u; id -g'
EOF
step modules <<'EOF'
lsmod | cut -d' ' -f1 | grep -x -e nfsv3 -e lockd -e cifs -e virtio_net | sort | tr '\n' ' '
EOF
step network <<'EOF'
ip -4 addr show eth0 | grep -o 'inet [0-9./]*'
ip route | grep default
EOF
step daemons <<'EOF'
rpcinfo -p 127.0.0.1 | grep -c status
EOF
step local_locks <<'EOF'
echo x > /tmp/l
tlock /tmp/l w 0 10 tlock /tmp/l w 5 1 || [ $? = 1 ]   # the inner one's status: conflict
EOF
step fails <<'EOF'
echo first
false
echo never
EOF
step fails_with <<'EOF'
fails_with 'Permission denied' as_user 'cat /root/.secret'
EOF
step await_timeout <<'EOF'
await_line /tmp/nothing go 1
EOF
exit 3
"""


@pytest.fixture(scope="module")
def result(guest_image: GuestImage, tmp_path_factory: pytest.TempPathFactory) -> Result:  # noqa: F811
    workdir = tmp_path_factory.mktemp("kvm-selftest")
    script = "mkdir -p /root && echo s > /root/.secret && chmod 600 /root/.secret\n" + SCRIPT
    return Guest(guest_image, workdir, script, name="selftest").run(120)


pytestmark = pytest.mark.appliance


def test_script_exit_status_and_steps(result: Result) -> None:
    assert result.rc == 3, result.report()
    assert list(result.steps) == ["identity", "modules", "network", "daemons", "local_locks", "fails", "fails_with",
                                  "await_timeout"]


def test_root_and_user(result: Result) -> None:
    s = result.step("identity")
    assert (s.rc, s.output.split()) == (0, ["0", "1000", "1000"]), result.report()


def test_client_modules_network_and_statd(result: Result) -> None:
    assert result.step("modules").output.split() == ["cifs", "lockd", "nfsv3", "virtio_net"], result.report()
    net = result.step("network").output
    assert "inet 10.0.2.15/24" in net and "default via 10.0.2.2" in net, net
    assert result.step("daemons").output.strip() == "2", result.report()      # statd on udp and tcp


def test_lock_helper(guest_image: GuestImage, result: Result) -> None:  # noqa: F811
    if not guest_image.tlock:
        pytest.skip("no C compiler with a static libc for the tlock helper")
    assert result.step("local_locks").output.split() == ["locked", "conflict"], result.report()


def test_a_failing_step_stops_there_and_shows_its_trace(result: Result) -> None:
    s = result.step("fails")
    assert s.rc == 1
    assert s.output.startswith("first\n")
    assert "never" not in s.output
    assert re.search(r"^\+ false$", s.output, re.M), s.output
    assert result.step("fails_with").rc == 0, result.report()
    t = result.step("await_timeout")
    assert t.rc == 1 and "no line 'go' in /tmp/nothing after 1 s" in t.output, t.output


def test_per_run_archive_is_appended(guest_image: GuestImage, tmp_path: Path) -> None:  # noqa: F811
    g = Guest(guest_image, tmp_path, "true\n", name="append")
    data = (tmp_path / "append-initramfs.cpio").read_bytes()
    base = guest_image.initrd.read_bytes()
    assert data.startswith(base)
    assert names(data[len(base):]) == ["kvm", "kvm/run.sh", "TRAILER!!!"]
    assert "init" in names(base) and "bin/busybox" in names(base)
    g.kill()


def live_processes_mentioning(text: str) -> list[int]:
    """PIDs of live (not zombie) processes whose command line contains ``text``."""
    pids = []
    for d in Path("/proc").iterdir():
        try:
            cmdline = (d / "cmdline").read_bytes().decode(errors="replace")
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in cmdline and state != "Z":
            pids.append(int(d.name))
    return pids


def test_hard_time_limit_kills_qemu(guest_image: GuestImage, tmp_path: Path) -> None:  # noqa: F811
    g = Guest(guest_image, tmp_path, "sleep 600\n", name="hang")
    with pytest.raises(GuestError, match="no power-off within 3 s"):
        g.run(3)
    assert g.vm.proc is not None and g.vm.proc.poll() is not None
    assert live_processes_mentioning(str(tmp_path)) == []       # no qemu of this test left behind
