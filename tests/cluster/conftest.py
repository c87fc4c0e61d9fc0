"""Fixtures for the cluster tests: a network of namespace hosts (`net`) and HA metadata on it (`ha_meta`).

Both tear down on every path: a failing test, a pytest-timeout (signal method: the fixture's finally runs),
or a setup that fails halfway. Nets left by a killed run are removed before a new one is made.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from gateway.cluster.netns import Net, cleanup_orphans, free_subnet, unique_prefix
from tests.cluster.ha import HaMeta, make_workdir, remove_workdir

needs_netns = pytest.mark.skipif(not Net.usable(), reason="network namespaces need root and iproute2")
needs_patroni = pytest.mark.skipif(shutil.which("patroni") is None or shutil.which("etcd") is None,
                                   reason="needs Debian patroni and etcd-server")


@pytest.fixture
def net() -> Iterator[Net]:
    if not Net.usable():
        pytest.skip("network namespaces need root and iproute2")
    cleanup_orphans()
    n = Net(unique_prefix("c"), free_subnet())
    try:
        yield n
    finally:
        n.close()
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{n.prefix}-" not in left, f"namespaces left behind: {left}"


@pytest.fixture
def ha_meta(net: Net) -> Iterator[HaMeta]:
    """Patroni + PostgreSQL on hosts pg1..pg3, etcd on host dcs; started (a primary and a sync standby)."""
    if shutil.which("patroni") is None or shutil.which("etcd") is None:
        pytest.skip("needs Debian patroni and etcd-server")
    hosts = [net.add_host(f"pg{i}") for i in (1, 2, 3)]
    dcs = net.add_host("dcs")
    workdir = make_workdir()
    ha = HaMeta(net, hosts, workdir, etcd_host=dcs)
    try:
        ha.start()
        yield ha
    finally:
        try:
            ha.stop()
        finally:
            remove_workdir(workdir)
