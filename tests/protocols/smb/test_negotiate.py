"""NEGOTIATE: requests built by impacket's and smbprotocol's clients, responses read back by both."""

from __future__ import annotations

import struct
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from impacket import smb  # type: ignore[import-untyped]
from impacket import smb3structs as s3  # type: ignore[import-untyped]
from impacket.smb3 import SMB3  # type: ignore[import-untyped]
from smbprotocol.connection import (  # type: ignore[import-untyped]
    Connection,
    SMB2NegotiateRequest,
    SMB2NegotiateResponse,
)

from protocols.smb.crypto import Cipher, Dialect, SigningAlgorithm
from protocols.smb.framing import smb1_dialects
from protocols.smb.header import Command, Flags, Header
from protocols.smb.negotiate import (
    Capabilities,
    NegotiateConfig,
    NegotiateError,
    NegotiateRequest,
    SecurityMode,
    choose,
    choose_smb1,
    encode_response,
    parse_request,
    smb1_response,
)
from protocols.smb.status import NtStatus

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GUID = bytes(range(16))
ALL = [0x0202, 0x0210, 0x0300, 0x0302, 0x0311]


def impacket_request(dialects: list[int], capabilities: int = 0x40) -> bytes:
    """A NEGOTIATE body built the way impacket's SMB3.negotiateSession builds it."""
    neg = s3.SMB2Negotiate()
    neg["SecurityMode"] = s3.SMB2_NEGOTIATE_SIGNING_ENABLED
    neg["Capabilities"] = capabilities
    neg["ClientGuid"] = GUID
    neg["Dialects"] = dialects
    neg["DialectCount"] = len(dialects)
    if s3.SMB2_DIALECT_311 in dialects:
        ctx_data = s3.SMB311ContextData()
        ctx_data["NegotiateContextOffset"] = 64 + 38 + (10 if len(dialects) > 1 else 2)
        ctx_data["NegotiateContextCount"] = 2
        pre = s3.SMB2PreAuthIntegrityCapabilities()
        pre["HashAlgorithmCount"] = 1
        pre["SaltLength"] = 32
        pre["HashAlgorithms"] = b"\x01\x00"
        pre["Salt"] = b"s" * 32
        c1 = s3.SMB2NegotiateContext()
        c1["ContextType"] = s3.SMB2_PREAUTH_INTEGRITY_CAPABILITIES
        c1["Data"] = pre.getData()
        c1["DataLength"] = len(c1["Data"])
        enc = s3.SMB2EncryptionCapabilities()
        enc["CipherCount"] = 1
        enc["Ciphers"] = b"\x01\x00"
        c2 = s3.SMB2NegotiateContext()
        c2["ContextType"] = s3.SMB2_ENCRYPTION_CAPABILITIES
        c2["Data"] = enc.getData()
        c2["DataLength"] = len(c2["Data"])
        neg["ClientStartTime"] = ctx_data.getData()
        neg["Padding"] = b"\xff\xff"
        neg["NegotiateContextList"] = c1.getData() + b"\xff" * (-c1["DataLength"] % 8) + c2.getData()
    else:
        neg["ClientStartTime"] = struct.pack("<Q", 0x01D0_0000_0000_0001)
    return bytes(neg.getData())


class _Captured(Exception):
    pass


def smbprotocol_negotiate(dialect: int | None = None, ciphers: list[int] | None = None,
                          signing: list[int] | None = None, answer: Any = None) -> tuple[Connection, bytes, Any]:
    """Run smbprotocol's Connection._send_smb2_negotiate with ``answer`` (a function of the
    request body returning the response body) in place of the socket."""
    conn = Connection(uuid.UUID(bytes=GUID), "tessera", 445)
    sent: list[bytes] = []

    def send(msg: Any) -> object:
        sent.append(msg.pack())
        return object()

    def receive(_request: object, timeout: object = None) -> dict[str, Any]:
        if answer is None:
            raise _Captured
        body = answer(sent[0])
        return {"data": SimpleNamespace(get_value=lambda: body)}

    conn.send = send  # type: ignore[method-assign]
    conn.receive = receive  # type: ignore[method-assign]
    try:
        resp = conn._send_smb2_negotiate(dialect, 5, ciphers or [2, 1, 4, 3], signing or [2, 1, 0])
    except _Captured:
        resp = None
    return conn, sent[0], resp


