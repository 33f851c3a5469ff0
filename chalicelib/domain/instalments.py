"""Instalments (分期): the fee tables operators configure and the payer's schedule, in integer fen.

A fee table belongs to a channel (its default) and may be overridden for one merchant. It lists the terms offered
(numbers of instalments) and, per term, the buyer's rate and the seller's rate in basis points and the smallest
principal that may be split into that many instalments. docs/instalments.md says where the figures come from.

Who pays the fee is chosen per payment: ``buyer`` (Huabei ``hb_fq_seller_percent`` 0: the payer repays principal
plus fee to Huabei, the merchant receives the principal) or ``seller`` (``hb_fq_seller_percent`` 100: the payer
repays the principal only, the channel keeps the fee out of what it settles to the merchant). Shares between the
two are not offered: Alipay takes 0 or 100 only.

Rounding, stated once and used everywhere:
- fee = principal x rate_bps / 10000, rounded half up to a whole fen (integer arithmetic, no float, no Decimal);
- each instalment's principal is principal // count and each instalment's fee is fee // count; what the division
  leaves (less than ``count`` fen each) is added to the FIRST instalment. So every instalment is a whole number of
  fen, none is negative, later instalments are equal, the first is at most ``count - 1`` fen larger, and the
  instalments add up to the totals exactly.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from chalicelib.domain.value_class import value_class

BPS = 10_000
# What each channel can carry on the wire. Alipay Huabei: hb_fq_num 3, 6 or 12 and nothing else. UnionPay's
# instalTransInfo numberOfInstallments is two digits; the issuer decides which it honours, so the table decides.
CHANNEL_TERMS: Mapping[str, frozenset[int]] = {
    "alipay": frozenset({3, 6, 12}),
    "unionpay": frozenset(range(2, 37)),
}
# Methods whose channel takes instalments, and the fee payers the channel can express.
INSTALMENT_METHODS: Mapping[str, str] = {
    "alipay.page": "alipay", "alipay.wap": "alipay", "alipay.qr": "alipay", "alipay.app": "alipay",
    "unionpay.gateway": "unionpay", "unionpay.card": "unionpay",
}
CHANNEL_FEE_PAYERS: Mapping[str, frozenset[str]] = {
    "alipay": frozenset({"buyer", "seller"}),
    # ACP's instalment field carries the number of instalments only: the issuer bills its fee to the cardholder.
    "unionpay": frozenset({"buyer"}),
}
MAX_RATE_BPS = 5_000  # 50 %: a table above this is a typo, not a tariff


class FeePayer(enum.StrEnum):
    BUYER = "buyer"
    SELLER = "seller"


class InstalmentRefused(ValueError):
    """An instalment request or fee table that cannot be honoured; ``param`` names the field at fault."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@value_class
class TermFee:
    """One term of a fee table: ``count`` instalments, each side's rate, and the smallest principal allowed."""

    count: int
    buyer_rate_bps: int
    seller_rate_bps: int
    minimum_minor: int


