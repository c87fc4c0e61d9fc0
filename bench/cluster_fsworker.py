"""bench/cluster.py's core.fs worker: one stream of one node, run inside that node's network namespace.

    python bench/cluster_fsworker.py DATA_DIR write|read NAME SIZE

Opens the node's data directory (so it acts as that node: its own targets locally, the other nodes' through
their target servers), prints ``ready``, waits for a line on stdin (EOF: exits without doing anything), then
writes ``/NAME`` of SIZE bytes with ``write_file`` (8 MiB blocks of random bytes, durable on return) or reads
it back with ``read_committed`` into an 8 MiB buffer, and prints one JSON line::

    {"seconds": wall time of the write or read, "cpu": this process's CPU-s over it (all threads),
     "local": the share of the file's shards on this node's targets (by bytes)}
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BLOCK = 8 << 20


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def local_share(s: Any, name: str, size: int) -> float:
    """The share of the file's bytes' shards that sit on this node's targets (by piece length)."""
    where = {t.id: t.node for t in s.targets()}
    _, pieces, segs = s.layout(s.fs.resolve("/" + name).ino, size)
    me = s.node.name if s.node is not None else ""
    mine = sum(p.len * sum(where.get(t) == me for t in segs[p.segment].targets) / len(segs[p.segment].targets)
               for p in pieces if p.segment)
    return float(mine / max(1, size))


def main(argv: list[str]) -> None:
    data, op, name, size = argv[0], argv[1], argv[2], int(argv[3])
    from core.store import open_store
    with open_store(data) as s:
        fs = s.fs
        block = os.urandom(BLOCK) if op == "write" else b""
        print("ready", flush=True)
        if not sys.stdin.readline():
            return  # the benchmark gave up
        c0, t0 = own_cpu(), time.perf_counter()
        if op == "write":
            fs.write_file(fs.root, name, (block for _ in range(size // BLOCK)))
        else:
            ino, off = fs.resolve("/" + name).ino, 0
            view = memoryview(bytearray(BLOCK))
            while off < size:
                got = fs.read_committed(ino, off, view)
                if not got:
                    raise RuntimeError(f"/{name} ended at {off} of {size}")
                off += got
        took, cpu = time.perf_counter() - t0, own_cpu() - c0
        local = local_share(s, name, size)
    print(json.dumps({"seconds": took, "cpu": cpu, "local": local}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
