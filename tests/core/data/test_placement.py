from collections import Counter

import pytest

from core.data.placement import Candidate, place
from core.errors import NoSpace


def test_distinct_and_deterministic() -> None:
    cands = [Candidate(i) for i in range(8)]
    a = place(42, cands, 6)
    assert len(set(a)) == 6
    assert place(42, cands, 6) == a


def test_weights_shift_share() -> None:
    cands = [Candidate(0, 1.0), Candidate(1, 1.0), Candidate(2, 3.0)]
    c = Counter(place(s, cands, 1)[0] for s in range(4000))
    assert c[2] > 2.2 * c[0] and c[2] > 2.2 * c[1]


def test_fault_domains_spread_first() -> None:
    cands = [Candidate(i, 1.0, f"host{i // 2}") for i in range(8)]  # 4 hosts x 2 disks
    for seg in range(50):
        chosen = place(seg, cands, 4)
        assert len({c // 2 for c in chosen}) == 4


def test_adding_a_target_moves_little() -> None:
    base = [Candidate(i) for i in range(10)]
    more = [*base, Candidate(10)]
    moved = sum(place(s, base, 1) != place(s, more, 1) for s in range(2000))
    assert moved < 2000 * 0.15  # about 1/11 move


def test_not_enough_targets() -> None:
    with pytest.raises(NoSpace):
        place(1, [Candidate(0), Candidate(1)], 3)
    with pytest.raises(NoSpace):
        place(1, [Candidate(0), Candidate(1), Candidate(2)], 3, exclude=frozenset({1}))
