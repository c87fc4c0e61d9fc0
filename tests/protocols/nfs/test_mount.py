"""MOUNT v3 (and v1/v2 without MNT) through the dispatch path, bytes in and bytes out."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from core.fs import Attr
from core.store import Store
from protocols.nfs import mount as M
from protocols.nfs import rpc
from protocols.nfs.context import Context
from protocols.nfs.dispatch import AuthSys, Program, Request, handle_record, index
from protocols.nfs.exports import Export
from protocols.nfs.xdr import Packer

USER = AuthSys(1, "client", 1000, 1000, (1000,))


def path_arg(path: str | bytes) -> bytes:
    p = Packer()
    p.pack_string(path.encode() if isinstance(path, str) else path)
    return p.data()


class MountClient:
    """Calls MOUNT procedures through dispatch.handle_record, as a peer at ``ip``."""

    def __init__(self, program: Program) -> None:
        self.progs = index([program])

    def call(self, proc: int, args: bytes = b"", *, vers: int = 3, ip: str = "127.0.0.1",
             auth: AuthSys | None = USER) -> rpc.Reply:
        out = handle_record(self.progs, rpc.encode_call(9, M.PROG, vers, proc, args, auth), (ip, 700), "tcp")
        assert out is not None
        return rpc.decode_reply(b"".join(out))

    def mnt(self, path: str | bytes, *, ip: str = "127.0.0.1", auth: AuthSys | None = USER
            ) -> tuple[int, bytes, list[int]]:
        r = self.call(M.MNT, path_arg(path), ip=ip, auth=auth)
        assert r.ok
        return M.unpack_mountres(r.body)

    def dump(self, *, vers: int = 3) -> list[tuple[str, str]]:
        return M.unpack_mountlist(self.call(M.DUMP, vers=vers).body)

    def exports(self, *, vers: int = 3) -> list[tuple[str, list[str]]]:
        r = self.call(M.EXPORT, vers=vers)
        assert r.ok
        return M.unpack_exports(r.body)


@pytest.fixture
def setup(mem_store: Store) -> tuple[Store, Context, MountClient, dict[str, Attr]]:
    fs = mem_store.fs
    data = fs.mkdir(fs.root, "data", 0o777)
    sub = fs.mkdir(data.ino, "sub")
    fs.create(data.ino, "file")
    fs.symlink(data.ino, "link", "/")
    priv = fs.mkdir(fs.root, "priv")
    exports: Sequence[Export] = [Export.build("/data", ["127.0.0.1", "::1"]),
                                 Export.build("/priv", ["10.0.0.0/8"], access="ro")]
    ctx = Context(mem_store, lambda: exports)
    return mem_store, ctx, MountClient(M.program(ctx)), {"data": data, "sub": sub, "priv": priv}


def test_mnt_export_and_subdirectory(setup: tuple[Store, Context, MountClient, dict[str, Attr]]) -> None:
    store, ctx, c, a = setup
    status, fh, flavors = c.mnt("/data")
    assert (status, flavors) == (M.MNT3_OK, [rpc.AUTH_SYS])
    assert store.fs.parse_handle(fh) == (Export.build("/data").id, a["data"].ino, a["data"].gen)
    status, fh, _ = c.mnt("/data/sub/")
    assert status == M.MNT3_OK and store.fs.parse_handle(fh)[1] == a["sub"].ino
    _, export, ino = ctx.resolve(rpc_request(), fh)
    assert (export.path, ino) == ("/data", a["sub"].ino)
    assert c.mnt("/data", ip="::1")[0] == M.MNT3_OK
    assert c.mnt("/data", ip="::ffff:127.0.0.1")[0] == M.MNT3_OK
    assert c.mnt("/data", auth=None)[0] == M.MNT3_OK


def rpc_request() -> Request:
    return Request(1, 100003, 3, 1, USER, ("127.0.0.1", 700), "tcp")


@pytest.mark.parametrize(("path", "ip", "status"), [
    ("/priv", "127.0.0.1", M.MNT3ERR_ACCES),      # exported, not to this client
    ("/data", "10.1.1.1", M.MNT3ERR_ACCES),
    ("/data/sub", "192.168.0.1", M.MNT3ERR_ACCES),
    ("/", "127.0.0.1", M.MNT3ERR_NOENT),          # not exported
    ("/database", "127.0.0.1", M.MNT3ERR_NOENT),
    ("/data/missing", "127.0.0.1", M.MNT3ERR_NOENT),
    ("/data/file", "127.0.0.1", M.MNT3ERR_NOTDIR),
    ("/data/link", "127.0.0.1", M.MNT3ERR_NOTDIR),  # symlinks are not followed (this one points at /)
    ("/data/../priv", "127.0.0.1", M.MNT3ERR_INVAL),
    ("data", "127.0.0.1", M.MNT3ERR_NOENT),
    ("", "127.0.0.1", M.MNT3ERR_NOENT),
])
def test_mnt_refusals(setup: tuple[Store, Context, MountClient, dict[str, Attr]], path: str, ip: str,
                      status: int) -> None:
    _, _, c, _ = setup
    assert c.mnt(path, ip=ip)[0] == status
    assert c.dump() == []


def test_mnt_of_a_missing_export_directory(mem_store: Store) -> None:
    ctx = Context(mem_store, lambda: [Export.build("/gone")])
    assert MountClient(M.program(ctx)).mnt("/gone")[0] == M.MNT3ERR_NOENT


def test_dump_umnt_umntall(setup: tuple[Store, Context, MountClient, dict[str, Attr]]) -> None:
    _, _, c, _ = setup
    c.mnt("/data")
    c.mnt("/data/sub")
    c.mnt("/priv", ip="10.0.0.5")
    assert c.dump() == [("127.0.0.1", "/data"), ("127.0.0.1", "/data/sub"), ("10.0.0.5", "/priv")]
    assert c.call(M.UMNT, path_arg("/data/sub/")).body == b""
    assert c.dump(vers=1) == [("127.0.0.1", "/data"), ("10.0.0.5", "/priv")]
    assert c.call(M.UMNT, path_arg("not/a/path")).ok
    assert c.call(M.UMNTALL, ip="10.0.0.5").ok
    assert c.dump() == [("127.0.0.1", "/data")]


def test_export_lists_paths_and_client_specs(setup: tuple[Store, Context, MountClient, dict[str, Attr]]) -> None:
    _, _, c, _ = setup
    want = [("/data", ["127.0.0.1", "::1"]), ("/priv", ["10.0.0.0/8"])]
    assert c.exports() == want
    assert c.exports(vers=1) == want and c.exports(vers=2) == want
    assert c.call(M.EXPORTALL, vers=1).body == c.call(M.EXPORT, vers=1).body


def test_versions_and_bad_arguments(setup: tuple[Store, Context, MountClient, dict[str, Attr]]) -> None:
    _, _, c, _ = setup
    assert c.call(M.NULL).ok and c.call(M.NULL).body == b""
    assert c.call(M.MNT, path_arg("/data"), vers=1).stat == rpc.PROC_UNAVAIL  # v1 fhandle is 32 bytes
    assert c.call(M.EXPORTALL, vers=3).stat == rpc.PROC_UNAVAIL
    assert c.call(M.NULL, vers=4).mismatch == (1, 3)
    assert c.call(M.MNT, path_arg(b"/" + b"x" * 1024)).stat == rpc.GARBAGE_ARGS  # dirpath<1024>
    assert c.call(M.MNT, b"\0\0\0\x10/da").stat == rpc.GARBAGE_ARGS  # length past the end
    assert c.mnt(b"/data\xff")[0] == M.MNT3ERR_NOENT  # not UTF-8: a name that does not exist


def test_mount_list_cap() -> None:
    m = M.MountList(limit=2)
    for i in range(3):
        m.add(f"10.0.0.{i}", "/")
    assert m.entries() == [("10.0.0.1", "/"), ("10.0.0.2", "/")]
