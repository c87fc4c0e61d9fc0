"""ONC-RPC codecs (rpc.py) and the dispatch (dispatch.py), with no socket: exact bytes and round trips."""

from __future__ import annotations

import struct

import pytest

from protocols.nfs import rpc
from protocols.nfs.dispatch import (
    AuthError,
    DropReply,
    Handler,
    Program,
    Request,
    SystemErr,
    handle_record,
    index,
    route,
)
from protocols.nfs.rpc import AuthSys
from protocols.nfs.xdr import Packer, Unpacker, XdrError

CLIENT = ("192.0.2.7", 801)


def words(*ws: int) -> bytes:
    return struct.pack(f">{len(ws)}I", *ws)


# ----------------------------------------------------------------------------- exact bytes

def test_call_with_auth_sys_exact_bytes() -> None:
    auth = AuthSys(stamp=0, machine="box", uid=1000, gid=1000, gids=(1000,))
    wire = rpc.encode_call(0x12345678, 100003, 3, 0, b"", auth)
    expected = bytes.fromhex(
        "12345678" "00000000" "00000002" "000186a3" "00000003" "00000000"   # xid CALL rpcvers prog vers proc
        "00000001" "0000001c"                                                # AUTH_SYS, 28 bytes
        "00000000" "00000003" "626f7800" "000003e8" "000003e8" "00000001" "000003e8"
        "00000000" "00000000")                                               # verf AUTH_NONE, empty
    assert wire == expected
    call = rpc.decode_call(wire)
    assert (call.xid, call.prog, call.vers, call.proc, call.flavor) == (0x12345678, 100003, 3, 0, rpc.AUTH_SYS)
    assert call.auth == auth
    assert call.header_len == len(expected) and bytes(call.args) == b""


def test_call_arguments_follow_the_header() -> None:
    wire = rpc.encode_call(1, 100005, 3, 1, [b"\0\0\0\1", b"/x\0\0"])
    call = rpc.decode_call(wire)
    assert call.auth is None and call.flavor == rpc.AUTH_NONE
    assert bytes(call.args) == b"\0\0\0\1/x\0\0"
    assert call.header_len == 40


@pytest.mark.parametrize(("encoded", "expected"), [
    (rpc.encode_prog_unavail(0xA), words(0xA, 1, 0, 0, 0, 1)),
    (rpc.encode_prog_mismatch(0xA, 2, 4), words(0xA, 1, 0, 0, 0, 2, 2, 4)),
    (rpc.encode_proc_unavail(0xA), words(0xA, 1, 0, 0, 0, 3)),
    (rpc.encode_garbage_args(0xA), words(0xA, 1, 0, 0, 0, 4)),
    (rpc.encode_system_err(0xA), words(0xA, 1, 0, 0, 0, 5)),
    (rpc.encode_rpc_mismatch(0xA), words(0xA, 1, 1, 0, 2, 2)),
    (rpc.encode_auth_error(0xA, rpc.AUTH_BADCRED), words(0xA, 1, 1, 1, 1)),
    (rpc.encode_auth_error(0xA, rpc.AUTH_TOOWEAK), words(0xA, 1, 1, 1, 5)),
])
def test_reply_exact_bytes(encoded: bytes, expected: bytes) -> None:
    assert encoded == expected


def test_success_reply_keeps_the_body_parts() -> None:
    payload = bytearray(b"x" * 1000)
    parts = rpc.encode_success(3, [b"\0\0\0\0", payload])
    assert parts[0] == words(3, 1, 0, 0, 0, 0)
    assert parts[2] is payload                          # a READ payload is not copied
    reply = rpc.decode_reply(b"".join(parts))
    assert reply == rpc.Reply(3, True, rpc.SUCCESS, body=b"\0\0\0\0" + bytes(payload))
    assert reply.ok


def test_decode_reply_variants() -> None:
    assert rpc.decode_reply(rpc.encode_prog_mismatch(1, 2, 4)) == rpc.Reply(1, True, rpc.PROG_MISMATCH, (2, 4))
    assert rpc.decode_reply(rpc.encode_rpc_mismatch(1)) == rpc.Reply(1, False, rpc.RPC_MISMATCH, (2, 2))
    denied = rpc.decode_reply(rpc.encode_auth_error(1, rpc.AUTH_TOOWEAK))
    assert denied == rpc.Reply(1, False, rpc.AUTH_ERROR, auth_stat=rpc.AUTH_TOOWEAK) and not denied.ok
    assert not rpc.decode_reply(rpc.encode_proc_unavail(1)).ok
    with pytest.raises(XdrError):
        rpc.decode_reply(rpc.encode_call(1, 1, 1, 1))       # a call is not a reply
    with pytest.raises(XdrError):
        rpc.decode_reply(words(1, 1, 1, 7))                  # unknown reject_stat
    with pytest.raises(XdrError):
        rpc.decode_reply(rpc.encode_proc_unavail(1)[:-2])   # cut short


