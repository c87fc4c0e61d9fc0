"""The NFSv3 codecs against RFC 1813's own XDR text (data/nfs3.x), read by an independent interpreter.

Every argument and result the server decodes or encodes is compared byte for byte with
what the ``.x`` definitions give for the same values, so a field out of order, of the
wrong width or missing from one arm fails here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protocols.nfs.errors as E
from core.fs import NOW, Attr, FileType
from protocols.nfs import nfs3_args as A
from protocols.nfs import nfs3_res as R
from protocols.nfs import nfs3_types as T
from protocols.nfs.xdr import Packer, Unpacker, XdrError
from tests.protocols.nfs.xspec import Spec

SPEC = Spec.load(Path(__file__).parent / "data" / "nfs3.x")
FH = bytes(range(36))
FH2 = bytes(range(100, 136))
B = 1_000_000_000


def attr(ino: int = 7, kind: FileType = FileType.REG, size: int = 5000, rdev: int = 0) -> Attr:
    return Attr(ino, 3, kind, 0o104755, 2, 1000, 100, size, rdev, 11 * B + 1, 22 * B + 2, 33 * B + 3, 44 * B)


def packed(obj: Any) -> bytes:
    p = Packer()
    obj.pack(p)
    return p.data()


# -- the expected values, written from the RFC's field names ---------------------------------------------------
def t3(ns: int) -> dict[str, int]:
    return {"seconds": ns // B, "nseconds": ns % B}


def fattr_x(a: Attr, fsid: int) -> dict[str, Any]:
    return {"type": T.FTYPE3[a.type], "mode": a.mode & 0o7777, "nlink": a.nlink, "uid": a.uid, "gid": a.gid,
            "size": a.size, "used": (a.size + 511) // 512 * 512,
            "rdev": {"specdata1": os.major(a.rdev), "specdata2": os.minor(a.rdev)}, "fsid": fsid, "fileid": a.ino,
            "atime": t3(a.atime_ns), "mtime": t3(a.mtime_ns), "ctime": t3(a.ctime_ns)}


def post_x(a: Attr | None, fsid: int) -> dict[str, Any]:
    return {"attributes_follow": False} if a is None else {"attributes_follow": True, "attributes": fattr_x(a, fsid)}


def pre_x(a: Attr | None) -> dict[str, Any]:
    if a is None:
        return {"attributes_follow": False}
    return {"attributes_follow": True, "attributes": {"size": a.size, "mtime": t3(a.mtime_ns), "ctime": t3(a.ctime_ns)}}


def wcc_x(before: Attr | None, after: Attr | None, fsid: int) -> dict[str, Any]:
    return {"before": pre_x(before), "after": post_x(after, fsid)}


def fh_x(fh: bytes) -> dict[str, Any]:
    return {"data": fh}


def dirop_x(d: T.DirOp) -> dict[str, Any]:
    return {"dir": fh_x(d.dir), "name": d.name}


def time_x(v: int | None) -> dict[str, Any]:
    if v is None:
        return {"set_it": T.TimeHow.DONT_CHANGE}
    if v == NOW:
        return {"set_it": T.TimeHow.SET_TO_SERVER_TIME}
    return {"set_it": T.TimeHow.SET_TO_CLIENT_TIME, "atime": t3(v)}


def sattr_x(s: T.Sattr3) -> dict[str, Any]:
    def opt(v: int | None, name: str) -> dict[str, Any]:
        return {"set_it": False} if v is None else {"set_it": True, name: v}
    mt = time_x(s.mtime)
    if "atime" in mt:
        mt["mtime"] = mt.pop("atime")
    return {"mode": opt(s.mode, "mode"), "uid": opt(s.uid, "uid"), "gid": opt(s.gid, "gid"),
            "size": opt(s.size, "size"), "atime": time_x(s.atime), "mtime": mt}


# -- constants and fixed layouts -------------------------------------------------------------------------------
def test_spec_file_is_complete() -> None:
    assert len(SPEC.procs) == 22
    assert {n: v[0] for n, v in SPEC.procs.items()} == {f"NFSPROC3_{p.name}": p.value for p in T.Proc}


def test_enum_values_match_the_rfc() -> None:
    stat = SPEC.enums["nfsstat3"]
    ours = {k: v for k, v in vars(E).items() if k == "NFS3_OK" or k.startswith("NFS3ERR_")}
    assert ours == stat
    assert {f"NF3{m.name}": m.value for m in T.Ftype3} == SPEC.enums["ftype3"]
    assert {m.name: m.value for m in T.StableHow} == SPEC.enums["stable_how"]
    assert {m.name: m.value for m in T.CreateMode} == SPEC.enums["createmode3"]
    assert {m.name: m.value for m in T.TimeHow} == SPEC.enums["time_how"]
    consts = {k: v for k, v in vars(T).items() if k.startswith(("ACCESS3_", "FSF3_", "NFS3_")) and k != "ACCESS3_ALL"}
    assert consts == SPEC.consts
    assert sum(v for k, v in SPEC.consts.items() if k.startswith("ACCESS3_")) == T.ACCESS3_ALL


def test_every_core_file_type_has_its_ftype3() -> None:
    assert set(T.FTYPE3) == set(FileType)
    assert sorted(T.FTYPE3.values()) == sorted(T.Ftype3)


def test_fixed_sizes() -> None:
    assert SPEC.size("fattr3") == T.FATTR3_SIZE == 84
    assert SPEC.size("wcc_attr") == T.WCC_ATTR_SIZE == 24
    assert SPEC.size("nfstime3") == 8 and SPEC.size("specdata3") == 8
    assert SPEC.size("post_op_attr") is None and SPEC.size("nfs_fh3") is None


@pytest.mark.parametrize("kind", list(FileType))
def test_fattr3_fields(kind: FileType) -> None:
    a = attr(kind=kind, rdev=os.makedev(259, 70000) if kind in (FileType.CHR, FileType.BLK) else 0)
    raw = T.fattr3(a, 0xABCDEF)
    assert SPEC.decode("fattr3", raw) == fattr_x(a, 0xABCDEF)
    assert SPEC.encode("fattr3", fattr_x(a, 0xABCDEF)) == raw


def test_times_out_of_nfstime3_range_are_clamped() -> None:
    a = Attr(1, 1, FileType.REG, 0o644, 1, 0, 0, 0, 0, -5 * B, (1 << 32) * B + 7, 0, 0)
    d = SPEC.decode("fattr3", T.fattr3(a, 1))
    assert d["atime"] == {"seconds": 0, "nseconds": 0}
    assert d["mtime"] == {"seconds": 0xFFFFFFFF, "nseconds": B - 1}


def test_post_op_pre_op_wcc_and_fh() -> None:
    a, b = attr(size=1), attr(size=2)
    for before, after in ((None, None), (a, None), (None, b), (a, b)):
        p = Packer()
        T.pack_wcc_data(p, T.WccData(before, after), 5)
        assert SPEC.decode("wcc_data", p.data()) == wcc_x(before, after, 5)
    for fh in (None, b"", FH, bytes(64)):
        p = Packer()
        T.pack_post_op_fh3(p, fh)
        want = {"handle_follows": False} if fh is None else {"handle_follows": True, "handle": fh_x(fh)}
        assert SPEC.decode("post_op_fh3", p.data()) == want
    with pytest.raises(XdrError):
        T.pack_fh3(Packer(), bytes(65))


SATTRS = [T.Sattr3(), T.Sattr3(mode=0o4755), T.Sattr3(uid=0, gid=7), T.Sattr3(size=1 << 40),
          T.Sattr3(atime=NOW, mtime=NOW), T.Sattr3(atime=5 * B + 6, mtime=7 * B + 8),
          T.Sattr3(0o600, 1, 2, 0, NOW, 9 * B)]


@pytest.mark.parametrize("s", SATTRS)
def test_sattr3_against_the_rfc(s: T.Sattr3) -> None:
    raw = packed(s)
    assert raw == SPEC.encode("sattr3", sattr_x(s))
    assert SPEC.decode("sattr3", raw) == sattr_x(s)
    u = Unpacker(raw)
    assert T.Sattr3.unpack(u) == s
    u.done()


def test_sattr3_bad_time_how_and_nseconds_are_bad_xdr() -> None:
    bad_how = bytes(16) + (3).to_bytes(4, "big") + bytes(4)
    with pytest.raises(XdrError):
        T.Sattr3.unpack(Unpacker(bad_how))
    bad_ns = bytes(16) + (2).to_bytes(4, "big") + (1).to_bytes(4, "big") + B.to_bytes(4, "big") + bytes(4)
    with pytest.raises(XdrError):
        T.Sattr3.unpack(Unpacker(bad_ns))


# -- every procedure's arguments -------------------------------------------------------------------------------
D1, D2 = T.DirOp(FH, b"name"), T.DirOp(FH2, b"\xffraw bytes\x00ok")
S = T.Sattr3(mode=0o640, mtime=NOW)
ARG_CASES: list[tuple[str, Any, dict[str, Any]]] = [
    ("GETATTR3args", A.FhArgs(FH), {"object": fh_x(FH)}),
    ("SETATTR3args", A.SetattrArgs(FH, S), {"object": fh_x(FH), "new_attributes": sattr_x(S),
                                            "guard": {"check": False}}),
    ("SETATTR3args", A.SetattrArgs(FH, T.Sattr3(size=0), 12 * B + 34),
     {"object": fh_x(FH), "new_attributes": sattr_x(T.Sattr3(size=0)),
      "guard": {"check": True, "obj_ctime": t3(12 * B + 34)}}),
    ("LOOKUP3args", A.DirOpArgs(D2), {"what": dirop_x(D2)}),
    ("ACCESS3args", A.AccessArgs(FH, 0x3F), {"object": fh_x(FH), "access": 0x3F}),
    ("READLINK3args", A.FhArgs(FH), {"symlink": fh_x(FH)}),
    ("READ3args", A.ReadArgs(FH, 1 << 40, 65536), {"file": fh_x(FH), "offset": 1 << 40, "count": 65536}),
    ("WRITE3args", A.WriteArgs(FH, 9, 3, T.StableHow.DATA_SYNC, b"abc"),
     {"file": fh_x(FH), "offset": 9, "count": 3, "stable": 1, "data": b"abc"}),
    ("CREATE3args", A.CreateArgs(D1, T.CreateMode.GUARDED, S),
     {"where": dirop_x(D1), "how": {"mode": 1, "obj_attributes": sattr_x(S)}}),
    ("CREATE3args", A.CreateArgs(D1, T.CreateMode.UNCHECKED, T.Sattr3()),
     {"where": dirop_x(D1), "how": {"mode": 0, "obj_attributes": sattr_x(T.Sattr3())}}),
    ("CREATE3args", A.CreateArgs(D1, T.CreateMode.EXCLUSIVE, verf=b"12345678"),
     {"where": dirop_x(D1), "how": {"mode": 2, "verf": b"12345678"}}),
    ("MKDIR3args", A.MkdirArgs(D1, S), {"where": dirop_x(D1), "attributes": sattr_x(S)}),
    ("SYMLINK3args", A.SymlinkArgs(D1, S, b"../t"),
     {"where": dirop_x(D1), "symlink": {"symlink_attributes": sattr_x(S), "symlink_data": b"../t"}}),
    ("MKNOD3args", A.MknodArgs(D1, T.Ftype3.CHR, S, (1, 3)),
     {"where": dirop_x(D1), "what": {"type": 4, "device": {"dev_attributes": sattr_x(S),
                                                            "spec": {"specdata1": 1, "specdata2": 3}}}}),
    ("MKNOD3args", A.MknodArgs(D1, T.Ftype3.FIFO, S),
     {"where": dirop_x(D1), "what": {"type": 7, "pipe_attributes": sattr_x(S)}}),
    ("MKNOD3args", A.MknodArgs(D1, T.Ftype3.DIR), {"where": dirop_x(D1), "what": {"type": 2}}),
    ("REMOVE3args", A.DirOpArgs(D1), {"object": dirop_x(D1)}),
    ("RMDIR3args", A.DirOpArgs(D1), {"object": dirop_x(D1)}),
    ("RENAME3args", A.RenameArgs(D1, D2), {"from": dirop_x(D1), "to": dirop_x(D2)}),
    ("LINK3args", A.LinkArgs(FH2, D1), {"file": fh_x(FH2), "link": dirop_x(D1)}),
    ("READDIR3args", A.ReaddirArgs(FH, 77, b"verifier", 4096),
     {"dir": fh_x(FH), "cookie": 77, "cookieverf": b"verifier", "count": 4096}),
    ("READDIRPLUS3args", A.ReaddirplusArgs(FH, 0, bytes(8), 512, 8192),
     {"dir": fh_x(FH), "cookie": 0, "cookieverf": bytes(8), "dircount": 512, "maxcount": 8192}),
    ("FSSTAT3args", A.FhArgs(FH), {"fsroot": fh_x(FH)}),
    ("FSINFO3args", A.FhArgs(FH), {"fsroot": fh_x(FH)}),
    ("PATHCONF3args", A.FhArgs(FH), {"object": fh_x(FH)}),
    ("COMMIT3args", A.CommitArgs(FH, 0, 0), {"file": fh_x(FH), "offset": 0, "count": 0}),
]


@pytest.mark.parametrize(("xname", "args", "want"), ARG_CASES, ids=[c[0] for c in ARG_CASES])
def test_args_against_the_rfc(xname: str, args: Any, want: dict[str, Any]) -> None:
    raw = packed(args)
    assert raw == SPEC.encode(xname, want)
    assert SPEC.decode(xname, raw) == want
    u = Unpacker(raw)
    back = type(args).unpack(u)
    u.done()
    if isinstance(args, A.WriteArgs):
        assert isinstance(back, A.WriteArgs) and bytes(back.data) == bytes(args.data)
        back = A.WriteArgs(back.file, back.offset, back.count, back.stable, bytes(back.data))
    assert back == args


def test_every_procedure_has_argument_cases() -> None:
    arg_types = {SPEC.procs[f"NFSPROC3_{p.name}"][1] for p in T.Proc if p != T.Proc.NULL}
    assert arg_types == {c[0] for c in ARG_CASES}
    for p, cls in A.ARGS.items():
        assert any(type(c[1]) is cls and c[0] == SPEC.procs[f"NFSPROC3_{p.name}"][1] for c in ARG_CASES), p


def test_oversized_handle_and_unknown_enums_are_bad_xdr() -> None:
    p = Packer()
    p.pack_opaque(bytes(65))
    with pytest.raises(XdrError):
        A.FhArgs.unpack(Unpacker(p.data()))
    raw = bytearray(packed(A.CreateArgs(D1, T.CreateMode.EXCLUSIVE, verf=bytes(8))))
    raw[48:52] = (3).to_bytes(4, "big")  # createmode3 after fh (4+36) and name (4+4)
    with pytest.raises(XdrError):
        A.CreateArgs.unpack(Unpacker(bytes(raw)))
    raw = bytearray(packed(A.WriteArgs(FH, 0, 1, T.StableHow.UNSTABLE, b"x")))
    raw[52:56] = (9).to_bytes(4, "big")
    with pytest.raises(XdrError):
        A.WriteArgs.unpack(Unpacker(bytes(raw)))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted({c for c in A.ARGS.values()}, key=lambda c: c.__name__)), st.binary(max_size=200))
def test_fuzzed_arguments_decode_or_raise_xdr_error(cls: Any, data: bytes) -> None:
    try:
        cls.unpack(Unpacker(data))
    except XdrError:
        pass


# -- every procedure's results ---------------------------------------------------------------------------------
F = 42
OBJ, DIR = attr(9), attr(2, FileType.DIR, 4096)
W = T.WccData(attr(2, FileType.DIR, 10), attr(2, FileType.DIR, 20))


def res_cases() -> list[tuple[str, R.Res, dict[str, Any]]]:
    ok, bad = E.NFS3_OK, E.NFS3ERR_ACCES
    wccx = wcc_x(W.before, W.after, F)
    none_wcc = wcc_x(None, None, F)
    entries = [R.Entry3(1, b".", 1), R.Entry3(2, b"..", 2), R.Entry3(9, b"a file", 12)]
    plus = [R.EntryPlus3(9, b"x", 3, OBJ, FH), R.EntryPlus3(10, b"no attrs", 4, None, None)]
    return [
        ("GETATTR3res", R.GetattrRes(ok, F, OBJ), {"status": 0, "resok": {"obj_attributes": fattr_x(OBJ, F)}}),
        ("GETATTR3res", R.GetattrRes(E.NFS3ERR_STALE, F), {"status": 70}),
        ("SETATTR3res", R.WccRes(ok, F, W), {"status": 0, "resok": {"obj_wcc": wccx}}),
        ("SETATTR3res", R.WccRes(E.NFS3ERR_NOT_SYNC, F, W), {"status": 10002, "resfail": {"obj_wcc": wccx}}),
        ("LOOKUP3res", R.LookupRes(ok, F, FH, OBJ, DIR),
         {"status": 0, "resok": {"object": fh_x(FH), "obj_attributes": post_x(OBJ, F),
                                 "dir_attributes": post_x(DIR, F)}}),
        ("LOOKUP3res", R.LookupRes(E.NFS3ERR_NOENT, F, dir=DIR),
         {"status": 2, "resfail": {"dir_attributes": post_x(DIR, F)}}),
        ("ACCESS3res", R.AccessRes(ok, F, OBJ, 0x21), {"status": 0, "resok": {"obj_attributes": post_x(OBJ, F),
                                                                             "access": 0x21}}),
        ("ACCESS3res", R.AccessRes(bad, F), {"status": 13, "resfail": {"obj_attributes": post_x(None, F)}}),
        ("READLINK3res", R.ReadlinkRes(ok, F, OBJ, b"/t/x"),
         {"status": 0, "resok": {"symlink_attributes": post_x(OBJ, F), "data": b"/t/x"}}),
        ("READLINK3res", R.ReadlinkRes(E.NFS3ERR_INVAL, F, OBJ),
         {"status": 22, "resfail": {"symlink_attributes": post_x(OBJ, F)}}),
        ("READ3res", R.ReadRes(ok, F, OBJ, b"hello", True),
         {"status": 0, "resok": {"file_attributes": post_x(OBJ, F), "count": 5, "eof": True, "data": b"hello"}}),
        ("READ3res", R.ReadRes(E.NFS3ERR_ISDIR, F, DIR),
         {"status": 21, "resfail": {"file_attributes": post_x(DIR, F)}}),
        ("WRITE3res", R.WriteRes(ok, F, W, 3, T.StableHow.FILE_SYNC, b"wverf!!!"),
         {"status": 0, "resok": {"file_wcc": wccx, "count": 3, "committed": 2, "verf": b"wverf!!!"}}),
        ("WRITE3res", R.WriteRes(E.NFS3ERR_NOSPC, F, W), {"status": 28, "resfail": {"file_wcc": wccx}}),
        ("CREATE3res", R.CreateRes(ok, F, FH, OBJ, W),
         {"status": 0, "resok": {"obj": {"handle_follows": True, "handle": fh_x(FH)},
                                 "obj_attributes": post_x(OBJ, F), "dir_wcc": wccx}}),
        ("CREATE3res", R.CreateRes(E.NFS3ERR_EXIST, F, dir_wcc=W), {"status": 17, "resfail": {"dir_wcc": wccx}}),
        ("MKDIR3res", R.CreateRes(ok, F, None, None, T.WccData()),
         {"status": 0, "resok": {"obj": {"handle_follows": False}, "obj_attributes": post_x(None, F),
                                 "dir_wcc": none_wcc}}),
        ("MKDIR3res", R.CreateRes(E.NFS3ERR_NAMETOOLONG, F), {"status": 63, "resfail": {"dir_wcc": none_wcc}}),
        ("SYMLINK3res", R.CreateRes(ok, F, FH2, OBJ, W),
         {"status": 0, "resok": {"obj": {"handle_follows": True, "handle": fh_x(FH2)},
                                 "obj_attributes": post_x(OBJ, F), "dir_wcc": wccx}}),
        ("SYMLINK3res", R.CreateRes(bad, F, dir_wcc=W), {"status": 13, "resfail": {"dir_wcc": wccx}}),
        ("MKNOD3res", R.CreateRes(ok, F, FH, OBJ, W),
         {"status": 0, "resok": {"obj": {"handle_follows": True, "handle": fh_x(FH)},
                                 "obj_attributes": post_x(OBJ, F), "dir_wcc": wccx}}),
        ("MKNOD3res", R.CreateRes(E.NFS3ERR_NOTSUPP, F, dir_wcc=W), {"status": 10004, "resfail": {"dir_wcc": wccx}}),
        ("REMOVE3res", R.WccRes(ok, F, W), {"status": 0, "resok": {"dir_wcc": wccx}}),
        ("REMOVE3res", R.WccRes(E.NFS3ERR_NOENT, F, W), {"status": 2, "resfail": {"dir_wcc": wccx}}),
        ("RMDIR3res", R.WccRes(ok, F, T.WccData(None, DIR)), {"status": 0, "resok": {"dir_wcc": wcc_x(None, DIR, F)}}),
        ("RMDIR3res", R.WccRes(E.NFS3ERR_NOTEMPTY, F, W), {"status": 66, "resfail": {"dir_wcc": wccx}}),
        ("RENAME3res", R.RenameRes(ok, F, W, T.WccData()),
         {"status": 0, "resok": {"fromdir_wcc": wccx, "todir_wcc": none_wcc}}),
        ("RENAME3res", R.RenameRes(E.NFS3ERR_XDEV, F, W, W),
         {"status": 18, "resfail": {"fromdir_wcc": wccx, "todir_wcc": wccx}}),
        ("LINK3res", R.LinkRes(ok, F, OBJ, W),
         {"status": 0, "resok": {"file_attributes": post_x(OBJ, F), "linkdir_wcc": wccx}}),
        ("LINK3res", R.LinkRes(E.NFS3ERR_MLINK, F, OBJ, W),
         {"status": 31, "resfail": {"file_attributes": post_x(OBJ, F), "linkdir_wcc": wccx}}),
        ("READDIR3res", R.ReaddirRes(ok, F, DIR, b"cookieve", entries, True),
         {"status": 0, "resok": {"dir_attributes": post_x(DIR, F), "cookieverf": b"cookieve", "reply": {
             "entries": [{"fileid": e.fileid, "name": e.name, "cookie": e.cookie} for e in entries], "eof": True}}}),
        ("READDIR3res", R.ReaddirRes(E.NFS3ERR_BAD_COOKIE, F, DIR),
         {"status": 10003, "resfail": {"dir_attributes": post_x(DIR, F)}}),
        ("READDIRPLUS3res", R.ReaddirplusRes(ok, F, DIR, bytes(8), plus, False),
         {"status": 0, "resok": {"dir_attributes": post_x(DIR, F), "cookieverf": bytes(8), "reply": {
             "entries": [{"fileid": e.fileid, "name": e.name, "cookie": e.cookie,
                          "name_attributes": post_x(e.attr, F),
                          "name_handle": {"handle_follows": False} if e.fh is None else
                          {"handle_follows": True, "handle": fh_x(e.fh)}} for e in plus], "eof": False}}}),
        ("READDIRPLUS3res", R.ReaddirplusRes(E.NFS3ERR_TOOSMALL, F),
         {"status": 10005, "resfail": {"dir_attributes": post_x(None, F)}}),
        ("FSSTAT3res", R.FsstatRes(ok, F, DIR, 1, 2, 3, 4, 5, 6, 7),
         {"status": 0, "resok": {"obj_attributes": post_x(DIR, F), "tbytes": 1, "fbytes": 2, "abytes": 3,
                                 "tfiles": 4, "ffiles": 5, "afiles": 6, "invarsec": 7}}),
        ("FSSTAT3res", R.FsstatRes(E.NFS3ERR_IO, F), {"status": 5, "resfail": {"obj_attributes": post_x(None, F)}}),
        ("FSINFO3res", R.FsinfoRes(ok, F, DIR, 1, 2, 3, 4, 5, 6, 7, 1 << 62, 1, 0x1B),
         {"status": 0, "resok": {"obj_attributes": post_x(DIR, F), "rtmax": 1, "rtpref": 2, "rtmult": 3,
                                 "wtmax": 4, "wtpref": 5, "wtmult": 6, "dtpref": 7, "maxfilesize": 1 << 62,
                                 "time_delta": {"seconds": 0, "nseconds": 1}, "properties": 0x1B}}),
        ("FSINFO3res", R.FsinfoRes(E.NFS3ERR_STALE, F), {"status": 70, "resfail": {"obj_attributes": post_x(None, F)}}),
        ("PATHCONF3res", R.PathconfRes(ok, F, DIR, 65000, 255, True, True, False, True),
         {"status": 0, "resok": {"obj_attributes": post_x(DIR, F), "linkmax": 65000, "name_max": 255,
                                 "no_trunc": True, "chown_restricted": True, "case_insensitive": False,
                                 "case_preserving": True}}),
        ("PATHCONF3res", R.PathconfRes(E.NFS3ERR_STALE, F),
         {"status": 70, "resfail": {"obj_attributes": post_x(None, F)}}),
        ("COMMIT3res", R.CommitRes(ok, F, W, b"\x01" * 8), {"status": 0, "resok": {"file_wcc": wccx,
                                                                                   "verf": b"\x01" * 8}}),
        ("COMMIT3res", R.CommitRes(E.NFS3ERR_IO, F, W), {"status": 5, "resfail": {"file_wcc": wccx}}),
    ]


RES_CASES = res_cases()


@pytest.mark.parametrize(("xname", "res", "want"), RES_CASES, ids=[f"{c[0]}-{c[1].status}" for c in RES_CASES])
def test_results_against_the_rfc(xname: str, res: R.Res, want: dict[str, Any]) -> None:
    raw = packed(res)
    assert SPEC.decode(xname, raw) == want
    assert raw == SPEC.encode(xname, want)


def test_every_procedure_has_ok_and_failure_result_cases() -> None:
    for p in T.Proc:
        if p == T.Proc.NULL:
            continue
        xname = SPEC.procs[f"NFSPROC3_{p.name}"][2]
        statuses = {c[1].status == E.NFS3_OK for c in RES_CASES if c[0] == xname}
        assert statuses == {True, False}, xname


@pytest.mark.parametrize("name", [b"a", b"abcd", b"abcde", b"x" * 255])
def test_entry_sizes_are_what_the_entries_take(name: bytes) -> None:
    def size_of(res: R.Res) -> int:
        return len(packed(res))
    one = size_of(R.ReaddirRes(E.NFS3_OK, F, DIR, bytes(8), [R.Entry3(1, name, 2)]))
    none = size_of(R.ReaddirRes(E.NFS3_OK, F, DIR, bytes(8), []))
    assert one - none == T.entry3_size(len(name))
    for a, fh in ((OBJ, FH), (None, None), (OBJ, None), (None, b"\x01" * 33)):
        one = size_of(R.ReaddirplusRes(E.NFS3_OK, F, DIR, bytes(8), [R.EntryPlus3(1, name, 2, a, fh)]))
        none = size_of(R.ReaddirplusRes(E.NFS3_OK, F, DIR, bytes(8), []))
        assert one - none == T.entryplus3_size(len(name), a is not None, None if fh is None else len(fh))
