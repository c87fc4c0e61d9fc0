"""``tessera serve``: the admin endpoint, background maintenance, the protocol servers, clean shutdown.

The protocol servers are the entries of :data:`gateway.protocols.REGISTRY`; each runs as its own process
using the core library directly: supervised children of ``tessera serve`` (role ``all``), or one per
container in the appliance (``serve --role s3|nfs``, beside ``serve --role core``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.store import Store, is_store, open_store
from gateway import config as cfgmod
from gateway import listen
from gateway.common import data_dir as data_dir_of
from gateway.config import Config, parse_listen
from gateway.metrics import registry
from gateway.protocols import BY_ROLE, REGISTRY, ChildSpec, Paths, apply_listen

log = logging.getLogger("tessera.serve")
LIFECYCLE_COUNTERS = ("lifecycle_runs", "lifecycle_current_expired", "lifecycle_noncurrent_purged",
                      "lifecycle_markers_removed", "lifecycle_uploads_aborted", "lifecycle_locked_skipped",
                      "lifecycle_errors", "trash_entries_purged", "trash_bytes_purged")


class Child:
    """A protocol server process, restarted with backoff if it dies."""

    def __init__(self, spec: ChildSpec) -> None:
        self.name, self.argv, self.env = spec.name, spec.argv, spec.env
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


class Server:
    """One node's services: the admin endpoint and maintenance, plus (``protocols=True``) the protocol servers
    the config enables as supervised children. The appliance runs it with ``protocols=False`` (``serve --role
    core``) and each protocol in a container of its own (``serve --role <protocol>``)."""

    def __init__(self, cfg: Config, paths: Paths, protocols: bool = True) -> None:
        self.cfg = cfg
        self.paths = paths
        self.data_dir = paths.data_dir
        self.protocols = protocols
        self.store: Store = open_store(self.data_dir, threads=cfg.store.io_threads,
                                       dead_after=cfg.cluster.dead_after_s)
        self.member = self.store.cluster_member(heartbeat_s=cfg.cluster.heartbeat_s)
        self.stop = threading.Event()
        self.counters: dict[str, float] = {"gc_runs": 0, "gc_segments_deleted": 0, "repairs_run": 0,
                                           "cells_repaired": 0, "s3_uploads_expired": 0, "rebuilds_run": 0,
                                           **{k: 0 for k in LIFECYCLE_COUNTERS}}
        if cfg.trash is not None:
            self.store.fs.set_trash_default(cfg.trash.days, cfg.trash.max_bytes)
            log.info("trash policy", extra={"days": cfg.trash.days, "max_bytes": cfg.trash.max_bytes})
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

        try:
            httpd = ThreadingHTTPServer((host, port), Handler)
        except OSError as e:
            raise listen.bind_error("admin.listen", self.cfg.admin.listen, e,
                                    "another tessera serve? set admin.listen") from None
        httpd.daemon_threads = True
        log.info("admin endpoint listening", extra={"listen": f"{host}:{port}"})
        return httpd

    def _maintenance(self) -> None:
        m = self.cfg.maintenance
        next_gc = m.gc_interval_s
        next_repair = m.repair_interval_s
        next_expiry = 60.0
        next_lifecycle = min(60.0, m.lifecycle_interval_s)
        elapsed = 0.0
        while not self.stop.wait(1.0):
            elapsed += 1.0
            try:
                self.store.refresh()
                if self.member is not None and not self._cluster_duties():
                    continue  # another node runs the cluster's maintenance
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
                if m.lifecycle_interval_s and elapsed >= next_lifecycle:
                    next_lifecycle = elapsed + m.lifecycle_interval_s
                    self.lifecycle_pass()
            except Exception:
                log.exception("maintenance pass failed")

    def lifecycle_pass(self) -> None:
        """Run every tree's lifecycle rules, then expire the trash; count and log what went."""
        from gateway.lifecycle_cmds import run_pass
        fs = self.store.fs
        rep = run_pass(fs, self.cfg.s3.root)
        n, nbytes = fs.expire_trash()
        c = self.counters
        for key, val in (("lifecycle_runs", 1), ("lifecycle_current_expired", rep.expired),
                         ("lifecycle_noncurrent_purged", rep.noncurrent), ("lifecycle_markers_removed", rep.markers),
                         ("lifecycle_uploads_aborted", rep.uploads), ("lifecycle_locked_skipped", rep.locked),
                         ("lifecycle_errors", len(rep.errors)), ("trash_entries_purged", n),
                         ("trash_bytes_purged", nbytes)):
            c[key] += val
        for e in rep.errors:
            log.warning("lifecycle rule failed", extra={"error": e})
        log.info("lifecycle pass", extra={"trees": rep.trees, "expired": rep.expired, "noncurrent": rep.noncurrent,
                                          "markers": rep.markers, "uploads": rep.uploads, "locked": rep.locked,
                                          "errors": len(rep.errors), "trash_purged": n, "trash_bytes": nbytes})

    def _cluster_duties(self) -> bool:
        """The maintenance leader fails the targets of nodes silent too long and rebuilds their cells on the
        others; False when another node leads."""
        assert self.member is not None
        if not self.member.leader():
            return False
        self.member.fail_dead_nodes()
        if self.cfg.cluster.auto_rebuild and self.store.rebuild_needed():
            rep = self.store.rebuild()
            self.counters["rebuilds_run"] += 1
            log.info("rebuild pass", extra={"segments": rep.segments, "shards": rep.shards, "lost": len(rep.lost),
                                            "waiting": len(rep.waiting)})
        return True

    def _start_member(self) -> None:
        """A cluster node: serve this node's targets to the others and announce where its services are."""
        assert self.member is not None
        me = self.member.me
        host = me.addr.rpartition(":")[0]
        endpoints = {"target": me.addr}
        if self.cfg.s3.enabled:
            scheme = "https" if self.cfg.s3.tls.enabled else "http"
            endpoints["s3"] = f"{scheme}://{host}:{parse_listen(self.cfg.s3.listen)[1]}"
        if self.cfg.admin.enabled:
            endpoints["admin"] = f"http://{host}:{parse_listen(self.cfg.admin.listen)[1]}"
        listen_at = self.cfg.cluster.target_listen or me.addr
        try:
            port = self.member.start(listen_at, endpoints)
        except OSError as e:
            raise listen.bind_error("cluster.target_listen", listen_at, e, "set cluster.target_listen") from None
        log.info("cluster node serving its targets", extra={"node": me.name, "listen": listen_at, "port": port})

    def run(self) -> int:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("stopping", extra={"signal": signal.Signals(signum).name})
            self.stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        if self.protocols:
            enabled = [e for e in REGISTRY if e.section(self.cfg).enabled]
            self.children = [Child(e.child(self.cfg, self.paths)) for e in enabled]
            for e in enabled:  # every listen address checked before anything starts
                e.probe(self.cfg)
        if self.cfg.admin.enabled:
            self.httpd = self._bind_admin()
            self.threads.append(threading.Thread(target=self.httpd.serve_forever, args=(0.2,),
                                                 name="admin", daemon=True))
        if self.member is not None:
            self._start_member()
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
        if self.member is not None:
            self.member.stop()
        self.store.close()
        log.info("stopped")
        return 0


def serve_cmd(args: argparse.Namespace) -> int:
    """``tessera serve [--config FILE] [--role ROLE] [--<protocol>-listen HOST:PORT ...]``."""
    from gateway import logs
    d = data_dir_of(args)
    path = args.config or os.path.join(d, cfgmod.CONFIG_NAME)
    if not args.config and not os.path.exists(path) and is_store(d):
        cfgmod.write_default(d)
    cfg = cfgmod.load(path)
    notes = apply_listen(cfg, {e.name: getattr(args, f"{e.name}_listen", None) for e in REGISTRY})
    logs.setup(cfg.log.level, cfg.log.format)
    paths = Paths(cfg.data_dir(path) if args.config else d, os.path.abspath(path))
    for name, note in notes.items():
        if args.role == name or (args.role == "all" and BY_ROLE[name].section(cfg).enabled):
            print(note, flush=True)
    if args.role in BY_ROLE:
        return BY_ROLE[args.role].run(cfg, paths)
    return Server(cfg, paths, protocols=args.role == "all").run()
