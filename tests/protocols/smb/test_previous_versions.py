"""Previous Versions over SMB (protocols/smb/snapshots.py): core.fs's kept versions as @GMT snapshots.

Real clients: Debian's ``smbclient`` (``allinfo`` lists snapshots through FSCTL_SRV_ENUMERATE_SNAPSHOTS;
``get @GMT-...\\file`` and ``cd @GMT-...`` read an old version; it sends the token as a TWrp context) and
smbprotocol's low-level Open (the raw FSCTL, the TWrp create context, an @GMT path).
"""

from __future__ import annotations

import datetime
import re
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from smbprotocol.create_contexts import (  # type: ignore[import-untyped]
    CreateContextName,
    SMB2CreateContextRequest,
    SMB2CreateTimewarpToken,
)
from smbprotocol.exceptions import SMBResponseException  # type: ignore[import-untyped]
from smbprotocol.ioctl import (  # type: ignore[import-untyped]
    CtlCode,
    IOCTLFlags,
    SMB2IOCTLRequest,
    SMB2IOCTLResponse,
    SMB2SrvSnapshotArray,
)
from smbprotocol.open import (  # type: ignore[import-untyped]
    CreateDisposition,
    CreateOptions,
    FileAttributes,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    Open,
)
from smbprotocol.tree import TreeConnect  # type: ignore[import-untyped]

from core.errors import NotFound
from core.fs import FileSystem
from core.store import Store
from protocols.smb import snapshots as S
from protocols.smb.status import NtStatus

from .conftest import ServerFactory, smb_tree, smbclient
from .serverlog import no_server_errors  # noqa: F401  (autouse: the server logs no unexpected error)

HOST = "127.0.0.1"
BODIES = [b"first draft\n", b"second draft, longer\n", b"final\n"]
GENERIC_READ, GENERIC_WRITE = FilePipePrinterAccessMask.GENERIC_READ, FilePipePrinterAccessMask.GENERIC_WRITE


@pytest.fixture
def versioned(smb_store: Store) -> FileSystem:
    fs = smb_store.fs
    fs.set_tree_policy(fs.resolve("/data").ino, versioning="enabled")
    return fs


def write_versions(fs: FileSystem, name: str = "report.txt", bodies: list[bytes] = BODIES) -> None:
    data = fs.resolve("/data").ino
    for b in bodies:
        fs.write_file(data, name, b)


def old_bytes(fs: FileSystem, path: str) -> dict[str, bytes]:
    """token -> the bytes of the version it names."""
    reader = fs.reading_versions()
    return {S.token(s.at_ns): reader.read(s.version.ino, 0, 1 << 20) for s in S.file_snapshots(fs, path)}


# -- tokens -------------------------------------------------------------------------------------------------
def test_tokens_are_unique_and_name_their_version(versioned: FileSystem) -> None:
    fs = versioned
    write_versions(fs, bodies=[b"a", b"bb", b"ccc", b"dddd"])  # all replaced within a second or two
    snaps = S.file_snapshots(fs, "/data/report.txt")
    assert len(snaps) == 3 and len({s.at_ns for s in snaps}) == 3
    assert [s.at_ns for s in snaps] == sorted((s.at_ns for s in snaps), reverse=True)
    for s in snaps:
        assert s.at_ns <= s.version.replaced_ns and s.at_ns % S.SECOND == 0
        assert S.parse_token(S.token(s.at_ns)) == s.at_ns
        assert S.resolve(fs, "/data/report.txt", s.at_ns, None) == s.version
    olds = [b"ccc", b"bb", b"a"]
    assert old_bytes(fs, "/data/report.txt") == {S.token(s.at_ns): b for s, b in zip(snaps, olds, strict=True)}
    live = fs.resolve("/data/report.txt")
    assert S.resolve(fs, "/data/report.txt", snaps[0].at_ns + 10 * S.SECOND, live) == live  # after every change
    with pytest.raises(NotFound):
        S.resolve(fs, "/data/report.txt", 10 * S.SECOND, None)  # 1970: nothing was there


def test_split_token_and_array_encoding() -> None:
    assert S.split_token("@GMT-2026.11.27-10.00.00\\dir\\f.txt") == ("dir\\f.txt", S.parse_token(
        "@GMT-2026.11.27-10.00.00"))
    assert S.split_token("dir\\@GMT-2026.11.27-10.00.00\\f.txt")[0] == "dir\\f.txt"
    assert S.split_token("@GMT-2026.11.27-10.00.0\\f")[1] is None  # not a whole token
    assert S.from_filetime(S.to_filetime(1_795_773_600_500_000_000)) == 1_795_773_600 * S.SECOND
    out = S.encode_snapshot_array([], 1024)
    assert struct.unpack("<III", out[:12]) == (0, 0, 2) and len(out) == 16  # Samba's client wants 16 bytes
    two = ["@GMT-2026.11.27-10.00.01", "@GMT-2026.11.27-10.00.00"]
    out = S.encode_snapshot_array(two, 1024)
    assert struct.unpack("<III", out[:12]) == (2, 2, 102) and len(out) == 12 + 102
    assert out[12:].decode("utf-16-le").split("\0")[:2] == two
    assert struct.unpack("<III", S.encode_snapshot_array(two, 100)[:12]) == (2, 0, 102)


