"""Checkpoint round trips (torch.save/load and torch.distributed.checkpoint), bit-identical."""

from __future__ import annotations

import io
import warnings

import pytest
import torch
import torch.distributed.checkpoint as dcp

from protocols.torch import TesseraCheckpoint, TesseraStorageReader, TesseraStorageWriter


def model_state() -> dict[str, object]:
    g = torch.Generator().manual_seed(0)
    return {"layer.w": torch.randn(1024, 1024, generator=g), "layer.b": torch.randn(1024, generator=g),
            "emb": torch.randint(0, 1000, (4096, 64), generator=g, dtype=torch.int32),
            "half": torch.randn(333, 77, generator=g).half(), "step": 1234, "name": "tessera"}


def same(a: dict[str, object], b: dict[str, object]) -> bool:
    if a.keys() != b.keys():
        return False
    for k, v in a.items():
        w = b[k]
        if isinstance(v, torch.Tensor):
            if not (isinstance(w, torch.Tensor) and v.dtype == w.dtype and torch.equal(v, w)):
                return False
        elif v != w:
            return False
    return True


def test_torch_save_load_round_trip_is_bit_identical(store_dir: str) -> None:
    ck = TesseraCheckpoint("tessera:///ckpt/run1", data=store_dir)
    state = model_state()
    with ck.writer("step-1.pt") as f:
        torch.save(state, f)
    ref = io.BytesIO()
    torch.save(state, ref)
    with ck.reader("step-1.pt") as r:
        assert r.size == len(ref.getvalue()) and r.read() == ref.getvalue()  # the very bytes torch.save wrote
    assert same(ck.load("step-1.pt"), state)
    ck.save({"x": torch.arange(5)}, "small.pt")
    assert torch.equal(ck.load("small.pt")["x"], torch.arange(5))


def test_failed_save_publishes_nothing(store_dir: str) -> None:
    ck = TesseraCheckpoint("tessera:///ckpt/run2", data=store_dir)
    ck.save({"v": 1}, "latest.pt")

    class Boom:
        def __reduce__(self) -> object:
            raise RuntimeError("cannot pickle this")
    with pytest.raises(RuntimeError, match="cannot pickle"), ck.writer("latest.pt") as f:
        torch.save({"big": torch.randn(3_000_000), "bad": Boom()}, f)
    assert ck.load("latest.pt") == {"v": 1}  # the previous checkpoint is intact
    with pytest.raises(ValueError):
        ck.writer("../escape.pt")


def test_dcp_round_trip(store_dir: str) -> None:
    state = {"model": {k: v for k, v in model_state().items() if isinstance(v, torch.Tensor)}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # single-process DCP warns that it is single-process
        dcp.save(state, storage_writer=TesseraStorageWriter("tessera:///dcp/ckpt-1", data=store_dir))
        out = {"model": {k: torch.zeros_like(v) for k, v in state["model"].items()}}
        dcp.load(out, storage_reader=TesseraStorageReader("tessera:///dcp/ckpt-1", data=store_dir))
    assert same(out["model"], state["model"])


def test_checkpoints_over_s3(s3_dataset: object) -> None:
    srv = s3_dataset
    kw = {"endpoint": srv.endpoint, "key": srv.access_key, "secret": srv.secret_key}  # type: ignore[attr-defined]
    srv.client().create_bucket(Bucket="ckpts")  # type: ignore[attr-defined]
    ck = TesseraCheckpoint("s3://ckpts/run", **kw)
    state = model_state()
    ck.save(state, "big.pt")  # > 8 MiB: a parallel multipart upload
    assert same(ck.load("big.pt"), state)
    tensors = {"model": {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dcp.save(tensors, storage_writer=TesseraStorageWriter("s3://ckpts/dcp", **kw))
        out = {"model": {k: torch.zeros_like(v) for k, v in tensors["model"].items()}}
        dcp.load(out, storage_reader=TesseraStorageReader("s3://ckpts/dcp", **kw))
    assert same(out["model"], tensors["model"])
