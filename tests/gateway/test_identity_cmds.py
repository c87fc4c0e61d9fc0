"""``tessera user|group|user key`` as operators and scripts run them."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.store import init_store
from gateway.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data(tmp_path: Path) -> str:
    d = str(tmp_path / "data")
    init_store(d, targets=[f"mem:{i}" for i in range(6)], cell=64 * 1024)
    return d


def cli(capsys: pytest.CaptureFixture[str], data: str, *args: str, ok: bool = True) -> tuple[int, str, str]:
    rc = main(["--data", data, *args])
    out, err = capsys.readouterr()
    if ok:
        assert rc == 0, err
    return rc, out, err


def js(capsys: pytest.CaptureFixture[str], data: str, *args: str) -> Any:
    return json.loads(cli(capsys, data, *args, "--json")[1])


def fails(capsys: pytest.CaptureFixture[str], data: str, *args: str, match: str) -> None:
    rc, _, err = cli(capsys, data, *args, ok=False)
    assert rc == 1 and err.startswith("tessera: error:") and err.count("\n") == 1, err
    assert match in err, err


def test_user_add_options_and_modify(capsys: pytest.CaptureFixture[str], data: str) -> None:
    staff = js(capsys, data, "group", "add", "staff")
    assert staff["gid"] >= 1000 and staff["members"] == [] and staff["sid"].startswith("S-1-5-21-")
    js(capsys, data, "group", "add", "ops", "--gid", "3001")
    u = js(capsys, data, "user", "add", "alice", "--admin", "--groups", "staff", "--uid", "2000")
    assert (u["uid"], u["gid"], u["groups"], u["admin"]) == (2000, 2000, ["staff"], True)
    assert u["access_key"] and u["secret_key"] and u["sid"].startswith(staff["sid"].rsplit("-", 1)[0])
    m = js(capsys, data, "user", "modify", "alice", "--no-admin", "--groups", "ops,staff", "--uid", "2100",
           "--gid", "staff")
    assert (m["uid"], m["gid"], m["groups"], m["admin"], m["password"]) == (2100, staff["gid"], ["ops", "staff"],
                                                                           False, False)
    sys.stdin = io.StringIO("s3cret\n")
    try:
        _, out, _ = cli(capsys, data, "user", "modify", "alice", "--password-stdin")
    finally:
        sys.stdin = sys.__stdin__
    assert "alice" in out and "password" in out and "no password" not in out
    listed = js(capsys, data, "user", "list")
    assert [x["name"] for x in listed] == ["alice"] and listed[0]["password"] is True
    assert listed[0]["keys"] == [{"access_key": u["access_key"], "status": "active"}]
    assert "secret" not in json.dumps(listed)
    assert js(capsys, data, "user", "modify", "alice", "--no-password", "--groups", "")["password"] is False
    svc = js(capsys, data, "user", "add", "svc", "--no-key", "--gid", "ops")
    assert svc["access_key"] is None and svc["gid"] == 3001
    _, out, _ = cli(capsys, data, "user", "add", "svc2", "--no-key")
    assert "no S3 keys" in out


def test_groups(capsys: pytest.CaptureFixture[str], data: str) -> None:
    for name in ("alice", "bob"):
        cli(capsys, data, "user", "add", name)
    cli(capsys, data, "group", "add", "staff")
    cli(capsys, data, "group", "adduser", "staff", "alice", "bob")
    assert js(capsys, data, "group", "list")[0]["members"] == ["alice", "bob"]
    cli(capsys, data, "group", "deluser", "staff", "bob")
    _, out, _ = cli(capsys, data, "group", "list")
    assert out.startswith("staff\tgid=") and "alice" in out and "bob" not in out
    cli(capsys, data, "user", "modify", "bob", "--gid", "staff")
    fails(capsys, data, "group", "remove", "staff", match="primary group of bob")
    cli(capsys, data, "user", "remove", "bob")
    cli(capsys, data, "group", "remove", "staff")
    assert js(capsys, data, "group", "list") == []


def test_keys_rotate(capsys: pytest.CaptureFixture[str], data: str) -> None:
    first = js(capsys, data, "user", "add", "alice")
    second = js(capsys, data, "user", "key", "add", "alice")
    assert second["user"] == "alice" and second["access_key"] != first["access_key"] and second["secret_key"]
    rgw = js(capsys, data, "user", "key", "add", "alice", "--access-key", "0555b35654ad1656d804",
             "--secret-key", "h7GhxuBLTrlhVUyxSPUKUV8r/2EI4ngqJxD7iBdBYLhwluN30JaT3Q==")
    assert rgw["access_key"] == "0555b35654ad1656d804"
    keys = js(capsys, data, "user", "key", "list", "alice")
    assert [k["access_key"] for k in keys] == [first["access_key"], second["access_key"], rgw["access_key"]]
    assert all(k["status"] == "active" and k["created"].endswith("Z") for k in keys)
    cli(capsys, data, "user", "key", "disable", "alice", first["access_key"])
    _, out, _ = cli(capsys, data, "user", "key", "list")
    assert f"alice\t{first['access_key']}\tdisabled" in out and "secret" not in out
    _, out, _ = cli(capsys, data, "user", "list")
    assert f"{first['access_key']}(disabled)" in out
    cli(capsys, data, "user", "key", "enable", "alice", first["access_key"])
    cli(capsys, data, "user", "key", "remove", "alice", first["access_key"])
    assert [k["access_key"] for k in js(capsys, data, "user", "key", "list", "alice")] == [
        second["access_key"], rgw["access_key"]]
    fails(capsys, data, "user", "key", "remove", "alice", first["access_key"], match="has no access key")
    cli(capsys, data, "user", "add", "bob", "--no-key")
    fails(capsys, data, "user", "key", "disable", "bob", second["access_key"], match="has no access key")
    fails(capsys, data, "user", "key", "add", "bob", "--access-key", rgw["access_key"], "--secret-key",
          "whatever-secret", match="in use")


def test_exist_ok_reports_the_existing_key(capsys: pytest.CaptureFixture[str], data: str) -> None:
    u = js(capsys, data, "user", "add", "ops")
    js(capsys, data, "user", "key", "add", "ops")  # a second key does not change what the first add reported
    assert js(capsys, data, "user", "add", "ops", "--exist-ok") == u
    minio = ["--access-key", "minio-ops_1", "--secret-key", "minio-secret"]
    m = js(capsys, data, "user", "add", "m", *minio)
    assert js(capsys, data, "user", "add", "m", *minio, "--exist-ok") == m


def test_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], data: str) -> None:
    cli(capsys, data, "user", "add", "alice")
    fails(capsys, data, "user", "modify", "ghost", "--admin", match="no user 'ghost'")
    fails(capsys, data, "user", "modify", "alice", "--gid", "nogroup", match="no group 'nogroup'")
    fails(capsys, data, "user", "modify", "alice", "--groups", "a,b", match="no group 'a'")
    fails(capsys, data, "user", "modify", "alice", "--uid", "-5", match="uid -5 out of range")
    fails(capsys, data, "user", "add", "bob", "--uid", "65534", match="anonymous")
    fails(capsys, data, "user", "add", "bad name", match="invalid user name")
    fails(capsys, data, "group", "add", "bad/name", match="invalid group name")
    fails(capsys, data, "group", "adduser", "nogroup", "alice", match="no group")
    fails(capsys, data, "group", "deluser", "nogroup", "alice", match="no group")
    fails(capsys, data, "group", "remove", "nogroup", match="no group")
    fails(capsys, data, "user", "key", "list", "ghost", match="no user")
    fails(capsys, data, "user", "key", "add", "alice", "--access-key", "ab", "--secret-key", "12345678",
          match="access key")
    fails(capsys, data, "user", "add", "bob", "--no-key", "--access-key", "AKIAIOSFODNN7EXAMPLE", "--secret-key",
          "12345678", match="--no-key")
    fails(capsys, data, "user", "modify", "alice", "--password", "x", "--no-password", match="exclude")


def test_real_process_json_listings(data: str) -> None:
    """One pass through the installed entry point: every listing takes --json."""
    env = {**os.environ, "TESSERA_DATA": data}

    def run(*args: str) -> Any:
        p = subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, env=env, capture_output=True,
                           timeout=120)
        assert p.returncode == 0, p.stderr.decode()
        return json.loads(p.stdout) if "--json" in args else p.stdout.decode()

    run("user", "add", "alice", "--json")
    run("group", "add", "staff", "--json")
    assert [u["name"] for u in run("user", "list", "--json")] == ["alice"]
    assert [g["name"] for g in run("group", "list", "--json")] == ["staff"]
    assert [k["user"] for k in run("user", "key", "list", "--json")] == ["alice"]
