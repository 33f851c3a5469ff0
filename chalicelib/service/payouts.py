"""Batch payouts: a merchant's transfers out of the reserve to its payees, up to 10,000 at once.

    create ──► validate (report; nothing written if any line is refused)
           ──► items written (keys from the batch id: a resend writes the same items)
           ──► one transaction: batch number (put once) + batch record [+ funds reserved + day total + guard]
                 │ large item / large batch / past the daily limit: awaiting_approval (nothing reserved)
                 ▼
    approve (an operator, not the maker) ──► funds reserved, processing      reject ──► rejected
                 ▼
    payouts queue, 100 lines a message ──► each pending item: bank transfer (idempotent per reference)
           ──► processing: asked again later │ succeeded: payout_paid │ failed / returned: payout_released
    retry (failed and returned items only) ──► new attempt, new reference, funds reserved again

Funds come from what the merchant is owed for matured money (its settlement terms' T+N), under the same
version guard as settlement, so a payout and a settlement never both take the same money. Every item's end is
one transaction: its state (conditional on the state it was read in) and its journal.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from collections import Counter
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from chalicelib.banks.accounts import bank_account_config
from chalicelib.banks.base import BankAccountRef, BankAdapter, Transfer, TransferState, TransferStatus
from chalicelib.config.settings import settings
from chalicelib.domain import ledger
from chalicelib.domain.clock import beijing_today, iso, utcnow
from chalicelib.domain.errors import ChannelError, Conflict, InvalidRequest, NotFound, Unprocessable
from chalicelib.domain.money import Money
from chalicelib.domain.payouts import (
    DEFAULT_POLICY,
    ITEM_FINAL,
    RETRYABLE,
    ApprovalPolicy,
    BatchState,
    ItemState,
    PayoutItem,
    ValidationReport,
    approval_reasons,
    content_digest,
    transfer_reference,
    validate,
)
from chalicelib.observability import alert
from chalicelib.service import audit, settlement
from chalicelib.storage import ledger_repo, outbox, payout_repo, state_repo
from chalicelib.storage.transaction import Transaction, TransactionConflict

log = logging.getLogger(__name__)
QUEUE = "payouts"
LINES_PER_MESSAGE = 100
FOLLOW_UP_S = 60  # a transfer the bank is still processing is asked about again after this


class InsufficientFunds(Unprocessable):
    """The merchant is not owed enough matured money for the payouts asked."""

    code = "insufficient_funds"


class BatchInvalid(Unprocessable):
    """A batch with refused lines: nothing was written; the report names each line and field."""

    code = "batch_invalid"


def _batch_id(merchant_id: str, merchant_batch_no: str, digest: str) -> str:
    return "pob_" + hashlib.sha256(f"{merchant_id}:{merchant_batch_no}:{digest}".encode()).hexdigest()[:26]


def _config_item(merchant_id: str, sk: str) -> dict[str, Any] | None:
    return state_repo.get_item({"pk": f"MERCHANT#{merchant_id}", "sk": sk}, table=settings().names.config_table)


def policy_of(merchant_id: str) -> ApprovalPolicy:
    item = _config_item(merchant_id, "PAYOUT_POLICY")
    if item is None:
        return DEFAULT_POLICY
    return ApprovalPolicy(int(item["single_threshold_minor"]), int(item["batch_threshold_minor"]),
                          int(item["daily_limit_minor"]))


def set_policy(actor: audit.Actor, merchant_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """A merchant's approval thresholds (minor units). Audited."""
    fields = ("single_threshold_minor", "batch_threshold_minor", "daily_limit_minor")
    for name in fields:
        if not isinstance(values.get(name), int) or isinstance(values.get(name), bool):
            raise InvalidRequest(f"{name} is required: an integer", param=name)
    try:
        policy = ApprovalPolicy(*(int(values[name]) for name in fields))
    except ValueError as exc:
        raise InvalidRequest(str(exc), param=str(exc).split(" ", 1)[0]) from exc
    record = {name: getattr(policy, name) for name in fields}
    tx = Transaction()
    tx.put("policy", settings().names.config_table, {"pk": f"MERCHANT#{merchant_id}", "sk": "PAYOUT_POLICY", **record})
    audit.add(tx, actor, "payouts.policy", merchant_id, after=record)
    tx.commit()
    return {"merchant_id": merchant_id, **record}


