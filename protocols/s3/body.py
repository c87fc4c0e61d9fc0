"""Reading a request body: stream it, verify it, never keep more than a few MiB.

A body that is not object data has a cap (``request.state.body_cap``, set from
:func:`protocols.s3.limits.body_cap`): a larger declared length is refused
before anything is read, a longer stream as soon as it passes the cap.

Handles Content-Length and aws-chunked bodies (signed or not, with trailers),
checks Content-MD5, the x-amz-content-sha256 digest and x-amz-checksum-*
(header or trailer), and computes the ETag MD5.  Work on each buffer (hashing,
staging) runs in a worker thread while the next buffer arrives.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from starlette.requests import ClientDisconnect, Request

from protocols.s3 import checksums
from protocols.s3.auth import STREAM_SIGNED, STREAMING, UNSIGNED, Auth
from protocols.s3.chunked import ChunkedDecoder
from protocols.s3.errors import S3Error
from protocols.s3.limits import too_big

BATCH = 2 * 1024 * 1024
INLINE_BODY = 256 * 1024
MAX_OBJECT = 5 * 1024**4  # 5 TiB, S3's largest object


@dataclass
class Body:
    size: int
    md5: str  # hex
    checksum: tuple[str, str] | None  # (algorithm, base64) verified


def _h1(headers: Mapping[str, list[str]], name: str) -> str | None:
    v = headers.get(name)
    return v[0] if v else None


def checksum_algo(headers: Mapping[str, list[str]]) -> tuple[str | None, str | None, bool]:
    """(algorithm, expected value or None, expected in trailer)."""
    trailer = (_h1(headers, "x-amz-trailer") or "").strip().lower()
    if trailer.startswith("x-amz-checksum-"):
        return trailer[len("x-amz-checksum-"):].upper(), None, True
    for algo in checksums.ALGORITHMS:
        v = _h1(headers, checksums.header_name(algo))
        if v:
            return algo, v, False
    sdk = _h1(headers, "x-amz-sdk-checksum-algorithm") or _h1(headers, "x-amz-checksum-algorithm")
    return (sdk.upper() if sdk else None), None, False


async def read_body(request: Request, auth: Auth, headers: Mapping[str, list[str]],
                    sink: Callable[[bytes], None]) -> Body:
    chunked = auth.payload in STREAMING or "aws-chunked" in (_h1(headers, "content-encoding") or "")
    length_s = _h1(headers, "x-amz-decoded-content-length") if chunked else _h1(headers, "content-length")
    if length_s is None and not chunked and _h1(headers, "transfer-encoding") is None:
        raise S3Error("MissingContentLength", "You must provide the Content-Length HTTP header.", 411)
    try:
        expect = int(length_s) if length_s is not None else None
    except ValueError:
        raise S3Error("InvalidArgument", "Content-Length is not a number", 400) from None
    if expect is not None and (expect < 0 or expect > MAX_OBJECT):
        raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.", 400)
    cap: int | None = getattr(request.state, "body_cap", None)  # set per operation (limits.body_cap)
    if cap is not None and expect is not None and expect > cap:
        raise too_big(cap)  # refused before a byte is read
    raw_cap = None if cap is None else 2 * cap + 64 * 1024  # aws-chunked framing around at most cap bytes
    md5_hdr = _h1(headers, "content-md5")
    want_md5 = None
    if md5_hdr is not None:
        try:
            want_md5 = base64.b64decode(md5_hdr, validate=True)
        except (binascii.Error, ValueError):
            want_md5 = b""
        if len(want_md5) != 16:
            raise S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.", 400)
    algo, want_sum, in_trailer = checksum_algo(headers)
    summer = checksums.Hasher(algo) if algo else None
    sha = hashlib.sha256() if auth.payload not in STREAMING and auth.payload != UNSIGNED else None
    md5 = hashlib.md5()
    decoder = ChunkedDecoder(auth.signer if auth.payload.startswith(STREAM_SIGNED) else None) if chunked else None
    size = raw = 0

    def hash_work(pieces: list[bytes]) -> None:
        for b in pieces:
            md5.update(b)
            if summer is not None:
                summer.update(b)
            if sha is not None:
                sha.update(b)

    def stage_work(pieces: list[bytes]) -> None:
        for b in pieces:
            sink(b)

    inline = expect is not None and expect <= INLINE_BODY  # small: no thread hops at all
    batch: list[bytes] = []
    batched = 0
    pending: asyncio.Future[Any] | None = None

    async def flush(final: bool = False) -> None:
        nonlocal batch, batched, pending
        if pending is not None:
            await pending
            pending = None
        if batch:
            data, batch, batched = batch, [], 0
            if inline:
                hash_work(data)
                stage_work(data)
            else:  # hash on one thread, encode/write on another, receive meanwhile
                pending = asyncio.gather(to_thread.run_sync(hash_work, data), to_thread.run_sync(stage_work, data))
        if final and pending is not None:
            await pending
            pending = None

    try:
        async for piece in request.stream():
            raw += len(piece)
            if raw_cap is not None and raw > raw_cap:
                raise too_big(cap or 0)
            pieces = decoder.feed(piece) if decoder is not None else [piece]
            for p in pieces:
                size += len(p)
                if expect is not None and size > expect:
                    raise S3Error("IncompleteBody", "The request body is longer than its declared length", 400)
                if cap is not None and size > cap:
                    raise too_big(cap)
                batch.append(p)
                batched += len(p)
            if batched >= BATCH:
                await flush()
    except ClientDisconnect:
        raise S3Error("IncompleteBody", "The client closed the connection before sending the whole body",
                      400) from None
    finally:
        if pending is not None and not pending.done():
            await asyncio.wait([pending])
    request.state.body_read = True
    if decoder is not None:
        decoder.finish()
    await flush(final=True)
    if expect is not None and size != expect:
        raise S3Error("IncompleteBody", "You did not provide the number of bytes specified by the "
                      "Content-Length HTTP header", 400)
    if want_md5 is not None and md5.digest() != want_md5:
        raise S3Error("BadDigest", "The Content-MD5 you specified did not match what we received.", 400)
    if sha is not None and not hmac.compare_digest(sha.hexdigest(), auth.payload):
        raise S3Error("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match "
                      "what was computed.", 400)
    checksum = None
    if summer is not None and algo is not None:
        if in_trailer:
            want_sum = decoder.trailers.get(checksums.header_name(algo)) if decoder else None
            if want_sum is None:
                raise S3Error("MalformedTrailerError", "The request contained trailing data that was not "
                              "well-formed or did not conform to our published schema.", 400)
        got = summer.b64()
        if want_sum is not None and want_sum != got:
            raise checksums.mismatch(algo)
        checksum = (algo, got)
    return Body(size, md5.hexdigest(), checksum)
