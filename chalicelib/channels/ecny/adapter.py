"""``ECNYAdapter``: digital RMB wallet payments through a partner bank's e-CNY gateway (modelled protocol)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from chalicelib.channels.base import (
    CallbackReply,
    ConfirmRequest,
    ConfirmResult,
    CreateRequest,
    CreateResult,
    InboundCallback,
    Notification,
    PaymentOutcome,
    PaymentStatus,
    RefundOutcome,
    RefundRequest,
    RefundStatus,
    StatementRow,
    StatementSummary,
    Transport,
)
from chalicelib.channels.echoes import require_echo
from chalicelib.channels.ecny import notifications, orders, statement
from chalicelib.channels.ecny.amounts import money_to_yuan
from chalicelib.channels.ecny.client import ECNYClient
from chalicelib.channels.ecny.credentials import ECNYCredentials
from chalicelib.channels.ecny.states import payment_status, refund_status
from chalicelib.config.accounts import ChannelAccount
from chalicelib.domain.errors import ChannelError, InvalidRequest, InvalidState
from chalicelib.domain.money import Money

CREATE_PATH = "/ecny/v1/orders"
QUERY_PATH = "/ecny/v1/orders/query"
CLOSE_PATH = "/ecny/v1/orders/close"
REFUND_PATH = "/ecny/v1/refunds"
REFUND_QUERY_PATH = "/ecny/v1/refunds/query"
REASON_CHARS_MAX = 80
_Status = TypeVar("_Status", PaymentStatus, RefundStatus)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ECNYAdapter:
    channel = "ecny"
    methods = orders.METHODS
    confirm_methods: frozenset[str] = frozenset()  # the payer confirms in the e-CNY wallet

    def __init__(self, transport: Transport, clock: Callable[[], datetime] = _utc_now) -> None:
        self._client = ECNYClient(transport, clock)

    def create(self, account: ChannelAccount, request: CreateRequest) -> CreateResult:
        if request.method not in self.methods:
            raise InvalidRequest(f"method {request.method!r} is not an e-CNY method", param="method")
        credentials = ECNYCredentials.from_account(account)
        answer = self._client.call(credentials, CREATE_PATH, orders.create_body(credentials, request))
        return orders.create_result(credentials, request, answer)

    # The gateway finds orders and refunds by our own numbers: the channel's references are not needed.

    def query(self, account: ChannelAccount, attempt_id: str, amount: Money, *,
              channel_order_ref: str | None = None) -> PaymentStatus:
        credentials = ECNYCredentials.from_account(account)
        try:
            answer = self._client.call(credentials, QUERY_PATH, {"merchant_id": credentials.merchant_id,
                                                                 "out_order_no": attempt_id})
        except ChannelError as exc:
            if exc.channel_code == "ORDER_NOT_FOUND":
                return PaymentStatus(outcome=PaymentOutcome.NOT_FOUND, raw_status="ORDER_NOT_FOUND")
            raise
        require_echo("e-CNY gateway", answer, "out_order_no", attempt_id)
        return _parsed(payment_status, answer)

    def close(self, account: ChannelAccount, attempt_id: str, *, channel_order_ref: str | None = None) -> None:
        """A paid order surfaces as ``ChannelError(channel_code="ORDERPAID")`` (the hub then queries it);
        an order the bank does not know counts as closed: nobody can pay it there."""
        credentials = ECNYCredentials.from_account(account)
        try:
            self._client.call(credentials, CLOSE_PATH, {"merchant_id": credentials.merchant_id,
                                                        "out_order_no": attempt_id})
        except ChannelError as exc:
            if exc.channel_code == "ORDER_PAID":
                raise ChannelError(f"e-CNY order {attempt_id} is already paid", channel_code="ORDERPAID",
                                   refused=True) from exc
            if exc.channel_code != "ORDER_NOT_FOUND":
                raise

    def refund(self, account: ChannelAccount, request: RefundRequest) -> RefundStatus:
        credentials = ECNYCredentials.from_account(account)
        try:
            refund_amount, order_amount = money_to_yuan(request.amount), money_to_yuan(request.attempt_amount)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="amount") from exc
        body: dict[str, Any] = {
            "merchant_id": credentials.merchant_id,
            "out_order_no": request.attempt_id,
            "out_refund_no": request.refund_id,
            "refund_amount": refund_amount,
            "order_amount": order_amount,
            "currency": "CNY",
            "notify_url": request.notify_url,
        }
        if request.reason:
            body["reason"] = request.reason[:REASON_CHARS_MAX]
        answer = self._client.call(credentials, REFUND_PATH, body)
        require_echo("e-CNY gateway", answer, "out_refund_no", request.refund_id)
        return _parsed(refund_status, answer)

    def query_refund(self, account: ChannelAccount, refund_id: str, amount: Money, *, attempt_id: str | None = None,
                     channel_refund_id: str | None = None, channel_order_ref: str | None = None,
                     created_at: datetime | None = None) -> RefundStatus:
        credentials = ECNYCredentials.from_account(account)
        try:
            answer = self._client.call(credentials, REFUND_QUERY_PATH, {"merchant_id": credentials.merchant_id,
                                                                        "out_refund_no": refund_id})
        except ChannelError as exc:
            if exc.channel_code == "REFUND_NOT_FOUND":
                return RefundStatus(outcome=RefundOutcome.NOT_FOUND, raw_status="REFUND_NOT_FOUND")
            raise
        require_echo("e-CNY gateway", answer, "out_refund_no", refund_id)
        return _parsed(refund_status, answer)

    def confirm(self, account: ChannelAccount, request: ConfirmRequest) -> ConfirmResult:
        raise InvalidState(f"{request.method} has no confirmation step: the payer confirms in the e-CNY wallet",
                           param="payment_id")

    def verify_and_parse_notification(self, account: ChannelAccount,
                                      callback: InboundCallback) -> Notification | list[Notification]:
        return notifications.parse_callback(ECNYCredentials.from_account(account), callback)

    def acknowledge(self, ok: bool) -> CallbackReply:
        return notifications.acknowledgement(ok)

    def fetch_statement(self, account: ChannelAccount, day: str) -> Iterable[bytes]:
        return statement.fetch(self._client, ECNYCredentials.from_account(account), day)

    def parse_statement(self, account: ChannelAccount,
                        chunks: Iterable[bytes]) -> Iterator[StatementRow | StatementSummary]:
        return statement.parse(chunks, account.setting("merchant_id"))


def _parsed(parse: Callable[[Mapping[str, Any]], _Status], answer: Mapping[str, Any]) -> _Status:
    try:
        return parse(answer)
    except (ValueError, KeyError) as exc:
        raise ChannelError(f"e-CNY gateway answer has a bad amount: {exc}") from exc
