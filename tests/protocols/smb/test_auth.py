"""The SMB server's NTLMv2-in-SPNEGO authentication, driven by impacket's NTLM client side."""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import Any

import pytest
from Cryptodome.Cipher import ARC4
from impacket import ntlm  # type: ignore[import-untyped]
from impacket.spnego import SPNEGO_NegTokenInit, SPNEGO_NegTokenResp, TypesMech  # type: ignore[import-untyped]

from core.identity import nt_hash
from core.store import Store
from protocols.smb import spnego
from protocols.smb.auth import NEG_TOKEN_INIT2, NtlmServer, identity_lookup, rc4
from protocols.smb.status import NtStatus

NTLM_OID = TypesMech["NTLMSSP - Microsoft NTLM Security Support Provider"]
KRB5_OID = TypesMech["KRB5 - Kerberos 5"]
MECH_TYPES_DER = b"\x30\x0c\x06\x0a" + NTLM_OID  # what impacket's NegTokenInit encodes for [NTLMSSP]
VERSION = bytes([10, 0]) + struct.pack("<H", 19041) + b"\0\0\0\x0f"
USERS = {"alice": nt_hash("correct horse"), "bob": nt_hash("hunter2")}


def stub_lookup(name: str) -> tuple[bytes | None, str]:
    for n, h in USERS.items():
        if n.casefold() == name.casefold():
            return h, n
    return None, name


def server(**kw: Any) -> NtlmServer:
    return NtlmServer(stub_lookup, "TESSERA", "WORKGROUP", **kw)


@dataclass
class Client:
    """impacket's SMB3 client's session setup, one leg at a time (optionally with MIC and mechListMIC)."""

    user: str
    password: str
    domain: str = ""
    signing: bool = True
    ntlmv2: bool = True
    mic: bool = False
    type1: Any = None
    type1_bytes: bytes = b""
    key: bytes = b""

    def negotiate(self, wrap: bool = True) -> bytes:
        self.type1 = ntlm.getNTLMSSPType1("WS1", "", self.signing, use_ntlmv2=self.ntlmv2,
                                          version=VERSION if self.mic else None)
        self.type1_bytes = self.type1.getData()
        if not wrap:
            return self.type1_bytes
        blob = SPNEGO_NegTokenInit()
        blob["MechTypes"] = [NTLM_OID]
        blob["MechToken"] = self.type1_bytes
        return bytes(blob.getData())

    def authenticate(self, type2: bytes, wrap: bool = True, mech_list_mic: bool | None = None) -> bytes:
        seen = type2
        if self.mic:  # announce a MIC in the AV pairs the NTLMv2 blob carries (MsvAvFlags 0x2)
            ch = ntlm.NTLMAuthChallenge(type2)
            av = ntlm.AV_PAIRS(ch["TargetInfoFields"])
            av[ntlm.NTLMSSP_AV_FLAGS] = struct.pack("<I", 2)
            info = av.getData()
            ch["TargetInfoFields"] = info
            ch["TargetInfoFields_len"] = ch["TargetInfoFields_max_len"] = len(info)
            seen = ch.getData()
        type3, self.key = ntlm.getNTLMSSPType3(self.type1, seen, self.user, self.password, self.domain,
                                               use_ntlmv2=self.ntlmv2)
        if self.mic:
            type3["Version"] = VERSION
            type3["MIC"] = bytes(16)
            type3["MIC"] = hmac.new(self.key, self.type1_bytes + type2 + type3.getData(), hashlib.md5).digest()
        raw = bytes(type3.getData())
        if not wrap:
            return raw
        resp = SPNEGO_NegTokenResp()
        resp["ResponseToken"] = raw
        if self.mic if mech_list_mic is None else mech_list_mic:
            resp["mechListMIC"] = self.sign(MECH_TYPES_DER, "Client")
        return bytes(resp.getData())

    def sign(self, data: bytes, mode: str) -> bytes:
        flags = self.type1["flags"]
        handle = ARC4.new(ntlm.SEALKEY(flags, self.key, mode)).encrypt
        return bytes(ntlm.SIGN(flags, ntlm.SIGNKEY(flags, self.key, mode), data, 0, handle).getData())


def challenge_of(out: bytes) -> bytes:
    return bytes(SPNEGO_NegTokenResp(out)["ResponseToken"])


def login(srv: NtlmServer, c: Client, wrap: bool = True) -> tuple[bytes, NtStatus]:
    out, st = srv.step(c.negotiate(wrap))
    assert st is NtStatus.MORE_PROCESSING_REQUIRED
    return srv.step(c.authenticate(challenge_of(out) if wrap else out, wrap))


