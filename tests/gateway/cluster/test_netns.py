"""gateway.cluster.netns: real namespaces, a real bridge, real TCP between them, and teardown on every path."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from gateway.cluster import netns
from gateway.cluster.netns import Net, NetError, cleanup_orphans, cleanup_stale, free_subnet, unique_prefix

pytestmark = [
    pytest.mark.skipif(not Net.usable(), reason="network namespaces need root and iproute2"),
    pytest.mark.timeout(60, method="signal"),
]

SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(4)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    c.sendall(("hello from " + sys.argv[1] + " to " + peer[0]).encode()); c.close()
"""

CLIENT = """
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    print(c.recv(100).decode())
except OSError as e:
    print("error", type(e).__name__)
"""


def leftovers(prefix: str) -> tuple[list[str], list[str]]:
    nss = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
           if n.startswith(prefix + "-")]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return nss, [w.split("@")[0] for w in links.replace(":", " ").split() if w.startswith(prefix + "-")]


@pytest.fixture
def net() -> Iterator[Net]:
    n = Net(unique_prefix("g"), free_subnet())
    try:
        yield n
    finally:
        n.close()
    assert leftovers(n.prefix) == ([], [])


def wait_in(host: netns.Host, *pids: int) -> None:
    """Wait until the processes are inside the namespace (`ip netns exec` enters it just before exec)."""
    deadline = time.monotonic() + 10
    while not set(pids) <= set(host.pids()):
        assert time.monotonic() < deadline, (pids, host.pids())
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """Whether `pid` still runs 5 s from now (a zombie waiting for its reaper does not)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return False
        except FileNotFoundError:
            return False
        time.sleep(0.05)
    return True


def start_server(host: netns.Host, bind: str, port: int) -> subprocess.Popen[str]:
    p = host.popen([sys.executable, "-c", SERVER, bind, str(port)], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def connect(host: netns.Host, addr: str, port: int, timeout: float = 2.0) -> str:
    r = host.run([sys.executable, "-c", CLIENT, addr, str(port), str(timeout)],
                 capture_output=True, text=True, timeout=30)
    return r.stdout.strip()


def test_two_hosts_talk_tcp_over_the_bridge(net: Net) -> None:
    a, b = net.add_host("a"), net.add_host("b")
    base = net.subnet.network_address
    assert (a.addr, b.addr, net.gateway) == (str(base + 2), str(base + 3), str(base + 1))
    start_server(b, b.addr, 7001)
    assert connect(a, b.addr, 7001) == f"hello from {b.addr} to {a.addr}"
    assert connect(b, b.addr, 7001) == f"hello from {b.addr} to {b.addr}"
    # the machine itself reaches a host through the bridge's address
    r = subprocess.run([sys.executable, "-c", CLIENT, b.addr, "7001", "2"], capture_output=True, text=True)
    assert r.stdout.strip() == f"hello from {b.addr} to {net.gateway}"


def test_each_host_has_its_own_loopback_and_ports(net: Net) -> None:
    a, b = net.add_host("a"), net.add_host("b")
    start_server(a, "127.0.0.1", 7002)
    start_server(b, "127.0.0.1", 7002)  # the same port on another host: no clash
    assert connect(a, "127.0.0.1", 7002) == "hello from 127.0.0.1 to 127.0.0.1"
    start_server(b, b.addr, 7003)
    assert connect(a, "127.0.0.1", 7003).startswith("error")  # b's port is not on a's loopback


def test_isolate_cuts_a_host_off_and_reconnect_restores_it(net: Net) -> None:
    a, b = net.add_host("a"), net.add_host("b")
    start_server(b, b.addr, 7004)
    assert connect(a, b.addr, 7004).startswith("hello")
    b.isolate()
    assert connect(a, b.addr, 7004, timeout=1.0).startswith("error")
    b.reconnect()
    assert connect(a, b.addr, 7004, timeout=5.0).startswith("hello")


def test_block_cuts_some_peers_off_and_unblock_restores_them(net: Net) -> None:
    a, b, c = net.add_host("a"), net.add_host("b"), net.add_host("c")
    start_server(b, b.addr, 7005)
    b.block([a])
    assert connect(a, b.addr, 7005, timeout=1.0) == "error TimeoutError"  # silent, not refused
    assert connect(c, b.addr, 7005) == f"hello from {b.addr} to {c.addr}"
    b.unblock()
    assert connect(a, b.addr, 7005).startswith("hello")
    b.unblock()  # idempotent


def test_close_kills_every_process_in_the_namespaces(net: Net) -> None:
    a = net.add_host("a")
    p = a.popen(["sleep", "1000"])
    # a grandchild in another process group is still in the namespace: close() finds it through `ip netns pids`
    q = a.popen(["sh", "-c", "setsid sleep 1001 & echo $!; wait"], stdout=subprocess.PIPE, text=True)
    assert q.stdout is not None
    grandchild = int(q.stdout.readline())
    wait_in(a, p.pid, q.pid, grandchild)
    net.close()
    assert p.wait(timeout=5) == -9
    assert not alive(grandchild)
    assert leftovers(net.prefix) == ([], [])
    net.close()  # idempotent


def test_kill_all_kills_one_host_only(net: Net) -> None:
    a, b = net.add_host("a"), net.add_host("b")
    pa, pb = a.popen(["sleep", "1000"]), b.popen(["sleep", "1000"])
    wait_in(a, pa.pid)
    wait_in(b, pb.pid)
    a.kill_all()
    assert pa.poll() == -9 and pb.poll() is None and a.pids() == [] and b.pids() == [pb.pid]


def test_close_after_a_half_done_host_leaves_nothing() -> None:
    prefix = unique_prefix("g")
    n = Net(prefix, free_subnet())
    try:
        n.add_host("a")
        # make the next host fail after its namespace exists: its veth name is taken
        subprocess.run(["ip", "link", "add", f"{prefix}-v1", "type", "bridge"], check=True)
        with pytest.raises(NetError):
            n.add_host("b")
        nss, links = leftovers(prefix)
        assert f"{prefix}-b" in nss and f"{prefix}-br" in links  # the half-made host is there before close
    finally:
        n.close()
    assert leftovers(prefix) == ([], [])


def test_a_failed_constructor_leaves_nothing() -> None:
    prefix = unique_prefix("g")
    subprocess.run(["ip", "link", "add", f"{prefix}-br", "type", "bridge"], check=True)
    try:
        with pytest.raises(NetError):
            Net(prefix, free_subnet())
    finally:
        cleanup_stale(prefix)
    assert leftovers(prefix) == ([], [])


def test_cleanup_of_a_killed_run() -> None:
    prefix = unique_prefix("g")
    n = Net(prefix, free_subnet())
    p = n.add_host("a").popen(["sleep", "1000"])
    n.add_host("b")
    # pretend the owner died: orphans are found by their owner file
    with open(os.path.join(netns.OWNERS_DIR, prefix), "w") as f:
        f.write("999999999\n")
    try:
        assert prefix in cleanup_orphans()
        assert p.wait(timeout=5) == -9
        assert leftovers(prefix) == ([], [])
    finally:
        n.close()


def test_a_subnet_in_use_is_refused(net: Net) -> None:
    with pytest.raises(NetError, match="in use"):
        Net(unique_prefix("g"), str(net.subnet))
    assert free_subnet() != str(net.subnet)


def test_a_killed_runs_subnet_is_reclaimed() -> None:
    subnet = free_subnet()
    dead = Net(unique_prefix("g"), subnet)
    dead.add_host("a")
    with open(os.path.join(netns.OWNERS_DIR, dead.prefix), "w") as f:
        f.write("999999999\n")  # its owner is gone
    try:
        with Net(unique_prefix("g"), subnet) as again:
            assert leftovers(dead.prefix) == ([], [])
            assert again.add_host("a").addr == dead.hosts[0].addr
    finally:
        dead.close()


def test_bad_names_are_refused(net: Net) -> None:
    with pytest.raises(ValueError):
        Net("Bad-Prefix!")
    with pytest.raises(ValueError):
        Net("muchtoolong")
    net.add_host("a")
    with pytest.raises(ValueError):
        net.add_host("a")
