"""aws-chunked body decoding (sans-IO): feed bytes, get payload; verify as it goes.

Framing (RFC 7230 chunked, with AWS extensions)::

    <hex size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n ... 0[;chunk-signature=<sig>]\\r\\n
    [<trailer name>:<value>\\r\\n ...][x-amz-trailer-signature:<sig>\\r\\n]\\r\\n

With a :class:`ChunkSigner`, every chunk's signature chains from the seed
(request) signature and must match; the trailer signature chains from the last
chunk's.  Errors raise S3Error with the codes S3 uses.
"""

from __future__ import annotations

import hashlib
import hmac
import string
from dataclasses import dataclass, field

from protocols.s3 import sigv4
from protocols.s3.errors import S3Error

MAX_LINE = 4096
MAX_CHUNK = 64 * 1024 * 1024


@dataclass
class ChunkSigner:
    key: bytes
    amz_date: str
    scope: str
    prev: str  # the seed signature, then each chunk's

    def check_chunk(self, sig: str, digest: str) -> None:
        want = sigv4.sign(self.key, sigv4.chunk_string(self.amz_date, self.scope, self.prev, digest))
        if not (want.isascii() and sig.isascii() and hmac.compare_digest(want, sig)):
            raise S3Error("SignatureDoesNotMatch", "The chunk signature does not match", 403)
        self.prev = sig

    def check_trailer(self, sig: str, trailer_text: str) -> None:
        digest = hashlib.sha256(trailer_text.encode()).hexdigest()
        want = sigv4.sign(self.key, sigv4.trailer_string(self.amz_date, self.scope, self.prev, digest))
        if not (want.isascii() and sig.isascii() and hmac.compare_digest(want, sig)):
            raise S3Error("SignatureDoesNotMatch", "The trailer signature does not match", 403)


def _bad(msg: str) -> S3Error:
    return S3Error("IncompleteBody", f"Malformed aws-chunked body: {msg}", 400)


@dataclass
class ChunkedDecoder:
    signer: ChunkSigner | None = None
    trailers: dict[str, str] = field(default_factory=dict)
    _buf: bytearray = field(default_factory=bytearray)
    _state: str = "size"
    _left: int = 0
    _sig: str = ""
    _hash: hashlib._Hash | None = None
    _trailer_lines: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            if self._state == "size":
                line = self._line()
                if line is None:
                    break
                self._start_chunk(line)
            elif self._state == "data":
                if not self._buf:
                    break
                n = min(self._left, len(self._buf))
                piece = bytes(self._buf[:n])
                del self._buf[:n]
                self._left -= n
                if self._hash is not None:
                    self._hash.update(piece)
                out.append(piece)
                if self._left == 0:
                    self._state = "crlf"
            elif self._state == "crlf":
                if len(self._buf) < 2:
                    break
                if self._buf[:2] != b"\r\n":
                    raise _bad("chunk not followed by CRLF")
                del self._buf[:2]
                self._end_chunk()
                self._state = "size"
            elif self._state == "trailer":
                line = self._line()
                if line is None:
                    break
                if line == "":
                    self._finish_trailer()
                    self._state = "done"
                else:
                    self._trailer_lines.append(line)
            else:  # done: anything after is an error
                if self._buf.strip():
                    raise _bad("data after the final chunk")
                self._buf.clear()
                break
        return out

    def _line(self) -> str | None:
        i = self._buf.find(b"\n")
        if i < 0:
            if len(self._buf) > MAX_LINE:
                raise _bad("line too long")
            return None
        line = bytes(self._buf[:i]).rstrip(b"\r").decode("latin-1")
        del self._buf[: i + 1]
        return line

    def _start_chunk(self, line: str) -> None:
        size_s, _, ext = line.partition(";")
        size_s = size_s.strip()
        if not 0 < len(size_s) <= 16 or not all(c in string.hexdigits for c in size_s):
            raise _bad(f"bad chunk size {size_s[:32]!r}")  # hex digits only: int() would take '0x', '_', '+'
        size = int(size_s, 16)
        if size > MAX_CHUNK:
            raise _bad("chunk size out of range")
        self._sig = ""
        if ext.startswith("chunk-signature="):
            self._sig = ext[len("chunk-signature="):].strip()
        if self.signer is not None and not self._sig:
            raise S3Error("SignatureDoesNotMatch", "A chunk signature is missing", 403)
        self._hash = hashlib.sha256() if self.signer is not None else None
        self._left = size
        if size == 0:
            if self.signer is not None:
                self.signer.check_chunk(self._sig, sigv4.EMPTY_SHA256)
            self._state = "trailer"
        else:
            self._state = "data"

    def _end_chunk(self) -> None:
        if self.signer is not None and self._hash is not None:
            self.signer.check_chunk(self._sig, self._hash.hexdigest())

    def _finish_trailer(self) -> None:
        sig = None
        text = ""
        for line in self._trailer_lines:
            name, sep, value = line.partition(":")
            if not sep:
                raise _bad(f"bad trailer line {line!r}")
            name = name.strip().lower()
            if name == "x-amz-trailer-signature":
                sig = value.strip()
                continue
            self.trailers[name] = value.strip()
            text += f"{name}:{value.strip()}\n"
        if self.signer is not None and self.trailers:
            if sig is None:
                raise S3Error("SignatureDoesNotMatch", "The trailer signature is missing", 403)
            self.signer.check_trailer(sig, text)

    def finish(self) -> None:
        """Call at end of body: raises if the framing was cut short."""
        if self._state == "trailer" and not self._buf:
            self._finish_trailer()  # some clients end right after the last trailer line
            self._state = "done"
        if self._state != "done":
            raise _bad("the body ended before the final chunk")