# --- Reading a batch's input -----------------------------------------------------------------------------


def rows_from_csv(text: str) -> list[dict[str, Any]]:
    """A payout file: UTF-8 CSV (a BOM is allowed), a header naming the columns, one item per line."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [name for name in ("item_ref", "amount", "payee_account_no", "payee_name")
               if name not in (reader.fieldnames or [])]
    if missing:
        raise InvalidRequest(f"the file's header lacks {', '.join(missing)}", param="file")
    return [{k: v for k, v in row.items() if k is not None and v not in (None, "")} for row in reader]


def _input(body: Mapping[str, Any]) -> tuple[str, str, list[Any]]:
    """The batch number, currency and rows of a request: ``items`` (a list of objects), or ``file`` (the text of
    a payout file, CSV with a header row: what a merchant exports from its own system, sent as it is)."""
    number, currency = body.get("merchant_batch_no"), body.get("currency", "CNY")
    if not isinstance(number, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", number):
        raise InvalidRequest("merchant_batch_no is required: 1-64 letters, digits, _ or -", param="merchant_batch_no")
    if not isinstance(currency, str):
        raise InvalidRequest("currency must be an ISO 4217 code", param="currency")
    unknown = sorted(set(body) - {"merchant_batch_no", "currency", "items", "file"})
    if unknown:
        raise InvalidRequest(f"unknown field {unknown[0]}", param=unknown[0])
    if ("items" in body) == ("file" in body):
        raise InvalidRequest("send the batch's items, or its file: one of them", param="items")
    if "file" in body:
        if not isinstance(body["file"], str):
            raise InvalidRequest("file is the text of a CSV payout file", param="file")
        return number, currency, rows_from_csv(body["file"])
    items = body["items"]
    if not isinstance(items, list):
        raise InvalidRequest("items must be a list", param="items")
    return number, currency, items


def check(body: Mapping[str, Any]) -> ValidationReport:
    """The validation report alone: nothing is written (``POST /v1/payout_batches/validate``)."""
    _, currency, rows = _input(body)
    return validate(rows, currency)[1]


# --- Creating, approving, rejecting ----------------------------------------------------------------------


def _reserve_id(merchant_id: str) -> tuple[str, int]:
    terms = settlement.terms_of(merchant_id)
    if terms is None:
        raise Unprocessable(f"merchant {merchant_id} has no settlement terms: no reserve account pays its payouts",
                            param="merchant_id")
    if terms.paused:  # an operator stopped the merchant's money going out: payouts stop with settlement
        raise Unprocessable(f"merchant {merchant_id}'s settlement is paused: no money leaves for it",
                            param="merchant_id")
    return terms.reserve_id, terms.delay_days


def _available(merchant_id: str, currency: str, delay_days: int) -> int:
    today = beijing_today()
    return settlement.owed_now(merchant_id, currency, today - timedelta(days=1), delay_days, today)


def _release(tx: Transaction, batch: dict[str, Any], amount: int, reference: str, now: str, *,
             day_limit: int | None = None) -> None:
    """Reserve ``amount`` from the merchant's payable into the transaction (funds checked under the guard).
    ``day_limit``: for a batch sent without approval, the merchant's daily limit; the day total's update is
    conditional on staying within it, so two batches read together cannot both slip under the limit."""
    merchant_id, currency = str(batch["merchant_id"]), str(batch["currency"])
    state = settlement.draw_state(merchant_id, currency)
    available = _available(merchant_id, currency, int(batch["delay_days"]))
    if amount > available:
        raise InsufficientFunds(f"payouts of {amount} {currency} asked; {merchant_id} is owed {max(available, 0)} "
                                "of matured money", param="items")
    settlement.guard_draw(tx, merchant_id, currency, state, now)
    ledger_repo.add_journal(tx, ledger.payout_reserved(reference, merchant_id, Money(amount, currency)), now=now)
    tx.update("day_total", state_repo.state_table(),
              payout_repo.day_total_key(merchant_id, currency, beijing_today().isoformat()), {},
              add_values={"amount": amount},
              condition=None if day_limit is None else "attribute_not_exists(amount) OR amount <= :room",
              condition_values={} if day_limit is None else {":room": day_limit - amount})


def _dispatch(tx: Transaction, batch_id: str, round_no: int, now: str) -> outbox.OutboxEvent:
    """The batch's sending, as a command in the transaction that commits the batch (the transactional outbox):
    a crash after the commit still sends it. Its worker queues the batch's lines."""
    return outbox.add_command(tx, topic=QUEUE, object_id=f"{batch_id}:{round_no}", command="payouts.dispatch",
                              now=now, body={"command": "dispatch", "batch_id": batch_id})


