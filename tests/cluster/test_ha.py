"""Metadata failover for real: Patroni + PostgreSQL on three namespace hosts, etcd on a fourth, a client on a
fifth writing through the libpq multi-host URL while the primary is killed with SIGKILL.

What must hold: a new primary within a bound (Patroni's ttl plus slack; the measured times are printed),
the client resumes on its own (reconnect + retry), every acknowledged commit is on the new primary with the
right payload, the new primary is the node that was the synchronous standby, and the killed node rejoins
as a replica holding every acknowledged row when it is started again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from gateway.cluster.netns import Net
from tests.cluster.conftest import needs_netns, needs_patroni
from tests.cluster.ha import HaMeta

pytestmark = [pytest.mark.slow, needs_netns, needs_patroni, pytest.mark.timeout(180, method="signal")]

WRITER = os.path.join(os.path.dirname(__file__), "ha_writer.py")


class Writer:
    """The ha_writer.py process on a host, its output collected by a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.acks: list[tuple[int, float]] = []  # (id, unix time), in order
        self.errors: list[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split()
            if parts and parts[0] == "ACK":
                self.acks.append((int(parts[1]), float(parts[2])))
            elif parts:
                self.errors.append(line.strip())

    def wait_acks(self, n: int, after: float = 0.0, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while sum(1 for _, t in self.acks if t > after) < n:
            assert self.proc.poll() is None, f"writer died: {self.errors[-5:]}"
            assert time.monotonic() < deadline, f"only {len(self.acks)} acks; last errors {self.errors[-5:]}"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)
        self._t.join(timeout=10)


def rows(url: str) -> dict[int, str]:
    with psycopg.connect(url) as c:
        return {int(i): str(p) for i, p in c.execute("SELECT id, payload FROM acks").fetchall()}


def test_primary_killed_mid_stream_loses_no_acknowledged_commit(net: Net, ha_meta: HaMeta) -> None:
    ha = ha_meta
    with psycopg.connect(ha.url(), autocommit=True) as c:
        c.execute("CREATE TABLE acks (id bigint PRIMARY KEY, payload text NOT NULL)")
    client = net.add_host("client")
    writer = Writer(client.popen([sys.executable, WRITER, ha.url()], stdout=subprocess.PIPE, text=True))
    try:
        writer.wait_acks(50)
        sync = ha.wait_sync_standby()
        old = ha.kill_primary()
        t_kill = time.time()  # its Patroni and PostgreSQL are gone: any later ack is the new primary's
        assert sync is not old
        new = ha.wait_primary(exclude=[old], timeout=60)
        t_primary = time.time() - t_kill
        writer.wait_acks(1, after=t_kill, timeout=60)
        t_resumed = min(t for _, t in writer.acks if t > t_kill) - t_kill
        outage = max(b - a for (_, a), (_, b) in zip(writer.acks, writer.acks[1:], strict=False))
        writer.wait_acks(50, after=t_kill, timeout=60)
    finally:
        writer.stop()
    print(f"\nfailover (ttl {ha.ttl} s, loop_wait {ha.loop_wait} s): new primary {new.name} after {t_primary:.1f} s; "
          f"client writing again after {t_resumed:.1f} s (longest gap between acks {outage:.1f} s); "
          f"{len(writer.errors)} failed attempts meanwhile")
    assert new is sync, "Patroni promoted a node that was not the synchronous standby"
    assert t_primary < ha.ttl + 15 and t_resumed < ha.ttl + 20

    acked = [i for i, _ in writer.acks]
    assert acked == list(range(len(acked)))  # the writer moves on only after an acknowledgement
    got = rows(ha.url())
    missing = [i for i in acked if i not in got]
    assert not missing, f"acknowledged rows lost in the failover: {missing[:20]}"
    assert all(p == f"row-{i}" for i, p in got.items())
    assert max(got) <= len(acked)  # at most the one attempt that was never acknowledged

    ha.start_node(old)
    ha.wait_replica(old, timeout=90)
    deadline = time.monotonic() + 30
    while not set(acked) <= set(rows(ha.host_url(old))):
        assert time.monotonic() < deadline, "the rejoined node lacks acknowledged rows"
        time.sleep(0.2)
    with psycopg.connect(ha.host_url(old)) as c:
        assert c.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)


def test_primary_cut_off_from_its_peers_acknowledges_nothing_they_lack(net: Net, ha_meta: HaMeta) -> None:
    """Split brain: the primary loses its standbys and etcd but not its client. Its commits cannot reach the
    synchronous standby, so none is acknowledged; Patroni demotes it when it cannot renew the leader key,
    the others elect a new primary, and the client moves there. When healed, the old one rejoins (rewound)."""
    ha = ha_meta
    with psycopg.connect(ha.url(), autocommit=True) as c:
        c.execute("CREATE TABLE acks (id bigint PRIMARY KEY, payload text NOT NULL)")
    client = net.add_host("client")
    # a peer that stops answering must fail the connection, not hang the client: TCP timeouts
    url = ha.url() + "&tcp_user_timeout=3000&keepalives_idle=2&keepalives_interval=1&keepalives_count=2"
    writer = Writer(client.popen([sys.executable, WRITER, url], stdout=subprocess.PIPE, text=True))
    try:
        writer.wait_acks(50)
        sync = ha.wait_sync_standby()
        old = ha.primary()
        assert old is not None and old is not sync
        old.block([h for h in ha.hosts if h is not old] + [ha.etcd_host])
        t_cut = time.time()
        new = ha.wait_primary(exclude=[old], timeout=60)
        t_primary = time.time() - t_cut
        writer.wait_acks(50, after=t_cut + t_primary, timeout=60)
    finally:
        writer.stop()
    # the client reaches the old primary all along, and no other node can be primary before the old leader key
    # expires (ttl after its last renewal, at most loop_wait before the cut): an ack in between would be the
    # cut-off primary's, without its synchronous standby (0.5 s: a commit in flight at the cut)
    alone = [i for i, t in writer.acks if t_cut + 0.5 < t < t_cut + ha.ttl - ha.loop_wait - 1]
    print(f"\npartition: new primary {new.name} after {t_primary:.1f} s; acks by the cut-off primary: {alone}")
    assert alone == []
    assert new is sync
    acked = [i for i, _ in writer.acks]
    got = rows(ha.url())
    assert [i for i in acked if i not in got] == [], "a commit acknowledged by the cut-off primary was lost"
    assert all(p == f"row-{i}" for i, p in got.items())

    old.unblock()
    t_back = time.monotonic()
    ha.wait_replica(old, timeout=90)
    print(f"rejoined after {time.monotonic() - t_back:.1f} s")
    deadline = time.monotonic() + 30
    while not set(acked) <= set(rows(ha.host_url(old))):
        assert time.monotonic() < deadline, "the rejoined node lacks acknowledged rows"
        time.sleep(0.2)
    assert ha.primary() is new


def test_url_reaches_the_primary_and_replicas_refuse_writes(ha_meta: HaMeta) -> None:
    ha = ha_meta
    primary = ha.primary()
    assert primary is not None
    ha.create_database("meta")
    with psycopg.connect(ha.url("meta")) as c:
        assert c.execute("SELECT host(inet_server_addr()), pg_is_in_recovery(), current_database()").fetchone() \
            == (primary.addr, False, "meta")
    for h in ha.hosts:
        if h is not primary:
            with psycopg.connect(ha.host_url(h)) as c, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                c.execute("CREATE TABLE nope (x int)")
