"""Connection limits, probed with raw sockets as an attacker would (server: conftest.s3hard, 2 workers).

Limits there: head 32 KiB / 64 headers, 2 s to send a head, 2 s body idle, 4 connections per
client address and 6 in all, per worker.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import time
from pathlib import Path

import pytest

from tests.protocols.s3.conftest import S3Server

MIB = 1024 * 1024


def _addr(srv: S3Server) -> tuple[str, int]:
    host, port = srv.endpoint.split("//")[1].rsplit(":", 1)
    return host, int(port)


def _descendants(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out += kids.get(p, [])
        todo += kids.get(p, [])
    return out


def _rss(srv: S3Server) -> int:
    """Resident bytes of the server's processes (the uvicorn workers and their parents)."""
    total = 0
    for pid in _descendants(srv.proc.pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def _closed_within(s: socket.socket, seconds: float, trickle: bytes = b"") -> float | None:
    """Seconds until the server closes ``s`` (None if it did not), sending ``trickle`` a byte at a time."""
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < seconds:
        if i < len(trickle):
            try:
                s.send(trickle[i:i + 1])
            except OSError:
                return time.monotonic() - start
            i += 1
        r, _, _ = select.select([s], [], [], 0.25)
        if r:
            try:
                while s.recv(65536):
                    pass
            except OSError:
                pass
            return time.monotonic() - start
    return None


def _status(s: socket.socket) -> int | None:
    """The status of the server's reply on ``s``, None when it closed without one."""
    s.settimeout(5)
    try:
        data = s.recv(4096)
    except OSError:
        return None
    return int(data.split()[1]) if data.startswith(b"HTTP/1.1 ") else None


def test_endless_headers_are_cut_off_and_memory_stays_bounded(s3hard: S3Server) -> None:
    before = _rss(s3hard)
    s = socket.create_connection(_addr(s3hard), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
    sent, chunk, start = 0, b"a" * 65536, time.monotonic()
    try:
        while sent < 96 * MIB and time.monotonic() - start < 20:
            s.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass  # the server closed the connection: what we want
    grown = _rss(s3hard) - before
    s.close()
    assert sent < 16 * MIB, f"the server read {sent} bytes of one header"
    assert grown < 24 * MIB, f"the server grew by {grown} bytes"


def test_too_many_headers_431(s3hard: S3Server) -> None:
    s = socket.create_connection(_addr(s3hard), timeout=10)
    head = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(100)) + b"\r\n"
    s.sendall(head)
    assert _status(s) == 431
    s.close()


def test_slowloris_head_is_closed_within_the_timeout(s3hard: S3Server) -> None:
    s = socket.create_connection(_addr(s3hard), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\n")
    took = _closed_within(s, 10, trickle=b"Host: x\r\nX-Slow: " + b"b" * 100)  # a byte every ~0.25 s
    s.close()
    assert took is not None and took < 2 + 1.5, took


def test_silent_connection_is_closed(s3hard: S3Server) -> None:
    s = socket.create_connection(_addr(s3hard), timeout=10)
    took = _closed_within(s, 10)
    s.close()
    assert took is not None and took < 2 + 1.5, took


def test_stalled_body_is_closed(s3hard: S3Server, bucket_hard: str) -> None:
    s = socket.create_connection(_addr(s3hard), timeout=10)
    s.sendall(f"PUT /{bucket_hard}/stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".encode()
              + b"x" * 10)
    took = _closed_within(s, 10)
    s.close()
    assert took is not None and took < 2 + 1.5, took


def _open(srv: S3Server, n: int, source: str = "127.0.0.1") -> list[socket.socket]:
    out = []
    for _ in range(n):
        s = socket.socket()
        s.bind((source, 0))
        s.connect(_addr(srv))
        out.append(s)
    return out


def _served(socks: list[socket.socket]) -> int:
    for s in socks:
        with contextlib.suppress(OSError):
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    codes = [_status(s) for s in socks]
    for s in socks:
        s.close()
    time.sleep(0.5)  # let the server see the closes
    return sum(1 for c in codes if c is not None and c != 503)


def test_connections_per_client_address_are_capped(s3hard: S3Server) -> None:
    served = _served(_open(s3hard, 12))
    assert 1 <= served <= 2 * 4, served  # 4 per address in each of the 2 workers


def test_connections_in_total_are_capped(s3hard: S3Server) -> None:
    socks = [s for ip in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5") for s in _open(s3hard, 4, ip)]
    served = _served(socks)
    assert 1 <= served <= 2 * 6, served  # 6 in all in each of the 2 workers


def test_served_again_after_the_flood(s3hard: S3Server) -> None:
    for _ in range(3):
        assert _served(_open(s3hard, 2)) == 2


@pytest.fixture
def bucket_hard(s3hard: S3Server) -> str:
    name = f"hard-{os.getpid()}-{time.monotonic_ns()}"
    s3hard.client().create_bucket(Bucket=name)
    return name