def create_batch(merchant_id: str, body: Mapping[str, Any], *, maker: Mapping[str, str]) -> dict[str, Any]:
    """Validate and record a batch; send it at once unless it needs approval. A repeat of the same
    ``merchant_batch_no`` with the same content returns the batch; with other content, 409."""
    number, currency, rows = _input(body)
    items, report = validate(rows, currency)
    if not report.ok:
        first = report.problems[0]
        raise BatchInvalid(f"{len(report.problems)} problem(s); line {first.line}, {first.field}: {first.message}",
                           param=f"items[{first.line}].{first.field}" if first.line else first.field)
    digest = content_digest(currency, items)
    existing = payout_repo.get_number(merchant_id, number)
    if existing is not None:
        return _same_or_conflict(existing, digest, merchant_id)
    reserve_id, delay_days = _reserve_id(merchant_id)
    bank_account = bank_account_config(reserve_id)
    if bank_account is None or currency not in bank_account.currencies:
        raise Unprocessable(f"reserve {reserve_id} cannot send {currency} (its bank account sends "
                            f"{', '.join(bank_account.currencies) if bank_account else 'nothing: none is configured'})",
                            param="currency")
    batch_id, now = _batch_id(merchant_id, number, digest), iso(utcnow())
    policy = policy_of(merchant_id)
    today_total = payout_repo.day_total(merchant_id, currency, beijing_today().isoformat())
    reasons = approval_reasons(policy, items, today_total)
    batch = {**payout_repo.batch_key(batch_id), "batch_id": batch_id, "merchant_id": merchant_id,
             "merchant_batch_no": number, "currency": currency, "digest": digest, "reserve_id": reserve_id,
             "delay_days": delay_days, "items": report.items, "total": report.total_minor, "created_at": now,
             "maker": dict(maker), "approval": {"required": bool(reasons), "reasons": reasons},
             "state": str(BatchState.AWAITING_APPROVAL if reasons else BatchState.PROCESSING), "retries": 0}
    tx = Transaction()
    tx.put_new("number", state_repo.state_table(), {**payout_repo.number_key(merchant_id, number),
                                                   "batch_id": batch_id, "digest": digest})
    tx.put_new("batch", state_repo.state_table(), batch)
    dispatch = None
    if not reasons:  # refuses before anything is written
        _release(tx, batch, report.total_minor, f"{batch_id}:0", now, day_limit=policy.daily_limit_minor)
        dispatch = _dispatch(tx, batch_id, 0, now)
    # Only the holder of the batch's claim writes its items (a second submission of the same batch meanwhile
    # waits): no two requests ever write, or remove, the same items.
    if not payout_repo.claim(batch_id, now):
        found = payout_repo.get_number(merchant_id, number)
        if found is not None:
            return _same_or_conflict(found, digest, merchant_id)
        raise Conflict(f"batch {number} is being created by another request; send it again shortly",
                       param="merchant_batch_no")
    records = [_item_record(batch_id, item, now) for item in items]
    payout_repo.put_items(records)  # before the batch: a batch record always has its items
    try:
        tx.commit()
    except TransactionConflict as exc:
        found = payout_repo.get_number(merchant_id, number)
        if found is None or found["digest"] != digest:  # not ours: nothing half-written stays behind
            payout_repo.delete_items(records)
            payout_repo.release_claim(batch_id)
        if found is not None:  # the batch number committed meanwhile (this content, or other content: 409)
            return _same_or_conflict(found, digest, merchant_id)
        raise Conflict(f"merchant {merchant_id}'s balance or day's payouts changed meanwhile; send the batch again"
                       ) from exc
    if dispatch is not None:
        outbox.publish_after_commit([dispatch])
    log.info("payout batch %s: %d items, %d %s, %s", batch_id, report.items, report.total_minor, currency, batch["state"])
    return public(batch)


