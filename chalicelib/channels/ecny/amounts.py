"""Wire amounts of the gateway: yuan decimal strings with exactly two decimals (``"88.88"``), CNY only.

The parser is strict on purpose: ``"88.8"``, ``"88"``, ``"+1.00"``, ``"1e2"`` or a JSON number are refused
rather than guessed, so a malformed amount can never be read as some other amount of money.
"""

from __future__ import annotations

import re
from typing import Any

from chalicelib.domain.money import Money

CURRENCY = "CNY"
_YUAN = re.compile(r"^(0|[1-9][0-9]{0,12})\.([0-9]{2})$")


def money_to_yuan(amount: Money) -> str:
    """8888 fen -> ``"88.88"``; refuses other currencies and negative amounts."""
    if amount.currency != CURRENCY:
        raise ValueError("e-CNY amounts are CNY only")
    if amount.minor < 0:
        raise ValueError("e-CNY wire amounts are never negative")
    return f"{amount.minor // 100}.{amount.minor % 100:02d}"


def yuan_to_money(text: Any, currency: Any = CURRENCY) -> Money:
    """``"88.88"`` -> 8888 fen. ValueError on anything but a plain non-negative yuan string with 2 decimals."""
    if currency != CURRENCY:
        raise ValueError(f"e-CNY currency must be {CURRENCY}")
    if not isinstance(text, str):
        raise ValueError("e-CNY amount must be a string of yuan")
    match = _YUAN.match(text)
    if match is None:
        raise ValueError(f"{text[:32]!r} is not a yuan amount with two decimals")
    return Money(int(match.group(1)) * 100 + int(match.group(2)), CURRENCY)
