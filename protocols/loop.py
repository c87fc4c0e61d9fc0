"""An asyncio server on its own event loop in a daemon thread: how every protocol server runs in a
process that is not itself asyncio (``serve --role``, tests). Protocol-neutral: the one module the
protocol packages share (tests/test_layers.py allows it).

The server is any object with ``async start()``, ``async close()`` and a ``port`` (bound by
``start``; 0 asked = any free port)::

    t = LoopThread(MyServer(...), name="tessera-x").start()   # returns once start() has run
    ... t.port ...
    t.close()                                                   # close() on the loop, then join
"""

from __future__ import annotations

import asyncio
import threading
from typing import Protocol


class AsyncServer(Protocol):
    port: int

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class LoopThread:
    """``server`` running on its own event loop in a daemon thread."""

    def __init__(self, server: AsyncServer, name: str = "tessera-loop") -> None:
        self.server = server
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def port(self) -> int:
        return self.server.port

    def start(self, timeout: float = 30.0) -> LoopThread:
        """Start the thread; returns once the server listens. Its start-up error is raised here."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"{self._thread.name} did not start")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as e:
            self._error = e
            self._ready.set()
            await self.server.close()
            return
        self._ready.set()
        await self._stop.wait()
        await self.server.close()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the server and wait for its thread (idempotent)."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __enter__(self) -> LoopThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
