"""File data through core.fs: buffering, inline, truncate, holes, concat, overlays."""

import os
import random

import pytest

from core.errors import Closed, InvalidArgument, IsADirectory
from core.store import Store


def test_small_files_are_inline(mem_store: Store) -> None:
    fs = mem_store.fs
    a = fs.write_file(fs.root, "s", b"x" * 100)
    with mem_store._meta.read() as t:
        node = t.inode(a.ino)
        assert node is not None and node.inline_data == b"x" * 100
        assert t.slices(a.ino, 0, 10) == []
    assert fs.read(a.ino, 0, 1000) == b"x" * 100
    assert fs.read(a.ino, 50, 10) == b"x" * 10
    assert fs.read(a.ino, 100, 10) == b""


def test_handle_write_read_your_writes(mem_store: Store) -> None:
    fs = mem_store.fs
    f = fs.create(fs.root, "f")
    data = os.urandom(3 * mem_store._data.geo.stripe_data + 999)
    with fs.open(f.ino, write=True) as h:
        for off in range(0, len(data), 50_000):
            h.write(off, data[off:off + 50_000])
        assert h.size() == len(data)
        assert h.read(0, len(data)) == data
        assert fs.getattr(f.ino).size == len(data)  # this process sees its own growth
        h.write(10, b"OVERWRITE")
        assert h.read(0, 30) == data[:10] + b"OVERWRITE" + data[19:30]
    expect = data[:10] + b"OVERWRITE" + data[19:]
    assert fs.read(f.ino, 0, len(data) + 10) == expect


def test_commit_is_visible_to_a_fresh_store(dir_store_path: str) -> None:
    from core.store import open_store
    s1 = open_store(dir_store_path)
    f = s1.fs.create(s1.fs.root, "f")
    h = s1.fs.open(f.ino, write=True)
    h.write(0, b"a" * 300_000)
    h.commit()
    s2 = open_store(dir_store_path)
    assert s2.fs.read(f.ino, 0, 10**6) == b"a" * 300_000
    h.write(300_000, b"b" * 10)  # uncommitted: invisible to the other process
    assert s2.fs.getattr(f.ino).size == 300_000
    h.close()
    assert s2.fs.getattr(f.ino).size == 300_010
    s2.close()
    s1.close()


def test_random_overwrites_match_a_bytearray(mem_store: Store) -> None:
    fs = mem_store.fs
    rnd = random.Random(7)
    model = bytearray()
    f = fs.create(fs.root, "f")
    for round_ in range(6):
        with fs.open(f.ino, write=True) as h:
            for _ in range(15):
                off = rnd.randrange(0, 700_000)
                n = rnd.randrange(1, 200_000)
                blob = rnd.randbytes(n)
                h.write(off, blob)
                if len(model) < off:
                    model.extend(bytes(off - len(model)))
                model[off:off + n] = blob
            assert h.read(0, len(model)) == model
        assert fs.read(f.ino, 0, len(model)) == model, round_


def test_truncate_and_extend_leave_zeros(mem_store: Store) -> None:
    fs = mem_store.fs
    data = os.urandom(500_000)
    a = fs.write_file(fs.root, "f", data)
    fs.setattr(a.ino, size=100_000)
    assert fs.read(a.ino, 0, 10**6) == data[:100_000]
    fs.setattr(a.ino, size=400_000)
    assert fs.read(a.ino, 0, 10**6) == data[:100_000] + bytes(300_000)
    with fs.open(a.ino, write=True) as h:
        h.write(700_000, b"end")
    assert fs.read(a.ino, 0, 10**6) == data[:100_000] + bytes(600_000) + b"end"


def test_truncate_flushes_buffered_writes_first(mem_store: Store) -> None:
    fs = mem_store.fs
    f = fs.create(fs.root, "f")
    h = fs.open(f.ino, write=True)
    h.write(0, b"z" * 200_000)
    h.truncate(50_000)
    assert h.read(0, 10**6) == b"z" * 50_000
    h.close()
    assert fs.read(f.ino, 0, 10**6) == b"z" * 50_000


def test_inline_file_grows_into_segments_and_back(mem_store: Store) -> None:
    fs = mem_store.fs
    a = fs.write_file(fs.root, "f", b"head")
    with fs.open(a.ino, write=True) as h:
        h.write(100_000, b"tail")
    assert fs.read(a.ino, 0, 200_000) == b"head" + bytes(100_000 - 4) + b"tail"
    fs.setattr(a.ino, size=2)
    with fs.open(a.ino, write=True) as h:
        h.write(2, b"!!")
    assert fs.read(a.ino, 0, 10) == b"he!!"


