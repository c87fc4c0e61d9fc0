"""The ONC-RPC server: asyncio TCP and UDP on one address and port; the only module with sockets.

Records arrive on the event loop (:class:`~protocols.nfs.rpc.RecordReader` for TCP, one
datagram each for UDP) and :func:`~protocols.nfs.dispatch.handle_record` runs them on a
thread pool, since core.fs is synchronous. A TCP connection keeps several calls in
flight (replies go out as they finish; the client matches them by xid) up to
``max_inflight``; past that, or while the socket's send buffer is full, the server stops
reading from that connection (back-pressure). A record over ``max_record`` closes the
connection; a malformed call gets its RPC error reply or nothing, never a crash. Idle
connections are kept for as long as the client likes (NFS clients hold one for hours).

Tests and the gateway run it on a thread of its own::

    handle = serve_in_thread([program], "127.0.0.1", 0)    # handle.port: the bound port
    ...
    handle.close()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import logging
import socket
from collections import deque
from collections.abc import Iterable
from typing import Any, cast

from protocols.loop import LoopThread

from .dispatch import Program, handle_record, index, runs_inline
from .drc import Drc
from .rpc import MAX_FRAGMENT, Buf, RecordReader, RecordTooLarge, frame

log = logging.getLogger("tessera.nfs.rpc")

DEFAULT_MAX_RECORD = 4 << 20      # a 1 MiB WRITE and its header fit with room to spare
DEFAULT_MAX_INFLIGHT = 32         # calls in flight per TCP connection before reading pauses
BIG_PART = 64 << 10               # reply parts at least this big are written without joining (READ data)
UDP_MAX_INFLIGHT = 256            # datagrams in flight in all; more are dropped (the client retries)

Reply = list[Buf] | None


class RpcServer:
    """ONC-RPC over TCP (and UDP, on the same port) for a set of programs."""

    def __init__(self, programs: Iterable[Program], host: str = "0.0.0.0", port: int = 2049, *,
                 udp: bool = True, max_record: int = DEFAULT_MAX_RECORD, workers: int = 8,
                 max_inflight: int = DEFAULT_MAX_INFLIGHT, drc: Drc | None = None,
                 max_fragment: int = MAX_FRAGMENT) -> None:
        self.programs = index(programs)
        self.host = host or "0.0.0.0"
        self.port = port
        self.udp = udp
        self.max_record = max_record
        self.max_inflight = max(1, max_inflight)
        self.max_fragment = max_fragment
        self.drc = drc if drc is not None else Drc()
        self.workers = workers
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._tcp: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._conns: set[_TcpConnection] = set()
        self._pending: set[asyncio.Future[Reply]] = set()

    @property
    def connections(self) -> int:
        """Open TCP connections."""
        return len(self._conns)

    async def start(self) -> None:
        """Bind TCP, then UDP on the same port (with port 0, retried until both bind)."""
        loop = asyncio.get_running_loop()
        self._pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="tessera-nfs")
        for attempt in range(20):
            tcp = await loop.create_server(lambda: _TcpConnection(self), self.host, self.port, backlog=128)
            port = int(tcp.sockets[0].getsockname()[1])
            try:
                if self.udp:
                    transport, _ = await loop.create_datagram_endpoint(lambda: _UdpEndpoint(self),
                                                                       local_addr=(self.host, port))
                    self._udp = transport
            except OSError as e:
                tcp.close()
                if self.port != 0 or e.errno != errno.EADDRINUSE or attempt == 19:
                    raise
                continue
            self._tcp, self.port = tcp, port
            break
        log.info("ONC-RPC listening on %s port %d (tcp%s), programs %s", self.host, self.port,
                 "+udp" if self.udp else "", sorted(self.programs))

    def submit(self, record: bytes, client: tuple[str, int], transport: str) -> asyncio.Future[Reply]:
        """Run one record's call on the pool (called on the event loop)."""
        assert self._pool is not None, "server not started"
        fut = asyncio.get_running_loop().run_in_executor(
            self._pool, handle_record, self.programs, record, client, transport, self.drc)
        self._pending.add(fut)
        fut.add_done_callback(self._pending.discard)
        return fut

    async def close(self) -> None:
        """Stop listening, close every connection, wait (a while) for calls still running."""
        if self._tcp is not None:
            self._tcp.close()
        if self._udp is not None:
            self._udp.close()
        for conn in list(self._conns):
            conn.close()
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=10)
        if self._tcp is not None:
            await self._tcp.wait_closed()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._tcp = self._udp = self._pool = None


