"""smbprotocol (PyPI) against the real server: its high-level ``smbclient`` module (files, directories,
server-side copy, security descriptors, encryption), its low-level Connection/Session/TreeConnect/Open on
every dialect, delete-on-close, share modes (also against a core.fs open) and CHANGE_NOTIFY."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import smbclient  # type: ignore[import-untyped]  # (tests/conftest.py keeps impacket's smbclient.py off sys.path)
import smbclient.shutil  # type: ignore[import-untyped]
from smbprotocol.change_notify import (  # type: ignore[import-untyped]
    CompletionFilter,
    FileAction,
    FileSystemWatcher,
)
from smbprotocol.connection import Connection, Dialects  # type: ignore[import-untyped]
from smbprotocol.exceptions import SMBOSError, SMBResponseException  # type: ignore[import-untyped]
from smbprotocol.file_info import InfoType  # type: ignore[import-untyped]
from smbprotocol.open import (  # type: ignore[import-untyped]
    CreateDisposition,
    CreateOptions,
    DirectoryAccessMask,
    FileAttributes,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    Open,
    ShareAccess,
    SMB2QueryInfoRequest,
    SMB2QueryInfoResponse,
    SMB2SetInfoRequest,
)
from smbprotocol.security_descriptor import (  # type: ignore[import-untyped]
    AccessAllowedAce,
    AccessDeniedAce,
    AclPacket,
    SDControl,
    SIDPacket,
    SMB2CreateSDBuffer,
)
from smbprotocol.session import Session  # type: ignore[import-untyped]
from smbprotocol.tree import TreeConnect  # type: ignore[import-untyped]

from core.fs import READ, WRITE
from core.store import Store
from protocols.smb.status import NtStatus

from .conftest import ALICE_UID, PASSWORDS, ServerFactory
from .serverlog import no_server_errors  # noqa: F401  (autouse: the server logs no unexpected error)

HOST = "127.0.0.1"
OWNER_INFO, GROUP_INFO, DACL_INFO = 0x1, 0x2, 0x4
FULL = 0x001F01FF
READ_CONTROL, WRITE_DAC, DELETE = 0x00020000, 0x00040000, 0x00010000


@dataclass
class Client:
    """smbclient's functions bound to one server port and one private connection cache (one user)."""

    port: int
    cache: dict[str, Any] = field(default_factory=dict)

    def unc(self, path: str = "") -> str:
        return rf"\\{HOST}\data" + (("\\" + path.replace("/", "\\")) if path else "")

    def __call__(self, fn: Callable[..., Any], *paths: str, **kw: Any) -> Any:
        return fn(*[self.unc(p) for p in paths], port=self.port, connection_cache=self.cache, **kw)

    def open(self, path: str, mode: str = "rb", **kw: Any) -> Any:
        return self(smbclient.open_file, path, mode=mode, **kw)

    def close(self) -> None:
        smbclient.reset_connection_cache(fail_on_error=False, connection_cache=self.cache)


@pytest.fixture
def login(smb_server: ServerFactory) -> Iterator[Callable[..., Client]]:
    """``login(user, encrypt=False)``: a registered (signing required) smbclient session on a fresh server."""
    srv = smb_server()
    clients: list[Client] = []

    def make(user: str = "alice", encrypt: bool = False) -> Client:
        c = Client(srv.port)
        smbclient.register_session(HOST, username=user, password=PASSWORDS[user], port=srv.port, encrypt=encrypt,
                                   require_signing=True, connection_cache=c.cache)
        clients.append(c)
        return c
    yield make
    for c in clients:
        c.close()


def status_of(e: BaseException) -> int:
    """The NTSTATUS an smbprotocol error carries."""
    if isinstance(e, SMBOSError):
        return int(e.ntstatus)
    if isinstance(e, SMBResponseException):
        return int(e.status)
    raise AssertionError(f"not an SMB error: {e!r}")


def session(c: Client) -> Any:
    conn = c.cache[f"{HOST}:{c.port}"]
    return next(iter(conn.session_table.values()))


# ----------------------------------------------------------------------------- files

def test_session_is_signed_and_owner_is_the_user(login: Callable[..., Client], smb_store: Store) -> None:
    c = login()
    s = session(c)
    assert s.signing_required and s.connection.dialect == Dialects.SMB_3_1_1
    with c.open("owned.txt", "wb") as f:
        f.write(b"x")
    assert smb_store.fs.resolve("/data/owned.txt").uid == ALICE_UID


