"""S3 benchmarks against `tessera serve`, each beside core.fs in-process on the same store.

    python bench/s3.py [--size-mib 1024] [--small 4000] [--workers 2]

The client uses presigned URLs over http.client with large readinto/send
buffers so it is not the bottleneck; its CPU-seconds are printed with every
figure so that can be checked.  Parallel GETs are 8 ranged streams of one
object; parallel PUTs are an 8-stream multipart upload.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import boto3
from botocore.config import Config

from core.store import open_store

MiB = 1 << 20
BUF = 8 * MiB


def row(name: str, value: str, ratio: str = "", extra: str = "", goal: str = "") -> None:
    print(f"{name:<46} {value:>12} {ratio:>18} {extra:>16} {goal:>12}", flush=True)


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def settle() -> None:
    """Start each phase from the same state: dirty pages written back, caches dropped if allowed."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def measure(fn: Callable[[], object], warm: bool = False) -> tuple[float, float]:
    """Time fn: after dropping caches, or (warm=True) after one untimed pass that fills them."""
    settle()
    if warm:
        fn()
    c0, t0 = cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, cpu() - c0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Client:
    def __init__(self, endpoint: str, ak: str, sk: str) -> None:
        self.s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                               region_name="us-east-1", config=Config(signature_version="s3v4"))
        self.host = urlsplit(endpoint).netloc
        self.local = threading.local()

    def conn(self) -> http.client.HTTPConnection:
        c = getattr(self.local, "c", None)
        if c is None:
            c = self.local.c = http.client.HTTPConnection(self.host, timeout=300)
            c.connect()
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * MiB)
        return c

    def url(self, op: str, **params: object) -> str:
        u = urlsplit(self.s3.generate_presigned_url(op, Params=params, ExpiresIn=3600))
        return u.path + "?" + u.query

    def get(self, bucket: str, key: str, rng: tuple[int, int] | None = None) -> int:
        c = self.conn()
        c.request("GET", self.url("get_object", Bucket=bucket, Key=key),
                  headers={"Range": f"bytes={rng[0]}-{rng[1]}"} if rng else {})
        r = c.getresponse()
        buf = getattr(self.local, "buf", None) or bytearray(BUF)
        self.local.buf = buf
        mv, n = memoryview(buf), 0
        while got := r.readinto(mv):
            n += got
        assert r.status in (200, 206), r.status
        return n

    def put(self, path: str, data: memoryview) -> str:
        c = self.conn()
        c.putrequest("PUT", path)
        c.putheader("Content-Length", str(len(data)))
        c.endheaders()
        for i in range(0, len(data), BUF):
            c.send(data[i:i + BUF])
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status
        return r.getheader("ETag") or ""


