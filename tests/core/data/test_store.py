"""DataStore over in-memory and directory targets."""

import os
import threading

import pytest

from core.data.store import DataStore, Extent, merge_extents
from core.data.target import MemTarget
from core.errors import DataUnavailable
from core.store import Store


def _read_back(ds: DataStore, exts: list[Extent]) -> bytes:
    out = bytearray()
    for e in exts:
        buf = bytearray(e.length)
        ds.read_into(e.segment, e.seg_off, memoryview(buf))
        out += buf
    return bytes(out)


def test_write_read_extents(mem_store: Store) -> None:
    ds = mem_store._data
    data = os.urandom(ds.geo.stripe_data * 3 + 100)
    exts = ds.write(data)
    ds.sync(e.segment for e in exts)
    assert _read_back(ds, exts) == data


def test_segments_roll_over_when_full(mem_store: Store) -> None:
    ds = mem_store._data
    per_seg = ds.segment_stripes * ds.geo.stripe_data
    data = os.urandom(per_seg + ds.geo.stripe_data)
    exts = ds.write(data)
    assert len({e.segment for e in exts}) == 2
    with mem_store._meta.read() as t:
        states = {s.id: s.state for s in t.segments()}
    assert states[exts[0].segment] == "sealed"


def test_concurrent_writers(mem_store: Store) -> None:
    ds = mem_store._data
    blobs = [os.urandom(ds.geo.stripe_data * 2 + i) for i in range(6)]
    results: dict[int, list[Extent]] = {}

    def go(i: int) -> None:
        results[i] = ds.write(blobs[i])
    ths = [threading.Thread(target=go, args=(i,)) for i in range(6)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    for i, blob in enumerate(blobs):
        assert _read_back(ds, results[i]) == blob


def test_failed_targets_degrade_then_fail(mem_store: Store) -> None:
    ds = mem_store._data
    data = os.urandom(ds.geo.stripe_data * 2)
    (e,) = ds.write(data)
    info = ds.segment(e.segment)
    tg = [ds.target(t) for t in info.targets]
    assert isinstance(tg[0], MemTarget)
    tg[0].failed = True  # type: ignore[union-attr]
    tg[3].failed = True  # type: ignore[union-attr]
    buf = bytearray(len(data))
    ds.read_into(e.segment, 0, memoryview(buf))
    assert buf == data
    tg[5].failed = True  # type: ignore[union-attr]
    with pytest.raises(DataUnavailable):
        ds.read_into(e.segment, 0, memoryview(buf))


def test_new_segments_avoid_unavailable_targets(mem_store: Store) -> None:
    ds = mem_store._data
    ds.write(b"x" * 100)
    ds.seal()
    bad = ds.target(2)
    bad.failed = True  # type: ignore[attr-defined]
    mem_store._meta.write(lambda t: t.add_target("mem:6", 1.0, "", 0))
    ds.refresh()
    (e,) = ds.write(b"y" * 100)
    assert 2 not in ds.segment(e.segment).targets


def test_merge_extents() -> None:
    ex = [Extent(1, 0, 10), Extent(1, 10, 5), Extent(2, 15, 5), Extent(1, 15, 1)]
    assert merge_extents(ex) == [Extent(1, 0, 15), Extent(2, 15, 5), Extent(1, 15, 1)]
