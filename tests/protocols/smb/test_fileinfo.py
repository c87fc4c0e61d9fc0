"""QUERY_INFO file and FS classes: layouts checked against impacket's and smbprotocol's structures."""

from __future__ import annotations

import dataclasses
import datetime
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from impacket import smb as s1
from impacket import smb3structs as s3
from smbprotocol import file_info as fi

from core.fs import Attr, FileType, StatFs
from protocols.smb.fileinfo import (
    EPOCH_DELTA,
    FileAttribute,
    FileFacts,
    FileInfoClass,
    FsAttribute,
    FsInfoClass,
    InfoError,
    VolumeFacts,
    dos_attributes,
    filetime,
    fit,
    from_filetime,
    query_file,
    query_file_info,
    query_fs,
    query_fs_info,
)
from protocols.smb.status import NtStatus

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
FILE = Attr(ino=0x1234_5678_9ABC, gen=1, type=FileType.REG, mode=0o100644, nlink=2, uid=1000, gid=1000,
            size=5000, rdev=0, atime_ns=T0 + 100, mtime_ns=T0 + 200, ctime_ns=T0 + 300, btime_ns=T0)
DIR = dataclasses.replace(FILE, type=FileType.DIR, mode=0o040555, size=4096, ino=7)
VOL = VolumeFacts(StatFs(total_bytes=10 << 30, free_bytes=3 << 30, total_files=1000, free_files=900,
                         block_size=4096), label="data", serial=0xCAFEBABE, created_ns=T0)


def test_filetime_known_values() -> None:
    assert filetime(0) == EPOCH_DELTA
    # 2023-11-14T22:13:20Z as Windows would store it
    expected = int((datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.UTC)
                    - datetime.datetime(1601, 1, 1, tzinfo=datetime.UTC)).total_seconds()) * 10_000_000
    assert filetime(T0) == expected
    assert filetime(T0 + 99) == expected  # truncates below 100 ns


@given(st.integers(-(10**19), 10**20))
def test_filetime_round_trip(ns: int) -> None:
    ft = filetime(ns)
    assert ft >= 0
    if ft > 0:
        assert from_filetime(ft) == ns - ns % 100


def test_dos_attributes_mapping() -> None:
    assert dos_attributes(FILE) == FileAttribute.NORMAL
    assert dos_attributes(DIR) == FileAttribute.DIRECTORY  # no READONLY on dirs even without write bits
    ro = dataclasses.replace(FILE, mode=0o100444)
    assert dos_attributes(ro) == FileAttribute.READONLY
    assert dos_attributes(dataclasses.replace(FILE, mode=0o100422)) == FileAttribute.READONLY  # owner bit decides
    assert dos_attributes(FILE, ".bashrc") == FileAttribute.NORMAL
    assert dos_attributes(FILE, ".bashrc", hide_dot_files=True) == FileAttribute.HIDDEN
    assert dos_attributes(ro, ".x", hide_dot_files=True) == FileAttribute.HIDDEN | FileAttribute.READONLY
    assert dos_attributes(DIR, "..", hide_dot_files=True) == FileAttribute.DIRECTORY
    assert dos_attributes(DIR, stored=FileAttribute.ARCHIVE) == FileAttribute.ARCHIVE | FileAttribute.DIRECTORY
    assert dos_attributes(FILE, stored=FileAttribute.DIRECTORY) == FileAttribute.NORMAL  # never lie about type


def test_basic_information_with_impacket() -> None:
    data = query_file_info(FileInfoClass.BASIC, FileFacts(FILE))
    assert len(data) == 40
    s = s3.FILE_BASIC_INFORMATION(data)
    assert s["CreationTime"] == filetime(T0)
    assert s["LastAccessTime"] == filetime(T0 + 100)
    assert s["LastWriteTime"] == filetime(T0 + 200)
    assert s["ChangeTime"] == filetime(T0 + 300)
    assert s["FileAttributes"] == FileAttribute.NORMAL


def test_standard_information() -> None:
    s = s3.FILE_STANDARD_INFORMATION(query_file_info(FileInfoClass.STANDARD, FileFacts(FILE, delete_pending=True)))
    assert (s["AllocationSize"], s["EndOfFile"], s["NumberOfLinks"], s["DeletePending"], s["Directory"]) == \
        (8192, 5000, 2, 1, 0)
    d = s3.FILE_STANDARD_INFORMATION(query_file_info(FileInfoClass.STANDARD, FileFacts(DIR)))
    assert (d["AllocationSize"], d["EndOfFile"], d["Directory"]) == (0, 0, 1)


