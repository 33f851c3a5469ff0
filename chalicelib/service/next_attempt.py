"""Another attempt on the same payment: the payer of a checkout session retries, or switches to another method.

At most one attempt of a payment can take the money:

    1  the open attempt (if any) is closed at its channel first: once the channel confirms, nobody can pay it;
       paid meanwhile (``ORDERPAID``), that success is the answer and no new attempt is made
    T  one transaction: the old attempt -> closed (guarded on its version), the new attempt (due for a status
       query, as every intent), and the payment pointed at it, guarded on the payment's ``attempt_seq``: of two
       payers' tabs switching at once, one wins and the other is told the payment moved on (409)
    -> the channel create under the new attempt id; its handle recorded as for a first create

Money that still arrives on a switched-away attempt (the channel's close raced the payer) is a late success and
follows the merchant's ``late_success_policy`` (``decisions._success``); a second success after the payment is
paid is refunded as any double success.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.channels.base import CreateRequest, Payer, PaymentOutcome, PaymentStatus
from chalicelib.channels.registry import adapter
from chalicelib.config.settings import settings
from chalicelib.domain.cards import requires_card
from chalicelib.domain.clock import iso, parse_iso, utcnow
from chalicelib.domain.errors import ChannelError, InvalidRequest, InvalidState, NotFound
from chalicelib.domain.ids import new_attempt_id, new_id
from chalicelib.domain.models import Attempt, Merchant, Payment
from chalicelib.domain.states import ATTEMPT_FINAL, AttemptState, PaymentState
from chalicelib.service import payments
from chalicelib.service.channel_refs import payment_refs
from chalicelib.service.outcomes import apply_attempt_status
from chalicelib.service.routing import account_or_error, callback_url, choose_account, pinned_account
from chalicelib.storage import records, state_repo
from chalicelib.storage.sync_index import SYNC_FIELDS, first_sync
from chalicelib.storage.transaction import Transaction, TransactionConflict

if TYPE_CHECKING:
    from chalicelib.service.inputs import CardInput
    from chalicelib.vault.cards import SealedCard

log = logging.getLogger(__name__)
SWITCHED = "SWITCHED"  # raw_status of an attempt the payer left for another one
HELD_OPENID = "held_openid"  # on an attempt held for step-up: the payer's openid for its channel call


def open_next_attempt(merchant: Merchant, payment_id: str, *, method: str, payer: dict[str, Any],
                      return_url: str | None, card: CardInput | None = None, payment_method: str | None = None,
                      records_with: Callable[[Attempt], list[dict[str, Any]]] | None = None,
                      step_ups: Callable[[tuple[str, ...]], tuple[str, ...]] | None = None,
                      account_id: str | None = None, instalments: dict[str, Any] | None = None) -> Payment:
    """Close the payment's open attempt at its channel and open ``method`` as its new attempt.

    ``records_with(attempt)``: items written new in the same transaction as the attempt (the checkout session's
    index of its attempts). Raises ``ChannelError`` when the channel refuses the new attempt (which is then recorded as
    failed, the payment staying open for another try) or cannot be reached (left to status sync).

    Every attempt gets a risk decision as a merchant create does (``stepup.hooks.assess_attempt``), taken before
    anything changes: deny raises ``RiskDenied`` (the open attempt stays as it was); challenge writes the attempt
    with the payment held ``requires_step_up`` and asks no channel until the payer passes a step-up
    (``step_ups(offered)``: which of the rule's step-ups this payer can use here).

    ``account_id`` pins the account instead of asking routing (``routing.pinned_account``): the checkout's WeChat
    JSAPI attempt goes to the account whose appid the payer's openid was learnt under.

    ``instalments``: the schedule the payer chose for this attempt (``Schedule.public``), kept on the attempt and the
    payment (an attempt without one removes the payment's) and sent to the channel."""
    if requires_card(method) and card is None:
        raise InvalidRequest(f"{method} needs the payer's card", param="card")
    item = state_repo.get_item(records.payment_key(payment_id))
    if item is None or item.get("merchant_id") != merchant.merchant_id:
        raise NotFound(f"no payment {payment_id}", param="payment_id")
    payment = records.payment_from(item)
    if payment.session_id is None:
        raise InvalidState("only a checkout session's payment takes further attempts", param="payment_id")
    if payment.status is not PaymentState.PENDING:
        raise InvalidState(f"payment is {payment.status}; a new attempt needs a pending payment", param="payment_id")
    if parse_iso(payment.expires_at) <= utcnow():
        raise InvalidState("the payment has expired", param="payment_id")
    account = (pinned_account(account_id, method, payment.currency, merchant.merchant_id) if account_id
               else choose_account(method, payment.currency, merchant.merchant_id))
    now = utcnow()
    sealed: SealedCard | None = None
    if card is not None:
        from chalicelib.vault.cards import vault  # card payments only (see payments._record_intent)

        sealed = vault().seal(payments._card_details(card), merchant_id=merchant.merchant_id, now=now,
                              keep_until=parse_iso(payment.expires_at)
                              + timedelta(seconds=payments.CARD_KEPT_AFTER_EXPIRY_S))
    attempt_id = new_attempt_id(payment_id)
    from chalicelib.stepup.hooks import assess_attempt  # risk control: deny raises here, before anything changes

    risk = assess_attempt(payment, method, attempt_id, usable=step_ups,
                          card_fingerprint=(sealed.summary or {}).get("fingerprint") if sealed else None)
    old = state_repo.get_attempt(payment.current_attempt_id) if payment.current_attempt_id else None
    if old is not None and old.status not in ATTEMPT_FINAL:
        paid = _close_at_channel(old)
        if paid:
            return _current(payment_id)
        old = state_repo.get_attempt(old.attempt_id)  # the close may have been recorded meanwhile by status sync
    now = utcnow()
    stamp = iso(now)
    attempt = Attempt(
        attempt_id=attempt_id, payment_id=payment_id, merchant_id=merchant.merchant_id,
        channel=account.config.channel, account_id=account.account_id, method=method, amount=payment.amount,
        currency=payment.currency, status=AttemptState.PENDING, version=0, created_at=stamp, updated_at=stamp,
        expires_at=payment.expires_at, card_token=sealed.token if sealed else None, return_url=return_url,
        instalments=instalments,
    )
    seq = int(item.get("attempt_seq", 0))
    table = state_repo.state_table()
    tx = Transaction()
    if old is not None and old.status not in ATTEMPT_FINAL:
        state_repo.guard_version(tx, "old_attempt", records.attempt_key(old.attempt_id), status=str(old.status),
                                 version=old.version, changes={"status": "closed", "raw_status": SWITCHED,
                                                               "updated_at": stamp}, remove=SYNC_FIELDS)
        tx.put_new("audit", table, {"pk": f"AUDIT#{old.attempt_id}", "sk": f"{stamp}#{new_id('aud')}",
                                    "source": "checkout_switch", "attempt_from": str(old.status),
                                    "attempt_to": "closed", "payment_id": payment_id,
                                    "reason": f"payer moved to {attempt.attempt_id} ({method})"})
    # Held for step-up, nothing is at the channel: status sync first looks at it when it expires (as on the create
    # path); passing the step-up brings that forward.
    held_s = max(1, int((parse_iso(payment.expires_at) - now).total_seconds())) if risk.held else None
    # A held attempt's channel call comes later, from the step-up (open_after_step_up), where only the payment is at
    # hand: the openid this payer's WeChat authorisation gave the page for JSAPI is kept with the attempt until then.
    held_openid = {HELD_OPENID: str(payer["openid"])} if risk.held and payer.get("openid") else {}
    tx.put_new("attempt", table, {**records.attempt_item(attempt), **held_openid,
                                  **first_sync(now, attempt.attempt_id, **({"after_s": held_s} if held_s else {}))})
    if sealed is not None:
        tx.put_new("card", table, sealed.item)
    guard = "attribute_not_exists(attempt_seq)" if seq == 0 else "attempt_seq = :seq"
    changes: dict[str, Any] = {"current_attempt_id": attempt.attempt_id, "method": method, "attempt_seq": seq + 1,
                               "updated_at": stamp}
    if sealed is not None:
        changes["card"] = sealed.summary  # what may be shown of the card: brand, last4, expiry, fingerprint
    if instalments is not None:
        changes["instalments"] = instalments
    changes.update(risk.changes(payment))
    risk.write(tx)  # the decision and the counters' increments: no round trip of their own
    tx.update("payment", table, records.payment_key(payment_id), changes,
              condition=f"{guard} AND #status = :pending",
              remove=tuple(f for f in ("action", "card", "instalments") if f not in changes),
              condition_values={":pending": "pending", **({":seq": seq} if seq else {})})
    for i, extra in enumerate(records_with(attempt) if records_with else []):
        tx.put_new(f"extra{i}", table, extra)
    try:
        tx.commit()
    except TransactionConflict as exc:
        raise InvalidState("the payment moved on meanwhile (paid, expired or another attempt was opened); "
                           "load it again", param="payment_id") from exc
    log.info("payment %s: attempt %s %s on %s/%s (%s)", payment_id, attempt.attempt_id,
             "recorded" if risk.held else "opened", attempt.channel, attempt.account_id, method)
    opened = payment.evolve(current_attempt_id=attempt.attempt_id, method=method, action=None,
                            card=sealed.summary if sealed else None, risk=changes["risk"], instalments=instalments)
    if risk.held:
        log.info("payment %s: attempt %s held for step-up (%s)", payment_id, attempt.attempt_id,
                 ", ".join(risk.step_ups))
        return opened.evolve(status=PaymentState.REQUIRES_STEP_UP, action=changes["action"],
                             step_up=changes["step_up"])
    return _open(opened, attempt, payer=payer, card=card, payment_method=payment_method)


def open_after_step_up(payment: Payment, attempt: Attempt, *, payer: dict[str, Any], card: CardInput | None
                       ) -> Payment:
    """The payer passed the step-up this attempt was held for: ask its channel now, as the attempt would have, with
    the openid the page had for it (WeChat JSAPI pays only with the payer's openid)."""
    item = state_repo.get_item(records.attempt_key(attempt.attempt_id)) or {}
    if item.get(HELD_OPENID) and not payer.get("openid"):
        payer = {**payer, "openid": str(item[HELD_OPENID])}
    return _open(payment, attempt, payer=payer, card=card, payment_method=None)


def _close_at_channel(attempt: Attempt) -> bool:
    """Close the attempt at its channel. True when the payer had paid it meanwhile (recorded as that success)."""
    account = account_or_error(attempt.account_id)
    channel = adapter(attempt.channel)
    try:
        channel.close(account, attempt.attempt_id, **payment_refs(attempt))
    except ChannelError as exc:
        if exc.channel_code != "ORDERPAID":
            raise
        status = channel.query(account, attempt.attempt_id, attempt.money, **payment_refs(attempt))
        apply_attempt_status(attempt.attempt_id, status, source="checkout_switch:paid_before_close")
        return status.outcome is PaymentOutcome.SUCCEEDED
    return False


def _open(payment: Payment, attempt: Attempt, *, payer: dict[str, Any], card: CardInput | None,
          payment_method: str | None) -> Payment:
    account = account_or_error(attempt.account_id)
    request = CreateRequest(
        attempt_id=attempt.attempt_id, method=attempt.method, amount=attempt.money, description=payment.description,
        notify_url=callback_url(settings().public_base_url, attempt.channel, attempt.account_id),
        expires_at=parse_iso(attempt.expires_at), payer=Payer(**_payer_fields(payer)),
        return_url=attempt.return_url, card=payments._card_details(card) if card else None,
        payment_method=payment_method, requested_at=parse_iso(attempt.created_at),
        instalments=payments._wire_instalments(attempt.instalments),
    )
    try:
        result = adapter(attempt.channel).create(account, request)
    except (ChannelError, InvalidRequest) as exc:
        if isinstance(exc, InvalidRequest) or exc.refused:
            # Nothing happened at the channel: the attempt failed, the payment stays open for another try.
            raw = exc.channel_code if isinstance(exc, ChannelError) and exc.channel_code else "CREATE_REFUSED"
            apply_attempt_status(attempt.attempt_id, PaymentStatus(PaymentOutcome.FAILED, raw_status=raw),
                                 source="checkout_create_refused")
        else:
            log.warning("create of %s at %s: outcome unknown (%s); status sync follows it", attempt.attempt_id,
                        attempt.channel, exc.channel_code, extra={"attempt_id": attempt.attempt_id})
        raise
    opened = payment.evolve(action={"type": result.action.type, **dict(result.action.params)})
    payments._record_opened(attempt, result.channel_order_ref, opened, None)
    return opened


def _payer_fields(payer: dict[str, Any]) -> dict[str, Any]:
    return {name: payer.get(name) for name in ("user_id", "openid", "ip", "city", "device_id")}


def _current(payment_id: str) -> Payment:
    payment = state_repo.get_payment(payment_id)
    if payment is None:
        raise NotFound(f"no payment {payment_id}", param="payment_id")
    return payment