def _same_or_conflict(number: dict[str, Any], digest: str, merchant_id: str) -> dict[str, Any]:
    if number["digest"] != digest:
        raise Conflict("merchant_batch_no was used for a batch with other content", param="merchant_batch_no")
    return get_batch(str(number["batch_id"]), merchant_id)


def _item_record(batch_id: str, item: PayoutItem, now: str) -> dict[str, Any]:
    return {**payout_repo.item_key(batch_id, item.line), "batch_id": batch_id, "line": item.line,
            "item_ref": item.item_ref, "amount": item.amount_minor, "payee_account_no": item.payee_account_no,
            "payee_name": item.payee_name, "payee_bank_name": item.payee_bank_name,
            "payee_bank_code": item.payee_bank_code, "purpose": item.purpose, "state": str(ItemState.PENDING),
            "attempt": 1, "reference": transfer_reference(batch_id, item.line, 1), "updated_at": now}


def decide(actor: audit.Actor, batch_id: str, *, approve: bool, reason: str) -> dict[str, Any]:
    """A checker's decision on a batch awaiting approval. The checker may not be the batch's maker. Approving
    reserves the funds (refused if the merchant is no longer owed enough) and sends the batch. Audited."""
    batch = _batch(batch_id)
    if batch["state"] != BatchState.AWAITING_APPROVAL:
        raise Conflict(f"batch {batch_id} is {batch['state']}, not awaiting approval")
    if actor.id == batch["maker"].get("id"):
        raise Conflict("the maker of a batch cannot approve or reject it (maker-checker)", param="actor")
    if actor.via == "cli" and settings().is_deployed:
        # The CLI's name for a person is what its environment says; on a deployed stage a checker is an operator
        # key the hub authenticates (the operator API), so two people are two keys.
        raise Conflict("on a deployed stage a batch is approved or rejected through the operator API", param="actor")
    if not reason.strip():
        raise InvalidRequest("reason is required", param="reason")
    if approve:
        _reserve_id(str(batch["merchant_id"]))  # paused since it was made: not approved
    now = iso(utcnow())
    state = BatchState.PROCESSING if approve else BatchState.REJECTED
    tx = Transaction()
    tx.update("batch", state_repo.state_table(), payout_repo.batch_key(batch_id),
              {"state": str(state), "approval": {**batch["approval"], "checker": actor.as_record(), "approved": approve,
                                                  "reason": reason, "decided_at": now}},
              condition="#state = :awaiting", condition_values={":awaiting": str(BatchState.AWAITING_APPROVAL)})
    dispatch = None
    if approve:
        _release(tx, batch, int(batch["total"]), f"{batch_id}:0", now)
        dispatch = _dispatch(tx, batch_id, 0, now)
    audit.add(tx, actor, "payouts.approve" if approve else "payouts.reject", batch_id,
              before={"state": batch["state"]}, after={"state": str(state), "reason": reason})
    try:
        tx.commit()
    except TransactionConflict as exc:
        raise Conflict(f"batch {batch_id} or its merchant's balance changed meanwhile; decide again") from exc
    if dispatch is not None:
        outbox.publish_after_commit([dispatch])
    return get_batch(batch_id)


