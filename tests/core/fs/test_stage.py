import os

from core.store import Store


def test_stager_streams_and_links(mem_store: Store) -> None:
    fs = mem_store.fs
    stg = fs.stager()
    data = os.urandom(3_000_000)
    for i in range(0, len(data), 65_536):
        stg.write(data[i:i + 65_536])
    a = fs.write_file(fs.root, "big", stg, mtime_ns=123)
    assert a.size == len(data) and a.mtime_ns == 123
    assert fs.read(a.ino, 0, len(data)) == data
    with mem_store._meta.read() as t:  # consecutive stripes were joined into few slices
        assert len(t.slices(a.ino, 0, 0)) <= 3


def test_stager_small_stays_inline_and_abort(mem_store: Store) -> None:
    fs = mem_store.fs
    stg = fs.stager()
    stg.write(b"tiny")
    assert stg.finish() == (b"tiny", [])
    big = fs.stager()
    big.write(os.urandom(2_000_000))
    big.abort()


def test_system_dir_is_hidden_and_stable(mem_store: Store) -> None:
    fs = mem_store.fs
    d = fs.system_dir("uploads")
    assert fs.system_dir("uploads") == d and fs.getattr(d).is_dir
    fs.write_file(d, "part", b"x")
    assert [e.name for e in fs.listdir(fs.root)] == []
    fs.rename(d, "part", fs.root, "visible")  # parts move into the namespace by rename
    assert fs.read(fs.resolve("/visible").ino, 0, 9) == b"x"
