"""Remote targets: another node's disks behind its target server.

:class:`RemoteTarget` implements the :class:`~core.data.target.Target`
Protocol and :class:`RemoteShard` the ``ShardFile`` one over the protocol in
:mod:`core.data.wire`, so :class:`~core.data.store.DataStore` addresses local
and remote targets alike; :func:`core.cluster.target_factory` picks one per target.

* One :class:`_Node` per (address, token), shared by that node's targets: a
  thread-safe pool of authenticated blocking sockets (DataStore calls from
  many threads; each call borrows a connection for one request/answer).
* No copies of bulk data: a write is ``sendmsg([header, *caller's buffers])``;
  a read is ``recv_into`` the caller's buffers.  More than
  ``wire.MAX_PAYLOAD`` bytes are split into several requests.
* Bounded waits: ``connect_timeout`` (1 s) to connect, ``timeout`` (5 s) per
  request, measured as one deadline over every send and receive, and
  ``sync_timeout`` (30 s) for an fdatasync.  A node's pool is shared by all
  its RemoteTargets and keeps the timeouts of the first.
* Any failure raises OSError, which DataStore reads as "this cell is
  unavailable" (degraded read from parity, or a pending repair for a write).
  A node whose connection failed (refused, reset, timed out, bad answer) is
  *down* for a back-off (1 s doubling to 8 s): meanwhile ``available()`` is
  False and calls fail at once without touching the network, then one call
  tries again.  An error answer (ENOENT, ...) is not a node failure.
* ``open_shard`` is lazy (no round trip): a missing shard shows as ENOENT on
  the first read, write without ``create``, sync or stat.
* Data is not trusted: the reader (DataStore) still verifies every block's
  crc32c, so a lying or corrupting server costs a degraded read, not bad data.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator, Sequence

from core.data import wire
from core.data.target import Buf, ShardFile

log = logging.getLogger("tessera.remote")
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 8.0
PROBE_EVERY = 5.0  # available() pings a node it has not heard from in this long
MAX_IDLE = 32  # pooled connections kept per node


class _Conn:
    """One authenticated connection; not thread-safe (the pool hands it to one thread)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.rid = 0
        self.deadline = 0.0

    def close(self) -> None:
        self.sock.close()

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(errno.ETIMEDOUT, "target server did not answer in time")
        return left

    def _send(self, parts: list[memoryview]) -> None:
        while parts:
            self.sock.settimeout(self._left())
            n = self.sock.sendmsg(parts)
            while parts and n >= len(parts[0]):
                n -= len(parts[0])
                parts.pop(0)
            if parts:
                parts[0] = parts[0][n:]

    def _recv_into(self, buf: memoryview) -> None:
        while len(buf):
            self.sock.settimeout(self._left())
            n = self.sock.recv_into(buf)
            if n == 0:
                raise ConnectionResetError(errno.ECONNRESET, "target server closed the connection")
            buf = buf[n:]

    def call(self, req: wire.Request, send: Sequence[memoryview] = (), into: Sequence[memoryview] | None = None,
             *, timeout: float) -> tuple[bytes, bytearray | int]:
        """One request and its answer: (fields, payload) — payload is a count when received ``into``.

        Raises :class:`_Answered` for an error answer, OSError/ProtocolError when the connection broke.
        """
        self.deadline = time.monotonic() + timeout
        self.rid += 1
        plen = sum(len(v) for v in send)
        self._send([memoryview(wire.encode_request(self.rid, req, plen)), *(v for v in send if len(v))])
        hdr = bytearray(wire.HEADER_SIZE)
        self._recv_into(memoryview(hdr))
        h = wire.unpack_header(hdr, response=True)
        if h.rid != self.rid or h.op not in (wire.op_of(req), 0):
            raise wire.ProtocolError("EPROTO", f"answer {h.op}/{h.rid} to request {wire.op_of(req)}/{self.rid}")
        fields = bytearray(h.flen)
        self._recv_into(memoryview(fields))
        if h.flags & wire.ERROR:
            code, msg = wire.decode_error(fields)
            raise _Answered(wire.from_wire(code), msg, fatal=h.op == 0)
        if into is None:
            payload = bytearray(h.plen)
            self._recv_into(memoryview(payload))
            return bytes(fields), payload
        if h.plen > sum(len(b) for b in into):
            raise wire.ProtocolError("EPROTO", f"answer of {h.plen} bytes to a smaller read")
        left = h.plen
        for b in into:
            if not left:
                break
            part = b[: min(len(b), left)]
            self._recv_into(part)
            left -= len(part)
        return bytes(fields), h.plen


class _Answered(OSError):
    """The server answered with an error; the connection is still good unless ``fatal``."""

    def __init__(self, err: int, msg: str, *, fatal: bool) -> None:
        super().__init__(err, msg)
        self.fatal = fatal