def retry_failed(merchant_id: str, batch_id: str) -> dict[str, Any]:
    """Send the failed and returned items again, each under a new attempt and reference; nothing else. Only a
    completed batch is retried (its failed items cannot change meanwhile). One transaction opens the round: the
    batch's round number, the funds reserved again and the round's dispatch; the items themselves move to a new
    attempt when the worker reaches them, so a crash anywhere leaves nothing reserved twice or sent twice."""
    batch = _batch(batch_id, merchant_id)
    if batch["state"] != BatchState.COMPLETED:
        raise Conflict(f"batch {batch_id} is {batch['state']}: a batch is retried once every item has ended")
    retries = int(batch.get("retries", 0))
    again = [item for item in payout_repo.items(batch_id) if _retryable(item, retries)]
    if not again:
        raise Conflict(f"batch {batch_id} has no failed or returned items")
    retry, now = retries + 1, iso(utcnow())
    tx = Transaction()
    tx.update("batch", state_repo.state_table(), payout_repo.batch_key(batch_id),
              {"state": str(BatchState.PROCESSING), "retries": retry},
              condition="#state = :completed AND retries = :seen",
              condition_values={":completed": str(BatchState.COMPLETED), ":seen": retries})
    _release(tx, batch, sum(int(item["amount"]) for item in again), f"{batch_id}:{retry}", now)
    dispatch = _dispatch(tx, batch_id, retry, now)
    try:
        tx.commit()
    except TransactionConflict as exc:
        raise Conflict(f"batch {batch_id} or its merchant's balance changed meanwhile; retry again") from exc
    outbox.publish_after_commit([dispatch])
    return get_batch(batch_id, merchant_id)


def _retryable(item: dict[str, Any], round_no: int) -> bool:
    """Failed or returned in the round ``round_no`` (not yet given another attempt)."""
    return item["state"] in RETRYABLE and int(item.get("round", 0)) == round_no


def _due_again(item: dict[str, Any], batch: dict[str, Any]) -> bool:
    """Failed or returned in an earlier round than the batch's current one: its new attempt is due."""
    return item["state"] in RETRYABLE and int(item.get("round", 0)) < int(batch.get("retries", 0))


def dispatch(batch_id: str) -> int:
    """Queue the batch's lines, 100 a message (the worker of ``payouts.dispatch``). Returns the messages sent."""
    batch = _batch(batch_id)
    count = int(batch["items"])
    bodies = [{"batch_id": batch_id, "first_line": first, "last_line": min(first + LINES_PER_MESSAGE - 1, count)}
              for first in range(1, count + 1, LINES_PER_MESSAGE)]
    outbox.send_batch(QUEUE, bodies)
    return len(bodies)


# --- Sending: the worker ---------------------------------------------------------------------------------


def _move_item(batch_id: str, line: int, expected: str, changes: dict[str, Any], journal: ledger.Journal | None = None,
               now: str | None = None, *, lookup: str | None = None, value_day: str | None = None) -> bool:
    """``lookup``: the transfer reference of an item paid, recorded so the reserve's statement can find the item
    again when the transfer comes back (docs/settlement.md)."""
    tx = Transaction()
    tx.update("item", state_repo.state_table(), payout_repo.item_key(batch_id, line), changes,
              condition="#state = :expected", condition_values={":expected": expected})
    if lookup is not None:
        tx.put("lookup", state_repo.state_table(), {**transfer_key(lookup), "batch_id": batch_id, "line": line})
    if journal is not None:
        ledger_repo.add_journal(tx, journal, now=now or iso(utcnow()), value_day=value_day or changes.get("value_day"))
    try:
        tx.commit()
    except TransactionConflict:
        return False  # another delivery of the message moved it first
    return True


def _apply(batch: dict[str, Any], item: dict[str, Any], status: TransferStatus) -> str:
    """Record what the bank said about an item's transfer; returns the item's state afterwards."""
    batch_id, line, now = str(batch["batch_id"]), int(item["line"]), iso(utcnow())
    merchant_id, currency = str(batch["merchant_id"]), str(batch["currency"])
    money = Money(int(item["amount"]), currency)
    expected = str(item["state"])
    if status.state is TransferState.PROCESSING:
        if expected == ItemState.PENDING:
            _move_item(batch_id, line, expected, {"state": str(ItemState.PROCESSING), "updated_at": now,
                                                  "bank_reference": status.bank_reference})
        return str(ItemState.PROCESSING)
    day = (status.value_day or beijing_today()).isoformat()
    if status.state is TransferState.SUCCEEDED:
        journal = ledger.payout_paid(str(item["reference"]), merchant_id, str(batch["reserve_id"]), money)
        new = ItemState.SUCCEEDED
    else:
        journal = ledger.payout_released(str(item["reference"]), merchant_id, money)
        new = ItemState.FAILED if status.state is TransferState.FAILED else ItemState.RETURNED
    _move_item(batch_id, line, expected, {"state": str(new), "updated_at": now, "value_day": day,
                                          "bank_reference": status.bank_reference,
                                          "failure_reason": status.failure_reason}, journal, now,
               lookup=str(item["reference"]) if new is ItemState.SUCCEEDED else None)
    return str(new)


