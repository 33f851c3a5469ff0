"""Create, read and close payments."""

from __future__ import annotations

import logging
from datetime import timedelta

from chalicelib.channels.base import CardDetails, CreateRequest, Payer
from chalicelib.channels.registry import adapter
from chalicelib.config.accounts import ChannelAccount
from chalicelib.config.settings import settings
from chalicelib.domain.cards import requires_card
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.errors import ChannelError, DuplicateMerchantOrderNo, InvalidRequest, InvalidState, NotFound
from chalicelib.domain.ids import new_id
from chalicelib.domain.models import Attempt, Merchant, Payment
from chalicelib.domain.money import Money
from chalicelib.domain.states import AttemptState, PaymentState
from chalicelib.service import status_sync
from chalicelib.service.inputs import CardInput, CreatePaymentInput
from chalicelib.service.routing import callback_url, choose_account
from chalicelib.service.webhook_targets import check_notify_url
from chalicelib.storage import records, state_repo
from chalicelib.storage.sync_index import first_sync
from chalicelib.storage.transaction import Transaction, TransactionConflict
from chalicelib.vault.cards import SealedCard, vault

log = logging.getLogger(__name__)
# A vaulted card is deleted when its attempt becomes final (outcomes); DynamoDB's TTL is the backstop for one never settled.
CARD_KEPT_AFTER_EXPIRY_S = 24 * 3600


def create_payment(merchant: Merchant, body: CreatePaymentInput) -> Payment:
    """Pre-order at the channel first, then record payment + attempt atomically.

    Nothing is written if the channel refuses; if the write loses a race on merchant_order_no, the channel
    order we just made is closed so no payer can use it. A card is encrypted before the channel is called
    and its vault record is written in the same transaction as the payment and attempt.
    """
    _check_card_for_method(body)
    money = Money(body.amount, body.currency)
    if body.notify_url:
        check_notify_url(body.notify_url, param="notify_url")
    if state_repo.payment_id_for_order_no(merchant.merchant_id, body.merchant_order_no):
        raise DuplicateMerchantOrderNo(f"merchant_order_no {body.merchant_order_no!r} is already used",
                                       param="merchant_order_no")
    account = choose_account(body.method, body.currency, merchant.merchant_id)
    channel = account.config.channel
    now = utcnow()
    expires_at = now + timedelta(seconds=body.expires_in_seconds)
    payment_id, attempt_id = new_id("pay"), new_id("att")
    card = _card_details(body.card) if body.card else None
    sealed: SealedCard | None = None
    if card is not None:
        sealed = vault().seal(card, merchant_id=merchant.merchant_id, now=now,
                              keep_until=expires_at + timedelta(seconds=CARD_KEPT_AFTER_EXPIRY_S))
    result = adapter(channel).create(account, CreateRequest(
        attempt_id=attempt_id, method=body.method, amount=money, description=body.description,
        notify_url=callback_url(settings().public_base_url, channel, account.account_id), expires_at=expires_at,
        payer=Payer(**body.payer.model_dump()), return_url=body.return_url, card=card,
        payment_method=body.payment_method,
    ))
    action = {"type": result.action.type, **dict(result.action.params)}
    stamp = iso(now)
    payment = Payment(
        payment_id=payment_id, merchant_id=merchant.merchant_id, merchant_order_no=body.merchant_order_no,
        amount=money.minor, currency=money.currency, description=body.description, method=body.method,
        status=PaymentState.PENDING, version=0, created_at=stamp, updated_at=stamp, expires_at=iso(expires_at),
        current_attempt_id=attempt_id, notify_url=body.notify_url or merchant.webhook_url,
        payer=body.payer.model_dump(exclude_none=True), metadata=body.metadata, action=action,
        card=sealed.summary if sealed else None,
    )
    attempt = Attempt(
        attempt_id=attempt_id, payment_id=payment_id, merchant_id=merchant.merchant_id, channel=channel,
        account_id=account.account_id, method=body.method, amount=money.minor, currency=money.currency,
        status=AttemptState.PENDING, version=0, created_at=stamp, updated_at=stamp, expires_at=iso(expires_at),
        channel_order_ref=result.channel_order_ref, card_token=sealed.token if sealed else None,
        return_url=body.return_url,
    )
    tx = Transaction()
    table = state_repo.state_table()
    tx.put_new("order_no", table, {**records.order_no_key(merchant.merchant_id, body.merchant_order_no),
                                   "payment_id": payment_id})
    tx.put_new("payment", table, records.payment_item(payment))
    tx.put_new("attempt", table, {**records.attempt_item(attempt), **first_sync(now)})
    if sealed is not None:
        tx.put_new("card", table, sealed.item)
    try:
        tx.commit()
    except TransactionConflict as exc:
        _close_orphan(account, channel, attempt_id, result.channel_order_ref)
        raise DuplicateMerchantOrderNo(f"merchant_order_no {body.merchant_order_no!r} is already used",
                                       param="merchant_order_no") from exc
    log.info("payment %s created: attempt %s on %s/%s", payment_id, attempt_id, channel, account.account_id)
    return payment


def _check_card_for_method(body: CreatePaymentInput) -> None:
    if requires_card(body.method) and body.card is None:
        raise InvalidRequest(f"{body.method} needs the payer's card", param="card")
    if body.card is not None and not requires_card(body.method):
        raise InvalidRequest(f"{body.method} does not take a card; the payer enters it at the channel", param="card")


def _card_details(card: CardInput) -> CardDetails:
    return CardDetails(number=card.number, exp_month=card.exp_month, exp_year=card.exp_year, cvv=card.cvv,
                       holder_name=card.holder_name, phone=card.phone, id_type=card.id_type,
                       id_number=card.id_number)


def _close_orphan(account: ChannelAccount, channel: str, attempt_id: str, channel_order_ref: str) -> None:
    try:
        adapter(channel).close(account, attempt_id, channel_order_ref=channel_order_ref)
    except ChannelError:
        log.warning("could not close orphan channel order %s; it expires unpaid", attempt_id)


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

