"""Oplocks and leases: who may cache what, what a new open breaks, and the acknowledgments. Sans-IO.

One :class:`LeaseTable` per SMB server process tracks, per file (the core.fs inode number), the
*holders* of caching rights and their opens (MS-SMB2 3.3.1.4, 3.3.1.12; MS-FSA 2.1.1.10). It
does no I/O, keeps no threads and reads the clock only through the ``clock`` it is given; it
is not thread-safe: the server calls it from one event loop (or under one lock) and turns what
it returns into messages (``oplockwire``).

Model. Every right is a *state* of lease bits, R=1 (read caching), H=2 (handle caching), W=4
(write caching); an oplock is the state it implies (BATCH=RWH, EXCLUSIVE=RW, II=R, NONE=0). A
*holder* is a lease, named by :class:`LeaseId` (the connection's ClientGuid and the LeaseKey;
all opens with that key share one state), or, for an open without a lease, the open itself
(its open id). The rules follow MS-SMB2 3.3.5.9 and MS-FSA 2.1.4.12 the way Samba reads them
(``delay_for_oplock``, ``grant_fsp_oplock_type``, ``downgrade_lease``), which its smbtorture
runs against Windows:

- A CREATE that only reads or writes attributes, or synchronizes (and, with a lease, reads
  the security descriptor) is a *stat open*: it breaks nothing and gets nothing.
- Any other CREATE breaks W of every other holder (BATCH/EXCLUSIVE to II); SUPERSEDE/OVERWRITE/
  OVERWRITE_IF break every other holder to NONE; a sharing violation breaks H instead (so the
  holder can close the handle it kept open), after which the CREATE fails with
  SHARING_VIOLATION unless it is retried once the breaks settle.
- The CREATE waits (STATUS_PENDING) while a holder it broke still holds the bit it needs (W,
  or H on a sharing violation) or any holder on the file has a break in progress; the server
  calls :meth:`LeaseTable.grant` again when every holder in ``Grant.wait_for`` has *settled*.
- What is granted: W only when no other holder has an open on the file; a lease loses H when
  an open without a lease exists; an oplock gets NONE when another holder caches handles. A
  lease asks for R, RH, RW or RWH (H, W and HW alone get NONE); a second open of the same lease
  upgrades it (never downgrades) unless a break is in progress (then BREAK_IN_PROGRESS).
- A write, truncate or end-of-file change through one open breaks every other holder to NONE
  (:meth:`LeaseTable.on_write`); a rename or delete breaks H (:meth:`LeaseTable.on_rename`);
  changes made outside this process (NFS, S3, another SMB process: the server learns of them
  by polling core.fs) break what they must with nothing to wait for
  (:meth:`LeaseTable.on_external_change`). The poller must remember the stamp (core.fs ctime,
  size) after this server's own changes, or it breaks its own clients' leases.
- A break from a state with W or H needs an acknowledgment; R to NONE (and II to NONE) does
  not. While a break is in progress, later breaks only lower the target; after the ack the
  rest is broken in a further notification (via R when W or H is still held, as Windows does).
  A break not acknowledged within :data:`BREAK_TIMEOUT_S` is forced to NONE (MS-SMB2 3.3.6.5,
  3.3.6.6) by :meth:`LeaseTable.expire`.
- Lease epochs (v2): a new lease gets the client's epoch + 1; an upgrade and the start of a
  break add one.

Public interface: :class:`OplockLevel`, :class:`Lease` (state bits), :class:`LeaseId`,
:class:`LeaseRequest`, :class:`LeaseTable` (``grant``, ``close``, ``on_write``, ``on_rename``,
``on_external_change``, ``ack_oplock``, ``ack_lease``, ``expire``, ``next_deadline``,
``is_breaking``, ``holders``, ``cached_files``), the results :class:`Grant`, :class:`Outcome`,
:class:`AckResult`, :class:`Break`, :class:`HolderInfo`, and :class:`Change`.

What the server does with them: answer a CREATE with ``Grant.level`` (and, when it is
``LEASE``, a lease context from ``lease_state``/``lease_flags``/``epoch``); send every
``Break`` (``oplockwire.encode_oplock_break`` on ``Break.opens[0]``'s connection,
``oplockwire.encode_lease_break`` on any live connection of ``Break.opens``); on PENDING, send
the interim response and re-run the CREATE when all of ``wait_for`` appear in some
``settled`` (or are no longer :meth:`~LeaseTable.is_breaking`); call ``expire`` at
``next_deadline``; call ``close`` on CLOSE, logoff, disconnect, and when a granted CREATE
fails after all. Dialect 2.0.2 has no leases: pass ``lease=None`` there. Not done (yet):
directory leases (directories get NONE: do not advertise DIRECTORY_LEASING), durable and
persistent handles (a lease outlives no disconnect), the share flag FORCE_LEVELII_OPLOCK,
BreakReason/AccessMaskHint/ShareMaskHint (sent as 0), byte-range locks withholding R (Samba
grants no R on a locked file), and per-stream (ADS) state: the key is the inode.

>>> t = LeaseTable(clock=lambda: 0.0)
>>> a = t.grant(7, 1, OplockLevel.BATCH)
>>> a.status.name, a.level.name
('SUCCESS', 'BATCH')
>>> b = t.grant(7, 2, OplockLevel.BATCH)          # a second open must wait for the first to break
>>> b.status.name, [(x.holder, x.current, x.new, x.ack_required) for x in b.breaks], sorted(b.wait_for)
('PENDING', [(1, 9, 1, True)], [1])
>>> r = t.ack_oplock(1, OplockLevel.II)
>>> r.status.name, r.value, r.settled
('SUCCESS', 1, (1,))
>>> t.grant(7, 2, OplockLevel.BATCH).level.name   # the retry: both get level II
'II'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, IntEnum, IntFlag
from typing import Final, NamedTuple, TypeAlias

from .status import NtStatus

BREAK_TIMEOUT_S: Final = 35.0   # MS-SMB2 3.3.2: the oplock/lease break acknowledgment timer

R: Final = 1
H: Final = 2
W: Final = 4
RWH: Final = R | W | H

# access bits that make a CREATE a "stat open" (Samba is_oplock_stat_open / is_lease_stat_open)
_SYNCHRONIZE: Final = 0x0010_0000
_READ_CONTROL: Final = 0x0002_0000
STAT_ACCESS: Final = 0x0000_0080 | 0x0000_0100 | _SYNCHRONIZE    # READ/WRITE_ATTRIBUTES, SYNCHRONIZE
LEASE_STAT_ACCESS: Final = STAT_ACCESS | _READ_CONTROL

_OVERWRITE_DISPOSITIONS: Final = frozenset({0, 4, 5})   # FILE_SUPERSEDE, FILE_OVERWRITE, FILE_OVERWRITE_IF
FILE_OPEN: Final = 1


class OplockLevel(IntEnum):
    """SMB2 oplock levels (MS-SMB2 2.2.13 RequestedOplockLevel, 2.2.14 OplockLevel)."""

    NONE = 0x00
    II = 0x01
    EXCLUSIVE = 0x08
    BATCH = 0x09
    LEASE = 0xFF


class Lease(IntFlag):
    """Lease state bits (MS-SMB2 2.2.13.2.8) and the lease response flags (2.2.14.2.10)."""

    NONE = 0
    READ = R
    HANDLE = H
    WRITE = W


LEASE_FLAG_BREAK_IN_PROGRESS: Final = 0x02
LEASE_FLAG_PARENT_LEASE_KEY_SET: Final = 0x04


class LeaseId(NamedTuple):
    """A lease's identity: the ClientGuid of the connection that asked and the LeaseKey."""

    client: bytes
    key: bytes


