"""One S3 worker under a small-GET loop: GET/s of a 4 KiB object from 8 keep-alive clients.

    .venv/bin/python bench/s3_loop.py [--seconds 6] [--repo DIR]

``--repo`` runs another checkout's server (e.g. a `git worktree` of an older commit) with this
venv, so a change is measured against its parent in the same session. A py-spy profile of the
worker: run with a long ``--seconds`` and ``py-spy record -p $(pgrep -f protocols.s3.server)``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import boto3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--port", type=int, default=9555)
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="tessera-s3loop-")
    tessera = [sys.executable, "-m", "gateway.cli", "--data", d]

    def run(*a: str) -> str:
        return subprocess.run([*tessera, *a], cwd=args.repo, check=True, capture_output=True, text=True).stdout
    run("init")
    user = json.loads(run("user", "add", "bench", "--json"))
    cfg = Path(d, "tessera.yaml")
    text = cfg.read_text().replace("listen: 0.0.0.0:9000", f"listen: 127.0.0.1:{args.port}")
    text = text.replace("admin:\n  enabled: true", "admin:\n  enabled: false")
    text = text.replace("nfs:\n  enabled: true", "nfs:\n  enabled: false")  # S3 only: no port 2049 needed
    cfg.write_text(text.replace("workers: 2", "workers: 1"))
    srv = subprocess.Popen([*tessera, "serve"], cwd=args.repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", args.port), 1).close()
                break
            except OSError:
                time.sleep(0.2)
        c = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{args.port}", aws_access_key_id=user["access_key"],
                         aws_secret_access_key=user["secret_key"], region_name="us-east-1")
        c.create_bucket(Bucket="bench")
        c.put_object(Bucket="bench", Key="k", Body=os.urandom(4096))
        u = urlsplit(c.generate_presigned_url("get_object", Params={"Bucket": "bench", "Key": "k"}, ExpiresIn=3600))
        path = f"{u.path}?{u.query}"
        done = [0] * 8
        stop = time.time() + args.seconds

        def client(i: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", args.port)
            while time.time() < stop:
                conn.request("GET", path)
                r = conn.getresponse()
                r.read()
                assert r.status == 200, r.status
                done[i] += 1
        ths = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        t0 = time.time()
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        print(f"4 KiB GET, one worker, 8 clients: {sum(done) / (time.time() - t0):,.0f} /s  ({args.repo})")
    finally:
        srv.terminate()
        srv.wait(30)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
