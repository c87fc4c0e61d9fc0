"""SET_INFO decoders: buffers built by impacket and smbprotocol as clients send them, and fuzzing."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from impacket import smb3structs as s3
from smbprotocol import file_info as fi

from protocols.smb.fileinfo import FileAttribute, FileInfoClass, InfoError, filetime
from protocols.smb.setinfo import (
    DISPOSITION_DELETE,
    DISPOSITION_ON_CLOSE,
    DISPOSITION_POSIX_SEMANTICS,
    Allocation,
    BasicInfo,
    Disposition,
    EndOfFile,
    Position,
    RenameInfo,
    decode_set_info,
)
from protocols.smb.status import NtStatus

T0 = 1_700_000_000_000_000_000
FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _status(cls: int, buf: bytes) -> NtStatus:
    with pytest.raises(InfoError) as e:
        decode_set_info(cls, buf)
    return e.value.status


def _basic(c: int, a: int, w: int, ch: int, attrs: int) -> bytes:
    s = s3.FILE_BASIC_INFORMATION()
    s["CreationTime"], s["LastAccessTime"], s["LastWriteTime"], s["ChangeTime"] = c, a, w, ch
    s["FileAttributes"] = attrs
    return s.getData()


def test_basic_times_and_attributes() -> None:
    info = decode_set_info(FileInfoClass.BASIC, _basic(filetime(T0), 0, -1, -2, FileAttribute.HIDDEN))
    assert info == BasicInfo(T0, None, None, None, int(FileAttribute.HIDDEN),
                             frozen=frozenset({"written"}), resumed=frozenset({"changed"}))
    assert decode_set_info(FileInfoClass.BASIC, _basic(0, 0, 0, 0, 0)) == BasicInfo(None, None, None, None, None)
    # unsettable bits (SPARSE, REPARSE_POINT) are ignored, DIRECTORY is kept for the server to judge
    info = decode_set_info(FileInfoClass.BASIC, _basic(0, 0, 0, 0, 0x610))
    assert isinstance(info, BasicInfo) and info.attributes == FileAttribute.DIRECTORY
    assert _status(FileInfoClass.BASIC, _basic(-3, 0, 0, 0, 0)) == NtStatus.INVALID_PARAMETER
    assert _status(FileInfoClass.BASIC, _basic(0, 0, 0, 0, 0)[:39]) == NtStatus.INFO_LENGTH_MISMATCH


def test_sizes_and_position() -> None:
    eof = fi.FileEndOfFileInformation()
    eof["end_of_file"] = 123456
    assert decode_set_info(FileInfoClass.END_OF_FILE, eof.pack()) == EndOfFile(123456)
    assert decode_set_info(FileInfoClass.ALLOCATION, struct.pack("<q", 8192)) == Allocation(8192)
    assert decode_set_info(FileInfoClass.POSITION, struct.pack("<q", 7)) == Position(7)
    for cls in (FileInfoClass.END_OF_FILE, FileInfoClass.ALLOCATION, FileInfoClass.POSITION):
        assert _status(cls, struct.pack("<q", -1)) == NtStatus.INVALID_PARAMETER
        assert _status(cls, b"\0" * 7) == NtStatus.INFO_LENGTH_MISMATCH


def test_disposition() -> None:
    d = fi.FileDispositionInformation()
    d["delete_pending"] = True
    info = decode_set_info(FileInfoClass.DISPOSITION, d.pack())
    assert info == Disposition(DISPOSITION_DELETE) and isinstance(info, Disposition) and info.delete
    off = decode_set_info(FileInfoClass.DISPOSITION, b"\0")
    assert isinstance(off, Disposition) and not off.delete
    assert decode_set_info(FileInfoClass.DISPOSITION, b"\x07") == Disposition(DISPOSITION_DELETE)
    assert _status(FileInfoClass.DISPOSITION, b"") == NtStatus.INFO_LENGTH_MISMATCH
    ex = struct.pack("<I", DISPOSITION_DELETE | DISPOSITION_POSIX_SEMANTICS | DISPOSITION_ON_CLOSE)
    assert decode_set_info(FileInfoClass.DISPOSITION_EX, ex) == Disposition(0xB)
    assert _status(FileInfoClass.DISPOSITION_EX, struct.pack("<I", 0x20)) == NtStatus.INVALID_PARAMETER
    assert _status(FileInfoClass.DISPOSITION_EX, b"\1\0\0") == NtStatus.INFO_LENGTH_MISMATCH


def test_rename_from_impacket_and_smbprotocol() -> None:
    r = s3.FILE_RENAME_INFORMATION_TYPE_2()
    r["ReplaceIfExists"] = 1
    r["FileName"] = "dir\\n\u00e9w.txt".encode("utf-16-le")
    r["FileNameLength"] = len(r["FileName"])
    assert decode_set_info(FileInfoClass.RENAME, r.getData()) == RenameInfo("dir\\n\u00e9w.txt", True)
    p = fi.FileRenameInformation()
    p["file_name"] = "x\U0001f600"
    assert decode_set_info(FileInfoClass.RENAME, p.pack()) == RenameInfo("x\U0001f600", False)
    link = fi.FileLinkInformation()
    link["replace_if_exists"] = True
    link["file_name"] = "hard"
    assert decode_set_info(FileInfoClass.LINK, link.pack()) == RenameInfo("hard", True, link=True)


def _rename(name: bytes, *, root: int = 0, length: int | None = None) -> bytes:
    n = len(name) if length is None else length
    return b"\0" * 8 + struct.pack("<QI", root, n) + name


def test_rename_bad_input() -> None:
    ok = "a".encode("utf-16-le")
    assert decode_set_info(FileInfoClass.RENAME, _rename(ok)) == RenameInfo("a", False)
    assert decode_set_info(FileInfoClass.RENAME, _rename(ok) + b"pad") == RenameInfo("a", False)
    assert _status(FileInfoClass.RENAME, _rename(ok, root=5)) == NtStatus.INVALID_PARAMETER
    assert _status(FileInfoClass.RENAME, _rename(ok, length=4)) == NtStatus.INVALID_PARAMETER  # past the buffer
    assert _status(FileInfoClass.RENAME, _rename(b"a\0b", length=3)) == NtStatus.INVALID_PARAMETER  # odd
    assert _status(FileInfoClass.RENAME, _rename(b"")) == NtStatus.INVALID_PARAMETER  # empty
    assert _status(FileInfoClass.RENAME, _rename(b"\x00\xd8")) == NtStatus.OBJECT_NAME_INVALID  # lone surrogate
    assert _status(FileInfoClass.RENAME, _rename(ok)[:19]) == NtStatus.INFO_LENGTH_MISMATCH


def test_unknown_class() -> None:
    for cls in (0, FileInfoClass.FULL_EA, FileInfoClass.ALL, 255):
        assert _status(cls, b"\0" * 64) == NtStatus.INVALID_INFO_CLASS


@FUZZ
@given(st.sampled_from([*FileInfoClass, 0, 99]), st.binary(max_size=80))
def test_only_info_error_escapes(cls: int, buf: bytes) -> None:
    try:
        out = decode_set_info(cls, buf)
    except InfoError as e:
        assert isinstance(e.status, NtStatus)
    else:
        assert isinstance(out, BasicInfo | EndOfFile | Allocation | Disposition | RenameInfo | Position)


@FUZZ
@given(st.text(min_size=1, max_size=100), st.booleans(), st.binary(max_size=8))
def test_rename_round_trip(name: str, replace: bool, tail: bytes) -> None:
    raw = name.encode("utf-16-le", "surrogatepass")
    buf = bytes([replace]) + b"\0" * 7 + struct.pack("<QI", 0, len(raw)) + raw + tail
    try:
        out = decode_set_info(FileInfoClass.RENAME, buf)
    except InfoError as e:
        assert e.status == NtStatus.OBJECT_NAME_INVALID
        with pytest.raises(UnicodeEncodeError):
            name.encode("utf-16-le")
    else:
        assert out == RenameInfo(name, replace)


_TIME = st.one_of(st.sampled_from([0, -1, -2]), st.integers(1, 2**63 - 1))


@FUZZ
@given(st.tuples(_TIME, _TIME, _TIME, _TIME), st.integers(0, 2**32 - 1))
def test_basic_round_trip(times: tuple[int, int, int, int], attrs: int) -> None:
    info = decode_set_info(FileInfoClass.BASIC, _basic(*times, attrs))
    assert isinstance(info, BasicInfo)
    got = (info.created_ns, info.accessed_ns, info.written_ns, info.changed_ns)
    for name, t, ns in zip(("created", "accessed", "written", "changed"), times, got, strict=True):
        assert (name in info.frozen) == (t == -1) and (name in info.resumed) == (t == -2)
        assert ns == (None if t <= 0 else (t - 116_444_736_000_000_000) * 100)
    assert info.attributes == (None if attrs == 0 else attrs & 0x31B7)
