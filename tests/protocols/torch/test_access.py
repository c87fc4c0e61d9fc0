"""The adapter's in-process mode runs as a named user: the same decisions as S3, NFS and SMB,
in the DataLoader's worker processes too."""

from __future__ import annotations

import pytest
from torch.utils.data import DataLoader

from core.store import init_store, open_store
from protocols.torch import TesseraMapDataset


@pytest.fixture(scope="module")
def private_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    d = str(tmp_path_factory.mktemp("torchacl") / "data")
    init_store(d)
    with open_store(d) as s:
        alice = s.identity.add_user("alice")[0]
        s.identity.add_user("carol")
        s.fs.setattr(s.fs.root, mode=0o755)
        home = s.fs.mkdir(s.fs.root, "alice", 0o700, alice.uid, alice.gid)
        mine = s.fs.as_user(alice.cred)
        for i in range(6):
            mine.write_file(home.ino, f"s{i}.bin", bytes([i]) * 100, mode=0o600)
    return d


def as_list(batch: list[bytes]) -> list[bytes]:
    return batch


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_as_the_owner(private_store: str, workers: int) -> None:
    ds = TesseraMapDataset.from_prefix("tessera:///alice", data=private_store, user="alice")
    got = [x for b in DataLoader(ds, batch_size=2, num_workers=workers, collate_fn=as_list) for x in b]
    assert sorted(got) == [bytes([i]) * 100 for i in range(6)]


def test_another_user_is_refused(private_store: str) -> None:
    with pytest.raises(PermissionError):
        TesseraMapDataset.from_prefix("tessera:///alice", data=private_store, user="carol")


def test_workers_keep_the_user(private_store: str) -> None:
    """A dataset indexed as alice and handed to workers as carol's would read nothing it may not."""
    ds = TesseraMapDataset.from_prefix("tessera:///alice", data=private_store, user="alice")
    ds.backend.user = "carol"  # type: ignore[attr-defined]
    with pytest.raises(PermissionError):
        list(DataLoader(ds, batch_size=2, num_workers=2, collate_fn=as_list))


def test_unknown_user_is_an_error(private_store: str) -> None:
    with pytest.raises(Exception, match="no user 'mallory'"):
        TesseraMapDataset.from_prefix("tessera:///alice", data=private_store, user="mallory")
