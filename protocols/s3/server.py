"""Run the S3 app under uvicorn: ``python -m protocols.s3.server`` (started by ``tessera serve``).

Settings arrive in the environment (TESSERA_DATA, TESSERA_S3_*), so every
uvicorn worker process opens the store itself.

Connections are served by :class:`S3HttpProtocol`, uvicorn's httptools
protocol with the limits uvicorn lacks (all per worker process; environment
variables, defaults in :class:`ConnLimits`):

- the request head (request line + headers) at most ``TESSERA_S3_MAX_HEAD_BYTES``
  bytes and ``TESSERA_S3_MAX_HEADERS`` headers, else 431 and the connection closed:
  memory per connection stays bounded whatever a client sends;
- the head complete within ``TESSERA_S3_HEADER_TIMEOUT_S`` of the connection
  opening or of its first byte (slowloris), else 408 and closed;
- a request body that stalls for ``TESSERA_S3_BODY_IDLE_TIMEOUT_S`` (no byte
  while the server is ready for more) closes the connection;
- at most ``TESSERA_S3_MAX_CONN_PER_IP`` connections from one client address and
  ``TESSERA_S3_MAX_CONN`` in all; past either a new connection gets 503 SlowDown
  and is closed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(frozen=True)
class ConnLimits:
    max_head_bytes: int = 64 * 1024
    max_headers: int = 128
    header_timeout_s: float = 20.0
    body_idle_timeout_s: float = 60.0
    max_conn_per_ip: int = 256
    max_conn: int = 1024

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ConnLimits:
        """Each field from ``TESSERA_S3_<FIELD>`` when set.

        >>> ConnLimits.from_env({"TESSERA_S3_HEADER_TIMEOUT_S": "2", "TESSERA_S3_MAX_CONN": "10"})
        ConnLimits(max_head_bytes=65536, max_headers=128, header_timeout_s=2.0, body_idle_timeout_s=60.0, \
max_conn_per_ip=256, max_conn=10)
        """
        kw: dict[str, Any] = {}
        for f in fields(cls):
            v = env.get(f"TESSERA_S3_{f.name.upper()}")
            if v:
                kw[f.name] = float(v) if f.name.endswith("_s") else int(v)
        return cls(**kw)


def _reply(status: str, code: str, message: str) -> bytes:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            "</Error>").encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode() + body


TOO_LARGE = _reply("431 Request Header Fields Too Large", "RequestHeaderSectionTooLarge",
                   "Your request header section exceeds the maximum allowed size.")
HEAD_TIMEOUT = _reply("408 Request Timeout", "RequestTimeout",
                      "Your socket connection to the server was not read from or written to within the timeout "
                      "period.")
BUSY = _reply("503 Service Unavailable", "SlowDown", "Too many connections: reduce your request rate.")


class _TooManyHeaders(Exception):
    pass


class S3HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head size/count limits, head and body-idle timeouts, connection caps."""

    limits: ClassVar[ConnLimits] = ConnLimits.from_env(os.environ)
    per_ip: ClassVar[Counter[str]] = Counter()  # open connections per client address, in this process

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._ip: str | None = None  # counted in per_ip
        self._awaiting_head = True
        self._head_bytes = 0
        self._nheaders = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._last_body = 0.0

    # -- connections ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ip = self.client[0] if self.client else ""
        if len(self.connections) > self.limits.max_conn or self.per_ip[ip] >= self.limits.max_conn_per_ip:
            self._close_with(BUSY)
            return
        self._ip = ip
        self.per_ip[ip] += 1
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        if self._ip is not None:
            self.per_ip[self._ip] -= 1
            if self.per_ip[self._ip] <= 0:
                del self.per_ip[self._ip]
            self._ip = None
        super().connection_lost(exc)

    def _close_with(self, reply: bytes) -> None:
        self._cancel_timers()
        if not self.transport.is_closing():
            self.transport.write(reply)
            self.transport.close()

    def _cancel_timers(self) -> None:
        for t in (self._head_timer, self._body_timer):
            if t is not None:
                t.cancel()
        self._head_timer = self._body_timer = None

    # -- bytes in ------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing() or self.parser is None:
            return
        if self._awaiting_head:
            self._head_bytes += len(data)
        else:
            self._last_body = self.loop.time()
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()  # S3 has no upgrades
        except httptools.HttpParserError:
            if self._nheaders > self.limits.max_headers:
                self._close_with(TOO_LARGE)
            else:
                self.send_400_response("Invalid HTTP request received.")
            return
        if self._awaiting_head and self._head_bytes > self.limits.max_head_bytes:
            self._close_with(TOO_LARGE)

    # -- parser callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._nheaders = 0
        if self._head_timer is None:
            self._arm_head_timer()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._nheaders += 1
        if self._nheaders > self.limits.max_headers:
            raise _TooManyHeaders
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._head_bytes = 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._last_body = self.loop.time()
        if self._body_timer is None:
            self._body_timer = self.loop.call_later(self.limits.body_idle_timeout_s, self._body_idle)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._awaiting_head = True
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    # -- timers --------------------------------------------------------------------------
    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timeout)

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self._awaiting_head and (self.cycle is None or self.cycle.response_complete):
            self._close_with(HEAD_TIMEOUT)

    def _body_idle(self) -> None:
        """No body byte for the idle timeout: close, unless we are the ones not reading."""
        self._body_timer = None
        if self._awaiting_head or self.transport.is_closing():
            return
        waiting_on_us = self.flow.read_paused or (self.cycle is not None and self.cycle.waiting_for_100_continue)
        idle = self.loop.time() - self._last_body
        if waiting_on_us or idle < self.limits.body_idle_timeout_s:
            if waiting_on_us:
                self._last_body = self.loop.time()
            delay = self.limits.body_idle_timeout_s - (0 if waiting_on_us else idle)
            self._body_timer = self.loop.call_later(delay, self._body_idle)
            return
        self._cancel_timers()
        self.transport.close()  # the handler sees a disconnect: IncompleteBody


def main() -> int:
    # validated by gateway.config (s3.listen) before this process starts; protocols do not import the gateway
    host, _, port = os.environ.get("TESSERA_S3_LISTEN", "0.0.0.0:9000").rpartition(":")
    host = host.strip("[]")
    workers = int(os.environ.get("TESSERA_S3_WORKERS", "2"))
    cert, key = os.environ.get("TESSERA_S3_CERT"), os.environ.get("TESSERA_S3_KEY")
    uvicorn.run("protocols.s3.app:app_from_env", factory=True, host=host, port=int(port), workers=workers,
                http="protocols.s3.server:S3HttpProtocol",
                ssl_certfile=cert or None, ssl_keyfile=key or None, log_level=os.environ.get("TESSERA_LOG", "warning"),
                access_log=False, timeout_keep_alive=30, server_header=False, date_header=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
