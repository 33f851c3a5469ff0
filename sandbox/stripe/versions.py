"""Which ``Stripe-Version`` values Stripe accepts.

Stripe accepts every API version it ever published, and nothing else (``Invalid Stripe API version``). Up to
2024-06-20 a version is a bare date; from 2024-09-30 on it is a date and the name of its release train, which
changes at each twice-yearly major release (the last day of March and of September) and goes through the alphabet:
2024-09-30.acacia, 2025-03-31.basil, 2025-09-30.clover, 2026-03-31.dahlia, 2026-09-30.endive, ... A monthly
release keeps its train's name (2024-12-18.acacia). The sandbox does not hold Stripe's list of published dates:
it accepts a well-formed version of either era that is not in the future, whose name is its date's train, so every
published version (the SDKs' pinned defaults included) is accepted and malformed or invented-era ones are refused.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

FIRST_VERSION = date(2011, 1, 1)
LAST_BARE_DATE = date(2024, 6, 20)  # the last version without a train name
FIRST_TRAIN = date(2024, 9, 30)  # acacia
_VERSION = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:\.([a-z]+))?$")


def _train_index(day: date) -> int:
    """0 for acacia, 1 for basil, ...: how many major releases (31 March, 30 September) since acacia came before."""
    index = -1
    for year in range(FIRST_TRAIN.year, day.year + 1):
        for boundary in (date(year, 3, 31), date(year, 9, 30)):
            if FIRST_TRAIN <= boundary <= day:
                index += 1
    return index


def is_accepted(version: str, today: date | None = None) -> bool:
    match = _VERSION.match(version)
    if match is None:
        return False
    year, month, day_of_month, train = match.groups()
    try:
        day = date(int(year), int(month), int(day_of_month))
    except ValueError:
        return False
    if day > (today or datetime.now(UTC).date()) or day < FIRST_VERSION:
        return False
    if day <= LAST_BARE_DATE:
        return train is None
    if day < FIRST_TRAIN or train is None:
        return False
    index = _train_index(day)
    return index < 26 and train[0] == chr(ord("a") + index)