def test_open_modes_read_write_seek_tell(login: Callable[..., Client], smb_store: Store) -> None:
    c = login()
    with c.open("a.bin", "wb") as f:
        assert f.write(b"hello world") == 11
        assert f.tell() == 11
    with c.open("a.bin", "ab") as f:
        f.write(b"!!")
    with c.open("a.bin", "rb") as f:
        assert f.read() == b"hello world!!"
        f.seek(6)
        assert f.tell() == 6 and f.read(5) == b"world"
        f.seek(-2, os.SEEK_END)
        assert f.read() == b"!!"
    with c.open("a.bin", "r+b") as f:
        f.seek(0)
        f.write(b"J")
        f.seek(0)
        assert f.read(5) == b"Jello"
    with pytest.raises(OSError) as e:
        c.open("a.bin", "xb")
    assert status_of(e.value) == NtStatus.OBJECT_NAME_COLLISION
    with c.open("new.bin", "xb") as f:
        f.write(b"n")
    with c.open("a.bin", "wb") as f:   # w truncates
        f.write(b"short")
    with c.open("a.bin", "r", encoding="utf-8") as t:
        assert t.read() == "short"
    with pytest.raises(OSError) as e:
        c.open("nosuch.bin", "rb")
    assert status_of(e.value) == NtStatus.OBJECT_NAME_NOT_FOUND
    fs = smb_store.fs
    assert fs.read(fs.resolve("/data/a.bin").ino, 0, 100) == b"short"


def test_large_write_and_read_back(login: Callable[..., Client], smb_store: Store) -> None:
    c = login()
    data = os.urandom(5 * 1024 * 1024 + 7)
    with c.open("big.bin", "wb") as f:
        f.write(data)
    with c.open("big.bin", "rb") as f:
        assert f.read() == data
    a = smb_store.fs.resolve("/data/big.bin")
    assert a.size == len(data) and smb_store.fs.read(a.ino, 0, a.size) == data


def test_truncate_and_stat(login: Callable[..., Client], smb_store: Store) -> None:
    c = login()
    before = time.time()
    with c.open("t.bin", "wb") as f:
        f.write(b"0123456789")
        f.truncate(4)
    st = c(smbclient.stat, "t.bin")
    assert st.st_size == 4
    assert before - 5 < st.st_mtime < time.time() + 5
    assert before - 5 < st.st_ctime < time.time() + 5
    assert st.st_file_attributes in (FileAttributes.FILE_ATTRIBUTE_ARCHIVE, FileAttributes.FILE_ATTRIBUTE_NORMAL)
    c(smbclient.truncate, "t.bin", length=100)
    assert c(smbclient.stat, "t.bin").st_size == 100
    with c.open("t.bin", "rb") as f:
        assert f.read() == b"0123" + bytes(96)
    c(smbclient.mkdir, "d")
    assert c(smbclient.stat, "d").st_file_attributes & FileAttributes.FILE_ATTRIBUTE_DIRECTORY
    assert smb_store.fs.resolve("/data/t.bin").size == 100


def test_rename(login: Callable[..., Client], smb_store: Store) -> None:
    c = login()
    with c.open("one", "wb") as f:
        f.write(b"1")
    c(smbclient.rename, "one", "uno")
    assert c(smbclient.listdir, "") == ["uno"]
    c(smbclient.makedirs, "x/y")
    c(smbclient.rename, "uno", "x/y/moved")
    c(smbclient.rename, "x", "z")
    fs = smb_store.fs
    assert fs.read(fs.resolve("/data/z/y/moved").ino, 0, 10) == b"1"


def test_rename_and_replace_onto_an_existing_file(login: Callable[..., Client]) -> None:
    c = login()
    for name, body in (("one", b"1"), ("two", b"2")):
        with c.open(name, "wb") as f:
            f.write(body)
    with pytest.raises(OSError) as e:
        c(smbclient.rename, "one", "two")
    assert status_of(e.value) == NtStatus.OBJECT_NAME_COLLISION
    c(smbclient.replace, "one", "two")
    assert c(smbclient.listdir, "") == ["two"]
    with c.open("two", "rb") as f:
        assert f.read() == b"1"


