"""``WeChatPayAdapter``: the WeChat Pay v3 direct-merchant channel behind the ``ChannelAdapter`` Protocol."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

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
from chalicelib.channels.wechatpay import bill, notifications, orders
from chalicelib.channels.wechatpay.client import WeChatPayClient
from chalicelib.channels.wechatpay.credentials import WeChatCredentials
from chalicelib.channels.wechatpay.signing import new_nonce
from chalicelib.channels.wechatpay.states import (
    money_to_fen,
    payment_status,
    refund_status,
)
from chalicelib.config.accounts import ChannelAccount
from chalicelib.domain.errors import ChannelError, InvalidRequest, InvalidState
from chalicelib.domain.money import Money

# WeChat answers "no such order/refund" with these codes; for a query that is an outcome, not an error.
NOT_FOUND_CODES = frozenset({"ORDER_NOT_EXIST", "RESOURCE_NOT_EXISTS"})
_Status = TypeVar("_Status", PaymentStatus, RefundStatus)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _segment(value: str) -> str:
    return quote(value, safe="")


class WeChatPayAdapter:
    channel = "wechatpay"
    methods = frozenset(orders.PRODUCT_BY_METHOD)
    confirm_methods: frozenset[str] = frozenset()  # the payer pays in WeChat

    def __init__(self, transport: Transport, clock: Callable[[], datetime] = _utc_now) -> None:
        self._clock = clock
        self._client = WeChatPayClient(transport, clock)

    def create(self, account: ChannelAccount, request: CreateRequest) -> CreateResult:
        if request.method not in self.methods:
            raise InvalidRequest(f"method {request.method!r} is not a WeChat Pay method", param="method")
        credentials = WeChatCredentials.from_account(account)
        body = orders.create_body(credentials, request)
        answer = self._client.call_json(credentials, "POST", orders.create_path(request.method), body)
        timestamp = int(self._clock().timestamp())
        return orders.create_result(
            credentials, request, answer, credentials.signer(), timestamp=timestamp, nonce=new_nonce()
        )

    # WeChat Pay finds orders and refunds by our own numbers: the channel's references are not needed.

    def query(self, account: ChannelAccount, attempt_id: str, amount: Money, *,
              channel_order_ref: str | None = None) -> PaymentStatus:
        credentials = WeChatCredentials.from_account(account)
        path = f"/v3/pay/transactions/out-trade-no/{_segment(attempt_id)}?{urlencode({'mchid': credentials.mchid})}"
        try:
            answer = self._client.call_json(credentials, "GET", path)
        except ChannelError as exc:
            if exc.channel_code in NOT_FOUND_CODES:
                return PaymentStatus(outcome=PaymentOutcome.NOT_FOUND, raw_status=exc.channel_code or "")
            raise
        require_echo("WeChat Pay", answer, "out_trade_no", attempt_id)
        require_echo("WeChat Pay", answer, "mchid", credentials.mchid, required=False)
        return _parsed(payment_status, answer)

    def close(self, account: ChannelAccount, attempt_id: str, *, channel_order_ref: str | None = None) -> None:
        """204 on success; an already-paid order surfaces as ``ChannelError(channel_code="ORDERPAID")``.

        An order the channel does not know counts as closed: nobody can pay it there.
        """
        credentials = WeChatCredentials.from_account(account)
        path = f"/v3/pay/transactions/out-trade-no/{_segment(attempt_id)}/close"
        try:
            self._client.call(credentials, "POST", path, {"mchid": credentials.mchid})
        except ChannelError as exc:
            if exc.channel_code not in NOT_FOUND_CODES:
                raise

    def refund(self, account: ChannelAccount, request: RefundRequest) -> RefundStatus:
        credentials = WeChatCredentials.from_account(account)
        try:
            amount = {
                "refund": money_to_fen(request.amount),
                "total": money_to_fen(request.attempt_amount),
                "currency": "CNY",
            }
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="currency") from exc
        body: dict[str, Any] = {
            "out_trade_no": request.attempt_id,
            "out_refund_no": request.refund_id,
            "notify_url": request.notify_url,
            "amount": amount,
        }
        if request.reason:
            body["reason"] = request.reason
        answer = self._client.call_json(credentials, "POST", "/v3/refund/domestic/refunds", body)
        require_echo("WeChat Pay", answer, "out_refund_no", request.refund_id)
        return _parsed(refund_status, answer)

    def query_refund(self, account: ChannelAccount, refund_id: str, amount: Money, *, attempt_id: str | None = None,
                     channel_refund_id: str | None = None, channel_order_ref: str | None = None,
                     created_at: datetime | None = None) -> RefundStatus:
        credentials = WeChatCredentials.from_account(account)
        try:
            answer = self._client.call_json(credentials, "GET", f"/v3/refund/domestic/refunds/{_segment(refund_id)}")
        except ChannelError as exc:
            if exc.channel_code in NOT_FOUND_CODES:
                return RefundStatus(outcome=RefundOutcome.NOT_FOUND, raw_status=exc.channel_code or "")
            raise
        require_echo("WeChat Pay", answer, "out_refund_no", refund_id)
        return _parsed(refund_status, answer)

    def confirm(self, account: ChannelAccount, request: ConfirmRequest) -> ConfirmResult:
        raise InvalidState(f"{request.method} has no confirmation step: the payer pays in WeChat", param="payment_id")

    def verify_and_parse_notification(self, account: ChannelAccount, callback: InboundCallback) -> Notification:
        return notifications.parse_callback(WeChatCredentials.from_account(account), callback)

    def acknowledge(self, ok: bool) -> CallbackReply:
        return notifications.acknowledgement(ok)

    def fetch_statement(self, account: ChannelAccount, day: str) -> Iterable[bytes]:
        return bill.fetch_trade_bill(self._client, WeChatCredentials.from_account(account), day)

    def parse_statement(self, account: ChannelAccount,
                        chunks: Iterable[bytes]) -> Iterator[StatementRow | StatementSummary]:
        return bill.parse_trade_bill(chunks)

    def parse_statement_compact(self, account: ChannelAccount,
                                chunks: Iterable[bytes]) -> Iterator[bill.BillRow | StatementSummary]:
        """``parse_statement`` with rows as the matching engine's plain tuples (what a reconciliation run reads)."""
        return bill.parse_trade_bill_rows(chunks)

    def load_statement_columnar(self, account: ChannelAccount, space: Any, path: str) -> tuple[bool, StatementSummary | None]:
        """The bill at ``path`` read by DuckDB into the reconciliation workspace's rows (the parser's rows, see
        ``bill_columnar``): ``(True, summary)``; ``(False, None)`` with nothing loaded when the file is not
        in the plain shape, for the caller to parse it with ``parse_statement_compact``."""
        return self.stage_statement_columnar(account, space, path)()

    def stage_statement_columnar(self, account: ChannelAccount, space: Any,
                                 path: str) -> Callable[[], tuple[bool, StatementSummary | None]]:
        """``load_statement_columnar`` in two steps: this call does the file work without touching DuckDB (it may
        run on another thread while the export is read); the step it returns loads the rows and answers."""
        from chalicelib.channels.wechatpay import bill_columnar  # DuckDB: only reconciliation pays its import

        finish = bill_columnar.stage_trade_bill(space, path)

        def load() -> tuple[bool, StatementSummary | None]:
            summary = finish()
            return summary is not None, summary

        return load


def _parsed(parse: Callable[[Mapping[str, Any]], _Status], answer: Mapping[str, Any]) -> _Status:
    try:
        return parse(answer)
    except ValueError as exc:
        raise ChannelError(f"WeChat Pay answer has a bad amount: {exc}") from exc
