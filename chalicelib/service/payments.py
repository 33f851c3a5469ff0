"""Create, read and close payments."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.channels.base import (
    CardDetails,
    CreateRequest,
    CreateResult,
    InstalmentTerms,
    Payer,
    PaymentOutcome,
)
from chalicelib.channels.registry import adapter
from chalicelib.channels.transport import timeout_cap
from chalicelib.config.accounts import ChannelAccount
from chalicelib.config.settings import settings
from chalicelib.domain.cards import requires_card
from chalicelib.domain.clock import iso, parse_iso, utcnow
from chalicelib.domain.errors import (
    ChannelError,
    ChannelOrderExists,
    DuplicateMerchantOrderNo,
    InvalidRequest,
    InvalidState,
    NotFound,
)
from chalicelib.domain.ids import new_attempt_id, new_id
from chalicelib.domain.models import Attempt, Merchant, Payment
from chalicelib.domain.money import Money
from chalicelib.domain.states import AttemptState, PaymentState
from chalicelib.domain.value_class import value_class
from chalicelib.routing.decide import Context
from chalicelib.service import fx_payments, routing, status_sync
from chalicelib.service.outcomes import apply_attempt_status
from chalicelib.service.routing import Admitted, account_or_error, callback_url
from chalicelib.service.webhook_targets import check_notify_url
from chalicelib.storage import records, state_repo
from chalicelib.storage.idempotency import Claim
from chalicelib.storage.sync_index import SYNC_FIELDS, first_sync
from chalicelib.storage.transaction import Transaction, TransactionConflict
from chalicelib.vault import card_records

if TYPE_CHECKING:
    from chalicelib.service.inputs import CardInput, CreatePaymentInput
    from chalicelib.stepup.hooks import CreateRisk
    from chalicelib.vault.cards import SealedCard

log = logging.getLogger(__name__)
# A vaulted card is deleted when its attempt becomes final (outcomes); DynamoDB's TTL is the backstop for one never settled.
CARD_KEPT_AFTER_EXPIRY_S = 24 * 3600
# A retry may send a create to the channel again only within this long of the intent: within every channel's own
# deduplication window (Stripe forgets an Idempotency-Key after 24 h).
RESUME_WINDOW_S = 23 * 3600


def create_payment(merchant: Merchant, body: CreatePaymentInput, claim: Claim | None = None, *,
                   user_groups: tuple[str, ...] = ()) -> Payment:
    """Record what we are about to ask, ask the channel under that record's ids, then record its answer.

        T1  payment + attempt + order number, written together (the intent); the attempt is due for a status
            query, so a crash from here on is found by status sync
        ->  channel create under the attempt id (out_trade_no, orderId, Idempotency-Key, PayPal-Request-Id...)
        T2  the channel's handle and the payer's next action

    A retry of the same request (same Idempotency-Key and body: ``claim.origin``) finds the intent by its order
    number and asks the channel again under the same ids, so the channel moves the money at most once however
    often the merchant retries or the hub crashes. A definite refusal by the channel withdraws the intent (nothing
    moved; the order number is free again). A card is sealed before T1 and its vault record written with it.
    ``claim``: the request's Idempotency-Key, taken in T1 and answered in T2, so a create writes nothing else.
    ``user_groups``: the payer's groups for gray-release rules (the hosted checkout knows them; the API has none).
    A create that times out is sent once more, then fails over to the next account routing admits (_fail_over).
    """
    _check_card_for_method(body)
    money = Money(body.amount, body.currency)
    instalments = _instalment_schedule(merchant, body)
    if instalments and body.settlement_currency not in (None, body.currency):
        # A seller-paid instalment fee is charged in the payer's currency against a payable kept in another: the
        # two are not offered together (docs/instalments.md).
        raise InvalidRequest("instalments are not offered on a payment settled in another currency",
                             param="settlement_currency")
    # FX: the rate is locked before anything else is decided; no valid rate, no payment (a 422, nothing written).
    settled = fx_payments.settlement_fields(money, body.settlement_currency, utcnow())
    if body.notify_url:
        check_notify_url(body.notify_url, param="notify_url")
    first, backups, _ = routing.choose(Context(
        merchant_id=merchant.merchant_id, method=body.method, currency=body.currency, amount=body.amount,
        payer_id=body.payer.user_id, city=body.payer.city, user_groups=user_groups, order_key=body.merchant_order_no))
    from chalicelib.stepup.hooks import assess_create  # risk control (chalicelib/risk): deny raises here

    risk = assess_create(merchant, body, money)
    intent = _record_intent(merchant, body, money, first.account, claim, risk, instalments, settled=settled)
    if intent.opened:  # a retry of a request whose work is done: the same payment again
        return intent.payment
    if intent.payment.status is PaymentState.REQUIRES_STEP_UP:  # the channel is asked once the payer passed it
        return risk.answer_challenged(intent.payment, claim)
    policy = routing.failover_policy(merchant.merchant_id)
    plan = _Failover(backups, policy.create_timeout_ms / 1000, first.probe) if policy.enabled else None
    return _open_at_channel(intent, body, claim, failover=plan)


@dataclass
class _Failover:
    """How a first create may fail over: the backups routing admitted (lazily), and each call's time limit."""

    backups: Iterator[Admitted]
    timeout_s: float
    probe: bool = False  # the account being asked is a half-open breaker's probe


