"""Sticky percentages: a payer's place among all payers, the same on every Lambda and every day.

SHA-256 of ``salt:payer_id`` read as a number in [0, 10000): a payer below ``percent * 100`` is in the gray
release. Changing the salt reshuffles who is in; raising the percent only adds payers (those already in stay).
"""

from __future__ import annotations

import hashlib

BUCKETS = 10_000


def bucket(payer_id: str, salt: str) -> int:
    digest = hashlib.sha256(f"{salt}:{payer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def within(payer_id: str, salt: str, percent: float) -> bool:
    return bucket(payer_id, salt) < round(percent * BUCKETS / 100)


def weighted_pick(key: str, weights: list[int]) -> int:
    """The index chosen for ``key`` among ``weights`` (stable: the same key picks the same index while the
    weights stay); -1 when every weight is 0."""
    total = sum(weights)
    if total <= 0:
        return -1
    point = int.from_bytes(hashlib.sha256(f"pick:{key}".encode()).digest()[:8], "big") % total
    for index, weight in enumerate(weights):
        if point < weight:
            return index
        point -= weight
    return len(weights) - 1  # unreachable: point < total
