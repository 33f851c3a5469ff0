"""Paying merchants from the reserve: settlement terms, holds, and the settlement of one Beijing day.

  MERCHANT#<m> / SETTLEMENT_TERMS     delay_days, minimum_minor, fee_bps, reserve_id, paused... (config table)
  SETTLE#<m>#<CCY> / STATE            version, through: the last day settled (state table)
  SETTLEMENT#<id> / RECORD            one settlement day's decision and, when it pays, its status (state table)
  HOLD#<hold_id> / RECORD             an operator's hold: amount, reason, status held | released (state table)

The ledger table holds journals, entries and their running totals only (append-only, docs/design.md); these
records, which change state, live beside payments and refunds.

A settlement day is one transaction: the state's version guard (so two runs for the same merchant and currency
never both pay the same money), the record, and the ``merchant_settled`` journal. Its id is a hash of
(merchant, currency, day): a repeat of the same day returns the first record. Days are settled in order; a day
skipped is covered by the next one, which pays everything matured by then (chalicelib/domain/settlement.py).

Every operator action (terms, holds, releases) is audited in the transaction that makes it.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import date, datetime
from typing import Any

from chalicelib.banks.base import BankAccountRef, BankAdapter, Transfer, TransferState, TransferStatus
from chalicelib.config.settings import settings
from chalicelib.domain import ledger
from chalicelib.domain.clock import beijing_today, iso, require_day_over, utcnow
from chalicelib.domain.errors import ChannelError, Conflict, InvalidRequest, NotFound
from chalicelib.domain.ids import new_id
from chalicelib.domain.money import SUPPORTED_CURRENCIES, Money
from chalicelib.domain.settlement import Decision, SettlementTerms, decide, owed_matured, unmatured_days
from chalicelib.observability import alert
from chalicelib.service import audit
from chalicelib.storage import config_repo, ledger_repo, records, state_repo
from chalicelib.storage.transaction import Transaction, TransactionConflict

log = logging.getLogger(__name__)


def _config_table() -> str:
    return settings().names.config_table


def _merchant(merchant_id: str) -> None:
    if config_repo.load_merchant(merchant_id, consistent=True) is None:
        raise NotFound(f"no merchant {merchant_id}", param="merchant_id")


def _currency(currency: str) -> str:
    if currency not in SUPPORTED_CURRENCIES:
        raise InvalidRequest(f"currency {currency!r} is not supported", param="currency")
    return currency


# --- Terms -----------------------------------------------------------------------------------------------


_PAYEE = ("payee_account_no", "payee_name", "payee_bank_name", "payee_bank_code")


def terms_of(merchant_id: str) -> SettlementTerms | None:
    item = state_repo.get_item({"pk": f"MERCHANT#{merchant_id}", "sk": "SETTLEMENT_TERMS"}, table=_config_table())
    if item is None:
        return None
    return SettlementTerms(delay_days=int(item["delay_days"]), minimum_minor=int(item["minimum_minor"]),
                           fee_bps=int(item["fee_bps"]), reserve_id=str(item["reserve_id"]),
                           paused=bool(item.get("paused", False)),
                           currencies=tuple(item.get("currencies") or ("CNY",)),
                           **{name: item.get(name) for name in _PAYEE})


def _terms_record(terms: SettlementTerms) -> dict[str, Any]:
    return {"delay_days": terms.delay_days, "minimum_minor": terms.minimum_minor, "fee_bps": terms.fee_bps,
            "reserve_id": terms.reserve_id, "paused": terms.paused, "currencies": list(terms.currencies),
            **{name: value for name in _PAYEE if (value := getattr(terms, name)) is not None}}


def set_terms(actor: audit.Actor, merchant_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """Put a merchant's settlement terms (``paused`` defaults to false, ``currencies`` to CNY; the payee
    account, where settlements are sent, to none: settlements then wait for one). Audited."""
    _merchant(merchant_id)
    fields = ("delay_days", "minimum_minor", "fee_bps", "reserve_id", "paused", "currencies", *_PAYEE)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InvalidRequest(f"unknown field {unknown[0]}", param=unknown[0])
    for name in fields[:4]:
        if name not in values:
            raise InvalidRequest(f"{name} is required", param=name)
    for name in fields[:3]:
        if not isinstance(values[name], int) or isinstance(values[name], bool):
            raise InvalidRequest(f"{name} must be an integer", param=name)
    if not isinstance(values["reserve_id"], str) or not isinstance(values.get("paused", False), bool):
        name = "reserve_id" if not isinstance(values["reserve_id"], str) else "paused"
        raise InvalidRequest(f"{name} has the wrong type", param=name)
    currencies = values.get("currencies", ["CNY"])
    if not isinstance(currencies, list) or not all(isinstance(c, str) and c in SUPPORTED_CURRENCIES for c in currencies):
        raise InvalidRequest("currencies must list supported ISO 4217 codes", param="currencies")
    for name in _PAYEE:
        if values.get(name) is not None and not isinstance(values[name], str):
            raise InvalidRequest(f"{name} must be text", param=name)
    if values.get("payee_account_no") and not values.get("payee_name"):
        raise InvalidRequest("payee_name is required with payee_account_no", param="payee_name")
    try:
        terms = SettlementTerms(**{name: values[name] for name in fields if name in values and name != "currencies"},
                                currencies=tuple(currencies))
    except ValueError as exc:
        param = next((name for name in fields if str(exc).startswith(name)), None)
        raise InvalidRequest(str(exc), param=param) from exc
    before = terms_of(merchant_id)
    tx = Transaction()
    tx.put("terms", _config_table(), {"pk": f"MERCHANT#{merchant_id}", "sk": "SETTLEMENT_TERMS",
                                      **_terms_record(terms), "updated_at": iso(utcnow())})
    audit.add(tx, actor, "settlement.terms", merchant_id, before=_terms_record(before) if before else None,
              after=_terms_record(terms))
    tx.commit()
    return {"merchant_id": merchant_id, **_terms_record(terms)}


# --- Holds -----------------------------------------------------------------------------------------------


def _hold_key(hold_id: str) -> dict[str, str]:
    return {"pk": f"HOLD#{hold_id}", "sk": "RECORD"}


def place_hold(actor: audit.Actor, merchant_id: str, amount: int, currency: str, reason: str) -> dict[str, Any]:
    """Hold ``amount`` of the merchant's money back from settlement (a dispute, a review). Audited."""
    _merchant(merchant_id)
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidRequest("amount must be a positive integer (minor units)", param="amount")
    if not reason.strip():
        raise InvalidRequest("reason is required", param="reason")
    money = Money(amount, _currency(currency))
    hold_id, now = new_id("hld"), iso(utcnow())
    record = {"hold_id": hold_id, "merchant_id": merchant_id, "amount": amount, "currency": currency,
              "reason": reason, "status": "held", "placed_at": now, "placed_by": actor.as_record()}
    tx = Transaction()
    tx.put_new("hold", state_repo.state_table(), {**_hold_key(hold_id), **record})
    ledger_repo.add_journal(tx, ledger.settlement_held(hold_id, merchant_id, money), now=now)
    audit.add(tx, actor, "settlement.hold", merchant_id, after={"hold_id": hold_id, "amount": amount,
                                                                 "currency": currency, "reason": reason})
    tx.commit()
    return record