@value_class
class _Intent:
    """A create recorded before the channel is asked: the payment and its attempt."""

    payment: Payment
    attempt: Attempt
    opened: bool  # the channel's answer is recorded (T2 done), or the attempt moved on without it


def _record_intent(merchant: Merchant, body: CreatePaymentInput, money: Money, account: ChannelAccount,
                   claim: Claim | None, risk: CreateRisk | None = None,
                   instalments: dict[str, Any] | None = None, *, settled: dict[str, Any] | None = None) -> _Intent:
    now = utcnow()
    expires_at = now + timedelta(seconds=body.expires_in_seconds)
    payment_id = new_id("pay")
    attempt_id = new_attempt_id(payment_id)
    sealed: SealedCard | None = None
    if body.card is not None:
        # The vault (its ciphers and KMS client) is imported by card payments only: the refunds function reads
        # payments through this module and has no right to use the vault's keys.
        from chalicelib.vault.cards import vault

        sealed = vault().seal(_card_details(body.card), merchant_id=merchant.merchant_id, now=now,
                              keep_until=expires_at + timedelta(seconds=CARD_KEPT_AFTER_EXPIRY_S))
    stamp = iso(now)
    payment = Payment(
        payment_id=payment_id, merchant_id=merchant.merchant_id, merchant_order_no=body.merchant_order_no,
        amount=money.minor, currency=money.currency, description=body.description, method=body.method,
        status=PaymentState.PENDING, version=0, created_at=stamp, updated_at=stamp, expires_at=iso(expires_at),
        current_attempt_id=attempt_id, notify_url=body.notify_url or merchant.webhook_url,
        payer=body.payer.model_dump(exclude_none=True), metadata=body.metadata, action=None,
        card=sealed.summary if sealed else None, instalments=instalments, **(settled or {}),
    )
    if risk is not None:  # the decision, and (challenge) the payment held for step-up before any channel call
        payment = risk.shape(payment, card_fingerprint=(sealed.summary or {}).get("fingerprint") if sealed else None)
    attempt = Attempt(
        attempt_id=attempt_id, payment_id=payment_id, merchant_id=merchant.merchant_id,
        channel=account.config.channel, account_id=account.account_id,
        method=routing.protocol_method(body.method), amount=money.minor,
        currency=money.currency, status=AttemptState.PENDING, version=0, created_at=stamp, updated_at=stamp,
        expires_at=iso(expires_at), card_token=sealed.token if sealed else None, return_url=body.return_url,
        instalments=instalments,
    )
    tx = Transaction()
    table = state_repo.state_table()
    tx.put_new("order_no", table, {**records.order_no_key(merchant.merchant_id, body.merchant_order_no),
                                   "payment_id": payment_id, **(claim.origin.item() if claim else {})})
    tx.put_new("payment", table, records.payment_item(payment))
    # Held for step-up, nothing is at the channel: status sync first looks at it when it expires, and closes it
    # as never created (passing the step-up brings the first query forward, stepup/flow.py).
    held_s = body.expires_in_seconds if payment.status is PaymentState.REQUIRES_STEP_UP else None
    tx.put_new("attempt", table, {**records.attempt_item(attempt),
                                  **first_sync(now, attempt.attempt_id, **({"after_s": held_s} if held_s else {}))})
    if sealed is not None:
        tx.put_new("card", table, sealed.item)
    if risk is not None:
        risk.write(tx)  # the decision record and the counters' increments: no round trip of their own
    if claim is not None:
        claim.take_in(tx)
    try:
        tx.commit()
    except TransactionConflict as exc:
        if claim is not None and claim.LABEL in exc.failed_labels:
            raise claim.refused() from exc  # the key is held: its stored answer, or 409/422
        if "order_no" not in exc.failed_labels:
            raise
        if claim is not None:
            claim.take_alone()  # this request must hold its key before it may resume the earlier work
        return _earlier_intent(merchant, body, claim)
    if claim is not None:
        claim.taken = True
    log.info("payment %s recorded before the channel call: attempt %s on %s/%s", payment_id, attempt_id,
             account.config.channel, account.account_id)
    return _Intent(payment, attempt, opened=False)


