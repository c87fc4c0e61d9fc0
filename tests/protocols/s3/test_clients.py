"""Real S3 clients, unmodified: aws-cli, rclone, s3cmd, s3fs — and the same files through core.fs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from core.store import open_store
from tests.protocols.s3.conftest import S3Server

BIN = Path(sys.executable).parent


def aws(s3: S3Server, *args: str) -> str:
    p = subprocess.run([str(BIN / "aws"), "--endpoint-url", s3.endpoint, *args], env=s3.env(),
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p.stdout


def tree(root: Path, n: int = 5) -> dict[str, bytes]:
    files = {}
    for i in range(n):
        rel = f"d{i % 2}/sub/f{i}.bin" if i else "top.txt"
        data = os.urandom(1000 * (i + 1) + (9 * 1024 * 1024 if i == 3 else 0))
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        files[rel] = data
    return files


def test_aws_cli(s3: S3Server, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = tree(src)
    aws(s3, "s3", "mb", "s3://awscli")
    assert "awscli" in aws(s3, "s3", "ls")
    aws(s3, "s3", "cp", str(src / "top.txt"), "s3://awscli/single/top.txt")
    aws(s3, "s3", "sync", str(src), "s3://awscli/tree")
    listing = aws(s3, "s3", "ls", "--recursive", "s3://awscli/tree/")
    assert sorted(line.split()[-1] for line in listing.splitlines()) == sorted(f"tree/{k}" for k in files)
    dst = tmp_path / "dst"
    aws(s3, "s3", "sync", "s3://awscli/tree", str(dst))
    for rel, data in files.items():
        assert (dst / rel).read_bytes() == data
    assert aws(s3, "s3", "sync", str(src), "s3://awscli/tree").strip() == ""  # nothing changed
    out = aws(s3, "s3api", "head-object", "--bucket", "awscli", "--key", "single/top.txt")
    assert hashlib.md5(files["top.txt"]).hexdigest() in out
    aws(s3, "s3api", "put-object-tagging", "--bucket", "awscli", "--key", "single/top.txt",
        "--tagging", "TagSet=[{Key=k,Value=v}]")
    assert '"k"' in aws(s3, "s3api", "get-object-tagging", "--bucket", "awscli", "--key", "single/top.txt")
    aws(s3, "s3", "rm", "--recursive", "s3://awscli/")
    aws(s3, "s3", "rb", "s3://awscli")
    assert "awscli" not in aws(s3, "s3", "ls")


def test_rclone(s3: S3Server, tmp_path: Path) -> None:
    conf = tmp_path / "rclone.conf"
    conf.write_text(f"[t]\ntype = s3\nprovider = Other\naccess_key_id = {s3.access_key}\n"
                    f"secret_access_key = {s3.secret_key}\nendpoint = {s3.endpoint}\nregion = us-east-1\n")
    src = tmp_path / "src"
    files = tree(src)

    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # rclone refuses it on plain HTTP

    def rclone(*args: str) -> str:
        p = subprocess.run(["rclone", "--config", str(conf), "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M",
                            *args], capture_output=True, text=True, timeout=300, env=env)
        assert p.returncode == 0, p.stderr
        return p.stdout
    rclone("mkdir", "t:rclone")
    rclone("copy", str(src), "t:rclone/data")
    assert sorted(rclone("lsf", "-R", "--files-only", "t:rclone/data").split()) == sorted(files)
    rclone("check", str(src), "t:rclone/data")  # compares sizes and MD5s
    dst = tmp_path / "dst"
    rclone("copy", "t:rclone/data", str(dst))
    for rel, data in files.items():
        assert (dst / rel).read_bytes() == data
    rclone("purge", "t:rclone")


def test_s3cmd(s3: S3Server, tmp_path: Path) -> None:
    host = s3.endpoint.split("//")[1]
    cfg = tmp_path / "s3cfg"
    cfg.write_text(f"[default]\naccess_key = {s3.access_key}\nsecret_key = {s3.secret_key}\nhost_base = {host}\n"
                   f"host_bucket = {host}\nuse_https = False\nsignature_v2 = False\nmultipart_chunk_size_mb = 5\n")

    def s3cmd(*args: str) -> str:
        p = subprocess.run([str(BIN / "s3cmd"), "-c", str(cfg), *args], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr + p.stdout
        return p.stdout
    src = tmp_path / "src"
    files = tree(src)
    s3cmd("mb", "s3://s3cmd")
    s3cmd("put", "--recursive", str(src) + "/", "s3://s3cmd/data/")
    listed = s3cmd("ls", "--recursive", "s3://s3cmd/data/")
    assert len(listed.strip().splitlines()) == len(files)
    out = tmp_path / "got.bin"
    s3cmd("get", "s3://s3cmd/data/d1/sub/f3.bin", str(out))
    assert out.read_bytes() == files["d1/sub/f3.bin"]
    assert "MD5 sum" in s3cmd("info", "s3://s3cmd/data/top.txt")
    s3cmd("del", "--recursive", "--force", "s3://s3cmd/data/")
    s3cmd("rb", "s3://s3cmd")


def test_s3fs_fsspec(s3: S3Server, bucket: str) -> None:
    import s3fs
    fs = s3fs.S3FileSystem(key=s3.access_key, secret=s3.secret_key, endpoint_url=s3.endpoint,
                           client_kwargs={"region_name": "us-east-1"}, use_listings_cache=False)
    with fs.open(f"{bucket}/fsspec/a.txt", "wb") as f:
        f.write(b"hello fsspec")
    fs.pipe(f"{bucket}/fsspec/sub/b.bin", os.urandom(6 * 1024 * 1024))
    assert fs.cat(f"{bucket}/fsspec/a.txt") == b"hello fsspec"
    assert sorted(fs.find(f"{bucket}/fsspec")) == [f"{bucket}/fsspec/a.txt", f"{bucket}/fsspec/sub/b.bin"]
    assert fs.glob(f"{bucket}/fsspec/*.txt") == [f"{bucket}/fsspec/a.txt"]
    assert fs.info(f"{bucket}/fsspec/sub/b.bin")["size"] == 6 * 1024 * 1024
    with fs.open(f"{bucket}/fsspec/a.txt", "rb") as f:
        f.seek(6)
        assert f.read(3) == b"fss"
    fs.rm(f"{bucket}/fsspec", recursive=True)
    assert not fs.exists(f"{bucket}/fsspec/a.txt")


def test_cross_protocol_with_core_fs(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    body = os.urandom(2 * 1024 * 1024 + 17)
    c.put_object(Bucket=bucket, Key="via-s3/obj.bin", Body=body)
    with open_store(str(s3.data)) as st:  # a second process on the same store, as NFS/SMB servers will be
        fs = st.fs
        a = fs.resolve(f"/{bucket}/via-s3/obj.bin")
        assert fs.read(a.ino, 0, a.size) == body
        d = fs.resolve(f"/{bucket}")
        data = os.urandom(300_000)
        fs.write_file(d.ino, "via-core.bin", data)
        sub = fs.mkdir(d.ino, "made-by-core")
        with fs.open(fs.create(sub.ino, "f.txt").ino, write=True) as h:
            h.write(0, b"first")
    keys = [o["Key"] for o in c.list_objects_v2(Bucket=bucket)["Contents"]]
    assert {"via-core.bin", "made-by-core/f.txt", "via-s3/obj.bin"} <= set(keys)
    got = c.get_object(Bucket=bucket, Key="via-core.bin")
    assert got["Body"].read() == data and got["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'  # lazy ETag
    with open_store(str(s3.data)) as st:  # change it behind S3's back: the ETag must follow
        a = st.fs.resolve(f"/{bucket}/made-by-core/f.txt")
        with st.fs.open(a.ino, write=True) as h:
            h.write(5, b" and more")
    h2 = c.head_object(Bucket=bucket, Key="made-by-core/f.txt")
    assert h2["ETag"] == f'"{hashlib.md5(b"first and more").hexdigest()}"' and h2["ContentLength"] == 14