def release_hold(actor: audit.Actor, hold_id: str, reason: str) -> dict[str, Any]:
    """Release a hold: an operator's (``hld_…``) or one reconciliation placed on an attempt whose money the
    channel disowned (``att_…``, once the channel has paid it after all). The money is the merchant's to be
    settled again. Audited; a hold is released once."""
    if not reason.strip():
        raise InvalidRequest("reason is required", param="reason")
    now = iso(utcnow())
    tx = Transaction()
    if hold_id.startswith("hld_"):
        held = state_repo.get_item(_hold_key(hold_id))
        if held is None:
            raise NotFound(f"no hold {hold_id}", param="hold_id")
        merchant_id, money = str(held["merchant_id"]), Money(int(held["amount"]), str(held["currency"]))
        tx.update("hold", state_repo.state_table(), _hold_key(hold_id),
                  {"status": "released", "released_at": now, "released_by": actor.as_record(),
                   "release_reason": reason}, condition="#status = :held", condition_values={":held": "held"})
    else:
        attempt = state_repo.get_attempt(hold_id)
        held = ledger_repo.journal("settlement_held", hold_id)
        if attempt is None or held is None:
            raise NotFound(f"no settlement hold on {hold_id}", param="hold_id")
        # What was held, as its journal booked it (the settlement currency for a converted payment)
        line = next(e for e in held["entries"] if int(e["amount"]) > 0)  # type: ignore[attr-defined]
        merchant_id, money = attempt.merchant_id, Money(int(line["amount"]), str(line["currency"]))
        tx.update("hold", state_repo.state_table(), records.payment_key(attempt.payment_id), {"updated_at": now},
                  remove=("settlement_hold",), condition="settlement_hold.attempt_id = :attempt",
                  condition_values={":attempt": hold_id})
    ledger_repo.add_journal(tx, ledger.hold_released(hold_id, merchant_id, money), now=now)
    audit.add(tx, actor, "settlement.release", hold_id, before={"status": "held"},
              after={"status": "released", "amount": money.minor, "currency": money.currency, "reason": reason})
    try:
        tx.commit()
    except TransactionConflict as exc:
        raise Conflict(f"hold {hold_id} was already released") from exc
    return {"hold_id": hold_id, "merchant_id": merchant_id, "amount": money.minor, "currency": money.currency,
            "status": "released", "released_at": now}


