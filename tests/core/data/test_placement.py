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


@pytest.mark.parametrize("nodes,disks,n,cap", [(4, 3, 6, 2), (3, 4, 6, 2), (2, 6, 6, 3), (6, 2, 6, 1), (4, 4, 11, 3)])
def test_cells_spread_evenly_over_nodes(nodes: int, disks: int, n: int, cap: int) -> None:
    cands = [Candidate(i, 1.0, f"node{i % nodes}") for i in range(nodes * disks)]
    for seg in range(200):
        chosen = place(seg, cands, n)
        per = Counter(f"node{t % nodes}" for t in chosen)
        assert len(set(chosen)) == n and max(per.values()) == cap


def test_uneven_disk_counts_still_spread() -> None:
    # node0 has 8 disks, the others 1 each: the big node still gets no more than its even share
    cands = [Candidate(i, 1.0, "node0") for i in range(8)] + [Candidate(8 + j, 1.0, f"node{j + 1}") for j in range(3)]
    for seg in range(100):
        chosen = place(seg, cands, 6)
        assert sum(1 for t in chosen if t < 8) == 3  # 6 cells over 4 nodes: 1 each first, then node0 fills


def test_replacement_avoids_domains_holding_shards() -> None:
    cands = [Candidate(i, 1.0, f"node{i % 3}") for i in range(9)]
    for seg in range(50):
        got = place(seg, cands, 1, exclude=frozenset({0, 1}), avoid_domains=frozenset({"node0", "node1"}))
        assert got[0] % 3 == 2
