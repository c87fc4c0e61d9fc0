"""The target server over real sockets, spoken to frame by frame (the raw protocol)."""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.data import tserver, wire
from core.data.target import DirTarget
from core.data.tserver import TargetServer

pytestmark = pytest.mark.timeout(60)
TOKEN = b"cluster-secret"


@pytest.fixture
def targets(tmp_path: Path) -> Iterator[dict[int, DirTarget]]:
    out = {}
    sid = uuid.uuid4()
    for tid in (4, 9):
        p = str(tmp_path / f"t{tid}")
        DirTarget.format(p, tid, sid)
        out[tid] = DirTarget(tid, p)
    yield out
    for t in out.values():
        t.close()


def _serve(targets: dict[int, DirTarget], **kw: float) -> Iterator[TargetServer]:
    srv = TargetServer(targets, "127.0.0.1", 0, TOKEN, **kw)  # type: ignore[arg-type]
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def server(targets: dict[int, DirTarget]) -> Iterator[TargetServer]:
    yield from _serve(targets)


class Raw:
    """A hand-driven client: frames in, frames out."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.reader = wire.FrameReader(response=True)
        self.rid = 0

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> wire.Frame | None:
        while True:
            buf = self.reader.buffer()
            n = self.sock.recv_into(buf)
            if n == 0:
                return None
            f = self.reader.filled(n)
            if f is not None:
                return f

    def call(self, req: wire.Request, payload: bytes = b"") -> wire.Frame:
        self.rid += 1
        self.send(wire.encode_request(self.rid, req, len(payload)) + payload)
        f = self.recv()
        assert f is not None and f.header.rid == self.rid
        return f

    def login(self, token: bytes = TOKEN) -> wire.Frame:
        cn = os.urandom(16)
        f = self.call(wire.Hello((1,), cn))
        assert not f.header.flags & wire.ERROR
        v, sn, sproof = wire.decode_hello_reply(f.fields)
        assert v == 1 and sproof == wire.proof(TOKEN, "server", 1, cn, sn)
        return self.call(wire.Auth(wire.proof(token, "client", 1, cn, sn)))

    def closed(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:  # closed with our unread bytes still queued
            return True

    def close(self) -> None:
        self.sock.close()


def _err(f: wire.Frame) -> int:
    assert f.header.flags == wire.RESPONSE | wire.ERROR
    return wire.from_wire(wire.decode_error(f.fields)[0])


def _ok(f: wire.Frame) -> wire.Frame:
    assert f.header.flags == wire.RESPONSE, wire.decode_error(f.fields)
    return f


def test_every_op(server: TargetServer, targets: dict[int, DirTarget]) -> None:
    c = Raw(server.port)
    _ok(c.login())
    data = os.urandom(300_000)
    f = _ok(c.call(wire.Write(4, 7, 2, 4096, True), data))
    assert wire.decode_u64(f.fields) == len(data)
    f = _ok(c.call(wire.Read(4, 7, 2, 4096, len(data) + 1000)))
    assert bytes(f.payload) == data  # short at end of file
    with open(os.path.join(targets[4].path, "shards", f"{7:016x}.2"), "rb") as fh:
        assert fh.read()[4096:] == data
    _ok(c.call(wire.Sync(4, 7, 2)))
    assert wire.decode_u64(_ok(c.call(wire.Stat(4, 7, 2))).fields) == 4096 + len(data)
    _ok(c.call(wire.Write(4, 3, 0, 0, True), b"x"))
    f = _ok(c.call(wire.List(4, 0, 0, 100)))
    assert wire.decode_list(f.fields, f.payload) == [(3, 0), (7, 2)]
    f = _ok(c.call(wire.List(4, 3, 1, 100)))
    assert wire.decode_list(f.fields, f.payload) == [(7, 2)]
    f = _ok(c.call(wire.List(4, 0, 0, 1)))
    assert wire.decode_list(f.fields, f.payload) == [(3, 0)]
    total, free, usage = wire.decode_space(_ok(c.call(wire.Space(4))).fields)
    assert total >= free > 0 and usage >= len(data)
    assert wire.decode_ping(_ok(c.call(wire.Ping())).fields) == [4, 9]
    _ok(c.call(wire.Delete(4, 7, 2)))
    _ok(c.call(wire.Delete(4, 7, 2)))  # deleting a missing shard is fine
    assert targets[4].list_shards() == [(3, 0)]
    c.close()


def test_disk_errors_keep_the_connection(server: TargetServer) -> None:
    c = Raw(server.port)
    _ok(c.login())
    assert _err(c.call(wire.Read(4, 1, 0, 0, 10))) == errno.ENOENT
    assert _err(c.call(wire.Write(4, 1, 0, 0, False), b"abc")) == errno.ENOENT  # no create flag
    assert _err(c.call(wire.Stat(4, 1, 0))) == errno.ENOENT
    assert _err(c.call(wire.Read(77, 1, 0, 0, 10))) == errno.ENODEV  # not a target of this node
    assert _err(c.call(wire.Space(77))) == errno.ENODEV
    c.rid += 1
    c.send(wire.pack_header(200, 0, c.rid, 0, 0))  # an unknown op in a good frame
    f = c.recv()
    assert f is not None and _err(f) == errno.ENOTSUP
    assert _err(c.call(wire.Hello((1,), os.urandom(16)))) == errno.EINVAL  # already authenticated
    _ok(c.call(wire.Ping()))
    c.close()


def test_wrong_token_gets_nothing(server: TargetServer, targets: dict[int, DirTarget]) -> None:
    targets[4].open_shard(1, 0, create=True).pwritev([b"secret data"], 0)
    c = Raw(server.port)
    assert _err(c.login(b"not-the-token")) == errno.EACCES
    assert c.closed()
    c = Raw(server.port)  # no handshake at all
    f = c.call(wire.Read(4, 1, 0, 0, 11))
    assert _err(f) == errno.EACCES and not f.payload
    assert c.closed()
    c = Raw(server.port)  # AUTH without HELLO
    assert _err(c.call(wire.Auth(os.urandom(32)))) == errno.EACCES
    assert c.closed()
    c = Raw(server.port)
    c.send(wire.encode_request(1, wire.Write(4, 1, 0, 0, True), 5) + b"owned")
    answer = c.recv()
    assert answer is not None and _err(answer) == errno.EACCES
    assert c.closed()
    buf = bytearray(11)
    targets[4].open_shard(1, 0).preadv([buf], 0)
    assert buf == b"secret data"


def test_unsupported_version(server: TargetServer) -> None:
    c = Raw(server.port)
    f = c.call(wire.Hello((7, 9), os.urandom(16)))
    assert _err(f) == errno.EPROTONOSUPPORT and "1" in wire.decode_error(f.fields)[1]
    assert c.closed()
    c = Raw(server.port)
    f = c.call(wire.Hello((9, 1), os.urandom(16)))  # a newer client that still speaks 1
    assert wire.decode_hello_reply(_ok(f).fields)[0] == 1


@pytest.mark.parametrize(("raw", "code"), [
    (wire.pack_header(wire.Op.WRITE, 0, 5, 28, wire.MAX_PAYLOAD + 1), errno.EMSGSIZE),
    (wire.pack_header(wire.Op.PING, 0, 5, wire.MAX_FIELDS + 1, 0), errno.EMSGSIZE),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", errno.EPROTO),
    (wire.pack_header(wire.Op.STAT, 0, 5, 3, 0) + b"abc", errno.EPROTO),
    (wire.pack_header(wire.Op.PING, 1, 5, 0, 0), errno.EPROTO),
])
def test_bad_frames_close_the_connection(server: TargetServer, raw: bytes, code: int) -> None:
    for authed in (False, True):
        c = Raw(server.port)
        if authed:
            _ok(c.login())
        c.send(raw)
        f = c.recv()
        assert f is not None and _err(f) == code
        assert c.closed()
    c = Raw(server.port)  # and the server goes on serving
    _ok(c.login())
    _ok(c.call(wire.Ping()))


U32, U64 = st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)
TIDS = st.sampled_from([4, 9, 0, 2**32 - 1])
SHARD = (TIDS, st.one_of(st.integers(0, 3), U64), st.one_of(st.integers(0, 3), U32))
LIVE_REQUESTS = st.one_of(
    st.builds(wire.Write, *SHARD, st.one_of(st.integers(0, 1 << 20), U64), st.booleans()),
    st.builds(wire.Read, *SHARD, st.one_of(st.integers(0, 1 << 20), U64), st.one_of(st.integers(0, 1 << 18), U32)),
    st.builds(wire.Sync, *SHARD), st.builds(wire.Stat, *SHARD), st.builds(wire.Delete, *SHARD),
    st.builds(wire.List, TIDS, U64, U32, U32), st.builds(wire.Space, TIDS), st.just(wire.Ping()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reqs=st.lists(st.tuples(LIVE_REQUESTS, st.binary(max_size=64)), min_size=1, max_size=5))
def test_fuzzed_requests_always_get_an_answer(server: TargetServer, reqs: list[tuple[wire.Request, bytes]]) -> None:
    c = Raw(server.port)
    try:
        _ok(c.login())
        for req, data in reqs:
            f = c.call(req, data if isinstance(req, wire.Write) else b"")
            assert f.header.op == wire.op_of(req)
            if f.header.flags & wire.ERROR:
                _err(f)
        _ok(c.call(wire.Ping()))  # and the connection still serves
    finally:
        c.close()


def test_largest_frame(server: TargetServer) -> None:
    c = Raw(server.port)
    _ok(c.login())
    data = os.urandom(wire.MAX_PAYLOAD)
    assert wire.decode_u64(_ok(c.call(wire.Write(9, 1, 0, 0, True), data)).fields) == len(data)
    assert bytes(_ok(c.call(wire.Read(9, 1, 0, 0, wire.MAX_PAYLOAD))).payload) == data
    assert _err(c.call(wire.Read(9, 1, 0, 0, wire.MAX_PAYLOAD + 1))) == errno.EMSGSIZE
    _ok(c.call(wire.Ping()))


def test_big_write_with_bad_flags_closes(server: TargetServer) -> None:
    c = Raw(server.port)
    _ok(c.login())
    fields = struct.pack("<IQIQI", 4, 1, 0, 0, 0x80)  # unknown WRITE flag: its big payload cannot be skipped
    c.send(wire.pack_header(wire.Op.WRITE, 0, 9, len(fields), 1 << 20) + fields + bytes(1 << 20))
    f = c.recv()
    assert f is not None and _err(f) == errno.EINVAL
    assert c.closed()


def test_stalled_big_write_is_cut_off(targets: dict[int, DirTarget]) -> None:
    for srv in _serve(targets, request_timeout=0.3):
        c = Raw(srv.port)
        _ok(c.login())
        c.send(wire.encode_request(5, wire.Write(4, 1, 0, 0, True), 1 << 20) + bytes(1000))  # then silence
        t0 = time.monotonic()
        assert c.closed()
        assert time.monotonic() - t0 < 5
        assert targets[4].list_shards() == []  # nothing half-written
        d = Raw(srv.port)
        _ok(d.login())
        _ok(d.call(wire.Ping()))


def test_pipelined_requests_across_hand_backs(server: TargetServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tserver, "HOT_MAX", 2)  # the serving thread gives the socket back every 2 requests
    c = Raw(server.port)
    _ok(c.login())
    big = [os.urandom(100_000 + i) for i in range(4)]
    reqs: list[tuple[wire.Request, bytes]] = []
    for i, b in enumerate(big):
        reqs += [(wire.Write(9, 50 + i, 0, 0, True), b), (wire.Ping(), b""), (wire.Read(9, 50 + i, 0, 0, 200_000), b"")]
    c.send(b"".join(wire.encode_request(rid, r, len(p)) + p for rid, (r, p) in enumerate(reqs, 1)))
    for rid, (r, _) in enumerate(reqs, 1):
        f = c.recv()
        assert f is not None and f.header.rid == rid
        _ok(f)
        if isinstance(r, wire.Read):
            assert bytes(f.payload) == big[r.segment - 50]


def test_connection_limit(targets: dict[int, DirTarget]) -> None:
    for srv in _serve(targets, max_conns=2):
        a, b = Raw(srv.port), Raw(srv.port)
        _ok(a.login())
        _ok(b.login())
        c = Raw(srv.port)
        f = c.recv()
        assert f is not None and _err(f) == errno.EBUSY
        assert c.closed()
        a.close()
        deadline = time.monotonic() + 5
        while True:  # the slot frees once the server sees a's end
            d = Raw(srv.port)
            d.rid += 1
            d.send(wire.encode_request(d.rid, wire.Hello((1,), os.urandom(16))))
            f = d.recv()
            if f is not None and not f.header.flags & wire.ERROR:
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_idle_and_auth_timeouts(targets: dict[int, DirTarget]) -> None:
    for srv in _serve(targets, idle_timeout=0.5, auth_timeout=0.3):
        quiet = Raw(srv.port)
        t0 = time.monotonic()
        assert quiet.closed()  # never said HELLO
        assert time.monotonic() - t0 < 3
        c = Raw(srv.port)
        _ok(c.login())
        _ok(c.call(wire.Ping()))
        t0 = time.monotonic()
        assert c.closed()
        assert 0.3 < time.monotonic() - t0 < 3
        slow = Raw(srv.port)  # half a header, then silence
        slow.send(wire.pack_header(wire.Op.HELLO, 0, 1, 19, 0)[:10])
        assert slow.closed()


def test_stop_ends_open_connections(targets: dict[int, DirTarget]) -> None:
    srv = TargetServer(targets, "127.0.0.1", 0, TOKEN)  # type: ignore[arg-type]
    port = srv.start()
    c = Raw(port)
    _ok(c.login())
    srv.stop()
    assert c.closed()
    with pytest.raises(OSError):
        Raw(port)


def test_token_required(targets: dict[int, DirTarget]) -> None:
    with pytest.raises(ValueError):
        TargetServer(targets, "127.0.0.1", 0, b"")  # type: ignore[arg-type]