# --- Settling a day --------------------------------------------------------------------------------------


def settlement_id(merchant_id: str, currency: str, day: date) -> str:
    return "stl_" + hashlib.sha256(f"{merchant_id}:{currency}:{day.isoformat()}".encode()).hexdigest()[:24]


def _state_key(merchant_id: str, currency: str) -> dict[str, str]:
    return {"pk": f"SETTLE#{merchant_id}#{currency}", "sk": "STATE"}


def _record_key(settlement: str) -> dict[str, str]:
    return {"pk": f"SETTLEMENT#{settlement}", "sk": "RECORD"}


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("pk", "sk")}


def get_settlement(settlement: str) -> dict[str, Any]:
    found = state_repo.get_item(_record_key(settlement))
    if found is None:
        raise NotFound(f"no settlement {settlement}", param="settlement_id")
    return _public(found)


def owed_now(merchant_id: str, currency: str, day: date, delay_days: int, today: date) -> int:
    """What the merchant is owed for money matured by ``day`` (T+N): the payable balance less the credits of the
    days not matured yet (refunds, fees and holds of those days count at once: only money arriving waits). The
    balance and the days' credits are separate reads while payments keep arriving, so the credits are read before
    and after the balance and the smaller answer is taken: a capture landing between two reads can then only make
    a settlement smaller (the rest is paid the next day), never pay money twice or early."""
    payable = ledger.merchant_payable_account(merchant_id, currency)
    days = unmatured_days(day, delay_days, today)

    def unmatured() -> int:
        return sum(ledger_repo.day_credits(payable, d.isoformat(), consistent=True) for d in days)

    before = unmatured()
    balance = ledger_repo.balance(payable)
    after = unmatured()
    return min(owed_matured(balance, before), owed_matured(balance, after))


def draw_state(merchant_id: str, currency: str) -> dict[str, Any] | None:
    """The merchant-and-currency state every draw on the payable (a settlement, a payout batch) is guarded by."""
    return state_repo.get_item(_state_key(merchant_id, currency))


def guard_draw(tx: Transaction, merchant_id: str, currency: str, state: dict[str, Any] | None, now: str,
               *, through: str | None = None) -> None:
    """Add the state's version guard to ``tx``: it commits only if no other draw committed since ``state`` was
    read, so two draws computed from the same balance cannot both take the same money."""
    version = int(state["version"]) if state else 0
    changes: dict[str, Any] = {"version": version + 1, "updated_at": now}
    if through is not None:
        changes["through"] = through
    tx.update("state", state_repo.state_table(), _state_key(merchant_id, currency), changes,
              condition="attribute_not_exists(pk)" if state is None else "version = :version",
              condition_values={} if state is None else {":version": version})