# -- smbclient ----------------------------------------------------------------------------------------------
@pytest.mark.timeout(180)
def test_smbclient_allinfo_lists_versions_and_get_reads_them(smb_server: ServerFactory, versioned: FileSystem,
                                                             tmp_path: Path) -> None:
    fs = versioned
    srv = smb_server()
    for i, body in enumerate(BODIES):  # three saves over SMB (OVERWRITE_IF: the truncate keeps a version)
        (tmp_path / f"in{i}").write_bytes(body)
        r = smbclient(srv.port, "data", f"put {tmp_path / f'in{i}'} report.txt")
        assert r.rc == 0, r.out + r.err
    want = old_bytes(fs, "/data/report.txt")
    assert sorted(want.values()) == sorted(BODIES[:2])
    r = smbclient(srv.port, "data", "allinfo report.txt")
    assert r.rc == 0, r.out + r.err
    listed = re.findall(r"^(@GMT-[\d.-]+)\n(?:.*\n)*?size: (\d+)$", r.out, re.M)
    assert [t for t, _ in listed] == list(want), r.out
    assert [int(n) for _, n in listed] == [len(want[t]) for t, _ in listed]
    for tok, body in want.items():
        out = tmp_path / f"out{tok}"
        r = smbclient(srv.port, "data", f"get {tok}\\report.txt {out}")
        assert r.rc == 0, r.out + r.err
        assert out.read_bytes() == body
    tok = next(iter(want))
    out = tmp_path / "via-cd"
    r = smbclient(srv.port, "data", f"cd {tok}; get report.txt {out}; put {tmp_path / 'in0'} report.txt")
    assert out.read_bytes() == want[tok]
    assert "NT_STATUS_MEDIA_WRITE_PROTECTED" in r.out + r.err
    r = smbclient(srv.port, "data", f"del {tok}\\report.txt")
    assert "NT_STATUS_MEDIA_WRITE_PROTECTED" in r.out + r.err
    assert fs.read(fs.resolve("/data/report.txt").ino, 0, 100) == BODIES[-1]
    assert len(S.file_snapshots(fs, "/data/report.txt")) == 2


@pytest.mark.timeout(120)
def test_smbclient_reads_a_deleted_file_from_its_snapshot(smb_server: ServerFactory, smb_store: Store,
                                                          tmp_path: Path) -> None:
    fs = smb_store.fs  # versioning off: the store's trash keeps the deleted file for a day
    write_versions(fs, "gone.txt", [b"deleted by mistake\n"])
    srv = smb_server()
    r = smbclient(srv.port, "data", "del gone.txt; allinfo \\")
    assert r.rc == 0, r.out + r.err
    [tok] = re.findall(r"^@GMT-[\d.-]+$", r.out, re.M)  # the share root lists the trash entry's snapshot
    out = tmp_path / "back"
    r = smbclient(srv.port, "data", f"get {tok}\\gone.txt {out}")
    assert r.rc == 0, r.out + r.err
    assert out.read_bytes() == b"deleted by mistake\n"


@pytest.mark.timeout(120)
def test_smbclient_lists_a_directory_as_it_was(smb_server: ServerFactory, versioned: FileSystem,
                                               tmp_path: Path) -> None:
    fs = versioned
    data = fs.resolve("/data").ino
    fs.mkdir(data, "sub")
    fs.write_file(data, "doc.txt", b"old doc\n")
    fs.write_file(data, "gone.txt", b"deleted since\n")
    time.sleep(1.1)  # tokens are whole seconds: what follows happens after them
    fs.write_file(data, "doc.txt", b"the new document, longer\n")
    fs.unlink(data, "gone.txt")
    time.sleep(1.1)
    fs.write_file(data, "new.txt", b"made later\n")
    [snap] = S.file_snapshots(fs, "/data/doc.txt")
    tok = S.token(snap.at_ns)
    srv = smb_server()
    r = smbclient(srv.port, "data", f"ls {tok}\\*")
    assert r.rc == 0, r.out + r.err
    listed = {m[0]: int(m[1]) for m in re.findall(r"^  (\S+)\s+[A-Z]*\s+(\d+)  ", r.out, re.M)}
    assert listed == {".": 0, "..": 0, "sub": 0, "doc.txt": 8, "gone.txt": 14}, r.out
    r = smbclient(srv.port, "data", "ls")
    now = {m[0]: int(m[1]) for m in re.findall(r"^  (\S+)\s+[A-Z]*\s+(\d+)  ", r.out, re.M)}
    assert now == {".": 0, "..": 0, "sub": 0, "doc.txt": 25, "new.txt": 11}, r.out
    out = tmp_path / "gone"
    r = smbclient(srv.port, "data", f"cd {tok}; get gone.txt {out}")
    assert r.rc == 0, r.out + r.err
    assert out.read_bytes() == b"deleted since\n"


