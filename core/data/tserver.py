"""The target server: serves this node's targets to the other nodes.

Speaks the protocol in :mod:`core.data.wire` (version 1) over TCP.  One asyncio
event loop on its own thread accepts connections and runs one coroutine per
connection; each connection handles one request at a time (clients pool
connections for parallelism, :mod:`core.data.remote`), so a connection holds
at most one frame in memory.

The loop thread accepts, runs the handshake, and waits (cheaply, any number
of connections) for an authenticated connection's next request.  When one
arrives, a pool thread takes the socket and serves it blocking: the request,
then every next one that arrives within HOT_WAIT (2 ms), for up to HOT_FOR /
HOT_MAX, then hands the socket back at a frame boundary.  A busy connection
thus costs no loop round trip or thread hand-off per request (which halved
the per-request time on a 2-core box), an idle one costs no thread.  One
request at a time per connection (clients pool connections for parallelism),
so the loop never touches a socket a thread holds; a session that ends while a
thread holds its socket shuts it down (waking the thread) and closes it when
the thread is done, so its descriptor number cannot be reused under it.

No copies of bulk data in Python: a WRITE's payload (over ``BULK``, 64 KiB,
left in the stream by :class:`wire.FrameReader`) is received with
``MSG_WAITALL`` straight into one preallocated buffer and ``pwritev``'d; a
READ is ``preadv`` into one buffer sent with ``sendmsg([header, payload])``
(scatter/gather).

Bounds: ``max_conns`` connections (more are answered EBUSY and closed);
``auth_timeout`` to finish HELLO/AUTH; ``idle_timeout`` between requests;
``request_timeout`` as the kernel's SO_RCVTIMEO/SO_SNDTIMEO for every blocking
receive and send, and a request (disk call included) that takes over
``3 * request_timeout`` ends its connection.  Errors from the disk become
error answers with the errno; nothing a client sends can stop the server.

``main()`` runs it standalone: ``python -m core.data.tserver --listen HOST:PORT
--target ID=PATH ... --token-file FILE`` prints ``{"port": N}`` once serving
and stops on SIGTERM/SIGINT; :func:`run_target_server` is the same from Python.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import select
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from core.data import wire
from core.data.target import Buf, DirTarget, Target

log = logging.getLogger("tessera.tserver")

LIST_MAX = wire.MAX_PAYLOAD // wire.LIST_ENTRY.size
BULK = 64 * 1024  # a payload over this is received by the pool thread, straight into its buffer
HOT_WAIT = 0.002  # a pool thread keeps a connection while its next request comes within this
HOT_FOR = 0.05  # ... for at most this long
HOT_MAX = 256  # ... and this many requests, then hands it back to the loop


class _Close(Exception):
    """End this connection (after its answer was sent)."""


class _Broken(Exception):
    """The connection failed while a pool thread was using it."""


class TargetServer:
    def __init__(self, targets: Mapping[int, Target], host: str = "0.0.0.0", port: int = 0,
                 token: str | bytes = b"", *, max_conns: int = 128, idle_timeout: float = 120.0,
                 request_timeout: float = 30.0, auth_timeout: float = 10.0, io_threads: int = 16) -> None:
        if not token:
            raise ValueError("a target server needs the cluster token")
        self.targets = dict(targets)
        self.host, self.port = host, port
        self.token = token.encode() if isinstance(token, str) else token
        self.max_conns = max_conns
        self.idle_timeout, self.request_timeout, self.auth_timeout = idle_timeout, request_timeout, auth_timeout
        self._pool = ThreadPoolExecutor(io_threads, thread_name_prefix="tserver-io")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._accepting: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> int:
        """Bind, start serving on a new thread; returns the bound port."""
        lsock = socket.create_server((self.host, self.port), backlog=128, reuse_port=False)
        lsock.setblocking(False)
        self._listener = lsock
        self.port = lsock.getsockname()[1]
        loop = self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            self._accepting = loop.create_task(self._accept(lsock))
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name=f"tserver:{self.port}", daemon=True)
        self._thread.start()
        ready.wait()
        return self.port

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._loop = self._thread = None

    async def _shutdown(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
        if self._listener is not None:
            self._listener.close()
        tasks = list(self._sessions)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- connections --------------------------------------------------------------------
    async def _accept(self, lsock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(lsock)
            except OSError as e:  # EMFILE and friends: back off a little, keep serving
                log.warning("accept failed", extra={"error": str(e)})
                await asyncio.sleep(0.1)
                continue
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tv = struct.pack("ll", int(self.request_timeout), int(self.request_timeout % 1 * 1e6))
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)  # bound the pool threads' blocking calls
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
            if len(self._sessions) >= self.max_conns:
                try:
                    conn.send(wire.encode_error(0, 0, wire.WIRE_CODES["EBUSY"], "too many connections"))
                except OSError:
                    pass
                conn.close()
                continue
            task = loop.create_task(self._session(conn))
            self._sessions.add(task)
            task.add_done_callback(self._sessions.discard)

    async def _session(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        reader = wire.FrameReader(response=False, defer_over=BULK)
        state = _Auth()
        try:
            while True:
                timeout = self.idle_timeout if state.done else self.auth_timeout
                try:
                    async with asyncio.timeout(timeout):
                        frame = await _next_frame(loop, sock, reader)
                except wire.ProtocolError as e:
                    await self._send(sock, [wire.encode_error(0, 0, e.code, str(e))])
                    return
                if frame is None:
                    return
                await self._answer(sock, frame, state)
        except (_Close, TimeoutError, ConnectionError, asyncio.CancelledError):
            pass
        except OSError as e:
            log.debug("connection dropped", extra={"error": str(e)})
        except Exception:
            log.exception("target server session failed")
        finally:
            job = state.job
            if job is not None and not job.done():  # a pool thread still holds the socket: wake it, close after
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                job.add_done_callback(lambda _: sock.close())
            else:
                sock.close()

    async def _answer(self, sock: socket.socket, frame: wire.Frame, state: _Auth) -> None:
        if state.done:
            await self._hand_off(sock, frame, state)
            return
        h = frame.header
        try:
            parts = [self._handshake(wire.decode_request(h, frame.fields), h, state)]
            close = False
        except wire.ProtocolError as e:
            parts, close = [wire.encode_error(h.op, h.rid, e.code, str(e))], True
        async with asyncio.timeout(self.request_timeout):  # a timeout here ends the session
            await self._send(sock, parts)
        if close:
            raise _Close()

    async def _hand_off(self, sock: socket.socket, frame: wire.Frame, state: _Auth) -> None:
        """A pool thread serves the connection from this frame on, while its client keeps sending."""
        job = state.job = self._pool.submit(self._serve_hot, sock, frame)
        try:
            async with asyncio.timeout(3 * self.request_timeout + HOT_FOR):
                await asyncio.wrap_future(job)
        except (TimeoutError, _Broken):
            raise _Close() from None  # the session's end wakes the thread and closes the socket after it
        state.job = None

    def _serve_hot(self, sock: socket.socket, frame: wire.Frame) -> None:
        """Blocking, on a pool thread: answer ``frame``, then the next frames arriving within HOT_WAIT.

        SO_RCVTIMEO/SO_SNDTIMEO bound every call; MSG_WAITALL takes a payload
        at once.  Gives the socket back to the loop after HOT_FOR seconds or
        HOT_MAX requests, or when the client pauses; raises _Broken when the
        connection must end.
        """
        sock.setblocking(True)
        reader = wire.FrameReader(response=False, defer_over=BULK)
        until = time.monotonic() + HOT_FOR
        try:
            for n in range(1, HOT_MAX + 1):
                parts, close = self._serve_frame(sock, frame)
                _send_blocking(sock, parts)
                if close:
                    raise _Broken("bad frame")
                if n == HOT_MAX or time.monotonic() > until or not _readable(sock, HOT_WAIT):
                    return  # at a frame boundary: the loop reads the next one
                try:
                    frame = _read_frame(sock, reader)
                except wire.ProtocolError as e:
                    _send_blocking(sock, [wire.encode_error(0, 0, e.code, str(e))])
                    raise _Broken(str(e)) from e
        except OSError as e:
            raise _Broken(str(e)) from e
        finally:
            with contextlib.suppress(OSError):
                sock.setblocking(False)

    def _serve_frame(self, sock: socket.socket, frame: wire.Frame) -> tuple[list[Buf], bool]:
        """The answer to one frame of an authenticated connection, and whether to close after it."""
        h = frame.header
        try:
            req = wire.decode_request(h, frame.fields)
            if isinstance(req, wire.Hello | wire.Auth):
                raise wire.ProtocolError("EINVAL", "already authenticated", fatal=False)
        except wire.ProtocolError as e:  # a payload left in the stream cannot be skipped: close
            return [wire.encode_error(h.op, h.rid, e.code, str(e))], e.fatal or bool(frame.deferred)
        payload = frame.payload
        if frame.deferred:
            payload = bytearray(frame.deferred)
            _recv_exact(sock, memoryview(payload))
        try:
            fields, out = self._do(req, payload)
        except OSError as e:  # from the disk: the connection is fine
            return [_error(h, e)], False
        except Exception as e:  # a value the disk layer cannot take (or a bug): an answer, not a dead server
            log.exception("target request failed", extra={"op": h.op})
            return [wire.encode_error(h.op, h.rid, wire.WIRE_CODES["EIO"], f"{type(e).__name__}: {e}")], False
        return [wire.encode_response(h.op, h.rid, fields, len(out)), out], False

    def _handshake(self, req: wire.Request, h: wire.Header, state: _Auth) -> bytes:
        if isinstance(req, wire.Hello) and state.version == 0:
            v = wire.pick_version(req.versions)
            if v is None:
                raise wire.ProtocolError("EPROTONOSUPPORT", f"supported versions: {list(wire.SUPPORTED)}")
            state.version, state.cnonce, state.snonce = v, req.nonce, secrets.token_bytes(wire.NONCE_SIZE)
            p = wire.proof(self.token, "server", v, state.cnonce, state.snonce)
            return wire.encode_response(h.op, h.rid, wire.hello_reply(v, state.snonce, p))
        if isinstance(req, wire.Auth) and state.version:
            want = wire.proof(self.token, "client", state.version, state.cnonce, state.snonce)
            if not secrets.compare_digest(want, req.proof):
                raise wire.ProtocolError("EACCES", "authentication failed")
            state.done = True
            return wire.encode_response(h.op, h.rid)
        raise wire.ProtocolError("EACCES", "HELLO and AUTH first")

    async def _send(self, sock: socket.socket, parts: Sequence[Buf]) -> None:
        """sendmsg the parts (scatter/gather, no joining); wait for the socket when it is full."""
        loop = asyncio.get_running_loop()
        views = [memoryview(p).cast("B") for p in parts if len(p)]
        while views:
            try:
                n = sock.sendmsg(views)
            except (BlockingIOError, InterruptedError):
                n = 0
            while views and n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            if views:
                views[0] = views[0][n:]
                await loop.sock_sendall(sock, views.pop(0))

    # -- the disk side (pool threads) ---------------------------------------------------
    def _target(self, tid: int) -> Target:
        t = self.targets.get(tid)
        if t is None:
            raise OSError(19, f"no target {tid} on this node")  # ENODEV on the wire
        return t

    def _do(self, req: wire.Request, payload: bytearray) -> tuple[bytes, Buf]:
        if isinstance(req, wire.Write):
            f = self._target(req.target).open_shard(req.segment, req.index, create=req.create)
            return wire.u64(f.pwritev([payload], req.offset) if payload else 0), b""
        if isinstance(req, wire.Read):
            buf = bytearray(req.length)
            n = self._target(req.target).open_shard(req.segment, req.index).preadv([buf], req.offset)
            return b"", memoryview(buf)[:n]
        if isinstance(req, wire.Sync):
            self._target(req.target).open_shard(req.segment, req.index).sync()
            return b"", b""
        if isinstance(req, wire.Stat):
            return wire.u64(self._target(req.target).open_shard(req.segment, req.index).size()), b""
        if isinstance(req, wire.Delete):
            self._target(req.target).remove_shard(req.segment, req.index)
            return b"", b""
        if isinstance(req, wire.List):
            start = (req.start_segment, req.start_index)
            shards = [s for s in self._target(req.target).list_shards() if s >= start][: min(req.limit, LIST_MAX)]
            return wire.list_payload(shards)
        if isinstance(req, wire.Space):
            t = self._target(req.target)
            total, free = t.capacity()
            return wire.space_reply(total, free, t.usage()), b""
        return wire.ping_reply(sorted(self.targets)), b""


class _Auth:
    """A connection's state: the handshake, and the pool job using its socket, if any."""

    __slots__ = ("cnonce", "done", "job", "snonce", "version")

    def __init__(self) -> None:
        self.version = 0
        self.cnonce = self.snonce = b""
        self.done = False
        self.job: Future[None] | None = None