def test_authsys_round_trip_and_bounds() -> None:
    a = AuthSys(7, "h" * 255, 0, 0, tuple(range(16)))
    assert rpc.decode_authsys(rpc.encode_authsys(a)) == a
    with pytest.raises(XdrError):
        rpc.decode_authsys(rpc.encode_authsys(AuthSys(7, "h" * 256, 0, 0, ())))
    with pytest.raises(XdrError):
        rpc.decode_authsys(rpc.encode_authsys(AuthSys(7, "h", 0, 0, tuple(range(17)))))
    with pytest.raises(XdrError):
        rpc.decode_authsys(rpc.encode_authsys(a) + b"\0\0\0\0")   # trailing bytes


# ----------------------------------------------------------------------------- bad calls

def _header(xid: int = 9, rpcvers: int = 2) -> bytes:
    return words(xid, rpc.CALL, rpcvers, 100003, 3, 0)


def _denial(record: bytes) -> rpc.Reply | None:
    with pytest.raises(rpc.BadCall) as info:
        rpc.decode_call(record)
    return None if info.value.reply is None else rpc.decode_reply(info.value.reply)


def test_wrong_rpc_version_is_rpc_mismatch() -> None:
    assert _denial(_header(rpcvers=3)) == rpc.Reply(9, False, rpc.RPC_MISMATCH, (2, 2))
    assert _denial(words(9, 0, 1)) == rpc.Reply(9, False, rpc.RPC_MISMATCH, (2, 2))   # nothing after rpcvers


@pytest.mark.parametrize("record", [
    _header() + words(rpc.RPCSEC_GSS, 0, 0, 0),                       # flavor not supported
    _header() + words(rpc.AUTH_DH, 4, 0, 0, 0),
    _header() + words(rpc.AUTH_SYS, 404) + bytes(404) + words(0, 0),  # credential over 400 bytes
    _header() + words(rpc.AUTH_SYS, 4, 0, 0, 0),                      # AUTH_SYS body cut short
    _header() + words(rpc.AUTH_SYS, 28) + rpc.encode_authsys(AuthSys(1, "ab", 0, 0, ())) + words(0, 0, 0),
])
def test_bad_credentials_are_auth_badcred(record: bytes) -> None:
    assert _denial(record) == rpc.Reply(9, False, rpc.AUTH_ERROR, auth_stat=rpc.AUTH_BADCRED)


def test_oversize_verifier_is_auth_badverf() -> None:
    record = _header() + words(0, 0, 0, 404) + bytes(404)
    assert _denial(record) == rpc.Reply(9, False, rpc.AUTH_ERROR, auth_stat=rpc.AUTH_BADVERF)


@pytest.mark.parametrize("record", [b"", b"\0\0\0\1", words(9, rpc.REPLY, 0, 0, 0, 0), words(9, 7),
                                    _header()[:-4], _header() + words(0), _header() + words(0, 0, 0)])
def test_short_or_non_calls_are_dropped(record: bytes) -> None:
    assert _denial(record) is None


# ----------------------------------------------------------------------------- record marking

def test_record_reader_byte_at_a_time_and_batches() -> None:
    msgs = [b"", b"abcd", bytes(range(256)) * 3]
    stream = b"".join(b"".join(bytes(p) for p in rpc.frame([m])) for m in msgs)
    r = rpc.RecordReader()
    got = [rec for i in range(len(stream)) for rec in r.feed(stream[i: i + 1])]
    assert got == msgs and r.pending() == 0
    assert rpc.RecordReader().feed(stream) == msgs


