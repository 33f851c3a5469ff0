"""When and how much a merchant is paid: the settlement terms and the decision of one settlement day.

A merchant on T+N is paid, on the run for Beijing day D, what the ledger owes it for money value-dated up to
D-N: its payable balance less the credits value-dated after D-N (money that has arrived but not matured yet).
Only credits wait: a refund, a fee or a hold takes money away from what is owed at once, whichever day it is
dated. Holds are journals that take money out of the payable (``settlement_hold``), so they are already left
out; a paused merchant is paid nothing. What is not paid (below the minimum, paused, or negative because refunds outran
payments) stays in the payable and is simply part of the next day's balance: nothing is carried by hand.

The hub's fee is charged per settlement on the gross paid out, ``fee_bps`` basis points rounded half up to the
minor unit; the merchant receives gross - fee, and only when that reaches ``minimum_minor``.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from chalicelib.domain.value_class import value_class

MAX_DELAY_DAYS = 30
MAX_FEE_BPS = 1_000  # 10 %: a fee can never reach the gross it is taken from


@value_class
class SettlementTerms:
    """A merchant's settlement schedule, one per merchant (every currency it is owed is settled alike)."""

    delay_days: int  # N of T+N
    minimum_minor: int  # the smallest transfer worth sending (net, minor units); below it the money waits
    fee_bps: int  # the hub's fee on what is settled
    reserve_id: str  # the reserve bank account paying out
    paused: bool = False  # an operator's hold on the whole merchant: nothing is settled while it is set
    currencies: tuple[str, ...] = ("CNY",)  # the payables the daily settlement looks at
    payee_account_no: str | None = None  # the merchant's own bank account, where settlements are sent
    payee_name: str | None = None
    payee_bank_name: str | None = None  # with the CNAPS code, when the account is at another bank
    payee_bank_code: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.delay_days <= MAX_DELAY_DAYS:
            raise ValueError(f"delay_days must be 0..{MAX_DELAY_DAYS}")
        if not 0 <= self.minimum_minor <= 10**12:
            raise ValueError("minimum_minor must be 0..10^12")
        if not 0 <= self.fee_bps <= MAX_FEE_BPS:
            raise ValueError(f"fee_bps must be 0..{MAX_FEE_BPS}")
        if not self.reserve_id:
            raise ValueError("reserve_id must name a reserve account")
        if not self.currencies or any(not isinstance(c, str) or len(c) != 3 for c in self.currencies):
            raise ValueError("currencies must list ISO 4217 codes")


@value_class
class Decision:
    """What one settlement day does for one merchant and currency."""

    outcome: str  # settle | paused | below_minimum | nothing_due (| no_payee_account: the service's, no account)
    owed_minor: int  # matured money owed (may be negative: the merchant owes the hub)
    gross_minor: int = 0  # taken from the payable
    fee_minor: int = 0  # kept by the hub
    net_minor: int = 0  # sent to the merchant

    @property
    def settles(self) -> bool:
        return self.outcome == "settle"


def fee_of(gross_minor: int, fee_bps: int) -> int:
    """``fee_bps`` of ``gross_minor``, rounded half up to a whole minor unit."""
    return int((Decimal(gross_minor) * fee_bps / 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def unmatured_days(day: date, delay_days: int, today: date) -> list[date]:
    """The value days whose money is not yet due on the run for ``day``: D-N+1 up to ``today`` (the Beijing day
    the run happens on; anything value-dated then is certainly not due)."""
    first = day - timedelta(days=delay_days) + timedelta(days=1)
    return [first + timedelta(days=n) for n in range((today - first).days + 1)]


def owed_matured(payable_balance: int, unmatured_credits: int) -> int:
    """The payable is a liability (credit, negative): what the merchant is owed for matured money, given the credits
    (negative) value-dated to the days not matured yet."""
    return -(payable_balance - unmatured_credits)


def decide(terms: SettlementTerms, owed_minor: int) -> Decision:
    if terms.paused:
        return Decision("paused", owed_minor)
    if owed_minor <= 0:
        return Decision("nothing_due", owed_minor)
    fee = fee_of(owed_minor, terms.fee_bps)
    net = owed_minor - fee
    if net < max(terms.minimum_minor, 1):
        return Decision("below_minimum", owed_minor)
    return Decision("settle", owed_minor, gross_minor=owed_minor, fee_minor=fee, net_minor=net)
