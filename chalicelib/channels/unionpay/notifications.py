"""UnionPay ``backUrl`` notifications: verify the decoded form first, then read it (docs/channels/unionpay.md#notifications).

The form's fields are signed as decoded pairs, so verification rebuilds the canonical string from exactly the
pairs received. A consume (``txnType`` 01) is a payment notification, a refund (04) a refund notification;
``orderId`` maps back to our attempt or refund id. UnionPay gives notifications no id of their own, so the
dedupe key is ``<queryId>:<txnType>:<respCode>``: copies of one notification collapse, a later different
outcome for the same transaction does not. The hub cross-checks merId (``channel_merchant_id``) against the
account's ``merchant_id`` and the amount against its record.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from chalicelib.channels.base import (
    CallbackReply,
    InboundCallback,
    Notification,
    NotificationKind,
    PaymentStatus,
    RefundStatus,
)
from chalicelib.channels.unionpay.credentials import UnionPayCredentials
from chalicelib.channels.unionpay.order_ids import BadOrderId, from_order_id
from chalicelib.channels.unionpay.states import (
    CONSUME_TXN_TYPE,
    REFUND_TXN_TYPE,
    fen_to_money,
    month_day_time,
    parse_txn_time,
    payment_outcome,
    refund_outcome,
)
from chalicelib.channels.unionpay.verification import SignatureInvalid, check_signed
from chalicelib.channels.unionpay.wire import MalformedMessage, decode_form
from chalicelib.domain.errors import CallbackRejected

# Kept out of Notification.raw: key material and anything card-related, even masked or encrypted.
_NOT_RAW = frozenset({"signature", "signPubKeyCert", "accNo", "customerInfo", "payCardNo"})


def _required(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value:
        raise CallbackRejected(f"notification lacks {name}")
    return value


def paid_at(fields: Mapping[str, str]) -> datetime | None:
    """When UnionPay completed it: ``traceTime`` (MMDDhhmmss), its year taken from ``txnTime``."""
    try:
        return month_day_time(fields.get("traceTime", ""), parse_txn_time(fields.get("txnTime", "")))
    except ValueError:
        return None


def parse_callback(credentials: UnionPayCredentials, callback: InboundCallback) -> Notification:
    received_at = callback.received_at if callback.received_at.tzinfo else callback.received_at.replace(tzinfo=UTC)
    try:
        fields = decode_form(callback.body)
    except MalformedMessage as exc:
        raise CallbackRejected(f"notification body unreadable: {exc}") from None
    try:
        check_signed(fields, credentials, received_at)
    except SignatureInvalid as exc:
        raise CallbackRejected(f"signature check failed: {exc}") from None
    txn_type = _required(fields, "txnType")
    if txn_type not in (CONSUME_TXN_TYPE, REFUND_TXN_TYPE):
        raise CallbackRejected(f"unsupported txnType {txn_type[:4]}")
    try:
        object_id = from_order_id(_required(fields, "orderId"))
    except BadOrderId as exc:
        raise CallbackRejected(f"orderId is not one of ours: {exc}") from None
    query_id, resp_code = _required(fields, "queryId"), _required(fields, "respCode")
    try:
        amount = fen_to_money(_required(fields, "txnAmt"), fields.get("currencyCode", ""))
    except ValueError as exc:
        raise CallbackRejected(f"notification has a bad amount: {exc}") from None
    raw = {key: value for key, value in fields.items() if key not in _NOT_RAW}
    event_id, merchant_id = f"{query_id}:{txn_type}:{resp_code}", _required(fields, "merId")
    if txn_type == CONSUME_TXN_TYPE:
        payment = PaymentStatus(outcome=payment_outcome(resp_code), raw_status=resp_code,
                                channel_transaction_id=query_id, amount=amount, paid_at=paid_at(fields))
        return Notification(kind=NotificationKind.PAYMENT, event_id=event_id, channel_merchant_id=merchant_id,
                            channel_app_id=None, object_id=object_id, payment=payment, raw=raw)
    refund = RefundStatus(outcome=refund_outcome(resp_code), raw_status=resp_code, channel_refund_id=query_id,
                          amount=amount)
    return Notification(kind=NotificationKind.REFUND, event_id=event_id, channel_merchant_id=merchant_id,
                        channel_app_id=None, object_id=object_id, refund=refund, raw=raw)


def acknowledgement(ok: bool) -> CallbackReply:
    """HTTP 200 (body ``ok``) stops UnionPay's re-sends; anything else makes it send again later."""
    if ok:
        return CallbackReply(status=200, body=b"ok", headers={"Content-Type": "text/plain"})
    return CallbackReply(status=400, body=b"fail", headers={"Content-Type": "text/plain"})