def respond(body: bytes, config: NegotiateConfig | None = None, sec: bytes = b"\x60\x02\x06\x00") -> bytes:
    return encode_response(choose(parse_request(body), config or NegotiateConfig()), b"G" * 16, sec, 133, 0)


# -- parsing real clients' requests -----------------------------------------------------------


def test_parse_impacket_311_request() -> None:
    req = parse_request(impacket_request(ALL))
    assert req.dialects == tuple(ALL) and req.client_guid == GUID and req.capabilities == 0x40
    assert req.security_mode == 1 and req.hash_algorithms == (1,) and req.salt == b"s" * 32
    assert req.ciphers == (1,) and req.signing_algorithms is None and req.netname is None


def test_parse_impacket_single_dialects() -> None:
    req = parse_request(impacket_request([0x0210]))
    assert req.dialects == (0x0210,) and req.client_start_time == 0x01D0_0000_0000_0001
    assert req.hash_algorithms is None
    assert parse_request(impacket_request([0x0311])).hash_algorithms == (1,)


def test_parse_smbprotocol_request() -> None:
    conn, body, _ = smbprotocol_negotiate()
    req = parse_request(body)
    assert req.dialects == tuple(ALL) and req.client_guid == GUID
    assert req.salt == conn.salt and len(req.salt) == 32 and req.hash_algorithms == (1,)
    assert req.ciphers == (2, 1, 4, 3) and req.signing_algorithms == (2, 1, 0)
    assert req.netname == "tessera" and req.capabilities == conn.client_capabilities


def test_parse_smbprotocol_smb2_request() -> None:
    msg = SMB2NegotiateRequest()
    msg["dialects"] = [0x0202, 0x0210]
    msg["security_mode"] = 2
    req = parse_request(msg.pack())
    assert req.dialects == (0x0202, 0x0210) and req.security_mode == 2 and req.ciphers is None


# -- responses read by the clients ------------------------------------------------------------


def test_smbprotocol_reads_311_response() -> None:
    conn, _, resp = smbprotocol_negotiate(answer=respond)
    assert resp["dialect_revision"].get_value() == 0x0311
    assert resp["security_mode"].get_value() == 3 and resp["server_guid"].get_value().bytes == b"G" * 16
    assert resp["buffer"].get_value() == b"\x60\x02\x06\x00"
    assert resp["max_read_size"].get_value() == resp["max_write_size"].get_value() == 8 * 1024 * 1024
    caps = resp["capabilities"].get_value()
    assert caps & Capabilities.LARGE_MTU and caps & Capabilities.LEASING and not caps & Capabilities.ENCRYPTION
    ctx = {int(c["context_type"].get_value()): c["data"] for c in resp["negotiate_context_list"]}
    assert set(ctx) == {1, 2, 8}
    assert ctx[1]["hash_algorithms"].get_value() == [1] and len(ctx[1]["salt"].get_value()) == 32
    assert ctx[1]["salt"].get_value() != conn.salt
    assert ctx[2]["ciphers"].get_value() == [Cipher.AES_128_GCM]
    assert ctx[8]["signing_algorithms"].get_value() == [SigningAlgorithm.AES_GMAC]


