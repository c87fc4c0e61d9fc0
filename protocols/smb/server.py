"""The SMB server's sockets: asyncio over TCP (Direct TCP, port 445), the only module with I/O.

Each connection has a reader (frames reassembled by ``framing.FrameReader``) and a worker that
hands frames, in order, to :meth:`~protocols.smb.conn.Connection.handle` on a thread pool (core.fs
calls block) and writes the answers. Reading goes on while a frame is being handled, up to
:data:`QUEUE` frames ahead (then the socket is not read: back-pressure). Answers sent later (a
pending lock or change notification completing, an oplock break) come through ``send`` from any
thread. A poller retries waiting operations every :data:`POLL_S`. A protocol violation
(``Disconnect``) or a frame too large closes that connection only, releasing its opens and locks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging

from protocols.loop import LoopThread

from .conn import Connection, Deferred, Disconnect, Handler
from .framing import FrameReader, FramingError, frame
from .header import Command
from .state import ServerContext

log = logging.getLogger("tessera.smb")

QUEUE = 32
POLL_S = 0.5
MAX_FRAME = 8 * 1024 * 1024 + 64 * 1024
WRITE_BUFFER = 32 * 1024 * 1024


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def tune_malloc() -> bool:
    """Keep multi-MiB buffers in glibc's heap and reuse them (True if applied).

    Every 8 MiB READ or WRITE allocates a few 8 MiB buffers (the data, the answer, the frame). By default
    glibc serves such sizes with fresh mmap()s, or trims the freed heap back to the kernel, so each one
    is page-faulted and zeroed again: measured here, that doubled the time of a 1 GiB get (3.0 s ->
    1.5 s with these settings). The process keeps up to the trim threshold of freed memory instead.
    """
    import ctypes
    import ctypes.util
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 64 << 20)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 512 << 20))
    except (OSError, AttributeError):
        return False  # not glibc


class SmbServer:
    """Listens on ``host:port`` (0 = any free port, see :attr:`port`) and serves ``ctx``."""

    def __init__(self, ctx: ServerContext, handlers: dict[Command, Handler], host: str = "0.0.0.0", port: int = 445,
                 workers: int = 8) -> None:
        self.ctx = ctx
        self.handlers = handlers
        self.host, self.port = host, port
        self.workers = workers
        self.connections: dict[Connection, asyncio.StreamWriter] = {}
        self._server: asyncio.Server | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._poller: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        tune_malloc()
        loop = asyncio.get_running_loop()
        wake = self._wake = asyncio.Event()

        def kick() -> None:
            loop.call_soon_threadsafe(wake.set)
        self.ctx.kick = kick
        self._pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="tessera-smb")
        self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        if self._server is not None:
            self._server.close()
        for w in list(self.connections.values()):
            w.close()
        for _ in range(100):
            if not self.connections:
                break
            await asyncio.sleep(0.05)
        if self._server is not None:
            await self._server.wait_closed()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        from .handlers_oplock import watch
        wake = self._wake
        assert wake is not None
        while True:
            try:
                await asyncio.wait_for(wake.wait(), POLL_S)
            except TimeoutError:
                pass
            wake.clear()
            try:
                await loop.run_in_executor(self._pool, watch, self.ctx)
            except Exception:
                log.exception("polling leased files failed")
            for c in list(self.connections):
                if c.pending:
                    await loop.run_in_executor(self._pool, c.poll)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        peer = writer.get_extra_info("peername") or ("?", 0)

        def send(data: bytes) -> None:
            def put() -> None:
                if not writer.is_closing():
                    writer.writelines(frame([data]))
            loop.call_soon_threadsafe(put)

        # room for a few 8 MiB answers in flight: the next READ is served while the client still takes
        # the last one in (drain() would otherwise wait for the client after every answer)
        writer.transport.set_write_buffer_limits(high=WRITE_BUFFER)
        local = writer.get_extra_info("sockname") or ("127.0.0.1", self.port)
        conn = Connection(self.ctx, (str(peer[0]), int(peer[1])), send, self.handlers, (str(local[0]), int(local[1])))
        self.connections[conn] = writer
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE)
        work = loop.create_task(self._work(conn, queue, writer))
        frames = FrameReader(MAX_FRAME)
        try:
            while not work.done():
                data = await reader.read(1 << 20)
                if not data:
                    break
                for f in frames.feed(data):
                    await queue.put(f)
        except FramingError as e:
            log.info("SMB connection from %s closed: %s", peer[0], e)
        except (ConnectionError, OSError):
            pass
        finally:
            if not work.done():
                try:
                    queue.put_nowait(None)
                except asyncio.QueueFull:
                    work.cancel()
            try:
                await work
            except (asyncio.CancelledError, Exception):
                pass
            try:
                await loop.run_in_executor(self._pool, conn.close)
            except RuntimeError:  # the pool is shut down: the server is closing
                conn.close()
            self.connections.pop(conn, None)
            writer.close()

    async def _work(self, conn: Connection, queue: asyncio.Queue[bytes | None], writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while True:
            f = await queue.get()
            if f is None:
                return
            try:
                out = await loop.run_in_executor(self._pool, conn.handle, f)
            except Disconnect as e:
                log.info("SMB connection from %s closed: %s", conn.peer[0], e)
                writer.close()
                return
            except Exception:
                log.exception("SMB connection from %s failed", conn.peer[0])
                writer.close()
                return
            for data in out:
                if isinstance(data, Deferred):
                    # a WRITE whose commit runs while this connection's next requests are handled
                    task = loop.create_task(self._finish_deferred(data, writer))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                    continue
                writer.writelines(frame([data]))
            await writer.drain()

    async def _finish_deferred(self, d: Deferred, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        err: BaseException | None = None
        try:
            await loop.run_in_executor(self._pool, d.work)
        except Exception as e:
            err = e
        try:
            frames = await loop.run_in_executor(self._pool, d.finish, err)
        except Exception:
            log.exception("finishing a deferred SMB answer")
            return
        if not writer.is_closing():
            for data in frames:
                writer.writelines(frame([data]))


class ServerThread(LoopThread):
    """An :class:`SmbServer` running its own event loop on a daemon thread (tests, ``serve``)."""

    def __init__(self, server: SmbServer) -> None:
        super().__init__(server, name="tessera-smb-loop")
        self.server: SmbServer = server
