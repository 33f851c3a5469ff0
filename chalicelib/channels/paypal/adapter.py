"""``PayPalAdapter``: PayPal Checkout (Orders v2, intent CAPTURE) behind the ``ChannelAdapter`` Protocol.

Life of an attempt: ``create`` makes an order and answers the approve link as a ``redirect_url`` action; the
payer approves at PayPal (webhook ``CHECKOUT.ORDER.APPROVED``, or a query showing ``APPROVED``), which the hub
sees as ``REQUIRES_CONFIRMATION``; ``confirm`` then captures, and the capture's status decides. Refunds are made
against the capture. Every write sends ``PayPal-Request-Id`` = our id + the operation, so retries are harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from chalicelib.channels.base import (
    CallbackReply,
    ClientAction,
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
from chalicelib.channels.paypal import notifications, orders, statement, verification
from chalicelib.channels.paypal.amounts import to_wire
from chalicelib.channels.paypal.certificates import CertificateStore
from chalicelib.channels.paypal.client import PayPalClient
from chalicelib.channels.paypal.credentials import PayPalCredentials
from chalicelib.channels.paypal.references import HubReferences, References
from chalicelib.config.accounts import ChannelAccount
from chalicelib.domain.errors import CallbackRejected, ChannelError, InvalidRequest
from chalicelib.domain.money import Money

METHOD = "paypal.wallet"
NOT_FOUND_CODES = frozenset({"RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID"})
ALREADY_CAPTURED = frozenset({"ORDER_ALREADY_CAPTURED", "DUPLICATE_REQUEST_ID"})
NOT_APPROVED = frozenset({"ORDER_NOT_APPROVED", "PAYER_ACTION_REQUIRED"})
_Parsed = TypeVar("_Parsed", PaymentStatus, RefundStatus)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _segment(value: str) -> str:
    return quote(value, safe="")


class PayPalAdapter:
    channel = "paypal"
    methods = frozenset({METHOD})
    confirm_methods = methods  # the capture after the payer's approval

    def __init__(self, transport: Transport, clock: Callable[[], datetime] = _utc_now,
                 references: References | None = None) -> None:
        self._clock = clock
        self._client = PayPalClient(transport, clock)
        self._certs = CertificateStore(transport)
        self._references: References = references or HubReferences()

    # -- payments ----------------------------------------------------------------------------------------

    def create(self, account: ChannelAccount, request: CreateRequest) -> CreateResult:
        if request.method not in self.methods:
            raise InvalidRequest(f"method {request.method!r} is not a PayPal method", param="method")
        credentials = PayPalCredentials.from_account(account)
        try:
            body = orders.create_body(request, credentials.brand_name)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="amount") from exc
        order = self._client.call_json(credentials, "POST", "/v2/checkout/orders", body,
                                       request_id=orders.request_id(request.attempt_id, "create"))
        order_id, approve = order.get("id"), orders.approve_link(order)
        if not isinstance(order_id, str) or not orders.is_paypal_id(order_id) or approve is None:
            raise ChannelError("PayPal order answer lacks an id or an approve link")
        _check_order(order, order_id, request.attempt_id, amount=body["purchase_units"][0]["amount"])
        return CreateResult(order_id, ClientAction("redirect_url", {"url": approve, "order_id": order_id}))

    def query(self, account: ChannelAccount, attempt_id: str, amount: Money, *,
              channel_order_ref: str | None = None) -> PaymentStatus:
        """By the PayPal order id the caller gives (``channel_order_ref``). Without one, ``attempt_id`` may be a PayPal
        order id itself, or our attempt id resolved to the order through the references port (the hub's records)."""
        credentials = PayPalCredentials.from_account(account)
        order_id = self._order_id(attempt_id, channel_order_ref)
        if order_id is None:
            return PaymentStatus(outcome=PaymentOutcome.NOT_FOUND, raw_status="NO_ORDER_FOR_ATTEMPT")
        order = self._get_order(credentials, order_id)
        if order is None:
            return PaymentStatus(outcome=PaymentOutcome.NOT_FOUND, raw_status="RESOURCE_NOT_FOUND")
        _check_order(order, order_id, attempt_id)
        return _parsed(orders.order_status, order)

    def close(self, account: ChannelAccount, attempt_id: str, *, channel_order_ref: str | None = None) -> None:
        """PayPal cannot void a CAPTURE-intent order: an order nobody captures simply expires. So closing means the
        hub will not capture it; the only refusal is money already captured (or being captured), reported as
        ``ChannelError(channel_code="ORDERPAID")`` like WeChat's, so the hub records the success instead."""
        credentials = PayPalCredentials.from_account(account)
        order_id = self._order_id(attempt_id, channel_order_ref)
        order = self._get_order(credentials, order_id) if order_id else None
        if order is None:
            return  # PayPal has no such order (never made, or expired): nobody can pay it
        _check_order(order, order_id or "", attempt_id)
        status = _parsed(orders.order_status, order)
        if status.outcome in (PaymentOutcome.SUCCEEDED, PaymentOutcome.PROCESSING):
            raise ChannelError(f"PayPal order {order_id} is already captured ({status.raw_status})",
                               channel_code="ORDERPAID", refused=True)

    def confirm(self, account: ChannelAccount, request: ConfirmRequest) -> ConfirmResult:
        """Capture the approved order. Idempotent: the same PayPal-Request-Id on every call, an already captured
        order answers its current status, and an order not yet approved answers its status and the approve link."""
        credentials = PayPalCredentials.from_account(account)
        order_id = request.channel_order_ref or self._order_id(request.attempt_id, None)
        if not order_id or not orders.is_paypal_id(order_id):
            raise InvalidRequest("the attempt has no PayPal order", param="payment_id")
        path = f"/v2/checkout/orders/{_segment(order_id)}/capture"
        try:
            order = self._client.call_json(credentials, "POST", path, {},
                                           request_id=orders.request_id(request.attempt_id, "capture"))
        except ChannelError as exc:
            if exc.channel_code not in ALREADY_CAPTURED | NOT_APPROVED:
                raise
            current = self._get_order(credentials, order_id)
            if current is None:
                raise
            order = current
        _check_order(order, order_id, request.attempt_id)
        status = _parsed(orders.order_status, order)
        action = None
        if status.outcome is PaymentOutcome.PENDING:
            approve = orders.approve_link(order)
            action = ClientAction("redirect_url", {"url": approve, "order_id": order_id}) if approve else None
        return ConfirmResult(status=status, action=action)

    # -- refunds -----------------------------------------------------------------------------------------

    def check_amount(self, amount: Money) -> None:
        """The hub asks before reserving a refund: the same conversion ``refund`` makes, without sending anything."""
        try:
            to_wire(amount)
        except ValueError as exc:
            raise InvalidRequest(f"PayPal cannot take this amount: {exc}", param="amount") from exc

    def refund(self, account: ChannelAccount, request: RefundRequest) -> RefundStatus:
        credentials = PayPalCredentials.from_account(account)
        capture_id = request.channel_transaction_id or self._capture_id(credentials, request.attempt_id,
                                                                        request.channel_order_ref)
        if not capture_id or not orders.is_paypal_id(capture_id):
            raise ChannelError(f"no PayPal capture known for {request.attempt_id}", channel_code="NO_CAPTURE")
        try:
            body: dict[str, Any] = {"amount": to_wire(request.amount), "invoice_id": request.refund_id,
                                    "custom_id": request.refund_id}
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="amount") from exc
        if request.reason:
            body["note_to_payer"] = request.reason[:255]
        answer = self._client.call_json(credentials, "POST", f"/v2/payments/captures/{_segment(capture_id)}/refund",
                                        body, request_id=orders.request_id(request.refund_id, "refund"))
        _check_refund(answer, request.refund_id)
        return _parsed(notifications.refund_status, answer)

    def query_refund(self, account: ChannelAccount, refund_id: str, amount: Money, *, attempt_id: str | None = None,
                     channel_refund_id: str | None = None, channel_order_ref: str | None = None,
                     created_at: datetime | None = None) -> RefundStatus:
        """By the PayPal refund id the caller gives (``channel_refund_id``); failing that, the order's refunds (the
        order from ``channel_order_ref``, else from ``attempt_id``) are searched for our id. Only a caller that
        gives neither makes the adapter read the references port (the hub's records)."""
        credentials = PayPalCredentials.from_account(account)
        paypal_refund_id = channel_refund_id if channel_refund_id and orders.is_paypal_id(channel_refund_id) else None
        if paypal_refund_id is None and (channel_order_ref or attempt_id):
            order_id = self._order_id(attempt_id or "", channel_order_ref)
            paypal_refund_id = self._refund_id_from_order(credentials, order_id, refund_id)
        elif paypal_refund_id is None:
            reference = self._references.refund(refund_id)
            paypal_refund_id = reference.channel_refund_id if reference else None
            if paypal_refund_id is None and reference is not None:
                order_id = self._order_id(reference.attempt_id, None)
                paypal_refund_id = self._refund_id_from_order(credentials, order_id, refund_id)
        if paypal_refund_id is None or not orders.is_paypal_id(paypal_refund_id):
            return RefundStatus(outcome=RefundOutcome.NOT_FOUND, raw_status="NO_REFUND_FOR_ID")
        try:
            answer = self._client.call_json(credentials, "GET", f"/v2/payments/refunds/{_segment(paypal_refund_id)}")
        except ChannelError as exc:
            if exc.channel_code in NOT_FOUND_CODES:
                return RefundStatus(outcome=RefundOutcome.NOT_FOUND, raw_status=exc.channel_code or "")
            raise
        _check_refund(answer, refund_id, paypal_refund_id)
        return _parsed(notifications.refund_status, answer)

    # -- callbacks ---------------------------------------------------------------------------------------

    def verify_and_parse_notification(self, account: ChannelAccount, callback: InboundCallback) -> Notification:
        credentials = PayPalCredentials.from_account(account)
        try:
            event = verification.verify(self._certs, self._client, credentials, callback.headers, callback.body,
                                        callback.received_at)
        except verification.SignatureInvalid as exc:
            raise CallbackRejected(f"signature check failed: {exc}") from None
        except verification.VerificationUnavailable as exc:
            raise CallbackRejected(f"verify API unavailable ({exc}); PayPal will retry") from None
        return notifications.parse_event(event)

    def acknowledge(self, ok: bool) -> CallbackReply:
        return notifications.acknowledgement(ok)

    # -- statements --------------------------------------------------------------------------------------

    def fetch_statement(self, account: ChannelAccount, day: str) -> Iterable[bytes]:
        return statement.fetch_transactions(self._client, PayPalCredentials.from_account(account), day)

    def parse_statement(self, account: ChannelAccount,
                        chunks: Iterable[bytes]) -> Iterator[StatementRow | StatementSummary]:
        return statement.parse_transactions(chunks)

    # -- helpers -----------------------------------------------------------------------------------------

    def _order_id(self, attempt_or_order_id: str, channel_order_ref: str | None) -> str | None:
        """The given order id first; the references port only when the caller has none."""
        if channel_order_ref and orders.is_paypal_id(channel_order_ref):
            return channel_order_ref
        if orders.is_paypal_id(attempt_or_order_id):
            return attempt_or_order_id
        return self._references.order_id(attempt_or_order_id) if attempt_or_order_id else None

    def _get_order(self, credentials: PayPalCredentials, order_id: str | None) -> dict[str, Any] | None:
        if not order_id or not orders.is_paypal_id(order_id):
            return None
        try:
            order = self._client.call_json(credentials, "GET", f"/v2/checkout/orders/{_segment(order_id)}")
        except ChannelError as exc:
            if exc.channel_code in NOT_FOUND_CODES:
                return None
            raise
        if order.get("id") != order_id:
            raise ChannelError(f"PayPal answered about another order than {order_id}", channel_code="ORDER_MISMATCH")
        return order

    def _capture_id(self, credentials: PayPalCredentials, attempt_id: str, channel_order_ref: str | None) -> str | None:
        """The capture of the given order; without an order id, the references port first."""
        if not (channel_order_ref and orders.is_paypal_id(channel_order_ref)):
            known = self._references.capture_id(attempt_id)
            if known:
                return known
        order = self._get_order(credentials, self._order_id(attempt_id, channel_order_ref))
        capture = orders.decisive_capture(order) if order is not None else None
        capture_id = capture.get("id") if capture is not None else None
        return capture_id if isinstance(capture_id, str) else None

    def _refund_id_from_order(self, credentials: PayPalCredentials, order_id: str | None, refund_id: str) -> str | None:
        order = self._get_order(credentials, order_id)
        if order is None:
            return None
        payments = orders.purchase_unit(order).get("payments")
        refunds = payments.get("refunds") if isinstance(payments, Mapping) else None
        for item in refunds if isinstance(refunds, list) else []:
            if isinstance(item, Mapping) and refund_id in (item.get("invoice_id"), item.get("custom_id")):
                found = item.get("id")
                return found if isinstance(found, str) else None
        return None


