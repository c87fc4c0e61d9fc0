"""The S3 audit log: one JSON line per request on logger ``tessera.s3.audit``.

Switched by ``s3.audit`` in the config (``TESSERA_S3_AUDIT=1`` for the
server process).  Each line carries who asked (``principal``: the user name,
or ``anonymous``), the operation, bucket and key, the HTTP status, the body
bytes received and sent, the duration until the last byte was sent, the
client address and the request id::

    {"ts": "2025-01-01T12:00:00.123Z", "level": "info", "logger": "tessera.s3.audit", "msg": "s3 request",
     "principal": "alice", "op": "PutObject", "bucket": "photos", "key": "a.jpg", "status": 200,
     "bytes_in": 1024, "bytes_out": 0, "ms": 3.2, "remote": "10.0.0.7", "request_id": "1F2E..."}

The handler notes the route and principal in the ASGI scope (:func:`note`);
:class:`Recorder` wraps ``receive``/``send`` to count bytes and see the status.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from protocols.s3.router import Route

LOGGER = "tessera.s3.audit"
KEY = "tessera.s3.audit"
log = logging.getLogger(LOGGER)


def enabled_from_env(environ: dict[str, str] | Any) -> bool:
    """
    >>> enabled_from_env({"TESSERA_S3_AUDIT": "true"}), enabled_from_env({})
    (True, False)
    """
    return str(environ.get("TESSERA_S3_AUDIT", "")).lower() in ("1", "true", "yes", "on")


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        out.update(getattr(record, "audit", {}))
        return json.dumps(out, default=str)


def setup() -> None:
    """Audit lines go to stderr as JSON whatever the log level, once per process."""
    if not any(getattr(h, "_tessera_audit", False) for h in log.handlers):
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(_Json())
        h._tessera_audit = True  # type: ignore[attr-defined]
        log.addHandler(h)
    log.setLevel(logging.INFO)
    log.propagate = False


def note(scope: Scope, **fields: object) -> None:
    """Remember facts about the request for its audit line (route=Route, user=name or None)."""
    scope.setdefault(KEY, {}).update(fields)


class Recorder:
    """Counts one request's body bytes both ways and emits its audit line."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope, self._receive, self._send = scope, receive, send
        self.started = time.perf_counter()
        self.bytes_in = self.bytes_out = 0
        self.status = 0
        self.request_id = ""

    async def receive(self) -> Message:
        msg = await self._receive()
        if msg["type"] == "http.request":
            self.bytes_in += len(msg.get("body", b""))
        return msg

    async def send(self, msg: Message) -> None:
        if msg["type"] == "http.response.start":
            self.status = int(msg["status"])
            for k, v in msg.get("headers", []):
                if k.lower() == b"x-amz-request-id":
                    self.request_id = v.decode("latin-1")
        elif msg["type"] == "http.response.body":
            self.bytes_out += len(msg.get("body", b""))
        await self._send(msg)

    def entry(self) -> dict[str, object]:
        facts = self.scope.get(KEY, {})
        r = facts.get("route")
        client = self.scope.get("client")
        return {"principal": facts.get("user") or "anonymous",
                "op": r.op if isinstance(r, Route) else "-",
                "bucket": r.bucket if isinstance(r, Route) else None,
                "key": r.key if isinstance(r, Route) else None,
                "method": self.scope.get("method"), "status": self.status or 499,  # 499: no response was sent
                "bytes_in": self.bytes_in, "bytes_out": self.bytes_out,
                "ms": round((time.perf_counter() - self.started) * 1000, 2),
                "remote": client[0] if client else None, "request_id": self.request_id}

    def emit(self) -> None:
        log.info("s3 request", extra={"audit": self.entry()})