def _earlier_intent(merchant: Merchant, body: CreatePaymentInput, claim: Claim | None) -> _Intent:
    """The order number is taken: by this very request made before (resume it), or by another one (409)."""
    taken = DuplicateMerchantOrderNo(f"merchant_order_no {body.merchant_order_no!r} is already used",
                                     param="merchant_order_no")
    held = state_repo.get_item(records.order_no_key(merchant.merchant_id, body.merchant_order_no))
    if held is None or claim is None or not claim.origin.matches(held):
        raise taken
    payment = state_repo.get_payment(str(held["payment_id"]))
    attempt = state_repo.get_attempt(payment.current_attempt_id or "") if payment else None
    if payment is None or attempt is None:
        raise taken
    opened = attempt.channel_order_ref is not None or attempt.status is not AttemptState.PENDING
    if not opened and not _may_ask_again(attempt):
        # Too late to send the same create again (the attempt expired, or the channel may have forgotten the
        # idempotency key: Stripe keeps them 24 h): the payment is answered as it stands; status sync owns it.
        opened = True
    log.info("payment %s: retry of the request that created it (%s)", payment.payment_id,
             "answer recorded" if opened else "asking the channel again under the same ids")
    return _Intent(payment, attempt, opened=opened)


def _may_ask_again(attempt: Attempt) -> bool:
    now = utcnow()
    return (parse_iso(attempt.expires_at) > now
            and (now - parse_iso(attempt.created_at)).total_seconds() < RESUME_WINDOW_S)


def open_after_step_up(payment: Payment, attempt: Attempt, body: CreatePaymentInput) -> Payment:
    """The payer passed the step-up a create was held for: ask the channel now, as create would have."""
    return _open_at_channel(_Intent(payment, attempt, opened=False), body, None)


def _open_at_channel(intent: _Intent, body: CreatePaymentInput, claim: Claim | None, *,
                     replaced: bool = False, failover: _Failover | None = None) -> Payment:
    payment, attempt = intent.payment, intent.attempt
    account = routing.for_method(account_or_error(attempt.account_id), payment.method)
    request = CreateRequest(
        attempt_id=attempt.attempt_id, method=attempt.method, amount=attempt.money, description=payment.description,
        notify_url=callback_url(settings().public_base_url, attempt.channel, attempt.account_id),
        expires_at=parse_iso(attempt.expires_at), payer=Payer(**body.payer.model_dump()),
        return_url=attempt.return_url, card=_card_details(body.card) if body.card else None,
        payment_method=body.payment_method, requested_at=parse_iso(attempt.created_at),
        instalments=_wire_instalments(attempt.instalments),
    )
    try:
        result = _create(account, attempt, request, failover)
    except ChannelOrderExists:
        if replaced:
            raise
        return _replace_attempt(intent, body, claim)
    except (ChannelError, InvalidRequest) as exc:
        if isinstance(exc, InvalidRequest) or exc.refused:
            _withdraw(payment, attempt, reason=exc.message)
        else:
            log.warning("create of %s at %s: outcome unknown (%s); the intent stays for status sync and retries",
                        attempt.attempt_id, attempt.channel, exc.channel_code, extra={"attempt_id": attempt.attempt_id})
            if failover is not None and exc.retryable:
                return _fail_over(intent, body, claim, failover, exc)
        raise
    opened = payment.evolve(action={"type": result.action.type, **dict(result.action.params)})
    _record_opened(attempt, result.channel_order_ref, opened, claim)
    log.info("payment %s opened: attempt %s on %s/%s", payment.payment_id, attempt.attempt_id, attempt.channel,
             attempt.account_id)
    return opened