def _split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit():
        raise OSError(errno.ENXIO, f"bad target server address {addr!r}")
    return host.strip("[]"), int(port)


class _Node:
    """Pool and health of one target server."""

    def __init__(self, addr: str, token: bytes, connect_timeout: float, timeout: float) -> None:
        self.addr, self.token = addr, token
        self.connect_timeout, self.timeout = connect_timeout, timeout
        self.lock = threading.Lock()
        self.idle: list[_Conn] = []
        self.down_until = 0.0
        self.backoff = 0.0
        self.last_ok = 0.0
        self.refs = 0
        self.pid = os.getpid()

    def is_down(self) -> bool:
        return time.monotonic() < self.down_until

    def check(self) -> None:
        if self.is_down():
            raise OSError(errno.EHOSTDOWN, f"target server {self.addr} is down (retry in "
                                           f"{self.down_until - time.monotonic():.1f}s)")

    def _mark_down(self, why: object = None) -> None:
        log.warning("target server unreachable; backing off", extra={"addr": self.addr, "error": str(why),
                                                                      "retry_s": min(BACKOFF_MAX, self.backoff * 2)
                                                                      if self.backoff else BACKOFF_FIRST})
        with self.lock:
            self.backoff = min(BACKOFF_MAX, self.backoff * 2) if self.backoff else BACKOFF_FIRST
            self.down_until = time.monotonic() + self.backoff
            stale, self.idle = self.idle, []
        for c in stale:
            c.close()

    def _mark_ok(self) -> None:
        self.last_ok = time.monotonic()
        if self.backoff:
            with self.lock:
                self.backoff = 0.0

    def _connect(self) -> _Conn:
        host, port = _split_addr(self.addr)
        sock = socket.create_connection((host, port), timeout=self.connect_timeout)
        conn = _Conn(sock)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            cn = secrets.token_bytes(wire.NONCE_SIZE)
            fields, _ = conn.call(wire.Hello(tuple(sorted(wire.SUPPORTED, reverse=True)), cn), timeout=self.timeout)
            version, sn, server_proof = wire.decode_hello_reply(fields)
            if version not in wire.SUPPORTED:
                raise wire.ProtocolError("EPROTONOSUPPORT", f"server chose version {version}")
            if not secrets.compare_digest(server_proof, wire.proof(self.token, "server", version, cn, sn)):
                raise PermissionError(errno.EACCES, f"target server {self.addr} does not hold the cluster token")
            conn.call(wire.Auth(wire.proof(self.token, "client", version, cn, sn)), timeout=self.timeout)
        except BaseException:
            conn.close()
            raise
        return conn

    def call(self, req: wire.Request, send: Sequence[memoryview] = (), into: Sequence[memoryview] | None = None,
             *, timeout: float | None = None) -> tuple[bytes, bytearray | int]:
        """Run one request on a pooled connection; OSError on any failure."""
        self.check()
        if os.getpid() != self.pid:  # forked: the pooled sockets are the parent's, leave them to it
            with self.lock:
                self.idle, self.pid = [], os.getpid()
        for attempt in (0, 1):
            with self.lock:
                conn = self.idle.pop() if self.idle else None
            reused = conn is not None
            try:
                if conn is None:
                    conn = self._connect()
                out = conn.call(req, send, into, timeout=timeout or self.timeout)
            except _Answered as e:
                if e.fatal or conn is None:
                    if conn is not None:
                        conn.close()
                    self._mark_down(e)
                else:
                    self._give(conn)
                raise OSError(e.errno, f"{self.addr}: {e.strerror}") from None
            except (OSError, wire.ProtocolError) as e:
                if conn is not None:
                    conn.close()
                # a pooled connection the server dropped while idle: one fresh try (every op is idempotent)
                if reused and attempt == 0 and isinstance(e, ConnectionError | BrokenPipeError):
                    continue
                self._mark_down(e)
                err = errno.ETIMEDOUT if isinstance(e, TimeoutError) else (
                    e.errno if isinstance(e, OSError) and e.errno else errno.EIO)
                raise OSError(err, f"target server {self.addr}: {e}") from None
            self._give(conn)
            self._mark_ok()
            return out
        raise AssertionError("unreachable")

    def _give(self, conn: _Conn) -> None:
        with self.lock:
            if len(self.idle) < MAX_IDLE:
                self.idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for c in idle:
            c.close()


_nodes: dict[tuple[str, bytes], _Node] = {}
_nodes_lock = threading.Lock()
_nodes_pid = os.getpid()


def _node(addr: str, token: bytes, connect_timeout: float, timeout: float) -> _Node:
    global _nodes_pid
    with _nodes_lock:
        if os.getpid() != _nodes_pid:  # a forked child: the parent's sockets are not ours
            _nodes.clear()
            _nodes_pid = os.getpid()
        n = _nodes.get((addr, token))
        if n is None:
            n = _nodes[(addr, token)] = _Node(addr, token, connect_timeout, timeout)
        n.refs += 1
        return n