@pytest.mark.parametrize(("ciphers", "signing", "cipher", "algorithm"), [
    ([4, 3], [1, 0], Cipher.AES_256_GCM, SigningAlgorithm.AES_CMAC),
    ([3, 1], [0], Cipher.AES_128_CCM, SigningAlgorithm.HMAC_SHA256),
    ([3], [0, 2], Cipher.AES_256_CCM, SigningAlgorithm.AES_GMAC),
])
def test_smbprotocol_choices(ciphers: list[int], signing: list[int], cipher: int, algorithm: int) -> None:
    _, _, resp = smbprotocol_negotiate(ciphers=ciphers, signing=signing, answer=respond)
    ctx = {int(c["context_type"].get_value()): c["data"] for c in resp["negotiate_context_list"]}
    assert ctx[2]["ciphers"].get_value() == [cipher]
    assert ctx[8]["signing_algorithms"].get_value() == [algorithm]


def test_smbprotocol_sees_no_common_cipher_as_no_encryption() -> None:
    only_gcm = NegotiateConfig(ciphers=(Cipher.AES_128_GCM,))
    _, _, resp = smbprotocol_negotiate(ciphers=[4, 3], answer=lambda b: respond(b, only_gcm))
    ctx = {int(c["context_type"].get_value()): c["data"] for c in resp["negotiate_context_list"]}
    assert ctx[2]["ciphers"].get_value() == [0]


def test_signing_falls_back_to_cmac() -> None:
    n = choose(_req((0x0311,), signing_algorithms=(0x77,)), NegotiateConfig())
    assert n.signing is SigningAlgorithm.AES_CMAC and n.signing_context


def test_smbprotocol_302_gets_encryption_capability() -> None:
    _, body, resp = smbprotocol_negotiate(dialect=0x0302, answer=respond)
    n = choose(parse_request(body), NegotiateConfig())
    assert n.cipher is Cipher.AES_128_CCM and n.signing is SigningAlgorithm.AES_CMAC
    assert resp["dialect_revision"].get_value() == 0x0302
    assert resp["capabilities"].get_value() & Capabilities.ENCRYPTION
    assert resp["negotiate_context_offset"].get_value() == 0 and resp["negotiate_context_list"].get_value() == []
    off = NegotiateConfig(encryption=False, signing_required=False)
    _, _, resp = smbprotocol_negotiate(dialect=0x0302, answer=lambda b: respond(b, off))
    assert not resp["capabilities"].get_value() & Capabilities.ENCRYPTION
    assert resp["security_mode"].get_value() == SecurityMode.SIGNING_ENABLED


def test_impacket_reads_311_response() -> None:
    body = respond(impacket_request(ALL))
    resp = s3.SMB2Negotiate_Response(body)
    assert resp["DialectRevision"] == 0x0311 and resp["Buffer"] == b"\x60\x02\x06\x00"
    assert resp["SecurityMode"] & s3.SMB2_NEGOTIATE_SIGNING_REQUIRED and resp["SystemTime"] == 133
    assert resp["NegotiateContextCount"] == 2                 # impacket sends no signing context
    fake = SimpleNamespace(_Connection={})
    SMB3.processContextList(fake, resp["NegotiateContextCount"], resp["NegotiateContextList"])  # type: ignore[arg-type]
    assert fake._Connection == {"PreauthIntegrityHashId": 1, "CipherId": Cipher.AES_128_CCM,
                                "SupportsEncryption": True}


@pytest.mark.parametrize("sec", [b"", b"x", b"y" * 7, b"z" * 8, b"w" * 300])
def test_contexts_8_byte_aligned_after_any_buffer(sec: bytes) -> None:
    body = respond(impacket_request(ALL), sec=sec)
    resp = s3.SMB2Negotiate_Response(body)
    assert resp["Buffer"] == sec and resp["NegotiateContextOffset"] % 8 == 0
    assert resp["NegotiateContextOffset"] == 128 + len(sec) + (-len(sec) % 8)
    first = s3.SMB2NegotiateContext(resp["NegotiateContextList"])
    assert first["ContextType"] == s3.SMB2_PREAUTH_INTEGRITY_CAPABILITIES