def _create(account: ChannelAccount, attempt: Attempt, request: CreateRequest, failover: _Failover | None,
            ) -> CreateResult:
    """The channel create, counted for the account's health. Under failover each call is cut off at the policy's
    time limit, and one that timed out (or found the channel unreachable) is sent once more under the same ids:
    the channel sees the same order again, never a second one."""
    tries = 2 if failover is not None else 1
    for attempt_no in range(1, tries + 1):
        started = time.monotonic()
        try:
            if failover is None:
                result = adapter(attempt.channel).create(account, request)
            else:
                with timeout_cap(failover.timeout_s):
                    result = adapter(attempt.channel).create(account, request)
        except ChannelError as exc:
            failed = not exc.refused and not isinstance(exc, ChannelOrderExists)
            _observe(attempt.account_id, ok=not failed, started=started, failover=failover)
            if not (exc.retryable and attempt_no < tries):
                raise
            log.warning("create of %s at %s/%s: %s; sending it once more under the same order number",
                        attempt.attempt_id, attempt.channel, attempt.account_id, exc.channel_code or exc.message)
            continue
        _observe(attempt.account_id, ok=True, started=started, failover=failover)
        return result
    raise AssertionError("unreachable: the last try returns or raises")


def _observe(account_id: str, *, ok: bool, started: float, failover: _Failover | None) -> None:
    probe = failover is not None and failover.probe
    if failover is not None:
        failover.probe = False  # only the first call of a probe's create speaks for the breaker
    routing.observe(account_id, ok=ok, latency_ms=(time.monotonic() - started) * 1000, probe=probe)


def _fail_over(intent: _Intent, body: CreatePaymentInput, claim: Claim | None, failover: _Failover,
               error: ChannelError) -> Payment:
    """The create timed out twice: close the first attempt at its channel, then move the payment to the next
    account routing admits, in one conditional write (at most one attempt of a payment can ever take money).

    The first attempt is closed before the backup is asked, and only a close the channel confirms (or a query
    saying the order is closed or failed) lets the payment move; if the channel cannot even confirm that, the
    payment stays on its first attempt, the merchant gets the retryable error, and status sync settles it later.
    An attempt found paid meanwhile (a card charged by the create itself) is the payment's answer; money that
    reaches a closed attempt later anyway is a late success, handled by the merchant's late_success_policy."""
    old = intent.attempt
    backup = next(failover.backups, None)
    if backup is None:  # nowhere to go: the first attempt is left as it is, for status sync and the merchant's retry
        log.warning("payment %s: no backup account admitted; no failover", old.payment_id)
        raise error
    account = account_or_error(old.account_id)
    try:
        with timeout_cap(failover.timeout_s):
            status = adapter(old.channel).query(account, old.attempt_id, old.money, channel_order_ref=None)
            # An order the channel does not know yet is closed too: the timed-out request may still reach it.
            if status.outcome not in (PaymentOutcome.SUCCEEDED, PaymentOutcome.CLOSED, PaymentOutcome.FAILED):
                try:
                    adapter(old.channel).close(account, old.attempt_id, channel_order_ref=None)
                except ChannelError as exc:
                    if exc.channel_code != "ORDERPAID":
                        raise
                    status = adapter(old.channel).query(account, old.attempt_id, old.money, channel_order_ref=None)
    except ChannelError as exc:
        log.warning("failover of %s refused: its channel cannot confirm it is closed (%s)", old.attempt_id,
                    exc.channel_code or exc.message)
        raise error from exc
    if status.outcome is PaymentOutcome.SUCCEEDED:
        apply_attempt_status(old.attempt_id, status, source="failover:paid")
        return _current(intent.payment.payment_id)
    new = _move_attempt(old, backup.account, status.raw_status, closed_as="FAILED_OVER", source="failover",
                        reason=f"create timed out twice; closed at {old.account_id} and moved to {{new}} on "
                               f"{backup.account.account_id}")
    log.warning("payment %s failed over: attempt %s closed at %s, new attempt %s on %s", old.payment_id,
                old.attempt_id, old.account_id, new.attempt_id, backup.account.account_id)
    payment = intent.payment.evolve(current_attempt_id=new.attempt_id)
    return _open_at_channel(_Intent(payment, new, opened=False), body, claim,
                            failover=_Failover(failover.backups, failover.timeout_s, backup.probe))