def test_scandir_and_dir_entries(login: Callable[..., Client]) -> None:
    c = login()
    c(smbclient.mkdir, "sub")
    with c.open("f.txt", "wb") as f:
        f.write(b"abc")
    entries = {e.name: e for e in c(smbclient.scandir, "")}
    assert set(entries) == {"sub", "f.txt"}
    assert entries["sub"].is_dir() and not entries["sub"].is_file()
    assert entries["f.txt"].is_file() and not entries["f.txt"].is_dir()
    assert smbclient.stat(entries["f.txt"].path, port=c.port, connection_cache=c.cache).st_size == 3
    assert entries["f.txt"].path == c.unc("f.txt")
    assert entries["f.txt"].smb_info.end_of_file == 3
    assert entries["f.txt"].inode() != entries["sub"].inode()


def test_listdir_of_2000_entries(login: Callable[..., Client], smb_store: Store) -> None:
    c = login()
    fs = smb_store.fs
    d = fs.mkdir(fs.resolve("/data").ino, "many", 0o777)
    names = {f"file-{i:05d}.dat" for i in range(2000)}
    for n in names:
        fs.create(d.ino, n, 0o644)
    got = c(smbclient.listdir, "many")
    assert len(got) == 2000 and set(got) == names
    assert sorted(c(smbclient.listdir, "many", search_pattern="file-0199*")) == [f"file-0199{i}.dat" for i in range(10)]


def test_makedirs_remove_rmdir_removedirs(login: Callable[..., Client], smb_store: Store) -> None:
    c = login()
    c(smbclient.makedirs, "a/b/c")
    c(smbclient.makedirs, "a/b/c", exist_ok=True)
    with pytest.raises(OSError) as e:
        c(smbclient.makedirs, "a/b/c")
    assert status_of(e.value) == NtStatus.OBJECT_NAME_COLLISION
    with c.open("a/b/c/f", "wb") as f:
        f.write(b"x")
    with pytest.raises(OSError) as e:
        c(smbclient.rmdir, "a/b/c")
    assert status_of(e.value) == NtStatus.DIRECTORY_NOT_EMPTY
    c(smbclient.remove, "a/b/c/f")
    with pytest.raises(OSError) as e:
        c(smbclient.remove, "a/b/c/f")
    assert status_of(e.value) == NtStatus.OBJECT_NAME_NOT_FOUND
    c(smbclient.removedirs, "a/b/c")
    fs = smb_store.fs
    assert [e.name for e in fs.listdir(fs.resolve("/data").ino)] == []


def test_utime_sets_the_times_core_fs_keeps(login: Callable[..., Client], smb_store: Store) -> None:
    c = login()
    with c.open("u.txt", "wb") as f:
        f.write(b"x")
    c(smbclient.utime, "u.txt", times=(1_000_000_000, 1_200_000_000))
    st = c(smbclient.stat, "u.txt")
    assert (st.st_atime, st.st_mtime) == (1_000_000_000, 1_200_000_000)
    a = smb_store.fs.resolve("/data/u.txt")
    assert (a.atime_ns, a.mtime_ns) == (1_000_000_000 * 10**9, 1_200_000_000 * 10**9)


def test_walk_rmtree_and_path_helpers(login: Callable[..., Client], smb_store: Store) -> None:
    c = login()
    c(smbclient.makedirs, "t/a/b")
    for i in range(5):
        with c.open(f"t/a/f{i}", "wb") as f:
            f.write(b"z" * i)
    walked = sorted((top, sorted(dirs), sorted(files)) for top, dirs, files in c(smbclient.walk, "t"))
    assert walked == [(c.unc("t"), ["a"], []), (c.unc("t/a"), ["b"], [f"f{i}" for i in range(5)]),
                      (c.unc("t/a/b"), [], [])]
    assert c(smbclient.path.isdir, "t/a") and not c(smbclient.path.isdir, "t/a/f1")
    assert c(smbclient.path.isfile, "t/a/f1") and not c(smbclient.path.exists, "nope")
    assert c(smbclient.stat_volume, "").total_size > 0
    c(smbclient.shutil.rmtree, "t")
    assert [e.name for e in smb_store.fs.listdir(smb_store.fs.resolve("/data").ino)] == []


