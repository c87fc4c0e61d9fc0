import os
import uuid
from pathlib import Path

import pytest

from core.data.target import DirTarget, MemTarget, parse_shard_name, shard_name


def test_shard_names() -> None:
    assert parse_shard_name(shard_name(0x1234, 5)) == (0x1234, 5)
    assert parse_shard_name("junk") is None


@pytest.mark.parametrize("kind", ["dir", "mem"])
def test_target_io(tmp_path: Path, kind: str) -> None:
    if kind == "dir":
        DirTarget.format(str(tmp_path / "t"), 3, uuid.uuid4())
        t: DirTarget | MemTarget = DirTarget(3, str(tmp_path / "t"))
        assert t.identity() is not None and t.identity()["id"] == 3  # type: ignore[index]
    else:
        t = MemTarget(3)
    with pytest.raises(FileNotFoundError):
        t.open_shard(1, 0)
    f = t.open_shard(1, 0, create=True)
    f.pwritev([b"hello", b" world"], 100)
    buf = bytearray(11)
    assert f.preadv([buf], 100) == 11 and buf == b"hello world"
    short = bytearray(20)
    assert f.preadv([short], 105) == 6
    f.sync()
    assert t.list_shards() == [(1, 0)]
    assert t.usage() > 0
    t.remove_shard(1, 0)
    assert t.list_shards() == []
    t.close()


def test_dir_target_fd_cache_bounded(tmp_path: Path) -> None:
    DirTarget.format(str(tmp_path), 0, uuid.uuid4())
    t = DirTarget(0, str(tmp_path))
    t.MAX_OPEN = 4
    for s in range(10):
        t.open_shard(s, 0, create=True).pwritev([b"x"], 0)
    assert len(t._fds) == 4
    assert len(os.listdir(tmp_path / "shards")) == 10
    t.close()


def test_missing_directory_is_unavailable(tmp_path: Path) -> None:
    t = DirTarget(0, str(tmp_path / "gone"))
    assert not t.available()
    with pytest.raises(OSError):
        t.open_shard(1, 0, create=True)
