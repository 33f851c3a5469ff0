"""Payer businesses paying by bank transfer (对公转账): orders with a virtual sub-account and a remittance code,
credits from the reserve's bank matched to them, and what an operator does with the rest (docs/transfers-in.md).

Records (state table):

  XFER#<attempt_id> / ORDER       the order: amount, what it has received (under ``version``), its receipts
  VA#<sub-account> / LOOKUP       the sub-account opened for it       } put once each: a credit finds its order
  REMIT#<code> / LOOKUP           its remittance code                  }
  RECEIPT#<receipt_id> / RECEIPT  one bank credit, put once per (reserve, bank reference): a second reading of it
                                  (the sweep again, the reserve reconciliation) changes nothing
  XFER_REVIEW / <receipt_id>      a receipt waiting for a person (unknown, excess, late, large)
  XFER_RETURNING / <receipt_id>   a receipt being transferred back to its payer (asked about by the sweep)

Ledger (chalicelib/domain/ledger.py): each credit moves reserve <- bank_receipts when it is read; an order paid
moves its amount bank_receipts -> the channel's clearing, and the capture journal (``apply_attempt_status``) then
owes it to the merchant. What is not applied (a part payment still waiting, an excess, an unknown credit, one
waiting for approval) stays in bank_receipts until it is applied, kept for the merchant or returned.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from chalicelib.banks.accounts import channel_paying_accounts
from chalicelib.banks.base import BankAccountRef, BankAdapter, BankEntry, Transfer, TransferState, TransferStatus
from chalicelib.channels.base import PaymentOutcome, PaymentStatus
from chalicelib.domain import ledger
from chalicelib.domain.clock import BEIJING, iso, utcnow
from chalicelib.domain.errors import ChannelError, Conflict, InvalidRequest, NotFound
from chalicelib.domain.models import Refund
from chalicelib.domain.money import Money
from chalicelib.domain.transfers import MatchKind, classify, code_in, new_remittance_code
from chalicelib.service import audit
from chalicelib.storage import ledger_repo, records, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item
from chalicelib.storage.transaction import Transaction, TransactionConflict

log = logging.getLogger(__name__)
CHANNEL = "banktransfer"
METHOD = "bank.transfer"
MAX_RACE_RETRIES = 8
# Credits for one order counted at once each lose at most once per other credit: a burst of a few dozen transfers
# for one order (a payer paying in instalments on one day) still counts every one in this run.
COUNT_RETRIES = 32
REVIEW_PK = "XFER_REVIEW"
RETURNING_PK = "XFER_RETURNING"


class ReceiptState:
    APPLIED = "applied"  # counted for its order (which is paid, or waits for the rest)
    AWAITING_APPROVAL = "awaiting_approval"  # at or above the merchant's large-payment threshold
    REVIEW = "review"  # something of it is unapplied: unknown, excess, late (order closed); a person decides
    RETURNING = "returning"  # its unapplied part is being transferred back to the payer
    RETURNED = "returned"
    KEPT = "kept"  # an excess the merchant keeps


NEEDS_PERSON = (ReceiptState.AWAITING_APPROVAL, ReceiptState.REVIEW)


class _Write(Protocol):
    """Writes a receipt's new fields into a transaction: a credit's first record (with its arrival journal, which
    then also applies the order's amount when ``applies`` is given), or an operator's decision on it."""

    def __call__(self, tx: Transaction, fields: dict[str, Any], applies: tuple[str, Money] | None = None) -> None: ...


# --- keys --------------------------------------------------------------------------------------------------


def _order_key(attempt_id: str) -> dict[str, str]:
    return {"pk": f"XFER#{attempt_id}", "sk": "ORDER"}


def _lookup_key(kind: str, value: str) -> dict[str, str]:
    return {"pk": f"{kind}#{value}", "sk": "LOOKUP"}


def receipt_id(reserve_id: str, bank_reference: str) -> str:
    """One id per bank credit: the bank's serial is unique per account, the reserve names the account."""
    return "rcp_" + hashlib.sha256(f"{reserve_id}:{bank_reference}".encode()).hexdigest()[:24]


def _receipt_key(rid: str) -> dict[str, str]:
    return {"pk": f"RECEIPT#{rid}", "sk": "RECEIPT"}


def _reference(prefix: str, value: str) -> str:
    """A bank reference ([A-Za-z0-9]{1,30}) derived from one of our ids: the same id always sends the same one."""
    return prefix + hashlib.sha256(value.encode()).hexdigest()[:28].upper()


def refund_reference(refund_id: str) -> str:
    return _reference("RF", refund_id)


def return_reference(rid: str, attempt: int) -> str:
    return _reference("RT", f"{rid}:{attempt}")


def _get(key: dict[str, str]) -> dict[str, Any] | None:
    item = client("dynamodb").get_item(TableName=state_repo.state_table(), Key=to_item(key),
                                       ConsistentRead=True).get("Item")
    return from_item(item) if item else None


def get_order(attempt_id: str) -> dict[str, Any] | None:
    return _get(_order_key(attempt_id))


def get_receipt(rid: str) -> dict[str, Any]:
    found = _get(_receipt_key(rid))
    if found is None:
        raise NotFound(f"no receipt {rid}", param="receipt_id")
    return found


# --- orders (the channel adapter's create, query, close) -------------------------------------------------


def open_order(attempt_id: str, reserve_id: str, bank: tuple[BankAdapter, BankAccountRef], *, name: str,
               bank_name: str, expires_at: datetime) -> dict[str, Any]:
    """The order of an attempt: a sub-account at the reserve's bank and a remittance code, recorded with the
    lookups a credit finds it by. A second call for the attempt (a create retried) answers the first order."""
    existing = get_order(attempt_id)
    if existing is not None:
        return existing
    attempt = state_repo.get_attempt(attempt_id)
    if attempt is None:
        raise NotFound(f"no attempt {attempt_id}", param="attempt_id")
    if attempt.currency != "CNY":
        raise InvalidRequest("bank transfers are taken in CNY only", param="currency")
    adapter, account = bank
    # The bank answers the same sub-account to a resend under the same reference.
    account_no = adapter.open_virtual_account(account, _reference("VA", attempt_id), name[:100] or attempt_id)
    now = iso(utcnow())
    for _ in range(MAX_RACE_RETRIES):
        code = new_remittance_code()
        order = {**_order_key(attempt_id), "attempt_id": attempt_id, "payment_id": attempt.payment_id,
                 "merchant_id": attempt.merchant_id, "account_id": attempt.account_id, "reserve_id": reserve_id,
                 "amount": attempt.amount, "currency": attempt.currency, "account_no": account_no,
                 "account_name": account.account_name, "bank_name": bank_name, "remittance_code": code,
                 "received": 0, "receipts": [], "state": "open", "version": 0, "created_at": now, "expires_at": iso(expires_at)}
        tx = Transaction()
        tx.put_new("order", state_repo.state_table(), order)
        tx.put_new("va", state_repo.state_table(), {**_lookup_key("VA", account_no), "attempt_id": attempt_id})
        tx.put_new("code", state_repo.state_table(), {**_lookup_key("REMIT", code), "attempt_id": attempt_id})
        try:
            tx.commit()
        except TransactionConflict as conflict:
            if "order" in conflict.failed_labels:
                found = get_order(attempt_id)
                if found is not None:
                    return found
            if "va" in conflict.failed_labels:
                raise Conflict(f"sub-account {account_no} is already another order's") from None
            continue  # the code was taken (1 in 3.4e10): draw another
        return order
    raise RuntimeError(f"no free remittance code for {attempt_id}")


def order_status(attempt_id: str, amount: Money) -> PaymentStatus:
    """What has been received for the order: paid when it reached the amount, pending while partial."""
    order = get_order(attempt_id)
    if order is None:
        return PaymentStatus(outcome=PaymentOutcome.NOT_FOUND, raw_status="NO_ORDER")
    received = int(order["received"])
    if received >= int(order["amount"]):
        return PaymentStatus(outcome=PaymentOutcome.SUCCEEDED, raw_status="RECEIVED", amount=amount,
                             channel_transaction_id=str(order.get("paid_by") or "") or None,
                             paid_at=_parse(order.get("paid_at")))
    if order["state"] == "closed":
        return PaymentStatus(outcome=PaymentOutcome.CLOSED, raw_status="CLOSED")
    return PaymentStatus(outcome=PaymentOutcome.PENDING, raw_status="PARTIAL" if received else "AWAITING_TRANSFER")


def _parse(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


def close_order(attempt_id: str) -> None:
    """Nobody can pay the order any more: later credits to it wait for a person. Money it had received in part
    goes to a person too (to return it). A paid order raises ``ChannelError(channel_code="ORDERPAID")``."""
    for _ in range(MAX_RACE_RETRIES):
        order = get_order(attempt_id)
        if order is None or order["state"] == "closed":
            return
        if int(order["received"]) >= int(order["amount"]):
            raise ChannelError(f"order {attempt_id} is paid", channel_code="ORDERPAID", refused=True)
        now = iso(utcnow())
        tx = Transaction()
        _guard_order(tx, order, {"state": "closed", "closed_at": now})
        for rid in order.get("receipts") or []:  # part payments: each back to a person, unapplied whole
            receipt = get_receipt(str(rid))
            tx.update(f"receipt:{rid}", state_repo.state_table(), _receipt_key(str(rid)),
                      {"state": ReceiptState.REVIEW, "reason": "order_closed", "unapplied": int(receipt["amount"]),
                       "counted": 0, "updated_at": now},
                      condition="#state = :applied", condition_values={":applied": ReceiptState.APPLIED})
            tx.put("review", state_repo.state_table(), {"pk": REVIEW_PK, "sk": str(rid), "since": now})
        try:
            tx.commit()
        except TransactionConflict:
            continue
        return
    raise RuntimeError(f"order {attempt_id} kept racing")


def _guard_order(tx: Transaction, order: dict[str, Any], changes: dict[str, Any]) -> None:
    """The version guard: two credits (or a credit and a close) racing for one order never both write from what
    they read; the loser reads again and is counted on top of the winner."""
    version = int(order["version"])
    tx.update("order", state_repo.state_table(), _order_key(str(order["attempt_id"])),
              {**changes, "version": version + 1}, condition="#version = :seen", condition_values={":seen": version})


# --- credits -----------------------------------------------------------------------------------------------


def _find(entry: BankEntry) -> str | None:
    """The attempt a credit names: by the sub-account credited, else by a remittance code in its postscript."""
    if entry.virtual_account_no:
        found = _get(_lookup_key("VA", entry.virtual_account_no))
        if found is not None:
            return str(found["attempt_id"])
    code = code_in(entry.postscript or "")
    if code:
        found = _get(_lookup_key("REMIT", code))
        if found is not None:
            return str(found["attempt_id"])
    return None


def _threshold(merchant_id: str) -> int:
    from chalicelib.service import payouts  # the merchant's large-payment policy (payouts own it)

    return payouts.policy_of(merchant_id).single_threshold_minor


def apply_credit(reserve_id: str, entry: BankEntry) -> str:
    """Book one credit of the reserve's statement and match it: ``exact`` / ``partial`` / ``over`` (counted for its
    order; exact and over pay it), ``unknown`` / ``late`` (no open order: a person decides), ``awaiting_approval``
    (a large credit: an operator approves before it moves the payment), ``duplicate`` (read before: nothing
    changes), or ``channel_settlement`` (from a channel's own account: not a payer's; nothing booked here).
    Safe to call any number of times for one credit, from any number of processes at once."""
    if entry.direction != "credit" or entry.amount.minor <= 0:
        raise ValueError(f"entry {entry.bank_reference} is not a credit")
    if entry.counterparty_account_no in channel_paying_accounts(reserve_id):
        return "channel_settlement"  # a channel settling into the reserve: the reserve's reconciliation books it
    rid = receipt_id(reserve_id, entry.bank_reference)
    if _get(_receipt_key(rid)) is not None:
        return "duplicate"
    now = iso(utcnow())
    receipt = {**_receipt_key(rid), "receipt_id": rid, "reserve_id": reserve_id,
               "bank_reference": entry.bank_reference, "amount": entry.amount.minor, "currency": entry.amount.currency,
               "value_day": entry.value_day.isoformat(), "booked_at": iso(entry.booked_at),
               "payer_account_no": entry.counterparty_account_no, "payer_name": entry.counterparty_name,
               "postscript": entry.postscript, "virtual_account_no": entry.virtual_account_no,
               "created_at": now, "updated_at": now, "returns": 0}
    attempt_id = _find(entry)
    order = get_order(attempt_id) if attempt_id else None
    value_day = entry.value_day.isoformat()

    def first_write(tx: Transaction, fields: dict[str, Any], applies: tuple[str, Money] | None = None) -> None:
        """The credit's record and its arrival in the ledger (when it completes its order, the same journal
        applies the order's amount)."""
        tx.put_new("receipt", state_repo.state_table(), {**receipt, **fields})
        ledger_repo.add_journal(tx, ledger.bank_credit_received(rid, reserve_id, entry.amount, applies=applies),
                                now=now, value_day=value_day)

    if order is None or order["currency"] != entry.amount.currency:
        return _set_aside(first_write, rid, entry.amount.minor, "unknown", MatchKind.UNKNOWN, attempt_id if order else None)
    if order["state"] == "closed":
        return _set_aside(first_write, rid, entry.amount.minor, "late", MatchKind.UNKNOWN, str(order["attempt_id"]))
    if entry.amount.minor >= _threshold(str(order["merchant_id"])):
        log.info("credit %s of %d for %s waits for approval", rid, entry.amount.minor, attempt_id)
        return _set_aside(first_write, rid, entry.amount.minor, "large", None, str(order["attempt_id"]),
                          state=ReceiptState.AWAITING_APPROVAL, result="awaiting_approval")
    return _count(rid, entry.amount.minor, str(order["attempt_id"]), first_write, paid_at=entry.booked_at)


def _set_aside(write: _Write, rid: str, amount: int, reason: str,
               kind: MatchKind | None, attempt_id: str | None, *, state: str = ReceiptState.REVIEW,
               result: str | None = None) -> str:
    """A receipt nobody's order takes for now: booked, listed for a person, the whole of it unapplied."""
    now = iso(utcnow())
    tx = Transaction()
    fields: dict[str, Any] = {"state": state, "reason": reason, "attempt_id": attempt_id, "counted": 0,
                              "unapplied": amount}
    if kind is not None:
        fields["kind"] = str(kind)
    write(tx, fields)
    tx.put("review", state_repo.state_table(), {"pk": REVIEW_PK, "sk": rid, "since": now})
    try:
        tx.commit()
    except TransactionConflict as conflict:
        if "receipt" in conflict.failed_labels:
            return "duplicate"
        raise
    return result or reason


def _count(rid: str, amount: int, attempt_id: str, write: _Write, *,
           paid_at: datetime | None = None, late_ok: bool = True) -> str:
    """Count a credit for its order under the order's version guard; pay the order when it reaches its amount."""
    for tries in range(COUNT_RETRIES):
        order = get_order(attempt_id)
        if order is None:
            raise NotFound(f"no bank-transfer order for attempt {attempt_id}", param="payment_id")
        if order["state"] == "closed":
            if not late_ok:
                raise Conflict(f"the order of attempt {attempt_id} is closed: it takes no more money")
            return _set_aside(write, rid, amount, "late", MatchKind.UNKNOWN, attempt_id)
        amount_due, before = int(order["amount"]), int(order["received"])
        match = classify(amount_due, before, amount)
        pays = match.pays_the_order and before < amount_due
        now = iso(utcnow())
        tx = Transaction()
        applied = Money(amount_due, str(order["currency"]))
        write(tx, {"state": ReceiptState.REVIEW if match.excess_minor else ReceiptState.APPLIED,
                   "kind": str(match.kind), "attempt_id": attempt_id, "counted": amount - match.excess_minor,
                   "unapplied": match.excess_minor, "reason": "excess" if match.excess_minor else None,
                   "merchant_id": order["merchant_id"]}, (str(order["account_id"]), applied) if pays else None)
        changes: dict[str, Any] = {"received": match.received_minor, "receipts": [*(order.get("receipts") or []), rid],
                                   "updated_at": now}
        if pays:
            changes.update({"paid_by": rid, "paid_at": iso(paid_at or utcnow())})
        _guard_order(tx, order, changes)
        if match.excess_minor:
            tx.put("review", state_repo.state_table(), {"pk": REVIEW_PK, "sk": rid, "since": now})
        if before < amount_due:  # what the payer sees while paying; a paid payment's answer stays as it was paid
            tx.update("payment", state_repo.state_table(), records.payment_key(str(order["payment_id"])),
                      {"action": {**payer_action(order), "amount_received": match.received_minor}, "updated_at": now},
                      condition="attribute_exists(pk)", condition_values={})
        try:
            tx.commit()
        except TransactionConflict as conflict:
            if "receipt" in conflict.failed_labels:
                return "duplicate"
            log.info("credit %s for %s raced (%s); counting again", rid, attempt_id, conflict.failed_labels)
            time.sleep(random.uniform(0, 0.005 * (tries + 1)))  # spread the losers of a burst out a little
            continue
        if pays:
            _pay(attempt_id, applied, rid, paid_at)
        return str(match.kind)
    raise RuntimeError(f"credit {rid} kept racing for order {attempt_id}")


def _pay(attempt_id: str, amount: Money, rid: str, paid_at: datetime | None) -> None:
    """The state machine's capture (journal, merchant event). Should this process stop before it, status sync asks
    the adapter, which answers from the order record: the capture then happens there."""
    from chalicelib.service.outcomes import apply_attempt_status

    status = PaymentStatus(outcome=PaymentOutcome.SUCCEEDED, raw_status="RECEIVED", channel_transaction_id=rid,
                           amount=amount, paid_at=paid_at)
    apply_attempt_status(attempt_id, status, source="transfers_in")


def payer_action(order: dict[str, Any]) -> dict[str, Any]:
    """What the payer's business needs to pay the order (the payment's ``action``)."""
    return {"type": "bank_transfer", "account_no": order["account_no"], "account_name": order["account_name"],
            "bank_name": order.get("bank_name") or "", "amount": int(order["amount"]), "currency": order["currency"],
            "remittance_code": order["remittance_code"], "expires_at": order["expires_at"]}


# --- a person's decisions ----------------------------------------------------------------------------------


def _public_receipt(receipt: dict[str, Any]) -> dict[str, Any]:
    return {"id": receipt["receipt_id"], "object": "bank_receipt",
            **{k: receipt.get(k) for k in ("reserve_id", "bank_reference", "amount", "currency", "value_day",
                                           "booked_at", "payer_account_no", "payer_name", "postscript",
                                           "virtual_account_no", "state", "kind", "reason", "attempt_id", "counted",
                                           "unapplied", "return_reference", "failure_reason", "decided_by")}}


def needing_a_person(limit: int = 100) -> list[dict[str, Any]]:
    """Receipts waiting for an operator: unknown, late, an excess, a large credit awaiting approval."""
    answer = client("dynamodb").query(TableName=state_repo.state_table(), KeyConditionExpression="pk = :pk",
                                      ExpressionAttributeValues={":pk": {"S": REVIEW_PK}}, Limit=limit,
                                      ConsistentRead=True)
    found = [_get(_receipt_key(from_item(item)["sk"])) for item in answer.get("Items", [])]
    return [_public_receipt(r) for r in found if r is not None and r["state"] in NEEDS_PERSON]


def _reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidRequest("reason is required", param="reason")
    return reason.strip()[:500]


def _decided(rid: str, receipt: dict[str, Any], actor: audit.Actor, action_name: str,
             after: dict[str, Any]) -> _Write:
    """The write of an operator's decision on a receipt: conditional on the state it was read in, out of the
    review list, audited, all in the decision's own transaction."""

    def write(tx: Transaction, fields: dict[str, Any], applies: tuple[str, Money] | None = None) -> None:
        now = iso(utcnow())
        if applies is not None:  # the money arrived before: the order's amount leaves the receipts now
            ledger_repo.add_journal(tx, ledger.bank_receipts_applied(
                str(fields["attempt_id"]), str(receipt["reserve_id"]), applies[0], applies[1]), now=now)
        changes = {**fields, "updated_at": now, "decided_by": actor.as_record()}
        tx.update("receipt", state_repo.state_table(), _receipt_key(rid), changes,
                  condition="#state = :seen", condition_values={":seen": receipt["state"]})
        if fields.get("state") not in NEEDS_PERSON:
            tx.delete("unreview", state_repo.state_table(), {"pk": REVIEW_PK, "sk": rid},
                      condition="attribute_not_exists(pk) OR attribute_exists(pk)", condition_values={})
        audit.add(tx, actor, action_name, rid, before={"state": receipt["state"], "unapplied": receipt.get("unapplied")},
                  after={**after, "state": fields.get("state")})

    return write


def _decide(rid: str, run: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
    receipt = get_receipt(rid)
    try:
        run(receipt)
    except TransactionConflict as exc:
        raise Conflict(f"receipt {rid} changed meanwhile; decide again") from exc
    return _public_receipt(get_receipt(rid))


def _count_decided(receipt: dict[str, Any], attempt_id: str, write: _Write
                   ) -> str:
    result = _count(str(receipt["receipt_id"]), int(receipt["amount"]), attempt_id, write,
                    paid_at=_parse(receipt.get("booked_at")), late_ok=False)
    if result == "duplicate":
        raise Conflict(f"receipt {receipt['receipt_id']} changed meanwhile; decide again")
    return result


def approve(actor: audit.Actor, rid: str, reason: str) -> dict[str, Any]:
    """A large credit approved by an operator (any operator: for a credit there is no maker): it is counted for
    its order now. Audited in the transaction that counts it."""
    why = _reason(reason)

    def run(receipt: dict[str, Any]) -> str:
        if receipt["state"] != ReceiptState.AWAITING_APPROVAL:
            raise Conflict(f"receipt {rid} is {receipt['state']}, not awaiting approval")
        return _count_decided(receipt, str(receipt["attempt_id"]), _decided(
            rid, receipt, actor, "transfers.approve", {"reason": why}))

    return _decide(rid, run)


def assign(actor: audit.Actor, rid: str, payment_id: str, reason: str) -> dict[str, Any]:
    """An unknown (or late) credit assigned by an operator to an open bank-transfer payment: counted for its order
    as if the payer had named it. Audited."""
    why = _reason(reason)
    payment = state_repo.get_payment(payment_id)
    if payment is None or not payment.current_attempt_id:
        raise NotFound(f"no payment {payment_id}", param="payment_id")
    attempt_id = payment.current_attempt_id
    if get_order(attempt_id) is None:
        raise InvalidRequest(f"payment {payment_id} is not paid by bank transfer", param="payment_id")

    def run(receipt: dict[str, Any]) -> str:
        if receipt["state"] != ReceiptState.REVIEW or receipt.get("kind") != MatchKind.UNKNOWN:
            raise Conflict(f"receipt {rid} is not an unknown credit waiting for a person")
        return _count_decided(receipt, attempt_id, _decided(
            rid, receipt, actor, "transfers.assign", {"reason": why, "payment_id": payment_id}))

    return _decide(rid, run)


def keep(actor: audit.Actor, rid: str, reason: str) -> dict[str, Any]:
    """An excess the merchant keeps (the payer agreed): its order's merchant is owed it. Audited."""
    why = _reason(reason)

    def run(receipt: dict[str, Any]) -> str:
        if receipt["state"] != ReceiptState.REVIEW or receipt.get("kind") != MatchKind.OVER:
            raise Conflict(f"receipt {rid} is not an excess waiting for a person")
        now = iso(utcnow())
        tx = Transaction()
        _decided(rid, receipt, actor, "transfers.keep", {"reason": why})(
            tx, {"state": ReceiptState.KEPT, "unapplied": 0})
        ledger_repo.add_journal(tx, ledger.bank_receipt_kept(rid, str(receipt["reserve_id"]),
                                                             str(receipt["merchant_id"]),
                                                             Money(int(receipt["unapplied"]), str(receipt["currency"]))),
                                now=now)
        tx.commit()
        return ReceiptState.KEPT

    return _decide(rid, run)


def return_to_payer(actor: audit.Actor, rid: str, reason: str,
                    bank: Callable[[str], tuple[BankAdapter, BankAccountRef]] | None = None) -> dict[str, Any]:
    """Send a receipt's unapplied part (an excess, an unknown or late credit, a large credit not approved) back
    to the account it came from, out of the reserve. The decision is audited in its own transaction before
    anything is sent; the journal is booked when the bank confirms the transfer."""
    why = _reason(reason)

    def run(receipt: dict[str, Any]) -> str:
        if receipt["state"] not in NEEDS_PERSON:
            raise Conflict(f"receipt {rid} is {receipt['state']}: nothing of it waits to be returned")
        unapplied = int(receipt["amount"]) if receipt["state"] == ReceiptState.AWAITING_APPROVAL \
            else int(receipt.get("unapplied") or 0)
        if unapplied <= 0:
            raise Conflict(f"receipt {rid} has nothing unapplied to return")
        attempt = int(receipt.get("returns") or 0) + 1
        now = iso(utcnow())
        tx = Transaction()
        _decided(rid, receipt, actor, "transfers.return", {"reason": why, "amount": unapplied})(tx, {
            "state": ReceiptState.RETURNING, "unapplied": unapplied, "returns": attempt,
            "return_reference": return_reference(rid, attempt), "failure_reason": None})
        tx.put("returning", state_repo.state_table(), {"pk": RETURNING_PK, "sk": rid, "since": now})
        tx.commit()
        return ReceiptState.RETURNING

    answer = _decide(rid, run)
    send_return(rid, bank)
    return {**answer, **_public_receipt(get_receipt(rid))}


def send_return(rid: str, bank: Callable[[str], tuple[BankAdapter, BankAccountRef]] | None = None) -> str:
    """Send (or ask about) a returning receipt's transfer; record how it ended. Idempotent per return reference:
    the bank answers a resend with the first transfer's status."""
    receipt = get_receipt(rid)
    if receipt["state"] != ReceiptState.RETURNING:
        return str(receipt["state"])
    adapter, account = (bank or _bank_for)(str(receipt["reserve_id"]))
    reference = str(receipt["return_reference"])
    money = Money(int(receipt["unapplied"]), str(receipt["currency"]))
    try:
        status = adapter.submit_transfer(account, Transfer(
            reference=reference, amount=money, payee_account_no=str(receipt["payer_account_no"]),
            payee_name=str(receipt["payer_name"]), purpose=f"退回 {receipt['bank_reference']}"[:30]))
    except ChannelError as exc:
        if exc.channel_code == "ERR_DUPREF" or exc.retryable:
            try:
                status = adapter.transfer_status(account, reference)
            except ChannelError as again:
                if again.retryable or not again.refused:
                    return ReceiptState.RETURNING  # asked again by the next sweep
                status = TransferStatus(reference, TransferState.FAILED, failure_reason=again.message)
        elif exc.refused:
            status = TransferStatus(reference, TransferState.FAILED, failure_reason=exc.message)
        else:
            return ReceiptState.RETURNING
    return _return_ended(receipt, status)


def _return_ended(receipt: dict[str, Any], status: TransferStatus) -> str:
    if status.state is TransferState.PROCESSING:
        return ReceiptState.RETURNING
    rid, now = str(receipt["receipt_id"]), iso(utcnow())
    tx = Transaction()
    tx.delete("returning", state_repo.state_table(), {"pk": RETURNING_PK, "sk": rid},
              condition="attribute_not_exists(pk) OR attribute_exists(pk)", condition_values={})
    if status.state is TransferState.SUCCEEDED:
        new = ReceiptState.RETURNED
        tx.update("receipt", state_repo.state_table(), _receipt_key(rid),
                  {"state": new, "updated_at": now, "returned_on": (status.value_day or _today()).isoformat()},
                  condition="#state = :returning", condition_values={":returning": ReceiptState.RETURNING})
        ledger_repo.add_journal(tx, ledger.bank_receipt_returned(
            str(receipt["return_reference"]), str(receipt["reserve_id"]),
            Money(int(receipt["unapplied"]), str(receipt["currency"]))), now=now,
            value_day=(status.value_day or _today()).isoformat())
    else:  # failed, or came back: the money is still ours to return; a person decides again
        new = ReceiptState.REVIEW
        tx.update("receipt", state_repo.state_table(), _receipt_key(rid),
                  {"state": new, "updated_at": now, "failure_reason": status.failure_reason or str(status.state)},
                  condition="#state = :returning", condition_values={":returning": ReceiptState.RETURNING})
        tx.put("review", state_repo.state_table(), {"pk": REVIEW_PK, "sk": rid, "since": now})
    try:
        tx.commit()
    except TransactionConflict:
        return str(get_receipt(rid)["state"])  # another sweep recorded it first
    log.info("return of receipt %s: %s", rid, status.state)
    return new


def _today() -> date:
    return datetime.now(BEIJING).date()


def _bank_for(reserve_id: str) -> tuple[BankAdapter, BankAccountRef]:
    from chalicelib.banks.accounts import bank_for

    return bank_for(reserve_id)


def returning() -> list[str]:
    answer = client("dynamodb").query(TableName=state_repo.state_table(), KeyConditionExpression="pk = :pk",
                                      ExpressionAttributeValues={":pk": {"S": RETURNING_PK}}, ConsistentRead=True)
    return [str(from_item(item)["sk"]) for item in answer.get("Items", [])]


# --- refunds of a bank-transfer payment ------------------------------------------------------------------


def refund_payee(attempt_id: str) -> tuple[str, str]:
    """Where a refund goes: the account that paid the order (the credit that completed it)."""
    order = get_order(attempt_id)
    if order is None or not order.get("paid_by"):
        raise ChannelError(f"order {attempt_id} is not paid: nothing to refund", channel_code="NOT_PAID", refused=True)
    paid_by = get_receipt(str(order["paid_by"]))
    return str(paid_by["payer_account_no"]), str(paid_by["payer_name"])


def refund_journal(refund: Refund) -> ledger.Journal:
    """The journal of a bank-transfer refund the bank confirmed (booked by the refund's transition)."""
    order = get_order(refund.attempt_id)
    if order is None:
        raise NotFound(f"no bank-transfer order for attempt {refund.attempt_id}")
    return ledger.bank_refund_paid(refund.refund_id, refund.merchant_id, str(order["reserve_id"]), refund.money)


# --- the sweep ---------------------------------------------------------------------------------------------


def bank_reserves() -> list[str]:
    """Every reserve with a bank account configured (a filtered Scan of the small config table)."""
    from chalicelib.config.settings import settings

    found: list[str] = []
    pages = client("dynamodb").get_paginator("scan").paginate(
        TableName=settings().names.config_table, FilterExpression="begins_with(pk, :p) AND sk = :s",
        ExpressionAttributeValues={":p": {"S": "BANK_ACCOUNT#"}, ":s": {"S": "CONFIG"}}, ProjectionExpression="pk")
    for page in pages:
        found += [str(item["pk"]["S"]).split("#", 1)[1] for item in page.get("Items", [])]
    return sorted(found)


def sweep_statement(reserve_id: str, day: date, bank: tuple[BankAdapter, BankAccountRef] | None = None
                    ) -> dict[str, int]:
    """Read the reserve's statement of ``day`` and apply each payer's credit (ours, carrying one of our transfer
    references, are the payouts' and the reserve reconciliation's). Returns the count per outcome."""
    adapter, account = bank or _bank_for(reserve_id)
    counts: dict[str, int] = {}
    for entry in adapter.statement(account, day).entries:
        if entry.direction != "credit" or entry.transfer_reference:
            continue
        outcome = apply_credit(reserve_id, entry)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def sweep(now: datetime | None = None) -> dict[str, int]:
    """Every reserve's statement of today (and of yesterday in the first half hour of a Beijing day, so a credit
    booked in the last minutes of a day is read), then the returns still in flight."""
    moment = (now or utcnow()).astimezone(BEIJING)
    days = [moment.date()] + ([moment.date() - timedelta(days=1)] if moment.hour == 0 and moment.minute < 30 else [])
    totals: dict[str, int] = {}
    for reserve_id in bank_reserves():
        for day in days:
            try:
                counts = sweep_statement(reserve_id, day)
            except ChannelError as exc:  # one bank down does not stop the others; the next sweep reads it again
                log.warning("transfers sweep: reserve %s day %s not read: %s", reserve_id, day, exc.message)
                totals["unread"] = totals.get("unread", 0) + 1
                continue
            for outcome, count in counts.items():
                totals[outcome] = totals.get(outcome, 0) + count
    for rid in returning():
        ended = send_return(rid)
        totals[f"return_{ended}"] = totals.get(f"return_{ended}", 0) + 1
    return totals
