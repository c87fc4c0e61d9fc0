"""Debian's ``smbclient`` against the real server: SMB 2.1 and 3.1.1, signing required, encryption,
share listing through srvsvc, and what core.fs sees afterwards (owner, bytes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.store import Store
from protocols.smb.shares import Share

from .conftest import ALICE_UID, ServerFactory, smbclient

PROTOCOLS = ["SMB2_10", "SMB3_11"]


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    p = tmp_path / "up.bin"
    p.write_bytes(os.urandom(3 * 1024 * 1024 + 123))
    return p


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("encrypt", [False, True], ids=["signed", "sealed"])
def test_put_get_list_rename_delete(smb_server: ServerFactory, smb_store: Store, payload: Path, tmp_path: Path,
                                    proto: str, encrypt: bool) -> None:
    if encrypt and proto == "SMB2_10":
        pytest.skip("SMB 2.1 has no encryption")
    srv = smb_server()
    down = tmp_path / "down.bin"
    opts = ["-m", proto, "--client-protection=encrypt" if encrypt else "--client-protection=sign"]
    r = smbclient(srv.port, "data", f"put {payload} up.bin; mkdir d1; put {payload} d1\\x.bin; ls; "
                  f"get up.bin {down}; rename up.bin up2.bin; ls d1\\*", options=opts)
    assert r.rc == 0, r.err + r.out
    assert down.read_bytes() == payload.read_bytes()
    assert "up.bin" in r.out and "x.bin" in r.out
    fs = smb_store.fs
    a = fs.resolve("/data/up2.bin")
    assert a.uid == ALICE_UID and a.size == payload.stat().st_size
    assert fs.read(a.ino, 0, a.size) == payload.read_bytes()
    r = smbclient(srv.port, "data", "del up2.bin; deltree d1; ls", options=opts)
    assert r.rc == 0, r.err + r.out
    assert [e.name for e in fs.listdir(fs.resolve("/data").ino)] == []


def test_wrong_password_is_logon_failure(smb_server: ServerFactory) -> None:
    srv = smb_server()
    r = smbclient(srv.port, "data", "ls", password="wrong")
    assert r.rc != 0
    assert "NT_STATUS_LOGON_FAILURE" in r.out + r.err


def test_unknown_user_and_guest_refused(smb_server: ServerFactory) -> None:
    srv = smb_server()
    r = smbclient(srv.port, "data", "ls", user="mallory", password="x")
    assert "NT_STATUS_LOGON_FAILURE" in r.out + r.err
    r = smbclient(srv.port, "data", "ls", options=["-N", "-U", "%"])
    assert r.rc != 0


def test_share_list_through_srvsvc(smb_server: ServerFactory) -> None:
    srv = smb_server([Share("data", "/data", comment="studio"), Share("hidden", "/data", browseable=False),
                      Share("bobs", "/data", users=("bob",))])
    r = smbclient(srv.port, "", "", options=["-L", "//127.0.0.1"])
    assert r.rc == 0, r.err + r.out
    assert "data" in r.out and "studio" in r.out and "IPC$" in r.out
    assert "hidden" not in r.out and "bobs" not in r.out


def test_share_acl_and_read_only(smb_server: ServerFactory, payload: Path) -> None:
    srv = smb_server([Share("bobs", "/data", users=("bob",)), Share("ro", "/data", read_only=True)])
    r = smbclient(srv.port, "bobs", "ls")
    assert "NT_STATUS_ACCESS_DENIED" in r.out + r.err
    r = smbclient(srv.port, "ro", f"put {payload} x.bin")
    assert "NT_STATUS_ACCESS_DENIED" in r.out + r.err
    r = smbclient(srv.port, "nosuch", "ls")
    assert "NT_STATUS_BAD_NETWORK_NAME" in r.out + r.err


def test_encrypted_share_refuses_plain_sessions(smb_server: ServerFactory, smb_store: Store) -> None:
    srv = smb_server([Share("sec", "/data", encrypt=True)])
    smb_store.fs.write_file(smb_store.fs.resolve("/data").ino, "f.txt", b"secret")
    r = smbclient(srv.port, "sec", "ls", options=["-m", "SMB2_10"])
    assert r.rc != 0 and "f.txt" not in r.out
    r = smbclient(srv.port, "sec", "ls", options=["-m", "SMB3_11"])
    assert r.rc == 0 and "f.txt" in r.out, r.err + r.out


def test_case_insensitive_share(smb_server: ServerFactory, smb_store: Store, tmp_path: Path) -> None:
    srv = smb_server()
    fs = smb_store.fs
    fs.write_file(fs.resolve("/data").ino, "ReadMe.TXT", b"hello")
    out = tmp_path / "o"
    r = smbclient(srv.port, "data", f"get readme.txt {out}")
    assert r.rc == 0, r.err + r.out
    assert out.read_bytes() == b"hello"


def test_escapes_refused(smb_server: ServerFactory, smb_store: Store, tmp_path: Path) -> None:
    fs = smb_store.fs
    fs.write_file(fs.root, "outside.txt", b"top secret")
    fs.symlink(fs.resolve("/data").ino, "link", "../outside.txt")
    srv = smb_server()
    out = tmp_path / "o"
    for name in ("..\\outside.txt", "link"):
        r = smbclient(srv.port, "data", f"get {name} {out}")
        assert r.rc != 0 or not out.exists(), name
        assert not out.exists() or out.read_bytes() != b"top secret"


@pytest.mark.parametrize("cipher", ["AES-128-CCM", "AES-128-GCM", "AES-256-CCM", "AES-256-GCM"])
@pytest.mark.parametrize("signing", ["AES-128-GMAC", "AES-128-CMAC", "HMAC-SHA256"])
def test_every_cipher_and_signing_algorithm(smb_server: ServerFactory, smb_store: Store, cipher: str,
                                            signing: str) -> None:
    """The client offers exactly one cipher and one signing algorithm: the server must take them."""
    srv = smb_server()
    fs = smb_store.fs
    fs.write_file(fs.resolve("/data").ino, "seen.txt", b"x")
    r = smbclient(srv.port, "data", "ls", options=[
        "-m", "SMB3_11", "--client-protection=encrypt", f"--option=client smb3 encryption algorithms={cipher}",
        f"--option=client smb3 signing algorithms={signing}"])
    assert r.rc == 0 and "seen.txt" in r.out, r.err + r.out