def worker_peaks(root: int) -> list[float]:
    """Peak RSS (MB) of every process under ``root`` running the S3 server."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{pid}/status") as f:
                status = f.read()
        except OSError:
            continue
        if b"protocols.s3.server" in cmd or (b"multiprocessing" in cmd and b"spawn" in cmd):
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    out.append(int(line.split()[1]) / 1024)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--small", type=int, default=4000)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    size = a.size_mib * MiB
    base = tempfile.mkdtemp(prefix="tessera-s3bench-", dir=os.getcwd())
    data_dir = os.path.join(base, "data")
    tessera = [sys.executable, "-m", "gateway.cli", "--data", data_dir]
    subprocess.run([*tessera, "init"], check=True, capture_output=True)
    user = json.loads(subprocess.run([*tessera, "user", "add", "bench", "--json"], check=True,
                                     capture_output=True, text=True).stdout)
    port = free_port()
    with open(os.path.join(data_dir, "tessera.yaml"), "w") as f:
        f.write(f"admin:\n  enabled: false\nlog:\n  level: warning\ns3:\n  listen: 127.0.0.1:{port}\n"
                f"  workers: {a.workers}\nmaintenance:\n  gc_interval_s: 0\n")
    srv = subprocess.Popen([*tessera, "serve"])
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        run(Client(f"http://127.0.0.1:{port}", user["access_key"], user["secret_key"]), data_dir, size, a)
        peaks = worker_peaks(srv.pid)
        row("server peak RSS per S3 worker (VmHWM)", f"{max(peaks, default=0):.0f} MB", "", "",
            "< 300 MB")
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(30)
        shutil.rmtree(base, ignore_errors=True)


def run(cl: Client, data_dir: str, size: int, a: argparse.Namespace) -> None:
    print(f"# bench/s3.py: {os.cpu_count()} cores, {a.workers} uvicorn workers, object {size // MiB} MiB")
    row("benchmark", "figure", "vs core.fs", "client CPU s", "goal")
    cl.s3.create_bucket(Bucket="bench")
    payload = memoryview(os.urandom(BUF) * (size // BUF))
    mb = size / 1e6
    # -- core.fs in-process, same store, same bytes -------------------------------------
    st = open_store(data_dir)
    fs = st.fs
    d = fs.makedirs("/corebench")

    def core_put() -> None:
        stg = fs.stager()
        for i in range(0, size, BUF):
            stg.write(payload[i:i + BUF])
        fs.write_file(d.ino, "big", stg)
    t_cput, _ = measure(core_put)
    ino = fs.lookup(d.ino, "big").ino

    def core_get() -> None:
        buf = memoryview(bytearray(BUF))
        off = 0
        while off < size:
            off += fs.read_committed(ino, off, buf)
    t_cget, _ = measure(core_get, warm=True)
    # -- S3: single stream ----------------------------------------------------------------
    t_put, c_put = measure(lambda: cl.put(cl.url("put_object", Bucket="bench", Key="big"), payload))
    row("PUT 1 stream", f"{mb / t_put:.0f} MB/s", f"{t_cput / t_put:.2f}x ({mb / t_cput:.0f})", f"{c_put:.1f}",
        ">= 400 MB/s")
    t_get, c_get = measure(lambda: cl.get("bench", "big"), warm=True)
    row("GET 1 stream (warm)", f"{mb / t_get:.0f} MB/s", f"{t_cget / t_get:.2f}x ({mb / t_cget:.0f})", f"{c_get:.1f}")
    # -- S3: 8 streams ------------------------------------------------------------------
    part = size // 8
    up = cl.s3.create_multipart_upload(Bucket="bench", Key="mp")["UploadId"]

    def put_part(i: int) -> dict[str, object]:
        u = cl.url("upload_part", Bucket="bench", Key="mp", UploadId=up, PartNumber=i + 1)
        return {"PartNumber": i + 1, "ETag": cl.put(u, payload[i * part:(i + 1) * part])}

    def put8() -> None:
        with ThreadPoolExecutor(8) as ex:
            parts = list(ex.map(put_part, range(8)))
        cl.s3.complete_multipart_upload(Bucket="bench", Key="mp", UploadId=up, MultipartUpload={"Parts": parts})
    t_put8, c_put8 = measure(put8)
    row("PUT 8 streams (multipart, 8 parts)", f"{mb / t_put8:.0f} MB/s", f"{t_cput / t_put8:.2f}x",
        f"{c_put8:.1f}", ">= 400 MB/s")

    def get8() -> None:
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda i: cl.get("bench", "big", (i * part, (i + 1) * part - 1)), range(8)))
    t_get8, c_get8 = measure(get8, warm=True)
    row("GET 8 ranged streams (warm)", f"{mb / t_get8:.0f} MB/s", f"{t_cget / t_get8:.2f}x", f"{c_get8:.1f}",
        ">= 1 GB/s")
    # -- small objects ------------------------------------------------------------------
    small = memoryview(os.urandom(4096))
    n = a.small
    urls = [cl.url("put_object", Bucket="bench", Key=f"small/{i}") for i in range(n)]

    def puts() -> None:
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda u: cl.put(u, small), urls))
    t_sp, c_sp = measure(puts)
    gurls = [cl.url("get_object", Bucket="bench", Key=f"small/{i}") for i in range(n)]

    def get_small(u: str) -> None:
        c = cl.conn()
        c.request("GET", u)
        r = c.getresponse()
        r.read()
        assert r.status == 200

    def gets() -> None:
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(get_small, gurls))
    t_sg, c_sg = measure(gets, warm=True)
    sd = fs.makedirs("/corebench/small")

    def core_small_put() -> None:
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda i: fs.write_file(sd.ino, str(i), small), range(n)))
    t_csp, _ = measure(core_small_put)
    inos = [e.ino for e in fs.listdir(sd.ino)]

    def core_small_get() -> None:
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda i: fs.read(i, 0, 4096), inos))
    t_csg, _ = measure(core_small_get, warm=True)
    row("4 KiB PUT, 8 concurrent clients", f"{n / t_sp:.0f} /s", f"{t_csp / t_sp:.2f}x ({n / t_csp:.0f}/s)",
        f"{c_sp:.1f}", ">= 1000/s")
    row("4 KiB GET, 8 concurrent clients", f"{n / t_sg:.0f} /s", f"{t_csg / t_sg:.2f}x ({n / t_csg:.0f}/s)",
        f"{c_sg:.1f}", ">= 2000/s")
    st.close()


if __name__ == "__main__":
    main()
