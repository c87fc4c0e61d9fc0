"""Worker processes for the durability and multi-process tests.

Run as ``python -m tests.core.workers ROLE DATA_DIR [ARGS]``; each prints one
line per acknowledged step so the parent knows what was promised durable.
"""

from __future__ import annotations

import hashlib
import sys

from core.store import open_store

CHUNK = 200_000


def block(i: int) -> bytes:
    """Deterministic content of block ``i`` (so the parent can check it)."""
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * (CHUNK // len(seed) + 1))[:CHUNK]


def appender(data: str, name: str, count: int) -> None:
    s = open_store(data)
    fs = s.fs
    f = fs.create(fs.root, name, exclusive=False)
    h = fs.open(f.ino, write=True)
    for i in range(count):
        h.write(i * CHUNK, block(i))
        h.commit()
        print(f"committed {i + 1}", flush=True)
    h.close()
    s.close()


def replacer(data: str, name: str, count: int) -> None:
    s = open_store(data)
    for i in range(count):
        s.fs.write_file(s.fs.root, name, block(i) * 3)
        print(f"replaced {i}", flush=True)
    s.close()


def renamer(data: str, prefix: str, count: int) -> None:
    s = open_store(data)
    fs = s.fs
    d = fs.resolve("/shuffle").ino
    names = [f"{prefix}{i}" for i in range(4)]
    for i in range(count):
        a, b = names[i % 4], f"{prefix}tmp"
        fs.rename(d, a, d, b)
        fs.rename(d, b, d, a)
    print("done", flush=True)
    s.close()


if __name__ == "__main__":
    role, data_dir, *rest = sys.argv[1:]
    {"appender": appender, "replacer": replacer, "renamer": renamer}[role](data_dir, rest[0], int(rest[1]))
