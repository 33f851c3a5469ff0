"""``AlipayAdapter``: the Alipay Open Platform gateway (RSA2 or SM2) behind the ``ChannelAdapter`` Protocol."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from chalicelib.channels.alipay import bill, notifications, orders
from chalicelib.channels.alipay.client import AlipayClient
from chalicelib.channels.alipay.credentials import AlipayCredentials
from chalicelib.channels.alipay.states import money_to_yuan, payment_status, refund_query_status
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
from chalicelib.config.accounts import ChannelAccount
from chalicelib.domain.errors import ChannelError, InvalidRequest, InvalidState
from chalicelib.domain.money import Money

NOT_FOUND_SUB_CODES = frozenset({"ACQ.TRADE_NOT_EXIST"})
PAID_SUB_CODES = frozenset({"ACQ.TRADE_HAS_SUCCESS", "ACQ.TRADE_HAS_FINISHED"})
STATUS_ERROR_SUB_CODE = "ACQ.TRADE_STATUS_ERROR"
# Hub-wide code for "close refused because the payer paid" (status_sync.close_attempt relies on it).
ORDER_PAID = "ORDERPAID"

RefundLocator = Callable[[str], str | None]
_Status = TypeVar("_Status", PaymentStatus, RefundStatus)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _attempt_of_refund(refund_id: str) -> str | None:
    """Alipay's refund query needs the trade as well as our refund number. The hub's callers pass the attempt id;
    a caller that has only the refund id falls back to reading the refund's attempt from the hub's state
    (imported lazily: adapters otherwise do no storage I/O)."""
    from chalicelib.storage import state_repo

    refund = state_repo.get_refund(refund_id)
    return refund.attempt_id if refund is not None else None


class AlipayAdapter:
    channel = "alipay"
    methods = frozenset(orders.PRODUCTS)
    confirm_methods: frozenset[str] = frozenset()  # the payer completes every product in Alipay

    def __init__(self, transport: Transport, clock: Callable[[], datetime] = _utc_now,
                 refund_locator: RefundLocator = _attempt_of_refund) -> None:
        self._transport = transport
        self._client = AlipayClient(transport, clock)
        self._refund_locator = refund_locator

    def create(self, account: ChannelAccount, request: CreateRequest) -> CreateResult:
        if request.method not in self.methods:
            raise InvalidRequest(f"method {request.method!r} is not an Alipay method", param="method")
        credentials = AlipayCredentials.from_account(account)
        product = orders.PRODUCTS[request.method]
        biz = orders.biz_content(request)
        if product.server_call:
            answer = self._client.call(credentials, product.api_method, biz, notify_url=request.notify_url)
            require_echo("Alipay", answer, "out_trade_no", request.attempt_id)
            qr_code = answer.get("qr_code")
            if not isinstance(qr_code, str) or not qr_code:
                raise ChannelError("Alipay precreate answer lacks qr_code", channel_code="MALFORMED_ANSWER")
            return CreateResult(qr_code, orders.qr_action(qr_code))
        return_url = request.return_url if request.method != "alipay.app" else None
        params = self._client.signed_params(credentials, product.api_method, biz, notify_url=request.notify_url,
                                            return_url=return_url)
        if request.method == "alipay.app":
            return CreateResult(request.attempt_id, orders.app_action(params))
        return CreateResult(request.attempt_id, orders.browser_action(credentials.gateway_url, params,
                                                                      credentials.page_action))

    # Trades are found by our out_trade_no (the attempt id): ``channel_order_ref`` (a QR code or our own id) is not
    # needed for payments.

    def query(self, account: ChannelAccount, attempt_id: str, amount: Money, *,
              channel_order_ref: str | None = None) -> PaymentStatus:
        credentials = AlipayCredentials.from_account(account)
        try:
            answer = self._client.call(credentials, "alipay.trade.query", {"out_trade_no": attempt_id})
        except ChannelError as exc:
            # Page/wap/app trades exist at Alipay only once the payer opened the cashier: not found, not final.
            if exc.channel_code in NOT_FOUND_SUB_CODES:
                return PaymentStatus(outcome=PaymentOutcome.NOT_FOUND, raw_status=exc.channel_code or "")
            raise
        require_echo("Alipay", answer, "out_trade_no", attempt_id)
        return _parsed(payment_status, answer)

    def close(self, account: ChannelAccount, attempt_id: str, *, channel_order_ref: str | None = None) -> None:
        """A paid trade raises ``ChannelError(channel_code="ORDERPAID")``. A trade Alipay does not know counts
        as closed: ``time_expire`` (sent at creation) keeps the payer from paying it once the attempt expired."""
        credentials = AlipayCredentials.from_account(account)
        try:
            closed = self._client.call(credentials, "alipay.trade.close", {"out_trade_no": attempt_id})
            require_echo("Alipay", closed, "out_trade_no", attempt_id, required=False)
        except ChannelError as exc:
            if exc.channel_code in NOT_FOUND_SUB_CODES:
                return
            if exc.channel_code in PAID_SUB_CODES:
                raise ChannelError(f"Alipay trade {attempt_id} is paid: {exc.message}", channel_code=ORDER_PAID,
                                   refused=True) from exc
            if exc.channel_code != STATUS_ERROR_SUB_CODE:
                raise
            # "Trade status does not allow closing": paid, or closed already. Ask which.
            status = self.query(account, attempt_id, Money(0, "CNY"))
            if status.outcome is PaymentOutcome.SUCCEEDED:
                raise ChannelError(f"Alipay trade {attempt_id} is paid ({status.raw_status})", channel_code=ORDER_PAID,
                                   refused=True) from exc
            if status.outcome not in (PaymentOutcome.CLOSED, PaymentOutcome.NOT_FOUND):
                raise

    def refund(self, account: ChannelAccount, request: RefundRequest) -> RefundStatus:
        """Synchronous at Alipay. ``fund_change=Y`` means this call moved the money; ``N`` (a repeat of the same
        ``out_request_no``, or a refund still in progress) is settled by a refund query, as Alipay's docs ask."""
        credentials = AlipayCredentials.from_account(account)
        try:
            biz: dict[str, Any] = {"out_trade_no": request.attempt_id, "refund_amount": money_to_yuan(request.amount),
                                   "out_request_no": request.refund_id}
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="currency") from exc
        if request.reason:
            biz["refund_reason"] = request.reason[:256]
        answer = self._client.call(credentials, "alipay.trade.refund", biz)
        require_echo("Alipay", answer, "out_trade_no", request.attempt_id)
        trade_no = answer.get("trade_no") if isinstance(answer.get("trade_no"), str) else None
        if answer.get("fund_change") == "Y":
            return RefundStatus(outcome=RefundOutcome.SUCCEEDED, raw_status="FUND_CHANGE_Y", channel_refund_id=trade_no)
        settled = self._query_refund(credentials, request.attempt_id, request.refund_id)
        if settled.outcome is RefundOutcome.SUCCEEDED:
            return settled
        return RefundStatus(outcome=RefundOutcome.PROCESSING, raw_status="FUND_CHANGE_N", channel_refund_id=trade_no)

    def query_refund(self, account: ChannelAccount, refund_id: str, amount: Money, *, attempt_id: str | None = None,
                     channel_refund_id: str | None = None, channel_order_ref: str | None = None,
                     created_at: datetime | None = None) -> RefundStatus:
        """By ``out_trade_no`` (the attempt id, as given) and ``out_request_no`` (our refund id); the locator only
        when the caller has no attempt id."""
        attempt = attempt_id or self._refund_locator(refund_id)
        if attempt is None:
            return RefundStatus(outcome=RefundOutcome.NOT_FOUND, raw_status="UNKNOWN_REFUND")
        return self._query_refund(AlipayCredentials.from_account(account), attempt, refund_id)

    def _query_refund(self, credentials: AlipayCredentials, attempt_id: str, refund_id: str) -> RefundStatus:
        biz = {"out_trade_no": attempt_id, "out_request_no": refund_id, "query_options": ["gmt_refund_pay"]}
        try:
            answer = self._client.call(credentials, "alipay.trade.fastpay.refund.query", biz)
        except ChannelError as exc:
            if exc.channel_code in NOT_FOUND_SUB_CODES:
                return RefundStatus(outcome=RefundOutcome.NOT_FOUND, raw_status=exc.channel_code or "")
            raise
        require_echo("Alipay", answer, "out_trade_no", attempt_id, required=False)
        require_echo("Alipay", answer, "out_request_no", refund_id, required=False)
        return _parsed(refund_query_status, answer)

    def confirm(self, account: ChannelAccount, request: ConfirmRequest) -> ConfirmResult:
        raise InvalidState(f"{request.method} has no confirmation step: the payer completes it in Alipay",
                           param="payment_id")

    def verify_and_parse_notification(self, account: ChannelAccount, callback: InboundCallback) -> Notification:
        return notifications.parse_callback(AlipayCredentials.from_account(account), callback)

    def acknowledge(self, ok: bool) -> CallbackReply:
        return notifications.acknowledgement(ok)

    def fetch_statement(self, account: ChannelAccount, day: str) -> Iterable[bytes]:
        return bill.fetch_trade_bill(self._client, self._transport, AlipayCredentials.from_account(account), day)

    def parse_statement(self, account: ChannelAccount,
                        chunks: Iterable[bytes]) -> Iterator[StatementRow | StatementSummary]:
        return bill.parse_trade_bill(chunks)


def _parsed(parse: Callable[[dict[str, Any]], _Status], answer: dict[str, Any]) -> _Status:
    try:
        return parse(answer)
    except ValueError as exc:
        raise ChannelError(f"Alipay answer has a bad amount: {exc}", channel_code="MALFORMED_ANSWER") from exc
