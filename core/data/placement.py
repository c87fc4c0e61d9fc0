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
    """Choose ``n`` distinct targets for ``segment``, spread over fault domains.

    ``exclude`` targets are never chosen; ``avoid_domains`` (domains already
    holding the segment's other shards, during rebuild) are used last.
    """
    pool = [c for c in candidates if c.id not in exclude and c.weight > 0]
    if len(pool) < n:
        raise NoSpace(f"need {n} healthy targets, have {len(pool)}")
    ranked = sorted(pool, key=lambda c: _score(segment, c.id, c.weight), reverse=True)
    chosen: list[int] = []
    used = set(avoid_domains)
    for c in ranked:  # first pass: one per fault domain
        dom = c.domain or f"t{c.id}"
        if dom not in used:
            chosen.append(c.id)
            used.add(dom)
            if len(chosen) == n:
                return chosen
    for c in ranked:  # not enough domains: fill up with the best remaining
        if c.id not in chosen:
            chosen.append(c.id)
            if len(chosen) == n:
                break
    return chosen
