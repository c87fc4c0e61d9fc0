"""core.cluster's target factory: own targets local, other nodes' through their target servers, at the
address the metadata gives now, and unavailable while their node's heartbeat is stale."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from core.cluster.node import Liveness, target_factory
from core.data.target import DirTarget, MemTarget
from core.meta.nodetxn import NodeRow
from core.meta.sqlite import SqliteMeta
from core.meta.types import TargetInfo


@pytest.fixture
def meta(tmp_path: Path) -> SqliteMeta:
    m = SqliteMeta(str(tmp_path / "meta.db"), create=True)
    now = time.time_ns()
    m.write(lambda t: t.put_node(NodeRow("b", "127.0.0.1:1", {}, "up", now, now)))
    m.write(lambda t: t.put_node(NodeRow("c", "127.0.0.1:2", {}, "up", now - 60 * 10**9, now)))
    return m


def test_own_targets_local_others_remote_at_the_current_address(meta: SqliteMeta, tmp_path: Path) -> None:
    live = Liveness(meta, dead_after=30, every=0.0)
    make = target_factory(meta, "a", b"token", live)
    here, mine = make(TargetInfo(0, "mem:0", "ok", 1.0, "")), make(TargetInfo(1, str(tmp_path), "ok", 1.0, "", "a"))
    theirs = make(TargetInfo(2, "/on/b", "ok", 1.0, "b", "b"))
    silent = make(TargetInfo(3, "/on/c", "ok", 1.0, "c", "c"))
    unknown = make(TargetInfo(4, "/on/d", "ok", 1.0, "d", "d"))
    try:
        assert isinstance(here, MemTarget) and isinstance(mine, DirTarget)
        assert theirs.path == "/on/b" and theirs.id == 2
        assert not theirs.available()  # nothing listens at 127.0.0.1:1
        with pytest.raises(OSError, match=re.escape("127.0.0.1:1")):
            theirs.open_shard(1, 0).size()
        meta.write(lambda t: t.put_node(NodeRow("b", "127.0.0.1:3", {}, "up", time.time_ns(), 0)))
        with pytest.raises(OSError, match=re.escape("127.0.0.1:3")):  # followed the node to its new address
            theirs.open_shard(1, 0).size()
        assert not silent.available() and silent.capacity() == (0, 0)  # its heartbeat is a minute old
        with pytest.raises(OSError, match="no address"):
            unknown.open_shard(1, 0)
        assert unknown.list_shards() == [] and not unknown.available()
    finally:
        for t in (here, mine, theirs, silent, unknown):
            t.close()