def test_neg_token_init2_offers_only_ntlmssp() -> None:
    t = SPNEGO_NegTokenInit(NEG_TOKEN_INIT2)
    assert t["MechTypes"] == [NTLM_OID]
    assert spnego.parse_token(NEG_TOKEN_INIT2).mech_types == (NTLM_OID,)


def test_challenge_flags_target_info_and_random_challenge() -> None:
    c = Client("alice", "correct horse")
    outs = [server().step(c.negotiate()) for _ in range(2)]
    assert all(st is NtStatus.MORE_PROCESSING_REQUIRED for _, st in outs)
    resp = SPNEGO_NegTokenResp(outs[0][0])
    assert resp["NegState"] == b"\x01" and resp["SupportedMech"] == NTLM_OID
    chs = [ntlm.NTLMAuthChallenge(challenge_of(out)) for out, _ in outs]
    assert chs[0]["challenge"] != chs[1]["challenge"]
    flags = chs[0]["flags"]
    for f in (ntlm.NTLMSSP_NEGOTIATE_128, ntlm.NTLMSSP_NEGOTIATE_KEY_EXCH, ntlm.NTLMSSP_NEGOTIATE_SIGN,
              ntlm.NTLMSSP_NEGOTIATE_SEAL, ntlm.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY,
              ntlm.NTLMSSP_NEGOTIATE_TARGET_INFO, ntlm.NTLMSSP_NEGOTIATE_VERSION, ntlm.NTLMSSP_NEGOTIATE_UNICODE):
        assert flags & f, hex(f)
    assert not flags & ntlm.NTLMSSP_NEGOTIATE_LM_KEY
    av = ntlm.AV_PAIRS(chs[0]["TargetInfoFields"])
    assert av[ntlm.NTLMSSP_AV_HOSTNAME][1].decode("utf-16-le") == "TESSERA"
    assert av[ntlm.NTLMSSP_AV_DOMAINNAME][1].decode("utf-16-le") == "WORKGROUP"
    assert av[ntlm.NTLMSSP_AV_DNS_HOSTNAME][1].decode("utf-16-le") == "tessera"
    assert len(av[ntlm.NTLMSSP_AV_TIME][1]) == 8


def test_challenge_grants_no_key_exchange_unasked() -> None:
    out, _ = server().step(Client("alice", "correct horse", signing=False).negotiate())
    assert not ntlm.NTLMAuthChallenge(challenge_of(out))["flags"] & ntlm.NTLMSSP_NEGOTIATE_KEY_EXCH


@pytest.mark.parametrize("signing", [True, False])
@pytest.mark.parametrize("domain", ["", "WORKGROUP", "CORP"])
def test_good_password_same_session_key(signing: bool, domain: str) -> None:
    srv, c = server(), Client("alice", "correct horse", domain, signing=signing)
    out, st = login(srv, c)
    assert st is NtStatus.SUCCESS and srv.done
    assert srv.user == "alice" and not srv.anonymous
    assert srv.session_key == c.key and len(c.key) == 16
    assert SPNEGO_NegTokenResp(out)["NegState"] == b"\x00"


def test_raw_ntlmssp_answered_raw() -> None:
    srv, c = server(), Client("bob", "hunter2")
    out, st = srv.step(c.negotiate(wrap=False))
    assert st is NtStatus.MORE_PROCESSING_REQUIRED and out.startswith(b"NTLMSSP\0\x02\0\0\0")
    out, st = srv.step(c.authenticate(out, wrap=False))
    assert (out, st, srv.session_key) == (b"", NtStatus.SUCCESS, c.key)


def test_upn_user_name() -> None:
    srv = server()
    assert login(srv, Client("Alice@tessera.example", "correct horse"))[1] is NtStatus.SUCCESS
    assert srv.user == "alice"
    assert login(server(), Client("alice@tessera.example", "hunter2"))[1] is NtStatus.LOGON_FAILURE


def test_user_names_are_case_insensitive() -> None:
    srv = server()
    assert login(srv, Client("ALICE", "correct horse"))[1] is NtStatus.SUCCESS
    assert srv.user == "alice"


@pytest.mark.parametrize("user,password", [("alice", "Correct horse"), ("alice", ""), ("carol", "correct horse"),
                                           ("bob", "correct horse")])
def test_wrong_password_or_unknown_user(user: str, password: str) -> None:
    srv = server()
    assert login(srv, Client(user, password)) == (b"", NtStatus.LOGON_FAILURE)
    assert srv.failed and srv.user is None and srv.session_key is None


def test_ntlmv1_refused() -> None:
    srv, c = server(), Client("alice", "correct horse", ntlmv2=False)
    assert login(srv, c)[1] is NtStatus.LOGON_FAILURE


