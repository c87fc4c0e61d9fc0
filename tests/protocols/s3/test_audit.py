"""The audit log (s3.audit: true on conftest.s3hard): one JSON line per request on tessera.s3.audit."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from tests.protocols.s3.conftest import S3Server, free_port


def _lines(srv: S3Server) -> list[dict[str, Any]]:
    out = []
    for line in (srv.data.parent / "stderr.log").read_text(errors="replace").splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            if d.get("logger") == "tessera.s3.audit":
                out.append(d)
    return out


def _wait_for(srv: S3Server, pred: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        hits = [d for d in _lines(srv) if pred(d)]
        if hits:
            return hits[-1]
        time.sleep(0.1)
    raise AssertionError("no such audit line")


def test_one_line_per_request_with_who_what_and_how_much(s3hard: S3Server) -> None:
    c = s3hard.client()
    b = f"audit-{os.getpid()}-{time.monotonic_ns()}"
    c.create_bucket(Bucket=b)
    data = os.urandom(12345)
    c.put_object(Bucket=b, Key="dir/obj", Body=data)
    assert c.get_object(Bucket=b, Key="dir/obj")["Body"].read() == data
    put = _wait_for(s3hard, lambda d: d["op"] == "PutObject" and d["bucket"] == b)
    get = _wait_for(s3hard, lambda d: d["op"] == "GetObject" and d["bucket"] == b)
    assert put["principal"] == "tester" and put["key"] == "dir/obj" and put["status"] == 200
    assert put["bytes_in"] == len(data) and put["remote"] == "127.0.0.1"
    assert get["bytes_out"] == len(data) and get["status"] == 200 and get["ms"] >= 0
    assert len(get["request_id"]) == 16 and get["request_id"] != put["request_id"]
    with pytest.raises(ClientError):
        c.head_object(Bucket=b, Key="missing")
    miss = _wait_for(s3hard, lambda d: d["op"] == "HeadObject" and d["key"] == "missing")
    assert miss["status"] == 404


def test_anonymous_and_refused_requests_are_logged(s3hard: S3Server) -> None:
    r = requests.get(f"{s3hard.endpoint}/nobody-{os.getpid()}/secret", timeout=10)
    assert r.status_code in (403, 404)
    d = _wait_for(s3hard, lambda d: d["key"] == "secret" and d["bucket"] == f"nobody-{os.getpid()}")
    assert d["principal"] == "anonymous" and d["op"] == "GetObject" and d["status"] == r.status_code
    assert d["request_id"] == r.headers["x-amz-request-id"]


def test_off_by_default(tmp_path: Path) -> None:
    from gateway.config import Config
    from gateway.protocols import S3, Paths
    listen = f"127.0.0.1:{free_port()}"
    paths = Paths(str(tmp_path), str(tmp_path / "tessera.yaml"))
    cfg = Config.model_validate({"s3": {"listen": listen}})
    assert S3.child(cfg, paths).env["TESSERA_S3_AUDIT"] == "0"
    cfg = Config.model_validate({"s3": {"listen": listen, "audit": True}})
    assert S3.child(cfg, paths).env["TESSERA_S3_AUDIT"] == "1"