Holder: TypeAlias = int | LeaseId   # an open id (an open without a lease) or a lease


@dataclass(frozen=True)
class LeaseRequest:
    """A CREATE's lease context (RqLs v1 or v2): ``state`` the bits asked for, ``epoch`` and
    ``parent`` only for v2 (``version`` 2)."""

    client: bytes
    key: bytes
    state: int
    version: int = 1
    epoch: int = 0
    parent: bytes | None = None

    @property
    def id(self) -> LeaseId:
        return LeaseId(self.client, self.key)


@dataclass(frozen=True)
class Break:
    """A break notification to send. ``current``/``new`` are lease states for a lease and
    oplock levels for an oplock; ``opens`` are the opens it may be sent through (an oplock's
    one open; any of a lease's, on a connection still alive); ``epoch`` is a v2 lease's
    NewEpoch (0 otherwise). Without ``ack_required`` the holder is already at ``new``."""

    file: int
    holder: Holder
    opens: tuple[int, ...]
    current: int
    new: int
    ack_required: bool
    epoch: int = 0

    @property
    def is_lease(self) -> bool:
        return isinstance(self.holder, LeaseId)


@dataclass(frozen=True)
class Outcome:
    """Breaks to send now; holders whose break has *settled* (acknowledged, forced, closed):
    re-run the requests waiting on them; ``wait_for``: holders the operation must wait for."""

    breaks: tuple[Break, ...] = ()
    settled: tuple[Holder, ...] = ()
    wait_for: frozenset[Holder] = frozenset()


