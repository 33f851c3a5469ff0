"""The confirmation step of an attempt: the payer's SMS code for a card payment, or the hub completing what the
payer approved (PayPal capture, Stripe confirm after 3-D Secure).

Merchants call it through ``POST /v1/payments/{id}/confirm``; the status-sync worker calls it, with no inputs,
when a channel reports ``REQUIRES_CONFIRMATION``. Either way the channel's answer goes through the same state
machine as callbacks and queries, and adapters make ``confirm`` idempotent at the channel (a request id derived
from the attempt id), so concurrent confirms, a confirm racing a callback, or a retry after a crash move the
money once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from chalicelib.channels.base import (
    CardDetails,
    ConfirmRequest,
    ConfirmResult,
    InstalmentTerms,
    PaymentOutcome,
    PaymentStatus,
)
from chalicelib.channels.registry import adapter
from chalicelib.config.settings import settings
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.errors import ChannelError, InvalidState, NotFound
from chalicelib.domain.models import Attempt, Merchant, Payment
from chalicelib.domain.states import ATTEMPT_FINAL, PaymentState
from chalicelib.domain.value_class import value_class
from chalicelib.service.outcomes import Applied, apply_attempt_status
from chalicelib.service.routing import account_or_error, callback_url
from chalicelib.storage import records, state_repo
from chalicelib.storage.transaction import Transaction, TransactionConflict

if TYPE_CHECKING:  # request models: the API validates them; callbacks and workers never load them
    from chalicelib.service.inputs import ConfirmPaymentInput

log = logging.getLogger(__name__)
OPEN = (PaymentState.PENDING, PaymentState.PROCESSING)


@value_class
class Confirmed:
    """A confirmation's answer from the channel and what applying it did."""

    status: PaymentStatus  # what the channel's answer amounted to
    applied: Applied


def confirm_payment(merchant: Merchant, payment_id: str, body: ConfirmPaymentInput) -> Payment:
    """Only the current attempt of a pending or processing payment can be confirmed (409 otherwise)."""
    payment = state_repo.get_payment(payment_id)
    if payment is None or payment.merchant_id != merchant.merchant_id:
        raise NotFound(f"no payment {payment_id}", param="payment_id")
    attempt = state_repo.get_attempt(payment.current_attempt_id or "")
    if payment.status not in OPEN or attempt is None or attempt.status in ATTEMPT_FINAL:
        raise InvalidState(f"payment is {payment.status}; only a pending or processing payment can be confirmed",
                           param="payment_id")
    if not has_confirmation(attempt):
        # Refused before risk control decides: a confirm rule must not hold a WeChat or Alipay payment for a step-up
        # over a confirmation its channel does not have (and the payer may be paying it at the channel meanwhile).
        raise InvalidState(f"{attempt.method} has no confirmation step: the payer completes it at the channel",
                           param="payment_id")
    from chalicelib.stepup.hooks import assess_confirm  # risk control: deny or step-up before the channel

    assess_confirm(payment)
    card: CardDetails | None = None
    if attempt.card_token:
        # Imported here: status sync completes confirmations through this module without a card, and has no
        # right to use the vault's keys, so it must not load the vault's ciphers and KMS client either.
        from chalicelib.vault.cards import vault

        card = replace(vault().load(attempt.card_token, merchant_id=merchant.merchant_id), cvv=body.cvv)
    inputs = {name: value for name, value in (("sms_code", body.sms_code), ("cvv", body.cvv)) if value is not None}
    confirm_at_channel(attempt, inputs=inputs, card=card, source="merchant_confirm")
    fresh = state_repo.get_payment(payment_id)
    assert fresh is not None
    return fresh


def has_confirmation(attempt: Attempt) -> bool:
    """Whether the attempt's method has a step the hub completes with ``confirm`` (the adapter's
    ``confirm_methods``; an adapter that does not say, such as an older plugin, is asked for every method)."""
    methods: frozenset[str] | None = getattr(adapter(attempt.channel), "confirm_methods", None)
    return methods is None or attempt.method in methods


def confirm_at_channel(attempt: Attempt, *, inputs: Mapping[str, str], card: CardDetails | None,
                       source: str) -> Confirmed:
    """Ask the channel to complete ``attempt`` and apply its answer.

    A retryable ChannelError is raised with nothing changed (the caller retries: the merchant on a 502, the
    worker on its backoff). A refusal fails the attempt with the channel's reason. Any other error leaves the
    outcome unknown: the attempt is marked processing and status sync finds out by querying.
    """
    account = account_or_error(attempt.account_id)
    request = ConfirmRequest(
        attempt_id=attempt.attempt_id, method=attempt.method, channel_order_ref=attempt.channel_order_ref or "",
        amount=attempt.money, notify_url=callback_url(settings().public_base_url, attempt.channel, attempt.account_id),
        inputs=dict(inputs), card=card, return_url=attempt.return_url,
        instalments=InstalmentTerms.of(attempt.instalments),
    )
    try:
        result = adapter(attempt.channel).confirm(account, request)
    except ChannelError as exc:
        if exc.retryable:
            raise
        if exc.refused:
            status = PaymentStatus(PaymentOutcome.FAILED, raw_status=exc.channel_code or "REFUSED")
        else:
            log.error("confirm of %s: outcome unknown after %s; status sync will query", attempt.attempt_id,
                      exc.channel_code, extra={"attempt_id": attempt.attempt_id})
            status = PaymentStatus(PaymentOutcome.PROCESSING, raw_status=exc.channel_code or "UNKNOWN")
        return Confirmed(status, apply_attempt_status(attempt.attempt_id, status, source=f"{source}:{status.outcome}"))
    _record_step(attempt, result)
    return Confirmed(result.status, apply_attempt_status(attempt.attempt_id, result.status, source=source))


def _record_step(attempt: Attempt, result: ConfirmResult) -> None:
    """The payment's ``action`` becomes the next step the channel asked for, or none once this one is done; a new
    channel handle goes on the attempt. One conditional write, only while the attempt is open and current.

    Neither field takes part in a state decision, so the versions are left alone: a transition racing this write
    is not made to retry for it, and never overwrites these fields (transitions set only what they change).
    """
    now = iso(utcnow())
    table = state_repo.state_table()
    tx = Transaction()
    open_values = {":pending": "pending", ":processing": "processing"}
    payment_changes: dict[str, object] = {"updated_at": now}
    if result.action is not None:
        payment_changes["action"] = {"type": result.action.type, **dict(result.action.params)}
    tx.update("payment", table, records.payment_key(attempt.payment_id), payment_changes,
              remove=() if result.action is not None else ("action",),
              condition="current_attempt_id = :attempt AND #status IN (:pending, :processing)",
              condition_values={":attempt": attempt.attempt_id, **open_values})
    if result.channel_order_ref and result.channel_order_ref != attempt.channel_order_ref:
        tx.update("attempt", table, records.attempt_key(attempt.attempt_id),
                  {"channel_order_ref": result.channel_order_ref, "updated_at": now},
                  condition="#status IN (:pending, :processing)", condition_values=open_values)
    try:
        tx.commit()
    except TransactionConflict as conflict:
        # The payment moved on (another confirm or a callback finished it): its state is what counts now.
        log.info("confirm step of %s not recorded: %s no longer open", attempt.attempt_id, conflict.failed_labels)
