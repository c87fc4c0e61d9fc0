"""impacket's SMB client (``impacket.smbconnection.SMBConnection``) against the real server, on each dialect
it speaks: login, share listing, directory listing, put/get, mkdir/rmdir, delete, rename; a failed login
gets nothing on its connection."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from impacket import smb3structs  # type: ignore[import-untyped]
from impacket.nt_errors import (  # type: ignore[import-untyped]
    STATUS_ACCESS_DENIED,
    STATUS_BAD_NETWORK_NAME,
    STATUS_LOGON_FAILURE,
    STATUS_OBJECT_NAME_COLLISION,
    STATUS_OBJECT_NAME_NOT_FOUND,
    STATUS_USER_SESSION_DELETED,
)
from impacket.smbconnection import SessionError, SMBConnection  # type: ignore[import-untyped]

from core.store import Store
from protocols.smb.shares import Share

from .conftest import ALICE_UID, PASSWORDS, ServerFactory
from .serverlog import no_server_errors  # noqa: F401  (autouse: the server logs no unexpected error)

HOST = "127.0.0.1"
DIALECTS = {
    "2.0.2": smb3structs.SMB2_DIALECT_002,
    "2.1": smb3structs.SMB2_DIALECT_21,
    "3.0": smb3structs.SMB2_DIALECT_30,
    "3.1.1": smb3structs.SMB2_DIALECT_311,
    "smb1-negotiate": None,        # impacket's default: an SMB1 NEGOTIATE offering SMB 2.???, then SMB2
}


Connect = Callable[..., Any]


@pytest.fixture
def connect(smb_server: ServerFactory) -> Iterator[Connect]:
    """``connect(dialect=None, shares=None)``: a new impacket connection (not logged in) to a server
    started on first use."""
    made: list[Any] = []
    servers: dict[str, Any] = {}

    def make(dialect: int | None = None, shares: list[Share] | None = None) -> Any:
        if "srv" not in servers:
            servers["srv"] = smb_server(shares) if shares is not None else smb_server()
        c = SMBConnection(HOST, HOST, sess_port=servers["srv"].port, preferredDialect=dialect, timeout=30)
        made.append(c)
        return c
    yield make
    for c in made:
        try:
            c.close()
        except Exception:
            pass


def error_code(e: SessionError) -> int:
    return int(e.getErrorCode())


def get(c: Any, share: str, path: str) -> bytes:
    out = io.BytesIO()
    c.getFile(share, path, out.write)
    return out.getvalue()


@pytest.mark.parametrize("dialect", list(DIALECTS.values()), ids=list(DIALECTS))
def test_files_and_directories(connect: Connect, smb_store: Store, dialect: int | None) -> None:
    c = connect(dialect)
    c.login("alice", PASSWORDS["alice"])
    assert not c.isGuestSession()
    assert c.isSigningRequired()
    if dialect is not None:
        assert c.getDialect() == dialect
    data = os.urandom(300_000 if dialect == smb3structs.SMB2_DIALECT_002 else 1_500_000)
    c.createDirectory("data", "dir1")
    c.createDirectory("data", "dir1\\sub")
    c.putFile("data", "dir1\\up.bin", io.BytesIO(data).read)
    assert get(c, "data", "dir1\\up.bin") == data
    listing = {f.get_longname(): f for f in c.listPath("data", "dir1\\*")}
    assert set(listing) == {".", "..", "up.bin", "sub"}
    assert listing["up.bin"].get_filesize() == len(data) and not listing["up.bin"].is_directory()
    assert listing["sub"].is_directory()
    fs = smb_store.fs
    a = fs.resolve("/data/dir1/up.bin")
    assert a.uid == ALICE_UID and fs.read(a.ino, 0, a.size) == data

    c.rename("data", "dir1\\up.bin", "dir1\\sub\\moved.bin")
    assert [f.get_longname() for f in c.listPath("data", "dir1\\sub\\*") if f.get_longname() not in (".", "..")] \
        == ["moved.bin"]
    with pytest.raises(SessionError) as e:
        c.deleteDirectory("data", "dir1\\sub")        # not empty
    assert error_code(e.value) != 0
    c.deleteFile("data", "dir1\\sub\\moved.bin")
    with pytest.raises(SessionError) as e:
        c.deleteFile("data", "dir1\\sub\\moved.bin")
    assert error_code(e.value) == STATUS_OBJECT_NAME_NOT_FOUND
    with pytest.raises(SessionError) as e:
        c.createDirectory("data", "dir1")
    assert error_code(e.value) == STATUS_OBJECT_NAME_COLLISION
    c.deleteDirectory("data", "dir1\\sub")
    c.deleteDirectory("data", "dir1")
    assert [e.name for e in fs.listdir(fs.resolve("/data").ino)] == []
    c.logoff()


def test_list_shares(connect: Connect) -> None:
    c = connect(None, [Share("data", "/data", comment="studio"), Share("hidden", "/data", browseable=False)])
    c.login("alice", PASSWORDS["alice"])
    shares = {s["shi1_netname"][:-1]: s["shi1_remark"][:-1] for s in c.listShares()}
    assert shares.get("data") == "studio"
    assert "IPC$" in shares and "hidden" not in shares
    assert c.connectTree("hidden")     # not listed, still reachable by name
    with pytest.raises(SessionError) as e:
        c.connectTree("nosuch")
    assert error_code(e.value) == STATUS_BAD_NETWORK_NAME


def test_read_only_share(connect: Connect, smb_store: Store) -> None:
    fs = smb_store.fs
    fs.write_file(fs.resolve("/data").ino, "r.txt", b"read me")
    c = connect(None, [Share("ro", "/data", read_only=True)])
    c.login("bob", PASSWORDS["bob"])
    assert get(c, "ro", "r.txt") == b"read me"
    with pytest.raises(SessionError) as e:
        c.putFile("ro", "new.txt", io.BytesIO(b"x").read)
    assert error_code(e.value) == STATUS_ACCESS_DENIED
    with pytest.raises(SessionError) as e:
        c.deleteFile("ro", "r.txt")
    assert error_code(e.value) == STATUS_ACCESS_DENIED
    assert fs.read(fs.resolve("/data/r.txt").ino, 0, 100) == b"read me"


@pytest.mark.parametrize("dialect", [smb3structs.SMB2_DIALECT_21, smb3structs.SMB2_DIALECT_311], ids=["2.1", "3.1.1"])
def test_wrong_password_gets_nothing(connect: Connect, smb_store: Store, dialect: int) -> None:
    fs = smb_store.fs
    fs.write_file(fs.resolve("/data").ino, "secret.txt", b"s3cret")
    bad = connect(dialect)
    smb = bad.getSMBServer()
    seen: list[int] = []
    recv = smb.recvSMB

    def spy(packet_id: Any = None) -> Any:     # note the SessionId the server handed out mid-setup
        p = recv(packet_id)
        seen.append(p["SessionID"])
        return p
    smb.recvSMB = spy
    with pytest.raises(SessionError) as e:
        bad.login("alice", "wrong")
    assert error_code(e.value) == STATUS_LOGON_FAILURE
    assert any(seen)
    # impacket forgets the session after the failure; name it again as a client that ignores the failure would
    smb._Session["SessionID"] = max(seen)
    calls: list[Callable[[], Any]] = [
        lambda: bad.connectTree("data"),
        lambda: bad.listPath("data", "*"),
        lambda: bad.getFile("data", "secret.txt", io.BytesIO().write),
        lambda: bad.putFile("data", "planted.txt", io.BytesIO(b"x").read),
        lambda: bad.createDirectory("data", "planted"),
        lambda: bad.listShares(),
    ]
    for call in calls:
        with pytest.raises(SessionError) as e:
            call()
        assert error_code(e.value) in (STATUS_USER_SESSION_DELETED, STATUS_ACCESS_DENIED)
    assert [e.name for e in fs.listdir(fs.resolve("/data").ino)] == ["secret.txt"]
    good = connect(dialect)           # a new connection with the right password works
    good.login("alice", PASSWORDS["alice"])
    assert get(good, "data", "secret.txt") == b"s3cret"


def test_unknown_user_is_logon_failure(connect: Connect) -> None:
    c = connect(smb3structs.SMB2_DIALECT_311)
    with pytest.raises(SessionError) as e:
        c.login("mallory", "x")
    assert error_code(e.value) == STATUS_LOGON_FAILURE
    with pytest.raises(SessionError) as e:
        connect(smb3structs.SMB2_DIALECT_311).login("", "")       # anonymous: refused by default
    assert error_code(e.value) in (STATUS_LOGON_FAILURE, STATUS_ACCESS_DENIED)