def test_open_truncate_and_errors(mem_store: Store) -> None:
    fs = mem_store.fs
    a = fs.write_file(fs.root, "f", b"abc")
    with fs.open(a.ino, write=True, truncate=True) as h:
        assert h.size() == 0
    d = fs.mkdir(fs.root, "d")
    with pytest.raises(IsADirectory):
        fs.open(d.ino)
    h = fs.open(a.ino)
    with pytest.raises(InvalidArgument):
        h.write(0, b"x")
    h.close()
    with pytest.raises(Closed):
        h.read(0, 1)
    with pytest.raises(InvalidArgument):
        fs.read(a.ino, -1, 1)


def test_write_file_replaces_atomically(mem_store: Store) -> None:
    fs = mem_store.fs
    old = fs.write_file(fs.root, "obj", os.urandom(400_000))
    new_data = os.urandom(300_000)
    new = fs.write_file(fs.root, "obj", [new_data[:1000], new_data[1000:]])
    assert new.ino != old.ino
    assert fs.read(new.ino, 0, 10**6) == new_data
    from core.errors import Exists, Stale
    with pytest.raises(Stale):
        fs.getattr(old.ino)
    with pytest.raises(Exists):
        fs.write_file(fs.root, "obj", b"x", exclusive=True)
    fs.mkdir(fs.root, "dir")
    with pytest.raises(IsADirectory):
        fs.write_file(fs.root, "dir", b"x")
    a = fs.write_file(fs.root, "meta", b"x", xattrs={"user.etag": b"abc"})
    assert fs.getxattr(a.ino, "user.etag") == b"abc"


def test_concat_joins_without_copy(mem_store: Store) -> None:
    fs = mem_store.fs
    parts = [os.urandom(300_000), b"tiny", os.urandom(123_457)]
    inos = [fs.write_file(fs.root, f"p{i}", p).ino for i, p in enumerate(parts)]
    dst = fs.write_file(fs.root, "joined", b"")
    with mem_store._meta.read() as t:
        segs_before = len(t.segments())
    a = fs.concat(dst.ino, inos)
    assert a.size == sum(map(len, parts))
    assert fs.read(dst.ino, 0, 10**6) == b"".join(parts)
    with mem_store._meta.read() as t:  # only the tiny inline part was written out
        assert len(t.segments()) <= segs_before + 1
    for i in range(3):
        fs.unlink(fs.root, f"p{i}")
    assert fs.read(dst.ino, 0, 10**6) == b"".join(parts)


def test_concat_onto_an_inline_file(mem_store: Store) -> None:
    fs = mem_store.fs
    dst = fs.write_file(fs.root, "dst", b"head-")
    src = fs.write_file(fs.root, "src", os.urandom(300_000))
    fs.concat(dst.ino, [src.ino, src.ino])
    body = fs.read(src.ino, 0, 10**6)
    assert fs.read(dst.ino, 0, 10**6) == b"head-" + body + body
    with mem_store._meta.read() as t:
        node = t.inode(dst.ino)
        assert node is not None and node.inline_data is None


def test_concat_with_holes_and_chunk_boundaries(tmp_path: "os.PathLike[str]") -> None:
    from core.fs.fs import FileSystem
    from core.store import init_store, open_store
    d = str(tmp_path) + "/s"
    init_store(d, targets=[f"mem:{i}" for i in range(3)], cell=64 * 1024)
    s = open_store(d)
    fs = FileSystem(s._meta, s._data, inline_max=100, chunk=100_000)  # tiny chunks
    a = fs.create(fs.root, "a")
    with fs.open(a.ino, write=True) as h:
        h.write(0, b"A" * 150_000)
        h.write(250_000, b"a" * 10)  # leaves a hole
    b = fs.write_file(fs.root, "b", b"B" * 90_000)
    dst = fs.write_file(fs.root, "dst", b"D" * 1000)
    fs.concat(dst.ino, [a.ino, b.ino])
    want = b"D" * 1000 + b"A" * 150_000 + bytes(100_000) + b"a" * 10 + b"B" * 90_000
    assert fs.read(dst.ino, 0, 10**6) == want
    s.close()


def test_read_many_matches_single_reads(mem_store: Store) -> None:
    from core.errors import Stale
    fs = mem_store.fs
    blobs = [b"", b"tiny", os.urandom(20_000), os.urandom(700_000)]
    inos = [fs.write_file(fs.root, f"m{i}", b).ino for i, b in enumerate(blobs)]
    h = fs.create(fs.root, "holes")
    with fs.open(h.ino, write=True) as w:
        w.write(300_000, b"end")
    assert fs.read_many([*inos, h.ino, inos[1]]) == [*blobs, bytes(300_000) + b"end", b"tiny"]
    fs.unlink(fs.root, "m2")
    with pytest.raises(Stale):
        fs.read_many(inos)