def process(batch_id: str, first_line: int, last_line: int, bank: tuple[BankAdapter, BankAccountRef]) -> dict[str, int]:
    """Send the pending items in ``first_line..last_line`` and ask about those still processing. Returns the
    count per state after; the caller re-queues lines still processing."""
    batch = _batch(batch_id)
    if batch["state"] != BatchState.PROCESSING:
        return {}  # awaiting approval, rejected, or ended: nothing to send
    adapter, account = bank
    after: Counter[str] = Counter()
    for item in payout_repo.items(batch_id, first_line=first_line, last_line=last_line):
        if _due_again(item, batch):  # a retry round reached it: a new attempt under a new reference
            item = _next_attempt(batch, item)
        state = str(item["state"])
        if state in ITEM_FINAL:
            after[state] += 1
            continue
        try:
            if state == ItemState.PENDING:
                status = adapter.submit_transfer(account, Transfer(
                    reference=str(item["reference"]), amount=Money(int(item["amount"]), str(batch["currency"])),
                    payee_account_no=str(item["payee_account_no"]), payee_name=str(item["payee_name"]),
                    payee_bank_name=item.get("payee_bank_name"), payee_bank_code=item.get("payee_bank_code"),
                    purpose=str(item.get("purpose") or "")))
            else:
                status = adapter.transfer_status(account, str(item["reference"]))
        except ChannelError as exc:
            if exc.refused and state == ItemState.PENDING:  # the bank refused the instruction: nothing left
                status = TransferStatus(str(item["reference"]), TransferState.FAILED, failure_reason=exc.message)
            else:
                # Retryable, or an outcome nobody knows (an answer that failed its checks, a status the bank
                # would not give): never "failed", which would release the money while the bank may pay it.
                # The item is asked about again, under the same reference, with the message's next delivery.
                if not exc.retryable:
                    log.error("payout %s: the bank's answer leaves its outcome unknown: %s", item["reference"],
                              exc.message, extra=alert("payout_outcome_unknown", reference=str(item["reference"])))
                if state == ItemState.PENDING:
                    _move_item(batch_id, int(item["line"]), state, {"state": str(ItemState.PROCESSING),
                                                                    "updated_at": iso(utcnow())})
                after[str(ItemState.PROCESSING)] += 1
                continue
        after[_apply(batch, item, status)] += 1
    if not after.get(str(ItemState.PENDING)) and not after.get(str(ItemState.PROCESSING)):
        _complete_if_done(batch_id)  # this message's lines have all ended: maybe the whole batch has
    return dict(after)


def transfer_key(reference: str) -> dict[str, str]:
    return {"pk": f"XFER#{reference}", "sk": "TRANSFER"}


def returned_after_paid(reference: str, amount: Money, value_day: str, reason: str) -> bool:
    """A paid transfer of ours came back (its credit on the reserve's statement): the payout item it paid becomes
    ``returned`` and its money the merchant's again, once. False when no paid item is under that reference."""
    found = state_repo.get_item(transfer_key(reference))
    if found is None or "batch_id" not in found:
        return False
    batch = _batch(str(found["batch_id"]))
    item = next(payout_repo.items(str(batch["batch_id"]), first_line=int(found["line"]), last_line=int(found["line"])))
    if item["state"] != ItemState.SUCCEEDED or item["reference"] != reference or int(item["amount"]) != amount.minor:
        return False
    journal = ledger.transfer_returned(reference, str(batch["merchant_id"]), str(batch["reserve_id"]), amount)
    return _move_item(str(batch["batch_id"]), int(item["line"]), str(ItemState.SUCCEEDED),
                      {"state": str(ItemState.RETURNED), "failure_reason": reason, "updated_at": iso(utcnow())},
                      journal, value_day=value_day)


