"""The asyncio RPC server on real sockets (TCP and UDP), driven by the project's RpcClient; rpcbind."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from protocols.nfs import rpc, rpcbind
from protocols.nfs.dispatch import AuthError, Handler, Program, Request, SystemErr
from protocols.nfs.rpc import AuthSys
from protocols.nfs.rpcclient import RpcClient, RpcError, RpcTimeout
from protocols.nfs.server import ServerThread, serve_in_thread
from protocols.nfs.xdr import Packer, Unpacker

PROG = 400300
ROOT = Path(__file__).resolve().parents[3]
Proto = Literal["tcp", "udp"]


@dataclass
class State:
    """What the test program's handlers saw."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: int = 0
    running: int = 0
    max_running: int = 0
    gate: threading.Event = field(default_factory=threading.Event)
    auths: list[AuthSys | None] = field(default_factory=list)

    def enter(self) -> None:
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)

    def leave(self) -> None:
        with self.lock:
            self.running -= 1


def make_program(st: State) -> Program:
    def echo(req: Request, args: Unpacker) -> Packer:
        data = args.unpack_opaque()
        st.auths.append(req.auth)
        p = Packer()
        p.pack_opaque(data)
        return p

    def sleep(req: Request, args: Unpacker) -> Packer:
        ms = args.unpack_uint()
        st.enter()
        time.sleep(ms / 1000)
        st.leave()
        p = Packer()
        p.pack_uint(ms)
        return p

    def big(req: Request, args: Unpacker) -> Packer:
        n = args.unpack_uint()
        p = Packer()
        p.pack_opaque(bytes(range(256)) * (n // 256))
        return p

    def fail(req: Request, args: Unpacker) -> Packer:
        raise SystemErr("no")

    def count(req: Request, args: Unpacker) -> Packer:      # non-idempotent: the DRC must answer retries
        with st.lock:
            st.counter += 1
            value = st.counter
        p = Packer()
        p.pack_uint(value)
        return p

    def gated(req: Request, args: Unpacker) -> Packer:
        st.enter()
        st.gate.wait(10)
        st.leave()
        return count(req, args)

    def needs_sys(req: Request, args: Unpacker) -> Packer:
        if req.auth is None:
            raise AuthError(rpc.AUTH_TOOWEAK)
        p = Packer()
        p.pack_uint(req.auth.uid)
        return p

    procs: dict[int, Handler] = {1: echo, 2: sleep, 3: big, 4: fail, 5: count, 6: gated, 7: needs_sys, 8: count}
    return Program(PROG, {2: procs, 3: procs}, non_idempotent=frozenset({(2, 5), (2, 6), (3, 5), (3, 6)}))


@pytest.fixture
def state() -> State:
    return State()


@pytest.fixture
def srv(state: State) -> Iterator[ServerThread]:
    with serve_in_thread([make_program(state)], "127.0.0.1", 0, max_inflight=4, max_record=1 << 20,
                         workers=8) as handle:
        yield handle


def client(srv: ServerThread, transport: Proto = "tcp", **kw: object) -> RpcClient:
    return RpcClient("127.0.0.1", srv.port, transport=transport, timeout=5, **kw)  # type: ignore[arg-type]


def opaque(data: bytes) -> bytes:
    p = Packer()
    p.pack_opaque(data)
    return p.data()


def u32(*vs: int) -> bytes:
    return struct.pack(f">{len(vs)}I", *vs)


# ----------------------------------------------------------------------------- replies over both transports

@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_calls_and_every_error_reply(srv: ServerThread, state: State, transport: Proto) -> None:
    auth = AuthSys(1, "tester", 1000, 100, (100, 7))
    with client(srv, transport, auth=auth) as c:
        null = c.call(PROG, 2, 0)
        assert null == rpc.Reply(null.xid, True, rpc.SUCCESS)
        assert c.call_ok(PROG, 3, 1, opaque(b"hello")) == opaque(b"hello")
        assert state.auths[-1] == auth
        assert c.call(400999, 1, 0).stat == rpc.PROG_UNAVAIL
        mismatch = c.call(PROG, 9, 0)
        assert (mismatch.accepted, mismatch.stat, mismatch.mismatch) == (True, rpc.PROG_MISMATCH, (2, 3))
        assert c.call(PROG, 2, 99).stat == rpc.PROC_UNAVAIL
        assert c.call(PROG, 2, 1, b"\0\0\0\x09").stat == rpc.GARBAGE_ARGS
        assert c.call(PROG, 2, 4).stat == rpc.SYSTEM_ERR
        weak = c.call(PROG, 2, 7, auth=None)
        assert (weak.accepted, weak.stat, weak.auth_stat) == (False, rpc.AUTH_ERROR, rpc.AUTH_TOOWEAK)
        assert c.call_ok(PROG, 2, 7) == u32(1000)
        with pytest.raises(RpcError) as info:
            c.call_ok(PROG, 2, 4)
        assert info.value.reply is not None and info.value.reply.stat == rpc.SYSTEM_ERR

        c.send_record(u32(0xBEEF, rpc.CALL, 3, PROG, 2, 0))                 # ONC-RPC version 3
        assert rpc.decode_reply(c.recv_record()) == rpc.Reply(0xBEEF, False, rpc.RPC_MISMATCH, (2, 2))
        c.send_record(u32(0xBEF0, rpc.CALL, 2, PROG, 2, 0, rpc.RPCSEC_GSS, 0, 0, 0))   # unsupported flavor
        assert rpc.decode_reply(c.recv_record()) == rpc.Reply(0xBEF0, False, rpc.AUTH_ERROR,
                                                              auth_stat=rpc.AUTH_BADCRED)


def test_udp_shares_the_tcp_port(srv: ServerThread) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(OSError):
        s.bind(("127.0.0.1", srv.port))
    with client(srv, "udp") as c:
        assert c.call(PROG, 2, 0).ok


def test_a_port_in_use_is_an_error(srv: ServerThread, state: State) -> None:
    with pytest.raises(OSError):
        serve_in_thread([make_program(state)], "127.0.0.1", srv.port)


def test_large_reply_and_multi_fragment_records(state: State) -> None:
    with serve_in_thread([make_program(state)], "127.0.0.1", 0, max_fragment=1000) as srv, client(srv) as c:
        body = c.call_ok(PROG, 2, 3, u32(3 << 20))                 # 3 MiB in ~3000 fragments
        assert body == opaque(bytes(range(256)) * (3 << 12))
        payload = os.urandom(5000)
        c.send_record(rpc.encode_call(77, PROG, 2, 1, opaque(payload)), max_fragment=7)
        assert rpc.decode_reply(c.recv_record()).body == opaque(payload)


# ----------------------------------------------------------------------------- connections

def test_oversize_record_closes_the_connection(srv: ServerThread) -> None:
    with client(srv) as c:
        assert c.call(PROG, 2, 0).ok
        c.sock.sendall(u32(rpc.LAST_FRAGMENT | ((1 << 20) + 1)))      # only the header: refused at once
        with pytest.raises(ConnectionError):
            c.recv_record(timeout=5)
    with client(srv) as c:
        c.send_record(rpc.encode_call(5, PROG, 2, 1, opaque(bytes(600_000))), max_fragment=400_000)
        assert rpc.decode_reply(c.recv_record()).ok                    # 600 KB fits the 1 MiB cap
        c.sock.sendall(u32(600_000) + bytes(600_000) + u32(rpc.LAST_FRAGMENT | 600_000))
        with pytest.raises(ConnectionError):                             # the fragments add up past it
            c.recv_record(timeout=5)
    with client(srv) as c:
        assert c.call(PROG, 2, 0).ok


def test_pipelined_calls_complete_out_of_order(srv: ServerThread, state: State) -> None:
    with client(srv) as c:
        c.send_record(rpc.encode_call(1, PROG, 2, 2, u32(600)))
        c.send_record(rpc.encode_call(2, PROG, 2, 2, u32(10)))
        c.send_record(rpc.encode_call(3, PROG, 2, 0))
        order = [rpc.decode_reply(c.recv_record()).xid for _ in range(3)]
    assert sorted(order) == [1, 2, 3] and order[-1] == 1       # the slow one does not hold back the others


def test_in_flight_calls_are_capped_per_connection(srv: ServerThread, state: State) -> None:
    with client(srv) as c:
        start = time.monotonic()
        for xid in range(12):
            c.send_record(rpc.encode_call(xid, PROG, 2, 2, u32(100)))
        xids = sorted(rpc.decode_reply(c.recv_record()).xid for _ in range(12))
        elapsed = time.monotonic() - start
    assert xids == list(range(12))
    assert state.max_running == 4                       # max_inflight=4 although 8 workers are free
    assert elapsed >= 0.29                              # 3 rounds of 4


def test_garbage_and_half_open_connections_do_not_hurt(srv: ServerThread) -> None:
    half_open = socket.create_connection(("127.0.0.1", srv.port))
    half_open.sendall(b"\x80\x00\x00")                     # a partial header, then silence
    idle = socket.create_connection(("127.0.0.1", srv.port))
    junk = socket.create_connection(("127.0.0.1", srv.port))
    junk.sendall(os.urandom(4096))
    with client(srv) as c:
        for record in (b"", b"\1\2\3", os.urandom(300), u32(1, rpc.REPLY, 0, 0, 0, 0)):
            c.send_record(record)
        c.send_record(rpc.encode_call(9, PROG, 2, 0)[:30])    # a call header cut short: dropped
        assert c.call(PROG, 2, 0).ok                            # the same connection still works
    with client(srv, "udp") as c:
        c.send_record(os.urandom(100))
        with pytest.raises(RpcTimeout):
            c.recv_record(timeout=0.3)
        assert c.call(PROG, 2, 0).ok
    gone = socket.create_connection(("127.0.0.1", srv.port))   # leaves with a call in flight
    gone.sendall(b"".join(bytes(p) for p in rpc.frame([rpc.encode_call(1, PROG, 2, 2, u32(200))])))
    gone.close()
    time.sleep(0.3)
    with client(srv) as c:
        assert c.call(PROG, 2, 0).ok
    idle.sendall(b"".join(bytes(p) for p in rpc.frame([rpc.encode_call(4, PROG, 2, 0)])))
    idle.settimeout(5)
    assert rpc.RecordReader().feed(idle.recv(100)) == [b"".join(rpc.encode_success(4))]
    for s in (half_open, idle, junk):
        s.close()


def test_half_closed_client_still_gets_its_replies(srv: ServerThread) -> None:
    with client(srv) as c:
        c.send_record(rpc.encode_call(1, PROG, 2, 2, u32(200)))
        c.send_record(rpc.encode_call(2, PROG, 2, 0))
        c.sock.shutdown(socket.SHUT_WR)
        assert sorted(rpc.decode_reply(c.recv_record()).xid for _ in range(2)) == [1, 2]
        with pytest.raises(ConnectionError):
            c.recv_record()


# ----------------------------------------------------------------------------- duplicate request cache

def test_retries_of_non_idempotent_calls_get_the_cached_reply(srv: ServerThread, state: State) -> None:
    with client(srv) as c:
        first = c.call_ok(PROG, 2, 5, xid=500)
        assert c.call_ok(PROG, 2, 5, xid=500) == first == u32(1)        # not run again
    with client(srv, "udp") as c:                                        # a new port, another transport
        assert c.call_ok(PROG, 2, 5, xid=500) == u32(1)
        assert c.call_ok(PROG, 2, 5, xid=501) == u32(2)                 # another xid: a new call
    with client(srv) as c:
        assert c.call_ok(PROG, 2, 8, xid=600) == u32(3)                 # idempotent: run each time
        assert c.call_ok(PROG, 2, 8, xid=600) == u32(4)
    assert state.counter == 4


def test_a_retry_of_a_call_in_progress_is_dropped(srv: ServerThread, state: State) -> None:
    with client(srv) as c:
        record = rpc.encode_call(700, PROG, 2, 6)
        c.send_record(record)
        deadline = time.monotonic() + 5
        while state.running == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        c.send_record(record)                                        # the retry arrives while it runs
        time.sleep(0.2)
        state.gate.set()
        assert rpc.decode_reply(c.recv_record()).body == u32(1)
        with pytest.raises(RpcTimeout):
            c.recv_record(timeout=0.3)                               # one reply only
        assert c.call_ok(PROG, 2, 6, xid=700) == u32(1)              # later retries: the cached reply
    assert state.counter == 1


# ----------------------------------------------------------------------------- rpcbind

def test_rpcbind_absent_is_logged_once_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]                       # bound, not listening: connection refused
        caplog.set_level(logging.INFO, logger="tessera.nfs.rpc")
        maps = rpcbind.mappings([(100003, [3]), (100005, [1, 3])], 2049)
        start = time.monotonic()
        assert rpcbind.register(maps, port=closed_port) is False
        assert rpcbind.unregister(maps, port=closed_port) is False
        assert time.monotonic() - start < 2
        with pytest.raises(OSError):
            rpcbind.getport("127.0.0.1", 100003, 3, port=closed_port)
    lines = [r.getMessage() for r in caplog.records if "rpcbind" in r.getMessage()]
    assert len(lines) == 2 and "register with" in lines[0] and "unregister from" in lines[1]


NETNS_SCRIPT = """
import subprocess, sys
from protocols.nfs import rpcbind
from protocols.nfs.dispatch import Program
from protocols.nfs.server import serve_in_thread
with serve_in_thread([Program(400400, {1: {}, 2: {}})], "0.0.0.0", 0) as srv:
    maps = rpcbind.mappings([(400400, (1, 2))], srv.port)
    assert rpcbind.register(maps), "register"
    assert rpcbind.register(maps), "register again"
    print(srv.port, rpcbind.getport("127.0.0.1", 400400, 2), rpcbind.getport("127.0.0.1", 400400, 1, "udp"))
    for args in (["-T", "udp", "127.0.0.1", "400400", "2"], ["-t", "127.0.0.1", "400400"]):   # the latter probes
        print(subprocess.run(["rpcinfo", *args], capture_output=True, text=True, check=True).stdout.strip())
    assert rpcbind.unregister(maps), "unregister"
    print(rpcbind.getport("127.0.0.1", 400400, 2))
"""


def test_rpcbind_registration_in_a_network_namespace() -> None:
    if os.geteuid() != 0 or not (shutil.which("rpcbind") and shutil.which("ip") and shutil.which("rpcinfo")):
        pytest.skip("needs root, rpcbind, rpcinfo and ip")
    ns = f"tessera-rpc-{uuid.uuid4().hex[:8]}"
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace")
    try:
        run = ["ip", "netns", "exec", ns, "unshare", "--mount", "sh", "-c",
               'ip link set lo up && mount -t tmpfs none /run && { rpcbind -f & } && '
               'for i in $(seq 50); do rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && break; sleep 0.1; done && '
               '"$0" -c "$1"; rc=$?; kill $!; exit $rc', sys.executable, NETNS_SCRIPT]
        out = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        port, tcp_port, udp_port = map(int, lines[0].split())
        assert tcp_port == udp_port == port > 0
        assert lines[1:4] == ["program 400400 version 2 ready and waiting",   # rpcinfo: a real client
                              "program 400400 version 1 ready and waiting",   # versions from PROG_MISMATCH
                              "program 400400 version 2 ready and waiting"]
        assert lines[4] == "0"
    finally:
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        for pid in pids:                                  # only what this test started in its namespace
            os.kill(int(pid), 9)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
