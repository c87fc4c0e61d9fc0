"""Bad input on the wire, from a raw socket client (``badclient``): bad and missing signatures,
replayed and out-of-window MessageIds, a second NEGOTIATE, garbage, SMB1 after negotiate, oversized
frames, paths that try to leave the share, related compounds (the fuzzer is in test_fuzz). The server answers with
an NTSTATUS or closes that one connection; it never crashes (a new connection always works)."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

import pytest

from core.store import Store
from protocols.smb.header import RELATED_FILE_ID, Command, Flags, Header
from protocols.smb.status import NtStatus

from .badclient import (
    FILE_CREATE,
    FILE_OPEN,
    GENERIC_READ,
    BadClient,
    close_body,
    create_body,
    negotiate_body,
    read_body,
    still_serves,
    write_body,
)
from .conftest import PASSWORDS
from .serverlog import assert_no_server_errors, no_server_errors  # noqa: F401  (autouse)

_DIALECTS = b"\x02NT LM 0.12\x00\x02SMB 2.002\x00\x02SMB 2.???\x00"
# Protocol, Command, Status, Flags, Flags2, PIDHigh, SecurityFeatures, Reserved, TID, PIDLow, UID, MID; WordCount 0
SMB1_NEGOTIATE = (struct.pack("<4sBIBHH8sHHHHH", b"\xffSMB", 0x72, 0, 0x18, 0xC853, 0, bytes(8), 0, 0xFFFF, 0, 0, 0)
                  + b"\x00" + struct.pack("<H", len(_DIALECTS)) + _DIALECTS)



def names(store: Store) -> list[str]:
    return sorted(e.name for e in store.fs.listdir(store.fs.resolve("/data").ino))


# ----------------------------------------------------------------------------- signatures

DIALECTS = [0x0202, 0x0210, 0x0300, 0x0302, 0x0311]   # HMAC-SHA256 for 2.x, AES-CMAC for 3.x


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: f"{d:#06x}")
def test_bad_signature_is_access_denied_and_the_session_goes_on(client: Callable[..., tuple[BadClient, int]],
                                                               smb_store: Store, dialect: int) -> None:
    c, tid = client(dialect)
    assert c.signing_key is not None
    h = c.header(Command.CREATE, tid)
    msg = bytearray(c.message(h, create_body("forged.txt", FILE_CREATE)))
    msg[50] ^= 0x01                                     # one bit of the signature
    c.send(bytes(msg))
    r = c.read_responses()[0]
    assert r.status == NtStatus.ACCESS_DENIED and r.header.message_id == h.message_id
    h = c.header(Command.CREATE, tid)
    msg = bytearray(c.message(h, create_body("tampered.txt", FILE_CREATE)))
    msg[-2] ^= 0x20                                     # the body changed after signing
    c.send(bytes(msg))
    assert c.read_responses()[0].status == NtStatus.ACCESS_DENIED
    assert names(smb_store) == ["known.txt"]            # neither CREATE ran
    assert c.echo().status == NtStatus.SUCCESS
    tid = c.tree_connect("data")
    fid = c.create(tid, "real.txt", FILE_CREATE)
    assert c.write(tid, fid, b"ok").status == NtStatus.SUCCESS
    assert names(smb_store) == ["known.txt", "real.txt"]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: f"{d:#06x}")
def test_unsigned_request_on_a_signing_session_is_access_denied(client: Callable[..., tuple[BadClient, int]],
                                                                smb_store: Store, dialect: int) -> None:
    c, tid = client(dialect)
    r = c.call(Command.CREATE, create_body("unsigned.txt", FILE_CREATE), tid, sign=False)
    assert r.status == NtStatus.ACCESS_DENIED
    assert names(smb_store) == ["known.txt"]
    path = "\\\\127.0.0.1\\data".encode("utf-16-le")
    r = c.call(Command.TREE_CONNECT, struct.pack("<HHHH", 9, 0, 72, len(path)) + path, sign=False)
    assert r.status == NtStatus.ACCESS_DENIED
    assert c.create_status(tid, "signed.txt", disposition=FILE_CREATE) == NtStatus.SUCCESS


def test_signed_with_another_sessions_key(client: Callable[..., tuple[BadClient, int]], smb_store: Store) -> None:
    a, tid_a = client()
    b, _ = client()
    b.signing_key = a.signing_key                       # b signs with a's key for b's own session
    r = b.call(Command.CREATE, create_body("cross.txt", FILE_CREATE), tid_a)
    assert r.status in (NtStatus.ACCESS_DENIED, NtStatus.NETWORK_NAME_DELETED)
    assert names(smb_store) == ["known.txt"]
    assert a.echo().status == NtStatus.SUCCESS


# ----------------------------------------------------------------------------- encryption

SEALED = {"3.0-ccm": (0x0300, ()), "3.1.1-gcm": (0x0311, (2,)), "3.1.1-ccm": (0x0311, (1,)),
          "3.1.1-gcm256": (0x0311, (4,))}


def _sealed_client(port: int, dialect: int, ciphers: tuple[int, ...]) -> tuple[BadClient, int]:
    c = BadClient(port)
    c.negotiate((dialect,), ciphers)
    assert c.cipher is not None and (not ciphers or c.cipher == ciphers[0])
    assert c.login("alice", PASSWORDS["alice"]).status == NtStatus.SUCCESS
    return c, c.tree_connect("data")


def _sealed_call(c: BadClient, h: Header, body: bytes) -> Header:
    c.send(c.seal(h.encode() + body))
    frame = c.recv()
    assert frame is not None and frame[:4] == b"\xfdSMB"            # the answer is sealed too
    return Header.decode(c.unseal(frame))


@pytest.mark.parametrize(("dialect", "ciphers"), list(SEALED.values()), ids=list(SEALED))
def test_tampered_sealed_message_closes(port: int, smb_store: Store, dialect: int, ciphers: tuple[int, ...]) -> None:
    c, tid = _sealed_client(port, dialect, ciphers)
    try:
        r = _sealed_call(c, c.header(Command.ECHO), struct.pack("<HH", 4, 0))
        assert r.status == NtStatus.SUCCESS and r.command == Command.ECHO
        sealed = bytearray(c.seal(c.header(Command.CREATE, tid).encode() + create_body("sealed.txt", FILE_CREATE)))
        sealed[-3] ^= 0x40                                            # ciphertext no longer authenticates
        c.send(bytes(sealed))
        assert c.closed()
        assert names(smb_store) == ["known.txt"]
    finally:
        c.close()
    still_serves(port)


def test_replayed_sealed_message_closes_and_ran_once(port: int, smb_store: Store) -> None:
    c, tid = _sealed_client(port, 0x0311, (2,))
    try:
        h = c.header(Command.CREATE, tid)
        sealed = c.seal(h.encode() + create_body("once.txt", FILE_CREATE))
        c.send(sealed)
        frame = c.recv()
        assert frame is not None and Header.decode(c.unseal(frame)).status == NtStatus.SUCCESS
        c.send(sealed)                                              # captured and sent again
        assert c.closed()
        assert names(smb_store) == ["known.txt", "once.txt"]
    finally:
        c.close()
    still_serves(port)


def test_sealed_for_another_session_closes(port: int, client: Callable[..., tuple[BadClient, int]]) -> None:
    a, _ = _sealed_client(port, 0x0311, (2,))
    b, _ = client()
    try:
        b.keys, b.cipher = a.keys, a.cipher              # a's keys, b's session id
        b.send(b.seal(b.header(Command.ECHO).encode() + struct.pack("<HH", 4, 0)))
        assert b.closed()
        assert _sealed_call(a, a.header(Command.ECHO), struct.pack("<HH", 4, 0)).status == NtStatus.SUCCESS
    finally:
        a.close()


# ----------------------------------------------------------------------------- credits, negotiate

@pytest.mark.parametrize("dialect", [0x0202, 0x0311], ids=lambda d: f"{d:#06x}")
def test_replayed_message_id_closes_the_connection(client: Callable[..., tuple[BadClient, int]], port: int,
                                                   dialect: int) -> None:
    c, _ = client(dialect)
    h = c.header(Command.ECHO)
    echo = c.message(h, struct.pack("<HH", 4, 0))
    c.send(echo)
    assert c.read_responses()[0].status == NtStatus.SUCCESS
    c.send(echo)                                        # the same MessageId again
    assert c.closed()
    still_serves(port)


@pytest.mark.parametrize("ahead", [512, 100_000, 2**63])
def test_message_id_outside_the_credit_window_closes(client: Callable[..., tuple[BadClient, int]], port: int,
                                                      ahead: int) -> None:
    c, _ = client()
    h = c.header(Command.ECHO)
    h.message_id = min(h.message_id + ahead, 2**64 - 2)
    c.send(c.message(h, struct.pack("<HH", 4, 0)))
    assert c.closed()
    still_serves(port)


def test_credit_charge_beyond_the_granted_credits_closes(client: Callable[..., tuple[BadClient, int]],
                                                         port: int) -> None:
    c, _ = client()
    h = c.header(Command.ECHO)
    h.credit_charge = 10_000
    c.send(c.message(h, struct.pack("<HH", 4, 0)))
    assert c.closed()
    still_serves(port)


def test_second_negotiate_closes_the_connection(client: Callable[..., tuple[BadClient, int]], port: int) -> None:
    c, _ = client()
    c.send(c.message(c.header(Command.NEGOTIATE), negotiate_body(), sign=False))
    assert c.closed()
    still_serves(port)


def test_session_setup_failure_leaves_nothing(port: int, smb_store: Store) -> None:
    c = BadClient(port)
    c.negotiate()
    assert c.login("alice", "wrong").status == NtStatus.LOGON_FAILURE
    assert c.session_id != 0                             # the id the server handed out mid-setup
    path = "\\\\127.0.0.1\\data".encode("utf-16-le")
    r = c.call(Command.TREE_CONNECT, struct.pack("<HHHH", 9, 0, 72, len(path)) + path)
    assert r.status == NtStatus.USER_SESSION_DELETED
    r = c.call(Command.CREATE, create_body("planted.txt", FILE_CREATE), tree_id=1)
    assert r.status == NtStatus.USER_SESSION_DELETED
    assert names(smb_store) == ["known.txt"]
    c.close()
    still_serves(port)


# ----------------------------------------------------------------------------- ids and handles

def test_another_connections_file_id_is_closed(client: Callable[..., tuple[BadClient, int]], port: int) -> None:
    a, ta = client()
    b = BadClient(port)
    b.negotiate()
    assert b.login("bob", PASSWORDS["bob"]).status == NtStatus.SUCCESS
    tb = b.tree_connect("data")
    fid = a.create(ta, "alice.txt", FILE_CREATE)
    assert a.write(ta, fid, b"alice's").status == NtStatus.SUCCESS
    assert b.call(Command.READ, read_body(fid, 10), tb).status == NtStatus.FILE_CLOSED
    assert b.call(Command.WRITE, write_body(fid, b"bob was here"), tb).status == NtStatus.FILE_CLOSED
    assert b.call(Command.CLOSE, close_body(fid), tb).status == NtStatus.FILE_CLOSED
    assert b.call(Command.CREATE, create_body("x"), tb + 999).status == NtStatus.NETWORK_NAME_DELETED
    assert a.read(ta, fid, 100) == b"alice's"
    b.close()


def test_stale_ids_after_close_disconnect_and_logoff(client: Callable[..., tuple[BadClient, int]]) -> None:
    c, tid = client()
    fid = c.create(tid, "f.txt", FILE_CREATE)
    assert c.close_file(tid, fid).status == NtStatus.SUCCESS
    assert c.call(Command.READ, read_body(fid, 10), tid).status == NtStatus.FILE_CLOSED
    assert c.close_file(tid, fid).status == NtStatus.FILE_CLOSED
    assert c.call(Command.TREE_DISCONNECT, struct.pack("<HH", 4, 0), tid).status == NtStatus.SUCCESS
    assert c.call(Command.CREATE, create_body("g.txt"), tid).status == NtStatus.NETWORK_NAME_DELETED
    assert c.call(Command.LOGOFF, struct.pack("<HH", 4, 0)).status == NtStatus.SUCCESS
    path = "\\\\127.0.0.1\\data".encode("utf-16-le")
    r = c.call(Command.TREE_CONNECT, struct.pack("<HHHH", 9, 0, 72, len(path)) + path, sign=False)
    assert r.status == NtStatus.USER_SESSION_DELETED


def _with(body: bytes, fmt: str, at: int, *values: int) -> bytes:
    out = bytearray(body)
    struct.pack_into(fmt, out, at, *values)
    return bytes(out)


def test_offsets_and_lengths_outside_the_message(client: Callable[..., tuple[BadClient, int]],
                                                 smb_store: Store) -> None:
    c, tid = client()
    fid = c.create(tid, "f.txt", FILE_CREATE)
    bad = {
        "write data offset": (Command.WRITE, _with(write_body(fid, b"abc"), "<H", 2, 5000)),
        "write length": (Command.WRITE, _with(write_body(fid, b"abc"), "<I", 4, 10**6)),
        "create name offset": (Command.CREATE, _with(create_body("zz"), "<HH", 44, 9000, 4)),
        "create odd name length": (Command.CREATE, _with(create_body("zz"), "<H", 46, 3)),
        "create contexts": (Command.CREATE, _with(create_body("zz"), "<II", 48, 200, 5000)),
        "short create": (Command.CREATE, b"\x39\x00"),
        "short write": (Command.WRITE, b"\x31\x00\x70"),
        "read over MaxReadSize": (Command.READ, read_body(fid, 64 * 1024 * 1024)),
        "write at 2**63": (Command.WRITE, write_body(fid, b"x", 2**63)),
    }
    for what, (command, body) in bad.items():
        assert c.call(command, body, tid).status == NtStatus.INVALID_PARAMETER, what
    assert names(smb_store) == ["f.txt", "known.txt"]
    assert smb_store.fs.resolve("/data/f.txt").size == 0
    assert c.call(Command.READ, read_body(fid, 10, 1000), tid).status == NtStatus.END_OF_FILE
    assert c.write(tid, fid, b"start").status == NtStatus.SUCCESS
    assert c.write(tid, fid, b"+end", 2**64 - 1).status == NtStatus.SUCCESS     # "at the end of file"
    assert c.read(tid, fid, 100) == b"start+end"


def test_cancel_of_nothing_is_not_answered(client: Callable[..., tuple[BadClient, int]]) -> None:
    c, _ = client()
    c.send(c.message(c.header(Command.CANCEL), struct.pack("<HH", 4, 0), sign=False))
    h = c.header(Command.ECHO)
    c.send(c.message(h, struct.pack("<HH", 4, 0)))
    r = c.read_responses()[0]                                     # the next answer is the ECHO's
    assert r.header.command == Command.ECHO and r.header.message_id == h.message_id


# ----------------------------------------------------------------------------- garbage

GARBAGE = {
    "random": os.urandom(200),
    "ascii": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "short-smb2": b"\xfeSMB" + bytes(20),
    "unknown-command": b"\xfeSMB" + struct.pack("<HHIHH", 64, 0, 0, 0x99, 1) + bytes(52),
    "compression": b"\xfcSMB" + bytes(60),
    "transform-unknown-session": b"\xfdSMB" + bytes(16) + bytes(16) + struct.pack("<IHHQ", 64, 0, 1, 0xDEAD)
    + bytes(64),
}


@pytest.mark.parametrize("payload", list(GARBAGE.values()), ids=list(GARBAGE))
@pytest.mark.parametrize("when", ["first", "after-login"])
def test_garbage_closes_only_that_connection(port: int, client: Callable[..., tuple[BadClient, int]],
                                             payload: bytes, when: str) -> None:
    bystander, tid = client()
    if when == "first":
        c = BadClient(port)
    else:
        c, _ = client()
    c.send(payload)
    assert c.closed()
    c.close()
    fid = bystander.create(tid, "known.txt", FILE_OPEN, access=GENERIC_READ)   # the other connection is untouched
    assert bystander.read(tid, fid, 100) == b"known contents"
    still_serves(port)


def test_empty_frames_and_keepalives_are_ignored(client: Callable[..., tuple[BadClient, int]]) -> None:
    c, _ = client()
    c.sock.sendall(b"\x00\x00\x00\x00" + b"\x85\x00\x00\x00")
    assert c.echo().status == NtStatus.SUCCESS


def test_a_frame_header_that_is_not_direct_tcp_closes(client: Callable[..., tuple[BadClient, int]], port: int) -> None:
    c, _ = client()
    c.sock.sendall(b"\x81\x00\x00\x44" + bytes(0x44))     # a NetBIOS SESSION REQUEST on port 445
    assert c.closed()
    still_serves(port)


def test_smb1_negotiate_only_as_the_first_frame(port: int, client: Callable[..., tuple[BadClient, int]]) -> None:
    first = BadClient(port)
    first.send(SMB1_NEGOTIATE)
    answer = first.recv()
    assert answer is not None and answer[:4] == b"\xfeSMB"   # answered with an SMB2 NEGOTIATE response
    first.close()
    c, _ = client()
    c.send(SMB1_NEGOTIATE)
    assert c.closed()
    still_serves(port)


def test_malformed_smb1_negotiate_closes_quietly(port: int, caplog: pytest.LogCaptureFixture) -> None:
    c = BadClient(port)
    c.send(SMB1_NEGOTIATE[:-len(_DIALECTS) - 2] + struct.pack("<H", 500) + _DIALECTS)   # ByteCount overruns
    assert c.closed()
    still_serves(port)
    assert_no_server_errors(caplog)


def test_frame_over_the_size_limit_closes(port: int, client: Callable[..., tuple[BadClient, int]]) -> None:
    c, _ = client()
    c.sock.sendall(b"\x00\xff\xff\xff" + b"\xfeSMB" + bytes(4096))   # 16 MiB announced
    assert c.closed()
    still_serves(port)


def test_a_response_sent_to_the_server_closes(client: Callable[..., tuple[BadClient, int]], port: int) -> None:
    c, _ = client()
    c.send(c.message(c.header(Command.ECHO, flags=Flags.SERVER_TO_REDIR), struct.pack("<HH", 4, 0)))
    assert c.closed()
    still_serves(port)


# ----------------------------------------------------------------------------- paths

PATHS = [
    ("..\\escape.txt", NtStatus.OBJECT_PATH_SYNTAX_BAD),
    ("sub\\..\\..\\escape.txt", NtStatus.OBJECT_PATH_SYNTAX_BAD),
    ("sub\\..\\known.txt", NtStatus.OBJECT_PATH_SYNTAX_BAD),
    (".\\known.txt", NtStatus.OBJECT_PATH_SYNTAX_BAD),
    ("\\escape.txt", NtStatus.INVALID_PARAMETER),
    ("\\\\127.0.0.1\\data\\escape.txt", NtStatus.INVALID_PARAMETER),
    ("CON", NtStatus.OBJECT_NAME_INVALID),
    ("con.txt", NtStatus.OBJECT_NAME_INVALID),
    ("LPT1", NtStatus.OBJECT_NAME_INVALID),
    ("sub\\NUL", NtStatus.OBJECT_NAME_INVALID),
    (":stream", NtStatus.OBJECT_NAME_INVALID),
    (":stream:$DATA", NtStatus.OBJECT_NAME_INVALID),
    ("::$DATA", NtStatus.OBJECT_NAME_INVALID),
    ("a<b", NtStatus.OBJECT_NAME_INVALID),
    ("a>b", NtStatus.OBJECT_NAME_INVALID),
    ("<>", NtStatus.OBJECT_NAME_INVALID),
    ("a|b", NtStatus.OBJECT_NAME_INVALID),
    ("a*", NtStatus.OBJECT_NAME_INVALID),
    ('a"b', NtStatus.OBJECT_NAME_INVALID),
    ("sub\\\\x", NtStatus.OBJECT_NAME_INVALID),
    ("/etc/passwd", NtStatus.OBJECT_NAME_INVALID),
    ("trailing.", NtStatus.OBJECT_NAME_INVALID),
    ("trailing ", NtStatus.OBJECT_NAME_INVALID),
    ("ctl\x01", NtStatus.OBJECT_NAME_INVALID),
]


@pytest.mark.parametrize(("path", "status"), PATHS, ids=[repr(p) for p, _ in PATHS])
def test_paths_are_refused_with_their_status(client: Callable[..., tuple[BadClient, int]], smb_store: Store,
                                             path: str, status: NtStatus) -> None:
    fs = smb_store.fs
    fs.mkdir(fs.resolve("/data").ino, "sub", 0o777)
    c, tid = client()
    assert c.create_status(tid, path) == status
    assert names(smb_store) == ["known.txt", "sub"]
    assert [e.name for e in fs.listdir(fs.resolve("/").ino)] == ["data"]


def test_drive_letter_paths_stay_inside_the_share(client: Callable[..., tuple[BadClient, int]],
                                                  smb_store: Store) -> None:
    c, tid = client()
    for path in ("C:\\escape.txt", "C:\\Windows\\win.ini", "c:\\..\\x"):
        assert c.create_status(tid, path) in (NtStatus.OBJECT_NAME_INVALID, NtStatus.OBJECT_PATH_NOT_FOUND,
                                              NtStatus.OBJECT_PATH_SYNTAX_BAD)
    assert names(smb_store) == ["known.txt"]


def test_empty_stream_name_is_invalid(client: Callable[..., tuple[BadClient, int]], smb_store: Store) -> None:
    c, tid = client()
    for path in ("C:", "C:\\", "x:"):
        assert c.create_status(tid, path) == NtStatus.OBJECT_NAME_INVALID
    assert names(smb_store) == ["known.txt"]


# ----------------------------------------------------------------------------- compounds

def test_related_create_write_close(client: Callable[..., tuple[BadClient, int]], smb_store: Store) -> None:
    c, tid = client()
    rel = Flags.RELATED_OPERATIONS
    frame = c.compound([
        (c.header(Command.CREATE, tid), create_body("chain.txt", FILE_CREATE)),
        (c.header(Command.WRITE, tid, flags=rel), write_body(RELATED_FILE_ID, b"chained write")),
        (c.header(Command.READ, tid, flags=rel), read_body(RELATED_FILE_ID, 100)),
        (c.header(Command.CLOSE, tid, flags=rel), close_body()),
    ])
    c.send(frame)
    rs = c.read_responses()
    assert [r.header.command for r in rs] == [Command.CREATE, Command.WRITE, Command.READ, Command.CLOSE]
    assert [r.status for r in rs] == [NtStatus.SUCCESS] * 4
    assert all(r.header.is_related for r in rs[1:])
    assert rs[2].body[16:16 + 13] == b"chained write"
    fs = smb_store.fs
    assert fs.read(fs.resolve("/data/chain.txt").ino, 0, 100) == b"chained write"


def test_related_chain_after_a_failed_create_fails_with_its_status(client: Callable[..., tuple[BadClient, int]],
                                                                  smb_store: Store) -> None:
    c, tid = client()
    rel = Flags.RELATED_OPERATIONS
    c.send(c.compound([
        (c.header(Command.CREATE, tid), create_body("missing.txt", FILE_OPEN)),
        (c.header(Command.WRITE, tid, flags=rel), write_body(RELATED_FILE_ID, b"never")),
        (c.header(Command.CLOSE, tid, flags=rel), close_body()),
    ]))
    rs = c.read_responses()
    assert [r.status for r in rs] == [NtStatus.OBJECT_NAME_NOT_FOUND] * 3
    c.send(c.compound([
        (c.header(Command.CREATE, tid), create_body("..\\up.txt", FILE_CREATE)),
        (c.header(Command.WRITE, tid, flags=rel), write_body(RELATED_FILE_ID, b"never")),
    ]))
    assert [r.status for r in c.read_responses()] == [NtStatus.OBJECT_PATH_SYNTAX_BAD] * 2
    assert names(smb_store) == ["known.txt"]
    assert c.echo().status == NtStatus.SUCCESS


def test_first_message_marked_related_is_invalid(client: Callable[..., tuple[BadClient, int]]) -> None:
    c, tid = client()
    c.send(c.compound([(c.header(Command.WRITE, tid, flags=Flags.RELATED_OPERATIONS),
                        write_body(RELATED_FILE_ID, b"x"))]))
    assert c.read_responses()[0].status == NtStatus.INVALID_PARAMETER
    assert c.echo().status == NtStatus.SUCCESS
