"""Untrusted security buffers: the SPNEGO reader and the NTLM server never crash, never let garbage in."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from impacket.spnego import SPNEGO_NegTokenResp  # type: ignore[import-untyped]

from protocols.smb import spnego
from protocols.smb.status import NtStatus
from tests.protocols.smb.test_auth import Client, challenge_of, server

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=300))
def test_parse_token_only_raises_spnego_error(data: bytes) -> None:
    try:
        spnego.parse_token(data)
    except spnego.SpnegoError:
        pass


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([b"", b"NTLMSSP\0", b"\x60", b"\xa1"]))
def test_first_step_garbage_fails(data: bytes, prefix: bytes) -> None:
    srv = server()
    out, status = srv.step(prefix + data)
    assert status in (NtStatus.LOGON_FAILURE, NtStatus.MORE_PROCESSING_REQUIRED)
    if status is NtStatus.LOGON_FAILURE:
        assert out == b"" and srv.failed


@FUZZ
@given(st.data())
def test_mutated_authenticate_never_crashes(data: st.DataObject) -> None:
    srv, c = server(), Client("alice", "correct horse", mic=True)
    out, _ = srv.step(c.negotiate())
    raw = bytearray(SPNEGO_NegTokenResp(c.authenticate(challenge_of(out)))["ResponseToken"])
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    resp = SPNEGO_NegTokenResp()
    resp["ResponseToken"] = bytes(raw[:cut])
    _, status = srv.step(resp.getData())
    assert status in (NtStatus.SUCCESS, NtStatus.LOGON_FAILURE)
    if cut < 88:  # the fixed header, VERSION and MIC: any cut there must fail
        assert status is NtStatus.LOGON_FAILURE
