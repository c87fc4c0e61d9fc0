"""Credit charge arithmetic and the MessageId window, checked against a brute-force model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.smb.credits import CreditCheck, SequenceWindow, check_credits, credit_charge


@given(st.integers(0, 16 << 20), st.integers(0, 16 << 20))
def test_credit_charge_formula(send: int, resp: int) -> None:
    n = credit_charge(send, resp)
    assert n == 1 + (max(send, resp, 1) - 1) // 65536
    assert (n - 1) * 65536 < max(send, resp, 1) <= n * 65536
    assert check_credits(n, send, resp, available=n) is CreditCheck.OK
    assert check_credits(n, send, resp, available=n - 1) is CreditCheck.OUT_OF_WINDOW
    if n > 1:
        assert check_credits(n - 1, send, resp, available=1000) is CreditCheck.BAD_CHARGE
        assert check_credits(0, send, resp, available=1000) is CreditCheck.BAD_CHARGE


def test_credits_8_mib_read() -> None:
    assert credit_charge(0, 8 << 20) == 128
    assert check_credits(128, 49, 8 << 20, available=512) is CreditCheck.OK
    assert check_credits(0, 0, 65536, available=1) is CreditCheck.OK     # charge 0 = 1, up to 64 KiB
    assert check_credits(5, 0, 10, available=5) is CreditCheck.OK        # over-charging is allowed


def test_window_starts_with_message_zero_only() -> None:
    w = SequenceWindow()
    assert not w.consume(1) and w.consume(0) and not w.consume(0) and w.available == 0
    w.grant(2)
    assert not w.consume(1, 3) and w.consume(1, 2) and w.available == 0
    with pytest.raises(ValueError):
        w.grant(-1)


def test_window_replay_and_out_of_order() -> None:
    w = SequenceWindow()
    w.grant(9)                                   # ids 0..9
    assert w.consume(5, 2) and w.consume(9) and w.consume(0)
    assert not w.consume(6) and not w.consume(4, 2)   # 6 spent; 4..5 overlaps a spent id
    assert w.consume(1, 4) and w.low == 7 and w.available == 2
    assert w.consume(7, 0) and w.consume(8) and w.low == 10 and w.available == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40), st.integers(0, 4)), max_size=60))
def test_window_matches_a_set_model(ops: list[tuple[bool, int, int]]) -> None:
    w = SequenceWindow()
    free, high = {0}, 1
    for is_grant, a, b in ops:
        if is_grant:
            w.grant(b)
            free |= set(range(high, high + b))
            high += b
            continue
        ids = set(range(a, a + max(b, 1)))
        ok = ids <= free
        assert w.consume(a, b) is ok
        if ok:
            free -= ids
        assert w.available == len(free)
        assert w.low == min(free | {high})
