"""A small synchronous ONC-RPC client over TCP or UDP.

Used by the tests as the raw RPC client, by NLM for GRANTED callbacks, by NSM for
SM_NOTIFY and by :mod:`protocols.nfs.rpcbind` to talk to the portmapper. One call at a
time per client (a lock serialises threads); replies with another xid are skipped.

    with RpcClient("127.0.0.1", 2049, auth=AuthSys(0, "me", 1000, 1000, (1000,))) as c:
        reply = c.call(100003, 3, 0)           # NULL
        assert reply.ok
        body = c.call_ok(100003, 3, 1, fh_args)   # bytes of the results, RpcError unless SUCCESS
"""

from __future__ import annotations

import itertools
import random
import socket
import threading
import time
from typing import Literal

from .rpc import AuthSys, Buf, RecordReader, Reply, decode_reply, encode_call, frame
from .xdr import Packer, XdrError

MAX_REPLY = 64 << 20


class RpcError(Exception):
    """The call was not answered SUCCESS (``reply`` says how), or the reply made no sense."""

    def __init__(self, message: str, reply: Reply | None = None) -> None:
        super().__init__(message)
        self.reply = reply


class RpcTimeout(RpcError, TimeoutError):
    """No reply within the timeout."""


class RpcClient:
    """A connection (TCP) or an associated socket (UDP) to one RPC server."""

    def __init__(self, host: str, port: int, *, transport: Literal["tcp", "udp"] = "tcp", timeout: float = 5.0,
                 auth: AuthSys | None = None, retries: int = 2, bind: tuple[str, int] | None = None) -> None:
        self.host, self.port, self.transport = host, port, transport
        self.timeout = timeout
        self.auth = auth
        self.retries = max(0, retries)
        self._lock = threading.Lock()
        self._xids = itertools.count(random.randrange(1, 1 << 31))
        self._reader = RecordReader(MAX_REPLY)
        self._records: list[bytes] = []
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
        self.sock = socket.socket(family, kind)
        try:
            if bind is not None:
                self.sock.bind(bind)
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
            if transport == "tcp":
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            self.sock.close()
            raise

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def next_xid(self) -> int:
        return next(self._xids) & 0xFFFF_FFFF

    def call(self, prog: int, vers: int, proc: int, args: Buf | Packer = b"", *,
             auth: AuthSys | Literal["default"] | None = "default", xid: int | None = None) -> Reply:
        """Send one call and return its decoded reply (accepted or denied)."""
        body = args.data() if isinstance(args, Packer) else args
        xid = self.next_xid() if xid is None else xid
        record = encode_call(xid, prog, vers, proc, body, self.auth if auth == "default" else auth)
        with self._lock:
            if self.transport == "udp":
                return self._call_udp(xid, record)
            self.send_record(record)
            return self._recv_reply(xid)

    def call_ok(self, prog: int, vers: int, proc: int, args: Buf | Packer = b"", *,
                auth: AuthSys | Literal["default"] | None = "default", xid: int | None = None) -> bytes:
        """The results of a call answered SUCCESS; RpcError otherwise."""
        reply = self.call(prog, vers, proc, args, auth=auth, xid=xid)
        if not reply.ok:
            raise RpcError(f"call {prog}/{vers}/{proc} to {self.host}:{self.port} not accepted: {reply}", reply)
        return reply.body

    # -- raw access (tests) --

    def send_record(self, record: Buf, max_fragment: int | None = None) -> None:
        """Send a message as it is: record-marked over TCP, one datagram over UDP."""
        if self.transport == "udp":
            self.sock.send(record)
            return
        parts = frame([record]) if max_fragment is None else frame([record], max_fragment)
        self.sock.sendall(b"".join(parts))

    def recv_record(self, timeout: float | None = None) -> bytes:
        """The next record (TCP) or datagram (UDP); RpcTimeout, or ConnectionError when the server closed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if self._records:
                return self._records.pop(0)
            left = deadline - time.monotonic()
            if left <= 0:
                raise RpcTimeout(f"no reply from {self.host}:{self.port}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 16 if self.transport == "udp" else 1 << 20)
            except TimeoutError:
                continue
            if self.transport == "udp":
                return data
            if not data:
                raise ConnectionError(f"{self.host}:{self.port} closed the connection")
            self._records.extend(self._reader.feed(data))

    def _recv_reply(self, xid: int, timeout: float | None = None) -> Reply:
        while True:
            record = self.recv_record(timeout)
            try:
                reply = decode_reply(record)
            except XdrError as e:
                raise RpcError(f"malformed reply from {self.host}:{self.port}: {e}") from e
            if reply.xid == xid:
                return reply

    def _call_udp(self, xid: int, record: bytes) -> Reply:
        wait = self.timeout / (1 + self.retries)
        for _ in range(1 + self.retries):
            self.send_record(record)
            try:
                return self._recv_reply(xid, wait)
            except RpcTimeout:
                continue
        raise RpcTimeout(f"no reply from {self.host}:{self.port} over UDP")


def call(host: str, port: int, prog: int, vers: int, proc: int, args: Buf | Packer = b"", *,
         transport: Literal["tcp", "udp"] = "tcp", timeout: float = 5.0, auth: AuthSys | None = None) -> Reply:
    """One call on a fresh connection."""
    with RpcClient(host, port, transport=transport, timeout=timeout, auth=auth) as c:
        return c.call(prog, vers, proc, args)
