"""Codecs of the Network Lock Manager (NLM, program 100021) and the Network Status Monitor (NSM, 100024).

NLM v4 (X/Open XNFS, "Protocols for Interworking: XNFS, Version 3W", chapter 10; the
``nlm_prot.x`` of every BSD, Linux and illumos) carries 64-bit offsets; versions 1 and 3
carry the same structures with 32-bit offsets and lengths (``wide=False`` below).  Every
function takes the packer/unpacker and writes/reads one structure; ``netobj`` is
``opaque<1024>``, ``caller_name`` is ``string<1024>``.  A lock of length 0 runs to the
end of the file.

The v4 ``nlm4_lock`` on the wire (each item a 4-byte unit unless noted)::

    caller_name<1024> | fh: netobj | oh: netobj | svid: int32 | l_offset: uint64 | l_len: uint64

and ``nlm4_lockargs``::

    cookie: netobj | block: bool | exclusive: bool | alock: nlm4_lock | reclaim: bool | state: int32

``nlm4_notify`` (FREE_ALL) has ``int32 state`` in Linux's nlm4.x and ``int64`` in the XNFS
text and illumos; the decoder accepts both (nothing uses the value) and the encoder writes
the int32 form.

>>> lk = Lock("client", b"FH", b"oh", 7, 0, 0)
>>> p = Packer(); pack_lockargs(p, LockArgs(b"c", True, True, lk, False, 3)); raw = p.data()
>>> unpack_lockargs(Unpacker(raw)) == LockArgs(b"c", True, True, lk, False, 3)
True
>>> len(raw)   # cookie 8, 2 bools 8, name 12, fh 8, oh 8, svid 4, offset 8, len 8, reclaim, state
72
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .xdr import Packer, Unpacker, XdrError

NLM_PROG = 100021
NSM_PROG = 100024
NSM_VERS = 1

LM_MAXSTRLEN = 1024
LM_MAXNAMELEN = 1025
MAXNETOBJ_SZ = 1024
SM_MAXSTRLEN = 1024
SM_PRIV_SIZE = 16
U32_MAX = (1 << 32) - 1


class Stat(IntEnum):
    """``nlm4_stats`` (v1/v3 ``nlm_stats`` stop at DENIED_GRACE_PERIOD / DEADLCK)."""

    GRANTED = 0
    DENIED = 1
    DENIED_NOLOCKS = 2
    BLOCKED = 3
    DENIED_GRACE_PERIOD = 4
    DEADLCK = 5
    ROFS = 6
    STALE_FH = 7
    FBIG = 8
    FAILED = 9


class Proc(IntEnum):
    """NLM procedures (the same numbers in v1, v3 and v4; SHARE and after from v3 on)."""

    NULL = 0
    TEST = 1
    LOCK = 2
    CANCEL = 3
    UNLOCK = 4
    GRANTED = 5
    TEST_MSG = 6
    LOCK_MSG = 7
    CANCEL_MSG = 8
    UNLOCK_MSG = 9
    GRANTED_MSG = 10
    TEST_RES = 11
    LOCK_RES = 12
    CANCEL_RES = 13
    UNLOCK_RES = 14
    GRANTED_RES = 15
    SHARE = 20
    UNSHARE = 21
    NM_LOCK = 22
    FREE_ALL = 23


class SmProc(IntEnum):
    """NSM v1 procedures."""

    NULL = 0
    STAT = 1
    MON = 2
    UNMON = 3
    UNMON_ALL = 4
    SIMU_CRASH = 5
    NOTIFY = 6


STAT_SUCC = 0
STAT_FAIL = 1

# fsh4_mode (what a share reservation denies) and fsh4_access (what it asks), both bit sets
FSM_DN, FSM_DR, FSM_DW, FSM_DRW = 0, 1, 2, 3
FSA_NONE, FSA_R, FSA_W, FSA_RW = 0, 1, 2, 3


def downgrade(stat: int, vers: int) -> int:
    """The status a v1/v3 client understands (the v4-only ones become DENIED_NOLOCKS, as Linux does).

    >>> [downgrade(s, 1) for s in (Stat.GRANTED, Stat.DEADLCK, Stat.STALE_FH)]
    [0, 1, 2]
    >>> downgrade(Stat.DEADLCK, 3), downgrade(Stat.FAILED, 4)
    (5, 9)
    """
    if vers >= 4 or stat <= Stat.DENIED_GRACE_PERIOD:
        return int(stat)
    if stat == Stat.DEADLCK:
        return int(Stat.DEADLCK if vers == 3 else Stat.DENIED)
    return int(Stat.DENIED_NOLOCKS)


# ----------------------------------------------------------------------------- structures

@dataclass(frozen=True, slots=True)
class Lock:
    """``nlm4_lock``: who (caller_name, svid, oh) locks which bytes of which file (fh)."""

    caller_name: str
    fh: bytes
    oh: bytes
    svid: int
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Holder:
    """``nlm4_holder``: the lock that stands in the way (TEST's answer)."""

    exclusive: bool
    svid: int
    oh: bytes
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class TestArgs:
    """``nlm4_testargs`` (also the GRANTED callback's arguments)."""

    __test__ = False  # not a pytest class

    cookie: bytes
    exclusive: bool
    lock: Lock


@dataclass(frozen=True, slots=True)
class LockArgs:
    cookie: bytes
    block: bool
    exclusive: bool
    lock: Lock
    reclaim: bool
    state: int


@dataclass(frozen=True, slots=True)
class CancArgs:
    cookie: bytes
    block: bool
    exclusive: bool
    lock: Lock


@dataclass(frozen=True, slots=True)
class UnlockArgs:
    cookie: bytes
    lock: Lock


@dataclass(frozen=True, slots=True)
class Res:
    """``nlm4_res``: LOCK, CANCEL, UNLOCK and GRANTED answers."""

    cookie: bytes
    stat: int


@dataclass(frozen=True, slots=True)
class TestRes:
    """``nlm4_testres``: ``holder`` is set exactly when ``stat`` is DENIED."""

    __test__ = False

    cookie: bytes
    stat: int
    holder: Holder | None = None


@dataclass(frozen=True, slots=True)
class Share:
    """``nlm4_share``: a DOS-style share reservation (mode = what it denies, access = what it asks)."""

    caller_name: str
    fh: bytes
    oh: bytes
    mode: int
    access: int


@dataclass(frozen=True, slots=True)
class ShareArgs:
    cookie: bytes
    share: Share
    reclaim: bool


@dataclass(frozen=True, slots=True)
class ShareRes:
    cookie: bytes
    stat: int
    sequence: int = 0


@dataclass(frozen=True, slots=True)
class Notify:
    """``nlm4_notify`` (FREE_ALL): the client ``name`` restarted with ``state``."""

    name: str
    state: int


# ----------------------------------------------------------------------------- helpers

def _name(u: Unpacker, bound: int = LM_MAXSTRLEN) -> str:
    return u.unpack_string(bound).decode("utf-8", "surrogateescape")


def _netobj(u: Unpacker) -> bytes:
    return u.unpack_opaque(MAXNETOBJ_SZ)


def _pack_off(p: Packer, v: int, wide: bool) -> None:
    if wide:
        p.pack_uhyper(v)
    else:
        p.pack_uint(min(v, U32_MAX))


def _unpack_off(u: Unpacker, wide: bool) -> int:
    return u.unpack_uhyper() if wide else u.unpack_uint()


def pack_lock(p: Packer, lk: Lock, wide: bool = True) -> None:
    """``nlm4_lock`` (``wide``) or v1/v3 ``nlm_lock``.

    >>> p = Packer(); pack_lock(p, Lock("h", b"F", b"o", -1, 5, 0), wide=False); p.data().hex()
    '00000001680000000000000146000000000000016f000000ffffffff0000000500000000'
    """
    p.pack_string(lk.caller_name)
    p.pack_opaque(lk.fh)
    p.pack_opaque(lk.oh)
    p.pack_int(lk.svid)
    _pack_off(p, lk.offset, wide)
    _pack_off(p, lk.length, wide)


def unpack_lock(u: Unpacker, wide: bool = True) -> Lock:
    return Lock(_name(u), _netobj(u), _netobj(u), u.unpack_int(), _unpack_off(u, wide), _unpack_off(u, wide))


def pack_holder(p: Packer, h: Holder, wide: bool = True) -> None:
    p.pack_bool(h.exclusive)
    p.pack_int(h.svid)
    p.pack_opaque(h.oh)
    if wide:
        p.pack_uhyper(h.offset)
        p.pack_uhyper(h.length)
    else:  # a range past 4 GiB is shown clipped: from the last 32-bit offset, to the end
        p.pack_uint(min(h.offset, U32_MAX))
        p.pack_uint(h.length if h.offset + h.length <= U32_MAX else 0)


def unpack_holder(u: Unpacker, wide: bool = True) -> Holder:
    return Holder(u.unpack_bool(), u.unpack_int(), _netobj(u), _unpack_off(u, wide), _unpack_off(u, wide))


# ----------------------------------------------------------------------------- arguments

def pack_testargs(p: Packer, a: TestArgs, wide: bool = True) -> None:
    p.pack_opaque(a.cookie)
    p.pack_bool(a.exclusive)
    pack_lock(p, a.lock, wide)


def unpack_testargs(u: Unpacker, wide: bool = True) -> TestArgs:
    return TestArgs(_netobj(u), u.unpack_bool(), unpack_lock(u, wide))


def pack_lockargs(p: Packer, a: LockArgs, wide: bool = True) -> None:
    p.pack_opaque(a.cookie)
    p.pack_bool(a.block)
    p.pack_bool(a.exclusive)
    pack_lock(p, a.lock, wide)
    p.pack_bool(a.reclaim)
    p.pack_int(a.state)


def unpack_lockargs(u: Unpacker, wide: bool = True) -> LockArgs:
    return LockArgs(_netobj(u), u.unpack_bool(), u.unpack_bool(), unpack_lock(u, wide), u.unpack_bool(),
                    u.unpack_int())


def pack_cancargs(p: Packer, a: CancArgs, wide: bool = True) -> None:
    p.pack_opaque(a.cookie)
    p.pack_bool(a.block)
    p.pack_bool(a.exclusive)
    pack_lock(p, a.lock, wide)


def unpack_cancargs(u: Unpacker, wide: bool = True) -> CancArgs:
    return CancArgs(_netobj(u), u.unpack_bool(), u.unpack_bool(), unpack_lock(u, wide))


def pack_unlockargs(p: Packer, a: UnlockArgs, wide: bool = True) -> None:
    p.pack_opaque(a.cookie)
    pack_lock(p, a.lock, wide)


def unpack_unlockargs(u: Unpacker, wide: bool = True) -> UnlockArgs:
    return UnlockArgs(_netobj(u), unpack_lock(u, wide))


def pack_share(p: Packer, s: Share) -> None:
    p.pack_string(s.caller_name)
    p.pack_opaque(s.fh)
    p.pack_opaque(s.oh)
    p.pack_enum(s.mode)
    p.pack_enum(s.access)


def unpack_share(u: Unpacker) -> Share:
    return Share(_name(u), _netobj(u), _netobj(u), u.unpack_enum(), u.unpack_enum())


def pack_shareargs(p: Packer, a: ShareArgs) -> None:
    p.pack_opaque(a.cookie)
    pack_share(p, a.share)
    p.pack_bool(a.reclaim)


def unpack_shareargs(u: Unpacker) -> ShareArgs:
    return ShareArgs(_netobj(u), unpack_share(u), u.unpack_bool())


def pack_notify(p: Packer, n: Notify) -> None:
    p.pack_string(n.name)
    p.pack_int(n.state)


def unpack_notify(u: Unpacker) -> Notify:
    """``nlm4_notify`` with an int32 (Linux) or int64 (XNFS, illumos) state.

    >>> p = Packer(); p.pack_string("c"); p.pack_hyper(5)
    >>> unpack_notify(Unpacker(p.data()))
    Notify(name='c', state=5)
    """
    name = _name(u, LM_MAXNAMELEN)
    if u.remaining() == 8:
        return Notify(name, u.unpack_hyper())
    return Notify(name, u.unpack_int())


# ----------------------------------------------------------------------------- results

def pack_res(p: Packer, r: Res) -> None:
    p.pack_opaque(r.cookie)
    p.pack_enum(r.stat)


def unpack_res(u: Unpacker) -> Res:
    return Res(_netobj(u), u.unpack_enum())


def pack_testres(p: Packer, r: TestRes, wide: bool = True) -> None:
    p.pack_opaque(r.cookie)
    p.pack_enum(r.stat)
    if r.stat == Stat.DENIED:
        if r.holder is None:
            raise XdrError("a DENIED test result needs its holder")
        pack_holder(p, r.holder, wide)


def unpack_testres(u: Unpacker, wide: bool = True) -> TestRes:
    cookie, stat = _netobj(u), u.unpack_enum()
    return TestRes(cookie, stat, unpack_holder(u, wide) if stat == Stat.DENIED else None)


def pack_shareres(p: Packer, r: ShareRes) -> None:
    p.pack_opaque(r.cookie)
    p.pack_enum(r.stat)
    p.pack_int(r.sequence)


def unpack_shareres(u: Unpacker) -> ShareRes:
    return ShareRes(_netobj(u), u.unpack_enum(), u.unpack_int())


# ----------------------------------------------------------------------------- NSM (sm_inter.x)

@dataclass(frozen=True, slots=True)
class MyId:
    """``my_id``: whom to call back (RPC program, version, procedure on host ``name``)."""

    name: str
    prog: int
    vers: int
    proc: int


@dataclass(frozen=True, slots=True)
class MonId:
    """``mon_id``: watch host ``mon_name`` on behalf of ``my_id``."""

    mon_name: str
    my_id: MyId


@dataclass(frozen=True, slots=True)
class Mon:
    """``mon``: SM_MON's argument; ``priv`` (16 bytes) is returned in the callback."""

    mon_id: MonId
    priv: bytes


@dataclass(frozen=True, slots=True)
class StatChge:
    """``stat_chge``: SM_NOTIFY's argument (host ``mon_name`` now has ``state``)."""

    mon_name: str
    state: int


@dataclass(frozen=True, slots=True)
class SmStatRes:
    """``sm_stat_res``: SM_STAT and SM_MON results."""

    res: int
    state: int


@dataclass(frozen=True, slots=True)
class SmStatus:
    """``sm_status``: the callback to a monitor's ``my_id`` when a watched host changed state."""

    mon_name: str
    state: int
    priv: bytes


def pack_sm_name(p: Packer, name: str) -> None:
    p.pack_string(name)


def unpack_sm_name(u: Unpacker) -> str:
    return _name(u, SM_MAXSTRLEN)


def pack_my_id(p: Packer, m: MyId) -> None:
    p.pack_string(m.name)
    p.pack_int(m.prog)
    p.pack_int(m.vers)
    p.pack_int(m.proc)


def unpack_my_id(u: Unpacker) -> MyId:
    return MyId(_name(u, SM_MAXSTRLEN), u.unpack_int(), u.unpack_int(), u.unpack_int())


def pack_mon_id(p: Packer, m: MonId) -> None:
    p.pack_string(m.mon_name)
    pack_my_id(p, m.my_id)


def unpack_mon_id(u: Unpacker) -> MonId:
    return MonId(_name(u, SM_MAXSTRLEN), unpack_my_id(u))


def pack_mon(p: Packer, m: Mon) -> None:
    """``mon``.

    >>> p = Packer(); pack_mon(p, Mon(MonId("c", MyId("s", 100021, 4, 16)), bytes(16))); p.data().hex()
    '00000001630000000000000173000000000186b5000000040000001000000000000000000000000000000000'
    """
    pack_mon_id(p, m.mon_id)
    p.pack_fopaque(SM_PRIV_SIZE, m.priv)


def unpack_mon(u: Unpacker) -> Mon:
    return Mon(unpack_mon_id(u), u.unpack_fopaque(SM_PRIV_SIZE))


def pack_stat_chge(p: Packer, s: StatChge) -> None:
    p.pack_string(s.mon_name)
    p.pack_int(s.state)


def unpack_stat_chge(u: Unpacker) -> StatChge:
    return StatChge(_name(u, SM_MAXSTRLEN), u.unpack_int())


def pack_sm_stat_res(p: Packer, r: SmStatRes) -> None:
    p.pack_enum(r.res)
    p.pack_int(r.state)


def unpack_sm_stat_res(u: Unpacker) -> SmStatRes:
    return SmStatRes(u.unpack_enum(), u.unpack_int())


def pack_sm_stat(p: Packer, state: int) -> None:
    p.pack_int(state)


def unpack_sm_stat(u: Unpacker) -> int:
    return u.unpack_int()


def pack_sm_status(p: Packer, s: SmStatus) -> None:
    p.pack_string(s.mon_name)
    p.pack_int(s.state)
    p.pack_fopaque(SM_PRIV_SIZE, s.priv)


def unpack_sm_status(u: Unpacker) -> SmStatus:
    return SmStatus(_name(u, SM_MAXSTRLEN), u.unpack_int(), u.unpack_fopaque(SM_PRIV_SIZE))
