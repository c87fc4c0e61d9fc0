"""Separate "hosts" on one machine: network namespaces on a Linux bridge (root only).

`tessera cluster demo` (as root) and the cluster tests give each node its own network stack, so a node
has its own address, its own ports, and can be cut off (partition) or lose all its processes (kill -9)
without touching the others.

The picture, for ``Net("tdemo", "10.77.0.0/24")`` with two hosts::

    root namespace:  bridge "tdemo-br" 10.77.0.1/24 (so the machine itself reaches every host)
                       |-- veth "tdemo-v0"  <-->  namespace "tdemo-n1": eth0 10.77.0.2/24, lo up
                       `-- veth "tdemo-v1"  <-->  namespace "tdemo-n2": eth0 10.77.0.3/24, lo up

Names: every object a `Net` creates is named after its prefix (1-9 characters of [a-z0-9], so that
``{prefix}-v{n}`` fits Linux's 15-character interface names): the bridge ``{prefix}-br``, the root ends of
the veth pairs ``{prefix}-v{n}``, the namespaces ``{prefix}-{host}`` (the far end of each veth is ``eth0``
inside its namespace, so those never clash). Two runs with different prefixes never touch each other's
objects; `unique_prefix()` makes one per process. The subnet must differ too (two bridges in the root
namespace with one subnet would make the root namespace's routes ambiguous), so `Net` refuses a subnet an
address of the root namespace is already in; `free_subnet()` picks an unused one (never the default
10.77.0.0/24, which is left to the demo).

Teardown: `Net.close()` kills every process in every namespace of the net (``ip netns pids``, SIGKILL,
until none is left), deletes the namespaces (which deletes their veth ends), then any remaining veth of the
prefix and the bridge. It works from the names, not from what this object remembers having made, so it is
idempotent and correct after a setup that failed halfway; `cleanup_stale(prefix)` runs the same teardown
for the leftovers of a run that was killed. Each live net records its owner pid in ``/run/tessera-net``;
`cleanup_orphans()` tears down every net whose owner is gone.

Faults: `Host.isolate()` takes the host's link down (a full partition); `Host.block(peers)` drops, with an
nftables table inside the host's namespace, only what arrives from some peers (a partial partition: a
database primary cut off from its standbys and etcd while its clients still reach it).

Non-root (or no ``ip``, or a kernel without namespaces): `Net.usable()` is False and callers fall back to
127.0.0.N addresses on the loopback.
"""

from __future__ import annotations

import ipaddress
import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

_PREFIX_RE = re.compile(r"^[a-z0-9]{1,9}$")
_HOST_RE = re.compile(r"^[a-z0-9][a-z0-9_.]{0,31}$")
OWNERS_DIR = "/run/tessera-net"
DEFAULT_SUBNET = "10.77.0.0/24"
_NFT_TABLE = "tessera_block"
_usable: bool | None = None
_counter = 0


