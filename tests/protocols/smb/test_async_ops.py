"""Session and asynchronous operations with the raw client: LOGOFF ends a session, ECHO, a blocking
LOCK goes PENDING and completes when the conflicting lock goes (also an NFS-side core.fs lock),
CANCEL ends a waiting lock with CANCELLED, CHANGE_NOTIFY reports a file another protocol made."""

from __future__ import annotations

import struct
import threading
import time

from core.store import Store
from protocols.smb.header import Command, Header
from protocols.smb.lockreq import LockElement, LockFlags, encode_lock
from protocols.smb.notify import CompletionFilter, encode_change_notify

from .conftest import PASSWORDS, ServerFactory
from .rawclient import RawClient

PENDING, CANCELLED = 0x103, 0xC0000120


def _client(srv_port: int) -> RawClient:
    return RawClient(srv_port, "alice", PASSWORDS["alice"], "data")


def _interim(c: RawClient, mid: int) -> Header:
    raw = c._recv_frame()
    h = Header.decode(raw)
    assert h.message_id == mid and h.status == PENDING and h.is_async
    return h


def test_logoff_then_nothing_works(smb_server: ServerFactory) -> None:
    c = _client(smb_server().port)
    assert c.call(Command.ECHO, struct.pack("<HH", 4, 0)).header.status == 0
    assert c.call(Command.LOGOFF, struct.pack("<HH", 4, 0)).header.status == 0
    c.signing_key = b""
    st, *_ = c.create("x.txt")
    assert st == 0xC0000203  # USER_SESSION_DELETED
    c.shutdown()


def test_blocking_lock_waits_for_core_lock_then_cancel(smb_server: ServerFactory, smb_store: Store) -> None:
    c = _client(smb_server().port)
    st, fid, *_ = c.create("l.bin")
    assert st == 0 and c.write(fid, 0, b"0123456789") == 0
    fs = smb_store.fs
    ino = fs.resolve("/data/l.bin").ino
    fs.lock(ino, "nlm:10.0.0.9:host:42", 0, 4, True)  # an NFS client's lock, as NLM takes it
    raw = c._send(Header(Command.LOCK, tree_id=c.tree_id), encode_lock(fid, [LockElement(2, 2, LockFlags.EXCLUSIVE)]))
    mid = Header.decode(raw).message_id
    interim = _interim(c, mid)
    threading.Timer(0.3, lambda: fs.unlock(ino, "nlm:10.0.0.9:host:42", 0, 4)).start()
    r = c.recv(mid)
    assert r.header.status == 0 and r.header.async_id == interim.async_id
    # now another open's blocking lock waits on ours, and CANCEL ends it
    st, fid2, *_ = c.create("l.bin")
    raw = c._send(Header(Command.LOCK, tree_id=c.tree_id), encode_lock(fid2, [LockElement(0, 8, LockFlags.SHARED)]))
    mid = Header.decode(raw).message_id
    interim = _interim(c, mid)
    cancel = Header(Command.CANCEL, flags=0x2, async_id=interim.async_id, session_id=c.session_id)
    c.sock.sendall((64 + 4).to_bytes(4, "big") + cancel.encode() + struct.pack("<HH", 4, 0))
    assert c.recv(mid).header.status == CANCELLED
    c.shutdown()


def test_change_notify_sees_another_protocol(smb_server: ServerFactory, smb_store: Store) -> None:
    c = _client(smb_server().port)
    st, dfid, *_ = c.create("", access=0x00100081, options=0x1)  # the share root, LIST_DIRECTORY
    assert st == 0
    body = encode_change_notify(dfid, 4096, CompletionFilter.FILE_NAME)
    raw = c._send(Header(Command.CHANGE_NOTIFY, tree_id=c.tree_id), body)
    mid = Header.decode(raw).message_id
    _interim(c, mid)
    time.sleep(0.2)
    fs = smb_store.fs
    fs.write_file(fs.resolve("/data").ino, "from-s3.txt", b"hi")
    r = c.recv(mid)
    assert r.header.status == 0
    off, n = struct.unpack_from("<HI", r.body, 2)
    data = r.body[off - 64: off - 64 + n]
    _, action, name_len = struct.unpack_from("<III", data)
    assert action == 1 and data[12:12 + name_len].decode("utf-16-le") == "from-s3.txt"
    c.shutdown()


def test_network_interface_info_names_the_connection_address(smb_server: ServerFactory) -> None:
    import ipaddress

    from protocols.smb.ioctl import Fsctl, encode_ioctl_request
    c = _client(smb_server().port)
    r = c.call(Command.IOCTL, encode_ioctl_request(Fsctl.QUERY_NETWORK_INTERFACE_INFO, b"\xff" * 16, max_output=4096),
               c.tree_id)
    assert r.header.status == 0
    out_off, out_len = struct.unpack_from("<II", r.body, 32)
    nic = r.body[out_off - 64: out_off - 64 + out_len]
    nxt, index, capability, _, speed = struct.unpack_from("<IIIIQ", nic)
    family = struct.unpack_from("<H", nic, 24)[0]
    assert (nxt, index, capability, family) == (0, 1, 0, 2)
    assert ipaddress.ip_address(nic[28:32]) == ipaddress.ip_address("127.0.0.1") and speed > 0
    c.shutdown()
