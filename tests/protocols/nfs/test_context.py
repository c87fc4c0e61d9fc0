"""Context: the squash table, credentials, and handle resolution (BADHANDLE, STALE, ACCES, ROFS)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from core.errors import NotADirectory, NotFound, PermissionDenied
from core.fs import Attr, Cred
from core.store import Store
from protocols.nfs.context import Context
from protocols.nfs.dispatch import AuthSys, Request
from protocols.nfs.errors import NFS3ERR_ACCES, NFS3ERR_BADHANDLE, NFS3ERR_ROFS, NFS3ERR_STALE, NfsError
from protocols.nfs.exports import Export

ROOT_AUTH = AuthSys(1, "client", 0, 0, (0, 5))
USER_AUTH = AuthSys(1, "client", 1000, 100, (100, 0, 7))
ANON = (65534, 65534, frozenset({65534}), False)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def req(auth: AuthSys | None = USER_AUTH, ip: str = "127.0.0.1") -> Request:
    return Request(1, 100003, 3, 1, auth, (ip, 800), "tcp")


def as_tuple(c: Cred) -> tuple[int, int, frozenset[int], bool]:
    return c.uid, c.gid, c.groups, c.admin


# squash x caller -> (uid, gid, groups, admin)
TABLE = {
    ("none", "root"): (0, 0, frozenset({0, 5}), True),
    ("none", "user"): (1000, 100, frozenset({100, 0, 7}), False),
    ("none", "anon"): ANON,
    ("root", "root"): (65534, 65534, frozenset({65534, 5}), False),
    ("root", "user"): (1000, 100, frozenset({100, 65534, 7}), False),
    ("root", "anon"): ANON,
    ("all", "root"): ANON,
    ("all", "user"): ANON,
    ("all", "anon"): ANON,
}


@pytest.mark.parametrize(("squash", "who"), sorted(TABLE))
def test_squash_table(mem_store: Store, squash: str, who: str) -> None:
    export = Export.build("/", ["*"], squash=squash)
    ctx = Context(mem_store, lambda: [export])
    auth = {"root": ROOT_AUTH, "user": USER_AUTH, "anon": None}[who]
    assert as_tuple(ctx.cred(export, auth)) == TABLE[(squash, who)]


def test_anon_ids_come_from_the_export(mem_store: Store) -> None:
    e = Export.build("/", ["*"], squash="all", anonuid=4000, anongid=4001)
    ctx = Context(mem_store, lambda: [e])
    assert as_tuple(ctx.cred(e, USER_AUTH)) == (4000, 4001, frozenset({4001}), False)
    zero = Export.build("/", ["*"], squash="all", anonuid=0, anongid=0)  # Linux: anonuid=0 makes callers root
    assert Context(mem_store, lambda: [zero]).cred(zero, None).admin


def test_identity_admin_is_not_admin_over_nfs(mem_store: Store) -> None:
    mem_store.identity.add_user("alice", uid=1000, admin=True, key=False)
    e = Export.build("/", ["*"], squash="none")
    c = Context(mem_store, lambda: [e]).cred(e, USER_AUTH)
    assert c.name == "alice" and not c.admin
    assert Context(mem_store, lambda: [e]).cred(e, AuthSys(0, "h", 4242, 4242, ())).name == "uid:4242"


def _setup(store: Store) -> tuple[Attr, Attr]:
    fs = store.fs
    d = fs.mkdir(fs.root, "data", 0o777)
    f = fs.create(d.ino, "f", 0o644)
    return d, f


def test_resolve_gives_the_callers_view(mem_store: Store) -> None:
    d, f = _setup(mem_store)
    e = Export.build("/data", ["127.0.0.1"], squash="root")
    ctx = Context(mem_store, lambda: [e])
    fh = ctx.handle(e, f)
    view, export, ino = ctx.resolve(req(), fh)
    assert (export, ino) == (e, f.ino)
    assert as_tuple(view.cred) == TABLE[("root", "user")]
    view, _, _ = ctx.resolve(req(ROOT_AUTH), fh, write=True)
    assert view.cred.uid == 65534 and not view.cred.admin
    _, _, attr = ctx.resolve_attr(req(), fh)
    assert attr == mem_store.fs.getattr(f.ino)
    assert ctx.root_ino(e) == d.ino


def test_forged_and_garbled_handles_are_badhandle(mem_store: Store) -> None:
    _, f = _setup(mem_store)
    e = Export.build("/data", ["*"])
    ctx = Context(mem_store, lambda: [e])
    fh = ctx.handle(e, f)
    for i in range(len(fh)):
        bad = bytearray(fh)
        bad[i] ^= 0x01
        with pytest.raises(NfsError) as exc:
            ctx.resolve(req(), bytes(bad))
        assert exc.value.status == NFS3ERR_BADHANDLE, i
    for junk in (b"", fh[:-1], fh + b"\0", b"\0" * 64):
        with pytest.raises(NfsError) as exc:
            ctx.resolve(req(), junk)
        assert exc.value.status == NFS3ERR_BADHANDLE


def test_removed_export_makes_its_handles_stale(mem_store: Store) -> None:
    _, f = _setup(mem_store)
    data, root = Export.build("/data", ["*"]), Export.build("/", ["*"])
    current: list[Export] = [data, root]
    clock = Clock()
    calls = []

    def source() -> Sequence[Export]:
        calls.append(1)
        return list(current)
    ctx = Context(mem_store, source, clock=clock)
    fh = ctx.handle(data, f)
    assert ctx.resolve(req(), fh)[2] == f.ino
    current.remove(data)
    clock.t += 0.5
    assert ctx.resolve(req(), fh)[2] == f.ino  # within the refresh interval: not re-read yet
    n = len(calls)
    clock.t += 0.6
    with pytest.raises(NfsError) as exc:
        ctx.resolve(req(), fh)
    assert exc.value.status == NFS3ERR_STALE and len(calls) == n + 1
    assert list(ctx.exports()) == [root]
    assert ctx.resolve(req(), ctx.handle(root, f))[1] == root  # the same inode through the other export
    current.append(Export.build("/data/", ["*"]))  # exported again: same id, old handles work again
    clock.t += 2
    assert ctx.resolve(req(), fh)[2] == f.ino


def test_a_failing_exports_source_keeps_the_previous_exports(mem_store: Store) -> None:
    e = Export.build("/", ["*"])
    clock = Clock()
    state = {"fail": False}

    def source() -> Sequence[Export]:
        if state["fail"]:
            raise OSError("config half written")
        return [e]
    ctx = Context(mem_store, source, clock=clock)
    state["fail"] = True
    clock.t += 5
    assert list(ctx.exports()) == [e]


def test_colliding_export_ids_keep_the_first(mem_store: Store) -> None:
    a, b = Export.build("/e19195"), Export.build("/e12006000")
    assert a.id == b.id
    ctx = Context(mem_store, lambda: [a, b])
    assert list(ctx.exports()) == [a] and ctx.export_by_id(a.id) == a


def test_deleted_or_reused_inode_is_stale(mem_store: Store) -> None:
    d, f = _setup(mem_store)
    e = Export.build("/", ["*"])
    ctx = Context(mem_store, lambda: [e])
    fh = ctx.handle(e, f)
    mem_store.fs.unlink(d.ino, "f")
    with pytest.raises(NfsError) as exc:
        ctx.resolve(req(), fh)
    assert exc.value.status == NFS3ERR_STALE
    stale_gen = ctx.handle(e, dataclasses.replace(f, gen=f.gen + 1))  # a valid MAC, a wrong generation
    with pytest.raises(NfsError) as exc:
        ctx.resolve(req(), stale_gen)
    assert exc.value.status == NFS3ERR_STALE


def test_wrong_client_is_acces(mem_store: Store) -> None:
    _, f = _setup(mem_store)
    e = Export.build("/data", ["10.0.0.0/8", "::1"])
    ctx = Context(mem_store, lambda: [e])
    fh = ctx.handle(e, f)
    for ip in ("127.0.0.1", "192.168.1.1", "::2", "::ffff:11.0.0.1"):
        with pytest.raises(NfsError) as exc:
            ctx.resolve(req(ip=ip), fh)
        assert exc.value.status == NFS3ERR_ACCES, ip
    for ip in ("10.1.2.3", "::ffff:10.1.2.3", "::1"):
        assert ctx.resolve(req(ip=ip), fh)[2] == f.ino


def test_ro_export_is_rofs_on_write_only(mem_store: Store) -> None:
    _, f = _setup(mem_store)
    ro, rw = Export.build("/data", ["*"], access="ro"), Export.build("/", ["*"])
    ctx = Context(mem_store, lambda: [ro, rw])
    assert ctx.resolve(req(), ctx.handle(ro, f))[2] == f.ino
    with pytest.raises(NfsError) as exc:
        ctx.resolve(req(), ctx.handle(ro, f), write=True)
    assert exc.value.status == NFS3ERR_ROFS
    assert ctx.resolve(req(), ctx.handle(rw, f), write=True)[2] == f.ino


def test_squashed_root_is_denied_by_mode_bits(mem_store: Store) -> None:
    fs = mem_store.fs
    d = fs.mkdir(fs.root, "private", 0o700, uid=1000, gid=1000)
    fs.create(d.ino, "secret", 0o600, uid=1000, gid=1000)
    squashed, trusted = Export.build("/", ["*"]), Export.build("/", ["*"], squash="none")
    view, _, ino = Context(mem_store, lambda: [squashed]).resolve(req(ROOT_AUTH), squashed_handle(mem_store, d))
    with pytest.raises(PermissionDenied):
        view.lookup(ino, "secret")
    view, _, ino = Context(mem_store, lambda: [trusted]).resolve(req(ROOT_AUTH), squashed_handle(mem_store, d))
    assert view.lookup(ino, "secret").uid == 1000


def squashed_handle(store: Store, attr: Attr) -> bytes:
    return store.fs.make_handle(Export.build("/").id, attr)


def test_root_ino_follows_a_recreated_export_directory(mem_store: Store) -> None:
    fs = mem_store.fs
    d, _ = _setup(mem_store)
    e = Export.build("/data", ["*"])
    clock = Clock()
    ctx = Context(mem_store, lambda: [e], clock=clock)
    assert ctx.root_ino(e) == d.ino
    fs.rename(fs.root, "data", fs.root, "old")
    new = fs.mkdir(fs.root, "data")
    clock.t += 1.5
    assert ctx.root_ino(e) == new.ino
    fs.rmdir(fs.root, "data")
    clock.t += 1.5
    with pytest.raises(NotFound):
        ctx.root_ino(e)


def test_lookup_path(mem_store: Store) -> None:
    fs = mem_store.fs
    d, _ = _setup(mem_store)
    sub = fs.mkdir(d.ino, "sub")
    fs.symlink(d.ino, "up", "/")
    e = Export.build("/data", ["*"])
    ctx = Context(mem_store, lambda: [e])
    assert ctx.lookup_path(e, "/data").ino == d.ino
    assert ctx.lookup_path(e, "/data/sub").ino == sub.ino
    with pytest.raises(NotFound):
        ctx.lookup_path(e, "/")
    with pytest.raises(NotFound):
        ctx.lookup_path(e, "/data/nope")
    with pytest.raises(NotADirectory):
        ctx.lookup_path(e, "/data/f")
    with pytest.raises(NotADirectory):
        ctx.lookup_path(e, "/data/up")  # a symlink is never followed