class NetError(RuntimeError):
    """A namespace, link or address could not be set up."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise NetError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


def _netns_names() -> list[str]:
    r = _ip("netns", "list", check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def _link_names() -> list[str]:
    r = _ip("-o", "link", "show", check=False)
    out = []
    for line in r.stdout.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            out.append(parts[1].strip().split("@")[0])
    return out


def ns_pids(ns: str) -> list[int]:
    """The processes whose network namespace is `ns` (empty when it does not exist)."""
    r = _ip("netns", "pids", ns, check=False)
    return [int(p) for p in r.stdout.split() if p.isdigit()]


def kill_ns(ns: str, sig: int = signal.SIGKILL, wait: float = 10.0) -> None:
    """Send `sig` to every process in namespace `ns`; with SIGKILL, repeat until none is left (or `wait`)."""
    deadline = time.monotonic() + wait
    while True:
        pids = ns_pids(ns)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if not pids or sig != signal.SIGKILL or time.monotonic() > deadline:
            return
        time.sleep(0.05)


def cleanup_stale(prefix: str) -> None:
    """Delete every namespace, veth and bridge named after `prefix`, killing the processes inside first."""
    if not _PREFIX_RE.match(prefix):
        raise ValueError(f"bad net prefix {prefix!r}")
    for ns in _netns_names():
        if ns.startswith(prefix + "-"):
            kill_ns(ns)
            _ip("netns", "del", ns, check=False)
    mine = re.compile(rf"^{prefix}-(br|v\d+)$")
    links = [n for n in _link_names() if mine.match(n)]
    for name in sorted(links, key=lambda n: n.endswith("-br")):  # veths first, then the bridge
        _ip("link", "del", name, check=False)
    try:
        os.unlink(os.path.join(OWNERS_DIR, prefix))
    except FileNotFoundError:
        pass


def cleanup_orphans() -> list[str]:
    """Tear down every net whose owning process is gone; returns their prefixes."""
    try:
        entries = os.listdir(OWNERS_DIR)
    except FileNotFoundError:
        return []
    gone = []
    for prefix in entries:
        try:
            with open(os.path.join(OWNERS_DIR, prefix)) as f:
                pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        if (pid <= 0 or not os.path.exists(f"/proc/{pid}")) and _PREFIX_RE.match(prefix):
            cleanup_stale(prefix)
            gone.append(prefix)
    return gone


def unique_prefix(stem: str = "t") -> str:
    """A prefix no other live process uses: `stem` (1-2 characters) + this pid and a counter in base 36."""
    global _counter
    _counter += 1
    return f"{stem}{_b36(os.getpid())}{_b36(_counter % 1296)}"[:9]


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    s = ""
    while True:
        n, r = divmod(n, 36)
        s = digits[r] + s
        if n == 0:
            return s


def free_subnet(base: str = "10.77.0.0/16") -> str:
    """A /24 inside `base` that no address of the root namespace is in (random start, to spread runs; never
    the default subnet, which a `Net` made with defaults may want later)."""
    used = _used_networks()
    default = ipaddress.IPv4Network(DEFAULT_SUBNET)
    subnets = [s for s in ipaddress.IPv4Network(base).subnets(new_prefix=24) if s != default]
    start = random.randrange(len(subnets))
    for i in range(len(subnets)):
        cand = subnets[(start + i) % len(subnets)]
        if not any(cand.overlaps(u) for u in used):
            return str(cand)
    raise NetError(f"no free /24 in {base}")


def _used_networks() -> list[ipaddress.IPv4Network]:
    """The IPv4 networks of the root namespace's addresses."""
    used = []
    for line in _ip("-o", "-4", "addr", "show", check=False).stdout.splitlines():
        m = re.search(r"inet (\S+)", line)
        if m:
            used.append(ipaddress.IPv4Interface(m.group(1)).network)
    return used


