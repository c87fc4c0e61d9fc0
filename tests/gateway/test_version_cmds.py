"""tessera versions / restore / trash / versioning / retention / hold, run as users run them: a real
``tessera`` subprocess per command on a real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


def run(data: Path, *args: str, input: bytes | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TESSERA_DATA": str(data)}
    p = subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, env=env, input=input,
                       capture_output=True, timeout=120)
    out = subprocess.CompletedProcess(p.args, p.returncode, p.stdout.decode(), p.stderr.decode())
    if ok:
        assert p.returncode == 0, out.stderr
    return out


def put(data: Path, path: str, body: bytes) -> None:
    run(data, "put", "-", path, input=body)


def get(data: Path, path: str) -> bytes:
    env = {**os.environ, "TESSERA_DATA": str(data)}
    p = subprocess.run([sys.executable, "-m", "gateway.cli", "get", path, "-"], cwd=ROOT, env=env,
                       capture_output=True, timeout=120, check=True)
    return p.stdout


def js(data: Path, *args: str) -> Any:
    return json.loads(run(data, *args, "--json").stdout)


def refused(data: Path, *args: str, input: bytes | None = None) -> str:
    """The command fails with exit status 1 and one clear error line (no traceback)."""
    p = run(data, *args, input=input, ok=False)
    assert p.returncode == 1, (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tessera: error: "), p.stderr
    return lines[0]


@pytest.fixture
def store(tmp_path: Path, meta_backend: str, request: pytest.FixtureRequest) -> Path:
    d = tmp_path / "data"
    meta = ["--meta", str(request.getfixturevalue("pg_url"))] if meta_backend == "pg" else []
    run(d, "init", "--targets", "3", *meta)
    return d


both_engines = pytest.mark.parametrize("meta_backend", ["sqlite", "pg"], indirect=True)


def test_versions_and_restore(store: Path) -> None:
    run(store, "mkdir", "-p", "/b")
    assert js(store, "versioning", "/b")["versioning"] == "off"
    out = run(store, "versioning", "/b", "enable").stdout
    assert "versioning enabled (set here)" in out
    for body in (b"one", b"two!", b"three"):
        put(store, "/b/f", body)
    doc = js(store, "versions", "/b/f")
    vs = doc["versions"]
    assert [v["kind"] for v in vs] == ["current", "version", "version"]
    assert [v["size"] for v in vs] == [5, 4, 3]
    assert len({v["vid"] for v in vs}) == 3 and all(v["vid"] != "null" for v in vs)
    assert vs[1]["reason"] == "overwrite" and vs[1]["by_name"] == "root" and vs[1]["replaced_ns"] > 0
    assert doc["kept"] == {"count": 2, "bytes": 7}
    table = run(store, "versions", "/b/f").stdout
    assert all(v["vid"] in table for v in vs) and "overwrite" in table
    assert "2 kept versions hold 7 B (7 bytes)" in table

    first = vs[2]["vid"]
    out = run(store, "restore", "/b/f", "--version", first).stdout
    assert out.startswith(f"restored /b/f version {first} as /b/f (3 bytes")
    assert get(store, "/b/f") == b"one"
    run(store, "restore", "/b/f", "--version", vs[1]["vid"], "--to", "/c/copy")
    assert get(store, "/c/copy") == b"two!"
    assert len(js(store, "versions", "/b/f")["versions"]) == 4  # the restore kept what it replaced

    run(store, "rm", "/b/f")
    after = js(store, "versions", "/b/f")["versions"]
    assert after[0]["kind"] == "marker" and after[0]["latest"] and "current" not in [v["kind"] for v in after]
    assert "marker" in run(store, "versions", "/b/f").stdout
    run(store, "restore", "/b/f")  # the newest kept version: what was current when it was deleted
    assert get(store, "/b/f") == b"one"
    assert "no kept version nosuchversion" in refused(store, "restore", "/b/f", "--version", "nosuchversion")
    assert "no such file" in refused(store, "versions", "/b/none")


@both_engines
def test_trash_list_restore_and_empty(store: Path) -> None:
    run(store, "mkdir", "-p", "/d/sub")
    put(store, "/d/a", b"A" * 100)
    put(store, "/d/sub/b", b"B" * 50)
    put(store, "/x", b"x-content")
    put(store, "/x", b"x-new")  # an overwrite goes to the trash (new stores keep it 1 day) but is no deletion
    run(store, "rm", "-r", "/d")
    doc = js(store, "trash", "list")
    got = {e["path"]: e for e in doc["entries"]}
    assert set(got) == {"/d", "/d/a", "/d/sub", "/d/sub/b"}
    assert got["/d"]["type"] == "dir" and got["/d"]["reason"] == "rmdir"
    assert got["/d/a"]["reason"] == "delete" and got["/d/a"]["by_name"] == "root" and got["/d/a"]["size"] == 100
    assert all(e["kind"] == "trash" and e["expires_ns"] > time.time_ns() for e in doc["entries"])
    assert doc["usage"]["trash"]["count"] == 5  # the overwritten /x too
    assert [e["path"] for e in js(store, "trash", "list", "/d/sub")["entries"]] == ["/d/sub/b"]
    table = run(store, "trash", "list", "/d").stdout
    assert "/d/sub/b" in table and "root" in table  # the directory itself is not *under* /d
    assert "3 deleted entries under /d (150 B); kept: 3 trash entries (150 B)" in table

    out = run(store, "trash", "restore", "/d").stdout
    assert out.strip() == "restored directory /d as /d"
    assert run(store, "ls", "/d").stdout.split() == ["a", "sub/"]
    assert get(store, "/d/sub/b") == b"B" * 50 and get(store, "/d/a") == b"A" * 100
    assert js(store, "trash", "list")["entries"] == []
    assert "not in the trash" in refused(store, "trash", "restore", "/d")

    run(store, "rm", "/d/a")
    put(store, "/d/a", b"new a")
    assert "exists" in refused(store, "trash", "restore", "/d/a")
    row = js(store, "trash", "list", "/d")["entries"][0]["row"]
    run(store, "trash", "restore", "/d/a", "--to", "/d/a.old", "--id", str(row))
    assert get(store, "/d/a.old") == b"A" * 100

    run(store, "rm", "/d/sub/b")
    assert "--yes" in refused(store, "trash", "empty")  # stdin is no terminal: no silent purge
    out = run(store, "trash", "empty", "--older-than", "1", "--yes").stdout
    assert out.startswith("purged 0 entries (0 B")
    out = run(store, "trash", "empty", "/d", "--yes").stdout
    assert out.startswith("purged 1 entry (50 B, 50 bytes); 0 kept because locked")
    assert js(store, "trash", "list")["usage"]["trash"]["count"] == 1  # /x's old content is outside /d
    run(store, "trash", "empty", "--yes")
    assert js(store, "trash", "list")["usage"] == {}


def test_trash_empty_keeps_locked_entries(store: Path) -> None:
    put(store, "/k", b"keep me")
    run(store, "rm", "/k")
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))
    run(store, "retention", "/k", "--version", "null", "--mode", "GOVERNANCE", "--until", until)
    put(store, "/other", b"o")
    run(store, "rm", "/other")
    out = run(store, "trash", "empty", "--yes").stdout
    assert out.startswith("purged 1 entry (1 B, 1 bytes); 1 kept because locked")
    assert [e["path"] for e in js(store, "trash", "list")["entries"]] == ["/k"]


def test_policy_commands(store: Path) -> None:
    run(store, "mkdir", "-p", "/p/sub")
    pol = js(store, "trash", "policy", "/p")
    assert pol["trash_days"] == 1.0 and pol["own_trash_days"] is None  # the new store's default
    pol = js(store, "trash", "policy", "/p", "--days", "3", "--max-bytes", "1000")
    assert (pol["trash_days"], pol["trash_bytes"], pol["own_trash_days"]) == (3.0, 1000, 3.0)
    sub = js(store, "trash", "policy", "/p/sub")
    assert (sub["trash_days"], sub["own_trash_days"], sub["path"]) == (3.0, None, "/p/sub")
    out = run(store, "trash", "policy", "/p/sub").stdout
    assert "trash 3 days, at most 1000 B (inherited)" in out
    run(store, "trash", "policy", "/p/sub", "--days", "0")
    put(store, "/p/sub/gone", b"g")
    run(store, "rm", "/p/sub/gone")
    assert js(store, "trash", "list", "/p")["entries"] == []  # no trash in /p/sub
    pol = js(store, "trash", "policy", "/p", "--inherit")
    assert (pol["trash_days"], pol["own_trash_days"], pol["own_trash_bytes"]) == (1.0, None, None)
    assert "--inherit" in refused(store, "trash", "policy", "/p", "--inherit", "--days", "2")
    assert "between 0 and 36500" in refused(store, "trash", "policy", "/p", "--days", "-1")

    assert js(store, "versioning", "/p/sub")["versioning"] == "off"
    assert js(store, "versioning", "/p", "suspend")["own_versioning"] == "suspended"
    assert js(store, "versioning", "/p/sub")["versioning"] == "suspended"
    run(store, "versioning", "/p", "enable")
    assert "versioning enabled (inherited)" in run(store, "versioning", "/p/sub").stdout
    put(store, "/p/file", b"f")
    assert "not a directory" in refused(store, "versioning", "/p/file")
    assert "not found" in refused(store, "versioning", "/nope").lower()


@both_engines
def test_retention_and_hold_refuse_rm(store: Path) -> None:
    run(store, "mkdir", "/r")
    put(store, "/r/c", b"compliance")
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    out = run(store, "retention", "/r/c", "--mode", "compliance", "--until", until).stdout
    assert out.strip() == f"/r/c: compliance retention until {until}; legal hold off; locked"
    line = refused(store, "rm", "/r/c")
    assert line == f"tessera: error: /r/c: cannot remove or replace it: the file is under compliance retention " \
                   f"until {until}"
    assert "compliance" in refused(store, "retention", "/r/c", "--clear", "--bypass-governance")
    assert "/r/c: cannot remove" in refused(store, "rm", "-r", "/r")  # a locked file stops rm -r, by name
    assert get(store, "/r/c") == b"compliance"
    doc = js(store, "retention", "/r/c")
    assert doc["mode"] == "COMPLIANCE" and doc["locked"] and not doc["hold"]

    put(store, "/r/g", b"governed")
    run(store, "retention", "/r/g", "--mode", "GOVERNANCE", "--until", until)
    assert "bypass" in refused(store, "retention", "/r/g", "--clear")
    assert "governance retention" in refused(store, "rm", "/r/g")
    run(store, "retention", "/r/g", "--clear", "--bypass-governance")
    run(store, "rm", "/r/g")

    put(store, "/r/h", b"held")
    assert "legal hold on" in run(store, "hold", "/r/h", "on").stdout
    assert refused(store, "rm", "/r/h") == "tessera: error: /r/h: cannot remove or replace it: the file is " \
                                           "under a legal hold"
    assert js(store, "hold", "/r/h")["hold"] is True
    assert "not locked" in run(store, "hold", "/r/h", "off").stdout
    run(store, "rm", "/r/h")
    assert "ISO 8601" in refused(store, "retention", "/r/c", "--mode", "GOVERNANCE", "--until", "tomorrow")
    assert "go together" in refused(store, "retention", "/r/c", "--mode", "GOVERNANCE")
