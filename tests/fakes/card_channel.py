"""``cardtest``: a fake channel for hub tests of card payments and confirmation steps, registered by tests only.

- ``cardtest.card``: the hub sends the card at create; the channel "texts" a code to the payer and answers with an
  ``sms_verification`` action; ``confirm`` with the right code (and the same card, read back from the vault)
  puts the payment in the bank's hands (processing) until the test settles it.
- ``cardtest.wallet``: PayPal-like. Create answers a ``redirect_url``; the payer approves (a test call); the order
  then awaits the hub's ``confirm`` (capture), which the channel performs once however often it is asked.

Callbacks are JSON signed with HMAC-SHA256 under the account's ``callback_key`` secret (``x-fake-signature``).
All state lives in ``BOOK``, shared by every adapter instance, so tests can look and steer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.channels.base import (
    CallbackReply,
    ClientAction,
    ConfirmRequest,
    ConfirmResult,
    CreateRequest,
    CreateResult,
    InboundCallback,
    Notification,
    NotificationKind,
    PaymentOutcome,
    PaymentStatus,
    RefundOutcome,
    RefundRequest,
    RefundStatus,
    StatementRow,
    StatementSummary,
    Transport,
)
from chalicelib.config.accounts import ChannelAccount
from chalicelib.domain.errors import CallbackRejected, ChannelError
from chalicelib.domain.money import Money

CHANNEL = "cardtest"
CARD_METHOD = "cardtest.card"
WALLET_METHOD = "cardtest.wallet"
MERCHANT_ID = "FAKE-MCH-1"
_OUTCOMES = {"awaiting_sms": PaymentOutcome.PENDING, "created": PaymentOutcome.PENDING,
             "approved": PaymentOutcome.REQUIRES_CONFIRMATION, "processing": PaymentOutcome.PROCESSING,
             "paid": PaymentOutcome.SUCCEEDED, "closed": PaymentOutcome.CLOSED, "failed": PaymentOutcome.FAILED}


@dataclass
class FakeOrder:
    attempt_id: str
    method: str
    amount: Money
    status: str
    card_number: str | None = field(default=None, repr=False)
    sms_code: str | None = field(default=None, repr=False)
    confirm_calls: int = 0
    captures: int = 0
    confirmed_with: list[tuple[str | None, str | None]] = field(default_factory=list, repr=False)  # (number, cvv)


class FakeBook:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.orders: dict[str, FakeOrder] = {}
        self.confirm_faults: list[ChannelError] = []  # raised by the next confirm calls, in order

    def order(self, attempt_id: str) -> FakeOrder:
        with self.lock:
            return self.orders[attempt_id]

    def set_status(self, attempt_id: str, status: str) -> None:
        with self.lock:
            self.orders[attempt_id].status = status


BOOK = FakeBook()


def sign(body: bytes, key: str) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def notification_body(attempt_id: str, outcome: str, amount: Money, *, event_id: str | None = None,
                      settled_offline: bool = False, merchant_id: str = MERCHANT_ID, alert: str | None = None) -> bytes:
    """``alert``: the channel reports news the hub must only raise for a person (e.g. "chargeback")."""
    return json.dumps({"event_id": event_id or f"ev_{secrets.token_hex(6)}", "merchant_id": merchant_id,
                       "attempt_id": attempt_id, "outcome": outcome, "amount": amount.minor,
                       "currency": amount.currency, "transaction_id": f"T{attempt_id[-10:]}",
                       "settled_offline": settled_offline, "alert": alert}).encode()


class FakeCardChannel:
    channel = CHANNEL
    methods = frozenset({CARD_METHOD, WALLET_METHOD})
    confirm_methods = methods  # the card's SMS code; the wallet's capture after approval

    def __init__(self, transport: Transport) -> None:
        self._transport = transport  # never used: nothing here goes over a network

    def create(self, account: ChannelAccount, request: CreateRequest) -> CreateResult:
        with BOOK.lock:
            if request.method == CARD_METHOD:
                if request.card is None or request.card.cvv is None:
                    raise ChannelError("card and cvv required", channel_code="CARD_REQUIRED", refused=True)
                code = f"{secrets.randbelow(10**6):06d}"
                BOOK.orders[request.attempt_id] = FakeOrder(request.attempt_id, request.method, request.amount,
                                                            "awaiting_sms", request.card.number, code)
                phone = request.card.phone or "00000000000"
                return CreateResult(f"tn_{request.attempt_id}", ClientAction(
                    "sms_verification", {"phone_masked": phone[:3] + "****" + phone[-4:]}))
            BOOK.orders[request.attempt_id] = FakeOrder(request.attempt_id, request.method, request.amount, "created")
            return CreateResult(f"order_{request.attempt_id}", ClientAction(
                "redirect_url", {"url": f"https://fake.invalid/approve/{request.attempt_id}"}))

    def query(self, account: ChannelAccount, attempt_id: str, amount: Money, *,
              channel_order_ref: str | None = None) -> PaymentStatus:
        with BOOK.lock:
            order = BOOK.orders.get(attempt_id)
            return self._status(order) if order else PaymentStatus(PaymentOutcome.NOT_FOUND, "NOT_FOUND")

    def close(self, account: ChannelAccount, attempt_id: str, *, channel_order_ref: str | None = None) -> None:
        with BOOK.lock:
            order = BOOK.orders.get(attempt_id)
            if order is not None and order.status == "paid":
                raise ChannelError("order already paid", channel_code="ORDERPAID")
            if order is not None:
                order.status = "closed"

    def confirm(self, account: ChannelAccount, request: ConfirmRequest) -> ConfirmResult:
        with BOOK.lock:
            order = BOOK.orders[request.attempt_id]
            order.confirm_calls += 1
            order.confirmed_with.append((request.card.number if request.card else None,
                                         request.card.cvv if request.card else None))
            if BOOK.confirm_faults:
                raise BOOK.confirm_faults.pop(0)
            if order.status not in ("awaiting_sms", "approved"):  # done already: answer where it stands
                return ConfirmResult(self._status(order))
            if order.method == CARD_METHOD:
                return self._verify_sms(order, request)
            order.captures += 1
            order.status = "paid"
            return ConfirmResult(self._status(order))

    @staticmethod
    def _verify_sms(order: FakeOrder, request: ConfirmRequest) -> ConfirmResult:
        given = request.inputs.get("sms_code", "")
        if request.card is None or request.card.number != order.card_number or request.card.cvv is None:
            raise ChannelError("card details do not match the order", channel_code="CARD_MISMATCH", refused=True)
        if not hmac.compare_digest(given.encode(), (order.sms_code or "").encode()):
            order.status = "failed"
            raise ChannelError("verification code is wrong", channel_code="SMS_CODE_INVALID", refused=True)
        order.status = "processing"
        return ConfirmResult(FakeCardChannel._status(order))

    @staticmethod
    def _status(order: FakeOrder) -> PaymentStatus:
        outcome = _OUTCOMES[order.status]
        paid = outcome is PaymentOutcome.SUCCEEDED
        return PaymentStatus(outcome, order.status.upper(), channel_transaction_id=f"T{order.attempt_id[-10:]}"
                             if paid else None, amount=order.amount if paid else None)

    def refund(self, account: ChannelAccount, request: RefundRequest) -> RefundStatus:
        return RefundStatus(RefundOutcome.SUCCEEDED, "SUCCESS", channel_refund_id=f"R{request.refund_id[-10:]}")

    def query_refund(self, account: ChannelAccount, refund_id: str, amount: Money, *, attempt_id: str | None = None,
                     channel_refund_id: str | None = None, channel_order_ref: str | None = None,
                     created_at: datetime | None = None) -> RefundStatus:
        return RefundStatus(RefundOutcome.SUCCEEDED, "SUCCESS", channel_refund_id=f"R{refund_id[-10:]}")

    def verify_and_parse_notification(self, account: ChannelAccount,
                                      callback: InboundCallback) -> Notification | Sequence[Notification]:
        expected = sign(callback.body, account.secrets.get("callback_key").reveal())
        if not hmac.compare_digest(callback.headers.get("x-fake-signature", ""), expected):
            raise CallbackRejected("bad signature")
        data: dict[str, Any] = json.loads(callback.body)
        amount = Money(int(data["amount"]), str(data["currency"]))
        outcome = PaymentOutcome(data["outcome"])
        return Notification(
            kind=NotificationKind.PAYMENT, event_id=data["event_id"], channel_merchant_id=data["merchant_id"],
            channel_app_id=None, object_id=data["attempt_id"],
            payment=PaymentStatus(outcome, data["outcome"].upper(),
                                  channel_transaction_id=data["transaction_id"]
                                  if outcome is PaymentOutcome.SUCCEEDED else None,
                                  amount=amount, settled_offline=bool(data.get("settled_offline"))),
            alert=data.get("alert"))

    def acknowledge(self, ok: bool) -> CallbackReply:
        return CallbackReply(200 if ok else 401, b"ok" if ok else b"rejected")

    def fetch_statement(self, account: ChannelAccount, day: str) -> Iterable[bytes]:
        raise ChannelError("the fake channel publishes no statements", channel_code="NO_STATEMENT")

    def parse_statement(self, account: ChannelAccount,
                        chunks: Iterable[bytes]) -> Iterator[StatementRow | StatementSummary]:
        raise ChannelError("the fake channel publishes no statements", channel_code="NO_STATEMENT")
