"""The reserve's invariants over random sequences of payments (some by instalments with the seller paying the
fee), refunds, channel fees, channel settlements, holds,
merchant settlements and their payouts or returns, built from the ledger's own journal constructors.

After every step:
- every journal balances (its constructor refuses one that does not) and the whole book sums to zero;
- reserve + clearing = payables + holds + settling + payouts + (fee income - channel fees): the reserve and what
  the channels still hold are exactly what is owed to merchants, what is in flight to them or their payees, and
  the hub's margin;
- each merchant's settling account is the net of its settlements neither paid nor returned, and fee income
  the fees of settlements not returned;
- what each merchant has received (settlements and its own payouts paid) plus what it is still owed equals its
  captures less its refunds less the hub's fees (no money appears or disappears on the way to it).

FX payments (presented in USD or JPY through one channel, settled to the merchant in CNY at a locked rate) and
their refunds at that rate run alongside: every currency balances on its own at every step, a merchant is owed
exactly each FX payment's locked settlement amount less what its refunds took back, the position of each pair
mirrors the channel's clearing in the presentment currency, and a channel settling at its own rate leaves the
difference (and only it) in ``fx_difference``.

Payer businesses' bank transfers run alongside too: credits arrive in the reserve for orders (in parts, exactly,
too much) or for nobody; an order's arrival and its capture are two transactions, with any step between; excesses
and unknown credits are returned to the payer or kept for the merchant; orders closed with parts paid give them
back to a person; refunds leave the reserve. The receipts account is at every step exactly what the open orders
have received plus what waits unapplied, and the channel's clearing only the captures not yet booked.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from chalicelib.domain import fx, ledger
from chalicelib.domain.instalments import fee_of, seller_fee_returned
from chalicelib.domain.ledger import Journal, settlement_hold_account
from chalicelib.domain.money import Money
from chalicelib.domain.settlement import SettlementTerms, decide
from chalicelib.domain.transfers import classify

MERCHANTS = ("m1", "m2")
CHANNELS = ("wx", "ali")
RESERVE = "rsv"
CCY = "CNY"
amounts = st.integers(min_value=1, max_value=5_000_000)
FX_CHANNEL = "stripe"
FX_PRESENTMENT = ("USD", "JPY")
BT_CHANNEL = "banktransfer-acct"
fx_rates = {"USD": st.sampled_from(["7.1234", "7.0011", "6.9", "7.25"]),
            "JPY": st.sampled_from(["0.048", "0.0471", "0.05123"])}


class Reserve(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.balances: dict[str, int] = defaultdict(int)
        self.posted: set[str] = set()
        self.captured: dict[tuple[str, str], int] = defaultdict(int)  # (merchant, channel) -> refundable
        # seller-paid instalment payments still refundable: attempt -> (merchant, channel, principal, fee, refunded)
        self.instalments: dict[str, tuple[str, str, int, int, int]] = {}
        self.net_by_merchant: dict[str, int] = defaultdict(int)  # captures - refunds
        self.fees_charged: dict[str, int] = defaultdict(int)  # hub's fees per merchant, not returned
        self.received: dict[str, int] = defaultdict(int)  # paid out to each merchant
        self.open_settlements: dict[str, tuple[str, int, int]] = {}  # id -> (merchant, gross, fee)
        self.holds: dict[str, tuple[str, int]] = {}
        self.open_payouts: dict[str, tuple[str, int]] = {}  # item reference -> (merchant, amount)
        self.paid_payouts: dict[str, tuple[str, int]] = {}  # paid, and may still come back from the payee's bank
        self.fx_payments: dict[str, tuple[str, fx.Locked]] = {}  # attempt -> (merchant, locked + refunded)
        self.fx_differences = 0  # locked - received over the channel's conversions (CNY)
        self.bt_orders: dict[str, list[Any]] = {}  # attempt -> [merchant, amount, received, open]
        self.bt_unapplied: dict[str, int] = {}  # receipt -> what of it waits in bank_receipts, unapplied
        self.bt_excess_of: dict[str, str] = {}  # receipt -> merchant, for excesses (the merchant may keep them)
        self.bt_uncaptured: dict[str, tuple[str, int]] = {}  # attempt -> (merchant, amount): applied, capture to come
        self.bt_refundable: dict[str, tuple[str, int]] = {}  # attempt -> (merchant, refundable)
        self.sequence = 0

    def post(self, journal: Journal) -> None:
        assert journal.journal_id not in self.posted, "a fact is posted once"
        self.posted.add(journal.journal_id)
        for entry in journal.entries:
            self.balances[entry.account] += entry.amount

    def next_id(self, prefix: str) -> str:
        self.sequence += 1
        return f"{prefix}{self.sequence}"

    def sum_of(self, prefix: str) -> int:
        return sum(amount for account, amount in self.balances.items() if account.startswith(prefix))

    @initialize(terms=st.builds(SettlementTerms, delay_days=st.just(0), minimum_minor=st.integers(0, 10_000),
                                fee_bps=st.integers(0, 1_000), reserve_id=st.just(RESERVE)))
    def terms_set(self, terms: SettlementTerms) -> None:
        self.terms = terms

    @rule(merchant=st.sampled_from(MERCHANTS), channel=st.sampled_from(CHANNELS), amount=amounts)
    def payment(self, merchant: str, channel: str, amount: int) -> None:
        self.post(ledger.payment_captured(self.next_id("att"), channel, merchant, Money(amount, CCY)))
        self.captured[(merchant, channel)] += amount
        self.net_by_merchant[merchant] += amount

    @rule(merchant=st.sampled_from(MERCHANTS), channel=st.sampled_from(CHANNELS), amount=amounts,
          rate=st.integers(0, 5_000))
    def instalment_payment(self, merchant: str, channel: str, amount: int, rate: int) -> None:
        """A seller-paid instalment payment: the capture, then the fee the channel keeps, in one transaction."""
        attempt = self.next_id("att")
        self.post(ledger.payment_captured(attempt, channel, merchant, Money(amount, CCY)))
        fee = fee_of(amount, rate)
        if fee:
            self.post(ledger.instalment_fee_charged(attempt, channel, merchant, Money(fee, CCY)))
        self.instalments[attempt] = (merchant, channel, amount, fee, 0)
        self.net_by_merchant[merchant] += amount - fee

    @rule(data=st.data())
    @precondition(lambda self: bool(self.instalments))
    def instalment_refund(self, data: st.DataObject) -> None:
        attempt = data.draw(st.sampled_from(sorted(self.instalments)))
        merchant, channel, principal, fee, refunded = self.instalments[attempt]
        amount = data.draw(st.integers(1, principal - refunded))
        refund_id = self.next_id("ref")
        self.post(ledger.refund_paid(refund_id, channel, merchant, Money(amount, CCY)))
        back = seller_fee_returned(fee, principal, refunded, amount)
        if back:
            self.post(ledger.instalment_fee_returned(refund_id, channel, merchant, Money(back, CCY)))
        if refunded + amount == principal:
            del self.instalments[attempt]
        else:
            self.instalments[attempt] = (merchant, channel, principal, fee, refunded + amount)
        self.net_by_merchant[merchant] -= amount - back

    @rule(data=st.data())
    @precondition(lambda self: any(self.captured.values()))
    def refund(self, data: st.DataObject) -> None:
        merchant, channel = data.draw(st.sampled_from(sorted(k for k, v in self.captured.items() if v)))
        amount = data.draw(st.integers(1, self.captured[(merchant, channel)]))
        self.post(ledger.refund_paid(self.next_id("ref"), channel, merchant, Money(amount, CCY)))
        self.captured[(merchant, channel)] -= amount
        self.net_by_merchant[merchant] -= amount

    @rule(merchant=st.sampled_from(MERCHANTS), currency=st.sampled_from(FX_PRESENTMENT), amount=amounts, data=st.data())
    def fx_payment(self, merchant: str, currency: str, amount: int, data: st.DataObject) -> None:
        rate = data.draw(fx_rates[currency])
        snapshot = fx.RateSnapshot(rate_id="fxr_t", pair=currency + CCY, rate=rate, source="test",
                                   as_of="2026-12-01T00:00:00.000Z", valid_until="2026-12-01T01:00:00.000Z")
        locked = fx.lock(Money(amount, currency), snapshot)
        attempt_id = self.next_id("att")
        self.post(ledger.fx_payment_captured(attempt_id, FX_CHANNEL, merchant, locked.presentment, locked.settlement))
        self.fx_payments[attempt_id] = (merchant, locked)
        self.net_by_merchant[merchant] += locked.settlement.minor

    @rule(data=st.data())
    @precondition(lambda self: any(lk.refunded_presentment < lk.presentment.minor for _, lk in self.fx_payments.values()))
    def fx_refund(self, data: st.DataObject) -> None:
        attempt_id = data.draw(st.sampled_from(sorted(
            a for a, (_, lk) in self.fx_payments.items() if lk.refunded_presentment < lk.presentment.minor)))
        merchant, locked = self.fx_payments[attempt_id]
        left = locked.presentment.minor - locked.refunded_presentment
        part = data.draw(st.one_of(st.just(left), st.integers(1, left)))
        after, back = locked.refund(part)
        self.post(ledger.fx_refund_paid(self.next_id("ref"), FX_CHANNEL, merchant,
                                        Money(part, locked.presentment.currency), back))
        self.fx_payments[attempt_id] = (merchant, after)
        self.net_by_merchant[merchant] -= back.minor

    @rule(currency=st.sampled_from(FX_PRESENTMENT), bps=st.integers(9_500, 10_500))
    def fx_channel_converts(self, currency: str, bps: int) -> None:
        """The channel converts everything it holds in ``currency`` and pays the reserve in CNY at its own rate."""
        cleared = self.balances[ledger.clearing_account(FX_CHANNEL, currency)]
        locked = self.balances[ledger.fx_position_account(currency + CCY, CCY)]
        if cleared <= 0 or locked <= 0:
            return
        received = max(1, locked * bps // 10_000)
        self.post(ledger.fx_channel_settled(self.next_id("fxs"), FX_CHANNEL, RESERVE, Money(cleared, currency),
                                            Money(locked, CCY), Money(received, CCY)))
        self.fx_differences += locked - received
        assert self.balances[ledger.fx_position_account(currency + CCY, currency)] == 0
        assert self.balances[ledger.fx_position_account(currency + CCY, CCY)] == 0

    @rule(channel=st.sampled_from(CHANNELS), fee=st.integers(-5_000, 50_000).filter(bool), day=st.integers(1, 28))
    def channel_fees(self, channel: str, fee: int, day: int) -> None:
        booked_before = self.balances[ledger.channel_fee_account(channel, CCY)]
        reference = f"{channel}:{date(2026, 11, day)}:{CCY}:{booked_before}"
        journal = ledger.channel_fees_booked(reference, channel, Money(fee, CCY))
        if journal.journal_id not in self.posted:  # the same day and prior total: the same fact, booked once
            self.post(journal)

    @rule(channel=st.sampled_from(CHANNELS), share=st.integers(1, 100))
    @precondition(lambda self: any(self.balances[ledger.clearing_account(c, CCY)] > 0 for c in CHANNELS))
    def channel_settles(self, channel: str, share: int) -> None:
        held = self.balances[ledger.clearing_account(channel, CCY)]
        if held <= 0:
            return
        net = max(1, held * share // 100)
        self.post(ledger.channel_settled(self.next_id("stl_ch"), channel, RESERVE, Money(net, CCY)))

    @rule(merchant=st.sampled_from(MERCHANTS), amount=amounts)
    def hold(self, merchant: str, amount: int) -> None:
        hold_id = self.next_id("hld")
        self.post(ledger.settlement_held(hold_id, merchant, Money(amount, CCY)))
        self.holds[hold_id] = (merchant, amount)

    @rule(data=st.data())
    @precondition(lambda self: bool(self.holds))
    def release(self, data: st.DataObject) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.holds)))
        merchant, amount = self.holds.pop(hold_id)
        self.post(ledger.hold_released(hold_id, merchant, Money(amount, CCY)))

    @rule(merchant=st.sampled_from(MERCHANTS))
    def settle(self, merchant: str) -> None:
        decision = decide(self.terms, -self.balances[ledger.merchant_payable_account(merchant, CCY)])
        if not decision.settles:
            assert decision.net_minor == 0
            return
        assert decision.net_minor >= max(self.terms.minimum_minor, 1)
        assert decision.gross_minor == decision.net_minor + decision.fee_minor
        settlement_id = self.next_id("stl")
        self.post(ledger.merchant_settled(settlement_id, merchant, Money(decision.gross_minor, CCY),
                                          Money(decision.fee_minor, CCY)))
        self.open_settlements[settlement_id] = (merchant, decision.gross_minor, decision.fee_minor)
        self.fees_charged[merchant] += decision.fee_minor
        assert self.balances[ledger.merchant_payable_account(merchant, CCY)] == 0

    @rule(data=st.data(), paid=st.booleans())
    @precondition(lambda self: bool(self.open_settlements))
    def payout_ends(self, data: st.DataObject, paid: bool) -> None:
        settlement_id = data.draw(st.sampled_from(sorted(self.open_settlements)))
        merchant, gross, fee = self.open_settlements.pop(settlement_id)
        if paid:
            self.post(ledger.settlement_paid(settlement_id, merchant, RESERVE, Money(gross - fee, CCY)))
            self.received[merchant] += gross - fee
        else:
            self.post(ledger.settlement_returned(settlement_id, merchant, Money(gross, CCY), Money(fee, CCY)))
            self.fees_charged[merchant] -= fee

    @rule(merchant=st.sampled_from(MERCHANTS), items=st.lists(st.integers(1, 300_000), min_size=1, max_size=5))
    def payout_batch(self, merchant: str, items: list[int]) -> None:
        owed = -self.balances[ledger.merchant_payable_account(merchant, CCY)]
        if sum(items) > owed:
            return  # refused before anything moves: the merchant does not have it
        batch = self.next_id("pob")
        self.post(ledger.payout_reserved(batch, merchant, Money(sum(items), CCY)))
        for n, amount in enumerate(items):
            self.open_payouts[f"{batch}:{n}"] = (merchant, amount)

    @rule(data=st.data(), paid=st.booleans())
    @precondition(lambda self: bool(self.open_payouts))
    def payout_item_ends(self, data: st.DataObject, paid: bool) -> None:
        reference = data.draw(st.sampled_from(sorted(self.open_payouts)))
        merchant, amount = self.open_payouts.pop(reference)
        if paid:
            self.post(ledger.payout_paid(reference, merchant, RESERVE, Money(amount, CCY)))
            self.received[merchant] += amount
            self.paid_payouts[reference] = (merchant, amount)
        else:
            self.post(ledger.payout_released(reference, merchant, Money(amount, CCY)))

    # --- bank transfers in ------------------------------------------------------------------------------------

    @rule(merchant=st.sampled_from(MERCHANTS), amount=amounts)
    def bt_order(self, merchant: str, amount: int) -> None:
        self.bt_orders[self.next_id("att")] = [merchant, amount, 0, True]

    @rule(data=st.data(), amount=amounts, unknown=st.booleans())
    def bt_credit(self, data: st.DataObject, amount: int, unknown: bool) -> None:
        receipt = self.next_id("rcp")
        open_orders = sorted(a for a, o in self.bt_orders.items() if o[3])
        if unknown or not open_orders:
            self.post(ledger.bank_credit_received(receipt, RESERVE, Money(amount, CCY)))
            self.bt_unapplied[receipt] = amount
            return
        attempt = data.draw(st.sampled_from(open_orders))
        order = self.bt_orders[attempt]
        merchant, due, before = order[0], order[1], order[2]
        match = classify(due, before, amount)
        pays = match.pays_the_order and before < due
        self.post(ledger.bank_credit_received(receipt, RESERVE, Money(amount, CCY),
                                              applies=(BT_CHANNEL, Money(due, CCY)) if pays else None))
        order[2] = match.received_minor
        if match.excess_minor:
            self.bt_unapplied[receipt] = match.excess_minor
            self.bt_excess_of[receipt] = merchant
        if pays:
            self.bt_uncaptured[attempt] = (merchant, due)

    @rule(data=st.data())
    @precondition(lambda self: bool(self.bt_uncaptured))
    def bt_capture(self, data: st.DataObject) -> None:
        """The state machine's capture, in its own transaction after the order's arrival journal."""
        attempt = data.draw(st.sampled_from(sorted(self.bt_uncaptured)))
        merchant, amount = self.bt_uncaptured.pop(attempt)
        self.post(ledger.payment_captured(attempt, BT_CHANNEL, merchant, Money(amount, CCY)))
        self.bt_refundable[attempt] = (merchant, amount)
        self.net_by_merchant[merchant] += amount

    @rule(data=st.data())
    @precondition(lambda self: any(o[3] and o[2] < o[1] for o in self.bt_orders.values()))
    def bt_close(self, data: st.DataObject) -> None:
        """An order closed unpaid: what it received in parts waits for a person, unapplied."""
        attempt = data.draw(st.sampled_from(sorted(a for a, o in self.bt_orders.items() if o[3] and o[2] < o[1])))
        order = self.bt_orders[attempt]
        order[3] = False
        if order[2]:
            self.bt_unapplied[f"closed:{attempt}"] = order[2]

    @rule(data=st.data(), keep=st.booleans())
    @precondition(lambda self: bool(self.bt_unapplied))
    def bt_unapplied_decided(self, data: st.DataObject, keep: bool) -> None:
        receipt = data.draw(st.sampled_from(sorted(self.bt_unapplied)))
        amount = self.bt_unapplied.pop(receipt)
        merchant = self.bt_excess_of.pop(receipt, None)
        if keep and merchant is not None:
            self.post(ledger.bank_receipt_kept(receipt, RESERVE, merchant, Money(amount, CCY)))
            self.net_by_merchant[merchant] += amount
        else:
            self.post(ledger.bank_receipt_returned(self.next_id("ret"), RESERVE, Money(amount, CCY)))

    @rule(data=st.data())
    @precondition(lambda self: any(left for _, left in self.bt_refundable.values()))
    def bt_refund(self, data: st.DataObject) -> None:
        attempt = data.draw(st.sampled_from(sorted(a for a, (_, left) in self.bt_refundable.items() if left)))
        merchant, left = self.bt_refundable[attempt]
        amount = data.draw(st.integers(1, left))
        self.post(ledger.bank_refund_paid(self.next_id("ref"), merchant, RESERVE, Money(amount, CCY)))
        self.bt_refundable[attempt] = (merchant, left - amount)
        self.net_by_merchant[merchant] -= amount

    @invariant()
    def receipts_are_what_waits(self) -> None:
        waiting = sum(o[2] for o in self.bt_orders.values() if o[3] and o[2] < o[1]) + sum(self.bt_unapplied.values())
        assert -self.balances[ledger.bank_receipts_account(RESERVE, CCY)] == waiting
        assert -self.balances[ledger.clearing_account(BT_CHANNEL, CCY)] == sum(a for _, a in self.bt_uncaptured.values())

    def currency_sum(self, prefix: str, currency: str) -> int:
        return sum(amount for account, amount in self.balances.items()
                   if account.startswith(prefix) and account.endswith(f":{currency}"))

    @rule(data=st.data())
    @precondition(lambda self: bool(self.paid_payouts))
    def payout_comes_back(self, data: st.DataObject) -> None:
        reference = data.draw(st.sampled_from(sorted(self.paid_payouts)))
        merchant, amount = self.paid_payouts.pop(reference)
        self.post(ledger.transfer_returned(reference, merchant, RESERVE, Money(amount, CCY)))
        self.received[merchant] -= amount

    @invariant()
    def the_book_sums_to_zero_in_each_currency(self) -> None:
        for currency in (CCY, *FX_PRESENTMENT):
            assert self.currency_sum("", currency) == 0, currency

    @invariant()
    def the_reserve_holds_what_it_owes(self) -> None:
        """Per currency; the FX position is what the hub holds in one currency against what it owes in another."""
        for currency in (CCY, *FX_PRESENTMENT):
            assets = self.currency_sum("reserve:", currency) + self.currency_sum("channel_clearing:", currency)
            owed = -(self.currency_sum("merchant_payable:", currency) + self.currency_sum("settlement_hold:", currency)
                     + self.currency_sum("merchant_settling:", currency)
                     + self.currency_sum("merchant_payout:", currency)
                     + self.currency_sum("bank_receipts:", currency))
            margin = (-self.currency_sum("fee_income:", currency) - self.currency_sum("channel_fee:", currency)
                      - self.currency_sum("fx_difference:", currency))
            position = -self.currency_sum("fx_position:", currency)
            assert assets == owed + margin + position, currency

    @invariant()
    def fx_positions_mirror_the_channel_and_the_locked_amounts(self) -> None:
        for currency in FX_PRESENTMENT:
            pair = currency + CCY
            # what the channel holds in the presentment currency is exactly the open position in it
            assert (self.balances[ledger.fx_position_account(pair, currency)]
                    == -self.balances[ledger.clearing_account(FX_CHANNEL, currency)])
        assert self.sum_of("fx_difference:") == self.fx_differences
        for merchant, locked in self.fx_payments.values():
            assert 0 <= locked.refunded_settlement <= locked.settlement.minor
            if locked.refunded_presentment == locked.presentment.minor:
                assert locked.refunded_settlement == locked.settlement.minor

    @invariant()
    def settling_is_the_open_settlements(self) -> None:
        for merchant in MERCHANTS:
            in_flight = sum(g - f for m, g, f in self.open_settlements.values() if m == merchant)
            assert -self.balances[ledger.merchant_settling_account(merchant, CCY)] == in_flight
            paying = sum(amount for m, amount in self.open_payouts.values() if m == merchant)
            assert -self.balances[ledger.merchant_payout_account(merchant, CCY)] == paying
        assert -self.sum_of("fee_income:") == sum(self.fees_charged.values())

    @invariant()
    def each_merchant_gets_exactly_its_money(self) -> None:
        for merchant in MERCHANTS:
            still_owed = -(self.balances[ledger.merchant_payable_account(merchant, CCY)]
                           + self.balances[settlement_hold_account(merchant, CCY)]
                           + self.balances[ledger.merchant_settling_account(merchant, CCY)]
                           + self.balances[ledger.merchant_payout_account(merchant, CCY)])
            assert self.received[merchant] + still_owed == self.net_by_merchant[merchant] - self.fees_charged[merchant]


Reserve.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestReserve = Reserve.TestCase
