"""XDR (RFC 4506): the project's own codec (``xdrlib`` left the stdlib in Python 3.13).

Big-endian 4-byte units; opaque and string data padded to a multiple of 4 with zero
bytes.  :class:`Packer` builds bytes, :class:`Unpacker` reads them and raises
:class:`XdrError` on anything malformed (short data, a length past the end or over
the caller's bound, a bool that is neither 0 nor 1, non-zero padding is tolerated
as RFC 4506 readers do).

>>> p = Packer(); p.pack_uint(7); p.pack_string(b"ab"); p.pack_bool(True)
>>> raw = p.data(); raw.hex()
'00000007000000026162000000000001'
>>> u = Unpacker(raw); (u.unpack_uint(), u.unpack_string(), u.unpack_bool()); u.done()
(7, b'ab', True)
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")

_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")
_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")


class XdrError(ValueError):
    """Malformed XDR: the RPC layer answers GARBAGE_ARGS."""


def padded(n: int) -> int:
    """Bytes that ``n`` bytes of opaque data take on the wire.

    >>> [padded(n) for n in (0, 1, 4, 5)]
    [0, 4, 4, 8]
    """
    return (n + 3) & ~3


class Packer:
    """Append XDR items; :meth:`data` gives the bytes."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes | bytearray | memoryview] = []

    def pack_uint(self, v: int) -> None:
        self._parts.append(_U32.pack(v))

    def pack_int(self, v: int) -> None:
        self._parts.append(_I32.pack(v))

    def pack_enum(self, v: int) -> None:
        self._parts.append(_I32.pack(int(v)))

    def pack_bool(self, v: bool) -> None:
        self._parts.append(_U32.pack(1 if v else 0))

    def pack_uhyper(self, v: int) -> None:
        self._parts.append(_U64.pack(v))

    def pack_hyper(self, v: int) -> None:
        self._parts.append(_I64.pack(v))

    def pack_fopaque(self, n: int, data: bytes | bytearray | memoryview) -> None:
        """Fixed-length opaque of exactly ``n`` bytes."""
        if len(data) != n:
            raise XdrError(f"fixed opaque needs {n} bytes, got {len(data)}")
        self._parts.append(data)
        self._parts.append(_PAD[n & 3])

    def pack_opaque(self, data: bytes | bytearray | memoryview) -> None:
        """Variable-length opaque (a length, the bytes, padding). Large buffers are not copied."""
        n = len(data)
        self._parts.append(_U32.pack(n))
        self._parts.append(data)
        self._parts.append(_PAD[n & 3])

    def pack_string(self, s: bytes | str) -> None:
        self.pack_opaque(s.encode("utf-8", "surrogateescape") if isinstance(s, str) else s)

    def pack_array(self, items: Sequence[T], fn: Callable[[T], None]) -> None:
        """Counted array: the count, then each item packed by ``fn``."""
        self.pack_uint(len(items))
        for it in items:
            fn(it)

    def pack_list(self, items: Iterable[T], fn: Callable[[T], None]) -> None:
        """An optional-data linked list (``*next``): TRUE + item for each, then FALSE."""
        for it in items:
            self.pack_bool(True)
            fn(it)
        self.pack_bool(False)

    def pack_raw(self, data: bytes | bytearray | memoryview) -> None:
        """Bytes already in XDR form (a nested body)."""
        self._parts.append(data)

    def size(self) -> int:
        return sum(len(p) for p in self._parts)

    def parts(self) -> list[bytes | bytearray | memoryview]:
        """The pieces, for a vectored send without joining large payloads."""
        return self._parts

    def data(self) -> bytes:
        return b"".join(self._parts)


class Unpacker:
    """Read XDR items from ``data`` starting at ``pos``; every read is bounds-checked."""

    __slots__ = ("_buf", "_end", "_pos")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int = 0) -> None:
        self._buf = memoryview(data)
        self._pos = pos
        self._end = len(self._buf)

    @property
    def pos(self) -> int:
        return self._pos

    def remaining(self) -> int:
        return self._end - self._pos

    def _take(self, n: int) -> memoryview:
        p = self._pos
        if n < 0 or p + n > self._end:
            raise XdrError(f"XDR data ends early: need {n} bytes at {p}, have {self._end - p}")
        self._pos = p + n
        return self._buf[p: p + n]

    def unpack_uint(self) -> int:
        return int(_U32.unpack(self._take(4))[0])

    def unpack_int(self) -> int:
        return int(_I32.unpack(self._take(4))[0])

    def unpack_enum(self) -> int:
        return self.unpack_int()

    def unpack_bool(self) -> bool:
        v = self.unpack_uint()
        if v > 1:
            raise XdrError(f"bool must be 0 or 1, got {v}")
        return v == 1

    def unpack_uhyper(self) -> int:
        return int(_U64.unpack(self._take(8))[0])

    def unpack_hyper(self) -> int:
        return int(_I64.unpack(self._take(8))[0])

    def unpack_fopaque(self, n: int) -> bytes:
        data = bytes(self._take(n))
        self._take(padded(n) - n)
        return data

    def unpack_opaque_view(self, max_len: int | None = None) -> memoryview:
        """Variable opaque as a view into the record (no copy; for WRITE payloads)."""
        n = self.unpack_uint()
        if max_len is not None and n > max_len:
            raise XdrError(f"opaque of {n} bytes exceeds its bound {max_len}")
        view = self._take(n)
        self._take(padded(n) - n)
        return view

    def unpack_opaque(self, max_len: int | None = None) -> bytes:
        return bytes(self.unpack_opaque_view(max_len))

    def unpack_string(self, max_len: int | None = None) -> bytes:
        return self.unpack_opaque(max_len)

    def unpack_array(self, fn: Callable[[], T], max_len: int | None = None) -> list[T]:
        n = self.unpack_uint()
        if max_len is not None and n > max_len:
            raise XdrError(f"array of {n} items exceeds its bound {max_len}")
        if n > self.remaining():  # every item takes at least one byte: a cheap sanity bound
            raise XdrError(f"array of {n} items cannot fit in {self.remaining()} bytes")
        return [fn() for _ in range(n)]

    def unpack_list(self, fn: Callable[[], T], max_len: int = 1 << 20) -> list[T]:
        out: list[T] = []
        while self.unpack_bool():
            if len(out) >= max_len:
                raise XdrError("list too long")
            out.append(fn())
        return out

    def rest(self) -> memoryview:
        """Everything not yet read (a nested body), consuming it."""
        return self._take(self.remaining())

    def done(self) -> None:
        """Raise if bytes are left over (a strict decoder of a complete body)."""
        if self._pos != self._end:
            raise XdrError(f"{self._end - self._pos} unexpected bytes after the XDR data")