def _move_attempt(old: Attempt, account: ChannelAccount, raw_status: str, *, closed_as: str, source: str,
                  reason: str) -> Attempt:
    """Close ``old`` (closed at its channel by the caller) and make a new attempt of its payment on ``account``, in
    one conditional write: the payment must still be pending on ``old``, so at most one attempt can take the money.
    ``reason`` may name ``{new}``, the new attempt's id."""
    now = utcnow()
    stamp = iso(now)
    new = old.evolve(attempt_id=new_attempt_id(old.payment_id), created_at=stamp, updated_at=stamp, channel_order_ref=None,
                     account_id=account.account_id, channel=account.config.channel, version=0)
    table = state_repo.state_table()
    tx = Transaction()
    state_repo.guard_version(tx, "old_attempt", records.attempt_key(old.attempt_id), status=str(old.status),
                             version=old.version, changes={"status": "closed", "raw_status": closed_as,
                                                           "updated_at": stamp}, remove=SYNC_FIELDS)
    tx.put_new("attempt", table, {**records.attempt_item(new), **first_sync(now, new.attempt_id)})
    tx.update("payment", table, records.payment_key(old.payment_id), {"current_attempt_id": new.attempt_id,
                                                                     "updated_at": stamp},
              condition="current_attempt_id = :old AND #status = :pending",
              condition_values={":old": old.attempt_id, ":pending": "pending"})
    tx.put_new("audit", table, {"pk": f"AUDIT#{old.attempt_id}", "sk": f"{stamp}#{new_id('aud')}",
                                "source": source, "attempt_from": str(old.status), "attempt_to": "closed",
                                "payment_id": old.payment_id, "raw_status": raw_status,
                                "reason": reason.format(new=new.attempt_id)})
    tx.commit()
    return new


def _replace_attempt(intent: _Intent, body: CreatePaymentInput, claim: Claim | None) -> Payment:
    """The channel holds the intent's order but will not hand out its payer handle again (a retry after the answer
    was lost). Paid meanwhile: that is the answer. Otherwise it is closed at the channel (so nobody can pay it) and
    the payment moves to a new attempt in one conditional write: at most one attempt can ever take the money."""
    old = intent.attempt
    account = account_or_error(old.account_id)
    status = adapter(old.channel).query(account, old.attempt_id, old.money, channel_order_ref=None)
    if status.outcome is not PaymentOutcome.SUCCEEDED:
        try:
            adapter(old.channel).close(account, old.attempt_id, channel_order_ref=None)
        except ChannelError as exc:
            if exc.channel_code != "ORDERPAID":
                raise
            status = adapter(old.channel).query(account, old.attempt_id, old.money, channel_order_ref=None)
    if status.outcome is PaymentOutcome.SUCCEEDED:
        apply_attempt_status(old.attempt_id, status, source="create_retry:paid")
        return _current(intent.payment.payment_id)
    new = _move_attempt(old, account, status.raw_status, closed_as="REPLACED", source="create_retry",
                        reason="replaced by {new}")
    log.info("payment %s: attempt %s closed at the channel and replaced by %s", old.payment_id, old.attempt_id,
             new.attempt_id)
    payment = intent.payment.evolve(current_attempt_id=new.attempt_id)
    return _open_at_channel(_Intent(payment, new, opened=False), body, claim, replaced=True)


def _current(payment_id: str) -> Payment:
    payment = state_repo.get_payment(payment_id)
    assert payment is not None
    return payment


def _record_opened(attempt: Attempt, channel_order_ref: str, opened: Payment, claim: Claim | None) -> None:
    """T2, with the request's answer when it holds a claim. Neither field takes part in a state decision, so
    versions are left alone (as in confirmation): a callback that already moved the attempt (a card settled at
    once) is not disturbed, and never overwrites these fields."""
    now = iso(utcnow())
    table = state_repo.state_table()
    tx = Transaction()
    tx.update("attempt", table, records.attempt_key(attempt.attempt_id),
              {"channel_order_ref": channel_order_ref, "updated_at": now},
              condition="attribute_exists(pk)", condition_values={})
    tx.update("payment", table, records.payment_key(attempt.payment_id), {"action": opened.action, "updated_at": now},
              condition="current_attempt_id = :attempt", condition_values={":attempt": attempt.attempt_id})
    if claim is not None:
        claim.answer_in(tx, opened.public())
    tx.commit()
    if claim is not None:
        claim.answered = True


