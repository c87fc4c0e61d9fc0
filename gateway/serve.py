"""``tessera serve``: the admin endpoint, background maintenance, clean shutdown.

Protocol servers (S3, NFS, SMB) are added here as their issues land; each runs
as its own process using the core library directly.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import NoReturn

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.errors import ConfigError, StoreError
from core.store import Store, is_store, open_store
from gateway.config import Config, parse_listen
from gateway.metrics import registry

log = logging.getLogger("tessera.serve")


class Child:
    """A protocol server process, restarted with backoff if it dies."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._next = 0.0

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, env=self.env)
        log.info("started", extra={"server": self.name, "pid": self.proc.pid})

    def check(self) -> None:
        if self.proc is None or self.proc.poll() is None:
            return
        now = time.monotonic()
        if self._next == 0.0:
            log.error("server exited; restarting", extra={"server": self.name, "code": self.proc.returncode})
            self._next = now + min(30.0, 0.5 * 2 ** min(self.restarts, 6))
        elif now >= self._next:
            self.restarts += 1
            self._next = 0.0
            self.start()

    def stop(self) -> None:
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def s3_child(cfg: Config, data_dir: str) -> Child:
    """The S3 server as a process: its argv and environment (every uvicorn worker opens the store itself)."""
    s3 = cfg.s3
    env = {**os.environ, "TESSERA_DATA": os.path.abspath(data_dir), "TESSERA_S3_LISTEN": s3.listen,
           "TESSERA_S3_WORKERS": str(s3.workers), "TESSERA_S3_ROOT": s3.root, "TESSERA_S3_REGION": s3.region,
           "TESSERA_S3_DOMAIN": s3.domain or "", "TESSERA_S3_MIN_PART": str(s3.min_part_size),
           "TESSERA_IO_THREADS": str(cfg.store.io_threads), "TESSERA_LOG": cfg.log.level,
           "TESSERA_S3_AUDIT": "1" if s3.audit else "0", "TESSERA_S3_BUCKET_MODE": oct(s3.bucket_mode),
           "TESSERA_S3_OBJECT_MODE": oct(s3.object_mode)}
    if s3.tls.enabled:
        cert = os.path.join(data_dir, s3.tls.cert)
        key = os.path.join(data_dir, s3.tls.key)
        for p in (cert, key):
            if not os.path.exists(p):
                raise ConfigError(f"s3.tls: {p} not found")
        env["TESSERA_S3_CERT"], env["TESSERA_S3_KEY"] = cert, key
    host, port = parse_listen(s3.listen)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:  # fail early, clearly
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    return Child("s3", [sys.executable, "-m", "protocols.s3.server"], env)


def exec_s3(cfg: Config, data_dir: str) -> NoReturn:
    """``serve --role s3``: this process becomes the S3 server (one protocol per container in the appliance)."""
    if not is_store(data_dir):
        raise StoreError(f"no Tessera store in {data_dir} (run 'tessera init' first)")
    child = s3_child(cfg, data_dir)
    log.info("exec s3 server", extra={"data": data_dir, "listen": cfg.s3.listen})
    os.execve(child.argv[0], child.argv, child.env)


class Server:
    """One node's services: the admin endpoint and maintenance, plus (``protocols=True``) the protocol servers
    the config enables as supervised children. The appliance runs it with ``protocols=False`` (``serve --role
    core``) and each protocol in a container of its own (:func:`exec_s3`)."""

    def __init__(self, cfg: Config, data_dir: str, protocols: bool = True) -> None:
        self.cfg = cfg
        self.data_dir = data_dir
        self.protocols = protocols
        self.store: Store = open_store(data_dir, threads=cfg.store.io_threads)
        self.stop = threading.Event()
        self.counters: dict[str, float] = {"gc_runs": 0, "gc_segments_deleted": 0, "repairs_run": 0,
                                           "cells_repaired": 0, "s3_uploads_expired": 0}
        self.httpd: ThreadingHTTPServer | None = None
        self.threads: list[threading.Thread] = []
        self.children: list[Child] = []

    def _bind_admin(self) -> ThreadingHTTPServer:
        host, port = parse_listen(self.cfg.admin.listen)
        reg = registry(self.store, self.counters)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/healthz":
                    h = server.store.health()
                    body = (h.state + "\n").encode()
                    self._send(503 if h.state == "FAILED" else 200, body, "text/plain")
                elif self.path == "/metrics":
                    self._send(200, generate_latest(reg), CONTENT_TYPE_LATEST)
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("admin request", extra={"request": format % args})

        httpd = ThreadingHTTPServer((host, port), Handler)
        httpd.daemon_threads = True
        log.info("admin endpoint listening", extra={"listen": f"{host}:{port}"})
        return httpd

    def _maintenance(self) -> None:
        m = self.cfg.maintenance
        next_gc = m.gc_interval_s
        next_repair = m.repair_interval_s
        next_expiry = 60.0
        elapsed = 0.0
        while not self.stop.wait(1.0):
            elapsed += 1.0
            try:
                self.store.refresh()
                if m.gc_interval_s and elapsed >= next_gc:
                    rep = self.store.collect()
                    self.counters["gc_runs"] += 1
                    self.counters["gc_segments_deleted"] += rep.deleted_segments
                    next_gc = elapsed + m.gc_interval_s
                if m.repair_interval_s and elapsed >= next_repair:
                    if self.store.repair_pending():
                        rep2 = self.store.scrub(repair=True)
                        self.counters["repairs_run"] += 1
                        self.counters["cells_repaired"] += rep2.cells_repaired
                    next_repair = elapsed + m.repair_interval_s
                if self.cfg.s3.enabled and self.cfg.s3.upload_expiry_h and elapsed >= next_expiry:
                    from protocols.s3.multipart import expire_uploads
                    self.counters["s3_uploads_expired"] += expire_uploads(
                        self.store.fs, self.cfg.s3.upload_expiry_h * 3600)
                    next_expiry = elapsed + 3600.0
            except Exception:
                log.exception("maintenance pass failed")

    def run(self) -> int:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("stopping", extra={"signal": signal.Signals(signum).name})
            self.stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        if self.cfg.s3.enabled and self.protocols:
            self.children.append(s3_child(self.cfg, self.data_dir))
        if self.cfg.admin.enabled:
            self.httpd = self._bind_admin()
            self.threads.append(threading.Thread(target=self.httpd.serve_forever, args=(0.2,),
                                                 name="admin", daemon=True))
        self.threads.append(threading.Thread(target=self._maintenance, name="maintenance", daemon=True))
        for th in self.threads:
            th.start()
        for c in self.children:
            c.start()
        log.info("tessera serving", extra={"data": self.data_dir})
        while not self.stop.wait(0.5):
            for c in self.children:
                c.check()
        for c in self.children:
            c.stop()
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
        for th in self.threads:
            th.join(timeout=5)
        self.store.close()
        log.info("stopped")
        return 0
