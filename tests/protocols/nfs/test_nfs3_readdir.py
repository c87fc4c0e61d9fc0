"""READDIR and READDIRPLUS through the RPC dispatch path: "." and ".." first, cookies that survive removals,
byte budgets honoured exactly (every page is as full as its budget allows and never fuller), eof only at the
end, BAD_COOKIE, TOOSMALL, and the caller's permissions."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from core.store import Store
from protocols.nfs import nfs3_args as A
from protocols.nfs import nfs3_readdir as RD
from protocols.nfs import nfs3_types as T
from protocols.nfs.dispatch import AuthSys
from protocols.nfs.errors import NFS3ERR_ACCES, NFS3ERR_BAD_COOKIE, NFS3ERR_NOTDIR, NFS3ERR_TOOSMALL
from protocols.nfs.nfs3_types import Proc
from tests.protocols.nfs.nfs3_harness import ALICE, BOB, DATA, RO, ROOT, Nfs3, Reply, attrs, make_tree

N = 2000


def name(i: int) -> str:
    return f"{i:04d}" + "x" * (i % 13)  # lengths 4..16: every padding case


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One store for the module with /data/big holding N files (made once: it takes a few seconds)."""
    from core.store import init_store, open_store
    d = str(tmp_path_factory.mktemp("readdir") / "store")
    init_store(d, targets=[f"mem:{i}" for i in range(6)], cell=64 * 1024, shard_bytes=64 * 64 * 1024)
    store = open_store(d)
    make_tree(store)
    fs = store.fs
    b = fs.mkdir(fs.resolve("/data").ino, "big", 0o755)
    for i in range(N):
        fs.create(b.ino, name(i), 0o644)
    yield store
    store.close()


@pytest.fixture
def nfs(mem_store: Store) -> Nfs3:
    make_tree(mem_store)
    return Nfs3(mem_store)


def readdir(nfs: Nfs3, fh: bytes, cookie: int = 0, verf: bytes = bytes(8), count: int = 4096,
            auth: AuthSys = ALICE) -> Reply:
    return nfs.call(Proc.READDIR, A.ReaddirArgs(fh, cookie, verf, count), auth)


def readdirplus(nfs: Nfs3, fh: bytes, cookie: int = 0, verf: bytes = bytes(8), maxcount: int = 8192,
                auth: AuthSys = ALICE, dircount: int = 512) -> Reply:
    return nfs.call(Proc.READDIRPLUS, A.ReaddirplusArgs(fh, cookie, verf, dircount, maxcount), auth)


def entry_size(e: dict[str, Any], plus: bool) -> int:
    if not plus:
        return T.entry3_size(len(e["name"]))
    fh = e["name_handle"]
    return T.entryplus3_size(len(e["name"]), e["name_attributes"]["attributes_follow"],
                             len(fh["handle"]["data"]) if fh["handle_follows"] else None)


def walk(nfs: Nfs3, fh: bytes, budget: int, plus: bool, auth: AuthSys = ALICE) -> list[dict[str, Any]]:
    """Every entry of a directory, page by page, checking each page against its budget."""
    out: list[dict[str, Any]] = []
    cookie, verf = 0, bytes(8)
    pages: list[tuple[int, list[dict[str, Any]], bool]] = []
    while True:
        r = (readdirplus(nfs, fh, cookie, verf, budget, auth) if plus else readdir(nfs, fh, cookie, verf, budget, auth))
        ok = r.ok
        resok_size = len(nfs.last_body) - 4  # the status
        assert resok_size <= budget, (resok_size, budget)
        entries, eof = ok["reply"]["entries"], ok["reply"]["eof"]
        pages.append((resok_size, entries, eof))
        out += entries
        if eof:
            break
        assert entries, "a page without entries must be the last"
        cookie, verf = entries[-1]["cookie"], ok["cookieverf"]
    for (size, _, eof), (_, following, _) in itertools.pairwise(pages):
        assert not eof
        assert size + entry_size(following[0], plus) > budget  # the next entry did not fit: the page is full
    return out