def _next_attempt(batch: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """Move a failed or returned item to its next attempt in the batch's current round (once: conditional on the
    state and round it was read in); returns the item as it stands after."""
    line, attempt, round_no = int(item["line"]), int(item["attempt"]) + 1, int(batch["retries"])
    changes = {"state": str(ItemState.PENDING), "attempt": attempt, "round": round_no, "failure_reason": None,
               "bank_reference": None, "value_day": None, "updated_at": iso(utcnow()),
               "reference": transfer_reference(str(batch["batch_id"]), line, attempt)}
    tx = Transaction()
    tx.update("item", state_repo.state_table(), payout_repo.item_key(str(batch["batch_id"]), line), changes,
              condition="#state = :state AND attempt = :attempt",
              condition_values={":state": str(item["state"]), ":attempt": int(item["attempt"])})
    try:
        tx.commit()
    except TransactionConflict:
        fresh = next(payout_repo.items(str(batch["batch_id"]), first_line=line, last_line=line))
        return fresh  # another delivery moved it first
    return {**item, **changes}


def _complete_if_done(batch_id: str) -> None:
    batch = _batch(batch_id)
    if any(item["state"] not in ITEM_FINAL or _due_again(item, batch) for item in payout_repo.items(batch_id)):
        return
    tx = Transaction()
    tx.update("batch", state_repo.state_table(), payout_repo.batch_key(batch_id),
              {"state": str(BatchState.COMPLETED), "completed_at": iso(utcnow())},
              condition="#state = :processing", condition_values={":processing": str(BatchState.PROCESSING)})
    try:
        tx.commit()
    except TransactionConflict:
        return  # another worker completed it first


# --- Reading ---------------------------------------------------------------------------------------------


def _batch(batch_id: str, merchant_id: str | None = None) -> dict[str, Any]:
    batch = payout_repo.get_batch(batch_id)
    if batch is None or (merchant_id is not None and batch["merchant_id"] != merchant_id):
        raise NotFound(f"no payout batch {batch_id}", param="batch_id")
    return batch


def reserve_of(batch_id: str) -> str:
    return str(_batch(batch_id)["reserve_id"])


def public(batch: dict[str, Any], counts: dict[str, int] | None = None) -> dict[str, Any]:
    shown = {k: batch.get(k) for k in ("batch_id", "merchant_batch_no", "merchant_id", "currency", "state", "items",
                                       "total", "created_at", "completed_at", "approval", "retries", "maker")}
    return {"id": shown.pop("batch_id"), "object": "payout_batch", **shown,
            **({"items_by_state": counts} if counts is not None else {})}


def get_batch(batch_id: str, merchant_id: str | None = None) -> dict[str, Any]:
    batch = _batch(batch_id, merchant_id)
    counts = Counter(str(item["state"]) for item in payout_repo.items(batch_id))
    return public(batch, dict(counts))


def _public_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item.get(k) for k in ("line", "item_ref", "amount", "payee_account_no", "payee_name", "payee_bank_name",
                                     "payee_bank_code", "purpose", "state", "attempt", "reference", "bank_reference",
                                     "failure_reason", "value_day", "updated_at")}


def list_items(batch_id: str, merchant_id: str | None, *, state: str | None = None, after: int | None = None,
               limit: int = 100) -> dict[str, Any]:
    _batch(batch_id, merchant_id)
    if state is not None and state not in {str(s) for s in ItemState}:
        raise InvalidRequest(f"state must be one of {sorted(str(s) for s in ItemState)}", param="state")
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit must be 1..1000", param="limit")
    found: list[dict[str, Any]] = []
    more = False
    for item in payout_repo.items(batch_id, after=after):
        if state is not None and item["state"] != state:
            continue
        if len(found) == limit:
            more = True
            break
        found.append(_public_item(item))
    return {"object": "list", "data": found, "has_more": more,
            "next_after": found[-1]["line"] if more and found else None}


RESULT_COLUMNS = ("line", "item_ref", "amount", "payee_account_no", "payee_name", "state", "attempt", "reference",
                  "bank_reference", "value_day", "failure_reason")


def result_csv(batch_id: str, merchant_id: str | None) -> str:
    """The result file: one line per item with how it ended (or where it stands), UTF-8 with a BOM for Excel."""
    _batch(batch_id, merchant_id)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(RESULT_COLUMNS)
    for item in payout_repo.items(batch_id):
        writer.writerow(["" if item.get(column) is None else item[column] for column in RESULT_COLUMNS])
    return out.getvalue()