@dataclass(frozen=True)
class Grant:
    """The oplock/lease part of a CREATE's answer.

    ``status``: SUCCESS (registered), PENDING (nothing registered: go async, wait for
    ``wait_for`` to settle, call ``grant`` again), SHARING_VIOLATION (nothing registered, no
    break left to wait for: fail the CREATE), INVALID_PARAMETER (the lease key is in use on
    another file, MS-SMB2 3.3.5.9.8). ``level`` is the response's OplockLevel (LEASE: answer
    with a lease context carrying ``lease_state``, ``lease_flags``, ``epoch``)."""

    status: NtStatus
    level: OplockLevel = OplockLevel.NONE
    lease_state: int = 0
    lease_flags: int = 0
    epoch: int = 0
    breaks: tuple[Break, ...] = ()
    wait_for: frozenset[Holder] = frozenset()


@dataclass(frozen=True)
class AckResult:
    """The answer to an OPLOCK_BREAK acknowledgment. ``status`` goes in the response (an error
    response when not SUCCESS); ``value`` is the OplockLevel or LeaseState for the response body;
    ``breaks`` are further notifications to send after the response."""

    status: NtStatus
    value: int = 0
    breaks: tuple[Break, ...] = ()
    settled: tuple[Holder, ...] = ()


class Change(Enum):
    """What another protocol or process did to a file (:meth:`LeaseTable.on_external_change`)."""

    DATA = "data"          # wrote, truncated, overwrote, replaced: break everything to NONE
    OPENED = "opened"      # opened it (seen in the core.fs share-mode table): break W
    REMOVED = "removed"    # renamed or deleted it or a parent directory: break H


@dataclass(frozen=True)
class HolderInfo:
    """A holder as :meth:`LeaseTable.holders` reports it (for tests and diagnostics)."""

    holder: Holder
    state: int
    breaking: bool
    break_to: int
    opens: frozenset[int]
    stat_opens: frozenset[int]


@dataclass
class _Holder:
    file: int
    lease: bool
    state: int = 0
    opens: set[int] = field(default_factory=set)
    breaking: bool = False
    break_to: int = 0        # the state the notification offered: the most an ack may keep
    want: int = 0            # the state the breaks so far require (<= break_to)
    deadline: float = 0.0
    version: int = 0
    epoch: int = 0
    parent: bytes | None = None


@dataclass
class _Open:
    file: int
    holder: Holder
    stat: bool


def oplock_state(level: int) -> int:
    """The lease state an oplock level stands for.

    >>> [oplock_state(x) for x in (OplockLevel.NONE, OplockLevel.II, OplockLevel.EXCLUSIVE, OplockLevel.BATCH)]
    [0, 1, 5, 7]
    """
    states: dict[int, int] = {OplockLevel.II: R, OplockLevel.EXCLUSIVE: R | W, OplockLevel.BATCH: RWH}
    return states.get(level, 0)


def oplock_level(state: int) -> OplockLevel:
    """The oplock level a state allows: RWH BATCH, RW EXCLUSIVE, R or RH II, else NONE.

    >>> [oplock_level(s).name for s in (7, 5, 3, 1, 0)]
    ['BATCH', 'EXCLUSIVE', 'II', 'II', 'NONE']
    """
    if state == RWH:
        return OplockLevel.BATCH
    if state == R | W:
        return OplockLevel.EXCLUSIVE
    return OplockLevel.II if state & R else OplockLevel.NONE


def valid_lease_state(state: int) -> int:
    """What a lease request may get at most: R, RH, RW or RWH as asked; anything else NONE.

    >>> [valid_lease_state(s) for s in range(8)]
    [0, 1, 0, 3, 0, 5, 0, 7]
    """
    state &= RWH
    return state if state & R else 0