@pytest.mark.parametrize("budget", [RD.RESOK_OVERHEAD + T.entry3_size(16), 200, 333, 4096])
def test_readdir_pages_through_2000_entries(big: Store, budget: int) -> None:
    nfs = Nfs3(big)
    entries = walk(nfs, nfs.fh("/data/big"), budget, plus=False)
    names = [e["name"].decode() for e in entries]
    assert names == [".", "..", *sorted(name(i) for i in range(N))]
    assert entries[0]["fileid"] == big.fs.resolve("/data/big").ino
    assert entries[1]["fileid"] == big.fs.resolve("/data").ino
    inos = {e.name: e.ino for e in big.fs.listdir(big.fs.resolve("/data/big").ino)}
    assert all(e["fileid"] == inos[e["name"].decode()] for e in entries[2:])
    assert len({e["cookie"] for e in entries}) == len(entries)


@pytest.mark.parametrize("budget", [RD.RESOK_OVERHEAD + T.entryplus3_size(16, True, 36), 700, 64 * 1024])
def test_readdirplus_pages_through_2000_entries(big: Store, budget: int) -> None:
    nfs = Nfs3(big)
    entries = walk(nfs, nfs.fh("/data/big"), budget, plus=True)
    names = [e["name"].decode() for e in entries]
    assert names == [".", "..", *sorted(name(i) for i in range(N))]
    for e in entries[::97] + entries[:2]:
        path = {".": "/data/big", "..": "/data"}.get(e["name"].decode(), "/data/big/" + e["name"].decode())
        a = big.fs.resolve(path)
        assert e["name_handle"]["handle"]["data"] == nfs.fh(path)
        got = attrs(e["name_attributes"])
        assert (got["fileid"], got["type"], got["fsid"], got["size"]) == (a.ino, T.FTYPE3[a.type], DATA.id, a.size)
        assert e["fileid"] == a.ino


def test_readdir_at_an_export_root_names_the_root_as_dotdot(nfs: Nfs3) -> None:
    for export in (DATA, RO):
        ok = readdirplus(nfs, nfs.root(export), auth=ROOT).ok
        dot, dotdot = ok["reply"]["entries"][:2]
        root = nfs.store.fs.resolve(export.path)
        assert (dot["name"], dotdot["name"], dot["fileid"], dotdot["fileid"]) == (b".", b"..", root.ino, root.ino)
        assert dotdot["name_handle"]["handle"]["data"] == nfs.root(export)
        assert readdir(nfs, nfs.root(export), auth=ROOT).ok["reply"]["entries"][1]["fileid"] == root.ino


def test_cookies_survive_removal_and_dot_cookies_resume(nfs: Nfs3) -> None:
    fs = nfs.store.fs
    d = fs.resolve("/data/alice").ino
    for n in "abcdef":
        fs.create(d, n, uid=1000, gid=1000)
    fh = nfs.fh("/data/alice")
    first = readdir(nfs, fh, count=RD.RESOK_OVERHEAD + 4 * T.entry3_size(1)).ok
    got = [e["name"] for e in first["reply"]["entries"]]
    assert got == [b".", b"..", b"a", b"b"] and not first["reply"]["eof"]
    fs.unlink(d, "b")  # the entry whose cookie the client holds goes away
    rest = readdir(nfs, fh, first["reply"]["entries"][-1]["cookie"], first["cookieverf"]).ok
    assert [e["name"] for e in rest["reply"]["entries"]] == [b"c", b"d", b"e", b"f"] and rest["reply"]["eof"]
    after_dot = readdir(nfs, fh, 1, first["cookieverf"]).ok["reply"]["entries"]
    assert [e["name"] for e in after_dot] == [b"..", b"a", b"c", b"d", b"e", b"f"]
    after_dotdot = readdir(nfs, fh, 2, bytes(8)).ok["reply"]["entries"]
    assert [e["name"] for e in after_dotdot][:1] == [b"a"]


def test_bad_cookies_and_verifiers(nfs: Nfs3) -> None:
    fh = nfs.root()
    ok = readdir(nfs, fh, count=RD.RESOK_OVERHEAD + 3 * T.entry3_size(5)).ok
    cookie, verf = ok["reply"]["entries"][-1]["cookie"], ok["cookieverf"]
    assert verf == nfs.store.fs.cookie_verifier(nfs.attr("/data").ino).to_bytes(8, "big")
    assert readdir(nfs, fh, cookie, verf).status == 0
    assert readdir(nfs, fh, cookie, bytes(8)).status == 0  # a client that keeps no verifier
    r = readdir(nfs, fh, cookie, b"\xff" * 8)
    assert r.status == NFS3ERR_BAD_COOKIE and attrs(r.fail["dir_attributes"])["fileid"] == nfs.attr("/data").ino
    assert readdir(nfs, fh, 10**12, verf).status == NFS3ERR_BAD_COOKIE  # never issued
    assert readdirplus(nfs, fh, 10**12, verf).status == NFS3ERR_BAD_COOKIE
    assert readdir(nfs, fh, 0, b"\xff" * 8).status == 0  # the verifier only matters with a cookie