def test_multi_credit_io_in_8_mib_messages(login: Callable[..., Client], smb_store: Store) -> None:
    c = login()
    conn = session(c).connection
    assert conn.max_write_size == conn.max_read_size == 8 * 1024 * 1024
    data = os.urandom(20 * 1024 * 1024 + 3)
    with c.open("huge.bin", "wb", buffering=8 * 1024 * 1024) as f:
        f.write(data)
    with c.open("huge.bin", "rb", buffering=8 * 1024 * 1024) as f:
        assert f.read() == data
    a = smb_store.fs.resolve("/data/huge.bin")
    assert a.size == len(data)


def test_concurrent_clients(login: Callable[..., Client]) -> None:
    clients = [login() for _ in range(4)]
    errors: list[BaseException] = []

    def work(i: int, c: Client) -> None:
        try:
            for j in range(15):
                body = os.urandom(10_000 + j)
                with c.open(f"c{i}-{j}", "wb") as f:
                    f.write(body)
                with c.open(f"c{i}-{j}", "rb") as f:
                    assert f.read() == body
        except BaseException as e:
            errors.append(e)
    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(clients[0](smbclient.listdir, "")) == 60


def test_copyfile_is_server_side(login: Callable[..., Client], smb_store: Store) -> None:
    c = login()
    data = os.urandom(3 * 1024 * 1024 + 5)  # more than one 1 MiB chunk
    with c.open("src.bin", "wb") as f:
        f.write(data)
    c(smbclient.copyfile, "src.bin", "dst.bin")
    fs = smb_store.fs
    a = fs.resolve("/data/dst.bin")
    assert a.size == len(data) and fs.read(a.ino, 0, a.size) == data
    with c.open("dst.bin", "rb") as f:
        assert f.read() == data


def test_encrypted_session(login: Callable[..., Client], smb_store: Store) -> None:
    c = login(encrypt=True)
    assert session(c).encrypt_data
    with c.open("sealed.bin", "wb") as f:
        f.write(b"secret" * 1000)
    with c.open("sealed.bin", "rb") as f:
        assert f.read() == b"secret" * 1000
    assert c(smbclient.listdir, "") == ["sealed.bin"]


# ----------------------------------------------------------------------------- security descriptors

def _info_request(f: Any, info_type: int, additional: int) -> SMB2QueryInfoRequest:
    req = SMB2QueryInfoRequest()
    req["info_type"] = info_type
    req["output_buffer_length"] = 4096
    req["additional_information"] = additional
    req["file_id"] = f.fd.file_id
    return req


def _send(f: Any, req: Any) -> Any:
    tree = f.fd.tree_connect
    return f.fd.connection.receive(f.fd.connection.send(req, sid=tree.session.session_id,
                                                        tid=tree.tree_connect_id))


def get_sd(f: Any) -> SMB2CreateSDBuffer:
    resp = SMB2QueryInfoResponse()
    resp.unpack(_send(f, _info_request(f, InfoType.SMB2_0_INFO_SECURITY,
                                       OWNER_INFO | GROUP_INFO | DACL_INFO))["data"].get_value())
    sd = SMB2CreateSDBuffer()
    sd.unpack(resp["buffer"].get_value())
    return sd


def set_dacl(f: Any, aces: list[Any]) -> None:
    acl = AclPacket()
    acl["aces"] = aces
    sd = SMB2CreateSDBuffer()
    sd["control"].set_flag(SDControl.SELF_RELATIVE)
    sd.set_dacl(acl)
    req = SMB2SetInfoRequest()
    req["info_type"] = InfoType.SMB2_0_INFO_SECURITY
    req["additional_information"] = DACL_INFO
    req["file_id"] = f.fd.file_id
    req["buffer"] = sd
    _send(f, req)


def _ace(cls: Any, sid: str, mask: int) -> Any:
    ace = cls()
    ace["mask"] = mask
    s = SIDPacket()
    s.from_string(sid)
    ace["sid"] = s
    return ace


