"""NLM and NSM codecs: byte-exact against hand-written wire images, round trips, bad input."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.nfs import nlm_types as T
from protocols.nfs.xdr import Packer, Unpacker, XdrError


def hx(*words: str) -> bytes:
    return bytes.fromhex("".join(words))


LOCK = T.Lock("cl", b"\x01\x02\x03", b"42@cl", 42, 0x1_0000_0000, 0)
# caller_name "cl" | fh 3 bytes | oh "42@cl" | svid 42 | offset 2^32 (uhyper) | len 0 (uhyper)
LOCK_V4 = hx("00000002", "636c0000", "00000003", "01020300", "00000005", "34324063", "6c000000",
             "0000002a", "0000000100000000", "0000000000000000")


def packed(fn: Callable[..., None], *args: object) -> bytes:
    p = Packer()
    fn(p, *args)
    return p.data()


def test_lock_v4_bytes() -> None:
    assert packed(T.pack_lock, LOCK) == LOCK_V4
    u = Unpacker(LOCK_V4)
    assert T.unpack_lock(u) == LOCK
    u.done()


def test_lock_v1_is_32_bit() -> None:
    lk = T.Lock("cl", b"\x01\x02\x03", b"42@cl", -2, 7, 9)
    raw = packed(T.pack_lock, lk, False)
    assert raw == hx("00000002", "636c0000", "00000003", "01020300", "00000005", "34324063", "6c000000",
                     "fffffffe", "00000007", "00000009")
    assert T.unpack_lock(Unpacker(raw), False) == lk


def test_lockargs_bytes() -> None:
    a = T.LockArgs(b"ck", True, False, LOCK, True, 5)
    raw = packed(T.pack_lockargs, a)
    assert raw == hx("00000002", "636b0000", "00000001", "00000000") + LOCK_V4 + hx("00000001", "00000005")
    assert T.unpack_lockargs(Unpacker(raw)) == a


def test_test_cancel_unlock_args_bytes() -> None:
    t = T.TestArgs(b"", True, LOCK)
    assert packed(T.pack_testargs, t) == hx("00000000", "00000001") + LOCK_V4
    c = T.CancArgs(b"", False, True, LOCK)
    assert packed(T.pack_cancargs, c) == hx("00000000", "00000000", "00000001") + LOCK_V4
    n = T.UnlockArgs(b"\xff", LOCK)
    assert packed(T.pack_unlockargs, n) == hx("00000001", "ff000000") + LOCK_V4
    assert T.unpack_testargs(Unpacker(packed(T.pack_testargs, t))) == t
    assert T.unpack_cancargs(Unpacker(packed(T.pack_cancargs, c))) == c
    assert T.unpack_unlockargs(Unpacker(packed(T.pack_unlockargs, n))) == n


def test_res_and_testres_bytes() -> None:
    assert packed(T.pack_res, T.Res(b"ab", T.Stat.BLOCKED)) == hx("00000002", "61620000", "00000003")
    granted = T.TestRes(b"", T.Stat.GRANTED)
    assert packed(T.pack_testres, granted) == hx("00000000", "00000000")
    h = T.Holder(True, 9, b"", 10, 20)
    denied = T.TestRes(b"", T.Stat.DENIED, h)
    raw = packed(T.pack_testres, denied)
    assert raw == hx("00000000", "00000001", "00000001", "00000009", "00000000",
                     "000000000000000a", "0000000000000014")
    assert T.unpack_testres(Unpacker(raw)) == denied
    assert T.unpack_testres(Unpacker(packed(T.pack_testres, granted))) == granted
    with pytest.raises(XdrError):
        packed(T.pack_testres, T.TestRes(b"", T.Stat.DENIED))


def test_holder_v1_clips_past_32_bits() -> None:
    raw = packed(T.pack_holder, T.Holder(False, 1, b"", 1 << 33, 5), False)
    assert raw == hx("00000000", "00000001", "00000000", "ffffffff", "00000000")
    raw = packed(T.pack_holder, T.Holder(False, 1, b"", 100, 5), False)
    assert T.unpack_holder(Unpacker(raw), False) == T.Holder(False, 1, b"", 100, 5)


def test_share_bytes() -> None:
    a = T.ShareArgs(b"", T.Share("h", b"F", b"o", T.FSM_DW, T.FSA_RW), False)
    raw = packed(T.pack_shareargs, a)
    assert raw == hx("00000000", "00000001", "68000000", "00000001", "46000000", "00000001", "6f000000",
                     "00000002", "00000003", "00000000")
    assert T.unpack_shareargs(Unpacker(raw)) == a
    r = T.ShareRes(b"c", T.Stat.DENIED, 0)
    assert packed(T.pack_shareres, r) == hx("00000001", "63000000", "00000001", "00000000")
    assert T.unpack_shareres(Unpacker(packed(T.pack_shareres, r))) == r


def test_notify_int32_and_int64() -> None:
    n = T.Notify("host", 3)
    raw = packed(T.pack_notify, n)
    assert raw == hx("00000004", "686f7374", "00000003")
    assert T.unpack_notify(Unpacker(raw)) == n
    assert T.unpack_notify(Unpacker(hx("00000004", "686f7374", "0000000000000007"))) == T.Notify("host", 7)


def test_nsm_bytes() -> None:
    mon = T.Mon(T.MonId("cl", T.MyId("srv", T.NLM_PROG, 4, 16)), bytes(range(16)))
    raw = packed(T.pack_mon, mon)
    assert raw == hx("00000002", "636c0000", "00000003", "73727600", "000186b5", "00000004", "00000010",
                     "000102030405060708090a0b0c0d0e0f")
    assert T.unpack_mon(Unpacker(raw)) == mon
    sc = T.StatChge("cl", 7)
    assert packed(T.pack_stat_chge, sc) == hx("00000002", "636c0000", "00000007")
    assert T.unpack_stat_chge(Unpacker(packed(T.pack_stat_chge, sc))) == sc
    assert packed(T.pack_sm_stat_res, T.SmStatRes(T.STAT_FAIL, 3)) == hx("00000001", "00000003")
    assert packed(T.pack_sm_stat, 9) == hx("00000009")
    assert packed(T.pack_sm_name, "x") == hx("00000001", "78000000")
    status = T.SmStatus("cl", 5, bytes(16))
    assert packed(T.pack_sm_status, status) == hx("00000002", "636c0000", "00000005") + bytes(16)
    assert T.unpack_sm_status(Unpacker(packed(T.pack_sm_status, status))) == status
    assert T.unpack_my_id(Unpacker(packed(T.pack_my_id, mon.mon_id.my_id))) == mon.mon_id.my_id


def test_bad_input_is_xdr_error() -> None:
    with pytest.raises(XdrError):
        T.unpack_lock(Unpacker(LOCK_V4[:-1]))
    too_long = hx("00000401") + bytes(1028)  # caller_name<1024> with 1025 bytes
    with pytest.raises(XdrError):
        T.unpack_lock(Unpacker(too_long))
    with pytest.raises(XdrError):  # a netobj over 1024 bytes
        T.unpack_res(Unpacker(hx("00000800") + bytes(2048) + hx("00000000")))
    with pytest.raises(XdrError):  # bool 2
        T.unpack_testargs(Unpacker(hx("00000000", "00000002") + LOCK_V4))


def test_downgrade_for_old_versions() -> None:
    assert T.downgrade(T.Stat.STALE_FH, 3) == T.Stat.DENIED_NOLOCKS
    assert T.downgrade(T.Stat.DEADLCK, 1) == T.Stat.DENIED
    assert T.downgrade(T.Stat.FBIG, 4) == T.Stat.FBIG


names = st.text(max_size=40)
blobs = st.binary(max_size=64)
u64 = st.integers(0, (1 << 64) - 1)
i32 = st.integers(-(1 << 31), (1 << 31) - 1)


@given(names, blobs, blobs, i32, u64, u64, blobs, st.booleans(), st.booleans(), st.booleans(), i32)
def test_lockargs_round_trip(name: str, fh: bytes, oh: bytes, svid: int, off: int, ln: int, ck: bytes,
                             block: bool, ex: bool, rec: bool, state: int) -> None:
    a = T.LockArgs(ck, block, ex, T.Lock(name, fh, oh, svid, off, ln), rec, state)
    u = Unpacker(packed(T.pack_lockargs, a))
    assert T.unpack_lockargs(u) == a
    u.done()


@given(st.binary(max_size=200))
def test_decoders_never_crash(data: bytes) -> None:
    for fn in (T.unpack_lockargs, T.unpack_testargs, T.unpack_cancargs, T.unpack_unlockargs, T.unpack_shareargs,
               T.unpack_notify, T.unpack_mon, T.unpack_stat_chge, T.unpack_testres, T.unpack_res):
        try:
            fn(Unpacker(data))
        except XdrError:
            pass
