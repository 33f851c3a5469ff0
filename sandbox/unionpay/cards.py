"""The sandbox's test cards: what the issuing bank knows about each, and how it behaves.

Numbers are Luhn-valid and start with 62 (UnionPay). Any other Luhn-valid 62... number behaves as a debit
card that accepts whatever phone is given. The sandbox never keeps a number: a card is remembered by a keyed
fingerprint (for matching the SMS step to the consume) and a masked form for display and statements.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class TestCard:
    number: str
    kind: str  # "debit" | "credit"
    phone: str
    holder: str
    expired: str  # YYMM
    cvn2: str | None  # credit cards only
    behaviour: str  # "pay" | "challenge" | "decline"

    def public_json(self) -> dict[str, str | None]:
        return {"number": self.number, "kind": self.kind, "phone": self.phone, "holder": self.holder,
                "expiry_yymm": self.expired, "cvv": self.cvn2, "behaviour": self.behaviour}


TEST_CARDS: tuple[TestCard, ...] = (
    TestCard("6217000000000000012", "debit", "13800138000", "张三", "2912", None, "pay"),
    TestCard("6258000000000022", "credit", "13900139000", "李四", "2912", "123", "challenge"),
    TestCard("6225880000000035", "credit", "13700137000", "王五", "3006", "456", "pay"),
    TestCard("6217000000000000046", "debit", "13600136000", "赵六", "2912", None, "decline"),
)
_BY_NUMBER = {card.number: card for card in TEST_CARDS}
_FINGERPRINT_KEY = secrets.token_bytes(32)  # per process: fingerprints are only compared within one run


def luhn_ok(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def lookup(number: str) -> TestCard | None:
    """The bank's record of a card; None when the number is not a UnionPay card at all."""
    if not luhn_ok(number) or not number.startswith("62"):
        return None
    return _BY_NUMBER.get(number) or TestCard(number, "debit", "", "", "", None, "pay")


def fingerprint(number: str) -> str:
    return hmac.new(_FINGERPRINT_KEY, number.encode(), hashlib.sha256).hexdigest()


def mask(number: str) -> str:
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else ""