def _release(n: _Node) -> None:
    with _nodes_lock:
        n.refs -= 1
        if n.refs > 0:
            return
        _nodes.pop((n.addr, n.token), None)
    n.close()


def _views(bufs: Sequence[Buf]) -> list[memoryview]:
    return [memoryview(b).cast("B") for b in bufs]


def _chunks(views: list[memoryview], limit: int) -> Iterator[tuple[int, list[memoryview]]]:
    """(offset, views) pieces of at most ``limit`` bytes, splitting buffers where needed."""
    pos, cur, size = 0, [], 0
    for v in views:
        while len(v):
            take = v[: limit - size]
            cur.append(take)
            size += len(take)
            v = v[len(take):]
            if size == limit:
                yield pos, cur
                pos, cur, size = pos + size, [], 0
    if cur or pos == 0:
        yield pos, cur


class RemoteShard:
    """A shard file on another node (``ShardFile``)."""

    def __init__(self, target: RemoteTarget, segment: int, index: int, create: bool) -> None:
        self.t, self.segment, self.index, self.create = target, segment, index, create

    def pwritev(self, bufs: Sequence[Buf], offset: int) -> int:
        t, total = self.t, 0
        for pos, part in _chunks(_views(bufs), wire.MAX_PAYLOAD):
            req = wire.Write(t.id, self.segment, self.index, offset + pos, self.create)
            fields, _ = t.node.call(req, part)
            total += wire.decode_u64(fields)
        return total

    def preadv(self, bufs: Sequence[bytearray | memoryview], offset: int) -> int:
        t, total = self.t, 0
        for pos, part in _chunks(_views(bufs), wire.MAX_PAYLOAD):
            want = sum(len(v) for v in part)
            _, got = t.node.call(wire.Read(t.id, self.segment, self.index, offset + pos, want), into=part)
            assert isinstance(got, int)
            total += got
            if got < want:
                break
        return total

    def sync(self) -> None:
        self.t.node.call(wire.Sync(self.t.id, self.segment, self.index), timeout=self.t.sync_timeout)

    def size(self) -> int:
        fields, _ = self.t.node.call(wire.Stat(self.t.id, self.segment, self.index))
        return wire.decode_u64(fields)


class RemoteTarget:
    """Target ``id`` served by the target server at ``addr`` ("host:port")."""

    LIST_BATCH = 65536

    def __init__(self, id: int, path: str, addr: str, token: str | bytes, *, timeout: float = 5.0,
                 connect_timeout: float = 1.0, sync_timeout: float = 30.0) -> None:
        self.id, self.path, self.addr = id, path, addr
        self.sync_timeout = max(sync_timeout, timeout)
        tok = token.encode() if isinstance(token, str) else token
        self.node = _node(addr, tok, connect_timeout, timeout)
        self._closed = False

    def available(self) -> bool:
        n = self.node
        if n.is_down():
            return False
        if time.monotonic() - n.last_ok > PROBE_EVERY:
            try:
                n.call(wire.Ping(), timeout=n.connect_timeout + 1.0)
            except OSError:
                return False
        return True

    def open_shard(self, segment: int, index: int, create: bool = False) -> ShardFile:
        self.node.check()
        return RemoteShard(self, segment, index, create)

    def remove_shard(self, segment: int, index: int) -> None:
        self.node.call(wire.Delete(self.id, segment, index))

    def list_shards(self) -> list[tuple[int, int]]:
        """All shards, in order; [] when the node cannot be reached (as DirTarget on a lost disk)."""
        out: list[tuple[int, int]] = []
        start = (0, 0)
        try:
            while True:
                fields, payload = self.node.call(wire.List(self.id, *start, self.LIST_BATCH))
                assert isinstance(payload, bytearray)
                got = wire.decode_list(fields, payload)
                out += got
                if len(got) < self.LIST_BATCH:
                    return out
                start = (got[-1][0], got[-1][1] + 1)
        except (OSError, wire.ProtocolError):
            return []

    def _space(self) -> tuple[int, int, int]:
        try:
            fields, _ = self.node.call(wire.Space(self.id))
            return wire.decode_space(fields)
        except (OSError, wire.ProtocolError):
            return 0, 0, 0

    def capacity(self) -> tuple[int, int]:
        total, free, _ = self._space()
        return total, free

    def usage(self) -> int:
        return self._space()[2]

    def ping(self) -> list[int]:
        """The target ids the server serves (raises OSError when unreachable)."""
        fields, _ = self.node.call(wire.Ping())
        return wire.decode_ping(fields)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _release(self.node)