# -- smbprotocol: the raw FSCTL and the TWrp create context -------------------------------------------------
@pytest.fixture
def tree(smb_server: ServerFactory) -> Iterator[TreeConnect]:
    with smb_tree(smb_server().port, "alice") as t:
        yield t


def open_(tree: TreeConnect, name: str, *, access: int = GENERIC_READ, at: str | None = None,
          disposition: int = CreateDisposition.FILE_OPEN, directory: bool = False) -> Open:
    o = Open(tree, name)
    ctxs = None
    if at is not None:
        tw = SMB2CreateTimewarpToken()
        tw["timestamp"] = datetime.datetime.fromtimestamp(S.parse_token(at) // S.SECOND,  # type: ignore[operator]
                                                          tz=datetime.UTC)
        c = SMB2CreateContextRequest()
        c["buffer_name"] = CreateContextName.SMB2_CREATE_TIMEWARP_TOKEN
        c["buffer_data"] = tw
        ctxs = [c]
    opts = CreateOptions.FILE_DIRECTORY_FILE if directory else CreateOptions.FILE_NON_DIRECTORY_FILE
    o.create(ImpersonationLevel.Impersonation, access, FileAttributes.FILE_ATTRIBUTE_NORMAL, 7, disposition, opts,
             create_contexts=ctxs)
    return o


def enumerate_snapshots(tree: TreeConnect, o: Open, max_out: int) -> tuple[int, int, list[str]]:
    req = SMB2IOCTLRequest()
    req["ctl_code"] = CtlCode.FSCTL_SRV_ENUMERATE_SNAPSHOTS
    req["file_id"] = o.file_id
    req["max_output_response"] = max_out
    req["flags"] = IOCTLFlags.SMB2_0_IOCTL_IS_FSCTL
    conn = tree.session.connection
    resp = SMB2IOCTLResponse()
    resp.unpack(conn.receive(conn.send(req, tree.session.session_id, tree.tree_connect_id))["data"].get_value())
    arr = SMB2SrvSnapshotArray()
    arr.unpack(resp["buffer"].get_value())
    names = arr["snapshots"].get_value().decode("utf-16-le").split("\0")
    return arr["number_of_snapshots"].get_value(), arr["number_of_snapshots_returned"].get_value(), \
        [n for n in names if n]


def test_fsctl_and_timewarp_open_read_only(tree: TreeConnect, versioned: FileSystem) -> None:
    fs = versioned
    write_versions(fs)
    want = old_bytes(fs, "/data/report.txt")
    live = open_(tree, "report.txt")
    assert enumerate_snapshots(tree, live, 16)[:2] == (2, 0)  # the client's first probe: counts only
    n, returned, tokens = enumerate_snapshots(tree, live, 65536)
    assert (n, returned, tokens) == (2, 2, list(want))
    root = open_(tree, "", directory=True)
    assert enumerate_snapshots(tree, root, 65536)[2] == list(want)  # a directory: the versions below it
    root.close()
    live.close()
    for tok, body in want.items():
        o = open_(tree, "report.txt", at=tok)  # the TWrp create context
        assert o.end_of_file == len(body)
        assert o.read(0, 1000) == body
        with pytest.raises(SMBResponseException) as e:
            o.write(b"overwrite the past", 0)
        assert e.value.status == NtStatus.ACCESS_DENIED
        o.close()
        via_path = open_(tree, f"{tok}\\report.txt")  # the token as a path component
        assert via_path.read(0, 1000) == body
        via_path.close()
    tok = next(iter(want))
    for kw in ({"access": GENERIC_READ | GENERIC_WRITE}, {"disposition": CreateDisposition.FILE_OVERWRITE_IF}):
        with pytest.raises(SMBResponseException) as e:
            open_(tree, "report.txt", at=tok, **kw)  # type: ignore[arg-type]
        assert e.value.status == NtStatus.MEDIA_WRITE_PROTECTED
    with pytest.raises(SMBResponseException) as e:
        open_(tree, "report.txt", at="@GMT-2001.01.01-00.00.00")  # before the file existed
    assert e.value.status == NtStatus.OBJECT_NAME_NOT_FOUND
    assert fs.read(fs.resolve("/data/report.txt").ino, 0, 100) == BODIES[-1]