def test_anonymous_refused_unless_allowed() -> None:
    assert login(server(), Client("", ""))[1] is NtStatus.LOGON_FAILURE
    srv = server(allow_guest=True)
    assert login(srv, Client("", ""))[1] is NtStatus.SUCCESS
    assert srv.anonymous and srv.user is None


def test_tampered_nt_response_fails() -> None:
    srv, c = server(), Client("alice", "correct horse")
    out, _ = srv.step(c.negotiate())
    type3 = ntlm.NTLMAuthChallengeResponse()
    type3.fromString(SPNEGO_NegTokenResp(c.authenticate(challenge_of(out)))["ResponseToken"])
    raw = bytearray(type3.getData())
    raw[type3["ntlm_offset"] + 40] ^= 1  # inside the blob, after the NTProofStr
    resp = SPNEGO_NegTokenResp()
    resp["ResponseToken"] = bytes(raw)
    assert srv.step(resp.getData()) == (b"", NtStatus.LOGON_FAILURE)


def test_replayed_authenticate_fails_against_a_new_challenge() -> None:
    first, c = server(), Client("alice", "correct horse")
    out, _ = first.step(c.negotiate())
    auth = c.authenticate(challenge_of(out))
    second = server()
    second.step(c.negotiate())
    assert second.step(auth)[1] is NtStatus.LOGON_FAILURE
    assert first.step(auth)[1] is NtStatus.SUCCESS  # the same message is good where it belongs


def test_after_failure_every_step_fails() -> None:
    srv = server()
    assert login(srv, Client("alice", "wrong"))[1] is NtStatus.LOGON_FAILURE
    c = Client("alice", "correct horse")
    assert srv.step(c.negotiate()) == (b"", NtStatus.LOGON_FAILURE)
    assert srv.session_key is None and srv.user is None


def test_good_authenticate_after_a_bad_one_fails() -> None:
    srv, c = server(), Client("alice", "correct horse")
    out, _ = srv.step(c.negotiate())
    good = SPNEGO_NegTokenResp(c.authenticate(challenge_of(out)))["ResponseToken"]
    proof_at = struct.unpack_from("<I", good, 24)[0]  # NtChallengeResponseFields.BufferOffset
    bad = SPNEGO_NegTokenResp()
    bad["ResponseToken"] = good[:proof_at] + bytes([good[proof_at] ^ 1]) + good[proof_at + 1:]
    assert srv.step(bad.getData())[1] is NtStatus.LOGON_FAILURE
    retry = SPNEGO_NegTokenResp()
    retry["ResponseToken"] = good
    assert srv.step(retry.getData()) == (b"", NtStatus.LOGON_FAILURE)
    assert srv.failed and srv.session_key is None


def test_proof_under_the_empty_domain_accepted() -> None:
    srv, c = server(), Client("alice", "correct horse", "")
    out, _ = srv.step(c.negotiate())
    type3 = ntlm.NTLMAuthChallengeResponse()
    type3.fromString(SPNEGO_NegTokenResp(c.authenticate(challenge_of(out)))["ResponseToken"])
    type3["domain_name"] = "CORP".encode("utf-16-le")  # computed under "", sent as CORP
    resp = SPNEGO_NegTokenResp()
    resp["ResponseToken"] = type3.getData()
    assert srv.step(resp.getData())[1] is NtStatus.SUCCESS and srv.session_key == c.key


def test_garbage_fails_and_sticks() -> None:
    srv = server()
    assert srv.step(b"\xa1\x03\x30\x01\x00")[1] is NtStatus.LOGON_FAILURE
    assert srv.step(Client("alice", "correct horse").negotiate())[1] is NtStatus.LOGON_FAILURE


def test_mic_and_mech_list_mic() -> None:
    srv, c = server(), Client("alice", "correct horse", mic=True)
    out, st = login(srv, c)
    assert st is NtStatus.SUCCESS and srv.session_key == c.key
    assert spnego.parse_token(out).mic == c.sign(MECH_TYPES_DER, "Server")


def test_bad_mic_fails() -> None:
    srv, c = server(), Client("alice", "correct horse", mic=True)
    out, _ = srv.step(c.negotiate())
    t = spnego.parse_token(c.authenticate(challenge_of(out)))
    assert t.mech_token is not None
    raw = bytearray(t.mech_token)
    raw[72] ^= 1  # the MIC itself
    resp = SPNEGO_NegTokenResp()
    resp["ResponseToken"] = bytes(raw)
    resp["mechListMIC"] = t.mic
    assert srv.step(resp.getData())[1] is NtStatus.LOGON_FAILURE


