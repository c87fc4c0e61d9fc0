"""Oplocks and leases on a live server, with two raw clients (client libraries do not handle breaks):
a second client's open breaks the first one's write caching, the CREATE waits for the ack; a write
by another protocol (core.fs, as S3 and NFS write) breaks read caching; acknowledgments are checked."""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator

import pytest

from core.store import Store
from protocols.smb.crypto import Dialect
from protocols.smb.header import Command, Header
from protocols.smb.leases import OplockLevel
from protocols.smb.oplockwire import encode_lease_context

from .conftest import PASSWORDS, ServerFactory
from .rawclient import RawClient

R, H, W = 1, 2, 4


@pytest.fixture
def clients(smb_server: ServerFactory) -> Iterator[list[RawClient]]:
    srv = smb_server()
    made: list[RawClient] = []
    made += [RawClient(srv.port, "alice", PASSWORDS["alice"], "data") for _ in range(2)]
    yield made
    for c in made:
        c.shutdown()


def lease(key: bytes, state: int) -> list[tuple[bytes, bytes]]:
    return [(b"RqLs", encode_lease_context(key, state))]


def test_lease_granted_and_broken_by_second_client(clients: list[RawClient]) -> None:
    a, b = clients
    key = os.urandom(16)
    st, fid, level, ctx, _ = a.create("f.txt", oplock=OplockLevel.LEASE, contexts=lease(key, R | W | H))
    assert st == 0 and level == OplockLevel.LEASE
    assert struct.unpack_from("<I", ctx[b"RqLs"], 16)[0] == R | W | H
    assert a.write(fid, 0, b"cached by a") == 0
    # b opens with write access: a's W must go; b's CREATE waits for a's acknowledgment
    raw = b._send(Header(Command.CREATE, tree_id=b.tree_id), _create_body("f.txt"))
    brk = a.unsolicited()
    assert brk is not None and brk.header.command == Command.OPLOCK_BREAK
    size, _epoch, flags, bkey, current, new = struct.unpack_from("<HHI16sII", brk.body)
    assert size == 44 and bkey == key and current == R | W | H and new & W == 0 and flags & 1
    ack = a.ack_lease(key, new)
    assert ack.header.status == 0
    r = b.recv(Header.decode(raw).message_id)
    assert r.header.status == 0


def _create_body(name: str) -> bytes:
    raw = name.encode("utf-16-le")
    return struct.pack("<HBBIQQIIIIIHHII", 57, 0, 0, 2, 0, 0, 0x0012019F, 0x80, 7, 3, 0x40, 120, len(raw), 0,
                       0) + raw


def test_batch_oplock_broken_to_level2(clients: list[RawClient]) -> None:
    a, b = clients
    st, fid, level, _, _ = a.create("g.txt", oplock=OplockLevel.BATCH)
    assert st == 0 and level == OplockLevel.BATCH
    raw = b._send(Header(Command.CREATE, tree_id=b.tree_id), _create_body("g.txt"))
    brk = a.unsolicited()
    assert brk is not None
    size, new_level, _, _, bfid = struct.unpack_from("<HBBI16s", brk.body)
    assert size == 24 and bfid == fid and new_level == OplockLevel.II
    r = a.ack_oplock(fid, OplockLevel.II)
    assert r.header.status == 0 and r.body[2] == OplockLevel.II
    assert b.recv(Header.decode(raw).message_id).header.status == 0
    # acknowledging again without a break in progress is refused
    assert a.ack_oplock(fid, OplockLevel.NONE).header.status != 0


def test_external_changes_break_leases(clients: list[RawClient], smb_store: Store) -> None:
    a, _ = clients
    fs = smb_store.fs
    data = fs.resolve("/data").ino
    fs.write_file(data, "h.txt", b"one")
    fs.write_file(data, "k.txt", b"one")
    key_h, key_k = os.urandom(16), os.urandom(16)
    for name, key in (("h.txt", key_h), ("k.txt", key_k)):
        st, _, level, _, _ = a.create(name, access=0x00120089, oplock=OplockLevel.LEASE, contexts=lease(key, R | H))
        assert st == 0 and level == OplockLevel.LEASE
    time.sleep(1.2)  # the poller has seen both files once
    # an in-place write (as NFS WRITE does): the cached data is stale, R goes
    ino = fs.resolve("/data/k.txt").ino
    fs.write(ino, 0, b"TWO", stable=True)
    brk = a.unsolicited(timeout=5)
    assert brk is not None, "no lease break after another protocol wrote the file"
    _, _, _, bkey, current, new = struct.unpack_from("<HHI16sII", brk.body)
    assert (bkey, current, new) == (key_k, R | H, 0)
    # a replacement (as S3 PUT does): the name now means another file, the handle cache (H) goes
    fs.write_file(data, "h.txt", b"two, written by S3")
    brk = a.unsolicited(timeout=5)
    assert brk is not None, "no lease break after another protocol replaced the file"
    _, _, _, bkey, current, new = struct.unpack_from("<HHI16sII", brk.body)
    assert bkey == key_h and new & H == 0
    assert a.ack_lease(key_h, new).header.status == 0


def test_dialect_202_gets_no_lease(smb_server: ServerFactory) -> None:
    srv = smb_server()
    c = RawClient(srv.port, "alice", PASSWORDS["alice"], "data", dialect=Dialect.SMB202)
    try:
        st, _, level, ctx, _ = c.create("i.txt", oplock=OplockLevel.LEASE, contexts=lease(os.urandom(16), R))
        assert st == 0 and level != OplockLevel.LEASE and b"RqLs" not in ctx
    finally:
        c.shutdown()