@value_class
class FeeTable:
    """The terms a channel (or one merchant on it) offers. ``refund_returns_seller_fee``: whether a refund gives
    the seller back the same share of the fee it paid (docs/instalments.md#refunds)."""

    channel: str
    terms: tuple[TermFee, ...]
    currency: str = "CNY"
    refund_returns_seller_fee: bool = True

    def __post_init__(self) -> None:
        allowed = CHANNEL_TERMS.get(self.channel)
        if allowed is None:
            raise InstalmentRefused(f"channel {self.channel!r} takes no instalments", "channel")
        if not self.terms:
            raise InstalmentRefused("a fee table needs at least one term", "terms")
        seen: set[int] = set()
        for index, term in enumerate(self.terms):
            where = f"terms[{index}]"
            for name in ("count", "buyer_rate_bps", "seller_rate_bps", "minimum_minor"):
                value = getattr(term, name)
                if not isinstance(value, int) or isinstance(value, bool):
                    raise InstalmentRefused(f"{where}.{name} must be an integer", f"{where}.{name}")
            if term.count not in allowed:
                raise InstalmentRefused(f"{where}.count {term.count} is not a term {self.channel} takes "
                                        f"({sorted(allowed)[0]}..{sorted(allowed)[-1]})"
                                        if self.channel != "alipay" else
                                        f"{where}.count {term.count}: Alipay Huabei takes 3, 6 or 12", f"{where}.count")
            if term.count in seen:
                raise InstalmentRefused(f"{where}.count {term.count} is listed twice", f"{where}.count")
            seen.add(term.count)
            for name in ("buyer_rate_bps", "seller_rate_bps"):
                if not 0 <= getattr(term, name) <= MAX_RATE_BPS:
                    raise InstalmentRefused(f"{where}.{name} must be 0..{MAX_RATE_BPS}", f"{where}.{name}")
            if term.minimum_minor < term.count:
                raise InstalmentRefused(f"{where}.minimum_minor must be at least {term.count} (one fen an "
                                        "instalment)", f"{where}.minimum_minor")

    def term(self, count: int) -> TermFee | None:
        return next((term for term in self.terms if term.count == count), None)

    def document(self) -> dict[str, Any]:
        return {"channel": self.channel, "currency": self.currency,
                "refund_returns_seller_fee": self.refund_returns_seller_fee,
                "terms": [{"count": t.count, "buyer_rate_bps": t.buyer_rate_bps, "seller_rate_bps": t.seller_rate_bps,
                           "minimum_minor": t.minimum_minor} for t in self.terms]}

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> FeeTable:
        """A table from its JSON form (the operator's file, the stored item); unknown or missing fields are named."""
        known = {"channel", "currency", "refund_returns_seller_fee", "terms"}
        for name in document:
            if name not in known:
                raise InstalmentRefused(f"unknown field {name}", str(name))
        for name in ("channel", "terms"):
            if name not in document:
                raise InstalmentRefused(f"{name} is required", name)
        terms = document["terms"]
        if not isinstance(terms, list):
            raise InstalmentRefused("terms must be a list", "terms")
        parsed = []
        term_fields = ("count", "buyer_rate_bps", "seller_rate_bps", "minimum_minor")
        for index, raw in enumerate(terms):
            if not isinstance(raw, Mapping):
                raise InstalmentRefused(f"terms[{index}] must be an object", f"terms[{index}]")
            for name in raw:
                if name not in term_fields:
                    raise InstalmentRefused(f"unknown field terms[{index}].{name}", f"terms[{index}].{name}")
            for name in term_fields:
                if name not in raw:
                    raise InstalmentRefused(f"terms[{index}].{name} is required", f"terms[{index}].{name}")
            parsed.append(TermFee(**{name: raw[name] for name in term_fields}))
        refund_returns = document.get("refund_returns_seller_fee", True)
        if not isinstance(refund_returns, bool):
            raise InstalmentRefused("refund_returns_seller_fee must be true or false", "refund_returns_seller_fee")
        if document.get("currency", "CNY") != "CNY":
            raise InstalmentRefused("instalments are offered in CNY only", "currency")
        return cls(channel=str(document["channel"]), terms=tuple(parsed), refund_returns_seller_fee=refund_returns)


@value_class
class Instalment:
    """One instalment the payer repays: its share of the principal and of the buyer's fee."""

    number: int  # 1..count
    principal_minor: int
    fee_minor: int  # the buyer's fee in this instalment (0 when the seller pays)

    @property
    def total_minor(self) -> int:
        return self.principal_minor + self.fee_minor


@value_class
class Schedule:
    """What the payer repays and what the seller is charged, for one payment."""

    count: int
    fee_payer: FeePayer
    principal_minor: int
    rate_bps: int  # the payer's side's rate
    buyer_fee_minor: int
    seller_fee_minor: int
    instalments: tuple[Instalment, ...]
    seller_fee_refundable: bool = True  # a refund gives the seller back the refunded share of its fee

    @property
    def buyer_total_minor(self) -> int:
        """What the payer repays in all."""
        return self.principal_minor + self.buyer_fee_minor

    @property
    def seller_net_minor(self) -> int:
        """What the channel settles to the seller for this payment, before its ordinary service fee."""
        return self.principal_minor - self.seller_fee_minor

    def public(self) -> dict[str, Any]:
        return {"count": self.count, "fee_payer": str(self.fee_payer), "rate_bps": self.rate_bps,
                "principal": self.principal_minor, "buyer_fee": self.buyer_fee_minor,
                "seller_fee": self.seller_fee_minor, "seller_fee_refundable": self.seller_fee_refundable,
                "buyer_total": self.buyer_total_minor,
                "instalments": [{"number": i.number, "principal": i.principal_minor, "fee": i.fee_minor,
                                 "amount": i.total_minor} for i in self.instalments]}


