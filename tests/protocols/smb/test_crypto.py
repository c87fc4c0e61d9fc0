"""protocols.smb.crypto against published known answers and independent implementations.

Known answers: Microsoft's Open Specifications blog "SMB 2 and SMB 3 security in Windows 10:
the anatomy of signing and cryptographic keys", appendix (3.0 keys; 3.1.1 preauth chain,
keys and the signed final SESSION_SETUP response), and smbprotocol's transform-header
tests (all four ciphers).  Cross-checks: impacket's KDF and AES-CMAC, pycryptodome's GCM/CCM.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

import pytest
from Cryptodome.Cipher import AES
from impacket import crypto as impacket_crypto

from protocols.smb import crypto
from protocols.smb.crypto import (
    PREAUTH_ZERO,
    Cipher,
    DecryptError,
    Dialect,
    SigningAlgorithm,
    SmbCryptoError,
    TransformHeader,
    decrypt,
    derive_keys,
    encrypt,
    kdf,
    preauth_hash,
    sign,
    verify,
)

H = bytes.fromhex
impacket_kdf = impacket_crypto.KDF_CounterMode

# -- Microsoft's SMB 3.1.1 walk-through (first channel) ----------------------------------
NEGOTIATE_REQUEST = H(
    "FE534D4240000100000000000000800000000000000000000100000000000000FFFE000000000000"
    "00000000000000000000000000000000000000000000000024000500000000003F000000ECD86F32"
    "6276024F9F7752B89BB33F3A70000000020000000202100200030203110300000100260000000000"
    "010020000100FA49E6578F1F3A9F4CD3E9CC14A67AA884B3D05844E0E5A118225C15887F32FF0000"
    "0200060000000000020002000100"
)
AFTER_NEGOTIATE_REQUEST = H(
    "DD94EFC5321BB618A2E208BA8920D2F422992526947A409B5037DE1E0FE8C7362B8C47122594CDE0"
    "CE26AA9DFC8BCDBDE0621957672623351A7540F1E54A0426"
)
CONNECTION_HASH = H(  # after the NEGOTIATE response
    "324BFA92A4F3A190E466EBEA08D9C110DC88BFED758D9846ECC6F541CC1D02AE3C94A79F36011E99"
    "7E13F841B91B50957AD07B19C8E2539C0B23FDAE09D2C513"
)
SESSION_SETUP_REQUEST_1 = H(
    "FE534D4240000100000000000100800000000000000000000200000000000000FFFE000000000000"
    "00000000000000000000000000000000000000000000000019000001010000000000000058004A00"
    "0000000000000000604806062B0601050502A03E303CA00E300C060A2B06010401823702020AA22A"
    "04284E544C4D5353500001000000978208E200000000000000000000000000000000060380250000"
    "000F"
)
AFTER_SESSION_SETUP_REQUEST_1 = H(
    "AC0B0F2B9986257700365E416D142A6EDC96DF03594A19E52A15F6BD0D041CD5D432F8ED42C55E33"
    "197A50C9EC00F1462B50C592211B1471A04B56088FDFD5F9"
)
FINAL_PREAUTH_HASH = H(
    "0DD13628CC3ED218EF9DF9772D436D0887AB9814BFAE63A80AA845F36909DB7928622DDDAD522D97"
    "51640A459762C5A9D6BB084CBB3CE6BDADEF5D5BCE3C6C01"
)
SESSION_KEY_311 = H("270E1BA896585EEB7AF3472D3B4C75A7")
SIGNED_SESSION_SETUP_RESPONSE = H(  # signed with the 3.1.1 SigningKey, AES-CMAC
    "FE534D4240000100000000000100800009000000000000000300000000000000FFFE000000000000"
    "1900000000100000EBE146DA120BA25FC3376A49DFE31BC10900000048001D00A11B3019A0030A01"
    "00A3120410010000003B453CDC3524164200000000"
)


def test_kdf_agrees_with_impacket() -> None:
    key = os.urandom(16)
    cases = [(b"SMB2AESCMAC\x00", b"SmbSign\x00", 128), (b"SMBC2SCipherKey\x00", PREAUTH_ZERO, 256)]
    for label, context, bits in cases:
        assert kdf(key, label, context, bits) == impacket_kdf(key, label, context, bits)


def test_smb30_keys_match_microsoft_vectors() -> None:
    keys = derive_keys(H("7CD451825D0450D235424E44BA6E78CC"), Dialect.SMB30)
    assert keys.signing == H("0B7E9C5CAC36C0F6EA9AB275298CEDCE")
    assert keys.application == H("BB23A4575AA26C721AF525AF15A87B4F")
    # Microsoft lists the client's view: its EncryptionKey is ServerIn, its DecryptionKey ServerOut.
    assert keys.client_to_server == H("FAD27796665B313EBB578F388632B4F7")
    assert keys.server_to_client == H("B0F0427F7CEB416D1D9DCC0CD4F99447")
    assert derive_keys(H("7CD451825D0450D235424E44BA6E78CC"), Dialect.SMB302) == keys
    second_channel = derive_keys(H("4E01A2B313BCF660CC250BEF021AEDE6"), Dialect.SMB30)
    assert second_channel.signing == H("BA1A17DBBFEC349BCA105563D598952F")


def test_smb311_keys_match_microsoft_vectors() -> None:
    keys = derive_keys(SESSION_KEY_311, Dialect.SMB311, FINAL_PREAUTH_HASH, Cipher.AES_128_GCM)
    assert keys.signing == H("73FE7A9A77BEF0BDE49C650D8CCB5F76")
    assert keys.client_to_server == H("629BCBC54422A0F572B97F45989B6073")
    assert keys.server_to_client == H("E2AF0DCEFAC68DA71A0DFBD0D1350D74")
    assert keys.application == H("6D7AD7954E9EC61E907B4D473DC178FF")
    other_hash = derive_keys(SESSION_KEY_311, Dialect.SMB311, bytes(64), Cipher.AES_128_GCM)
    assert other_hash.signing != keys.signing


def test_smb311_needs_the_preauth_hash() -> None:
    with pytest.raises(SmbCryptoError):
        derive_keys(SESSION_KEY_311, Dialect.SMB311)
    with pytest.raises(SmbCryptoError):
        derive_keys(SESSION_KEY_311, Dialect.SMB311, b"short")


def test_aes256_cipher_keys_come_from_the_full_session_key() -> None:
    full = os.urandom(32)
    keys = derive_keys(full, Dialect.SMB311, FINAL_PREAUTH_HASH, Cipher.AES_256_GCM)
    assert keys.client_to_server == impacket_kdf(full, b"SMBC2SCipherKey\x00", FINAL_PREAUTH_HASH, 256)
    assert keys.server_to_client == impacket_kdf(full, b"SMBS2CCipherKey\x00", FINAL_PREAUTH_HASH, 256)
    assert keys.signing == impacket_kdf(full[:16], b"SMBSigningKey\x00", FINAL_PREAUTH_HASH, 128)
    assert len(keys.signing) == 16 and len(keys.client_to_server or b"") == 32


def test_smb2x_signs_with_the_session_key_and_has_no_cipher_keys() -> None:
    keys = derive_keys(b"k" * 16, Dialect.SMB21)
    assert keys.signing == b"k" * 16 and keys.client_to_server is None and keys.server_to_client is None


def test_preauth_chain_matches_microsoft_vectors() -> None:
    after_request = preauth_hash(PREAUTH_ZERO, NEGOTIATE_REQUEST)
    assert after_request == AFTER_NEGOTIATE_REQUEST
    assert preauth_hash(CONNECTION_HASH, SESSION_SETUP_REQUEST_1) == AFTER_SESSION_SETUP_REQUEST_1
    assert preauth_hash(PREAUTH_ZERO, NEGOTIATE_REQUEST[:-1]) != AFTER_NEGOTIATE_REQUEST


# -- signing ----------------------------------------------------------------------------


def _message(flags: int = 0, command: int = 8, message_id: int = 7, body: bytes = b"x" * 40) -> bytes:
    fields = (b"\xfeSMB", 64, 1, 0, command, 1, flags, 0, message_id, 0, 0, 0x10, bytes(16))
    header = struct.pack("<4sHHIHHIIQIIQ16s", *fields)
    return header + body


def test_cmac_signature_matches_microsoft_vector() -> None:
    key = H("73FE7A9A77BEF0BDE49C650D8CCB5F76")
    assert verify(SIGNED_SESSION_SETUP_RESPONSE, key, SigningAlgorithm.AES_CMAC)
    unsigned = SIGNED_SESSION_SETUP_RESPONSE[:48] + bytes(16) + SIGNED_SESSION_SETUP_RESPONSE[64:]
    assert sign(unsigned, key, SigningAlgorithm.AES_CMAC) == SIGNED_SESSION_SETUP_RESPONSE
    assert not verify(SIGNED_SESSION_SETUP_RESPONSE, bytes(16), SigningAlgorithm.AES_CMAC)


def test_cmac_agrees_with_impacket() -> None:
    key, message = os.urandom(16), _message(body=os.urandom(301))
    signed = sign(message, key, SigningAlgorithm.AES_CMAC)
    zeroed = signed[:48] + bytes(16) + signed[64:]
    assert signed[48:64] == impacket_crypto.AES_CMAC(key, zeroed, len(zeroed))


def test_hmac_sha256_signature_is_truncated_hmac() -> None:
    key, message = os.urandom(16), _message()
    signed = sign(message, key, SigningAlgorithm.HMAC_SHA256)
    assert struct.unpack_from("<I", signed, 16)[0] & crypto.FLAG_SIGNED
    zeroed = signed[:48] + bytes(16) + signed[64:]
    assert signed[48:64] == hmac.new(key, zeroed, hashlib.sha256).digest()[:16]


@pytest.mark.parametrize(
    ("flags", "command", "role_bits"),
    [(0, 8, 0), (crypto.FLAG_SERVER_TO_REDIR, 8, 1), (0, crypto.COMMAND_CANCEL, 2), (1, crypto.COMMAND_CANCEL, 3)],
)
def test_gmac_agrees_with_pycryptodome(flags: int, command: int, role_bits: int) -> None:
    key, message = os.urandom(16), _message(flags=flags, command=command, message_id=0x0102030405060708)
    signed = sign(message, key, SigningAlgorithm.AES_GMAC)
    zeroed = signed[:48] + bytes(16) + signed[64:]
    nonce = struct.pack("<QI", 0x0102030405060708, role_bits)
    gcm = AES.new(key, AES.MODE_GCM, nonce=nonce)
    gcm.update(zeroed)
    assert signed[48:64] == gcm.digest()


def test_gmac_binds_the_role_bit() -> None:
    key = os.urandom(16)
    from_client = sign(_message(), key, SigningAlgorithm.AES_GMAC)
    from_server = sign(_message(flags=crypto.FLAG_SERVER_TO_REDIR), key, SigningAlgorithm.AES_GMAC)
    assert from_client[48:64] != from_server[48:64]


@pytest.mark.parametrize("algorithm", list(SigningAlgorithm))
def test_tampering_and_wrong_key_fail_verify(algorithm: SigningAlgorithm) -> None:
    key = os.urandom(16)
    signed = sign(_message(), key, algorithm)
    assert verify(signed, key, algorithm)
    for bit in (0x10 * 8, 40 * 8 + 3, 50 * 8, (len(signed) - 1) * 8 + 7):  # flags, tree id, signature, body
        tampered = bytearray(signed)
        tampered[bit // 8] ^= 1 << (bit % 8)
        assert not verify(bytes(tampered), key, algorithm)
    assert not verify(signed, os.urandom(16), algorithm)


def test_signing_rejects_garbage() -> None:
    assert not verify(b"\xfeSMB", bytes(16), SigningAlgorithm.AES_CMAC)
    assert not verify(b"\xfdSMB" + bytes(60), bytes(16), SigningAlgorithm.AES_CMAC)
    with pytest.raises(SmbCryptoError):
        sign(_message(), bytes(32), SigningAlgorithm.AES_CMAC)
    with pytest.raises(SmbCryptoError):
        sign(b"short", bytes(16), SigningAlgorithm.HMAC_SHA256)


def test_signing_algorithm_by_dialect() -> None:
    assert crypto.signing_algorithm(Dialect.SMB202) == SigningAlgorithm.HMAC_SHA256
    assert crypto.signing_algorithm(Dialect.SMB30) == SigningAlgorithm.AES_CMAC
    assert crypto.signing_algorithm(Dialect.SMB311) == SigningAlgorithm.AES_CMAC
    assert crypto.signing_algorithm(Dialect.SMB311, SigningAlgorithm.AES_GMAC) == SigningAlgorithm.AES_GMAC
    assert crypto.signing_algorithm(Dialect.SMB302, SigningAlgorithm.AES_GMAC) == SigningAlgorithm.AES_CMAC


# -- encryption -------------------------------------------------------------------------

SMBPROTOCOL_VECTORS = [  # key 0xff.., nonce 0xff.., session id 1, message 01020304 -> (tag, ciphertext)
    (Cipher.AES_128_CCM, H("c8730c9ba7e59f1cfd3751a195f2b3ac"), H("2191e30e")),
    (Cipher.AES_256_CCM, H("3EFB4797518AAB05C548A7FC2074F593"), H("2F5841D7")),
    (Cipher.AES_128_GCM, H("39d83234d753d08ec0fcbe33015f19bd"), H("da265733")),
    (Cipher.AES_256_GCM, H("45E5B723052ECAD01EEFAD6F0487E32D"), H("BC39BD81")),
]


@pytest.mark.parametrize(("cipher", "tag", "ciphertext"), SMBPROTOCOL_VECTORS, ids=lambda v: getattr(v, "name", ""))
def test_encrypt_matches_smbprotocol_vectors(cipher: Cipher, tag: bytes, ciphertext: bytes) -> None:
    key = b"\xff" * (cipher.key_bits // 8)
    nonce = b"\xff" * cipher.nonce_size
    packet = encrypt(b"\x01\x02\x03\x04", key, cipher, session_id=1, nonce=nonce)
    expected_header = b"\xfdSMB" + tag + nonce.ljust(16, b"\x00") + struct.pack("<IHHQ", 4, 0, 1, 1)
    assert packet == expected_header + ciphertext
    assert decrypt(packet, key, cipher) == b"\x01\x02\x03\x04"


@pytest.mark.parametrize("cipher", list(Cipher))
def test_encrypt_agrees_with_pycryptodome(cipher: Cipher) -> None:
    key, message = os.urandom(cipher.key_bits // 8), _message(body=os.urandom(1000))
    packet = encrypt(message, key, cipher, session_id=0x1122334455667788)
    header = TransformHeader.unpack(packet)
    assert header.session_id == 0x1122334455667788 and header.original_message_size == len(message)
    assert header.nonce[cipher.nonce_size :] == bytes(16 - cipher.nonce_size)
    mode = AES.MODE_CCM if cipher.nonce_size == 11 else AES.MODE_GCM
    aes = AES.new(key, mode, nonce=header.nonce[: cipher.nonce_size], mac_len=16)
    aes.update(packet[20:52])
    assert aes.decrypt_and_verify(packet[52:], header.signature) == message


@pytest.mark.parametrize("cipher", list(Cipher))
def test_flipped_bits_and_wrong_key_fail_decrypt(cipher: Cipher) -> None:
    key, message = os.urandom(cipher.key_bits // 8), _message()
    packet = encrypt(message, key, cipher, session_id=5)
    assert decrypt(packet, key, cipher) == message
    for offset in (4, 20, 36, 44, 52, len(packet) - 1):  # tag, nonce, session id, ciphertext
        tampered = bytearray(packet)
        tampered[offset] ^= 0x01
        with pytest.raises(DecryptError):
            decrypt(bytes(tampered), key, cipher)
    with pytest.raises(DecryptError, match="failed authentication"):
        decrypt(packet, os.urandom(len(key)), cipher)


def test_decrypt_rejects_malformed_transform_headers() -> None:
    key = os.urandom(16)
    packet = encrypt(_message(), key, Cipher.AES_128_GCM, session_id=5)
    with pytest.raises(DecryptError, match="OriginalMessageSize"):
        decrypt(packet + b"x", key, Cipher.AES_128_GCM)
    with pytest.raises(SmbCryptoError, match="TRANSFORM_HEADER"):
        decrypt(b"\xfeSMB" + packet[4:], key, Cipher.AES_128_GCM)
    with pytest.raises(SmbCryptoError, match="TRANSFORM_HEADER"):
        decrypt(packet[:30], key, Cipher.AES_128_GCM)
    with pytest.raises(SmbCryptoError, match="16-byte key"):
        decrypt(packet, os.urandom(32), Cipher.AES_128_GCM)
    with pytest.raises(SmbCryptoError, match="nonce"):
        encrypt(_message(), key, Cipher.AES_128_CCM, session_id=5, nonce=bytes(12))


def test_random_nonces_differ() -> None:
    key = os.urandom(16)
    first = encrypt(_message(), key, Cipher.AES_128_CCM, session_id=1)
    second = encrypt(_message(), key, Cipher.AES_128_CCM, session_id=1)
    assert first[20:36] != second[20:36] and first[52:] != second[52:]