def settle_day(merchant_id: str, currency: str, day: date, *, now: datetime | None = None) -> dict[str, Any]:
    """Settle a merchant's ``currency`` for the Beijing day ``day`` (which must have ended) under its terms.
    Returns the day's settlement record; a repeat returns the first one. Raises ``Conflict`` for a day before
    the last one settled, or when another run settled meanwhile (run again)."""
    moment = now or utcnow()
    require_day_over(day, now=moment)
    _currency(currency)
    terms = terms_of(merchant_id)
    if terms is None:
        raise NotFound(f"merchant {merchant_id} has no settlement terms", param="merchant_id")
    sid = settlement_id(merchant_id, currency, day)
    state = draw_state(merchant_id, currency)
    through = str(state["through"]) if state and state.get("through") else None
    if through is not None and day.isoformat() <= through:
        existing = state_repo.get_item(_record_key(sid))
        if existing is not None:
            return _public(existing)
        raise Conflict(f"{merchant_id} {currency} is settled through {through}; {day.isoformat()} comes before")
    owed = owed_now(merchant_id, currency, day, terms.delay_days, beijing_today(moment))
    decision = decide(terms, owed)
    if decision.settles and not terms.payee_account_no:  # nowhere to send it: the money stays owed, nothing moves
        log.warning("merchant %s cannot be settled: its terms name no bank account", merchant_id,
                    extra=alert("settlement_no_payee", merchant_id=merchant_id, day=day.isoformat()))
        decision = Decision("no_payee_account", owed)
    return _commit(merchant_id, currency, day, sid, terms, decision, state, iso(moment))


def _commit(merchant_id: str, currency: str, day: date, sid: str, terms: SettlementTerms, decision: Decision,
            state: dict[str, Any] | None, now: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "settlement_id": sid, "merchant_id": merchant_id, "currency": currency, "day": day.isoformat(),
        "outcome": decision.outcome, "owed": decision.owed_minor, "gross": decision.gross_minor,
        "fee": decision.fee_minor, "net": decision.net_minor, "terms": _terms_record(terms), "created_at": now,
        "status": "instructed" if decision.settles else "none",
    }
    tx = Transaction()
    guard_draw(tx, merchant_id, currency, state, now, through=day.isoformat())
    tx.put_new("record", state_repo.state_table(), {**_record_key(sid), **record})
    if decision.settles:
        ledger_repo.add_journal(tx, ledger.merchant_settled(sid, merchant_id, Money(decision.gross_minor, currency),
                                                            Money(decision.fee_minor, currency)), now=now)
    try:
        tx.commit()
    except TransactionConflict as exc:
        raise Conflict(f"another settlement of {merchant_id} {currency} ran meanwhile; run {day} again") from exc
    if decision.settles:
        log.info("settlement %s: %s %s %s to %s (fee %s)", sid, day, decision.net_minor, currency, merchant_id,
                 decision.fee_minor)
    return record


def finish_settlement(settlement: str, *, paid: bool, bank_reference: str, value_day: date) -> dict[str, Any]:
    """The bank's answer to an instructed settlement: paid on ``value_day`` (the money left the reserve, as the
    reserve's bank statement will show that day) or returned (the merchant is owed it again, fee included, due
    at once: the return is not value-dated, so no T+N applies twice). Once: a second answer is refused by the
    status condition."""
    record = get_settlement(settlement)
    if record["status"] != "instructed":
        raise Conflict(f"settlement {settlement} is {record['status']}, not instructed")
    merchant_id, currency = str(record["merchant_id"]), str(record["currency"])
    gross, fee = Money(int(record["gross"]), currency), Money(int(record["fee"]), currency)
    now = iso(utcnow())
    journal = (ledger.settlement_paid(settlement, merchant_id, str(record["terms"]["reserve_id"]),
                                      Money(gross.minor - fee.minor, currency)) if paid
               else ledger.settlement_returned(settlement, merchant_id, gross, fee))
    status = "paid" if paid else "returned"
    tx = Transaction()
    tx.update("record", state_repo.state_table(), _record_key(settlement),
              {"status": status, "bank_reference": bank_reference, "finished_at": now},
              condition="#status = :instructed", condition_values={":instructed": "instructed"})
    if paid:  # the reserve's statement finds it again by its reference, should the transfer come back
        tx.put("lookup", state_repo.state_table(), {"pk": f"XFER#{transfer_reference(settlement)}", "sk": "TRANSFER",
                                                    "settlement_id": settlement})
    ledger_repo.add_journal(tx, journal, now=now, value_day=value_day.isoformat() if paid else None)
    try:
        tx.commit()
    except TransactionConflict as exc:
        raise Conflict(f"settlement {settlement} was answered meanwhile") from exc
    return {**record, "status": status, "bank_reference": bank_reference, "finished_at": now}


