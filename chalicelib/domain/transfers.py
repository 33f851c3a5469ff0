"""Corporate transfers in (对公转账): how a payer business's bank credit is found to be for an order, and what
it does to that order.

Each order paying by transfer gets a virtual sub-account of the reserve account (the strongest key: the bank
names it on the credit) and a short remittance code the payer can write in the transfer's postscript (附言)
when paying to the main account. A credit names its order by the sub-account, else by a valid code found in
its postscript; otherwise it is unknown and waits for a person.

Against the order's amount, the money received so far decides:

    exact    received == amount       the order is paid
    partial  received <  amount       it waits for the rest (the payer may send it in several transfers)
    over     received >  amount       the order is paid; the excess waits to be returned or applied
    unknown  no order                 the credit waits for a person (return it, or assign it to an order)
"""

from __future__ import annotations

import re
import secrets
from enum import StrEnum

from chalicelib.domain.value_class import value_class

_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: a code read aloud or typed from paper survives
_CODE_BODY = 7
_CODE = re.compile(rf"(?=(PH[{_ALPHABET}]{{{_CODE_BODY + 1}}}))")  # overlapping: each place a code could start


class MatchKind(StrEnum):
    EXACT = "exact"
    PARTIAL = "partial"
    OVER = "over"
    UNKNOWN = "unknown"


def _check_char(body: str) -> str:
    """A weighted mod-32 check character with odd weights (each invertible mod 32): any one wrong character is
    always caught; two neighbours swapped are caught unless they stand 16 apart in the alphabet."""
    total = sum((2 * index + 1) * _ALPHABET.index(char) for index, char in enumerate(body))
    return _ALPHABET[total % len(_ALPHABET)]


def new_remittance_code() -> str:
    """``PH`` + 7 random characters + 1 check character, e.g. ``PH7K3QX9MT``: unique enough per order (32^7 =
    3.4e10), short enough to write in a postscript."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_CODE_BODY))
    return f"PH{body}{_check_char(body)}"


def valid_code(code: str) -> bool:
    return (len(code) == _CODE_BODY + 3 and code.startswith("PH") and all(c in _ALPHABET for c in code[2:])
            and _check_char(code[2:-1]) == code[-1])


def code_in(postscript: str) -> str | None:
    """The first valid remittance code in a postscript. Payers add words around it, split it with spaces, and
    banks change its case, so the text is read upper-cased with its white space removed, and every place a code
    could start is tried: the check character tells a code from letters that happen to look like one."""
    for match in _CODE.finditer("".join(postscript.upper().split())):
        if valid_code(match.group(1)):
            return match.group(1)
    return None


@value_class
class Match:
    kind: MatchKind
    received_minor: int  # the order's total received, this credit included
    outstanding_minor: int  # still to come (partial)
    excess_minor: int  # beyond the amount (over)

    @property
    def pays_the_order(self) -> bool:
        return self.kind in (MatchKind.EXACT, MatchKind.OVER)


def classify(amount_minor: int, received_before_minor: int, credit_minor: int) -> Match:
    """What a credit of ``credit_minor`` does to an order of ``amount_minor`` that had received
    ``received_before_minor`` (credits are positive; an order already paid takes the whole credit as excess)."""
    if amount_minor <= 0 or credit_minor <= 0 or received_before_minor < 0:
        raise ValueError("amounts are positive")
    received = received_before_minor + credit_minor
    if received_before_minor >= amount_minor:
        return Match(MatchKind.OVER, received, 0, credit_minor)
    if received == amount_minor:
        return Match(MatchKind.EXACT, received, 0, 0)
    if received < amount_minor:
        return Match(MatchKind.PARTIAL, received, amount_minor - received, 0)
    return Match(MatchKind.OVER, received, 0, received - amount_minor)


UNKNOWN = Match(MatchKind.UNKNOWN, 0, 0, 0)