def test_impacket_reads_21_response() -> None:
    resp = s3.SMB2Negotiate_Response(respond(impacket_request([0x0202, 0x0210])))
    assert resp["DialectRevision"] == 0x0210 and resp["NegotiateContextOffset"] == 0
    assert resp["Capabilities"] == s3.SMB2_GLOBAL_CAP_LEASING | s3.SMB2_GLOBAL_CAP_LARGE_MTU
    resp = s3.SMB2Negotiate_Response(respond(impacket_request([0x0202])))
    assert resp["DialectRevision"] == 0x0202 and resp["Capabilities"] == 0 and resp["MaxReadSize"] == 65536


def test_salt_is_fresh_each_time() -> None:
    n = choose(parse_request(impacket_request(ALL)), NegotiateConfig())
    a, b = (encode_response(n, GUID, b"", 0, 0) for _ in range(2))
    assert len(a) == len(b)
    salts = {s3.SMB2PreAuthIntegrityCapabilities(s3.SMB2NegotiateContext(
        s3.SMB2Negotiate_Response(x)["NegotiateContextList"])["Data"])["Salt"] for x in (a, b)}
    assert len(salts) == 2


# -- the choice table -------------------------------------------------------------------------


def _req(dialects: tuple[int, ...], **kw: Any) -> NegotiateRequest:
    kw.setdefault("hash_algorithms", (1,) if 0x0311 in dialects else None)
    return NegotiateRequest(dialects, 1, kw.pop("caps", 0x40), GUID, **kw)


@pytest.mark.parametrize(("offered", "allowed", "expected"), [
    (ALL, set(Dialect), Dialect.SMB311),
    (ALL, {Dialect.SMB21, Dialect.SMB30}, Dialect.SMB30),
    ([0x0202, 0x0210], set(Dialect), Dialect.SMB21),
    ([0x0300, 0x02FF, 0x9999], set(Dialect), Dialect.SMB30),      # unknown numbers are skipped
    ([0x0302, 0x0202], {Dialect.SMB202}, Dialect.SMB202),
])
def test_dialect_choice(offered: list[int], allowed: set[Dialect], expected: Dialect) -> None:
    assert choose(_req(tuple(offered)), NegotiateConfig(dialects=frozenset(allowed))).dialect is expected


def test_no_common_dialect_is_not_supported() -> None:
    with pytest.raises(NegotiateError) as e:
        choose(_req((0x0202, 0x0210)), NegotiateConfig(dialects=frozenset({Dialect.SMB30, Dialect.SMB311})))
    assert e.value.status is NtStatus.NOT_SUPPORTED
    with pytest.raises(NegotiateError):
        choose(_req((0x9999,)), NegotiateConfig())


def test_311_preauth_rules() -> None:
    with pytest.raises(NegotiateError) as e:
        choose(_req((0x0311,), hash_algorithms=None), NegotiateConfig())
    assert e.value.status is NtStatus.INVALID_PARAMETER
    with pytest.raises(NegotiateError) as e:
        choose(_req((0x0311,), hash_algorithms=(2,)), NegotiateConfig())
    assert e.value.status is NtStatus.SMB_NO_PREAUTH_INTEGRITY_HASH_OVERLAP
    # 3.1.1 not chosen: its contexts do not matter
    n = choose(_req((0x0302, 0x0311), hash_algorithms=None), NegotiateConfig(dialects=frozenset({Dialect.SMB302})))
    assert n.dialect is Dialect.SMB302


@pytest.mark.parametrize(("ciphers", "config", "expected"), [
    ((1, 2, 3, 4), NegotiateConfig(), Cipher.AES_128_GCM),
    ((4, 3, 1), NegotiateConfig(), Cipher.AES_128_CCM),
    ((4, 3), NegotiateConfig(), Cipher.AES_256_GCM),
    ((3,), NegotiateConfig(), Cipher.AES_256_CCM),
    ((5, 0), NegotiateConfig(), None),
    ((1, 2), NegotiateConfig(encryption=False), None),
    ((1, 2, 4), NegotiateConfig(ciphers=(Cipher.AES_256_GCM, Cipher.AES_128_GCM)), Cipher.AES_256_GCM),
])
def test_cipher_choice(ciphers: tuple[int, ...], config: NegotiateConfig, expected: Cipher | None) -> None:
    n = choose(_req((0x0311,), ciphers=ciphers), config)
    assert n.cipher is expected and n.encryption_context is config.encryption


