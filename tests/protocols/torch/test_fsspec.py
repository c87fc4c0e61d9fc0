"""The tessera:// fsspec filesystem: what pandas/pyarrow/HF datasets/Lightning call."""

from __future__ import annotations

import fsspec
import pytest

from tests.protocols.torch.conftest import N, sample


def test_glob_ls_info_cat(store_dir: str) -> None:
    fs = fsspec.filesystem("tessera", data=store_dir)
    assert len(fs.glob("tessera:///ds/train/*.bin")) == N
    assert fs.glob("/ds/train/s00[1-3].bin") == [f"/ds/train/s00{i}.bin" for i in (1, 2, 3)]
    assert fs.ls("/ds", detail=False) == ["/ds/other", "/ds/train"]
    info = fs.info("/ds/train/s002.bin")
    assert info["type"] == "file" and info["size"] == len(sample(2))
    assert fs.info("/ds")["type"] == "directory"
    assert fs.cat_file("/ds/train/s003.bin", start=10, end=20) == sample(3)[10:20]
    assert fs.cat_file("/ds/train/s003.bin", start=-5) == sample(3)[-5:]
    with pytest.raises(FileNotFoundError):
        fs.info("/ds/none")
    assert sorted(fs.find("/ds")) == sorted([f"/ds/train/s{i:03d}.bin" for i in range(N)] + ["/ds/other/readme.txt"])


def test_open_write_read_copy_move_remove(store_dir: str) -> None:
    with fsspec.open("tessera:///fsspec/dir/a.txt", "wb", data=store_dir) as f:
        f.write(b"hello ")
        f.write(b"fsspec" * 1000)
    fs = fsspec.filesystem("tessera", data=store_dir)
    with fs.open("/fsspec/dir/a.txt", "rb") as f:
        assert f.read(6) == b"hello "
        f.seek(6000)
        assert f.read(6) == b"fsspec"
    big = b"".join(sample(i) for i in range(N)) * 20
    fs.pipe_file("/fsspec/big.bin", big)
    assert fs.cat("/fsspec/big.bin") == big
    fs.cp_file("/fsspec/big.bin", "/fsspec/copy.bin")  # re-points slices, no data copy
    fs.mv("/fsspec/copy.bin", "/fsspec/dir/moved.bin")
    assert fs.cat("/fsspec/dir/moved.bin") == big
    fs.rm("/fsspec", recursive=True)
    assert not fs.exists("/fsspec")
    with pytest.raises(ValueError, match="TESSERA_DATA"):
        import os
        saved = os.environ.pop("TESSERA_DATA", None)
        try:
            fsspec.filesystem("tessera", skip_instance_cache=True)
        finally:
            if saved is not None:
                os.environ["TESSERA_DATA"] = saved


def test_pandas_and_pyarrow_through_fsspec(store_dir: str) -> None:
    import pandas as pd
    import pyarrow.dataset as pads
    opts = {"data": store_dir}
    df = pd.DataFrame({"id": range(1000), "label": [f"x{i % 7}" for i in range(1000)],
                       "v": [i / 3 for i in range(1000)]})
    df.to_csv("tessera:///tables/t.csv", index=False, storage_options=opts)
    df.to_parquet("tessera:///tables/t.parquet", storage_options=opts)
    assert pd.read_csv("tessera:///tables/t.csv", storage_options=opts).equals(df)
    assert pd.read_parquet("tessera:///tables/t.parquet", storage_options=opts).equals(df)
    fs = fsspec.filesystem("tessera", data=store_dir)
    table = pads.dataset("/tables/t.parquet", filesystem=fs).to_table()
    assert table.num_rows == 1000 and table.column("label")[3].as_py() == "x3"