def _withdraw(payment: Payment, attempt: Attempt, *, reason: str) -> None:
    """The channel definitely refused the create: nothing moved, so the intent goes and the order number is free.
    Only while the attempt is still the untouched intent; an audit record says why."""
    now = iso(utcnow())
    table = state_repo.state_table()
    tx = Transaction()
    untouched = "#status = :pending AND version = :zero AND attribute_not_exists(channel_order_ref)"
    tx.delete("attempt", table, records.attempt_key(attempt.attempt_id), condition=untouched,
              condition_values={":pending": "pending", ":zero": 0})
    tx.delete("payment", table, records.payment_key(payment.payment_id), condition="#status = :pending AND version = :zero",
              condition_values={":pending": "pending", ":zero": 0})
    tx.delete("order_no", table, records.order_no_key(payment.merchant_id, payment.merchant_order_no),
              condition="payment_id = :payment", condition_values={":payment": payment.payment_id})
    if attempt.card_token:
        card_records.discard(tx, attempt.card_token, merchant_id=attempt.merchant_id)
    tx.put_new("audit", table, {"pk": f"AUDIT#{attempt.attempt_id}", "sk": f"{now}#{new_id('aud')}",
                                "source": "create", "attempt_from": "pending", "attempt_to": "withdrawn",
                                "payment_id": payment.payment_id, "reason": reason[:500]})
    try:
        tx.commit()
    except TransactionConflict as conflict:  # it moved on (a callback, status sync): its state is what counts
        log.warning("intent %s not withdrawn: %s", attempt.attempt_id, conflict.failed_labels)


def _instalment_schedule(merchant: Merchant, body: CreatePaymentInput) -> dict[str, Any] | None:
    """The schedule ``body.instalments`` asks for under the merchant's fee table, or a 400 naming the field
    (service/instalments.py); None when the payment is paid at once."""
    if body.instalments is None:
        return None
    from chalicelib.service import instalments

    return instalments.plan(merchant.merchant_id, body.method, body.amount, body.currency, body.instalments.count,
                            body.instalments.fee_payer).public()


def _wire_instalments(stored: dict[str, Any] | None) -> InstalmentTerms | None:
    return InstalmentTerms.of(stored)


def _check_card_for_method(body: CreatePaymentInput) -> None:
    if requires_card(body.method) and body.card is None:
        raise InvalidRequest(f"{body.method} needs the payer's card", param="card")
    if body.card is not None and not requires_card(body.method):
        raise InvalidRequest(f"{body.method} does not take a card; the payer enters it at the channel", param="card")


def _card_details(card: CardInput) -> CardDetails:
    return CardDetails(number=card.number, exp_month=card.exp_month, exp_year=card.exp_year, cvv=card.cvv,
                       holder_name=card.holder_name, phone=card.phone, id_type=card.id_type,
                       id_number=card.id_number)


def get_payment(merchant: Merchant, payment_id: str) -> Payment:
    payment = state_repo.get_payment(payment_id)
    if payment is None or payment.merchant_id != merchant.merchant_id:
        raise NotFound(f"no payment {payment_id}", param="payment_id")
    return payment


def find_by_order_no(merchant: Merchant, merchant_order_no: str) -> Payment:
    payment_id = state_repo.payment_id_for_order_no(merchant.merchant_id, merchant_order_no)
    if payment_id is None:
        raise NotFound(f"no payment with merchant_order_no {merchant_order_no!r}", param="merchant_order_no")
    return get_payment(merchant, payment_id)


def close_payment(merchant: Merchant, payment_id: str) -> Payment:
    """Close at the channel first; only a channel-confirmed close is recorded. Paid meanwhile -> succeeded."""
    payment = get_payment(merchant, payment_id)
    if payment.status is PaymentState.CLOSED:
        return payment
    if payment.status not in (PaymentState.PENDING, PaymentState.PROCESSING) or not payment.current_attempt_id:
        raise InvalidState(f"payment is {payment.status} and cannot be closed", param="payment_id")
    status_sync.close_attempt(payment.current_attempt_id, source="merchant_close")
    return get_payment(merchant, payment_id)

