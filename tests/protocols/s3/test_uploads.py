"""Multipart upload records: one Complete joins at a time, abandoned claims are taken over, the sweep
removes records of completed uploads without counting them as abandoned uploads."""

from __future__ import annotations

import json
import time

import pytest

from core.fs.fs import FileSystem
from core.store import Store
from protocols.s3 import uploads
from protocols.s3.errors import S3Error


def _upload(fs: FileSystem, upload_id: str, **extra: object) -> int:
    d = fs.mkdir(uploads.root(fs), upload_id, 0o700)
    info = {"v": 1, "bucket": "b", "key": "k", "initiated": time.time_ns(), **extra}
    fs.setxattr(d.ino, uploads.UPLOAD, json.dumps(info).encode())
    return d.ino


def test_one_claim_at_a_time_and_abandoned_claims(mem_store: Store) -> None:
    fs = mem_store.fs
    d = _upload(fs, "u1")
    assert uploads.claim(fs, d)
    assert not uploads.claim(fs, d)  # a second Complete waits
    uploads.release(fs, d)
    assert uploads.claim(fs, d)
    stale = json.dumps({"at": time.time_ns() - int(uploads.STALE_JOIN_S * 2e9)}).encode()
    fs.setxattr(d, uploads.JOINING, stale)  # the holder died long ago
    assert uploads.claim(fs, d)
    assert not uploads.claim(fs, d)


def test_finish_keeps_a_record_and_drops_parts(mem_store: Store) -> None:
    fs = mem_store.fs
    d = _upload(fs, "u2")
    fs.write_file(d, "00001", b"part", xattrs={uploads.PART: b'{"etag": "x", "size": 4, "checksum": null}'})
    assert list(uploads.parts(fs, d)) == [1]
    assert uploads.claim(fs, d)
    uploads.finish(fs, d, uploads.record(fs, d), {"completed": time.time_ns(), "etag": "e-1"})
    assert uploads.parts(fs, d) == {} and uploads.claim(fs, d)  # claim released
    _, info = uploads.load(fs, "u2", "b", "k")
    assert info["done"] == uploads.record(fs, d)["done"]
    with pytest.raises(S3Error) as e:  # a completed upload takes no more parts
        uploads.active(fs, "u2", "b", "k")
    assert e.value.code == "NoSuchUpload"


def test_expiry_counts_abandoned_uploads_only(mem_store: Store) -> None:
    fs = mem_store.fs
    _upload(fs, "open")
    d = _upload(fs, "completed")
    uploads.finish(fs, d, uploads.record(fs, d), {"completed": time.time_ns(), "etag": "e-1"})
    assert uploads.expire(fs, 3600) == 0
    assert uploads.expire(fs, 3600, now_ns=time.time_ns() + 7200 * 10**9) == 1
    assert fs.listdir(uploads.root(fs)) == []
