"""The channel seam: one small Protocol every channel adapter implements, and the values it speaks.

Adapters build requests and parse responses; all HTTP goes through the injected ``Transport`` so an
adapter can be exercised with a fake transport and no network. Amounts cross this seam as ``Money``
(integer minor units); conversion to the channel's wire unit happens inside the adapter only.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from chalicelib.config.accounts import ChannelAccount
from chalicelib.domain.money import Money

# --- HTTP values exchanged with the shared transport -------------------------------------------


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]  # header names lower-cased by the transport
    body: bytes


class Transport(Protocol):
    def send(self, request: HttpRequest, *, timeout_s: float = 10.0) -> HttpResponse:
        """Send one request; raises ``chalicelib.domain.errors.ChannelError(retryable=True)`` on network failure."""
        ...


# --- Outcomes ------------------------------------------------------------------------------------


class PaymentOutcome(enum.StrEnum):
    """A channel's view of one attempt, mapped exhaustively; anything unknown is PENDING (query again)."""

    PENDING = "pending"
    PROCESSING = "processing"  # payer is paying (e.g. WeChat USERPAYING)
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CLOSED = "closed"
    NOT_FOUND = "not_found"  # the channel has no such order


class RefundOutcome(enum.StrEnum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class Payer:
    user_id: str | None = None
    openid: str | None = None
    ip: str | None = None
    city: str | None = None
    device_id: str | None = None


@dataclass(frozen=True)
class CreateRequest:
    attempt_id: str  # our order number at the channel (WeChat out_trade_no)
    method: str  # e.g. "wechat.jsapi"
    amount: Money
    description: str
    notify_url: str  # the hub's callback URL for this account
    expires_at: datetime
    payer: Payer
    return_url: str | None = None


@dataclass(frozen=True)
class ClientAction:
    """What the merchant's client must do next: ``type`` is one of jsapi_params, qr_code, redirect_url,
    app_params, form_post, three_ds; ``params`` holds what that type needs."""

    type: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class CreateResult:
    channel_order_ref: str  # prepay_id, code_url token, ... whatever the channel returned as its handle
    action: ClientAction


@dataclass(frozen=True)
class PaymentStatus:
    outcome: PaymentOutcome
    raw_status: str
    channel_transaction_id: str | None = None
    amount: Money | None = None
    paid_at: datetime | None = None


@dataclass(frozen=True)
class RefundRequest:
    refund_id: str  # our refund number at the channel (WeChat out_refund_no)
    attempt_id: str
    channel_transaction_id: str | None
    amount: Money
    attempt_amount: Money
    reason: str | None
    notify_url: str


@dataclass(frozen=True)
class RefundStatus:
    outcome: RefundOutcome
    raw_status: str
    channel_refund_id: str | None = None
    amount: Money | None = None


class NotificationKind(enum.StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


@dataclass(frozen=True)
class Notification:
    """A verified, decrypted channel callback reduced to what the hub cross-checks and applies."""

    kind: NotificationKind
    event_id: str  # the channel's id for this notification, used for dedupe
    channel_merchant_id: str  # mchid / partner id, cross-checked against the account
    channel_app_id: str | None
    object_id: str  # attempt_id for payments, refund_id for refunds
    payment: PaymentStatus | None = None
    refund: RefundStatus | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CallbackReply:
    """What to answer the channel: its protocol decides status code and body."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InboundCallback:
    headers: Mapping[str, str]  # lower-cased names
    body: bytes  # exact raw bytes as received
    received_at: datetime


# --- The Protocol ----------------------------------------------------------------------------------


class ChannelAdapter(Protocol):
    """One per channel. Methods raise ``ChannelError`` on channel errors, ``CallbackRejected`` on bad callbacks."""

    channel: str
    methods: frozenset[str]

    def create(self, account: ChannelAccount, request: CreateRequest) -> CreateResult: ...

    def query(self, account: ChannelAccount, attempt_id: str, amount: Money) -> PaymentStatus: ...

    def close(self, account: ChannelAccount, attempt_id: str) -> None: ...

    def refund(self, account: ChannelAccount, request: RefundRequest) -> RefundStatus: ...

    def query_refund(self, account: ChannelAccount, refund_id: str, amount: Money) -> RefundStatus: ...

    def verify_and_parse_notification(self, account: ChannelAccount, callback: InboundCallback) -> Notification: ...

    def acknowledge(self, ok: bool) -> CallbackReply: ...

    def fetch_statement(self, account: ChannelAccount, day: str) -> Iterable[bytes]: ...

    def parse_statement(self, account: ChannelAccount, chunks: Iterable[bytes]) -> Iterator[Mapping[str, Any]]: ...
