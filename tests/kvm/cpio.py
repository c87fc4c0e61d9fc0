"""The cpio "newc" archive format, written in Python: the guest's initramfs needs no ``cpio`` binary.

Each member is a 110-byte ASCII header (magic ``070701`` and 13 eight-digit hex fields), the NUL-terminated
name padded to 4 bytes, then the data padded to 4 bytes; the archive ends with a member named
``TRAILER!!!``. The kernel unpacks concatenated archives in order (a later member replaces an earlier one),
so a tiny per-run archive appended to a base one adds or overrides files cheaply.

>>> a = Archive()
>>> a.dir("etc")
>>> a.file("etc/motd", b"hi\\n")
>>> a.symlink("bin/sh", "busybox")
>>> data = a.finish()
>>> data[:6], len(data) % 4, b"TRAILER!!!" in data
(b'070701', 0, True)
>>> names(data)
['etc', 'etc/motd', 'bin/sh', 'TRAILER!!!']
"""

from __future__ import annotations

import stat

__all__ = ["Archive", "names"]


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


class Archive:
    """Members added in order; parent directories must be added before their children."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._ino = 1

    def _member(self, name: str, mode: int, data: bytes = b"", nlink: int = 1) -> None:
        fields = [self._ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
        self._ino += 1
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        raw = header + name.encode() + b"\0"
        self._parts += [raw, _pad(len(raw)), data, _pad(len(data))]

    def dir(self, name: str, mode: int = 0o755) -> None:
        self._member(name, stat.S_IFDIR | mode, nlink=2)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._member(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._member(name, stat.S_IFLNK | 0o777, target.encode())

    def finish(self) -> bytes:
        """The archive's bytes (with its trailer)."""
        self._member("TRAILER!!!", 0)
        return b"".join(self._parts)


def names(data: bytes) -> list[str]:
    """The member names of a newc archive, in order (for tests and debugging)."""
    out, pos = [], 0
    while pos < len(data):
        header = data[pos:pos + 110]
        size, namesize = int(header[54:62], 16), int(header[94:102], 16)
        pos += 110
        name = data[pos:pos + namesize - 1].decode()
        pos += namesize - 1 + 1
        pos += -pos % 4
        pos += size + (-size % 4)
        out.append(name)
        if name == "TRAILER!!!":
            break
    return out
