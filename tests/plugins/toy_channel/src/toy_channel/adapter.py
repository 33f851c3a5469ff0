"""``ToyAdapter``: the hub's ``ChannelAdapter`` Protocol for the toy protocol. Imports only the hub's seam
(``chalicelib.channels.base``, its errors and money), as any third-party channel plugin would."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from chalicelib.channels.base import (
    CallbackReply,
    ClientAction,
    ConfirmRequest,
    ConfirmResult,
    CreateRequest,
    CreateResult,
    HttpRequest,
    InboundCallback,
    Notification,
    NotificationKind,
    PaymentOutcome,
    PaymentStatus,
    RefundOutcome,
    RefundRequest,
    RefundStatus,
    StatementKind,
    StatementRow,
    StatementSummary,
    Transport,
)
from chalicelib.domain.errors import CallbackRejected, ChannelError, InvalidState
from chalicelib.domain.money import Money
from toy_channel.wire import sign, verify

_PAYMENT = {"created": PaymentOutcome.PENDING, "paid": PaymentOutcome.SUCCEEDED, "closed": PaymentOutcome.CLOSED,
            "failed": PaymentOutcome.FAILED}
_REFUND = {"processing": RefundOutcome.PROCESSING, "succeeded": RefundOutcome.SUCCEEDED,
           "failed": RefundOutcome.FAILED}


class ToyAdapter:
    channel = "toy"
    methods = frozenset({"toy.wallet"})

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def _call(self, account: Any, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        key = account.secrets.get("signing_key").reveal()
        raw = json.dumps(body).encode() if body is not None else b""
        answer = self._transport.send(HttpRequest(method, f"{account.config.api_base_url}{path}", {
            "content-type": "application/json", "x-toy-merchant": account.setting("merchant_id"),
            "x-toy-signature": sign(raw, key)}, raw), timeout_s=5.0)
        if answer.status >= 500:
            raise ChannelError(f"toy answered {answer.status}", retryable=True)
        if not verify(answer.body, key, answer.headers.get("x-toy-signature")):
            raise ChannelError("toy answer signature invalid", channel_code="RESPONSE_SIGNATURE_INVALID")
        parsed: dict[str, Any] = json.loads(answer.body)
        if answer.status == 404:
            return {"status": "not_found"}
        if answer.status >= 400:
            raise ChannelError(f"toy refused: {parsed.get('error')}", channel_code=str(parsed.get("error")),
                               refused=answer.status == 400)
        return parsed

    def create(self, account: Any, request: CreateRequest) -> CreateResult:
        answer = self._call(account, "POST", "/orders", {
            "order_id": request.attempt_id, "amount": request.amount.minor, "currency": request.amount.currency,
            "notify_url": request.notify_url, "description": request.description})
        if answer.get("order_id") != request.attempt_id:
            raise ChannelError("toy answered about another order", channel_code="ANSWER_MISMATCH")
        return CreateResult(answer["token"], ClientAction("qr_code", {"code_url": answer["pay_url"]}))

    def query(self, account: Any, attempt_id: str, amount: Money, *,
              channel_order_ref: str | None = None) -> PaymentStatus:
        answer = self._call(account, "GET", f"/orders/{attempt_id}")
        if answer["status"] == "not_found":
            return PaymentStatus(PaymentOutcome.NOT_FOUND, "not_found")
        return _payment_status(answer)

    def close(self, account: Any, attempt_id: str, *, channel_order_ref: str | None = None) -> None:
        answer = self._call(account, "POST", f"/orders/{attempt_id}/close", {})
        if answer["status"] == "paid":
            raise ChannelError("toy order already paid", channel_code="ORDERPAID")

    def refund(self, account: Any, request: RefundRequest) -> RefundStatus:
        answer = self._call(account, "POST", "/refunds", {
            "refund_id": request.refund_id, "order_id": request.attempt_id, "amount": request.amount.minor})
        return RefundStatus(_REFUND[answer["status"]], answer["status"], answer["refund_id"],
                            Money(answer["amount"], request.amount.currency))

    def query_refund(self, account: Any, refund_id: str, amount: Money, *, attempt_id: str | None = None,
                     channel_refund_id: str | None = None, channel_order_ref: str | None = None,
                     created_at: datetime | None = None) -> RefundStatus:
        answer = self._call(account, "GET", f"/refunds/{refund_id}")
        if answer["status"] == "not_found":
            return RefundStatus(RefundOutcome.NOT_FOUND, "not_found")
        return RefundStatus(_REFUND[answer["status"]], answer["status"], answer["refund_id"],
                            Money(answer["amount"], amount.currency))

    def confirm(self, account: Any, request: ConfirmRequest) -> ConfirmResult:
        raise InvalidState("toy.wallet has no confirmation step", param="payment_id")

    def verify_and_parse_notification(self, account: Any,
                                      callback: InboundCallback) -> Notification | Sequence[Notification]:
        if not verify(callback.body, account.secrets.get("signing_key").reveal(),
                      callback.headers.get("x-toy-signature")):
            raise CallbackRejected("toy callback signature invalid")
        data = json.loads(callback.body)
        return Notification(kind=NotificationKind.PAYMENT, event_id=data["event_id"],
                            channel_merchant_id=data["merchant_id"], channel_app_id=None, object_id=data["order_id"],
                            payment=_payment_status(data), raw=data)

    def acknowledge(self, ok: bool) -> CallbackReply:
        return CallbackReply(200 if ok else 400, b"OK" if ok else b"FAIL", {"content-type": "text/plain"})

    def fetch_statement(self, account: Any, day: str) -> Iterable[bytes]:
        answer = self._call(account, "GET", f"/statements/{day}")
        yield answer["csv"].encode()

    def parse_statement(self, account: Any, chunks: Iterable[bytes]) -> Iterator[StatementRow | StatementSummary]:
        text = b"".join(chunks).decode()
        for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            yield StatementRow(kind=StatementKind.PAYMENT, object_id=row["order_id"], channel_ref=row["token"],
                               amount=Money(int(row["amount"]), row["currency"]), status=row["status"],
                               occurred_at=datetime.fromisoformat(row["paid_at"]), line=line)


def _payment_status(data: dict[str, Any]) -> PaymentStatus:
    return PaymentStatus(_PAYMENT[data["status"]], data["status"], data.get("token"),
                         Money(int(data["amount"]), data["currency"]),
                         datetime.fromisoformat(data["paid_at"]) if data.get("paid_at") else None)