@pytest.mark.parametrize("max_fragment", [1, 3, 4, 100, 4096])
def test_multi_fragment_records_round_trip(max_fragment: int) -> None:
    msg: list[rpc.Buf] = [b"head", bytearray(b"x" * 1000), memoryview(b"tail!")]
    parts = rpc.frame(msg, max_fragment=max_fragment)
    stream = b"".join(bytes(p) for p in parts)
    n_frags = max(1, -(-1009 // max_fragment))
    assert len(stream) == 1009 + 4 * n_frags
    assert rpc.RecordReader().feed(stream) == [b"".join(bytes(m) for m in msg)]
    last_header = struct.unpack(">I", stream[:4])[0]
    assert bool(last_header & rpc.LAST_FRAGMENT) == (n_frags == 1)


def test_frame_does_not_copy_whole_parts() -> None:
    big = bytes(1 << 16)
    parts = rpc.frame([b"hdr!", big])
    assert parts[0] == struct.pack(">I", rpc.LAST_FRAGMENT | (4 + len(big))) and parts[2] is big
    with pytest.raises(ValueError):
        rpc.frame([b"x"], max_fragment=0)


def test_record_too_large_is_refused_before_its_data_arrives() -> None:
    r = rpc.RecordReader(max_record=1000)
    assert r.feed(struct.pack(">I", rpc.LAST_FRAGMENT | 1000) + bytes(1000)) == [bytes(1000)]
    with pytest.raises(rpc.RecordTooLarge):
        r.feed(struct.pack(">I", rpc.LAST_FRAGMENT | 1001))
    r = rpc.RecordReader(max_record=1000)                 # the limit counts every fragment of a record
    r.feed(struct.pack(">I", 600) + bytes(600))
    with pytest.raises(rpc.RecordTooLarge):
        r.feed(struct.pack(">I", rpc.LAST_FRAGMENT | 401))


# ----------------------------------------------------------------------------- dispatch

seen: list[Request] = []


def _add(req: Request, args: Unpacker) -> Packer:
    seen.append(req)
    a, b = args.unpack_uint(), args.unpack_uint()
    args.done()
    p = Packer()
    p.pack_uint(a + b)
    return p


def _raise(exc: BaseException) -> Handler:
    def handler(req: Request, args: Unpacker) -> Packer:
        raise exc
    return handler


PROGS = index([
    Program(400100, {2: {1: _add}, 3: {0: _add, 1: _add}, 5: {}}),
    Program(400200, {1: {1: _raise(SystemErr("disk on fire")),
                         2: _raise(AuthError(rpc.AUTH_TOOWEAK)), 3: _raise(DropReply()),
                         4: _raise(KeyError("bug")), 5: _raise(XdrError("bad"))}}),
])


def _dispatch(prog: int, vers: int, proc: int, args: bytes = b"", auth: AuthSys | None = None,
              transport: str = "tcp") -> rpc.Reply | None:
    out = handle_record(PROGS, rpc.encode_call(0x77, prog, vers, proc, args, auth), CLIENT, transport)
    return None if out is None else rpc.decode_reply(b"".join(out))


def test_dispatch_runs_the_handler_with_the_request() -> None:
    seen.clear()
    auth = AuthSys(5, "client", 1000, 100, (100, 10))
    assert _dispatch(400100, 2, 1, words(40, 2), auth, "udp") == rpc.Reply(0x77, True, 0, body=words(42))
    assert seen == [Request(0x77, 400100, 2, 1, auth, CLIENT, "udp")]


def test_dispatch_errors() -> None:
    assert _dispatch(400999, 1, 0) == rpc.Reply(0x77, True, rpc.PROG_UNAVAIL)
    assert _dispatch(400100, 4, 0) == rpc.Reply(0x77, True, rpc.PROG_MISMATCH, (2, 5))
    assert _dispatch(400100, 2, 9) == rpc.Reply(0x77, True, rpc.PROC_UNAVAIL)
    assert _dispatch(400100, 2, 1, words(1)) == rpc.Reply(0x77, True, rpc.GARBAGE_ARGS)
    assert _dispatch(400100, 2, 1, words(1, 2, 3)) == rpc.Reply(0x77, True, rpc.GARBAGE_ARGS)
    assert _dispatch(400200, 1, 1) == rpc.Reply(0x77, True, rpc.SYSTEM_ERR)
    assert _dispatch(400200, 1, 2) == rpc.Reply(0x77, False, rpc.AUTH_ERROR, auth_stat=rpc.AUTH_TOOWEAK)
    assert _dispatch(400200, 1, 3) is None
    assert _dispatch(400200, 1, 4) == rpc.Reply(0x77, True, rpc.SYSTEM_ERR)
    assert _dispatch(400200, 1, 5) == rpc.Reply(0x77, True, rpc.GARBAGE_ARGS)


def test_null_procedure_of_every_version() -> None:
    assert _dispatch(400100, 2, 0) == rpc.Reply(0x77, True, rpc.SUCCESS)   # not listed: built in
    assert _dispatch(400100, 5, 0) == rpc.Reply(0x77, True, rpc.SUCCESS)
    assert _dispatch(400100, 3, 0) == rpc.Reply(0x77, True, rpc.GARBAGE_ARGS)   # listed: the program's own


def test_dispatch_of_bad_calls() -> None:
    assert handle_record(PROGS, b"\0\0", CLIENT, "udp") is None
    out = handle_record(PROGS, _header(rpcvers=1), CLIENT, "tcp")
    assert out is not None and rpc.decode_reply(b"".join(out)).stat == rpc.RPC_MISMATCH


def test_route_and_index() -> None:
    call = rpc.decode_call(rpc.encode_call(1, 400100, 3, 1))
    assert route(PROGS, call) is _add
    with pytest.raises(ValueError, match="twice"):
        index([Program(1, {1: {}}), Program(1, {2: {}})])
    with pytest.raises(ValueError, match="no versions"):
        index([Program(1, {})])
