"""A store with a small deterministic dataset, and an S3 server over another one."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store import init_store, open_store
from tests.protocols.s3.conftest import S3Server, _start

N = 24


def sample(i: int) -> bytes:
    seed = hashlib.sha256(f"sample-{i}".encode()).digest()
    return (seed * 200)[: 1000 + 97 * i]


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    d = str(tmp_path_factory.mktemp("torchstore") / "data")
    init_store(d)
    with open_store(d) as s:
        train = s.fs.makedirs("/ds/train")
        for i in range(N):
            s.fs.write_file(train.ino, f"s{i:03d}.bin", sample(i))
        other = s.fs.makedirs("/ds/other")
        s.fs.write_file(other.ino, "readme.txt", b"not a sample")
    return d


@pytest.fixture(scope="session")
def s3srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    yield from _start(tmp_path_factory.mktemp("torchs3"), tls=False)


@pytest.fixture(scope="session")
def s3_dataset(s3srv: S3Server) -> S3Server:
    c = s3srv.client()
    c.create_bucket(Bucket="train")
    for i in range(N):
        c.put_object(Bucket="train", Key=f"shards/s{i:03d}.bin", Body=sample(i))
    return s3srv


def expected() -> list[bytes]:
    return [sample(i) for i in range(N)]


__all__ = ["Path"]
