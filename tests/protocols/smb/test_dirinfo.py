"""QUERY_DIRECTORY entry packing (parsed back by smbprotocol and impacket) and the wildcard matcher."""

from __future__ import annotations

import dataclasses
import fnmatch
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from impacket import smb as s1
from smbprotocol.open import SMB2QueryDirectoryRequest

from core.fs import Attr, FileType
from protocols.smb.dirinfo import DIR_CLASSES, NAME_OFFSET, encode_entry, has_wildcards, match, pack_entries
from protocols.smb.fileinfo import FileAttribute, FileInfoClass, InfoError, filetime
from protocols.smb.status import NtStatus

T0 = 1_700_000_000_000_000_000
FILE = Attr(ino=1001, gen=1, type=FileType.REG, mode=0o100644, nlink=1, uid=0, gid=0, size=12345, rdev=0,
            atime_ns=T0 + 100, mtime_ns=T0 + 200, ctime_ns=T0 + 300, btime_ns=T0)
DIR = dataclasses.replace(FILE, ino=1002, type=FileType.DIR, mode=0o040755, size=0)
NAMES = [".", "..", "a.txt", "Bee", "caf\u00e9 \U0001f600.doc", "x" * 255]
ENTRIES = [(n, DIR if n in (".", "..", "Bee") else dataclasses.replace(FILE, ino=2000 + i))
           for i, n in enumerate(NAMES)]


def _parse(cls: int, data: bytes) -> list[object]:
    return list(SMB2QueryDirectoryRequest.unpack_response(cls, data))


def _names(cls: int, data: bytes) -> list[str]:
    """The names smbprotocol reads from an OutputBuffer (it walks NextEntryOffset itself)."""
    return [p["file_name"].get_value().decode("utf-16-le") for p in _parse(cls, data)]  # type: ignore[index]


@pytest.mark.parametrize("cls", sorted(DIR_CLASSES))
def test_every_class_parses_with_smbprotocol(cls: int) -> None:
    page = pack_entries(cls, ENTRIES, 65536)
    assert (page.status, page.count) == (NtStatus.SUCCESS, len(ENTRIES))
    parsed = _parse(cls, page.data)
    assert _names(cls, page.data) == NAMES
    for p, (_, attr) in zip(parsed, ENTRIES, strict=True):
        if cls == FileInfoClass.NAMES:
            continue
        assert p["end_of_file"].get_value() == (0 if attr.is_dir else attr.size)  # type: ignore[index]
        assert p["file_attributes"].get_value() == (  # type: ignore[index]
            FileAttribute.DIRECTORY if attr.is_dir else FileAttribute.NORMAL)
        if cls in (FileInfoClass.ID_BOTH_DIRECTORY, FileInfoClass.ID_FULL_DIRECTORY):
            assert p["file_id"].get_value() == attr.ino  # type: ignore[index]


def test_layout_offsets_and_alignment() -> None:
    page = pack_entries(FileInfoClass.ID_BOTH_DIRECTORY, ENTRIES, 65536)
    offsets, pos = [], 0
    while True:
        offsets.append(pos)
        nxt = struct.unpack_from("<I", page.data, pos)[0]
        if nxt == 0:
            break
        assert nxt % 8 == 0
        pos += nxt
    assert len(offsets) == len(ENTRIES)
    last_name = NAMES[-1].encode("utf-16-le")
    assert page.data.endswith(last_name) and len(page.data) == offsets[-1] + 104 + len(last_name)  # no tail pad
    for cls, off in NAME_OFFSET.items():
        assert len(encode_entry(cls, "", FILE)) == off


def test_id_both_with_impacket() -> None:
    data = encode_entry(FileInfoClass.ID_BOTH_DIRECTORY, "hello.txt", FILE)
    s = s1.SMBFindFileIdBothDirectoryInfo(s1.SMB.FLAGS2_UNICODE)
    s.fromString(data)
    assert s["FileName"].decode("utf-16-le") == "hello.txt"
    assert (s["FileID"], s["EndOfFile"], s["AllocationSize"]) == (1001, 12345, 16384)
    assert (s["CreationTime"], s["LastWriteTime"], s["LastChangeTime"]) == \
        (filetime(T0), filetime(T0 + 200), filetime(T0 + 300))
    assert s["ShortNameLength"] == 0
    full = s1.SMBFindFileFullDirectoryInfo(s1.SMB.FLAGS2_UNICODE)
    full.fromString(encode_entry(FileInfoClass.FULL_DIRECTORY, "d", DIR))
    assert (full["FileName"], full["ExtFileAttributes"]) == ("d".encode("utf-16-le"), FileAttribute.DIRECTORY)


