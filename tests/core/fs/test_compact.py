import os

from core.fs.compact import compact, compact_chunk
from core.store import Store


def test_fragmented_chunk_is_rewritten(mem_store: Store) -> None:
    fs = mem_store.fs
    f = fs.create(fs.root, "f")
    model = bytearray(os.urandom(400_000))
    with fs.open(f.ino, write=True) as h:
        h.write(0, model)
    for i in range(20):  # 20 small committed overwrites: 21 slices in chunk 0
        blob = os.urandom(5000)
        with fs.open(f.ino, write=True) as h:
            h.write(i * 17_000, blob)
        model[i * 17_000:i * 17_000 + 5000] = blob
    with mem_store._meta.read() as t:
        assert len(t.slices(f.ino, 0, 0)) == 21
    rep = compact(fs, min_slices=16)
    assert rep.chunks == 1
    with mem_store._meta.read() as t:
        assert len(t.slices(f.ino, 0, 0)) <= 2
    assert fs.read(f.ino, 0, 10**6) == model


def test_holes_survive_compaction(mem_store: Store) -> None:
    fs = mem_store.fs
    f = fs.create(fs.root, "f")
    with fs.open(f.ino, write=True) as h:
        h.write(0, b"a" * 100_000)
        h.write(300_000, b"b" * 100_000)
    assert compact_chunk(fs, f.ino, 0) == 200_000
    assert fs.read(f.ino, 0, 10**6) == b"a" * 100_000 + bytes(200_000) + b"b" * 100_000


def test_concurrent_change_skips(mem_store: Store) -> None:
    fs = mem_store.fs
    f = fs.write_file(fs.root, "f", os.urandom(200_000))
    assert compact_chunk(fs, f.ino, 0) == 200_000
    assert compact_chunk(fs, f.ino, 5) == 0  # nothing there
