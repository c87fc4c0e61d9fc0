"""The trash, versions and retention through SMB: deletes (delete-on-close, FileDispositionInformation),
rename over an existing file (ReplaceIfExists), overwrite and supersede create dispositions keep what
they replace through core.fs; retention and legal hold refuse deletion with CANNOT_DELETE and
overwrites with ACCESS_DENIED.  Clients: Debian's ``smbclient`` and smbprotocol."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import smbclient as spc  # type: ignore[import-untyped]  # smbprotocol's high-level client
from smbprotocol.exceptions import SMBOSError, SMBResponseException  # type: ignore[import-untyped]
from smbprotocol.file_info import InfoType  # type: ignore[import-untyped]
from smbprotocol.open import (  # type: ignore[import-untyped]
    CreateDisposition,
    CreateOptions,
    FileAttributes,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    Open,
    SMB2SetInfoRequest,
)
from smbprotocol.structure import IntField  # type: ignore[import-untyped]
from smbprotocol.tree import TreeConnect  # type: ignore[import-untyped]

from core.fs import FileSystem
from core.store import Store
from protocols.smb.status import NtStatus

from .conftest import PASSWORDS, ServerFactory, smb_tree, smbclient
from .serverlog import no_server_errors  # noqa: F401  (autouse: the server logs no unexpected error)

HOST = "127.0.0.1"
DAY = 86400 * 1_000_000_000
DELETE = 0x00010000
GENERIC_READ, GENERIC_WRITE = FilePipePrinterAccessMask.GENERIC_READ, FilePipePrinterAccessMask.GENERIC_WRITE


@pytest.fixture
def tree(smb_server: ServerFactory) -> Iterator[TreeConnect]:
    with smb_tree(smb_server().port, "bob") as t:
        yield t


def create(tree: TreeConnect, name: str, *, access: int = GENERIC_READ | GENERIC_WRITE,
           disposition: int = CreateDisposition.FILE_OPEN, options: int = 0) -> Open:
    o = Open(tree, name)
    o.create(ImpersonationLevel.Impersonation, access, FileAttributes.FILE_ATTRIBUTE_NORMAL, 7, disposition,
             CreateOptions.FILE_NON_DIRECTORY_FILE | options)
    return o


def status(fn: object, *args: object, **kw: object) -> int:
    """The NTSTATUS ``fn`` fails with (0 when it succeeds)."""
    try:
        fn(*args, **kw)  # type: ignore[operator]
    except SMBResponseException as e:
        return int(e.status)
    except SMBOSError as e:
        return int(e.ntstatus)
    return 0


def set_disposition_ex(tree: TreeConnect, o: Open, flags: int) -> None:
    """SET_INFO FileDispositionInformationEx (class 64): DELETE 0x1, POSIX_SEMANTICS 0x2, IGNORE_READONLY 0x10."""
    req = SMB2SetInfoRequest()
    cls = IntField(size=1)  # smbprotocol's FileInformationClass enum has no 64
    cls.structure, cls.name = req, "file_info_class"
    req.fields["file_info_class"] = cls
    req["info_type"] = InfoType.SMB2_0_INFO_FILE
    req["file_info_class"] = 64
    req["file_id"] = o.file_id
    req["buffer"] = struct.pack("<I", flags)
    conn = tree.session.connection
    conn.receive(conn.send(req, sid=tree.session.session_id, tid=tree.tree_connect_id))


def put(fs: FileSystem, name: str, data: bytes) -> int:
    """A file of bob's (smbprotocol's remove sets its attributes before the disposition: the owner may)."""
    ino = fs.write_file(fs.resolve("/data").ino, name, data).ino
    fs.setattr(ino, uid=1001, gid=1001)
    return ino


def content(fs: FileSystem, name: str) -> bytes:
    return fs.read(fs.resolve(f"/data/{name}").ino, 0, 1 << 20)


# -- deletes go to the trash --------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_smbclient_delete_goes_to_the_trash(smb_server: ServerFactory, smb_store: Store, tmp_path: Path) -> None:
    fs = smb_store.fs
    put(fs, "notes.txt", b"meeting notes\n")
    srv = smb_server()
    r = smbclient(srv.port, "data", "del notes.txt", user="bob")
    assert r.rc == 0, r.out + r.err
    [entry] = fs.trash("/data")
    assert (entry.path, entry.reason, entry.by_name, entry.by_uid, entry.size) == \
        ("/data/notes.txt", "delete", "bob", 1001, 14)
    assert entry.expires_ns is not None and entry.expires_ns - entry.replaced_ns == DAY
    fs.trash_restore("/data/notes.txt")
    out = tmp_path / "back"
    r = smbclient(srv.port, "data", f"get notes.txt {out}")
    assert r.rc == 0, r.out + r.err
    assert out.read_bytes() == b"meeting notes\n"


def test_disposition_rename_over_and_supersede_keep_what_they_replace(tree: TreeConnect, smb_store: Store) -> None:
    fs = smb_store.fs
    fs.set_tree_policy(fs.resolve("/data").ino, versioning="enabled")
    put(fs, "a.txt", b"a, to be deleted")
    put(fs, "b.txt", b"b, to be replaced by a rename")
    put(fs, "c.txt", b"c, to be superseded")
    put(fs, "src.txt", b"renamed over b")
    o = create(tree, "a.txt", access=DELETE | GENERIC_READ)
    o.close()
    spc_cache: dict[str, object] = {}
    port = tree.session.connection.port
    spc.register_session(HOST, username="bob", password=PASSWORDS["bob"], port=port, connection_cache=spc_cache)
    try:
        spc.remove(rf"\\{HOST}\data\a.txt", port=port, connection_cache=spc_cache)  # FileDispositionInformation
        spc.replace(rf"\\{HOST}\data\src.txt", rf"\\{HOST}\data\b.txt", port=port, connection_cache=spc_cache)
    finally:
        spc.reset_connection_cache(fail_on_error=False, connection_cache=spc_cache)
    s = create(tree, "c.txt", disposition=CreateDisposition.FILE_SUPERSEDE)
    s.write(b"new c", 0)
    s.close()
    reader = fs.reading_versions()
    kept = {v.path: v for v in fs.list_versions("/data/", kinds=("version", "trash")) if v.ino}
    assert {p: (v.reason, v.by_name) for p, v in kept.items()} == {
        "/data/a.txt": ("delete", "bob"), "/data/b.txt": ("rename", "bob"), "/data/c.txt": ("truncate", "bob")}
    assert reader.read(kept["/data/a.txt"].ino, 0, 100) == b"a, to be deleted"
    assert reader.read(kept["/data/b.txt"].ino, 0, 100) == b"b, to be replaced by a rename"
    assert reader.read(kept["/data/c.txt"].ino, 0, 100) == b"c, to be superseded"
    assert (content(fs, "b.txt"), content(fs, "c.txt")) == (b"renamed over b", b"new c")
    assert [v.path for v in fs.trash("/data")] == ["/data/a.txt"]


# -- retention and legal hold -------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["compliance", "hold"])
def test_retention_refuses_delete_and_overwrite(tree: TreeConnect, smb_store: Store, how: str) -> None:
    fs = smb_store.fs
    put(fs, "ledger.txt", b"locked ledger")
    put(fs, "other.txt", b"another file")
    if how == "compliance":
        fs.set_retention("/data/ledger.txt", None, "COMPLIANCE", time.time_ns() + DAY)
    else:
        fs.set_legal_hold("/data/ledger.txt", None, True)
    # delete-on-close at CREATE and FileDispositionInformation: CANNOT_DELETE, as for a read-only file
    assert status(create, tree, "ledger.txt", access=DELETE | GENERIC_READ,
                  options=CreateOptions.FILE_DELETE_ON_CLOSE) == NtStatus.CANNOT_DELETE
    o = create(tree, "ledger.txt", access=DELETE | GENERIC_READ)  # FileDispositionInformationEx, even with
    assert status(set_disposition_ex, tree, o, 0x13) == NtStatus.CANNOT_DELETE  # IGNORE_READONLY_ATTRIBUTE
    o.close()
    port = tree.session.connection.port
    cache: dict[str, object] = {}
    spc.register_session(HOST, username="bob", password=PASSWORDS["bob"], port=port, connection_cache=cache)
    try:
        unc = rf"\\{HOST}\data"
        assert status(spc.remove, rf"{unc}\ledger.txt", port=port, connection_cache=cache) == NtStatus.CANNOT_DELETE
        assert status(spc.replace, rf"{unc}\other.txt", rf"{unc}\ledger.txt", port=port,
                      connection_cache=cache) == NtStatus.ACCESS_DENIED
        assert status(spc.rename, rf"{unc}\ledger.txt", rf"{unc}\moved.txt", port=port,
                      connection_cache=cache) == 0  # a rename keeps the content: allowed
        assert status(spc.rename, rf"{unc}\moved.txt", rf"{unc}\ledger.txt", port=port, connection_cache=cache) == 0
    finally:
        spc.reset_connection_cache(fail_on_error=False, connection_cache=cache)
    # overwriting it: an OVERWRITE/SUPERSEDE disposition, an open for writing
    for disp in (CreateDisposition.FILE_OVERWRITE, CreateDisposition.FILE_OVERWRITE_IF,
                 CreateDisposition.FILE_SUPERSEDE):
        assert status(create, tree, "ledger.txt", disposition=disp) == NtStatus.ACCESS_DENIED
    assert status(create, tree, "ledger.txt", access=GENERIC_WRITE) == NtStatus.ACCESS_DENIED
    o = create(tree, "ledger.txt", access=GENERIC_READ)
    assert o.read(0, 100) == b"locked ledger"
    o.close()
    assert content(fs, "ledger.txt") == b"locked ledger" and content(fs, "other.txt") == b"another file"
    assert fs.trash("/data") == []


@pytest.mark.timeout(120)
def test_smbclient_sees_cannot_delete_and_access_denied(smb_server: ServerFactory, smb_store: Store,
                                                        tmp_path: Path) -> None:
    fs = smb_store.fs
    put(fs, "ledger.txt", b"locked ledger")
    fs.set_retention("/data/ledger.txt", None, "COMPLIANCE", time.time_ns() + DAY)
    srv = smb_server()
    r = smbclient(srv.port, "data", "del ledger.txt")
    assert "NT_STATUS_CANNOT_DELETE" in r.out + r.err, r
    src = tmp_path / "new"
    src.write_bytes(b"overwrite")
    r = smbclient(srv.port, "data", f"put {src} ledger.txt")
    assert "NT_STATUS_ACCESS_DENIED" in r.out + r.err, r
    assert content(fs, "ledger.txt") == b"locked ledger"