class Host:
    """One network namespace on the bridge: an address, its processes, its link."""

    def __init__(self, net: Net, name: str, ns: str, addr: str, veth: str) -> None:
        self.net = net
        self.name = name
        self.ns = ns
        self.addr = addr
        self.veth = veth  # the root namespace's end (its state is the host's link state)
        self.procs: list[subprocess.Popen[Any]] = []

    def __repr__(self) -> str:
        return f"Host({self.name!r}, {self.addr})"

    def wrap(self) -> list[str]:
        """The command prefix that runs a program inside this host."""
        return ["ip", "netns", "exec", self.ns]

    def popen(self, cmd: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start `cmd` inside this host in its own process group (kw as for subprocess.Popen)."""
        kw.setdefault("start_new_session", True)
        p: subprocess.Popen[Any] = subprocess.Popen([*self.wrap(), *cmd], **kw)
        self.procs.append(p)
        return p

    def run(self, cmd: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[Any]:
        """Run `cmd` inside this host to completion (kw as for subprocess.run)."""
        return subprocess.run([*self.wrap(), *cmd], **kw)

    def pids(self) -> list[int]:
        return ns_pids(self.ns)

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to every process in this host (SIGKILL: until none is left), and reap our children.

        The processes `popen` started get it by pid too: one started a moment ago may still be `ip` on its
        way into the namespace, not yet listed by ``ip netns pids``.
        """
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.send_signal(sig)
                except ProcessLookupError:
                    pass
        kill_ns(self.ns, sig)
        if sig == signal.SIGKILL:
            self.reap()

    def reap(self) -> None:
        """Collect the exit status of the processes `popen` started that have ended."""
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
        self.procs = [p for p in self.procs if p.returncode is None]

    def isolate(self) -> None:
        """Cut this host off the bridge (a partition: its packets go nowhere); `reconnect` undoes it."""
        _ip("link", "set", self.veth, "down")

    def reconnect(self) -> None:
        _ip("link", "set", self.veth, "up")

    def block(self, peers: Iterable[Host | str]) -> None:
        """A partial partition: drop every packet arriving from `peers` (hosts or addresses), silently, so
        connections both ways time out; the rest of the net still reaches this host. `unblock` undoes it."""
        addrs = sorted({p.addr if isinstance(p, Host) else str(ipaddress.IPv4Address(p)) for p in peers})
        self.unblock()
        if not addrs:
            return
        rules = (f"table inet {_NFT_TABLE} {{\n chain input {{\n  type filter hook input priority 0; policy accept;\n"
                 f"  ip saddr {{ {', '.join(addrs)} }} drop\n }}\n}}\n")
        r = self.run(["nft", "-f", "-"], input=rules, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise NetError(f"nft in {self.ns}: {r.stderr.strip()}")

    def unblock(self) -> None:
        self.run(["nft", "delete", "table", "inet", _NFT_TABLE], capture_output=True, timeout=30)


class Net:
    """A bridge and the hosts on it; a context manager whose exit tears everything down."""

    def __init__(self, prefix: str, subnet: str = DEFAULT_SUBNET) -> None:
        if not _PREFIX_RE.match(prefix):
            raise ValueError(f"net prefix must be 1-9 characters of [a-z0-9], not {prefix!r}")
        self.prefix = prefix
        self.subnet = ipaddress.IPv4Network(subnet)
        if any(self.subnet.overlaps(u) for u in _used_networks()):
            cleanup_orphans()  # perhaps the leftovers of a killed run
        if any(self.subnet.overlaps(u) for u in _used_networks()):
            # a second bridge with the same subnet would make the root namespace's route to it ambiguous
            raise NetError(f"subnet {subnet} is in use on this machine (another net?): pass free_subnet()")
        self.bridge = f"{prefix}-br"
        self.hosts: list[Host] = []
        self._addrs = self.subnet.hosts()
        self.gateway = str(next(self._addrs))  # .1: the bridge's address in the root namespace
        self._closed = False
        try:
            os.makedirs(OWNERS_DIR, exist_ok=True)
            with open(os.path.join(OWNERS_DIR, prefix), "w") as f:
                f.write(f"{os.getpid()}\n")
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
        except BaseException:
            self.close()
            raise

    @staticmethod
    def usable() -> bool:
        """Whether network namespaces work here (root, `ip` present, a namespace can be made)."""
        global _usable
        if _usable is None:
            _usable = _probe()
        return _usable

    def add_host(self, name: str) -> Host:
        """A new namespace with a veth to the bridge, the next address of the subnet, and lo up."""
        if not _HOST_RE.match(name) or any(h.name == name for h in self.hosts):
            raise ValueError(f"bad or duplicate host name {name!r}")
        if self._closed:
            raise NetError("net is closed")
        ns, veth = f"{self.prefix}-{name}", f"{self.prefix}-v{len(self.hosts)}"
        addr = str(next(self._addrs))
        _ip("netns", "add", ns)
        host = Host(self, name, ns, addr, veth)
        self.hosts.append(host)  # before the links: close() must find the namespace whatever fails next
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("link", "set", veth, "master", self.bridge, "up")
        _ip("-n", ns, "addr", "add", f"{addr}/{self.subnet.prefixlen}", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        return host

    def close(self) -> None:
        """Kill every process in every namespace, delete namespaces, veths and bridge. Idempotent."""
        self._closed = True
        for h in self.hosts:
            h.kill_all()
        cleanup_stale(self.prefix)

    def __enter__(self) -> Net:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _probe() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    ns = f"tprobe{_b36(os.getpid())}"[:15]
    try:
        ok = _ip("netns", "add", ns, check=False).returncode == 0
        if ok:
            ok = _ip("-n", ns, "link", "set", "lo", "up", check=False).returncode == 0
        return ok
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        try:
            _ip("netns", "del", ns, check=False)
        except (OSError, subprocess.SubprocessError):
            pass