# --- Sending to the bank ---------------------------------------------------------------------------------


def transfer_reference(settlement: str) -> str:
    """The bank reference of a settlement's transfer: at most 30 letters and digits, the same on every resend."""
    return "S" + hashlib.sha256(settlement.encode()).hexdigest()[:29].upper()


def send(settlement: str, bank: tuple[BankAdapter, BankAccountRef]) -> str:
    """Send an instructed settlement to the merchant's bank account (a resend is answered with the first
    transfer's outcome, so this is also how its end is asked for) and record how it ended. Returns the
    settlement's status: ``instructed`` while the bank has not finished (the caller asks again later)."""
    record = get_settlement(settlement)
    if record["status"] != "instructed":
        return str(record["status"])
    terms = record["terms"]
    adapter, account = bank
    net = Money(int(record["net"]), str(record["currency"]))
    try:
        status = adapter.submit_transfer(account, Transfer(
            reference=transfer_reference(settlement), amount=net, payee_account_no=str(terms["payee_account_no"]),
            payee_name=str(terms["payee_name"]), payee_bank_name=terms.get("payee_bank_name"),
            payee_bank_code=terms.get("payee_bank_code"), purpose=f"结算 {record['day']}"))
    except ChannelError as exc:
        if not exc.refused:  # retryable, or the outcome is unknown: never undone while the bank may pay it
            if not exc.retryable:
                log.error("settlement %s: the bank's answer leaves its outcome unknown: %s", settlement, exc.message,
                          extra=alert("payout_outcome_unknown", reference=transfer_reference(settlement)))
            return "instructed"
        status = TransferStatus(transfer_reference(settlement), TransferState.FAILED, failure_reason=exc.message)
    if status.state is TransferState.PROCESSING:
        return "instructed"
    paid = status.state is TransferState.SUCCEEDED
    finished = finish_settlement(settlement, paid=paid, bank_reference=status.bank_reference or "",
                                 value_day=status.value_day or beijing_today())
    if not paid:
        log.warning("settlement %s came back from the bank: %s", settlement, status.failure_reason,
                    extra=alert("settlement_returned", settlement_id=settlement))
    return str(finished["status"])


def returned_after_paid(reference: str, amount: Money, value_day: str, reason: str) -> bool:
    """A paid settlement's transfer came back (its credit on the reserve's statement): the settlement is marked
    ``returned`` and its net is the merchant's again (the hub's fee stays charged: the settlement happened), once.
    False when no paid settlement is under that reference."""
    found = state_repo.get_item({"pk": f"XFER#{reference}", "sk": "TRANSFER"})
    if found is None or "settlement_id" not in found:
        return False
    record = get_settlement(str(found["settlement_id"]))
    if record["status"] != "paid" or int(record["net"]) != amount.minor:
        return False
    tx = Transaction()
    tx.update("record", state_repo.state_table(), _record_key(str(record["settlement_id"])),
              {"status": "returned", "return_reason": reason, "returned_on": value_day},
              condition="#status = :paid", condition_values={":paid": "paid"})
    ledger_repo.add_journal(tx, ledger.transfer_returned(reference, str(record["merchant_id"]),
                                                         str(record["terms"]["reserve_id"]), amount),
                            now=iso(utcnow()), value_day=value_day)
    try:
        tx.commit()
    except TransactionConflict:
        return False  # booked by another run of the day
    return True
