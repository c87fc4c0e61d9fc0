"""Fault injection on real directories: deleted targets, flipped bytes, truncated shards;
scrub, repair, rebuild and GC restore a healthy store without wrong bytes."""

import os
import random
import shutil
import time

import pytest

from core.data import maintenance as mt
from core.data.target import DirTarget
from core.errors import DataUnavailable
from core.fs.compact import compact
from core.store import Store, open_store
from tests.conftest import shard_files


def _fill(s: Store, n: int = 4, size: int = 700_000) -> dict[str, bytes]:
    files = {}
    for i in range(n):
        data = os.urandom(size + i * 1000)
        s.fs.write_file(s.fs.root, f"f{i}", data)
        files[f"f{i}"] = data
    return files


def _check(s: Store, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        assert s.fs.read(s.fs.lookup(s.fs.root, name).ino, 0, len(data) + 1) == data, name


def test_deleted_target_directories(dir_store_path: str) -> None:
    s = open_store(dir_store_path)
    files = _fill(s)
    s.close()
    shutil.rmtree(os.path.join(dir_store_path, "targets", "t1"))
    shutil.rmtree(os.path.join(dir_store_path, "targets", "t4"))
    s = open_store(dir_store_path)
    _check(s, files)
    h = mt.health(s._data)
    assert h.state == "DEGRADED" and h.degraded_stripes > 0
    assert {t["state"] for t in h.targets if t["id"] in (1, 4)} == {"missing"}
    shutil.rmtree(os.path.join(dir_store_path, "targets", "t0"))
    s.close()
    s = open_store(dir_store_path)
    with pytest.raises(DataUnavailable):
        _check(s, files)
    assert mt.health(s._data).state == "FAILED"
    s.close()


def test_flipped_bytes_are_caught_and_repaired(dir_store_path: str) -> None:
    s = open_store(dir_store_path)
    files = _fill(s)
    rnd = random.Random(1)
    for path in shard_files(dir_store_path, target=2) + shard_files(dir_store_path, target=5):
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            for _ in range(20):
                off = rnd.randrange(4096, size)
                f.seek(off)
                b = f.read(1)
                f.seek(off)
                f.write(bytes([b[0] ^ 0x5A]) if b else b"\x01")
    s.close()
    s = open_store(dir_store_path)
    _check(s, files)  # right bytes despite corruption
    rep = mt.scrub(s._data)
    assert rep.blocks_bad > 0 and rep.cells_repaired == 0
    rep = mt.scrub(s._data, repair=True)
    assert rep.cells_repaired == rep.cells_bad > 0 and not rep.unrecoverable
    rep = mt.scrub(s._data)
    assert rep.blocks_bad == 0
    _check(s, files)
    s.close()


def test_truncated_shard_files(dir_store_path: str) -> None:
    s = open_store(dir_store_path)
    files = _fill(s, n=2, size=1_500_000)
    for path in shard_files(dir_store_path, target=3):
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 3)
    for path in shard_files(dir_store_path, target=0):
        with open(path, "r+b") as f:
            f.truncate(100)  # even the header is gone
    s.close()
    s = open_store(dir_store_path)
    _check(s, files)
    rep = mt.scrub(s._data, repair=True)
    assert rep.cells_repaired > 0 and not rep.unrecoverable
    assert mt.scrub(s._data).blocks_bad == 0
    _check(s, files)
    s.close()


def test_fail_and_rebuild_onto_a_new_target(dir_store_path: str) -> None:
    s = open_store(dir_store_path)
    files = _fill(s)
    s._meta.write(lambda t: t.set_target_state(2, "failed"))
    s._data.refresh()
    assert mt.health(s._data).state == "DEGRADED"
    new = os.path.join(dir_store_path, "targets", "t6")
    tid = s._meta.write(lambda t: t.add_target(new, 1.0, "", time.time_ns()))
    DirTarget.format(new, tid, s.id)
    rep = mt.rebuild(s._data, wait_open=0)
    assert rep.shards > 0 and not rep.lost
    h = mt.health(s._data)
    assert h.state == "OK" and h.degraded_stripes == 0
    assert next(t for t in h.targets if t["id"] == 2)["shards"] == 0
    _check(s, files)
    s.close()
    shutil.rmtree(os.path.join(dir_store_path, "targets", "t2"))  # the old disk is really gone
    s = open_store(dir_store_path)
    _check(s, files)
    assert mt.scrub(s._data).blocks_bad == 0
    s.close()


def test_rebuild_onto_remaining_targets(dir_store_path: str) -> None:
    s = open_store(dir_store_path)
    files = _fill(s)
    s.close()
    shutil.rmtree(os.path.join(dir_store_path, "targets", "t5"))
    s = open_store(dir_store_path)
    rep = mt.rebuild(s._data, wait_open=0)
    assert rep.shards > 0
    assert mt.health(s._data).state == "OK"
    _check(s, files)
    s.close()


def test_gc_reclaims_unreferenced_segments(dir_store_path: str) -> None:
    s = open_store(dir_store_path)
    s.fs.set_trash_default(0)  # deleted files go for good (the trash would keep their data: test_versions)
    files = _fill(s, n=3)
    s._data.seal()
    for name in list(files)[:2]:
        s.fs.unlink(s.fs.root, name)
        del files[name]
    before = sum(os.path.getsize(p) for p in shard_files(dir_store_path))
    assert mt.collect(s._data).deleted_segments == 0  # the segment still holds a live file
    crep = compact(s.fs)  # relocates the live third out of the mostly-dead segment
    assert crep.chunks == 1 and crep.bytes_rewritten == len(next(iter(files.values())))
    s._data.seal()
    rep = mt.collect(s._data)
    after = sum(os.path.getsize(p) for p in shard_files(dir_store_path))
    _check(s, files)
    assert rep.deleted_segments >= 1 and after < before / 2
    s.close()


def test_gc_collects_orphans_and_dead_writers(dir_store_path: str) -> None:
    s = open_store(dir_store_path)
    s.fs.write_file(s.fs.root, "keep", os.urandom(300_000))
    # a segment opened by a process that died before committing anything
    sid = s._meta.write(lambda t: t.new_segment(4, 2, 65536, "nohost-but-local:1:1", 64, 0))
    s._meta.write(lambda t: t.exec("UPDATE segments SET owner = ? WHERE id = ?",
                                  (s._data.segment(1).owner.split(":")[0] + ":999999999:1", sid)))
    s._meta.write(lambda t: t.set_shards(sid, [0, 1, 2, 3, 4, 5]))
    # and a shard file no metadata knows (GC removed the row, then crashed)
    gone = s._meta.write(lambda t: t.new_segment(4, 2, 65536, "x:1:1", 64, 0))
    s._meta.write(lambda t: t.delete_segment(gone))
    orphan = os.path.join(dir_store_path, "targets", "t0", "shards", f"{gone:016x}.0")
    with open(orphan, "wb") as f:
        f.write(b"junk")
    rep = mt.collect(s._data)
    assert rep.sealed == 1 and rep.deleted_segments >= 1 and rep.orphan_shards == 1
    assert not os.path.exists(orphan)
    assert s.fs.read(s.fs.lookup(s.fs.root, "keep").ino, 0, 10) != b""
    s.close()