def _error(h: wire.Header, e: OSError) -> bytes:
    code = wire.to_wire(e.errno) if e.errno else wire.WIRE_CODES["EIO"]
    return wire.encode_error(h.op, h.rid, code, e.strerror or str(e))


def _recv_exact(sock: socket.socket, view: memoryview) -> None:
    while len(view):
        n = sock.recv_into(view, len(view), socket.MSG_WAITALL)
        if n == 0:
            raise ConnectionResetError("connection closed mid-frame")
        view = view[n:]


def _read_frame(sock: socket.socket, reader: wire.FrameReader) -> wire.Frame:
    while True:
        buf = reader.buffer()
        n = sock.recv_into(buf, len(buf), socket.MSG_WAITALL)
        if n == 0:
            raise ConnectionResetError("connection closed")
        frame = reader.filled(n)
        if frame is not None:
            return frame


def _readable(sock: socket.socket, wait: float) -> bool:
    p = select.poll()
    p.register(sock, select.POLLIN)
    return bool(p.poll(wait * 1000))


def _send_blocking(sock: socket.socket, parts: Sequence[Buf]) -> None:
    views = [memoryview(p).cast("B") for p in parts if len(p)]
    while views:
        n = sock.sendmsg(views)
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if views:
            views[0] = views[0][n:]


