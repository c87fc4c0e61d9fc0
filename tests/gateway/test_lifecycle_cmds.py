"""tessera lifecycle run [--dry-run] [--json]: a real ``tessera`` subprocess on a real store, with rules
set and files made through core.fs (old mtimes stand in for a clock), and S3 tags and uploads as the S3
layer keeps them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from core.store import open_store
from protocols.s3 import uploads
from protocols.s3.objmeta import XATTR, ObjMeta

ROOT = Path(__file__).resolve().parents[2]
DAY = 86400 * 10**9
pytestmark = pytest.mark.timeout(300)


def run(data: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TESSERA_DATA": str(data)}
    p = subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def _rule(**kw: Any) -> dict[str, Any]:
    return {"id": "r", "enabled": True, "prefix": "", "tags": {}, "size_gt": None, "size_lt": None,
            "expire_days": None, "expire_date": None, "expired_object_delete_marker": False,
            "noncurrent_days": None, "newer_noncurrent": None, "abort_multipart_days": None, **kw}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    run(d, "init", "--targets", "3")
    old = time.time_ns() - 10 * DAY
    s = open_store(str(d))
    try:
        fs = s.fs
        b = fs.mkdir(fs.root, "b", 0o777)
        fs.set_tree_policy(b.ino, versioning="enabled", lifecycle=[
            _rule(id="old", prefix="logs/", expire_days=3), _rule(id="tmp", tags={"class": "tmp"}, expire_days=3),
            _rule(id="markers", expired_object_delete_marker=True), _rule(id="mpu", abort_multipart_days=1)])
        logs = fs.mkdir(b.ino, "logs", 0o777)
        fs.write_file(logs.ino, "old.log", b"x" * 1000, mtime_ns=old)
        fs.write_file(logs.ino, "new.log", b"y")
        tagged = ObjMeta(tags={"class": "tmp"}).encode()
        fs.write_file(b.ino, "scratch", b"s" * 10, mtime_ns=old, xattrs={XATTR: tagged})
        fs.write_file(b.ino, "keep", b"k", mtime_ns=old)
        fs.write_file(b.ino, "gone", b"g")
        fs.unlink(b.ino, "gone")
        fs.purge_versions("/b/gone", [v.vid for v in fs.versions("/b/gone") if v.kind == "version"])
        up = fs.mkdir(uploads.root(fs), "0" * 32, 0o700)
        fs.setxattr(up.ino, uploads.UPLOAD, json.dumps({"v": 1, "bucket": "b", "key": "big", "initiated": old,
                                                        "meta": "{}", "user": "root"}).encode())
    finally:
        s.close()
    return d


def test_dry_run_lists_and_changes_nothing_then_run(store: Path) -> None:
    p = run(store, "lifecycle", "run", "--dry-run")
    out = p.stdout
    assert "would expire /b/logs/old.log" in out and "[rule 'old']" in out
    assert "would expire /b/scratch" in out and "/b/keep" not in out and "new.log" not in out
    assert "would remove delete marker /b/gone" in out and "would abort uploads 1 in /b" in out
    assert "(dry run: nothing changed)" in out
    listed = run(store, "ls", "/b/logs").stdout
    assert "old.log" in listed
    rep = json.loads(run(store, "lifecycle", "run", "--dry-run", "--json").stdout)
    assert (rep["dry_run"], rep["expired"], rep["expired_bytes"], rep["markers"], rep["uploads"]) == (
        True, 2, 1010, 1, 1)
    assert {(a["kind"], a["path"]) for a in rep["planned"]} == {
        ("expire", "/b/logs/old.log"), ("expire", "/b/scratch"), ("marker", "/b/gone"), ("uploads", "/b")}
    rep = json.loads(run(store, "lifecycle", "run", "--json").stdout)
    assert (rep["dry_run"], rep["expired"], rep["markers"], rep["uploads"], rep["errors"]) == (False, 2, 1, 1, [])
    assert "planned" not in rep
    assert "old.log" not in run(store, "ls", "/b/logs").stdout
    p = run(store, "lifecycle", "run")
    assert "expire 0 current version(s)" in p.stdout and "dry run" not in p.stdout
    s = open_store(str(store))
    try:
        assert [v.kind for v in s.fs.versions("/b/logs/old.log")] == ["marker", "version"]  # versioned tree
        assert s.fs.versions("/b/gone") == [] and s.fs.listdir(uploads.root(s.fs)) == []
    finally:
        s.close()


def test_bad_rules_are_reported(tmp_path: Path) -> None:
    d = tmp_path / "data"
    run(d, "init", "--targets", "3")
    s = open_store(str(d))
    try:
        b = s.fs.mkdir(s.fs.root, "b", 0o777)
        s.fs.set_tree_policy(b.ino, lifecycle=[{"id": "x", "expire_days": "soon"}])
    finally:
        s.close()
    p = run(d, "lifecycle", "run", ok=False)
    assert p.returncode == 1 and "tessera: error: /b: lifecycle rule 'x': expire_days" in p.stderr
    assert "Traceback" not in p.stderr
    p = run(d, "lifecycle", ok=False)
    assert p.returncode != 0 and "Traceback" not in p.stderr


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _metrics(port: int, want: str, timeout: float = 60) -> str:
    """The admin endpoint's /metrics once it holds ``want``."""
    import urllib.request
    deadline = time.time() + timeout
    body = ""
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                body = str(r.read().decode())
            if want in body:
                return body
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{want!r} not in the metrics:\n{body}")


