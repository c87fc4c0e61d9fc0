"""kill -9 during a versioned overwrite keeps either version, never neither (issue 13).

A child process opens a real on-disk store (six target directories, SQLite metadata) and overwrites one
key in a tree with versioning enabled, in a loop: large (several stripes) and small (inline) payloads,
alternately by ``write_file`` (a whole-file replace, as S3 PUT) and by ``open(truncate=True)`` + write +
flush (as NFS/SMB).  It prints ``begin R I`` before each overwrite and ``ack R I VID`` once it returned.
The test SIGKILLs it at a random moment, reopens the store and checks:

* the live file is an acknowledged payload or the one in flight, byte-exact (or empty, when the kill
  fell between a committed truncate and the write's flush: the truncate is its own durable step);
* every kept version reads byte-exact and is one of the payloads written (or that empty intermediate);
* nothing acknowledged is lost: each acknowledged payload is the live file or a kept version, with the
  version id its overwrite reported;
* segment GC (``collect``) then frees nothing a version needs: everything reads the same afterwards.

Then the next round starts a new child over the same store.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from core.store import Store, init_store, open_store

ROOT = Path(__file__).resolve().parents[3]
ROUNDS = 6

CHILD = textwrap.dedent("""
    import random, sys
    from core.store import open_store

    def payload(r, i):
        size = 2 * 1024 * 1024 + 4099 * i + r if i % 2 == 0 else 100 + 7 * i + r
        return random.Random(r * 1_000_003 + i).randbytes(size)

    store = open_store(sys.argv[1])
    fs = store.fs
    r = int(sys.argv[2])
    b = fs.resolve("/b").ino
    print("ready", flush=True)
    for i in range(1_000_000):
        data = payload(r, i)
        hit = fs.lookup(b, "k") if (i // 2) % 2 else None
        print(f"begin {r} {i} {'trunc' if hit else 'put'}", flush=True)
        if hit is None:
            ino = fs.write_file(b, "k", data).ino
        else:
            ino = hit.ino
            with fs.open(ino, write=True, truncate=True) as h:
                h.write(0, data)
                h.flush()
        print(f"ack {r} {i} {fs.version_id(ino)}", flush=True)
""")


def payload(r: int, i: int) -> bytes:
    size = 2 * 1024 * 1024 + 4099 * i + r if i % 2 == 0 else 100 + 7 * i + r
    return random.Random(r * 1_000_003 + i).randbytes(size)


Flight = tuple[int, int, str] | None  # (round, index, 'put' | 'trunc') of the overwrite a kill interrupted


def _round(d: str, r: int, out: Path, rng: random.Random) -> tuple[dict[tuple[int, int], str], Flight]:
    """Run one child until a random SIGKILL; (acknowledged (r, i) -> vid, the overwrite in flight)."""
    with open(out, "w") as f:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, d, str(r)], cwd=ROOT, stdout=f,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "ack" not in out.read_text():  # started, and one overwrite through
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, "the child did not start"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.2))
        assert proc.poll() is None, out.read_text()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    acked: dict[tuple[int, int], str] = {}
    flight: Flight = None
    for line in out.read_text().splitlines():
        w = line.split()
        if w[:1] == ["begin"]:
            flight = (int(w[1]), int(w[2]), w[3])
        elif w[:1] == ["ack"] and len(w) == 4:
            acked[(int(w[1]), int(w[2]))] = w[3]
            flight = None
    return acked, flight


def _everything(s: Store) -> tuple[bytes, list[tuple[str, bytes]]]:
    fs = s.fs
    live = fs.resolve("/b/k")
    rv = fs.reading_versions()
    kept = [(v.vid, rv.read(v.ino, 0, v.size + 1)) for v in fs.versions("/b/k") if v.kind != "current"]
    for v in fs.versions("/b/k"):
        assert v.kind in ("current", "version"), v  # versioning enabled: no trash, no marker here
    return fs.read(live.ino, 0, live.size + 1), kept


@pytest.mark.timeout(300)
def test_kill_9_during_versioned_overwrite_keeps_either_version(tmp_path: Path) -> None:
    d = str(tmp_path / "store")
    init_store(d, targets=[str(tmp_path / f"t{i}") for i in range(6)])
    s = open_store(d)
    s.fs.set_tree_policy(s.fs.mkdir(s.fs.root, "b").ino, versioning="enabled")
    s.close()
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    acked: dict[bytes, str] = {}      # acknowledged payload -> the version id its overwrite reported
    written: set[bytes] = set()       # acknowledged or in flight at a kill
    empty_ok = False
    kills_in_flight = 0
    for r in range(ROUNDS):
        got, flight = _round(d, r, tmp_path / f"child{r}.log", rng)
        assert got, f"round {r}: nothing acknowledged before the kill"
        for (rr, i), vid in got.items():
            acked[payload(rr, i)] = vid
            written.add(payload(rr, i))
        if flight is not None:
            kills_in_flight += 1
            written.add(payload(flight[0], flight[1]))
        s = open_store(d)
        try:
            live, kept = _everything(s)
            if live == b"":  # killed between a committed truncate and its flush
                assert flight is not None and flight[2] == "trunc", flight
                empty_ok = True
            else:
                assert live in written, f"round {r}: the live file is no payload written ({len(live)} bytes)"
            allowed = written | ({b""} if empty_ok else set())
            for vid, data in kept:
                assert data in allowed, f"round {r}: version {vid} holds no payload written ({len(data)} bytes)"
            have = {data: vid for vid, data in kept}
            have[live] = s.fs.version_id(s.fs.resolve("/b/k").ino)
            for data, vid in acked.items():
                assert data in have, f"round {r}: an acknowledged payload ({len(data)} bytes, {vid}) is lost"
                assert have[data] == vid, f"round {r}: payload acknowledged as {vid} is kept as {have[data]}"
            s.collect(seal=True)
            assert _everything(s) == (live, kept), f"round {r}: GC changed what the versions read"
        finally:
            s.close()
    print(f"{len(acked)} acknowledged, {kills_in_flight} kills mid-overwrite, empty seen: {empty_ok}")
    assert len(acked) >= ROUNDS