def test_all_information_with_both_libraries() -> None:
    facts = FileFacts(FILE, name="dir\\f\u00e9.txt", access=0x0012019F, position=77, mode=0x2)
    data = query_file_info(FileInfoClass.ALL, facts)
    assert len(data) == 100 + len("dir\\f\u00e9.txt") * 2
    s = s3.FILE_ALL_INFORMATION(data)
    assert s["InternalInformation"]["IndexNumber"] == FILE.ino
    p = fi.FileAllInformation()
    p.unpack(data)
    assert p["access_information"].get_value()["access_flags"].get_value() == 0x0012019F
    assert p["position_information"].get_value()["current_byte_offset"].get_value() == 77
    assert p["mode_information"].get_value()["mode"].get_value() == 2
    assert p["name_information"].get_value()["file_name"].get_value() == "dir\\f\u00e9.txt"
    assert p["standard_information"].get_value()["end_of_file"].get_value() == 5000


def test_small_fixed_classes() -> None:
    f = FileFacts(FILE, access=0x1F01FF, position=9, mode=0x20)
    assert query_file_info(FileInfoClass.INTERNAL, f) == struct.pack("<Q", FILE.ino)
    assert query_file_info(FileInfoClass.EA, f) == b"\0" * 4
    assert query_file_info(FileInfoClass.ACCESS, f) == struct.pack("<I", 0x1F01FF)
    assert query_file_info(FileInfoClass.POSITION, f) == struct.pack("<q", 9)
    assert query_file_info(FileInfoClass.MODE, f) == struct.pack("<I", 0x20)
    assert query_file_info(FileInfoClass.ALIGNMENT, f) == b"\0" * 4
    tag = s3.FILE_ATTRIBUTE_TAG_INFORMATION(query_file_info(FileInfoClass.ATTRIBUTE_TAG, FileFacts(DIR)))
    assert (tag["FileAttributes"], tag["ReparseTag"]) == (FileAttribute.DIRECTORY, 0)


def test_network_open_information() -> None:
    data = query_file_info(FileInfoClass.NETWORK_OPEN, FileFacts(FILE, dos_attributes=int(FileAttribute.ARCHIVE)))
    assert len(data) == 56
    s = s1.SMBFileNetworkOpenInfo(data)
    assert (s["CreationTime"], s["LastWriteTime"]) == (filetime(T0), filetime(T0 + 200))
    assert (s["AllocationSize"], s["EndOfFile"], s["FileAttributes"]) == (8192, 5000, FileAttribute.ARCHIVE)


def test_stream_information() -> None:
    p = fi.FileStreamInformation()
    p.unpack(query_file_info(FileInfoClass.STREAM, FileFacts(FILE)))
    assert p["stream_name"].get_value() == "::$DATA"
    assert (p["next_entry_offset"].get_value(), p["stream_size"].get_value()) == (0, 5000)
    assert query_file_info(FileInfoClass.STREAM, FileFacts(DIR)) == b""
    assert query_file(FileInfoClass.STREAM, FileFacts(FILE), 23) == (NtStatus.INFO_LENGTH_MISMATCH, b"")
    assert query_file(FileInfoClass.STREAM, FileFacts(FILE), 37) == (NtStatus.BUFFER_OVERFLOW, b"")
    assert query_file(FileInfoClass.STREAM, FileFacts(FILE), 38)[0] == NtStatus.SUCCESS
    assert query_file(FileInfoClass.STREAM, FileFacts(DIR), 24) == (NtStatus.SUCCESS, b"")


def test_unknown_file_class() -> None:
    with pytest.raises(InfoError) as e:
        query_file_info(99, FileFacts(FILE))
    assert e.value.status == NtStatus.INVALID_INFO_CLASS
    with pytest.raises(InfoError):
        query_file_info(FileInfoClass.RENAME, FileFacts(FILE))  # SET_INFO only


@pytest.mark.parametrize(("cls", "size"), [
    (FileInfoClass.BASIC, 40), (FileInfoClass.STANDARD, 24), (FileInfoClass.INTERNAL, 8), (FileInfoClass.EA, 4),
    (FileInfoClass.NETWORK_OPEN, 56), (FileInfoClass.ATTRIBUTE_TAG, 8), (FileInfoClass.POSITION, 8),
])
def test_fixed_class_buffer_rule(cls: FileInfoClass, size: int) -> None:
    f = FileFacts(FILE)
    assert query_file(cls, f, size - 1) == (NtStatus.INFO_LENGTH_MISMATCH, b"")
    status, data = query_file(cls, f, size)
    assert status == NtStatus.SUCCESS and len(data) == size
    assert query_file(cls, f, 65536) == (NtStatus.SUCCESS, data)


def test_variable_class_buffer_rule() -> None:
    f = FileFacts(FILE, name="abcdef")
    full = query_file_info(FileInfoClass.ALL, f)
    assert query_file(FileInfoClass.ALL, f, 103)[0] == NtStatus.INFO_LENGTH_MISMATCH
    status, data = query_file(FileInfoClass.ALL, f, 104)
    assert status == NtStatus.BUFFER_OVERFLOW and data == full[:104]
    assert struct.unpack_from("<I", data, 96)[0] == 12  # FileNameLength says the whole name
    assert query_file(FileInfoClass.ALL, f, len(full)) == (NtStatus.SUCCESS, full)
    assert query_file(FileInfoClass.NAME, f, 3)[0] == NtStatus.INFO_LENGTH_MISMATCH
    assert query_file(FileInfoClass.NAME, f, 8) == (NtStatus.BUFFER_OVERFLOW, b"\x0c\0\0\0a\0b\0")


