"""The tessera CLI as users and scripts run it: a real subprocess per command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(data: Path, *args: str, input: bytes | None = None, ok: bool = True) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "TESSERA_DATA": str(data)}
    p = subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, env=env, input=input,
                       capture_output=True, timeout=120)
    if ok:
        assert p.returncode == 0, p.stderr.decode()
    return p


@pytest.fixture
def store(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    out = run(d, "init").stdout.decode()
    assert "6 targets, 4+2" in out
    return d


def test_init_options(tmp_path: Path) -> None:
    d = tmp_path / "a"
    assert "3 targets, 1+2" in run(d, "init", "--targets", "3").stdout.decode()
    e = tmp_path / "b"
    paths = [str(tmp_path / f"disk{i}") for i in range(4)]
    args = [x for p in paths for x in ("--target", p)]
    assert "2+2" in run(e, "--data", str(e), "init", *args, "--ec", "2+2").stdout.decode()
    f = tmp_path / "c"
    doms = [x for i in range(4) for x in ("--target-domain", f"disk{i // 2}")]  # two targets on each disk
    paths = [str(tmp_path / f"d{i}") for i in range(4)]
    args = [x for p in paths for x in ("--target", p)]
    run(f, "--data", str(f), "init", *args, *doms, "--ec", "1+1")
    st = json.loads(run(f, "--data", str(f), "status", "--json").stdout)
    assert sorted(t["domain"] for t in st["targets"]) == ["disk0", "disk0", "disk1", "disk1"]
    bad = run(tmp_path / "g", "--data", str(tmp_path / "g"), "init", *args, "--target-domain", "x", ok=False)
    assert bad.returncode == 1 and b"--target-domain" in bad.stderr
    assert os.path.exists(Path(paths[0]) / "target.json")
    for bad in (["--ec", "9+9"], ["--ec", "x"], ["--targets", "0"]):
        p = run(tmp_path / "c", "init", *bad, ok=False)
        assert p.returncode != 0 and p.stderr.decode().startswith("tessera: error:")
        assert b"Traceback" not in p.stderr
    p = run(d, "init", ok=False)
    assert p.returncode == 1 and b"already exists" in p.stderr


def test_put_get_ls_stat_mv_rm(store: Path, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(2_500_000))
    run(store, "mkdir", "-p", "/a/b")
    run(store, "put", str(src), "/a/b/")
    run(store, "put", "-", "/a/stdin.txt", input=b"from stdin")
    assert run(store, "ls", "/a").stdout.decode().split() == ["b/", "stdin.txt"]
    long = run(store, "ls", "-l", "/a/b").stdout.decode()
    assert "2500000" in long and "src.bin" in long and long.startswith("-rw")
    run(store, "get", "/a/b/src.bin", str(tmp_path / "out.bin"))
    assert (tmp_path / "out.bin").read_bytes() == src.read_bytes()
    assert run(store, "get", "/a/stdin.txt", "-").stdout == b"from stdin"
    st = json.loads(run(store, "stat", "--json", "/a/b/src.bin").stdout)
    assert st["size"] == 2_500_000 and st["storage"] == "segments"
    assert sum(s["length"] for s in st["slices"]) == 2_500_000
    assert st["segments"][0]["geometry"] == "4+2" and len(st["segments"][0]["targets"]) == 6
    assert "slice:" in run(store, "stat", "/a/b/src.bin").stdout.decode()
    run(store, "mv", "/a/b/src.bin", "/a/moved.bin")
    run(store, "mv", "/a/moved.bin", "/a/b")  # into a directory
    assert run(store, "ls", "/a/b").stdout.decode().split() == ["moved.bin"]
    p = run(store, "rm", "/a", ok=False)
    assert p.returncode == 1 and b"use -r" in p.stderr
    run(store, "rm", "-r", "/a")
    assert run(store, "ls", "/").stdout == b""


def test_errors_are_one_line(store: Path) -> None:
    for args in (["get", "/missing", "-"], ["ls", "/nope"], ["mkdir", "/x/y"], ["rm", "/nope"],
                 ["stat", "relative"], ["mv", "/nope", "/x"], ["put", "/does/not/exist", "/f"],
                 ["target", "fail", "99"], ["user", "remove", "ghost"]):
        p = run(store, *args, ok=False)
        err = p.stderr.decode()
        assert p.returncode == 1, args
        assert err.startswith("tessera: error:") and err.count("\n") == 1 and "Traceback" not in err, args
    p = run(store, "frobnicate", ok=False)
    assert p.returncode == 2
    p = run(store.parent / "nostore", "ls", "/", ok=False)
    assert b"tessera init" in p.stderr


def test_status_fail_rebuild_scrub(store: Path, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(os.urandom(3_000_000))
    run(store, "put", str(src), "/f")
    st = json.loads(run(store, "status", "--json").stdout)
    assert st["health"] == "OK" and st["degraded_stripes"] == 0
    assert [t["id"] for t in st["targets"]] == list(range(6))
    assert {"id", "path", "state"} <= set(st["targets"][0])
    run(store, "target", "fail", "1")
    st = json.loads(run(store, "status", "--json").stdout)
    assert st["health"] == "DEGRADED" and st["degraded_stripes"] > 0
    assert st["targets"][1]["state"] == "failed"
    new = tmp_path / "newdisk"
    assert "added target 6" in run(store, "target", "add", str(new)).stdout.decode()
    out = run(store, "rebuild").stdout.decode()
    assert "health OK" in out
    st = json.loads(run(store, "status", "--json").stdout)
    assert st["health"] == "OK" and st["degraded_stripes"] == 0
    shutil.rmtree(store / "targets" / "t1")
    assert run(store, "get", "/f", "-").stdout == src.read_bytes()
    out = run(store, "scrub").stdout.decode()
    assert "bad: 0" in out
    # corrupt a shard: scrub reports it (exit 1), --repair fixes it
    shard = next((store / "targets" / "t2" / "shards").iterdir())
    with open(shard, "r+b") as f:
        f.seek(5000)
        f.write(b"\xde\xad" * 50)
    p = run(store, "scrub", ok=False)
    assert p.returncode == 1 and "bad: 0" not in p.stdout.decode()
    assert "repaired cells: 1" in run(store, "scrub", "--repair").stdout.decode()
    assert "bad: 0" in run(store, "scrub").stdout.decode()
    assert "deleted" in run(store, "gc").stdout.decode()


def test_users(store: Path) -> None:
    u = json.loads(run(store, "user", "add", "alice", "--password", "s3cret", "--json").stdout)
    assert set(u) >= {"name", "access_key", "secret_key"} and u["name"] == "alice"
    human = run(store, "user", "add", "bob").stdout.decode()
    assert "access key:" in human and "secret key:" in human
    listed = run(store, "user", "list").stdout.decode()
    assert "alice" in listed and u["access_key"] in listed and u["secret_key"] not in listed
    assert run(store, "user", "add", "alice", ok=False).returncode == 1
    run(store, "user", "remove", "alice")
    assert "alice" not in run(store, "user", "list").stdout.decode()


def test_user_with_given_keys_exist_ok(store: Path) -> None:
    """Config-managed nodes (the appliance) create users with fixed keys on every boot."""
    ak, sk = "AKIATESSERANODE00001", "node-secret-key-0123456789abcdef"
    keyed = ["user", "add", "ops", "--access-key", ak, "--secret-key", sk, "--json"]
    u = json.loads(run(store, *keyed).stdout)
    assert (u["access_key"], u["secret_key"]) == (ak, sk)
    again = json.loads(run(store, *keyed, "--exist-ok").stdout)  # a reboot: same user, nothing changes
    assert again == u
    assert run(store, *keyed, ok=False).returncode == 1  # without --exist-ok it is still an error
    other = run(store, "user", "add", "ops", "--access-key", "AKIAOTHERKEY00000001", "--secret-key", sk,
                "--exist-ok", ok=False)
    assert other.returncode == 1 and b"other keys" in other.stderr
    clash = run(store, "user", "add", "dev", "--access-key", ak, "--secret-key", sk, ok=False)
    assert clash.returncode == 1 and b"another user" in clash.stderr
    for bad in (["--access-key", ak], ["--access-key", "key:with:colons", "--secret-key", sk],
                ["--access-key", "AK/SLASH0000000001", "--secret-key", sk],
                ["--access-key", ak, "--secret-key", "short"]):
        p = run(store, "user", "add", "eve", *bad, ok=False)
        assert p.returncode == 1 and b"Traceback" not in p.stderr and b"key" in p.stderr
