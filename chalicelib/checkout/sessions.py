"""Checkout sessions: created by the merchant, opened by the payer through an unguessable URL.

Records (state table):
  CS#<session_id> / SESSION        the session: what to charge, which methods, where the payer goes back
  CS#<session_id> / ATT#<attempt>  one per attempt the payer opened (the session's history, for support)
  CSREF#<support_ref> / UNIQUE     the support reference a payer reads out to an operator -> the session
  PAY#<payment_id> / PAYMENT       the payment, written with the session (``session_id`` set)
  MORD#<merchant>#<order_no>       merchant_order_no stays unique per merchant, sessions and payments alike

The hosted URL is ``/checkout/<session_id>/<key>``: ``key`` is 128 random bits shown once to the merchant and
kept only as its SHA-256. Without it a session id opens nothing; any change to it opens nothing either, and every
such request gets the same "unknown session" page, so a URL can be neither guessed nor tampered with.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import asdict, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.checkout.methods import PAGE_METHODS
from chalicelib.config.settings import settings
from chalicelib.domain.clock import iso, parse_iso, utcnow
from chalicelib.domain.errors import DuplicateMerchantOrderNo, NotFound
from chalicelib.domain.ids import new_id
from chalicelib.domain.models import Attempt, Merchant, Payment
from chalicelib.domain.states import ATTEMPT_FINAL, PaymentState
from chalicelib.domain.value_class import value_class
from chalicelib.service import status_sync
from chalicelib.service.webhook_targets import check_notify_url
from chalicelib.storage import outbox, records, state_repo
from chalicelib.storage.transaction import Transaction, TransactionConflict

if TYPE_CHECKING:
    from chalicelib.checkout.inputs import CreateCheckoutSessionInput

log = logging.getLogger(__name__)
_REF_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read out over the phone


@value_class
class CheckoutSession:
    """A hosted checkout session: the merchant's request and the payment it opened."""

    session_id: str
    merchant_id: str
    payment_id: str
    merchant_order_no: str
    amount: int
    currency: str
    description: str
    allowed_methods: list[str]
    return_url: str
    expires_at: str
    created_at: str
    key_hash: str
    support_ref: str
    merchant_name: str
    payer: dict[str, Any] = field(default_factory=dict)
    cancel_url: str | None = None
    locale: str | None = None
    support_contact: dict[str, str] = field(default_factory=dict)
    step_up_phone: str | None = None  # where a step-up code goes (stepup/on_checkout.py); never shown in full

    def expired(self) -> bool:
        return parse_iso(self.expires_at) <= utcnow()

    def key_matches(self, key: str) -> bool:
        return hmac.compare_digest(self.key_hash, _hash(key))

    def public(self, payment: Payment | None = None, *, url: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.session_id, "object": "checkout_session", "payment_id": self.payment_id,
            "merchant_order_no": self.merchant_order_no, "amount": self.amount, "currency": self.currency,
            "description": self.description, "allowed_methods": self.allowed_methods,
            "return_url": self.return_url, "cancel_url": self.cancel_url, "locale": self.locale,
            "support_ref": self.support_ref, "created_at": self.created_at, "expires_at": self.expires_at,
        }
        if payment is not None:
            body["status"] = str(payment.status)
            body["payment"] = payment.public()
        if url is not None:
            body["url"] = url  # only in the answer to the create: the key is not kept
        return body


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def session_key(session_id: str) -> dict[str, str]:
    return {"pk": f"CS#{session_id}", "sk": "SESSION"}


def support_key(ref: str) -> dict[str, str]:
    return {"pk": f"CSREF#{ref}", "sk": "UNIQUE"}


def attempt_index_item(session_id: str, attempt_id: str, method: str, now: str) -> dict[str, Any]:
    return {"pk": f"CS#{session_id}", "sk": f"ATT#{now}#{attempt_id}", "attempt_id": attempt_id, "method": method,
            "created_at": now}


def hosted_url(session_id: str, key: str) -> str:
    return f"{settings().public_base_url}/checkout/{session_id}/{key}"


def new_support_ref() -> str:
    chars = "".join(secrets.choice(_REF_ALPHABET) for _ in range(10))
    return f"{chars[:5]}-{chars[5:]}"


