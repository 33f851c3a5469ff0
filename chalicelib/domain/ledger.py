"""Double-entry journal. Entries are append-only; every journal sums to zero per currency.

Sign convention: positive = debit, negative = credit. Accounts (docs/settlement.md draws the flow):
- ``channel_clearing:<account_id>:<CCY>`` (asset): money the channel holds for us, not yet in the reserve.
- ``reserve:<reserve_id>:<CCY>`` (asset): the reserve bank account (备付金账户) the channels settle into and
  merchants are paid from.
- ``channel_fee:<account_id>:<CCY>`` (expense, debit balance): what the channel kept as its fee.
- ``merchant_payable:<merchant_id>:<CCY>`` (liability): money we owe the merchant, not yet settled.
- ``settlement_hold:<merchant_id>:<CCY>`` (liability): owed to the merchant but held back from settlement (by
  reconciliation when a channel disowns a payment, or by an operator), until released.
- ``merchant_settling:<merchant_id>:<CCY>`` (liability): a settlement instructed to the bank and not yet
  confirmed paid (money in flight out of the reserve).
- ``merchant_payout:<merchant_id>:<CCY>`` (liability): the merchant's own payouts (batch payouts to its payees)
  reserved from its payable and not yet confirmed by the bank.
- ``fee_income:<CCY>`` (income, credit balance): the hub's own fee, charged when a merchant is settled.
- ``fx_position:<PAIR>:<CCY>`` (the hub's currency position, one per pair and side): a payment presented in
  one currency and settled in another books the channel's clearing in the first and the merchant's payable in
  the second; the position accounts carry the difference, so each currency's journal still sums to zero
  (docs/fx.md). Refunds at the locked rate reverse it; a fully refunded payment leaves both sides at zero.
- ``fx_difference:<CCY>`` (gain or loss, debit = loss): what the channel's conversion paid into the reserve
  differs from the settlement amounts the payments locked.
- ``bank_receipts:<reserve_id>:<CCY>`` (liability): payer businesses' transfers credited to the reserve and not
  yet applied to a paid order: part payments still waiting for the rest, excesses, unknown credits, credits
  waiting for an operator's approval (docs/transfers-in.md). Applied to an order, a receipt moves to the bank
  transfer channel's clearing, which the capture then owes the merchant; returned, it leaves the reserve.

A payment success debits clearing and credits the merchant; a refund reverses that. The channel's fee moves
from clearing to the fee expense; its settlement moves what is left from clearing to the reserve. Settling a
merchant moves its payable to settling less the hub's fee; the bank's confirmation moves settling out of the
reserve, a returned transfer moves it back to the payable. Corrections are new journals, never edits.

So at every moment, since every journal balances,
    reserve + clearing = payables + holds + settling + payouts + receipts + (fee income - channel fees):
the reserve and what the channels still hold are exactly what is owed to merchants, what is in flight to them or
their payees, and the hub's margin (tests/unit/domain/test_ledger_invariants.py holds that over random sequences).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from chalicelib.domain.money import Money
from chalicelib.domain.value_class import value_class


@value_class
class Entry:
    """One line of a journal: an account debited (positive) or credited (negative)."""

    account: str
    amount: int  # signed minor units: debit > 0, credit < 0
    currency: str


@value_class
class Journal:
    """A balanced set of entries posted once for one fact (a capture, a refund)."""

    journal_id: str  # deterministic per (purpose, object): a second posting of the same fact is refused
    purpose: str
    reference: str
    entries: tuple[Entry, ...]

    def __post_init__(self) -> None:
        totals: dict[str, int] = defaultdict(int)
        for entry in self.entries:
            if entry.amount == 0:
                raise ValueError("a ledger entry must move money")
            totals[entry.currency] += entry.amount
        unbalanced = {ccy: total for ccy, total in totals.items() if total != 0}
        if unbalanced or len(self.entries) < 2:
            raise ValueError(f"journal {self.journal_id} does not balance: {unbalanced}")


def clearing_account(channel_account_id: str, currency: str) -> str:
    return f"channel_clearing:{channel_account_id}:{currency}"


def merchant_payable_account(merchant_id: str, currency: str) -> str:
    return f"merchant_payable:{merchant_id}:{currency}"


def merchant_settling_account(merchant_id: str, currency: str) -> str:
    return f"merchant_settling:{merchant_id}:{currency}"


def settlement_hold_account(merchant_id: str, currency: str) -> str:
    return f"settlement_hold:{merchant_id}:{currency}"


def reserve_account(reserve_id: str, currency: str) -> str:
    return f"reserve:{reserve_id}:{currency}"


def channel_fee_account(channel_account_id: str, currency: str) -> str:
    return f"channel_fee:{channel_account_id}:{currency}"


def merchant_payout_account(merchant_id: str, currency: str) -> str:
    return f"merchant_payout:{merchant_id}:{currency}"


def fee_income_account(currency: str) -> str:
    return f"fee_income:{currency}"


def _pair(purpose: str, reference: str, debit: str, credit: str, amount: Money) -> Journal:
    """A two-line journal moving ``amount`` from ``credit`` to ``debit``; a negative amount moves it back."""
    return Journal(journal_id=journal_id(purpose, reference), purpose=purpose, reference=reference, entries=(
        Entry(debit, amount.minor, amount.currency), Entry(credit, -amount.minor, amount.currency)))


def journal_id(purpose: str, reference: str) -> str:
    return "jrn_" + hashlib.sha256(f"{purpose}:{reference}".encode()).hexdigest()[:24]


def payment_captured(attempt_id: str, channel_account_id: str, merchant_id: str, amount: Money) -> Journal:
    return Journal(
        journal_id=journal_id("payment_captured", attempt_id),
        purpose="payment_captured",
        reference=attempt_id,
        entries=(
            Entry(clearing_account(channel_account_id, amount.currency), amount.minor, amount.currency),
            Entry(merchant_payable_account(merchant_id, amount.currency), -amount.minor, amount.currency),
        ),
    )


def refund_paid(refund_id: str, channel_account_id: str, merchant_id: str, amount: Money) -> Journal:
    return Journal(
        journal_id=journal_id("refund_paid", refund_id),
        purpose="refund_paid",
        reference=refund_id,
        entries=(
            Entry(merchant_payable_account(merchant_id, amount.currency), amount.minor, amount.currency),
            Entry(clearing_account(channel_account_id, amount.currency), -amount.minor, amount.currency),
        ),
    )


def channel_fee_accrued(attempt_id: str, channel_account_id: str, fee: Money) -> Journal:
    """One payment's channel fee, booked with its capture from the account's fee schedule (what the channel's
    statement will state for its row): clearing pays the fee expense. The day's statement then books only what
    differs (``channel_fees_booked``)."""
    return _pair("channel_fee", attempt_id, channel_fee_account(channel_account_id, fee.currency),
                 clearing_account(channel_account_id, fee.currency), fee)


def channel_fees_booked(reference: str, channel_account_id: str, fee: Money) -> Journal:
    """What the channel's fees of one statement day and currency (the sum of its rows' fees) add to those already
    booked for the day (each payment's fee at capture), or a later correction: clearing pays the fee expense; a
    negative amount (refunds' fees returned, a fee lower than scheduled) reverses it.
    ``reference``: ``<account>:<day>:<currency>:<fees booked before>:<execution>``: a change booked once per run."""
    return _pair("channel_fees", reference, channel_fee_account(channel_account_id, fee.currency),
                 clearing_account(channel_account_id, fee.currency), fee)


def channel_settled(reference: str, channel_account_id: str, reserve_id: str, net: Money) -> Journal:
    """The channel's settlement credited to the reserve bank account: clearing becomes reserve."""
    return _pair("channel_settled", reference, reserve_account(reserve_id, net.currency),
                 clearing_account(channel_account_id, net.currency), net)


def merchant_settled(settlement_id: str, merchant_id: str, gross: Money, fee: Money) -> Journal:
    """A settlement instructed: ``gross`` leaves the merchant's payable, the hub keeps ``fee``, the rest is in
    flight to the merchant's bank account."""
    if fee.currency != gross.currency or not 0 <= fee.minor < gross.minor:
        raise ValueError(f"settlement {settlement_id}: fee {fee} must be at least 0 and less than {gross}")
    entries = [Entry(merchant_payable_account(merchant_id, gross.currency), gross.minor, gross.currency),
               Entry(merchant_settling_account(merchant_id, gross.currency), -(gross.minor - fee.minor), gross.currency)]
    if fee.minor:
        entries.append(Entry(fee_income_account(fee.currency), -fee.minor, fee.currency))
    return Journal(journal_id=journal_id("merchant_settled", settlement_id), purpose="merchant_settled",
                   reference=settlement_id, entries=tuple(entries))


def settlement_paid(settlement_id: str, merchant_id: str, reserve_id: str, net: Money) -> Journal:
    """The bank confirmed the transfer to the merchant: the money left the reserve."""
    return _pair("settlement_paid", settlement_id, merchant_settling_account(merchant_id, net.currency),
                 reserve_account(reserve_id, net.currency), net)


def settlement_returned(settlement_id: str, merchant_id: str, gross: Money, fee: Money) -> Journal:
    """The transfer failed or came back: the settlement is undone. The merchant is owed ``gross`` again and the
    hub's fee is given back, so the next settlement charges it once."""
    entries = [Entry(merchant_settling_account(merchant_id, gross.currency), gross.minor - fee.minor, gross.currency),
               Entry(merchant_payable_account(merchant_id, gross.currency), -gross.minor, gross.currency)]
    if fee.minor:
        entries.append(Entry(fee_income_account(fee.currency), fee.minor, fee.currency))
    return Journal(journal_id=journal_id("settlement_returned", settlement_id), purpose="settlement_returned",
                   reference=settlement_id, entries=tuple(entries))


def settlement_held(reference: str, merchant_id: str, amount: Money) -> Journal:
    """Money held back from the merchant's settlement: an attempt's (reconciliation) or an operator's hold."""
    return _pair("settlement_held", reference, merchant_payable_account(merchant_id, amount.currency),
                 settlement_hold_account(merchant_id, amount.currency), amount)


def hold_released(reference: str, merchant_id: str, amount: Money) -> Journal:
    """A hold released by an operator: the money is the merchant's to be settled again."""
    return _pair("hold_released", reference, settlement_hold_account(merchant_id, amount.currency),
                 merchant_payable_account(merchant_id, amount.currency), amount)


def instalment_fee_charged(attempt_id: str, channel_account_id: str, merchant_id: str, fee: Money) -> Journal:
    """The seller pays the instalment fee (Huabei ``hb_fq_seller_percent`` 100): the channel keeps it out of
    what it settles, so at capture it leaves clearing and the merchant is owed that much less. Booked with the
    capture it belongs to (docs/instalments.md#ledger)."""
    return _pair("instalment_fee", attempt_id, merchant_payable_account(merchant_id, fee.currency),
                 clearing_account(channel_account_id, fee.currency), fee)


def instalment_fee_returned(refund_id: str, channel_account_id: str, merchant_id: str, fee: Money) -> Journal:
    """A refund of a seller-paid instalment payment gives the seller back the refunded share of the fee
    (``instalments.seller_fee_returned``): the channel returns it to clearing, the merchant is owed it again."""
    return _pair("instalment_fee_returned", refund_id, clearing_account(channel_account_id, fee.currency),
                 merchant_payable_account(merchant_id, fee.currency), fee)


def payout_reserved(reference: str, merchant_id: str, amount: Money) -> Journal:
    """A payout batch's funds set aside from the merchant's payable before anything is sent."""
    return _pair("payout_reserved", reference, merchant_payable_account(merchant_id, amount.currency),
                 merchant_payout_account(merchant_id, amount.currency), amount)


def payout_paid(reference: str, merchant_id: str, reserve_id: str, amount: Money) -> Journal:
    """One payout item confirmed by the bank: the money left the reserve."""
    return _pair("payout_paid", reference, merchant_payout_account(merchant_id, amount.currency),
                 reserve_account(reserve_id, amount.currency), amount)


def transfer_returned(reference: str, merchant_id: str, reserve_id: str, amount: Money) -> Journal:
    """A transfer the bank confirmed (a payout item, a settlement) came back from the payee's bank later (退票):
    the money is in the reserve again, and the merchant's again."""
    return _pair("transfer_returned", reference, reserve_account(reserve_id, amount.currency),
                 merchant_payable_account(merchant_id, amount.currency), amount)


def payout_released(reference: str, merchant_id: str, amount: Money) -> Journal:
    """One payout item failed or came back: its funds are the merchant's again."""
    return _pair("payout_released", reference, merchant_payout_account(merchant_id, amount.currency),
                 merchant_payable_account(merchant_id, amount.currency), amount)


def fx_position_account(pair: str, currency: str) -> str:
    return f"fx_position:{pair}:{currency}"


def fx_difference_account(currency: str) -> str:
    return f"fx_difference:{currency}"


def _fx_lines(pair: str, presentment: Money, settlement: Money, sign: int) -> list[Entry]:
    """The position lines of a conversion: the presentment side against clearing, the settlement side against
    the merchant's payable (``sign`` 1 books a capture, -1 a refund). A zero side (a tiny partial refund whose
    settlement share truncates to nothing) has no line."""
    lines = [Entry(fx_position_account(pair, presentment.currency), -sign * presentment.minor, presentment.currency)]
    if settlement.minor:
        lines.append(Entry(fx_position_account(pair, settlement.currency), sign * settlement.minor, settlement.currency))
    return lines


def _check_fx(reference: str, presentment: Money, settlement: Money) -> str:
    if presentment.currency == settlement.currency or presentment.minor <= 0 or settlement.minor < 0:
        raise ValueError(f"{reference}: {presentment} -> {settlement} is not a conversion")
    return presentment.currency + settlement.currency


def fx_payment_captured(attempt_id: str, channel_account_id: str, merchant_id: str, presentment: Money,
                        settlement: Money) -> Journal:
    """A capture presented in one currency and settled in another (at the payment's locked rate): the channel
    holds ``presentment`` for us, we owe the merchant ``settlement``. Same purpose and id as ``payment_captured``:
    one capture, one journal, whichever constructor books it."""
    pair = _check_fx(attempt_id, presentment, settlement)
    if settlement.minor == 0:
        raise ValueError(f"{attempt_id}: a capture must owe the merchant something")
    return Journal(journal_id=journal_id("payment_captured", attempt_id), purpose="payment_captured",
                   reference=attempt_id, entries=(
                       Entry(clearing_account(channel_account_id, presentment.currency), presentment.minor,
                             presentment.currency),
                       *_fx_lines(pair, presentment, settlement, 1),
                       Entry(merchant_payable_account(merchant_id, settlement.currency), -settlement.minor,
                             settlement.currency)))


def fx_refund_paid(refund_id: str, channel_account_id: str, merchant_id: str, presentment: Money,
                   settlement: Money) -> Journal:
    """A refund of a converted payment at its locked rate: ``presentment`` back to the payer through the channel,
    ``settlement`` (``fx.settlement_side``; may be zero) taken back from the merchant."""
    pair = _check_fx(refund_id, presentment, settlement)
    entries = [*_fx_lines(pair, presentment, settlement, -1),
               Entry(clearing_account(channel_account_id, presentment.currency), -presentment.minor,
                     presentment.currency)]
    if settlement.minor:
        entries.insert(0, Entry(merchant_payable_account(merchant_id, settlement.currency), settlement.minor,
                                settlement.currency))
    return Journal(journal_id=journal_id("refund_paid", refund_id), purpose="refund_paid", reference=refund_id,
                   entries=tuple(entries))


def fx_channel_settled(reference: str, channel_account_id: str, reserve_id: str, cleared: Money, locked: Money,
                       received: Money) -> Journal:
    """The channel converted what it held and paid the reserve in the settlement currency: ``cleared`` leaves
    clearing (presentment currency), ``received`` arrives in the reserve, and the position the payments opened is
    closed at what they locked (``locked``: the settlement amounts of the money cleared). The channel's rate
    differing from the locked one is the hub's gain or loss, in ``fx_difference``."""
    pair = _check_fx(reference, cleared, locked)
    if received.currency != locked.currency or received.minor <= 0 or locked.minor <= 0:
        raise ValueError(f"{reference}: received {received} against locked {locked}")
    entries = [Entry(reserve_account(reserve_id, received.currency), received.minor, received.currency),
               Entry(clearing_account(channel_account_id, cleared.currency), -cleared.minor, cleared.currency),
               Entry(fx_position_account(pair, cleared.currency), cleared.minor, cleared.currency),
               Entry(fx_position_account(pair, locked.currency), -locked.minor, locked.currency)]
    if locked.minor != received.minor:
        entries.append(Entry(fx_difference_account(locked.currency), locked.minor - received.minor, locked.currency))
    return Journal(journal_id=journal_id("fx_channel_settled", reference), purpose="fx_channel_settled",
                   reference=reference, entries=tuple(entries))


def bank_receipts_account(reserve_id: str, currency: str) -> str:
    return f"bank_receipts:{reserve_id}:{currency}"


def bank_credit_received(receipt_id: str, reserve_id: str, amount: Money, *, applies: tuple[str, Money] | None = None
                         ) -> Journal:
    """A payer's transfer credited to the reserve (or one of its sub-accounts): ours to hold, not yet anyone's.
    ``applies`` (channel account, order amount): the credit completes its order, and the same journal moves the
    order's amount on to the channel's clearing (one journal: an account is written once per transaction)."""
    if applies is None:
        return _pair("bank_credit_received", receipt_id, reserve_account(reserve_id, amount.currency),
                     bank_receipts_account(reserve_id, amount.currency), amount)
    channel_account_id, applied = applies
    if applied.currency != amount.currency or applied.minor <= 0:
        raise ValueError(f"{receipt_id}: applies {applied} against a credit of {amount}")
    entries = [Entry(reserve_account(reserve_id, amount.currency), amount.minor, amount.currency)]
    if applied.minor != amount.minor:  # earlier part payments leave the receipts, or an excess stays in them
        entries.append(Entry(bank_receipts_account(reserve_id, amount.currency), applied.minor - amount.minor,
                             amount.currency))
    entries.append(Entry(clearing_account(channel_account_id, amount.currency), -applied.minor, amount.currency))
    return Journal(journal_id=journal_id("bank_credit_received", receipt_id), purpose="bank_credit_received",
                   reference=receipt_id, entries=tuple(entries))


def bank_receipts_applied(attempt_id: str, reserve_id: str, channel_account_id: str, amount: Money) -> Journal:
    """An order paid by transfer: its amount leaves the receipts for the bank transfer channel's clearing, where the
    capture (``payment_captured``, same attempt) takes it for the merchant. One per order, whatever the credits."""
    return _pair("bank_receipts_applied", attempt_id, bank_receipts_account(reserve_id, amount.currency),
                 clearing_account(channel_account_id, amount.currency), amount)


def bank_receipt_returned(reference: str, reserve_id: str, amount: Money) -> Journal:
    """An unapplied receipt (an excess, an unknown credit) transferred back to the payer: the bank confirmed it."""
    return _pair("bank_receipt_returned", reference, bank_receipts_account(reserve_id, amount.currency),
                 reserve_account(reserve_id, amount.currency), amount)


def bank_receipt_kept(reference: str, reserve_id: str, merchant_id: str, amount: Money) -> Journal:
    """An excess an operator decided the merchant keeps (the payer agreed to leave it): the merchant is owed it."""
    return _pair("bank_receipt_kept", reference, bank_receipts_account(reserve_id, amount.currency),
                 merchant_payable_account(merchant_id, amount.currency), amount)


def bank_refund_paid(refund_id: str, merchant_id: str, reserve_id: str, amount: Money) -> Journal:
    """A refund of a bank-transfer payment, confirmed by the bank: the transfer back to the payer left the reserve
    itself (no channel holds it). The refund's journal (purpose and id of ``refund_paid``: one refund, one journal)."""
    return Journal(journal_id=journal_id("refund_paid", refund_id), purpose="refund_paid", reference=refund_id,
                   entries=(Entry(merchant_payable_account(merchant_id, amount.currency), amount.minor, amount.currency),
                            Entry(reserve_account(reserve_id, amount.currency), -amount.minor, amount.currency)))
