"""Bucket versioning with aws-cli, unmodified: put/get-bucket-versioning, list-object-versions (paged by the
CLI itself), get-object/head-object/delete-object --version-id, and a delete marker."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.protocols.s3.conftest import S3Server
from tests.protocols.s3.test_clients import BIN

pytestmark = pytest.mark.timeout(300)


def aws(s3: S3Server, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([str(BIN / "aws"), "--endpoint-url", s3.endpoint, "--output", "json", *args], env=s3.env(),
                       capture_output=True, text=True, timeout=120)
    assert (p.returncode == 0) == ok, p.stderr
    return p


def api(s3: S3Server, *args: str) -> Any:
    out = aws(s3, "s3api", *args).stdout
    return json.loads(out) if out.strip() else {}


def test_versioning_with_aws_cli(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    assert "Status" not in api(s3, "get-bucket-versioning", "--bucket", bucket)
    api(s3, "put-bucket-versioning", "--bucket", bucket, "--versioning-configuration", "Status=Enabled")
    assert api(s3, "get-bucket-versioning", "--bucket", bucket)["Status"] == "Enabled"
    vids = []
    for i in range(3):
        src = tmp_path / f"v{i}"
        src.write_bytes(f"version {i}".encode())
        vids.append(api(s3, "put-object", "--bucket", bucket, "--key", "dir/a b.txt", "--body", str(src))["VersionId"])
    assert len(set(vids)) == 3
    # the CLI pages on its own (--page-size): KeyMarker + VersionIdMarker inside one key
    got = api(s3, "list-object-versions", "--bucket", bucket, "--page-size", "1")
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in got["Versions"]] == [
        ("dir/a b.txt", vids[2], True), ("dir/a b.txt", vids[1], False), ("dir/a b.txt", vids[0], False)]
    out = tmp_path / "out"
    r = api(s3, "get-object", "--bucket", bucket, "--key", "dir/a b.txt", "--version-id", vids[0], str(out))
    assert r["VersionId"] == vids[0] and out.read_bytes() == b"version 0"
    assert api(s3, "head-object", "--bucket", bucket, "--key", "dir/a b.txt", "--version-id", vids[1])[
        "ContentLength"] == len(b"version 1")
    r = api(s3, "delete-object", "--bucket", bucket, "--key", "dir/a b.txt")
    assert r["DeleteMarker"] is True
    marker = r["VersionId"]
    p = aws(s3, "s3api", "get-object", "--bucket", bucket, "--key", "dir/a b.txt", str(out), ok=False)
    assert "NoSuchKey" in p.stderr
    got = api(s3, "list-object-versions", "--bucket", bucket, "--prefix", "dir/")
    assert [(m["Key"], m["VersionId"], m["IsLatest"]) for m in got["DeleteMarkers"]] == [
        ("dir/a b.txt", marker, True)]
    r = api(s3, "delete-object", "--bucket", bucket, "--key", "dir/a b.txt", "--version-id", marker)
    assert r["DeleteMarker"] is True and r["VersionId"] == marker
    api(s3, "delete-object", "--bucket", bucket, "--key", "dir/a b.txt", "--version-id", vids[2])
    api(s3, "get-object", "--bucket", bucket, "--key", "dir/a b.txt", str(out))
    assert out.read_bytes() == b"version 1"  # the newest remaining version is current again
    api(s3, "put-bucket-versioning", "--bucket", bucket, "--versioning-configuration", "Status=Suspended")
    assert api(s3, "get-bucket-versioning", "--bucket", bucket)["Status"] == "Suspended"
    src = tmp_path / "n"
    src.write_bytes(b"null")
    assert api(s3, "put-object", "--bucket", bucket, "--key", "dir/a b.txt", "--body", str(src))["VersionId"] == "null"
    got = api(s3, "list-object-versions", "--bucket", bucket)
    assert [(v["VersionId"], v["IsLatest"]) for v in got["Versions"]] == [("null", True), (vids[1], False),
                                                                          (vids[0], False)]