async def _next_frame(loop: asyncio.AbstractEventLoop, sock: socket.socket,
                      reader: wire.FrameReader) -> wire.Frame | None:
    """Receive one frame straight into its buffers; None at a clean end of stream."""
    started = False
    while True:
        n = await loop.sock_recv_into(sock, reader.buffer())
        if n == 0:
            if started:
                raise ConnectionError("connection closed mid-frame")
            return None
        started = True
        frame = reader.filled(n)
        if frame is not None:
            return frame


# -- standalone ---------------------------------------------------------------------------
def run_target_server(targets: Mapping[int, Target], host: str, port: int, token: str | bytes,
                      *, ready: threading.Event | None = None, stop: threading.Event | None = None,
                      announce: bool = False) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT when called on the main thread)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    srv = TargetServer(targets, host, port, token)
    bound = srv.start()
    try:
        if announce:
            print(json.dumps({"port": bound}), flush=True)
        if ready is not None:
            ready.set()
        stop.wait()
    finally:
        srv.stop()


def _token(args: argparse.Namespace) -> bytes:
    if args.token_file:
        with open(args.token_file, "rb") as f:
            return f.read().strip()
    tok = os.environ.get("TESSERA_TARGET_TOKEN", "")
    if not tok:
        raise SystemExit("no cluster token: --token-file or TESSERA_TARGET_TOKEN")
    return tok.encode()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tessera-target-server", description="Serve targets to the cluster")
    ap.add_argument("--listen", default="0.0.0.0:0", help="HOST:PORT (port 0: any free one)")
    ap.add_argument("--target", action="append", default=[], metavar="ID=PATH", help="a target directory")
    ap.add_argument("--token-file", help="file holding the cluster token (else $TESSERA_TARGET_TOKEN)")
    args = ap.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    targets: dict[int, Target] = {}
    for spec in args.target:
        tid, _, path = spec.partition("=")
        d = DirTarget(int(tid), path)
        ident = d.identity()
        if ident is None or ident.get("id") != int(tid):
            raise SystemExit(f"{path} is not target {tid} (its target.json says {ident})")
        targets[int(tid)] = d
    try:
        run_target_server(targets, host or "0.0.0.0", int(port), _token(args), announce=True)
    finally:
        for t in targets.values():
            t.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
