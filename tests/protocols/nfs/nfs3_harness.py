"""A raw NFSv3 client for handler tests: calls go through the real RPC dispatch path as bytes, and
replies are decoded by the RFC's ``.x`` text (xspec), not by the server's own codecs.

The store it serves (built by :func:`make_tree`)::

    /data            root 0777       export "/data" (rw, squash none: AUTH_SYS uid 0 is root)
    /data/alice      alice 0700
    /data/shared     root 1777 (sticky)
    /other           root 0777       export "/other" (rw): another file system to the client
    /ro              root 0755       export "/ro" (ro)
    /ro/f            root 0644, "read only"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.fs import Attr
from core.store import Store
from protocols.nfs import rpc
from protocols.nfs.context import Context
from protocols.nfs.dispatch import AuthSys, handle_record, index
from protocols.nfs.exports import Export
from protocols.nfs.nfs3 import program
from protocols.nfs.nfs3_args import Args
from protocols.nfs.nfs3_types import NFS_PROGRAM, NFS_V3, Proc
from protocols.nfs.xdr import Packer
from tests.protocols.nfs.xspec import Spec

SPEC = Spec.load(Path(__file__).parent / "data" / "nfs3.x")
ROOT = AuthSys(1, "client", 0, 0, (0,))
ALICE = AuthSys(1, "client", 1000, 1000, (1000,))
BOB = AuthSys(1, "client", 1001, 1001, (1001,))
DATA = Export.build("/data", ["*"], squash="none")
OTHER = Export.build("/other", ["*"], squash="none")
RO = Export.build("/ro", ["*"], access="ro", squash="none")
EXPORTS = [DATA, OTHER, RO]


def make_tree(store: Store) -> None:
    fs = store.fs
    data = fs.mkdir(fs.root, "data", 0o777)
    fs.mkdir(data.ino, "alice", 0o700, uid=1000, gid=1000)
    fs.mkdir(data.ino, "shared", 0o1777)
    fs.mkdir(fs.root, "other", 0o777)
    ro = fs.mkdir(fs.root, "ro", 0o755)
    fs.write_file(ro.ino, "f", b"read only")


class Reply(dict[str, Any]):
    """A decoded ``*3res``: ``r.status``, ``r.ok`` (the resok arm, asserting success), ``r.fail``."""

    @property
    def status(self) -> int:
        return int(self["status"])

    @property
    def ok(self) -> dict[str, Any]:
        assert self.status == 0, f"status {self.status}: {dict(self)}"
        return dict(self["resok"])

    @property
    def fail(self) -> dict[str, Any]:
        assert self.status != 0, "the call succeeded"
        return dict(self.get("resfail", {}))


class Nfs3:
    """Calls NFSv3 procedures as AUTH_SYS ``auth`` from ``ip``, through dispatch.handle_record."""

    def __init__(self, store: Store, exports: list[Export] | None = None, transport: str = "tcp") -> None:
        self.store = store
        self.transport = transport
        self.exports = list(EXPORTS if exports is None else exports)
        self.ctx = Context(store, lambda: self.exports)
        self.progs = index([program(self.ctx)])
        self.xid = 0
        self.last_body = b""  # the last reply's results, as encoded

    def raw(self, proc: int, args: bytes, auth: AuthSys | None = ALICE, ip: str = "127.0.0.1") -> rpc.Reply:
        self.xid += 1
        out = handle_record(self.progs, rpc.encode_call(self.xid, NFS_PROGRAM, NFS_V3, proc, args, auth),
                            (ip, 800), self.transport)
        assert out is not None
        return rpc.decode_reply(b"".join(out))

    def call(self, proc: Proc, args: Args, auth: AuthSys | None = ALICE, ip: str = "127.0.0.1") -> Reply:
        p = Packer()
        args.pack(p)
        reply = self.raw(proc, p.data(), auth, ip)
        assert reply.ok, reply
        self.last_body = bytes(reply.body)
        return Reply(SPEC.decode(SPEC.procs[f"NFSPROC3_{proc.name}"][2], self.last_body))

    def root(self, export: Export = DATA) -> bytes:
        return self.ctx.handle(export, self.store.fs.resolve(export.path))

    def fh(self, path: str, export: Export = DATA) -> bytes:
        return self.ctx.handle(export, self.store.fs.resolve(path))

    def attr(self, path: str) -> Attr:
        return self.store.fs.resolve(path)


def fh_of(resok: dict[str, Any], key: str = "obj") -> bytes:
    """The handle in a post_op_fh3 field (CREATE and friends) or an nfs_fh3 field (LOOKUP's ``object``)."""
    v = resok[key]
    if "handle_follows" in v:
        assert v["handle_follows"], "no handle"
        return bytes(v["handle"]["data"])
    return bytes(v["data"])


def attrs(post_op: dict[str, Any]) -> dict[str, Any]:
    assert post_op["attributes_follow"], "no attributes"
    return dict(post_op["attributes"])


def ns(t: dict[str, int]) -> int:
    return t["seconds"] * 1_000_000_000 + t["nseconds"]
