"""The oplock/lease table: the grant/break matrix, acknowledgments, timeouts, outside changes,
and a hypothesis state machine that checks the caching invariants after every step."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from protocols.smb.leases import (
    LEASE_FLAG_BREAK_IN_PROGRESS,
    LEASE_FLAG_PARENT_LEASE_KEY_SET,
    Change,
    Grant,
    H,
    LeaseId,
    LeaseRequest,
    LeaseTable,
    OplockLevel,
    R,
    W,
)
from protocols.smb.status import NtStatus

RWH = R | W | H
READ = 0x0012_0089        # READ_DATA | READ_EA | READ_ATTRIBUTES | READ_CONTROL | SYNCHRONIZE
WRITE = READ | 0x0000_0116
STAT = 0x0000_0080 | 0x0010_0000
OVERWRITE_IF = 5
CLIENT = b"C" * 16
L1, L2, L3 = (LeaseId(CLIENT, bytes([n]) * 16) for n in (1, 2, 3))
F = 100


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def lease(lid: LeaseId, state: int, version: int = 1, epoch: int = 0, parent: bytes | None = None) -> LeaseRequest:
    return LeaseRequest(lid.client, lid.key, state, version, epoch, parent)


def lgrant(t: LeaseTable, open_id: int, lid: LeaseId, state: int, file: int = F, version: int = 1,
           sharing_violation: bool = False) -> Grant:
    return t.grant(file, open_id, OplockLevel.LEASE, lease(lid, state, version), sharing_violation=sharing_violation)


def state_of(t: LeaseTable, holder: int | LeaseId, file: int = F) -> int:
    return next(h.state for h in t.holders(file) if h.holder == holder)


# ---- oplocks ---------------------------------------------------------------------------------

def test_batch_vs_batch_breaks_to_level_ii_and_waits() -> None:
    t = LeaseTable(clock=Clock())
    assert t.grant(F, 1, OplockLevel.BATCH).level is OplockLevel.BATCH
    g = t.grant(F, 2, OplockLevel.BATCH)
    assert g.status is NtStatus.PENDING and g.wait_for == {1}
    [b] = g.breaks
    assert (b.holder, b.opens, b.current, b.new, b.ack_required, b.is_lease) == (1, (1,), 9, 1, True, False)
    again = t.grant(F, 2, OplockLevel.BATCH)            # retried too early: still waiting, no second notification
    assert again.status is NtStatus.PENDING and again.breaks == ()
    r = t.ack_oplock(1, OplockLevel.II)
    assert (r.status, r.value, r.breaks, r.settled) == (NtStatus.SUCCESS, OplockLevel.II, (), (1,))
    g = t.grant(F, 2, OplockLevel.BATCH)
    assert (g.status, g.level, g.breaks) == (NtStatus.SUCCESS, OplockLevel.II, ())
    # a write through open 2 breaks open 1's level II to none, with no ack
    [b] = t.on_write(F, 2).breaks
    assert (b.holder, b.current, b.new, b.ack_required) == (1, OplockLevel.II, OplockLevel.NONE, False)
    assert state_of(t, 1) == 0 and state_of(t, 2) == R


def test_exclusive_vs_plain_read_open() -> None:
    t = LeaseTable(clock=Clock())
    assert t.grant(F, 1, OplockLevel.EXCLUSIVE).level is OplockLevel.EXCLUSIVE
    g = t.grant(F, 2, OplockLevel.NONE, access=READ)
    assert g.status is NtStatus.PENDING and [(b.current, b.new) for b in g.breaks] == [(8, 1)]
    assert t.ack_oplock(1, OplockLevel.NONE).value == OplockLevel.NONE
    assert t.grant(F, 2, OplockLevel.NONE, access=READ).status is NtStatus.SUCCESS
    assert state_of(t, 1) == 0


def test_stat_open_breaks_nothing_and_gets_nothing() -> None:
    t = LeaseTable(clock=Clock())
    t.grant(F, 1, OplockLevel.BATCH)
    g = t.grant(F, 2, OplockLevel.BATCH, access=STAT)
    assert (g.status, g.level, g.breaks) == (NtStatus.SUCCESS, OplockLevel.NONE, ())
    assert state_of(t, 1) == RWH


def test_overwrite_breaks_batch_to_none_and_level_ii_without_waiting() -> None:
    t = LeaseTable(clock=Clock())
    t.grant(F, 1, OplockLevel.BATCH)
    g = t.grant(F, 2, OplockLevel.NONE, access=WRITE, disposition=OVERWRITE_IF)
    assert g.status is NtStatus.PENDING and [(b.new, b.ack_required) for b in g.breaks] == [(0, True)]
    r = t.ack_oplock(1, OplockLevel.II)                 # II offered nothing: the break ends at NONE
    assert (r.status, r.value) == (NtStatus.SUCCESS, OplockLevel.NONE)
    t2 = LeaseTable(clock=Clock())
    t2.grant(F, 1, OplockLevel.II)
    g = t2.grant(F, 2, OplockLevel.NONE, access=WRITE, disposition=0)     # SUPERSEDE
    assert g.status is NtStatus.SUCCESS and [(b.new, b.ack_required) for b in g.breaks] == [(0, False)]


def test_sharing_violation_breaks_batch_then_fails_unless_the_holder_closed() -> None:
    t = LeaseTable(clock=Clock())
    t.grant(F, 1, OplockLevel.BATCH)
    g = t.grant(F, 2, OplockLevel.NONE, sharing_violation=True)
    assert g.status is NtStatus.PENDING and g.wait_for == {1}
    t.ack_oplock(1, OplockLevel.II)
    assert t.grant(F, 2, OplockLevel.NONE, sharing_violation=True).status is NtStatus.SHARING_VIOLATION
    assert t.holders(F)[0].opens == {1}                 # nothing registered for open 2
    # an exclusive oplock caches no handle: a sharing violation is final at once
    t2 = LeaseTable(clock=Clock())
    t2.grant(F, 1, OplockLevel.EXCLUSIVE)
    g = t2.grant(F, 2, OplockLevel.NONE, sharing_violation=True)
    assert (g.status, g.breaks) == (NtStatus.SHARING_VIOLATION, ())


def test_close_during_a_break_settles_it() -> None:
    t = LeaseTable(clock=Clock())
    t.grant(F, 1, OplockLevel.BATCH)
    assert t.grant(F, 2, OplockLevel.BATCH).status is NtStatus.PENDING
    assert t.close(1).settled == (1,)
    assert t.grant(F, 2, OplockLevel.BATCH).level is OplockLevel.BATCH
    assert t.close(99).settled == () and t.holders(F)[0].holder == 2


# ---- leases ----------------------------------------------------------------------------------

def test_same_lease_key_never_breaks_and_upgrades() -> None:
    t = LeaseTable(clock=Clock())
    g = t.grant(F, 1, OplockLevel.LEASE, lease(L1, R | H, version=2, epoch=5))
    assert (g.level, g.lease_state, g.epoch) == (OplockLevel.LEASE, R | H, 6)
    g = t.grant(F, 2, OplockLevel.LEASE, lease(L1, RWH, version=2))
    assert (g.status, g.lease_state, g.breaks, g.epoch) == (NtStatus.SUCCESS, RWH, (), 7)
    g = t.grant(F, 3, OplockLevel.LEASE, lease(L1, R, version=2))      # never a downgrade
    assert (g.lease_state, g.epoch) == (RWH, 7)
    assert t.holders(F)[0].opens == {1, 2, 3}


def test_different_lease_keys_break_write_caching() -> None:
    t = LeaseTable(clock=Clock())
    lgrant(t, 1, L1, RWH, version=2)
    g = lgrant(t, 2, L2, RWH)
    assert g.status is NtStatus.PENDING and g.wait_for == {L1}
    [b] = g.breaks
    assert (b.holder, b.current, b.new, b.ack_required, b.epoch, b.is_lease) == (L1, RWH, R | H, True, 2, True)
    # a second open of the lease being broken is told so, and does not upgrade it
    g3 = lgrant(t, 3, L1, RWH)
    assert (g3.status, g3.lease_state, g3.lease_flags) == (NtStatus.SUCCESS, RWH, LEASE_FLAG_BREAK_IN_PROGRESS)
    r = t.ack_lease(L1, R | H)
    assert (r.status, r.value, r.settled) == (NtStatus.SUCCESS, R | H, (L1,))
    g = lgrant(t, 2, L2, RWH)
    assert (g.status, g.lease_state) == (NtStatus.SUCCESS, R | H)     # no second writer


def test_write_breaks_other_read_leases_to_none() -> None:
    t = LeaseTable(clock=Clock())
    lgrant(t, 1, L1, R | H)
    lgrant(t, 2, L2, R)
    lgrant(t, 3, L3, R | H)
    out = t.on_write(F, 3)
    got = {b.holder: (b.current, b.new, b.ack_required) for b in out.breaks}
    assert got == {L1: (R | H, 0, True), L2: (R, 0, False)}
    assert state_of(t, L2) == 0 and t.is_breaking(L1) and not t.is_breaking(L3)
    assert t.ack_lease(L1, 0).settled == (L1,)


def test_lease_and_oplock_mix() -> None:
    t = LeaseTable(clock=Clock())
    assert t.grant(F, 1, OplockLevel.II).level is OplockLevel.II
    assert lgrant(t, 2, L1, RWH).lease_state == R        # no W with another open, no H beside an oplock
    t2 = LeaseTable(clock=Clock())
    lgrant(t2, 1, L1, R | H)
    g = t2.grant(F, 2, OplockLevel.BATCH)
    assert (g.status, g.level, g.breaks) == (NtStatus.SUCCESS, OplockLevel.NONE, ())


def test_lease_request_shapes() -> None:
    t = LeaseTable(clock=Clock())
    assert [lgrant(t, i, LeaseId(CLIENT, bytes([i]) * 16), s, file=i).lease_state for i, s in
            enumerate([H, W, H | W, R | W], start=10)] == [0, 0, 0, R | W]
    assert t.grant(F, 1, OplockLevel.LEASE).level is OplockLevel.NONE              # no lease context
    assert t.grant(F + 1, 2, OplockLevel.BATCH, lease(L1, R)).level is OplockLevel.BATCH   # context ignored
    assert t.grant(F + 2, 3, OplockLevel.LEASE, lease(L2, RWH), directory=True).level is OplockLevel.NONE
    assert lgrant(t, 4, L3, RWH, file=F + 3).status is NtStatus.SUCCESS
    assert lgrant(t, 5, L3, RWH, file=F + 4).status is NtStatus.INVALID_PARAMETER   # key in use elsewhere
    g = t.grant(F + 5, 6, OplockLevel.LEASE, lease(LeaseId(CLIENT, b"p" * 16), R, version=2, parent=b"q" * 16))
    assert g.lease_flags == LEASE_FLAG_PARENT_LEASE_KEY_SET


def test_sharing_violation_breaks_handle_caching() -> None:
    t = LeaseTable(clock=Clock())
    lgrant(t, 1, L1, R | H)
    g = lgrant(t, 2, L2, R | H, sharing_violation=True)
    assert g.status is NtStatus.PENDING and [(b.current, b.new) for b in g.breaks] == [(R | H, R)]
    t.ack_lease(L1, R)
    t.close(1)                                           # the client closed the handle it kept
    assert lgrant(t, 2, L2, R | H).lease_state == R | H


def test_rename_breaks_handle_caching_and_waits() -> None:
    t = LeaseTable(clock=Clock())
    lgrant(t, 1, L1, R | H)
    lgrant(t, 2, L2, R | H)
    out = t.on_rename(F, 2)
    assert out.wait_for == {L1} and [(b.holder, b.new) for b in out.breaks] == [(L1, R)]


def test_rename_and_removal_spare_exclusive_and_own_holder() -> None:
    t = LeaseTable(clock=Clock())
    t.grant(F, 1, OplockLevel.EXCLUSIVE)
    assert t.on_rename(F, None) == t.on_rename(F, 1)                   # no handle caching: nothing
    assert t.on_rename(F, None).breaks == ()
    t.close(1)
    t.grant(F, 1, OplockLevel.BATCH)
    assert t.on_rename(F, 1).breaks == ()                              # its own rename
    out = t.on_external_change(F, Change.REMOVED)
    assert [(b.current, b.new) for b in out.breaks] == [(OplockLevel.BATCH, OplockLevel.II)]
    assert t.on_write(F, 1).breaks == ()                               # own writes break nothing


def test_read_control_is_a_stat_open_for_leases_only() -> None:
    rc = 0x0002_0000 | 0x0010_0000
    t = LeaseTable(clock=Clock())
    lgrant(t, 1, L1, RWH)
    g = t.grant(F, 2, OplockLevel.LEASE, lease(L2, RWH), access=rc)
    assert (g.status, g.lease_state, g.breaks) == (NtStatus.SUCCESS, 0, ())
    t2 = LeaseTable(clock=Clock())
    t2.grant(F, 1, OplockLevel.BATCH)
    assert t2.grant(F, 2, OplockLevel.NONE, access=rc).status is NtStatus.PENDING


# ---- acknowledgments ---------------------------------------------------------------------------

def test_oplock_ack_validation() -> None:
    t = LeaseTable(clock=Clock())
    assert t.ack_oplock(1, 0).status is NtStatus.FILE_CLOSED
    t.grant(F, 1, OplockLevel.BATCH)
    assert t.ack_oplock(1, 0).status is NtStatus.INVALID_DEVICE_STATE
    t.grant(F, 2, OplockLevel.NONE)
    r = t.ack_oplock(1, OplockLevel.LEASE)
    assert (r.status, r.settled, state_of(t, 1)) == (NtStatus.INVALID_PARAMETER, (1,), 0)
    t.close(2)
    t.close(1)
    for bad in (OplockLevel.EXCLUSIVE, OplockLevel.BATCH, 2):
        t.grant(F, 1, OplockLevel.BATCH)
        assert t.grant(F, 2, OplockLevel.NONE).status is NtStatus.PENDING
        r = t.ack_oplock(1, bad)
        assert (r.status, r.settled, state_of(t, 1)) == (NtStatus.INVALID_OPLOCK_PROTOCOL, (1,), 0)
        t.close(1)
    lgrant(t, 5, L1, RWH, file=F + 1)
    assert t.ack_oplock(5, 0).status is NtStatus.INVALID_DEVICE_STATE              # a lease's open


def test_lease_ack_validation() -> None:
    t = LeaseTable(clock=Clock())
    assert t.ack_lease(L1, 0).status is NtStatus.OBJECT_NAME_NOT_FOUND
    lgrant(t, 1, L1, RWH)
    assert t.ack_lease(L1, 0).status is NtStatus.UNSUCCESSFUL
    lgrant(t, 2, L2, R)
    assert t.ack_lease(L1, RWH).status is NtStatus.REQUEST_NOT_ACCEPTED             # W was broken
    assert t.ack_lease(L1, R | W).status is NtStatus.REQUEST_NOT_ACCEPTED
    assert t.ack_lease(L1, H).status is NtStatus.REQUEST_NOT_ACCEPTED                # H without R
    assert t.is_breaking(L1)
    r = t.ack_lease(L1, R)                              # less than offered is fine
    assert (r.status, r.value, r.settled, state_of(t, L1)) == (NtStatus.SUCCESS, R, (L1,), R)


def test_lower_target_while_breaking_breaks_again_after_the_ack() -> None:
    t = LeaseTable(clock=Clock())
    lgrant(t, 1, L1, RWH, version=2)
    g = lgrant(t, 2, L2, R)
    assert g.breaks[0].epoch == 2
    assert t.on_external_change(F, Change.DATA).breaks == ()                  # lowers the target quietly
    r = t.ack_lease(L1, R | H)
    assert (r.status, r.value, r.settled) == (NtStatus.SUCCESS, R | H, ())
    [b] = r.breaks                                      # in steps: RH -> R (ack) -> NONE
    assert (b.current, b.new, b.ack_required, b.epoch) == (R | H, R, True, 2)
    r = t.ack_lease(L1, R)
    [b] = r.breaks
    assert (b.current, b.new, b.ack_required, r.settled, state_of(t, L1)) == (R, 0, False, (L1,), 0)
    # the same for an oplock: batch -> II, then II -> NONE with no ack
    t.grant(F + 1, 5, OplockLevel.BATCH)
    t.grant(F + 1, 6, OplockLevel.NONE)
    t.on_external_change(F + 1, Change.DATA)
    r = t.ack_oplock(5, OplockLevel.II)
    assert r.value == OplockLevel.II and [(b.new, b.ack_required) for b in r.breaks] == [(0, False)]
    assert r.settled == (5,)


# ---- timeouts and outside changes ------------------------------------------------------------

def test_unacknowledged_breaks_are_forced_after_35_seconds() -> None:
    clock = Clock()
    t = LeaseTable(clock=clock)
    t.grant(F, 1, OplockLevel.BATCH)
    lgrant(t, 2, L1, RWH, file=F + 1)
    assert t.next_deadline() is None
    clock.now = 10.0
    t.grant(F, 3, OplockLevel.BATCH)
    clock.now = 20.0
    lgrant(t, 4, L2, R, file=F + 1)
    assert t.next_deadline() == 45.0
    assert t.expire(44.9).settled == ()
    assert t.expire(45.0).settled == (1,) and state_of(t, 1) == 0
    clock.now = 55.0
    assert t.expire().settled == (L1,) and state_of(t, L1, F + 1) == 0 and t.next_deadline() is None
    assert t.ack_lease(L1, 0).status is NtStatus.UNSUCCESSFUL
    assert t.grant(F, 3, OplockLevel.BATCH).level is OplockLevel.II


def test_external_changes() -> None:
    t = LeaseTable(clock=Clock())
    lgrant(t, 1, L1, RWH)
    t.grant(F + 1, 2, OplockLevel.EXCLUSIVE)
    t.grant(F + 2, 3, OplockLevel.BATCH)
    lgrant(t, 4, L2, R, file=F + 3)
    t.grant(F + 4, 5, OplockLevel.NONE)
    assert sorted(t.cached_files()) == [F, F + 1, F + 2, F + 3]
    [b] = t.on_external_change(F, Change.OPENED).breaks
    assert (b.current, b.new, b.ack_required) == (RWH, R | H, True)
    assert t.on_external_change(F + 1, Change.REMOVED).breaks == ()            # no handle caching to lose
    [b] = t.on_external_change(F + 2, Change.REMOVED).breaks
    assert (b.current, b.new) == (OplockLevel.BATCH, OplockLevel.II)
    [b] = t.on_external_change(F + 3, Change.DATA).breaks
    assert (b.current, b.new, b.ack_required) == (R, 0, False)
    assert t.on_external_change(F + 4, Change.DATA).breaks == ()
    assert F + 3 not in t.cached_files()


# ---- invariants under random operations ------------------------------------------------------

FILES = (1, 2)
KEYS = (None, L1, L2, L3)          # None: an oplock open
LEVELS = (OplockLevel.NONE, OplockLevel.II, OplockLevel.EXCLUSIVE, OplockLevel.BATCH)


class TableMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.t = LeaseTable(clock=self.clock)
        self.next_id = 1
        self.pending: list[tuple[int, int, int, LeaseRequest | None, int, int]] = []

    def _create(self, file: int, open_id: int, level: int, req: LeaseRequest | None, access: int,
                disposition: int, violation: bool) -> None:
        g = self.t.grant(file, open_id, level, req, access=access, disposition=disposition,
                         sharing_violation=violation)
        if g.status is NtStatus.PENDING:
            assert g.wait_for and all(self.t.is_breaking(h) for h in g.wait_for)
            self.pending.append((file, open_id, level, req, access, disposition))
        if g.status is not NtStatus.SUCCESS:
            assert open_id not in {o for f in FILES for h in self.t.holders(f) for o in h.opens}

    @rule(file=st.sampled_from(FILES), key=st.sampled_from(KEYS), level=st.sampled_from(LEVELS),
          state=st.integers(0, 7), access=st.sampled_from((READ, WRITE, STAT)),
          disposition=st.sampled_from((1, 3, 5)), violation=st.booleans())
    def create(self, file: int, key: LeaseId | None, level: int, state: int, access: int, disposition: int,
               violation: bool) -> None:
        req = None if key is None else LeaseRequest(key.client, key.key, state, 2)
        self.next_id += 1
        self._create(file, self.next_id, OplockLevel.LEASE if req else level, req, access, disposition, violation)

    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        if self.pending:
            file, open_id, level, req, access, disposition = self.pending.pop(
                data.draw(st.integers(0, len(self.pending) - 1)))
            self._create(file, open_id, level, req, access, disposition, False)

    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        opens = sorted({o for f in FILES for h in self.t.holders(f) for o in h.opens})
        if opens:
            self.t.close(data.draw(st.sampled_from(opens)))

    @rule(data=st.data(), good=st.booleans())
    def ack(self, data: st.DataObject, good: bool) -> None:
        breaking = [h for f in FILES for h in self.t.holders(f) if h.breaking]
        if not breaking:
            return
        h = data.draw(st.sampled_from(breaking))
        if isinstance(h.holder, LeaseId):
            offered = [v for v in (0, R, R | H, R | W, RWH) if v & ~h.break_to == 0]
            value = data.draw(st.sampled_from(offered) if good else st.integers(0, 7))
            r = self.t.ack_lease(h.holder, value)
            assert r.status in (NtStatus.SUCCESS, NtStatus.REQUEST_NOT_ACCEPTED)
            assert good <= (r.status is NtStatus.SUCCESS)
        else:
            level = data.draw(st.sampled_from((0, 1) if good else (0, 1, 8, 9, 0xFF)))
            r = self.t.ack_oplock(h.holder, level)
            assert good <= (r.status is NtStatus.SUCCESS)

    @rule(file=st.sampled_from(FILES), data=st.data())
    def write(self, file: int, data: st.DataObject) -> None:
        opens = sorted(o for h in self.t.holders(file) for o in h.opens - h.stat_opens)
        if opens:
            self.t.on_write(file, data.draw(st.sampled_from(opens)))

    @rule(file=st.sampled_from(FILES), kind=st.sampled_from(list(Change)))
    def external(self, file: int, kind: Change) -> None:
        self.t.on_external_change(file, kind)

    @rule(seconds=st.sampled_from((1.0, 20.0, 40.0)))
    def tick(self, seconds: float) -> None:
        self.clock.now += seconds
        self.t.expire()
        deadline = self.t.next_deadline()
        assert deadline is None or deadline > self.clock.now

    @invariant()
    def caching_is_consistent(self) -> None:
        for f in FILES:
            hs = self.t.holders(f)
            writers = [h for h in hs if h.state & W]
            assert len(writers) <= 1, hs
            for h in hs:
                assert h.opens and h.stat_opens <= h.opens
                assert h.state in (0, R, R | H, R | W, RWH)
                if not isinstance(h.holder, LeaseId):
                    assert h.state != R | H and len(h.opens) == 1
                if h.breaking:
                    assert h.break_to & ~h.state == 0 and h.state & (W | H) and h.break_to != h.state
                    assert self.t.next_deadline() is not None
            for w in writers:
                if w.breaking and not w.break_to & W:
                    continue               # on its way out
                assert all(h.opens == h.stat_opens for h in hs if h is not w), hs


TestTableMachine = TableMachine.TestCase
TestTableMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
