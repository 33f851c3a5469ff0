"""Alipay async notifies (``notify_url``): decode the form, verify, then reduce to a ``Notification``.

Verification follows docs/channels/alipay.md#notifies: decoded values, ``sign`` removed (and ``sign_type`` under the V1 rule
payment notifies use; V2, which keeps it, is tried as well, like the official Node SDK), empty values removed,
sorted ``k=v`` joined by ``&``, checked against each configured Alipay public key.

A notify carrying ``out_biz_no`` reports a refund (our refund id): it is a REFUND notification, whatever its
``trade_status`` says. That is what keeps the TRADE_CLOSED Alipay sends after a full refund from ever closing
the paid attempt. ``refund_fee`` in a notify is the trade's refunded *total*, so it is not reported as this
refund's amount.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, unquote

from chalicelib.channels.alipay import signing
from chalicelib.channels.alipay.credentials import AlipayCredentials
from chalicelib.channels.alipay.states import payment_status
from chalicelib.channels.base import (
    CallbackReply,
    InboundCallback,
    Notification,
    NotificationKind,
    RefundOutcome,
    RefundStatus,
)
from chalicelib.domain.errors import CallbackRejected

TRADE_NOTIFY_TYPE = "trade_status_sync"
CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "gbk": "gbk", "gb2312": "gbk", "gb18030": "gb18030"}
SUCCESS_BODY = b"success"
_CHARSET_PARAM = re.compile(r"(?:^|&)charset=([^&]*)")


def decode_form(body: bytes) -> dict[str, str]:
    """The notify's parameters, decoded with the ``charset`` it carries. Raises ``CallbackRejected``."""
    try:
        text = body.decode("ascii")  # a form body is percent-encoded: raw non-ASCII bytes mean it is not one
    except UnicodeDecodeError:
        raise CallbackRejected("notify body is not form-encoded") from None
    declared = _CHARSET_PARAM.search(text)
    charset = CHARSETS.get(unquote(declared.group(1)).strip().lower() if declared else "utf-8")
    if charset is None:
        raise CallbackRejected("notify charset is not supported")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), encoding=charset, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise CallbackRejected(f"notify body is not a valid {charset} form") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise CallbackRejected(f"notify repeats parameter {key}")
        params[key] = value
    return params


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise CallbackRejected(f"notify lacks {name}")
    return value


def verify(credentials: AlipayCredentials, params: Mapping[str, str]) -> signing.NotifyRule:
    """Raise ``CallbackRejected`` unless one of the account's Alipay keys signed ``params`` under V1 or V2."""
    declared = params.get("sign_type", "")
    if declared and declared.upper() != credentials.sign_type:
        raise CallbackRejected(f"notify sign_type {declared} is not the account's {credentials.sign_type}")
    if not params.get("sign"):
        raise CallbackRejected("notify is not signed")
    rule = signing.verify_notify(credentials.sign_type, credentials.alipay_public_keys, params)
    if rule is None:
        raise CallbackRejected("notify signature does not verify with any configured Alipay key")
    return rule


def parse_callback(credentials: AlipayCredentials, callback: InboundCallback) -> Notification:
    params = decode_form(callback.body)
    verify(credentials, params)
    if params.get("notify_type") != TRADE_NOTIFY_TYPE:
        raise CallbackRejected("unsupported notify_type: only trade_status_sync notifies are handled")
    return notification(params)


def notification(params: Mapping[str, str]) -> Notification:
    """A verified trade_status_sync notify as a payment or refund ``Notification``."""
    notify_id = _required(params, "notify_id")
    trade_status = _required(params, "trade_status")
    out_trade_no = _required(params, "out_trade_no")
    seller_id = _required(params, "seller_id")
    app_id = _required(params, "app_id")
    raw = {key: value for key, value in params.items() if key != "sign"}
    out_biz_no = params.get("out_biz_no", "")
    if out_biz_no:
        trade_no = params.get("trade_no") or None
        return Notification(
            kind=NotificationKind.REFUND, event_id=f"{notify_id}:{trade_status}:{out_biz_no}",
            channel_merchant_id=seller_id, channel_app_id=app_id, object_id=out_biz_no,
            refund=RefundStatus(outcome=RefundOutcome.SUCCEEDED, raw_status=f"REFUNDED/{trade_status}",
                                channel_refund_id=trade_no),
            raw=raw,
        )
    try:
        status = payment_status(params)
    except ValueError as exc:
        raise CallbackRejected(f"notify has a bad amount: {exc}") from None
    if status.amount is None:
        raise CallbackRejected("notify lacks total_amount")
    return Notification(
        kind=NotificationKind.PAYMENT, event_id=f"{notify_id}:{trade_status}", channel_merchant_id=seller_id,
        channel_app_id=app_id, object_id=out_trade_no, payment=status, raw=raw,
    )


def acknowledgement(ok: bool) -> CallbackReply:
    """Alipay stops re-sending only on the exact 7-byte body ``success``; anything else means "send again"."""
    if ok:
        return CallbackReply(status=200, body=SUCCESS_BODY, headers={"Content-Type": "text/plain; charset=utf-8"})
    return CallbackReply(status=400, body=b"fail", headers={"Content-Type": "text/plain; charset=utf-8"})