def test_fit_edges() -> None:
    assert fit(b"", 0, fixed=0) == (NtStatus.SUCCESS, b"")
    assert fit(b"abc", 0, fixed=0) == (NtStatus.BUFFER_OVERFLOW, b"")


def test_fs_volume_with_smbprotocol() -> None:
    data = query_fs_info(FsInfoClass.VOLUME, VOL)
    assert len(data) == 18 + 8
    p = fi.FileFsVolumeInformation()
    p.unpack(data)
    assert p["volume_serial_number"].get_value() == 0xCAFEBABE
    assert p["volume_label"].get_value() == "data"
    assert struct.unpack_from("<q", data)[0] == filetime(T0)
    assert query_fs(FsInfoClass.VOLUME, VOL, 23)[0] == NtStatus.INFO_LENGTH_MISMATCH
    assert query_fs(FsInfoClass.VOLUME, VOL, 24) == (NtStatus.BUFFER_OVERFLOW, data[:24])


def test_fs_sizes() -> None:
    s = s1.FileFsSizeInformation(query_fs_info(FsInfoClass.SIZE, VOL))
    assert (s["SectorsPerAllocationUnit"], s["BytesPerSector"]) == (8, 512)
    assert (s["TotalAllocationUnits"], s["AvailableAllocationUnits"]) == ((10 << 30) // 4096, (3 << 30) // 4096)
    data = query_fs_info(FsInfoClass.FULL_SIZE, VOL)
    assert len(data) == 32
    p = fi.FileFsFullSizeInformation()
    p.unpack(data)
    assert p["total_allocation_units"].get_value() == (10 << 30) // 4096
    assert p["caller_available_units"].get_value() == p["actual_available_units"].get_value() == (3 << 30) // 4096
    tiny = VolumeFacts(StatFs(1000, 10, 1, 1, block_size=100))  # a block size below a sector still gives 1 spu
    assert struct.unpack("<qqII", query_fs_info(FsInfoClass.SIZE, tiny)) == (1, 0, 1, 512)


def test_fs_device_and_sector_size() -> None:
    d = s1.SMBQueryFsDeviceInfo(query_fs_info(FsInfoClass.DEVICE, VOL))
    assert (d["DeviceType"], d["DeviceCharacteristics"]) == (7, 0x20)
    ro = dataclasses.replace(VOL, read_only=True)
    assert s1.SMBQueryFsDeviceInfo(query_fs_info(FsInfoClass.DEVICE, ro))["DeviceCharacteristics"] == 0x22
    data = query_fs_info(FsInfoClass.SECTOR_SIZE, VOL)
    assert len(data) == 28 and struct.unpack("<7I", data) == (512, 512, 512, 512, 3, 0, 0)


def test_fs_attribute_information() -> None:
    data = query_fs_info(FsInfoClass.ATTRIBUTE, VOL)
    s = s1.SMBQueryFsAttributeInfo(data)
    assert s["FileSystemName"].decode("utf-16-le") == "NTFS"
    assert s["MaxFilenNameLengthInBytes"] == 255
    assert s["FileSystemAttributes"] == \
        FsAttribute.CASE_PRESERVED_NAMES | FsAttribute.UNICODE_ON_DISK | FsAttribute.PERSISTENT_ACLS
    other = dataclasses.replace(VOL, read_only=True, case_sensitive=True, named_streams=True)
    bits = struct.unpack_from("<I", query_fs_info(FsInfoClass.ATTRIBUTE, other))[0]
    assert bits & FsAttribute.READ_ONLY_VOLUME and bits & FsAttribute.CASE_SENSITIVE_SEARCH
    assert bits & FsAttribute.NAMED_STREAMS
    assert query_fs(FsInfoClass.ATTRIBUTE, VOL, 11)[0] == NtStatus.INFO_LENGTH_MISMATCH
    assert query_fs(FsInfoClass.ATTRIBUTE, VOL, 12) == (NtStatus.BUFFER_OVERFLOW, data[:12])
    assert query_fs(FsInfoClass.ATTRIBUTE, VOL, 20) == (NtStatus.SUCCESS, data)


def test_unknown_fs_class() -> None:
    for cls in (2, 6, 8, 200):
        with pytest.raises(InfoError) as e:
            query_fs_info(cls, VOL)
        assert e.value.status == NtStatus.INVALID_INFO_CLASS


def test_the_share_root_is_named_backslash() -> None:
    # Linux's cifs refuses a FileAllInformation shorter than 101 bytes (an empty name): the mount fails
    data = query_file_info(FileInfoClass.ALL, FileFacts(DIR))
    assert len(data) == 102 and data[100:] == "\\".encode("utf-16-le")
    assert query_file_info(FileInfoClass.NAME, FileFacts(DIR)) == b"\x02\0\0\0\\\0"
