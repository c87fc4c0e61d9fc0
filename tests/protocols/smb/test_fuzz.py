"""Hypothesis fuzzing of the live server from a raw socket (``badclient``): random and mutated frames
after login, and mutated NEGOTIATE / SESSION_SETUP legs before it. The server answers or closes that one
connection; it never crashes (a new connection always logs in and reads a file)."""

from __future__ import annotations

import struct
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.smb import crypto
from protocols.smb.header import RELATED_FILE_ID, Command, Flags

from .badclient import (
    FILE_CREATE,
    BadClient,
    close_body,
    create_body,
    negotiate_body,
    still_serves,
    write_body,
)
from .conftest import PASSWORDS
from .serverlog import assert_no_server_errors, no_server_errors  # noqa: F401  (autouse)


def _answer_or_close(c: BadClient) -> None:
    """After a fuzzed frame, an ECHO is answered or the connection is closed, within 10 s (no hang)."""
    h = c.header(Command.ECHO)
    try:
        c.send(c.message(h, struct.pack("<HH", 4, 0)))
    except OSError:
        return                                         # already closed
    c.sock.settimeout(10)
    while True:
        try:
            frame = c.recv()
        except ConnectionError:
            return
        if frame is None:
            return
        if frame[:4] == b"\xfeSMB" and struct.unpack_from("<Q", frame, 24)[0] == h.message_id \
                and struct.unpack_from("<H", frame, 12)[0] == Command.ECHO:
            return


def _valid_frame(c: BadClient, tid: int, kind: int) -> bytes:
    """A valid unsigned request of a few kinds: a CREATE, a NEGOTIATE, a related CREATE+WRITE+CLOSE."""
    rel = Flags.RELATED_OPERATIONS
    h = c.header(Command.CREATE, tid)
    if kind == 0:
        return h.encode() + create_body("fuzz.txt", FILE_CREATE)
    if kind == 1:
        return h.encode() + negotiate_body((0x0202, 0x0210, 0x0300, 0x0311))
    return c.compound([(h, create_body("fuzz2.txt")),
                       (c.header(Command.WRITE, tid, flags=rel), write_body(RELATED_FILE_ID, b"data" * 10)),
                       (c.header(Command.CLOSE, tid, flags=rel), close_body())], sign=False)


@settings(max_examples=100, deadline=20_000, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_never_crashes_the_server(client: Callable[..., tuple[BadClient, int]], port: int,
                                       data: st.DataObject) -> None:
    c, tid = client()
    try:
        if data.draw(st.booleans(), label="random"):
            payload = data.draw(st.binary(min_size=0, max_size=400), label="bytes")
            if data.draw(st.booleans(), label="smb2 id"):
                payload = b"\xfeSMB" + payload
        else:
            buf = bytearray(_valid_frame(c, tid, data.draw(st.integers(0, 2), label="kind")))
            for pos, val in data.draw(st.lists(st.tuples(st.integers(0, len(buf) - 1), st.integers(0, 255)),
                                               min_size=1, max_size=8), label="flips"):
                buf[pos] = val
            cut = data.draw(st.integers(64, len(buf)), label="cut")
            payload = bytes(buf[:cut])
            if data.draw(st.booleans(), label="sign") and c.signing_key is not None and payload[:4] == b"\xfeSMB":
                payload = crypto.sign(payload, c.signing_key, c.algorithm)   # authentic, so the handlers see it
        c.send(payload)
        _answer_or_close(c)
    finally:
        c.close()
    still_serves(port)


def _mutated(data: st.DataObject, message: bytes) -> bytes:
    """``message`` with 1-6 bytes changed (mostly in the body) and maybe cut short."""
    buf = bytearray(message)
    where = st.one_of(st.integers(64, len(buf) - 1), st.integers(0, len(buf) - 1)) if len(buf) > 64 \
        else st.integers(0, len(buf) - 1)
    for pos, val in data.draw(st.lists(st.tuples(where, st.integers(0, 255)), min_size=1, max_size=6), label="flips"):
        buf[pos] = val
    return bytes(buf[:data.draw(st.integers(min(64, len(buf)), len(buf)), label="cut")])


@settings(max_examples=100, deadline=20_000, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_before_login_never_crashes_the_server(port: int, data: st.DataObject) -> None:
    """The unauthenticated surface: a mutated NEGOTIATE, or a mutated first or second SESSION_SETUP leg."""
    stage = data.draw(st.sampled_from(["negotiate", "setup1", "setup2"]), label="stage")
    c = BadClient(port)
    try:
        if stage == "negotiate":
            dialects = data.draw(st.lists(st.sampled_from([0x0202, 0x0210, 0x0300, 0x0302, 0x0311, 0x02FF, 0x0400]),
                                          min_size=1, max_size=6), label="dialects")
            c.send(_mutated(data, c.header(Command.NEGOTIATE).encode() + negotiate_body(dialects, ciphers=(1, 2, 4))))
        else:
            c.negotiate()
            leg = 1 if stage == "setup1" else 2
            try:
                c.login("alice", PASSWORDS["alice"], mutate=lambda n, m: _mutated(data, m) if n == leg else m)
            except Exception:   # the client may not understand what comes back; the server is what is checked
                pass
        _answer_or_close(c)
    finally:
        c.close()
    still_serves(port)