def test_security_descriptor_get_and_set(login: Callable[..., Client], smb_store: Store) -> None:
    alice = login()
    with alice.open("sd.txt", "wb") as f:
        f.write(b"private")
    with alice.open("sd.txt", "rb", buffering=0, desired_access=READ_CONTROL | WRITE_DAC) as f:
        sd = get_sd(f)
        assert str(sd.get_owner()) == smb_store.identity.sid_of_user("alice")
        assert sd["control"].has_flag(SDControl.DACL_PRESENT) and sd.get_dacl()["aces"].get_value()
        bob_sid = smb_store.identity.sid_of_user("bob")
        set_dacl(f, [_ace(AccessDeniedAce, bob_sid, FULL), _ace(AccessAllowedAce, "S-1-1-0", FULL)])
        dacl = get_sd(f).get_dacl()["aces"].get_value()
        assert [(str(a["sid"]), a["ace_type"].get_value()) for a in dacl][:1] == [(bob_sid, 1)]
    bob = login("bob")
    with pytest.raises(OSError) as e:
        bob.open("sd.txt", "rb")
    assert status_of(e.value) == NtStatus.ACCESS_DENIED
    with alice.open("sd.txt", "rb") as f:      # Everyone is still allowed
        assert f.read() == b"private"


def test_security_descriptor_needs_read_control(login: Callable[..., Client]) -> None:
    c = login()
    with c.open("nc.txt", "wb") as f:
        f.write(b"x")
    with (c.open("nc.txt", "rb", buffering=0, desired_access=FilePipePrinterAccessMask.FILE_READ_DATA) as f,
          pytest.raises(SMBResponseException) as e):
        get_sd(f)
    assert status_of(e.value) == NtStatus.ACCESS_DENIED


# ----------------------------------------------------------------------------- low level: dialects

def _low_level(port: int, dialect: int, user: str = "alice") -> tuple[Connection, Session, TreeConnect]:
    conn = Connection(uuid.uuid4(), HOST, port, require_signing=True)
    conn.connect(dialect)
    s = Session(conn, user, PASSWORDS[user], require_encryption=False)
    s.connect()
    tree = TreeConnect(s, rf"\\{HOST}\data")
    tree.connect()
    return conn, s, tree


def _create(tree: TreeConnect, name: str, *, share: int = 0x7, disposition: int = CreateDisposition.FILE_OVERWRITE_IF,
            access: int = FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
            options: int = CreateOptions.FILE_NON_DIRECTORY_FILE) -> Open:
    o = Open(tree, name)
    o.create(ImpersonationLevel.Impersonation, access, FileAttributes.FILE_ATTRIBUTE_NORMAL, share, disposition,
             options)
    return o


DIALECTS = [Dialects.SMB_2_0_2, Dialects.SMB_2_1_0, Dialects.SMB_3_0_0, Dialects.SMB_3_0_2, Dialects.SMB_3_1_1]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: f"{d:#x}")
def test_every_dialect_signed_round_trip(smb_server: ServerFactory, smb_store: Store, dialect: int) -> None:
    srv = smb_server()
    conn, s, tree = _low_level(srv.port, dialect)
    try:
        assert conn.dialect == dialect and s.signing_required
        o = _create(tree, f"d{dialect:x}.bin")
        data = os.urandom(60_000)   # 2.0.2 reads and writes at most 64 KiB
        assert o.write(data, 0) == len(data)
        assert o.read(0, len(data)) == data
        o.close()
        a = smb_store.fs.resolve(f"/data/d{dialect:x}.bin")
        assert a.size == len(data) and a.uid == ALICE_UID
    finally:
        conn.disconnect()


def test_delete_on_close_and_delete_pending(smb_server: ServerFactory, smb_store: Store) -> None:
    srv = smb_server()
    conn, _, tree = _low_level(srv.port, Dialects.SMB_3_1_1)
    fs = smb_store.fs
    try:
        doc = _create(tree, "doomed.txt", access=FilePipePrinterAccessMask.GENERIC_WRITE | DELETE,
                      options=CreateOptions.FILE_NON_DIRECTORY_FILE | CreateOptions.FILE_DELETE_ON_CLOSE)
        doc.write(b"bye", 0)
        other = _create(tree, "doomed.txt", disposition=CreateDisposition.FILE_OPEN,
                        access=FilePipePrinterAccessMask.GENERIC_READ)
        doc.close()                     # the last close is still to come: delete pending
        assert fs.read(fs.resolve("/data/doomed.txt").ino, 0, 10) == b"bye"
        with pytest.raises(SMBResponseException) as e:
            _create(tree, "doomed.txt", disposition=CreateDisposition.FILE_OPEN,
                    access=FilePipePrinterAccessMask.GENERIC_READ)
        assert status_of(e.value) == NtStatus.DELETE_PENDING
        other.close()
        assert [x.name for x in fs.listdir(fs.resolve("/data").ino)] == []
        alone = _create(tree, "alone.txt", access=FilePipePrinterAccessMask.GENERIC_WRITE | DELETE,
                        options=CreateOptions.FILE_NON_DIRECTORY_FILE | CreateOptions.FILE_DELETE_ON_CLOSE)
        assert [x.name for x in fs.listdir(fs.resolve("/data").ino)] == ["alone.txt"]
        alone.close()
        assert [x.name for x in fs.listdir(fs.resolve("/data").ino)] == []
    finally:
        conn.disconnect()


