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


def test_compound_waiting_on_a_break_finishes_with_the_rest(clients: list[RawClient]) -> None:
    """CREATE+CLOSE (what a Linux unlink sends) behind a lease break: the interim answer comes alone,
    the final CREATE answer comes compounded with the CLOSE's."""
    from protocols.smb import crypto
    from protocols.smb.header import RELATED_FILE_ID, Flags, compound_response
    a, b = clients
    key = os.urandom(16)
    st, _, level, _, _ = a.create("u.txt", oplock=OplockLevel.LEASE, contexts=lease(key, R | W | H))
    assert st == 0 and level == OplockLevel.LEASE
    h1 = Header(Command.CREATE, message_id=b.mid, credits=8, credit_charge=1, session_id=b.session_id,
                tree_id=b.tree_id)
    h2 = Header(Command.CLOSE, message_id=b.mid + 1, credits=8, credit_charge=1, session_id=b.session_id,
                tree_id=b.tree_id, flags=Flags.RELATED_OPERATIONS)
    b.mid += 2
    msgs = compound_response([(h1, _create_body("u.txt")), (h2, struct.pack("<HHI16s", 24, 0, 0, RELATED_FILE_ID))])
    msgs = [crypto.sign(m, b.signing_key, b.signing) for m in msgs]
    frame = b"".join(msgs)
    b.sock.sendall(len(frame).to_bytes(4, "big") + frame)
    interim = Header.decode(b._recv_frame())
    assert interim.status == 0x103 and interim.is_async and interim.message_id == h1.message_id
    brk = a.unsolicited()
    assert brk is not None
    _, _, _, _, _, new = struct.unpack_from("<HHI16sII", brk.body)
    assert a.ack_lease(key, new).header.status == 0
    final = b._recv_frame()
    first = Header.decode(final)
    assert first.command == Command.CREATE and first.status == 0 and first.next_command
    second = Header.decode(final, first.next_command)
    assert second.command == Command.CLOSE and second.status == 0


def test_no_write_caching_while_other_protocols_lock(clients: list[RawClient], smb_store: Store) -> None:
    """A client caching writes keeps its locks local: locks from NFS/core.fs withhold or break W."""
    a, _ = clients
    fs = smb_store.fs
    data = fs.resolve("/data").ino
    for name in ("locked.bin", "later.bin"):
        fs.write_file(data, name, b"x" * 100)
        fs.setattr(fs.resolve(f"/data/{name}").ino, uid=1000, gid=1000)
    fs.lock(fs.resolve("/data/locked.bin").ino, "nlm:10.0.0.7:host:9", 0, 10, True)
    st, _, level, ctx, _ = a.create("locked.bin", oplock=OplockLevel.LEASE, contexts=lease(os.urandom(16), R | W | H))
    assert st == 0 and level == OplockLevel.LEASE
    assert struct.unpack_from("<I", ctx[b"RqLs"], 16)[0] & W == 0
    key = os.urandom(16)
    st, _, level, ctx, _ = a.create("later.bin", oplock=OplockLevel.LEASE, contexts=lease(key, R | W | H))
    assert struct.unpack_from("<I", ctx[b"RqLs"], 16)[0] == R | W | H
    fs.lock(fs.resolve("/data/later.bin").ino, "nlm:10.0.0.7:host:9", 50, 10, False)
    brk = a.unsolicited(timeout=5)
    assert brk is not None, "no break after another protocol locked the file"
    _, _, _, bkey, current, new = struct.unpack_from("<HHI16sII", brk.body)
    assert bkey == key and current == R | W | H and new & W == 0