def test_budget_stops_before_an_entry_that_does_not_fit() -> None:
    cls = FileInfoClass.DIRECTORY
    sizes = [64 + 2 * len(n) for n in NAMES]
    # first two entries: 66 -> padded to 72, then 68 -> ends at 140
    assert pack_entries(cls, ENTRIES, 140).count == 2
    assert pack_entries(cls, ENTRIES, 139).count == 1
    assert pack_entries(cls, ENTRIES, 66).count == 1
    page = pack_entries(cls, ENTRIES, 65)
    assert (page.status, page.data, page.count) == (NtStatus.INFO_LENGTH_MISMATCH, b"", 0)
    assert pack_entries(cls, ENTRIES, 63).status == NtStatus.INFO_LENGTH_MISMATCH
    # resume where the first page stopped: the pages together hold every entry once, in order
    got: list[str] = []
    rest = ENTRIES
    while rest:
        page = pack_entries(cls, rest, 700)
        assert page.status == NtStatus.SUCCESS and page.count > 0 and len(page.data) <= 700
        got += _names(cls, page.data)
        rest = rest[page.count:]
    assert got == NAMES and max(sizes) <= 700


def test_single_entry_and_empty() -> None:
    page = pack_entries(FileInfoClass.NAMES, ENTRIES, 65536, single=True)
    assert page.count == 1 and struct.unpack_from("<I", page.data)[0] == 0
    assert pack_entries(FileInfoClass.NAMES, [], 65536).status == NtStatus.NO_MORE_FILES
    with pytest.raises(InfoError) as e:
        pack_entries(FileInfoClass.BASIC, ENTRIES, 65536)
    assert e.value.status == NtStatus.INVALID_INFO_CLASS


def test_attributes_callback() -> None:
    page = pack_entries(FileInfoClass.DIRECTORY, ENTRIES[2:3], 4096, attributes=lambda n, a: 0x22)
    assert struct.unpack_from("<I", page.data, 56)[0] == 0x22


@given(st.lists(st.text(min_size=1, max_size=20), max_size=30), st.integers(0, 3000),
       st.sampled_from(sorted(DIR_CLASSES)))
def test_packing_never_exceeds_budget(names: list[str], budget: int, cls: int) -> None:
    entries = [(n, FILE) for n in names]
    page = pack_entries(cls, entries, budget)
    assert len(page.data) <= budget
    if page.count:
        assert _names(cls, page.data) == names[:page.count]
        if page.count < len(names):  # the next entry really would not have fit
            nxt = len(encode_entry(cls, names[page.count], FILE))
            assert -(-len(page.data) // 8) * 8 + nxt > budget


WILDCARD_TABLE = [
    ("*", "anything.at.all", True),
    ("", "x", True),
    ("*.txt", "a.TXT", True),
    ("*.txt", "a.txt.bak", False),
    ("a?c", "abc", True),
    ("a?c", "ac", False),
    ("*a*b*", "xxaxxbxx", True),
    ("<.txt", "a.b.txt", True),       # DOS_STAR stops at the final dot
    ("<", "a.txt", False),
    ("<", "readme", True),
    ("<.<", "a.b.c", True),
    ('<"', "readme", True),            # "*." : names without an extension
    ('<"', "a.txt", False),
    ('<"<', "a.txt", True),            # DOS_DOT then DOS_STAR: *.* the DOS way
    ('a"', "a.", True),
    ('a"', "a", True),
    ('a"', "ab", False),
    (">>>", "ab", True),               # ??? the DOS way matches names of up to three characters
    (">>>", "abcd", False),
    (">>>.>>>", "ab.c", True),
    (">>>.>>>", "abcd.c", False),
    (">.txt", ".txt", True),           # DOS_QM matches nothing at a dot
    ("file?.dat", "FILE1.DAT", True),
    ("[a]", "[a]", True),              # brackets are literal, unlike fnmatch
    ("caf\u00c9*", "caf\u00e9 au lait", True),
]


@pytest.mark.parametrize(("pattern", "name", "expected"), WILDCARD_TABLE)
def test_wildcard_table(pattern: str, name: str, expected: bool) -> None:
    assert match(pattern, name) is expected


def test_wildcard_chars_in_names_are_not_literals() -> None:
    assert not match('a"', 'a"')   # DOS_DOT takes only a dot (or nothing at the end)
    assert match('a?', 'a"')


def test_long_patterns_do_not_exhaust_the_stack() -> None:
    name = "x" * 255
    assert match("*" * 5000 + "x", name)
    assert match("<" * 3000 + ">" * 3000, name)
    assert not match("?" * 256, name)
    assert match("?" * 255, name)


def test_case_sensitive_option() -> None:
    assert match("*.TXT", "a.txt")
    assert not match("*.TXT", "a.txt", case_insensitive=False)
    assert match("*.txt", "a.txt", case_insensitive=False)


def test_has_wildcards() -> None:
    assert not has_wildcards("plain name.txt")
    assert all(has_wildcards(f"a{c}b") for c in '*?<>"')


_PLAIN = st.text(alphabet="ab.xy", max_size=8)


@given(st.text(alphabet="ab.*?", min_size=1, max_size=6), _PLAIN)
def test_star_and_qm_agree_with_fnmatch(pattern: str, name: str) -> None:
    assert match(pattern, name, case_insensitive=False) == fnmatch.fnmatchcase(name, pattern)


@given(_PLAIN)
def test_plain_names_match_themselves(name: str) -> None:
    assert match(name, name) and match(name.upper(), name)