class LeaseTable:
    """Oplock and lease state of every open file of one server process (see the module doc)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, timeout_s: float = BREAK_TIMEOUT_S) -> None:
        self._clock = clock
        self._timeout = timeout_s
        self._opens: dict[int, _Open] = {}
        self._holders: dict[Holder, _Holder] = {}
        self._files: dict[int, dict[Holder, None]] = {}   # file -> its holders, in arrival order

    # ---- CREATE -------------------------------------------------------------------------

    def grant(self, file: int, open_id: int, level: int, lease: LeaseRequest | None = None, *,
              access: int = 0x0012_0089, disposition: int = FILE_OPEN, sharing_violation: bool = False,
              directory: bool = False) -> Grant:
        """Decide a CREATE's oplock or lease (MS-SMB2 3.3.5.9, 3.3.5.9.8/11).

        ``level`` is RequestedOplockLevel; ``lease`` the lease context, used only when ``level``
        is LEASE (a LEASE request without one gets NONE). ``access`` is the granted access,
        ``disposition`` the CreateDisposition (SUPERSEDE/OVERWRITE/OVERWRITE_IF break to NONE),
        ``sharing_violation`` whether the core.fs share-mode check failed for this CREATE.
        Call it after the access check passed; on SUCCESS the open is registered.
        """
        if open_id in self._opens:
            raise ValueError(f"open {open_id} is already registered")
        if level == OplockLevel.LEASE and (lease is None or directory):
            level, lease = OplockLevel.NONE, None
        if level != OplockLevel.LEASE:
            lease = None
        own: Holder = lease.id if lease is not None else open_id
        existing = self._holders.get(own)
        if existing is not None and existing.file != file:
            return Grant(NtStatus.INVALID_PARAMETER)
        stat = access & ~(LEASE_STAT_ACCESS if lease is not None else STAT_ACCESS) == 0
        breaks: list[Break] = []
        wait: set[Holder] = set()
        if not stat:
            remove = H if sharing_violation else W
            overwrite = disposition in _OVERWRITE_DISPOSITIONS
            for hid in self._others(file, own):
                h = self._holders[hid]
                was_breaking, cur = h.breaking, h.state
                target = 0 if overwrite else self._target(h, remove)
                if cur & ~target == 0:
                    if was_breaking:
                        wait.add(hid)
                    continue
                brk = self._lower(hid, h, target)
                if brk is not None:
                    breaks.append(brk)
                if h.breaking and (cur & remove or was_breaking):
                    wait.add(hid)
        if wait:
            return Grant(NtStatus.PENDING, breaks=tuple(breaks), wait_for=frozenset(wait))
        if sharing_violation:
            return Grant(NtStatus.SHARING_VIOLATION, breaks=tuple(breaks))
        granted = self._grantable(file, own, level, lease, stat or directory)
        self._opens[open_id] = _Open(file, own, stat)
        if lease is None:
            level = oplock_level(granted)            # RH (a batch request that lost W) is level II: R
            self._add_holder(own, _Holder(file, False, oplock_state(level), {open_id}))
            return Grant(NtStatus.SUCCESS, level, breaks=tuple(breaks))
        return self._grant_lease(file, open_id, lease, granted, tuple(breaks))

    def _grantable(self, file: int, own: Holder, level: int, lease: LeaseRequest | None, nothing: bool) -> int:
        if nothing:
            return 0
        granted = valid_lease_state(lease.state) if lease is not None else oplock_state(level)
        others = [self._holders[h] for h in self._others(file, own)]
        if others:
            granted &= ~W
        if lease is not None:
            if any(not o.lease for o in others):
                granted &= ~H
        elif any(o.state & H for o in others):
            granted = 0
        return granted

    def _grant_lease(self, file: int, open_id: int, req: LeaseRequest, granted: int,
                     breaks: tuple[Break, ...]) -> Grant:
        lid = req.id
        h = self._holders.get(lid)
        if h is None:
            epoch = (req.epoch + 1) & 0xFFFF if req.version >= 2 else 0
            h = _Holder(file, True, granted, version=req.version, epoch=epoch, parent=req.parent)
            self._add_holder(lid, h)
        elif not h.breaking and granted != h.state and granted & h.state == h.state:
            h.state = granted          # an upgrade (MS-SMB2 3.3.5.9.8): never a downgrade
            h.epoch = (h.epoch + 1) & 0xFFFF
        h.opens.add(open_id)
        flags = LEASE_FLAG_BREAK_IN_PROGRESS if h.breaking else 0
        if h.version >= 2 and h.parent is not None:
            flags |= LEASE_FLAG_PARENT_LEASE_KEY_SET
        return Grant(NtStatus.SUCCESS, OplockLevel.LEASE, h.state, flags, h.epoch if h.version >= 2 else 0, breaks)

    # ---- other operations -----------------------------------------------------------------

    def close(self, open_id: int) -> Outcome:
        """Forget an open (CLOSE, logoff, disconnect, a CREATE that failed after ``grant``). A
        lease goes with its last open; a break in progress on what goes settles. Unknown ids
        are ignored."""
        o = self._opens.pop(open_id, None)
        if o is None:
            return Outcome()
        h = self._holders[o.holder]
        h.opens.discard(open_id)
        if h.opens:
            return Outcome()
        self._drop_holder(o.holder)
        return Outcome(settled=(o.holder,) if h.breaking else ())

    def on_write(self, file: int, by_open: int | None = None) -> Outcome:
        """A WRITE, a truncate, a set-end-of-file or allocation through ``by_open`` (None: by
        the server itself): every other holder breaks to NONE (MS-FSA 2.1.4.12). The write
        does not wait: no other holder can hold W while ``by_open`` is open."""
        own = self._opens[by_open].holder if by_open in self._opens else None
        return self._break_all(file, own, lambda h: 0)

    def on_rename(self, file: int, by_open: int | None = None) -> Outcome:
        """A rename or delete (or delete-on-close) of ``file`` or of a directory above it: other
        holders lose H. The operation should wait for ``wait_for`` (the holders may close
        their handles), then re-check share modes and proceed."""
        own = self._opens[by_open].holder if by_open in self._opens else None
        out = self._break_all(file, own, lambda h: self._target(h, H))
        wait = frozenset(b.holder for b in out.breaks if b.ack_required)
        return Outcome(out.breaks, (), wait)

    def on_external_change(self, file: int, kind: Change) -> Outcome:
        """A change made outside this server process: nothing here can make it wait, so break
        what it invalidates (DATA: all to NONE, OPENED: W, REMOVED: H) and carry on."""
        if kind is Change.DATA:
            return self._break_all(file, None, lambda h: 0)
        remove = W if kind is Change.OPENED else H
        return self._break_all(file, None, lambda h: self._target(h, remove))

    # ---- acknowledgments and timeouts -------------------------------------------------------

    def ack_oplock(self, open_id: int, level: int) -> AckResult:
        """An OPLOCK_BREAK acknowledgment (MS-SMB2 3.3.5.22.1): FILE_CLOSED for an unknown
        open, INVALID_DEVICE_STATE without a break in progress; LEASE (INVALID_PARAMETER) or a
        level above the one the break allows (INVALID_OPLOCK_PROTOCOL) end the break at NONE."""
        o = self._opens.get(open_id)
        if o is None:
            return AckResult(NtStatus.FILE_CLOSED)
        h = self._holders[o.holder]
        if not h.breaking or h.lease:     # a lease's open has no oplock of its own to break
            return AckResult(NtStatus.INVALID_DEVICE_STATE)
        current = oplock_level(h.state)
        bad = None
        if level == OplockLevel.LEASE:
            bad = NtStatus.INVALID_PARAMETER
        elif level not in (OplockLevel.II, OplockLevel.NONE) or (current == OplockLevel.II and level != 0):
            bad = NtStatus.INVALID_OPLOCK_PROTOCOL
        if bad is not None:
            self._settle(h, 0)
            return AckResult(bad, 0, (), (open_id,))
        return self._finish(open_id, h, oplock_state(level) & h.break_to, oplock=True)

    def ack_lease(self, lease: LeaseId, state: int) -> AckResult:
        """A LEASE_BREAK acknowledgment (MS-SMB2 3.3.5.22.2): OBJECT_NAME_NOT_FOUND for an
        unknown lease, UNSUCCESSFUL without a break in progress, REQUEST_NOT_ACCEPTED for a
        state that is not within the one the break offered or is no lease state at all (H or
        W without R); the break then stays in progress."""
        h = self._holders.get(lease)
        if h is None or not h.lease:
            return AckResult(NtStatus.OBJECT_NAME_NOT_FOUND)
        if not h.breaking:
            return AckResult(NtStatus.UNSUCCESSFUL)
        if state & ~h.break_to or valid_lease_state(state) != state:
            return AckResult(NtStatus.REQUEST_NOT_ACCEPTED)
        return self._finish(lease, h, state, oplock=False)

    def expire(self, now: float | None = None) -> Outcome:
        """Force every break not acknowledged in time to NONE (MS-SMB2 3.3.6.5, 3.3.6.6)."""
        now = self._clock() if now is None else now
        late = [hid for hid, h in self._holders.items() if h.breaking and h.deadline <= now]
        for hid in late:
            self._settle(self._holders[hid], 0)
        return Outcome(settled=tuple(late))

    def next_deadline(self) -> float | None:
        """When :meth:`expire` next has work (clock time), or None."""
        return min((h.deadline for h in self._holders.values() if h.breaking), default=None)

    # ---- queries -------------------------------------------------------------------------

    def is_breaking(self, holder: Holder) -> bool:
        """Whether ``holder`` has a break waiting for its acknowledgment."""
        h = self._holders.get(holder)
        return h is not None and h.breaking

    def holders(self, file: int) -> list[HolderInfo]:
        """The holders of a file with their state and opens."""
        out = []
        for hid in self._files.get(file, {}):
            h = self._holders[hid]
            stat = frozenset(o for o in h.opens if self._opens[o].stat)
            out.append(HolderInfo(hid, h.state, h.breaking, h.break_to, frozenset(h.opens), stat))
        return out

    def cached_files(self) -> list[int]:
        """Files some holder caches (state not NONE): the ones the server should poll in core.fs
        for changes by others (ctime/size, share-mode table) and report to ``on_external_change``."""
        return [f for f, hs in self._files.items() if any(self._holders[h].state for h in hs)]

    # ---- internals -----------------------------------------------------------------------

    def _others(self, file: int, own: Holder | None) -> list[Holder]:
        return [h for h in self._files.get(file, {}) if h != own]

    def _add_holder(self, hid: Holder, h: _Holder) -> None:
        self._holders[hid] = h
        self._files.setdefault(h.file, {})[hid] = None

    def _drop_holder(self, hid: Holder) -> None:
        h = self._holders.pop(hid)
        hs = self._files[h.file]
        del hs[hid]
        if not hs:
            del self._files[h.file]

    @staticmethod
    def _target(h: _Holder, remove: int) -> int:
        """The state ``h`` breaks to when ``remove`` must go: an oplock can only go to R or NONE."""
        target = h.state & ~remove
        if target != h.state and not h.lease:
            target &= R
        return target

    def _break_all(self, file: int, own: Holder | None, target: Callable[[_Holder], int]) -> Outcome:
        breaks = []
        for hid in self._others(file, own):
            h = self._holders[hid]
            brk = self._lower(hid, h, target(h))
            if brk is not None:
                breaks.append(brk)
        return Outcome(tuple(breaks))

    def _lower(self, hid: Holder, h: _Holder, target: int, bump: bool = True) -> Break | None:
        """Start breaking ``h`` to ``target`` (or lower an ongoing break's target)."""
        target &= h.state
        if h.breaking:
            h.want &= target
            return None
        if h.state == target:
            return None
        if h.lease and bump:
            h.epoch = (h.epoch + 1) & 0xFFFF
        current = h.state
        ack = bool(current & (W | H))
        if ack:
            h.breaking, h.break_to, h.want = True, target, target
            h.deadline = self._clock() + self._timeout
        else:
            h.state = target
        return self._notice(hid, h, current, target, ack)

    def _notice(self, hid: Holder, h: _Holder, current: int, new: int, ack: bool) -> Break:
        if h.lease:
            epoch = h.epoch if h.version >= 2 else 0
            return Break(h.file, hid, tuple(sorted(h.opens)), current, new, ack, epoch)
        return Break(h.file, hid, tuple(sorted(h.opens)), int(oplock_level(current)), int(oplock_level(new)), ack)

    @staticmethod
    def _settle(h: _Holder, state: int) -> None:
        h.state, h.breaking, h.break_to, h.want = state, False, 0, 0

    def _finish(self, hid: Holder, h: _Holder, state: int, *, oplock: bool) -> AckResult:
        """Complete an acknowledged break at ``state``; break further if later events want less."""
        want = h.want
        self._settle(h, state)
        value = int(oplock_level(state)) if oplock else state
        if state & ~want == 0:
            return AckResult(NtStatus.SUCCESS, value, (), (hid,))
        step = ((want | R) if state & (W | H) else want) & state
        brk = self._lower(hid, h, step, bump=False)
        if h.breaking:
            h.want = want & step
            return AckResult(NtStatus.SUCCESS, value, _opt(brk), ())
        return AckResult(NtStatus.SUCCESS, value, _opt(brk), (hid,))


def _opt(b: Break | None) -> tuple[Break, ...]:
    return () if b is None else (b,)