def fee_of(principal_minor: int, rate_bps: int) -> int:
    """``principal x rate``, rounded half up to a whole fen."""
    return (principal_minor * rate_bps + BPS // 2) // BPS


def split(total_minor: int, count: int) -> list[int]:
    """``total`` in ``count`` whole-fen parts: equal parts, the remainder on the first."""
    base, remainder = divmod(total_minor, count)
    return [base + remainder] + [base] * (count - 1)


def schedule(table: FeeTable, principal_minor: int, count: int, fee_payer: FeePayer | str) -> Schedule:
    """The schedule of ``principal`` in ``count`` instalments under ``table``; refused (naming the field) when the
    table does not offer the term, the channel cannot express the fee payer, or the principal is below the term's
    minimum."""
    try:
        payer = FeePayer(fee_payer)
    except ValueError as exc:
        raise InstalmentRefused(f"fee_payer must be buyer or seller, not {fee_payer!r}",
                                "instalments.fee_payer") from exc
    if str(payer) not in CHANNEL_FEE_PAYERS.get(table.channel, frozenset()):
        raise InstalmentRefused(f"{table.channel} instalments cannot be paid for by the {payer}",
                                "instalments.fee_payer")
    term = table.term(count)
    if term is None:
        offered = ", ".join(str(t.count) for t in table.terms)
        raise InstalmentRefused(f"{count} instalments are not offered (offered: {offered})", "instalments.count")
    if not isinstance(principal_minor, int) or principal_minor < term.minimum_minor:
        raise InstalmentRefused(f"amount {principal_minor} is below the minimum {term.minimum_minor} for {count} "
                                "instalments", "amount")
    rate = term.buyer_rate_bps if payer is FeePayer.BUYER else term.seller_rate_bps
    fee = fee_of(principal_minor, rate)
    buyer_fee = fee if payer is FeePayer.BUYER else 0
    parts = zip(split(principal_minor, count), split(buyer_fee, count), strict=True)
    instalments = tuple(Instalment(number, p, f) for number, (p, f) in enumerate(parts, start=1))
    return Schedule(count=count, fee_payer=payer, principal_minor=principal_minor, rate_bps=rate,
                    buyer_fee_minor=buyer_fee, seller_fee_minor=fee - buyer_fee, instalments=instalments,
                    seller_fee_refundable=table.refund_returns_seller_fee)


def offers(table: FeeTable | None, principal_minor: int) -> list[Schedule]:
    """Every term ``table`` allows for ``principal``, as the buyer would pay it (the checkout page's choice)."""
    if table is None or "buyer" not in CHANNEL_FEE_PAYERS.get(table.channel, frozenset()):
        return []
    return [schedule(table, principal_minor, t.count, FeePayer.BUYER) for t in sorted(table.terms, key=lambda t: t.count)
            if principal_minor >= t.minimum_minor]


def seller_fee_returned(seller_fee_minor: int, principal_minor: int, refunded_before: int, refunding: int) -> int:
    """The seller's fee given back by a refund of ``refunding`` after ``refunded_before``: the share of the fee the
    refunded principal bears, computed on the running total (floor), so the refunds of a payment return exactly the
    whole fee when it is refunded in full, and never more."""
    if refunded_before < 0 or refunding < 0 or refunded_before + refunding > principal_minor:
        raise ValueError("refunds exceed the principal")
    after = seller_fee_minor * (refunded_before + refunding) // principal_minor
    before = seller_fee_minor * refunded_before // principal_minor
    return after - before

