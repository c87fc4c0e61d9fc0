"""Weighted rendezvous (highest-random-weight) placement of a segment's shards.

Each candidate target gets the score ``-weight / ln(h)`` where ``h`` is a
uniform hash of (segment id, target id) in (0, 1): the classic weighted HRW,
under which a target's share of segments is proportional to its weight and
adding or removing a target only moves the shards that must move.  Targets are
taken in score order, at most one per fault domain while enough domains
remain; the chosen list is *recorded* in metadata, so later topology changes
never silently move data.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass

from core.errors import NoSpace


@dataclass(frozen=True)
class Candidate:
    id: int
    weight: float = 1.0
    domain: str = ""


def _score(segment: int, target: int, weight: float) -> float:
    h = hashlib.blake2b(struct.pack("<QQ", segment, target), digest_size=8).digest()
    u = (int.from_bytes(h, "little") + 1) / (2**64 + 1)  # in (0, 1)
    return -weight / math.log(u)


def place(segment: int, candidates: list[Candidate], n: int, exclude: frozenset[int] = frozenset(),
          avoid_domains: frozenset[str] = frozenset()) -> list[int]:
    """Choose ``n`` distinct targets for ``segment``, spread over fault domains as evenly as possible.

    Targets are taken in score order with at most ``cap`` per fault domain, ``cap`` growing from 1 only as
    far as the number of domains forces: with 4 nodes and 4+2, no node gets more than 2 of the 6 cells, so
    losing any one node loses at most ``m`` cells of a stripe.  ``exclude`` targets are never chosen;
    ``avoid_domains`` (domains already holding the segment's other shards, during rebuild) are used last.

    >>> cands = [Candidate(i, 1.0, f"node{i % 4}") for i in range(12)]  # 4 nodes x 3 disks
    >>> chosen = place(7, cands, 6)
    >>> max(sum(1 for t in chosen if t % 4 == d) for d in range(4))
    2
    """
    pool = [c for c in candidates if c.id not in exclude and c.weight > 0]
    if len(pool) < n:
        raise NoSpace(f"need {n} healthy targets, have {len(pool)}")
    ranked = sorted(pool, key=lambda c: _score(segment, c.id, c.weight), reverse=True)
    chosen: list[int] = []
    per: dict[str, int] = {}
    for dom in avoid_domains:  # already holding one of the segment's shards: counts as used once
        per[dom] = 1
    cap = 1
    while len(chosen) < n:
        for c in ranked:
            dom = domain_of(c)
            if c.id in chosen or per.get(dom, 0) >= cap:
                continue
            chosen.append(c.id)
            per[dom] = per.get(dom, 0) + 1
            if len(chosen) == n:
                return chosen
        cap += 1
    return chosen


def domain_of(c: Candidate) -> str:
    """The fault domain a candidate counts against: its node (or the label given), else the target itself."""
    return c.domain or f"t{c.id}"


def max_per_domain(n: int, domains: int) -> int:
    """The most cells of an ``n``-cell stripe one fault domain holds when spread evenly over ``domains``.

    >>> max_per_domain(6, 4), max_per_domain(6, 2), max_per_domain(11, 4)
    (2, 3, 3)
    """
    return -(-n // max(1, domains))


def nodes_needed(k: int, m: int) -> int:
    """How many fault domains a k+m stripe needs so that losing any one loses at most m cells.

    >>> nodes_needed(4, 2), nodes_needed(8, 3), nodes_needed(1, 1)
    (3, 4, 2)
    """
    n = k + m
    return -(-n // m)
