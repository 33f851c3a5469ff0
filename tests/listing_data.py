"""Payments and refunds written straight into the state table, through the same record functions the hub's
create paths use (``records.payment_item`` / ``refund_item``), so they carry exactly the listing keys a real
create writes. Listing tests need hundreds of objects in chosen states and times; creating each through a
channel sandbox would test the channel, not the list."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain.clock import iso
from chalicelib.domain.models import Payment, Refund
from chalicelib.domain.states import PaymentState, RefundState
from chalicelib.storage import records, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import to_item

START = datetime(2026, 3, 1, tzinfo=UTC)
METHODS = ("wechat.native", "alipay.qr", "unionpay.gateway", "stripe.card")
STATUSES = (PaymentState.SUCCEEDED, PaymentState.SUCCEEDED, PaymentState.CLOSED, PaymentState.FAILED,
            PaymentState.PENDING)


def payment(merchant_id: str, n: int, *, created: datetime | None = None, **overrides: Any) -> Payment:
    at = iso(created or START + timedelta(minutes=n))
    values: dict[str, Any] = dict(
        payment_id=f"pay_{uuid.uuid4().hex[:24]}", merchant_id=merchant_id, merchant_order_no=f"ord-{n}",
        amount=100 + n, currency="CNY", description=f"order {n}", method=METHODS[n % len(METHODS)],
        status=STATUSES[n % len(STATUSES)], version=1, created_at=at, updated_at=at, expires_at=at)
    values.update(overrides)
    return Payment(**values)


def refund(merchant_id: str, paid: Payment, n: int, **overrides: Any) -> Refund:
    at = iso(START + timedelta(minutes=n, seconds=30))
    values: dict[str, Any] = dict(
        refund_id=f"re_{uuid.uuid4().hex[:24]}", payment_id=paid.payment_id, attempt_id=f"att_{n}",
        merchant_id=merchant_id, channel="wechatpay" if n % 2 else "alipay", account_id="acct", amount=10 + n,
        currency="CNY", status=RefundState.SUCCEEDED if n % 3 else RefundState.FAILED, version=1, created_at=at,
        updated_at=at, merchant_refund_no=f"r-{n}")
    values.update(overrides)
    return Refund(**values)


def store(objects: list[Payment | Refund]) -> None:
    items = [records.payment_item(o) if isinstance(o, Payment) else records.refund_item(o) for o in objects]
    for first in range(0, len(items), 25):
        request = {state_repo.state_table(): [{"PutRequest": {"Item": to_item(item)}} for item in items[first:first + 25]]}
        while request:
            request = client("dynamodb").batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
    for o in objects:
        if isinstance(o, Payment):
            key = records.order_no_key(o.merchant_id, o.merchant_order_no)
            client("dynamodb").put_item(TableName=state_repo.state_table(),
                                        Item=to_item({**key, "payment_id": o.payment_id}))
