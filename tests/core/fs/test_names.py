"""Windows reserved names: a helper for the SMB layer; core.fs itself keeps accepting them."""

from __future__ import annotations

import pytest

from core.fs import windows_reserved
from core.store import Store

RESERVED = ["CON", "prn", "Aux", "nul", "NUL.txt", "con.tar.gz", "CON .txt", "aux  ", "CONIN$", "conout$.log",
            *(f"{d}{n}" for d in ("COM", "lpt") for n in "123456789"), "COM\u00b9", "lpt\u00b3.doc",
            "ends.", "ends ", "..", "...", " ", ""]
ALLOWED = ["CONSOLE", "con_", "xcon", "a.con", "COM0", "LPT0", "COM10", "lpt1x", "NULL", "prn-queue.txt",
           ".hidden", "a b", "Straße", "COM\u2074"]


@pytest.mark.parametrize("name", RESERVED)
def test_reserved(name: str) -> None:
    assert windows_reserved(name)


@pytest.mark.parametrize("name", ALLOWED)
def test_allowed(name: str) -> None:
    assert not windows_reserved(name)


def test_core_fs_still_accepts_them(mem_store: Store) -> None:
    fs = mem_store.fs
    for name in ("CON", "nul.txt", "COM1", "trailing.", "trailing "):
        made = fs.create(fs.root, name)  # POSIX clients may make them
        assert fs.lookup(fs.root, name).ino == made.ino