def create_session(merchant: Merchant, body: CreateCheckoutSessionInput) -> dict[str, Any]:
    """Session and payment in one transaction; the answer carries the hosted URL (the only time the key is shown)."""
    if body.notify_url:
        check_notify_url(body.notify_url, param="notify_url")
    now = utcnow()
    stamp = iso(now)
    expires_at = iso(now + timedelta(seconds=body.expires_in_seconds))
    session_id, payment_id = new_id("cs"), new_id("pay")
    key = secrets.token_urlsafe(16)  # 128 bits
    payer = body.payer.model_dump(exclude_none=True)
    session = CheckoutSession(
        session_id=session_id, merchant_id=merchant.merchant_id, payment_id=payment_id,
        merchant_order_no=body.merchant_order_no, amount=body.amount, currency=body.currency,
        description=body.description, allowed_methods=list(body.allowed_methods), return_url=body.return_url,
        expires_at=expires_at, created_at=stamp, key_hash=_hash(key), support_ref=new_support_ref(),
        merchant_name=merchant.name, payer=payer, cancel_url=body.cancel_url, locale=body.locale,
        support_contact=body.support_contact.model_dump(exclude_none=True) if body.support_contact else {},
        step_up_phone=body.step_up_phone,
    )
    payment = Payment(
        payment_id=payment_id, merchant_id=merchant.merchant_id, merchant_order_no=body.merchant_order_no,
        amount=body.amount, currency=body.currency, description=body.description, method="checkout",
        status=PaymentState.PENDING, version=0, created_at=stamp, updated_at=stamp, expires_at=expires_at,
        notify_url=body.notify_url or merchant.webhook_url, payer=payer, metadata=dict(body.metadata),
        session_id=session_id,
    )
    for _ in range(3):  # a support reference taken already (50 bits: rare) is drawn again
        tx = Transaction()
        table = state_repo.state_table()
        tx.put_new("order_no", table, {**records.order_no_key(merchant.merchant_id, body.merchant_order_no),
                                       "payment_id": payment_id})
        tx.put_new("payment", table, records.payment_item(payment))
        tx.put_new("session", table, {**session_key(session_id), **asdict(session)})
        tx.put_new("support_ref", table, {**support_key(session.support_ref), "session_id": session_id})
        try:
            tx.commit()
            break
        except TransactionConflict as exc:
            if "order_no" in exc.failed_labels:
                raise DuplicateMerchantOrderNo(f"merchant_order_no {body.merchant_order_no!r} is already used",
                                               param="merchant_order_no") from exc
            if "support_ref" not in exc.failed_labels:
                raise
            session = CheckoutSession(**{**asdict(session), "support_ref": new_support_ref()})
    else:
        raise RuntimeError("could not draw a free support reference")
    log.info("checkout session %s created for payment %s", session_id, payment_id)
    return session.public(payment, url=hosted_url(session_id, key))


def load(session_id: str) -> CheckoutSession | None:
    item = state_repo.get_item(session_key(session_id))
    if item is None:
        return None
    names = CheckoutSession.__dataclass_fields__
    return CheckoutSession(**{k: v for k, v in item.items() if k in names})


def open_for_payer(session_id: str, key: str) -> CheckoutSession | None:
    """The session if ``key`` is its key; None for an unknown session and a wrong key alike."""
    session = load(session_id) if session_id.startswith("cs_") else None
    if session is None or not session.key_matches(key):
        if session is not None:
            log.warning("checkout session %s opened with a wrong key", session_id)
        return None
    return session


def for_merchant(merchant: Merchant, session_id: str) -> tuple[CheckoutSession, Payment]:
    session = load(session_id)
    if session is None or session.merchant_id != merchant.merchant_id:
        raise NotFound(f"no checkout session {session_id}", param="session_id")
    return session, settle_expiry(session)


def attempts(session: CheckoutSession) -> list[dict[str, Any]]:
    items, _ = state_repo.query("pk = :pk AND begins_with(sk, :att)",
                                {":pk": f"CS#{session.session_id}", ":att": "ATT#"})
    return items


def by_support_ref(ref: str) -> CheckoutSession | None:
    held = state_repo.get_item(support_key(ref.strip().upper()))
    return load(str(held["session_id"])) if held else None


def payment_of(session: CheckoutSession) -> Payment:
    payment = state_repo.get_payment(session.payment_id)
    if payment is None:
        raise NotFound(f"no payment for checkout session {session.session_id}", param="session_id")
    return payment


def current_attempt(payment: Payment) -> Attempt | None:
    return state_repo.get_attempt(payment.current_attempt_id) if payment.current_attempt_id else None


def settle_expiry(session: CheckoutSession) -> Payment:
    """A session past its expiry closes its payment, if nothing else did: an open attempt is closed at its channel
    (status sync would do the same shortly; if the payer paid meanwhile, that success stands), and a payment with
    no open attempt (never opened, or its last attempt failed) is closed here with its ``payment.closed`` event."""
    payment = payment_of(session)
    if not session.expired() or payment.status not in (PaymentState.PENDING, PaymentState.PROCESSING):
        return payment
    attempt = current_attempt(payment)
    if attempt is not None and attempt.status not in ATTEMPT_FINAL:
        status_sync.close_attempt(attempt.attempt_id, source="checkout_expired")
        return payment_of(session)
    now = iso(utcnow())
    closed = payment.evolve(status=PaymentState.CLOSED, updated_at=now, version=payment.version + 1,
                            failure_reason="expired")
    tx = Transaction()
    state_repo.guard_version(tx, "payment", records.payment_key(payment.payment_id), status=str(payment.status),
                             version=payment.version, changes={"status": "closed", "updated_at": now,
                                                               "failure_reason": "expired"})
    event = outbox.add_event(tx, merchant_id=payment.merchant_id, object_id=payment.payment_id,
                             event_type="payment.closed", data=closed.public(), now=now)
    try:
        tx.commit()
    except TransactionConflict:
        return payment_of(session)  # something else moved it (a success arriving now): that stands
    outbox.publish_after_commit([event])
    log.info("checkout session %s expired: payment %s closed", session.session_id, payment.payment_id)
    return closed


def page_methods() -> tuple[str, ...]:
    return tuple(PAGE_METHODS)
