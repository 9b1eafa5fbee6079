"""Seeded negative sampling shared by every implementation of the protocols.

The draws depend only on (seed, purpose, user) and the order in which a user's rows are
visited, never on how data is partitioned across workers, so the Beam pipeline and the
plain reference produce the same negatives.
"""
from __future__ import annotations

import hashlib
import random
from typing import Container, Optional, Sequence

# Rejection sampling is fast while most of the pool is allowed; past this many misses we
# enumerate the allowed items instead (a user who has seen most of the catalogue).
_MAX_MISSES = 64


def user_rng(seed: int, purpose: str, user: str) -> random.Random:
    digest = hashlib.blake2b(f"{seed}\x1f{purpose}\x1f{user}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def sample_one(rng: random.Random, pool: Sequence[str], pool_size: int,
               exclude: Container[str]) -> Optional[str]:
    """One item drawn uniformly from pool[:pool_size] minus `exclude`, or None if empty."""
    for _ in range(_MAX_MISSES):
        if pool_size <= 0:
            return None
        item = pool[rng.randrange(pool_size)]
        if item not in exclude:
            return item
    allowed = [item for item in pool[:pool_size] if item not in exclude]
    return rng.choice(allowed) if allowed else None


def sample_many(rng: random.Random, pool: Sequence[str], pool_size: int, count: int,
                exclude: Container[str]) -> list[str]:
    """`count` distinct items drawn uniformly without replacement from pool[:pool_size]
    minus `exclude` (fewer if fewer are allowed), in draw order."""
    chosen: dict[str, None] = {}
    misses = 0
    max_misses = _MAX_MISSES + 4 * count
    while len(chosen) < count and misses < max_misses and pool_size > 0:
        item = pool[rng.randrange(pool_size)]
        if item in exclude or item in chosen:
            misses += 1
        else:
            chosen[item] = None
    if len(chosen) < count:
        allowed = [i for i in pool[:pool_size] if i not in exclude and i not in chosen]
        chosen.update(dict.fromkeys(rng.sample(allowed, min(count - len(chosen), len(allowed)))))
    return list(chosen)