def test_bad_mech_list_mic_fails() -> None:
    srv, c = server(), Client("alice", "correct horse", mic=True)
    out, _ = srv.step(c.negotiate())
    t = spnego.parse_token(c.authenticate(challenge_of(out)))
    assert t.mic is not None and t.mech_token is not None
    resp = SPNEGO_NegTokenResp()
    resp["ResponseToken"] = t.mech_token
    resp["mechListMIC"] = t.mic[:-1] + bytes([t.mic[-1] ^ 1])
    assert srv.step(resp.getData())[1] is NtStatus.LOGON_FAILURE


def test_other_preferred_mech_needs_mech_list_mic() -> None:
    def select(srv: NtlmServer, c: Client) -> bytes:
        init = SPNEGO_NegTokenInit()
        init["MechTypes"] = [KRB5_OID, NTLM_OID]
        init["MechToken"] = b"kerberos AP-REQ"
        out, st = srv.step(init.getData())
        assert st is NtStatus.MORE_PROCESSING_REQUIRED
        reply = spnego.parse_token(out)
        assert (reply.neg_state, reply.mech_types, reply.mech_token) == (spnego.REQUEST_MIC, (NTLM_OID,), None)
        resp = SPNEGO_NegTokenResp()
        resp["ResponseToken"] = c.negotiate(wrap=False)
        out, st = srv.step(resp.getData())
        assert st is NtStatus.MORE_PROCESSING_REQUIRED
        return spnego.parse_token(out).mech_token or b""

    der = spnego.mech_type_list(KRB5_OID, NTLM_OID)
    srv, c = server(), Client("alice", "correct horse")
    t = spnego.parse_token(c.authenticate(select(srv, c)))
    resp = SPNEGO_NegTokenResp()
    resp["ResponseToken"] = t.mech_token
    assert srv.step(resp.getData())[1] is NtStatus.LOGON_FAILURE  # no mechListMIC: refused

    srv, c = server(), Client("alice", "correct horse")
    t = spnego.parse_token(c.authenticate(select(srv, c)))
    resp["ResponseToken"] = t.mech_token
    resp["mechListMIC"] = c.sign(der, "Client")
    out, st = srv.step(resp.getData())
    assert st is NtStatus.SUCCESS and spnego.parse_token(out).mic == c.sign(der, "Server")


def test_rc4_matches_pycryptodome() -> None:
    key, data = bytes(range(16)), bytes(range(100, 140))
    assert rc4(key, data) == ARC4.new(key).encrypt(data)


def test_real_identity(mem_store: Store) -> None:
    ident = mem_store.identity
    ident.add_user("Dave", "s3cret pass", key=False)
    ident.add_user("nopw", key=False)
    lookup = identity_lookup(ident)
    srv, c = NtlmServer(lookup, "tessera", "workgroup"), Client("dAVE", "s3cret pass", "WORKGROUP")
    assert login(srv, c)[1] is NtStatus.SUCCESS
    assert srv.user == "Dave" and srv.session_key == c.key
    assert login(NtlmServer(lookup, "tessera", "workgroup"), Client("Dave", "s3cret Pass"))[1] \
        is NtStatus.LOGON_FAILURE
    assert login(NtlmServer(lookup, "tessera", "workgroup"), Client("nopw", ""))[1] is NtStatus.LOGON_FAILURE
    assert lookup("nobody") == (None, "nobody")
    ident.add_user("eve", "pw one", key=False)
    ident.add_user("Eve", "pw two", key=False)
    assert lookup("eve") == (nt_hash("pw one"), "eve")
    assert lookup("EVE") == (None, "EVE")  # two users differ only by case: neither


@pytest.mark.parametrize("password", ["correct horse", "wrong"])
def test_pyspnego_client(password: str) -> None:
    """pyspnego (smbprotocol's auth layer) sends the NTLM MIC and a mechListMIC and checks ours, as Windows does."""
    spnego_client = pytest.importorskip("spnego")
    c = spnego_client.client("alice", password, hostname="tessera", service="cifs", protocol="negotiate")
    srv = server()
    out, st = srv.step(c.step(NEG_TOKEN_INIT2))
    assert st is NtStatus.MORE_PROCESSING_REQUIRED
    last = c.step(out)
    assert spnego.parse_token(last).mic is not None
    out, st = srv.step(last)
    if password != "correct horse":
        assert (out, st) == (b"", NtStatus.LOGON_FAILURE)
        return
    assert st is NtStatus.SUCCESS
    c.step(out)  # raises if our mechListMIC is wrong
    assert c.complete and c.session_key == srv.session_key