def test_delete_on_close_needs_delete_access(smb_server: ServerFactory) -> None:
    srv = smb_server()
    conn, _, tree = _low_level(srv.port, Dialects.SMB_3_1_1)
    try:
        with pytest.raises(SMBResponseException) as e:
            _create(tree, "nodelete.txt", access=FilePipePrinterAccessMask.GENERIC_WRITE,
                    options=CreateOptions.FILE_NON_DIRECTORY_FILE | CreateOptions.FILE_DELETE_ON_CLOSE)
        assert status_of(e.value) == NtStatus.ACCESS_DENIED
    finally:
        conn.disconnect()


# ----------------------------------------------------------------------------- share modes

def test_exclusive_open_is_a_sharing_violation(login: Callable[..., Client]) -> None:
    c = login()
    with c.open("lock.txt", "wb") as f:
        f.write(b"x")
    first = c.open("lock.txt", "rb", share_access="")
    try:
        with pytest.raises(OSError) as e:
            c.open("lock.txt", "rb", share_access="rwd")
        assert status_of(e.value) == NtStatus.SHARING_VIOLATION
    finally:
        first.close()
    with c.open("lock.txt", "rb", share_access="rwd") as f:   # released on close
        assert f.read() == b"x"
    shared = c.open("lock.txt", "rb", share_access="r")
    try:
        with c.open("lock.txt", "rb", share_access="r") as f:  # readers that share reading coexist
            assert f.read() == b"x"
        with pytest.raises(OSError) as e:
            c.open("lock.txt", "ab", share_access="rw")        # a writer the first open does not share
        assert status_of(e.value) == NtStatus.SHARING_VIOLATION
    finally:
        shared.close()


def test_sharing_violation_against_a_core_fs_open(login: Callable[..., Client], smb_store: Store) -> None:
    c = login()
    fs = smb_store.fs
    a = fs.write_file(fs.resolve("/data").ino, "nfs.txt", b"from nfs")
    share_id = fs.open_share(a.ino, "nfs:test-owner", READ | WRITE, 0)   # another protocol, no sharing
    try:
        with pytest.raises(OSError) as e:
            c.open("nfs.txt", "rb", share_access="rwd")
        assert status_of(e.value) == NtStatus.SHARING_VIOLATION
    finally:
        fs.close_share(share_id)
    with c.open("nfs.txt", "rb", share_access="rwd") as f:
        assert f.read() == b"from nfs"


# ----------------------------------------------------------------------------- change notify

def test_change_notify_sees_a_core_fs_create(smb_server: ServerFactory, smb_store: Store) -> None:
    srv = smb_server()
    conn, _, tree = _low_level(srv.port, Dialects.SMB_3_1_1)
    try:
        d = Open(tree, "")
        d.create(ImpersonationLevel.Impersonation, DirectoryAccessMask.FILE_LIST_DIRECTORY,
                 FileAttributes.FILE_ATTRIBUTE_DIRECTORY, ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE
                 | ShareAccess.FILE_SHARE_DELETE, CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE)
        w = FileSystemWatcher(d)
        w.start(CompletionFilter.FILE_NOTIFY_CHANGE_FILE_NAME)
        time.sleep(0.3)
        assert not w.response_event.is_set()    # nothing yet: still pending
        fs = smb_store.fs
        threading.Timer(0.2, lambda: fs.write_file(fs.resolve("/data").ino, "seen.txt", b"hi")).start()
        assert w.response_event.wait(15)
        actions = [(a["action"].get_value(), a["file_name"].get_value()) for a in w.result]
        assert (FileAction.FILE_ACTION_ADDED, "seen.txt") in actions
        d.close()
    finally:
        conn.disconnect()
