"""The channel seam: one small Protocol every channel adapter implements, and the values it speaks.

Adapters build requests and parse responses; all HTTP goes through the injected ``Transport`` so an
adapter can be exercised with a fake transport and no network. Amounts cross this seam as ``Money``
(integer minor units); conversion to the channel's wire unit happens inside the adapter only.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from chalicelib.domain.money import Money
from chalicelib.domain.value_class import value_class

if TYPE_CHECKING:  # validated by pydantic-core: what reads statement rows or outcomes (recon's API) needs none of it
    from chalicelib.config.accounts import ChannelAccount

# --- HTTP values exchanged with the shared transport -------------------------------------------


@value_class
class HttpRequest:
    """One request an adapter asks the transport to send."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@value_class
class HttpResponse:
    """The channel's answer as the transport received it, before any verification."""

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
    # The payer has done their part (PayPal approval, Stripe 3-D Secure under manual confirmation) and the
    # hub must now complete the attempt at the channel with ``confirm`` (capture / confirm). Never success.
    REQUIRES_CONFIRMATION = "requires_confirmation"


class RefundOutcome(enum.StrEnum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NOT_FOUND = "not_found"


@value_class
class Payer:
    """What the hub knows of the payer, passed on to the channels that take it (openid for JSAPI, ip for H5)."""

    user_id: str | None = None
    openid: str | None = None
    ip: str | None = None
    city: str | None = None
    device_id: str | None = None


@value_class
class CardDetails:
    """A payer's card as typed, held in memory only for the call that needs it. ``repr`` shows nothing
    sensitive; the vault keeps the number encrypted, and the CVV is never stored at all (docs/design.md#security)."""

    number: str = field(repr=False)
    exp_month: int = field(repr=False)
    exp_year: int = field(repr=False)
    cvv: str | None = field(default=None, repr=False)
    holder_name: str | None = field(default=None, repr=False)
    phone: str | None = field(default=None, repr=False)
    id_type: str | None = field(default=None, repr=False)  # UnionPay certifTp, e.g. "01" (ID card)
    id_number: str | None = field(default=None, repr=False)

    @property
    def last4(self) -> str:
        return self.number[-4:]


@value_class
class InstalmentTerms:
    """Pay by instalments: how many, and whether the seller bears the fee (Alipay ``hb_fq_seller_percent`` 100)."""

    count: int
    seller_pays_fee: bool

    @classmethod
    def of(cls, schedule: Mapping[str, Any] | None) -> InstalmentTerms | None:
        """The terms of a stored schedule (an attempt's ``instalments``), or None when paid at once."""
        if not schedule:
            return None
        return cls(count=int(schedule["count"]), seller_pays_fee=schedule["fee_payer"] == "seller")


@value_class
class CreateRequest:
    """One attempt to create at the channel, under the hub's own order number."""

    attempt_id: str  # our order number at the channel (WeChat out_trade_no)
    method: str  # e.g. "wechat.jsapi"
    amount: Money
    description: str
    notify_url: str  # the hub's callback URL for this account
    expires_at: datetime
    payer: Payer
    return_url: str | None = None
    card: CardDetails | None = None  # card methods that take the number server-side (unionpay.card)
    payment_method: str | None = None  # a channel-side payment method token (Stripe ``pm_...``)
    # When the hub recorded this attempt, before asking. A retry of the create sends the same moment, so a channel
    # that keys an order by its send time as well as our id (UnionPay's txnTime) sees the same order again.
    requested_at: datetime | None = None
    instalments: InstalmentTerms | None = None  # only for methods whose channel takes them (domain/instalments.py)


@value_class
class ClientAction:
    """What the merchant's client must do next: ``type`` is one of jsapi_params, qr_code, redirect_url,
    app_params, form_post, three_ds; ``params`` holds what that type needs."""

    type: str
    params: Mapping[str, Any]


@value_class
class CreateResult:
    """The channel's handle for the created order and what the payer's client does next."""

    channel_order_ref: str  # prepay_id, code_url token, ... whatever the channel returned as its handle
    action: ClientAction


@value_class
class PaymentStatus:
    """An attempt as the channel reports it, reduced to the hub's outcome plus the channel's own status word."""

    outcome: PaymentOutcome
    raw_status: str
    channel_transaction_id: str | None = None
    amount: Money | None = None
    paid_at: datetime | None = None
    # The payer's money already moved and cannot be refused (e-CNY offline payments reported later in a
    # batch): the hub credits it even if the payment was closed meanwhile, whatever the late-success policy.
    settled_offline: bool = False


@value_class
class ConfirmRequest:
    """Continue an attempt after its first step: the payer's SMS code (UnionPay card), or the hub completing
    what the payer approved (PayPal capture, Stripe confirm after 3-D Secure). ``inputs`` come from the
    payer through the merchant and are never stored; ``card`` is read back from the vault for card methods."""

    attempt_id: str
    method: str
    channel_order_ref: str
    amount: Money
    notify_url: str
    inputs: Mapping[str, str] = field(default_factory=dict, repr=False)
    card: CardDetails | None = None
    return_url: str | None = None
    instalments: InstalmentTerms | None = None  # the attempt's, for a channel whose consume goes out at confirm


@value_class
class ConfirmResult:
    """The channel's answer: where the attempt stands, and a further step for the payer if one is needed
    (``action`` e.g. a 3-D Secure challenge). ``channel_order_ref`` is set when the channel issued a new handle."""

    status: PaymentStatus
    action: ClientAction | None = None
    channel_order_ref: str | None = None


@value_class
class RefundRequest:
    """One refund to submit against an attempt the channel holds."""

    refund_id: str  # our refund number at the channel (WeChat out_refund_no)
    attempt_id: str
    channel_transaction_id: str | None
    amount: Money
    attempt_amount: Money
    reason: str | None
    notify_url: str
    # Optional references the hub holds (channels that need them fall back to their own lookup without them):
    created_at: datetime | None = None  # when the hub created the refund (UnionPay's refund txnTime)
    method: str | None = None  # the payment attempt's method (UnionPay's bizType)
    channel_order_ref: str | None = None  # the attempt's CreateResult.channel_order_ref


@value_class
class RefundStatus:
    """A refund as the channel reports it, reduced to the hub's outcome plus the channel's own status word."""

    outcome: RefundOutcome
    raw_status: str
    channel_refund_id: str | None = None
    amount: Money | None = None


class NotificationKind(enum.StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


@value_class
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
    # Set for news the hub never applies but a person must act on (e.g. "chargeback": the channel took money back
    # on its own); the hub acknowledges it and raises it under this alert name.
    alert: str | None = None


@value_class
class CallbackReply:
    """What to answer the channel: its protocol decides status code and body."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@value_class
class InboundCallback:
    """A channel's notification as received, before its signature is checked."""

    headers: Mapping[str, str]  # lower-cased names
    body: bytes  # exact raw bytes as received
    received_at: datetime


# --- Statements (T+1 reconciliation) --------------------------------------------------------------


class StatementKind(enum.StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


@value_class(slots=True)
class StatementRow:
    """One detail row of a channel statement, normalised. ``object_id`` is our id at the channel (attempt id
    for payments, refund id for refunds; "" when the channel row does not carry one). ``status`` is
    ``succeeded`` for money that moved; anything else is the channel's word, lower-cased."""

    kind: StatementKind
    object_id: str
    channel_ref: str | None
    amount: Money  # payments: the amount the payer paid; refunds: the amount refunded (positive)
    status: str
    occurred_at: datetime  # timezone-aware
    fee: Money | None = None
    attempt_id: str | None = None  # refunds: the payment attempt they belong to, when the row says
    line: int = 0  # 1-based line (or record) number in the file, for error messages and reports


@value_class(slots=True)
class StatementSummary:
    """The statement's own totals, when it has them (checked against the rows, and used for the ledger check)."""

    count: int | None
    payments: Money | None  # gross payment amount
    refunds: Money | None  # refund amount, positive
    fees: Money | None = None
    settlement: Money | None = None  # net amount the channel settles for the day, if stated


# --- The Protocol ----------------------------------------------------------------------------------


class ChannelAdapter(Protocol):
    """One per channel. Methods raise ``ChannelError`` on channel errors, ``CallbackRejected`` on bad callbacks."""

    channel: str
    methods: frozenset[str]
    # The methods whose attempts have a confirmation step the hub completes (``confirm``): an SMS code, a capture
    # after the payer's approval, a confirm after 3-D Secure. A confirm asked for any other method is refused
    # before risk control decides on it. An adapter that does not declare it is asked for every method.
    confirm_methods: frozenset[str]

    def create(self, account: ChannelAccount, request: CreateRequest) -> CreateResult: ...

    # The keyword-only references below are what the hub recorded of the channel's own handles. An adapter uses
    # what it is given first and falls back to finding the object by our id only when the caller has nothing.
    # They are optional so that a caller holding only our id (or a channel that needs nothing more) still works.

    def query(self, account: ChannelAccount, attempt_id: str, amount: Money, *,
              channel_order_ref: str | None = None) -> PaymentStatus:
        """``channel_order_ref``: what ``create`` returned (``CreateResult.channel_order_ref``) for this attempt."""
        ...

    def close(self, account: ChannelAccount, attempt_id: str, *, channel_order_ref: str | None = None) -> None:
        """Returns only once the channel confirms nobody can pay the attempt any more; a paid one raises
        ``ChannelError(channel_code="ORDERPAID")``."""
        ...

    def refund(self, account: ChannelAccount, request: RefundRequest) -> RefundStatus: ...

    def query_refund(self, account: ChannelAccount, refund_id: str, amount: Money, *, attempt_id: str | None = None,
                     channel_refund_id: str | None = None, channel_order_ref: str | None = None,
                     created_at: datetime | None = None) -> RefundStatus:
        """``attempt_id``: the payment attempt refunded; ``channel_refund_id``: the channel's id from the refund
        answer or notification; ``channel_order_ref``: the attempt's ``CreateResult.channel_order_ref``;
        ``created_at``: when the hub created the refund (channels that key a refund by its first send time)."""
        ...

    def confirm(self, account: ChannelAccount, request: ConfirmRequest) -> ConfirmResult:
        """Raises ``InvalidState`` for channels/methods with no such step."""
        ...

    def verify_and_parse_notification(self, account: ChannelAccount,
                                      callback: InboundCallback) -> Notification | Sequence[Notification]:
        """One notification, or several when the channel reports a batch (e-CNY offline payments)."""
        ...

    def acknowledge(self, ok: bool) -> CallbackReply: ...

    def fetch_statement(self, account: ChannelAccount, day: str) -> Iterable[bytes]:
        """The statement of Beijing day ``day`` (YYYY-MM-DD), integrity-checked where the channel gives a
        hash, as a stream of chunks. Raises ``ChannelError`` (retryable) while it is not published yet."""
        ...

    def parse_statement(self, account: ChannelAccount,
                        chunks: Iterable[bytes]) -> Iterator[StatementRow | StatementSummary]:
        """Parse by header name as a stream; raise ``ChannelError`` naming the line on anything malformed."""
        ...


@runtime_checkable
class ChecksAmounts(Protocol):
    """Optional adapter capability: refuse up front an amount the channel cannot express exactly (Stripe's
    three-decimal currencies must end in 0; PayPal takes no decimals for JPY, TWD, HUF), so a refund of it is
    never reserved. Adapters without it take every amount their currency's ``Money`` allows."""

    def check_amount(self, amount: Money) -> None:
        """Raises ``InvalidRequest(param="amount")`` when the channel cannot take ``amount``."""
        ...
