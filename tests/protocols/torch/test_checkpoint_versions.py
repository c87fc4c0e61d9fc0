"""Resuming from the checkpoint before a bad save: real torch.save/torch.load at a version."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.store import init_store, open_store
from protocols.torch import TesseraCheckpoint

pytestmark = pytest.mark.timeout(300)


def good_state() -> dict[str, object]:
    g = torch.Generator().manual_seed(1)
    return {"w": torch.randn(2_500_000, generator=g), "b": torch.arange(1000, dtype=torch.int64), "step": 100}


def bad_state() -> dict[str, object]:
    return {"w": torch.full((10,), 1e30), "b": torch.zeros(3, dtype=torch.int64), "step": 101}  # diverged


def same(a: dict[str, object], b: dict[str, object]) -> bool:
    def eq(v: object, w: object) -> bool:
        if isinstance(v, torch.Tensor):
            return isinstance(w, torch.Tensor) and v.dtype == w.dtype and torch.equal(v, w)
        return v == w
    return a.keys() == b.keys() and all(eq(v, b[k]) for k, v in a.items())


@pytest.fixture
def store(tmp_path: Path) -> str:
    d = str(tmp_path / "data")
    init_store(d)  # a new store: the trash keeps replaced and deleted files 1 day
    with open_store(d) as s:
        v = s.fs.makedirs("/ckpt/versioned")
        s.fs.set_tree_policy(v.ino, versioning="enabled")
        s.fs.makedirs("/ckpt/trash")
        off = s.fs.makedirs("/ckpt/nothing")
        s.fs.set_tree_policy(off.ino, trash_days=0)
    return d


def test_load_the_version_before_a_bad_save_with_versioning(store: str) -> None:
    ck = TesseraCheckpoint("tessera:///ckpt/versioned", data=store)
    ck.save(good_state(), "latest.pt")
    ck.save(bad_state(), "latest.pt")  # the bad save replaces it
    assert same(ck.load("latest.pt"), bad_state())
    vs = ck.versions("latest.pt")
    assert [v.kind for v in vs] == ["current", "version"] and vs[1].reason == "overwrite"
    assert vs[0].vid != vs[1].vid and "null" not in (vs[0].vid, vs[1].vid)
    assert same(ck.load("latest.pt", version=1), good_state())            # one save back
    assert same(ck.load("latest.pt", version=vs[1].vid), good_state())    # by version id
    assert same(ck.load("latest.pt", version=vs[1]), good_state())        # by the VersionInfo
    assert same(ck.load("latest.pt", version=0), bad_state())
    with ck.reader("latest.pt", version=1) as r:
        assert r.name.startswith("tessera:///ckpt/versioned/latest.pt?versionId=")
        assert r.size == vs[1].size
    ck.save(good_state() | {"step": 102}, "latest.pt")  # a later save keeps shifting the history
    assert [v.kind for v in ck.versions("latest.pt")] == ["current", "version", "version"]
    assert same(ck.load("latest.pt", version=2), good_state())
    with pytest.raises(FileNotFoundError):
        ck.load("latest.pt", version=3)
    with pytest.raises(FileNotFoundError):
        ck.load("latest.pt", version="no-such-id")
    with pytest.raises(ValueError):
        ck.load("other.pt", version=vs[1])  # a version of another path


def test_load_the_previous_checkpoint_from_the_trash(store: str) -> None:
    ck = TesseraCheckpoint("tessera:///ckpt/trash", data=store)
    ck.save(good_state(), "latest.pt")
    ck.save(bad_state(), "latest.pt")
    vs = ck.versions("latest.pt")
    assert [(v.kind, v.vid) for v in vs] == [("current", "null"), ("trash", "null")]
    assert vs[1].expires_ns is not None and vs[1].by_name == "root"
    assert same(ck.load("latest.pt", version=1), good_state())
    assert same(ck.load("latest.pt", version=vs[1]), good_state())
    assert same(ck.load("latest.pt", version="null"), bad_state())  # the id is ambiguous: the live file wins
    with open_store(store) as s:  # the checkpoint deleted by mistake: its content is still there
        d = s.fs.resolve("/ckpt/trash")
        s.fs.unlink(d.ino, "latest.pt")
    vs = ck.versions("latest.pt")
    assert [v.kind for v in vs] == ["trash", "trash"] and vs[0].reason == "delete"
    assert same(ck.load("latest.pt", version=0), bad_state())
    assert same(ck.load("latest.pt", version=1), good_state())
    with pytest.raises(FileNotFoundError):
        ck.load("latest.pt")


def test_nothing_kept_without_trash_or_versioning(store: str) -> None:
    ck = TesseraCheckpoint("tessera:///ckpt/nothing", data=store)
    ck.save(good_state(), "latest.pt")
    ck.save(bad_state(), "latest.pt")
    assert [v.kind for v in ck.versions("latest.pt")] == ["current"]
    with pytest.raises(FileNotFoundError, match="no version 1 back"):
        ck.load("latest.pt", version=1)


def test_s3_checkpoints_say_versions_need_tessera() -> None:
    ck = TesseraCheckpoint("s3://bucket/ckpt", endpoint="http://127.0.0.1:9")
    with pytest.raises(NotImplementedError, match="tessera://"):
        ck.versions("latest.pt")


def test_fsspec_reads_a_version(store: str) -> None:
    import fsspec
    fs = fsspec.filesystem("tessera", data=store)
    for d in ("versioned", "trash"):
        path = f"/ckpt/{d}/fs.pt"
        with fs.open(path, "wb") as f:
            torch.save(good_state(), f)
        fs.pipe_file(path, b"torn save")
        vs = fs.object_version_info(f"tessera://{path}")
        assert [v["kind"] for v in vs] == ["current", "version" if d == "versioned" else "trash"]
        assert vs[0]["is_latest"] and vs[1]["size"] > 10_000_000 and vs[1]["reason"] == "overwrite"
        assert fs.info(path)["version_id"] == vs[0]["version_id"]
        url = f"tessera://{path}?versionId=" + ("~1" if d == "trash" else vs[1]["version_id"])
        with fsspec.open(url, "rb", data=store) as f:  # the URL form
            assert same(torch.load(f), good_state())
        with fs.open(path, "rb", version_id="~1") as f:  # the keyword form
            assert same(torch.load(f), good_state())
        assert fs.info(path, version_id="~1")["size"] == vs[1]["size"]
        assert fs.cat_file(path, version_id="~0") == b"torn save"
        assert fs.cat_file(path) == b"torn save"
        assert fs.cat_file(f"{path}?versionId=~1", start=0, end=2) == b"PK"  # torch.save writes a zip
        with pytest.raises(FileNotFoundError):
            fs.info(path, version_id="~2")
        with pytest.raises(ValueError, match="read only"):
            fs.open(path, "wb", version_id="~1")
