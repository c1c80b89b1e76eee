"""Reproducible train/validation/test splits: the same items, fractions and seed give the same split anywhere.

Items are ordered by a hash of (seed, item id), not by Python's `random` (whose sequences may change between
versions), and cut in order: split k gets `round(fraction_k * n)` items, the last split gets the rest. So sizes
are exact and the assignment depends only on the ids, never on the order they were listed in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence


def _order_key(seed: int, item: str) -> str:
    return hashlib.sha256(f"{seed}:{item}".encode()).hexdigest()


def split_sizes(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """How many of `n` items each split gets: round(fraction * n) in order, the last split the remainder.

    ValueError when a fraction is negative or they sum to more than 1 (the last split takes what is left, so
    its own fraction is only checked for sign).
    """
    names = list(fractions)
    if not names:
        raise ValueError("give at least one split")
    if any(value < 0 for value in fractions.values()) or sum(fractions[name] for name in names[:-1]) > 1 + 1e-9:
        raise ValueError(f"split fractions {dict(fractions)} must be >= 0 and sum to at most 1")
    sizes: dict[str, int] = {}
    left = n
    for name in names[:-1]:
        size = min(left, int(round(fractions[name] * n)))
        sizes[name] = size
        left -= size
    sizes[names[-1]] = left
    return sizes


def assign_splits(items: Sequence[str], fractions: Mapping[str, float], seed: int) -> dict[str, list[str]]:
    """{split name: item ids} for `items` cut by `fractions` (in their given order) after a seeded shuffle."""
    if len(set(items)) != len(items):
        raise ValueError("item ids must be unique to be split")
    ordered = sorted(items, key=lambda item: _order_key(seed, item))
    sizes = split_sizes(len(ordered), fractions)
    result: dict[str, list[str]] = {}
    start = 0
    for name, size in sizes.items():
        result[name] = ordered[start : start + size]
        start += size
    return result
