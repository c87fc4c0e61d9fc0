"""The per-request context handed to every handler."""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request

from protocols.s3.auth import Auth
from protocols.s3.authz import BucketInfo, RequestFacts, authorize
from protocols.s3.errors import S3Error
from protocols.s3.router import Route
from protocols.s3.service import S3Fs

T = TypeVar("T")
POOL = ThreadPoolExecutor(32, thread_name_prefix="s3-io")  # blocking core.fs calls of this process


@dataclass
class Settings:
    region: str = "us-east-1"
    domain: str | None = None  # virtual-host-style requests: <bucket>.<domain>
    min_part_size: int = 5 * 1024 * 1024


@dataclass
class Ctx:
    s3: S3Fs
    request: Request
    route: Route
    auth: Auth
    q: dict[str, str]
    headers: dict[str, list[str]]
    rid: str
    settings: Settings
    bucket_info: BucketInfo | None = None
    facts: RequestFacts | None = None

    def view_for(self, op: str, bucket: str, key: str | None) -> S3Fs:
        """The view one part of this request runs with: each key of DeleteObjects, a copy's source."""
        assert self.facts is not None
        facts = dataclasses.replace(self.facts, op=op, bucket=bucket, key=key, existing_tags=None)
        return authorize(self.s3.service, self.auth.user, facts)[0]

    @property
    def bucket(self) -> str:
        assert self.route.bucket is not None
        return self.route.bucket

    @property
    def key(self) -> str:
        assert self.route.key is not None
        return self.route.key

    def h(self, name: str) -> str | None:
        v = self.headers.get(name)
        return v[0] if v else None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking core.fs work on the worker-thread pool."""
        return await asyncio.get_running_loop().run_in_executor(POOL, fn, *args)


def parse_http_date(value: str) -> float:
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise S3Error("InvalidArgument", f"Invalid date {value!r}", 400) from None
    return dt.timestamp()
