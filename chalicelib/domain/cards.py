"""Card facts the hub checks itself: the Luhn digit, the brand from the number's prefix, expiry, and which
payment methods take a card number server-side. Pure; the vault (chalicelib/vault) does the cryptography."""

from __future__ import annotations

from datetime import date

# Methods for which the merchant sends the card to the hub and the hub passes it to the channel. Every
# other method refuses a card: the payer types it at the channel (or the channel holds a token).
CARD_METHODS: frozenset[str] = frozenset({"unionpay.card"})

# (brand, prefix ranges as inclusive (low, high) over the first len(low) digits), first match wins.
_BRAND_RANGES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("amex", (("34", "34"), ("37", "37"))),
    ("jcb", (("3528", "3589"),)),
    ("diners", (("300", "305"), ("36", "36"), ("38", "39"))),
    ("discover", (("6011", "6011"), ("644", "649"), ("65", "65"))),
    ("unionpay", (("62", "62"), ("81", "81"))),
    ("mastercard", (("51", "55"), ("2221", "2720"))),
    ("visa", (("4", "4"),)),
)


def requires_card(method: str) -> bool:
    return method in CARD_METHODS


def luhn_valid(number: str) -> bool:
    """The ISO/IEC 7812 check digit: doubling every second digit from the right, the sum ends in 0."""
    if not number.isascii() or not number.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = ord(char) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def brand_of(number: str) -> str:
    for brand, ranges in _BRAND_RANGES:
        for low, high in ranges:
            head = number[:len(low)]
            if len(head) == len(low) and low <= head <= high:
                return brand
    return "unknown"


def expired(exp_month: int, exp_year: int, today: date) -> bool:
    """A card is valid through the last day of its expiry month."""
    return (exp_year, exp_month) < (today.year, today.month)
