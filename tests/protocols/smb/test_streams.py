"""Alternate data streams through smbprotocol: kept as xattrs (Samba's streams_xattr naming),
listed in FileStreamInformation, read back, deleted, refused on the share root and past 64 KiB."""

from __future__ import annotations

import pytest
import smbclient
from smbprotocol.exceptions import SMBOSError

from core.store import Store

from .conftest import PASSWORDS, ServerFactory


def test_streams_round_trip(smb_server: ServerFactory, smb_store: Store) -> None:
    srv = smb_server()
    smbclient.register_session("127.0.0.1", username="alice", password=PASSWORDS["alice"], port=srv.port)
    base = r"\\127.0.0.1\data\doc.txt"
    with smbclient.open_file(base, mode="w", port=srv.port) as f:
        f.write("main data")
    with smbclient.open_file(base + ":Zone.Identifier", mode="w", port=srv.port) as f:
        f.write("[ZoneTransfer]\nZoneId=3\n")
    with smbclient.open_file(base + ":Zone.Identifier", mode="r", port=srv.port) as f:
        assert f.read() == "[ZoneTransfer]\nZoneId=3\n"
    with smbclient.open_file(base, mode="r", port=srv.port) as f:
        assert f.read() == "main data"
    listed = {s.name: s.size for s in smbclient.liststreams(base, port=srv.port)}
    assert listed == {"::$DATA": len("main data"), ":Zone.Identifier:$DATA": len("[ZoneTransfer]\nZoneId=3\n")}
    infos = smbclient.stat(base, port=srv.port)
    assert infos.st_size == len("main data")
    fs = smb_store.fs
    ino = fs.resolve("/data/doc.txt").ino
    assert fs.getxattr(ino, "user.DosStream.Zone.Identifier:$DATA") == b"[ZoneTransfer]\nZoneId=3\n"
    smbclient.remove(base + ":Zone.Identifier", port=srv.port)
    assert "user.DosStream.Zone.Identifier:$DATA" not in fs.listxattr(ino)
    with pytest.raises(SMBOSError):
        smbclient.open_file(base + ":nosuch", mode="r", port=srv.port).close()
    with pytest.raises(SMBOSError):
        smbclient.open_file(r"\\127.0.0.1\data\:root", mode="w", port=srv.port).close()
    with pytest.raises(SMBOSError), smbclient.open_file(base + ":big", mode="wb", port=srv.port) as f:
        f.write(b"x" * (65 * 1024))


def test_eas_are_user_xattrs(smb_server: ServerFactory, smb_store: Store) -> None:
    """smbprotocol's setxattr/getxattr/listxattr (FileFullEaInformation) against core.fs's user.* xattrs."""
    srv = smb_server()
    smbclient.register_session("127.0.0.1", username="alice", password=PASSWORDS["alice"], port=srv.port)
    path = r"\\127.0.0.1\data\ea.txt"
    with smbclient.open_file(path, mode="w", port=srv.port) as f:
        f.write("x")
    with pytest.raises(SMBOSError):
        smbclient.getxattr(path, b"COLOR", port=srv.port)  # NO_EAS_ON_FILE
    smbclient.setxattr(path, b"COLOR", b"blue", port=srv.port)
    fs = smb_store.fs
    ino = fs.resolve("/data/ea.txt").ino
    assert fs.getxattr(ino, "user.COLOR") == b"blue"
    fs.setxattr(ino, "user.FROMNFS", b"1")
    assert sorted(smbclient.listxattr(path, port=srv.port)) == [b"COLOR", b"FROMNFS"]
    assert smbclient.getxattr(path, b"FROMNFS", port=srv.port) == b"1"
    smbclient.removexattr(path, b"COLOR", port=srv.port)
    assert "user.COLOR" not in fs.listxattr(ino)