def test_30_cipher_needs_client_capability_and_config() -> None:
    assert choose(_req((0x0300,)), NegotiateConfig()).cipher is Cipher.AES_128_CCM
    n = choose(_req((0x0300,), caps=0), NegotiateConfig())
    assert n.cipher is None and not n.capabilities & Capabilities.ENCRYPTION
    assert choose(_req((0x0210,)), NegotiateConfig()).cipher is None


def test_signing_choice_and_mode() -> None:
    assert choose(_req((0x0210,)), NegotiateConfig()).signing is SigningAlgorithm.HMAC_SHA256
    assert choose(_req((0x0302,)), NegotiateConfig()).signing is SigningAlgorithm.AES_CMAC
    assert choose(_req((0x0311,)), NegotiateConfig()).signing is SigningAlgorithm.AES_CMAC
    assert not choose(_req((0x0311,)), NegotiateConfig()).signing_context
    n = choose(_req((0x0311,), signing_algorithms=(1, 2)), NegotiateConfig(signing_required=False))
    assert n.signing is SigningAlgorithm.AES_GMAC and n.signing_context and not n.signing_required
    assert n.security_mode == SecurityMode.SIGNING_ENABLED
    assert choose(_req((0x0202,)), NegotiateConfig()).security_mode == 3


# -- malformed input --------------------------------------------------------------------------


def _with_contexts(*contexts: tuple[int, bytes], offset: int | None = None) -> bytes:
    fixed = struct.pack("<HHHHI16sIHH", 36, 1, 1, 0, 0, GUID, 0, 0, 0) + b"\x11\x03" + bytes(2)
    ctx = b""
    for i, (kind, data) in enumerate(contexts):
        ctx += struct.pack("<HHI", kind, len(data), 0) + data
        if i < len(contexts) - 1:
            ctx += bytes(-len(ctx) % 8)
    head = bytearray(fixed)
    struct.pack_into("<IH", head, 28, 64 + 40 if offset is None else offset, len(contexts))
    return bytes(head) + ctx


PRE = (1, struct.pack("<HHH", 1, 4, 1) + b"salt")


def test_handmade_contexts_parse() -> None:
    net = "srv.example".encode("utf-16-le")
    compression = (3, struct.pack("<HHIH", 1, 0, 0, 2))
    req = parse_request(_with_contexts(PRE, (6, bytes(4)), (7, bytes(8)), (5, net), compression, (0x1234, b"whatever")))
    assert req.salt == b"salt" and req.netname == "srv.example" and req.compression_algorithms == (2,)


@pytest.mark.parametrize("body", [
    b"", bytes(35), struct.pack("<HH", 37, 1) + bytes(34),          # short, StructureSize 37
    struct.pack("<HH", 36, 3) + bytes(34),                          # 3 dialects, none present
    _with_contexts(PRE, offset=64 + 32),                            # inside the dialect list
    _with_contexts(PRE, offset=64 + 44),                            # not 8-byte aligned
    _with_contexts(PRE)[:-1],                                       # truncated data
    _with_contexts(PRE, PRE),                                       # two preauth contexts
    _with_contexts(PRE, (2, b"\x01\x00\x01\x00"), (2, b"\x01\x00\x02\x00")),
    _with_contexts((1, struct.pack("<HH", 0, 0))),                  # no hash algorithm
    _with_contexts((1, struct.pack("<HHH", 1, 9, 1) + b"salt")),    # salt overruns
    _with_contexts((1, b"\x01")),
    _with_contexts(PRE, (2, b"\x00\x00")), _with_contexts(PRE, (2, b"\x03\x00\x01\x00")),
    _with_contexts(PRE, (8, b"\x00\x00")), _with_contexts(PRE, (3, struct.pack("<HHI", 0, 0, 0))),
    _with_contexts(PRE, (3, b"\x01\x00")),
])
def test_malformed_requests_are_invalid_parameter(body: bytes) -> None:
    with pytest.raises(NegotiateError) as e:
        parse_request(body)
    assert e.value.status is NtStatus.INVALID_PARAMETER