def _result(fut: asyncio.Future[Reply], what: str) -> Reply:
    if fut.cancelled():
        return None
    exc = fut.exception()
    if exc is not None:        # handle_record catches handler errors: this is a bug in the RPC layer
        log.error("RPC dispatch failed for %s", what, exc_info=exc)
        return None
    return fut.result()


class _TcpConnection(asyncio.Protocol):
    def __init__(self, server: RpcServer) -> None:
        self.server = server
        self.reader = RecordReader(server.max_record)
        self.queue: deque[bytes] = deque()
        self.inflight = 0
        self.reading = True
        self.can_write = True
        self.closed = False
        self.eof = False
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("?", 0)
        self.out: list[Buf] = []
        self.flush_soon = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)   # reap peers that vanished
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = (str(peer[0]), int(peer[1]))
        self.server._conns.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            records = self.reader.feed(data)
        except RecordTooLarge as e:
            log.warning("closing the connection from %s: %s", self.peer, e)
            self.close()
            return
        self.queue.extend(records)
        self._pump()

    def eof_received(self) -> bool:
        """The client half-closed: answer what it sent, then close."""
        self.eof = True
        self._flush()  # replies answered inline are still queued for this turn's write
        return bool(self.queue or self.inflight)

    def _pump(self) -> None:
        """Start queued calls while under the in-flight cap; pause reading while over it.

        Cheap metadata reads (the programs' ``inline`` procedures) are answered right here on the loop;
        the rest go to the pool."""
        srv = self.server
        while self.queue and self.inflight < srv.max_inflight and self.can_write and not self.closed:
            record = self.queue.popleft()
            if runs_inline(srv.programs, record):
                self._send(handle_record(srv.programs, record, self.peer, "tcp", srv.drc))
                continue
            self.inflight += 1
            srv.submit(record, self.peer, "tcp").add_done_callback(self._done)
        want = not self.queue and self.inflight < self.server.max_inflight and self.can_write
        if self.transport is None or self.closed or want == self.reading:
            return
        self.reading = want
        if want:
            self.transport.resume_reading()
        else:
            self.transport.pause_reading()

    def _done(self, fut: asyncio.Future[Reply]) -> None:
        self.inflight -= 1
        reply = _result(fut, f"a call from {self.peer}")
        if self.closed or self.transport is None:
            return
        self._send(reply)
        self._pump()
        if self.eof and not self.queue and not self.inflight:
            self._flush()
            self.transport.close()

    def _send(self, reply: Reply) -> None:
        """Queue a reply; every reply ready in this turn of the loop goes out in one write."""
        if reply is None or self.closed or self.transport is None:
            return
        self.out.extend(frame(reply, self.server.max_fragment))
        if not self.flush_soon:
            self.flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_soon = False
        out, self.out = self.out, []
        if not out or self.closed or self.transport is None:
            return
        small: list[Buf] = []  # headers and small replies are joined; big payloads go as they are (no copy)
        for part in out:
            if len(part) < BIG_PART:
                small.append(part)
                continue
            if small:
                self.transport.write(b"".join(small))
                small = []
            self.transport.write(part)
        if small:
            self.transport.write(b"".join(small))

    def pause_writing(self) -> None:
        self.can_write = False
        self._pump()

    def resume_writing(self) -> None:
        self.can_write = True
        self._pump()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.queue.clear()
        self.server._conns.discard(self)


class _UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, server: RpcServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self.inflight = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self.inflight >= UDP_MAX_INFLIGHT:
            log.debug("dropping a datagram from %s: %d calls in flight", addr, self.inflight)
            return
        self.inflight += 1
        peer = (str(addr[0]), int(addr[1]))
        fut = self.server.submit(data, peer, "udp")
        fut.add_done_callback(lambda f: self._done(f, addr))

    def _done(self, fut: asyncio.Future[Reply], addr: tuple[Any, ...]) -> None:
        self.inflight -= 1
        reply = _result(fut, f"a datagram from {addr}")
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(b"".join(reply), addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)


class ServerThread(LoopThread):
    """An :class:`RpcServer` running its own event loop on a daemon thread."""

    def __init__(self, server: RpcServer) -> None:
        super().__init__(server, name="tessera-nfs-loop")
        self.server: RpcServer = server


def serve_in_thread(programs: Iterable[Program], host: str = "127.0.0.1", port: int = 0,
                    **options: Any) -> ServerThread:
    """Start an :class:`RpcServer` on a thread; returns once it listens (``.port``, ``.close()``)."""
    t = ServerThread(RpcServer(programs, host, port, **options))
    t.start()
    return t
