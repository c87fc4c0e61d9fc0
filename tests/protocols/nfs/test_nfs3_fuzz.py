"""Hypothesis drives every NFSv3 procedure with well-formed but arbitrary arguments (real and bogus handles,
odd names, extreme offsets, counts and modes) and with arbitrary bytes: each call gets an NFS reply that
decodes by the RFC's .x text, or GARBAGE_ARGS for bytes that are not its arguments -- never SYSTEM_ERR."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.store import Store, init_store, open_store
from protocols.nfs import nfs3_args as A
from protocols.nfs import nfs3_types as T
from protocols.nfs import rpc
from protocols.nfs.nfs3_types import DirOp, Proc, Sattr3
from protocols.nfs.xdr import Packer
from tests.protocols.nfs.nfs3_harness import ALICE, BOB, ROOT, SPEC, Nfs3, make_tree


@pytest.fixture(scope="module")
def nfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nfs3]:
    d = str(tmp_path_factory.mktemp("fuzz") / "store")
    init_store(d, targets=[f"mem:{i}" for i in range(6)], cell=64 * 1024, shard_bytes=64 * 64 * 1024)
    store: Store = open_store(d)
    make_tree(store)
    fs = store.fs
    fs.write_file(fs.resolve("/data").ino, "file", b"0123456789", mode=0o666)
    fs.symlink(fs.resolve("/data").ino, "link", "file")
    yield Nfs3(store)
    store.close()


@pytest.fixture(scope="module")
def fhs(nfs: Nfs3) -> list[bytes]:
    """Handles taken before any call mutates the tree (they may go stale later: that is part of the fuzz)."""
    real = [nfs.root(), nfs.fh("/data/alice"), nfs.fh("/data/file"), nfs.fh("/data/link"), nfs.fh("/ro/f")]
    return [*real, b"", bytes(36), bytes(64), real[2][:-1] + bytes([real[2][-1] ^ 1])]


U32 = st.integers(0, 2**32 - 1)
U64 = st.integers(0, 2**64 - 1)
NAMES = st.one_of(st.sampled_from([b"file", b"alice", b".", b"..", b"", b"new", b"a/b", b"\0", b"x" * 256]),
                  st.binary(max_size=20))
TIMES = st.one_of(st.none(), st.just(-1), st.integers(0, (2**32 - 1) * 10**9 + 10**9 - 1))
SATTR = st.builds(Sattr3, st.one_of(st.none(), U32), st.one_of(st.none(), U32), st.one_of(st.none(), U32),
                  st.one_of(st.none(), U64), TIMES, TIMES)


def args_for(proc: Proc, fhs: list[bytes]) -> st.SearchStrategy[Any]:
    fh = st.sampled_from(fhs)
    dirop = st.builds(DirOp, fh, NAMES)
    verf = st.binary(min_size=8, max_size=8)
    return {
        Proc.GETATTR: st.builds(A.FhArgs, fh),
        Proc.SETATTR: st.builds(A.SetattrArgs, fh, SATTR, st.one_of(st.none(), st.integers(0, 2**32 * 10**9 - 1))),
        Proc.LOOKUP: st.builds(A.DirOpArgs, dirop),
        Proc.ACCESS: st.builds(A.AccessArgs, fh, U32),
        Proc.READLINK: st.builds(A.FhArgs, fh),
        Proc.READ: st.builds(A.ReadArgs, fh, U64, U32),
        Proc.WRITE: st.builds(lambda f, o, c, s, d: A.WriteArgs(f, o, c, s, d), fh, U64, st.integers(0, 40),
                              st.sampled_from(list(T.StableHow)), st.binary(max_size=30)),
        Proc.CREATE: st.one_of(
            st.builds(A.CreateArgs, dirop, st.sampled_from([T.CreateMode.UNCHECKED, T.CreateMode.GUARDED]), SATTR),
            st.builds(lambda d, v: A.CreateArgs(d, T.CreateMode.EXCLUSIVE, verf=v), dirop, verf)),
        Proc.MKDIR: st.builds(A.MkdirArgs, dirop, SATTR),
        Proc.SYMLINK: st.builds(A.SymlinkArgs, dirop, SATTR, st.binary(max_size=10)),
        Proc.MKNOD: st.builds(A.MknodArgs, dirop, st.sampled_from(list(T.Ftype3)), SATTR,
                              st.tuples(U32, U32)),
        Proc.REMOVE: st.builds(A.DirOpArgs, dirop),
        Proc.RMDIR: st.builds(A.DirOpArgs, dirop),
        Proc.RENAME: st.builds(A.RenameArgs, dirop, dirop),
        Proc.LINK: st.builds(A.LinkArgs, fh, dirop),
        Proc.READDIR: st.builds(A.ReaddirArgs, fh, U64, verf, U32),
        Proc.READDIRPLUS: st.builds(A.ReaddirplusArgs, fh, U64, verf, U32, U32),
        Proc.FSSTAT: st.builds(A.FhArgs, fh),
        Proc.FSINFO: st.builds(A.FhArgs, fh),
        Proc.PATHCONF: st.builds(A.FhArgs, fh),
        Proc.COMMIT: st.builds(A.CommitArgs, fh, U64, U32),
    }[proc]


PROCS = [p for p in Proc if p != Proc.NULL]


@pytest.mark.parametrize("proc", PROCS, ids=[p.name for p in PROCS])
def test_well_formed_arguments_always_get_an_nfs_reply(nfs: Nfs3, fhs: list[bytes], proc: Proc) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(args=args_for(proc, fhs), auth=st.sampled_from([ROOT, ALICE, BOB, None]))
    def run(args: Any, auth: Any) -> None:
        p = Packer()
        args.pack(p)
        reply = nfs.raw(proc, p.data(), auth)
        assert reply.ok, f"{proc.name} {args} -> accept stat {reply.stat}"
        SPEC.decode(SPEC.procs[f"NFSPROC3_{proc.name}"][2], bytes(reply.body))
    run()


@pytest.mark.parametrize("proc", PROCS, ids=[p.name for p in PROCS])
def test_arbitrary_bytes_get_a_reply_or_garbage_args(nfs: Nfs3, proc: Proc) -> None:
    fh = nfs.root()

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(tail=st.binary(max_size=120))
    def run(tail: bytes) -> None:
        p = Packer()
        p.pack_opaque(fh)
        reply = nfs.raw(proc, p.data() + tail, ROOT)
        assert reply.ok or reply.stat == rpc.GARBAGE_ARGS, f"{proc.name} {tail!r} -> accept stat {reply.stat}"
        if reply.ok:
            SPEC.decode(SPEC.procs[f"NFSPROC3_{proc.name}"][2], bytes(reply.body))
    run()