def test_budgets_too_small(nfs: Nfs3) -> None:
    fh = nfs.root()
    assert readdir(nfs, fh, count=50).status == NFS3ERR_TOOSMALL
    assert readdir(nfs, fh, count=RD.RESOK_OVERHEAD + T.entry3_size(1) - 1).status == NFS3ERR_TOOSMALL
    ok = readdir(nfs, fh, count=RD.RESOK_OVERHEAD + T.entry3_size(1)).ok
    assert [e["name"] for e in ok["reply"]["entries"]] == [b"."]
    assert readdirplus(nfs, fh, maxcount=RD.RESOK_OVERHEAD + 100).status == NFS3ERR_TOOSMALL
    last = readdir(nfs, fh, count=1 << 30).ok["reply"]
    assert last["eof"] and len(nfs.last_body) - 4 <= 1 << 20
    end = readdir(nfs, fh, last["entries"][-1]["cookie"], count=RD.RESOK_OVERHEAD).ok["reply"]
    assert end == {"entries": [], "eof": True}  # nothing left: an empty last page fits the overhead alone


def test_dircount_does_not_shrink_pages(nfs: Nfs3) -> None:
    fh = nfs.root()
    a = readdirplus(nfs, fh, maxcount=8192, dircount=1).ok["reply"]["entries"]
    b = readdirplus(nfs, fh, maxcount=8192, dircount=8192).ok["reply"]["entries"]
    assert a == b and len(a) == 4


def test_listing_needs_read_and_plus_needs_search(nfs: Nfs3) -> None:
    fs = nfs.store.fs
    fh = nfs.fh("/data/alice")
    assert readdir(nfs, fh, auth=BOB).status == NFS3ERR_ACCES  # 0700
    assert readdirplus(nfs, fh, auth=BOB).status == NFS3ERR_ACCES
    fs.create(fs.resolve("/data/alice").ino, "f", uid=1000, gid=1000)
    fs.setattr(fs.resolve("/data/alice").ino, mode=0o704)  # others may read the names, not search
    plain = readdir(nfs, fh, auth=BOB).ok["reply"]["entries"]
    assert [e["name"] for e in plain] == [b".", b"..", b"f"]
    assert plain[1]["fileid"] == nfs.attr("/data").ino
    plus = readdirplus(nfs, fh, auth=BOB).ok["reply"]["entries"]
    assert [e["name"] for e in plus] == [b".", b"..", b"f"]
    assert all(not e["name_attributes"]["attributes_follow"] and not e["name_handle"]["handle_follows"]
               for e in plus)
    assert all(e["name_handle"]["handle_follows"] for e in readdirplus(nfs, fh, auth=ALICE).ok["reply"]["entries"])


def test_readdir_of_a_file_is_notdir(nfs: Nfs3) -> None:
    assert readdir(nfs, nfs.fh("/ro/f", RO), auth=ROOT).status == NFS3ERR_NOTDIR
    assert readdirplus(nfs, nfs.fh("/ro/f", RO), auth=ROOT).status == NFS3ERR_NOTDIR


@pytest.mark.parametrize("plus", [False, True])
def test_pages_capped_by_entries_are_not_eof(big: Store, plus: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_ENTRIES a page ends though its budget has room; eof still waits for the directory's end."""
    monkeypatch.setattr(RD, "MAX_ENTRIES", 150)
    nfs = Nfs3(big)
    fh, cookie, seen, pages = nfs.fh("/data/big"), 0, 0, 0
    while True:
        r = (readdirplus(nfs, fh, cookie, maxcount=1 << 20) if plus else readdir(nfs, fh, cookie, count=1 << 20)).ok
        entries, eof = r["reply"]["entries"], r["reply"]["eof"]
        seen += len(entries)
        pages += 1
        assert len(entries) <= 150
        if eof:
            break
        cookie = entries[-1]["cookie"]
    assert seen == N + 2 and pages == -(-(N + 2) // 150)