def _check_order(order: Mapping[str, Any], order_id: str, attempt_id: str, *,
                 amount: Mapping[str, Any] | None = None) -> None:
    """PayPal's answers are authenticated by TLS to its API host; what they say must still be about what we asked:
    the order we named, made for our attempt (``custom_id``), and (for the one we just made) for our amount. An
    ``attempt_id`` that is itself a PayPal order id (a caller with no attempt at hand) checks the order id only."""
    if order.get("id") != order_id:
        raise ChannelError(f"PayPal answered about another order than {order_id}", channel_code="ORDER_MISMATCH")
    if orders.is_paypal_id(attempt_id):
        return
    try:
        ours = orders.attempt_id_of_order(order) == attempt_id
        unit_amount = orders.purchase_unit(order).get("amount")
    except ValueError as exc:
        raise ChannelError(f"PayPal order answer is malformed: {exc}") from exc
    if not ours:
        raise ChannelError(f"PayPal order {order_id} is not attempt {attempt_id}'s", channel_code="ORDER_MISMATCH")
    if amount is not None and not (isinstance(unit_amount, Mapping)
                                   and unit_amount.get("currency_code") == amount["currency_code"]
                                   and unit_amount.get("value") == amount["value"]):
        raise ChannelError(f"PayPal order {order_id} was made for another amount than asked",
                           channel_code="AMOUNT_MISMATCH")


def _check_refund(answer: Mapping[str, Any], refund_id: str, paypal_refund_id: str | None = None) -> None:
    """A refund answer must be our refund: the PayPal id we asked for, carrying our id where PayPal echoes it."""
    if paypal_refund_id is not None and answer.get("id") != paypal_refund_id:
        raise ChannelError(f"PayPal answered about another refund than {paypal_refund_id}",
                           channel_code="REFUND_MISMATCH")
    for key in ("invoice_id", "custom_id"):
        if answer.get(key) is not None and answer.get(key) != refund_id:
            raise ChannelError(f"PayPal refund answer carries another {key} than {refund_id}",
                               channel_code="REFUND_MISMATCH")


def _parsed(parse: Callable[[Mapping[str, Any]], _Parsed], answer: Mapping[str, Any]) -> _Parsed:
    try:
        return parse(answer)
    except (KeyError, ValueError) as exc:
        raise ChannelError(f"PayPal answer is malformed: {exc}") from exc