@FUZZ
@given(st.sampled_from([impacket_request(ALL), impacket_request([0x0210]), smbprotocol_negotiate()[1]]),
       st.integers(0, 200), st.lists(st.tuples(st.integers(0, 199), st.integers(0, 255)), max_size=6))
def test_fuzz_truncated_and_mutated_requests(base: bytes, cut: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(base[:cut])
    for at, value in flips:
        if at < len(data):
            data[at] = value
    try:
        req = parse_request(bytes(data))
    except NegotiateError as e:
        assert e.status is NtStatus.INVALID_PARAMETER
        return
    try:
        n = choose(req, NegotiateConfig())
    except NegotiateError:
        return
    resp = encode_response(n, GUID, b"tok", 0, 0)
    assert s3.SMB2Negotiate_Response(resp)["DialectRevision"] == n.dialect


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    try:
        parse_request(struct.pack("<H", 36) + data)
    except NegotiateError:
        pass


# -- SMB1 multi-protocol negotiate ------------------------------------------------------------


def _smb1(offered: list[str]) -> bytes:
    p = smb.NewSMBPacket()
    p["Flags2"] = smb.SMB.FLAGS2_EXTENDED_SECURITY | smb.SMB.FLAGS2_UNICODE
    neg = smb.SMBCommand(smb.SMB.SMB_COM_NEGOTIATE)
    neg["Data"] = b"".join(b"\x02" + d.encode() + b"\x00" for d in offered)
    p.addCommand(neg)
    return bytes(p.getData())


@pytest.mark.parametrize(("offered", "allowed", "revision"), [
    (["NT LM 0.12", "SMB 2.002", "SMB 2.???"], set(Dialect), 0x02FF),        # Windows, impacket
    (["NT LM 0.12", "SMB 2.002"], set(Dialect), 0x0202),
    (["NT LM 0.12", "SMB 2.002", "SMB 2.???"], {Dialect.SMB202}, 0x0202),
    (["NT LM 0.12", "SMB 2.???"], {Dialect.SMB311}, 0x02FF),
    (["NT LM 0.12"], set(Dialect), None),
    (["NT LM 0.12", "SMB 2.???"], {Dialect.SMB202}, None),
])
def test_smb1_negotiate(offered: list[str], allowed: set[Dialect], revision: int | None) -> None:
    got = smb1_response(smb1_dialects(_smb1(offered)), NegotiateConfig(dialects=frozenset(allowed)),
                        GUID, b"\x60\x00", 1, 0)
    if revision is None:
        assert got is None
        return
    assert got is not None
    negotiated, wire = got
    h = Header.decode(wire)
    assert h.command is Command.NEGOTIATE and h.message_id == 0 and h.flags == Flags.SERVER_TO_REDIR
    assert h.credits >= 1 and h.status == 0
    packet = s3.SMB2Packet(wire)
    resp = s3.SMB2Negotiate_Response(packet["Data"])
    assert resp["DialectRevision"] == revision == negotiated.revision and resp["Buffer"] == b"\x60\x00"
    assert resp["NegotiateContextOffset"] == 0 and resp["SecurityMode"] == 3
    mine = SMB2NegotiateResponse()
    mine.unpack(wire[64:])
    assert mine["dialect_revision"].get_value() == revision


def test_smb1_wildcard_is_not_final() -> None:
    n = choose_smb1(["SMB 2.???"], NegotiateConfig())
    assert n is not None and n.wildcard and n.revision == 0x02FF