def test_serve_runs_lifecycle_and_trash_expiry_with_metrics(store: Path) -> None:
    import signal
    s = open_store(str(store))
    try:
        fs = s.fs
        t = fs.mkdir(fs.root, "t", 0o777)
        fs.set_tree_policy(t.ino, trash_days=1e-5)  # under a second
        fs.write_file(t.ino, "f", b"z" * 300)
        fs.unlink(t.ino, "f")
    finally:
        s.close()
    port = _free_port()
    (store / "tessera.yaml").write_text(f"admin:\n  listen: 127.0.0.1:{port}\nmaintenance:\n  gc_interval_s: 0\n"
                                        "  lifecycle_interval_s: 1\ntrash:\n  days: 2.5\n  max_bytes: 123\n")
    p = subprocess.Popen([sys.executable, "-m", "gateway.cli", "--data", str(store), "serve", "--role", "core"],
                         cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        body = _metrics(port, "tessera_lifecycle_current_expired_total 2.0")  # counted once, the first pass
        assert 'tessera_kept_entries{kind="marker"} 2.0' in body  # old.log and scratch: versions under markers
        assert "tessera_lifecycle_runs_total" in body
        assert "tessera_lifecycle_current_expired_total 2.0" in body
        assert "tessera_lifecycle_markers_removed_total 1.0" in body  # /b/gone
        assert "tessera_lifecycle_uploads_aborted_total 1.0" in body
        assert "tessera_trash_entries_purged_total 1.0" in body and "tessera_trash_bytes_purged_total 300.0" in body
        for line in ('tessera_kept_entries{kind="version"} 2.0', 'tessera_kept_bytes{kind="version"} 1010.0',
                     'tessera_kept_entries{kind="trash"} 0.0', "tessera_lifecycle_locked_skipped_total 0.0"):
            assert line in body
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    err = p.stderr.read() if p.stderr else ""
    assert '"msg": "lifecycle pass"' in err and '"msg": "trash policy"' in err and "Traceback" not in err
    s = open_store(str(store))
    try:
        pol = s.fs.tree_policy(s.fs.root)
        assert (pol.trash_days, pol.trash_bytes) == (2.5, 123)
    finally:
        s.close()


@pytest.mark.parametrize("yaml, says", [
    ("trash:\n  days: 40000\n", "trash.days: must be between 0 (no trash) and 36500 days"),
    ("trash:\n  max_bytes: -1\n", "trash.max_bytes: must be 0 (no cap)"),
    ("maintenance:\n  lifecycle_interval_s: -5\n", "maintenance.lifecycle_interval_s: must be 0 (off)"),
])
def test_serve_rejects_bad_lifecycle_and_trash_config(store: Path, yaml: str, says: str) -> None:
    (store / "tessera.yaml").write_text(yaml)
    p = subprocess.run([sys.executable, "-m", "gateway.cli", "--data", str(store), "serve", "--role", "core"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and says in p.stderr and "Traceback" not in p.stderr
