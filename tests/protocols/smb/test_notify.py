"""CHANGE_NOTIFY: requests from smbprotocol, entries read back by smbprotocol and impacket, the watcher on a real
directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from impacket import smb3structs as s3
from smbprotocol.change_notify import ChangeNotifyFlags, FileNotifyInformation, SMB2ChangeNotifyRequest
from smbprotocol.change_notify import CompletionFilter as SpFilter

from protocols.smb.notify import (
    Action,
    CompletionFilter,
    Entry,
    NotifyError,
    Watcher,
    encode_notify_response,
    pack_events,
    parse_change_notify,
)
from protocols.smb.status import NtStatus

EVENTS = [(Action.ADDED, "a"), (Action.RENAMED_OLD_NAME, "sub\\caf\u00e9.txt"),
          (Action.RENAMED_NEW_NAME, "\U0001f600 x.doc"), (Action.MODIFIED, "bb")]


def test_parses_smbprotocol_request() -> None:
    req = SMB2ChangeNotifyRequest()
    req["flags"] = ChangeNotifyFlags.SMB2_WATCH_TREE
    req["output_buffer_length"] = 8192
    req["file_id"] = bytes(range(16))
    req["completion_filter"] = SpFilter.FILE_NOTIFY_CHANGE_FILE_NAME | SpFilter.FILE_NOTIFY_CHANGE_LAST_WRITE
    r = parse_change_notify(req.pack())
    assert (r.file_id, r.output_length, r.watch_tree) == (bytes(range(16)), 8192, True)
    assert r.completion_filter == CompletionFilter.FILE_NAME | CompletionFilter.LAST_WRITE
    req["flags"] = 0
    assert not parse_change_notify(req.pack()).watch_tree
    with pytest.raises(NotifyError):
        parse_change_notify(req.pack(), max_transact=4096)
    req["completion_filter"] = 0
    with pytest.raises(NotifyError) as e:
        parse_change_notify(req.pack())
    assert e.value.status == NtStatus.INVALID_PARAMETER


def _walk_smbprotocol(data: bytes) -> list[tuple[int, str]]:
    out = []
    while True:
        info = FileNotifyInformation()
        info.unpack(data)
        out.append((info["action"].get_value(), info["file_name"].get_value()))
        nxt = info["next_entry_offset"].get_value()
        if nxt == 0:
            return out
        assert nxt % 4 == 0
        data = data[nxt:]


def _walk_impacket(data: bytes) -> list[tuple[int, str]]:
    out, pos = [], 0
    while True:
        info = s3.FILE_NOTIFY_INFORMATION(data[pos:])
        out.append((info["Action"], info["FileName"].decode("utf-16-le")))
        if info["NextEntryOffset"] == 0:
            return out
        pos += info["NextEntryOffset"]


def test_entries_read_back_by_both_libraries() -> None:
    ans = pack_events(EVENTS, 4096)
    assert ans.status == NtStatus.SUCCESS
    assert _walk_smbprotocol(ans.data) == _walk_impacket(ans.data) == [(int(a), n) for a, n in EVENTS]
    last = "bb".encode("utf-16-le")
    assert ans.data.endswith(last) and ans.data[-len(last) - 12:-len(last)] == bytes.fromhex("000000000300000004000000")


def test_overflow_is_notify_enum_dir() -> None:
    exact = len(pack_events(EVENTS, 4096).data)
    assert pack_events(EVENTS, exact).status == NtStatus.SUCCESS
    over = pack_events(EVENTS, exact - 1)
    assert (over.status, over.data) == (NtStatus.NOTIFY_ENUM_DIR, b"")
    assert pack_events([(Action.ADDED, "x")], 0).status == NtStatus.NOTIFY_ENUM_DIR


def test_response_body_matches_impacket() -> None:
    data = pack_events(EVENTS, 4096).data
    body = encode_notify_response(data)
    r = s3.SMB2ChangeNotify_Response(body)
    assert (r["StructureSize"], r["OutputBufferOffset"], r["OutputBufferLength"]) == (9, 72, len(data))
    assert body[8:] == data


def _snap(d: Path) -> dict[str, Entry]:
    out = {}
    for p in d.iterdir():
        st_ = p.stat()
        out[p.name] = Entry(st_.st_ino, st_.st_mtime_ns, st_.st_size, p.is_dir())
    return out


def test_watcher_on_a_real_directory(tmp_path: Path) -> None:
    (tmp_path / "keep").write_bytes(b"1")
    (tmp_path / "old").write_bytes(b"x")
    (tmp_path / "gone").write_bytes(b"x")
    (tmp_path / "dir1").mkdir()
    before = _snap(tmp_path)
    (tmp_path / "old").rename(tmp_path / "new")
    (tmp_path / "gone").unlink()
    (tmp_path / "added").write_bytes(b"")
    (tmp_path / "dir2").mkdir()
    with open(tmp_path / "keep", "ab") as f:
        f.write(b"more")
    after = _snap(tmp_path)
    all_ = Watcher(0xFFF).diff(before, after)
    assert all_ == [(Action.REMOVED, "gone"), (Action.RENAMED_OLD_NAME, "old"), (Action.RENAMED_NEW_NAME, "new"),
                    (Action.ADDED, "added"), (Action.ADDED, "dir2"), (Action.MODIFIED, "keep")]
    files_only = Watcher(CompletionFilter.FILE_NAME).diff(before, after)
    assert (Action.ADDED, "dir2") not in files_only and (Action.MODIFIED, "keep") not in files_only
    dirs_only = Watcher(CompletionFilter.DIR_NAME).diff(before, after)
    assert dirs_only == [(Action.ADDED, "dir2")]
    assert Watcher(0xFFF).diff(after, after) == []


def test_watcher_rename_over_an_existing_name(tmp_path: Path) -> None:
    (tmp_path / "tmp").write_bytes(b"new")
    (tmp_path / "file").write_bytes(b"old")
    before = _snap(tmp_path)
    os.replace(tmp_path / "tmp", tmp_path / "file")
    assert Watcher(CompletionFilter.FILE_NAME).diff(before, _snap(tmp_path)) == [
        (Action.REMOVED, "file"), (Action.RENAMED_OLD_NAME, "tmp"), (Action.RENAMED_NEW_NAME, "file")]


def test_watcher_inode_reuse_is_not_a_rename() -> None:
    b = {"gone": Entry(7, 100, 3, False)}
    a = {"added": Entry(7, 500, 0, False)}
    assert Watcher(0xFFF).diff(b, a) == [(Action.REMOVED, "gone"), (Action.ADDED, "added")]
    assert Watcher(0xFFF).diff(b, {"moved": b["gone"]}) == [(Action.RENAMED_OLD_NAME, "gone"),
                                                             (Action.RENAMED_NEW_NAME, "moved")]


def test_surrogate_escaped_names_are_sent() -> None:
    ans = pack_events([(Action.ADDED, "bad\udcff")], 100)
    assert ans.status == NtStatus.SUCCESS and ans.data.endswith(b"\xff\xdc")


def test_watcher_modified_by_mtime_only_needs_last_write() -> None:
    b = {"f": Entry(1, 100, 5, False)}
    a = {"f": Entry(1, 200, 5, False)}
    assert Watcher(CompletionFilter.SIZE).diff(b, a) == []
    assert Watcher(CompletionFilter.LAST_WRITE).diff(b, a) == [(Action.MODIFIED, "f")]


@given(st.binary(max_size=64))
def test_fuzz_request(body: bytes) -> None:
    try:
        r = parse_change_notify(body)
    except NotifyError as e:
        assert e.status == NtStatus.INVALID_PARAMETER
    else:
        assert r.completion_filter and len(r.file_id) == 16


NAMES = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)


@given(st.lists(st.tuples(st.sampled_from(list(Action)), NAMES), max_size=10),
       st.integers(0, 600))
def test_fuzz_pack(events: list[tuple[Action, str]], length: int) -> None:
    ans = pack_events(events, length)
    if ans.status == NtStatus.SUCCESS and events:
        assert len(ans.data) <= length
        assert _walk_impacket(ans.data) == [(int(a), n) for a, n in events]
    else:
        assert ans.data == b""
