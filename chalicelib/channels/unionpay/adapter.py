"""``UnionPayAdapter``: UnionPay ACP 5.1.0 behind the ``ChannelAdapter`` Protocol.

Methods and the action each returns:
- ``unionpay.gateway``: nothing is sent to UnionPay at create; the payer's browser posts a signed consume
  form to ``frontTransReq.do`` -> action ``form_post`` ``{"url", "fields"}``.
- ``unionpay.quickpass``: ``appTransReq.do`` returns a ``tn`` for the UnionPay control / QuickPass app ->
  action ``app_params`` ``{"tn", "mode"}``.
- ``unionpay.card``: quick pay (认证支付, bizType 000301). ``create`` asks UnionPay to text a code to the
  card's phone (txnType 77) -> action ``sms_verification``; ``confirm`` with the code (and the CVV for a
  credit card) sends the consume; the answer is processing, possibly with a ``three_ds`` challenge first.

There is no close for a consume at UnionPay. ``close`` therefore queries: a paid order raises
``ChannelError(channel_code="ORDERPAID")``; one being paid right now raises a retryable
``ChannelError(channel_code="ORDERPAYING")``; anything else (never submitted, failed, SMS only) is closed by
recording it in the hub alone. A gateway form already handed to a payer stays payable until ``payTimeout``
(= the payment's expiry); a payment after a close is a late success, handled by the merchant's policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime

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
from chalicelib.channels.unionpay import messages, notifications, statement
from chalicelib.channels.unionpay.card import card_fields, mask_phone
from chalicelib.channels.unionpay.client import APP_PATH, BACK_PATH, FRONT_PATH, QUERY_PATH, AcpClient, describe
from chalicelib.channels.unionpay.credentials import UnionPayCredentials
from chalicelib.channels.unionpay.order_book import HubRecordsOrderBook, OrderBook, order_ref_text, txn_time_of
from chalicelib.channels.unionpay.order_ids import BadOrderId, to_order_id
from chalicelib.channels.unionpay.states import (
    CONSUME_TXN_TYPE,
    UNKNOWN_CODES,
    Answer,
    classify,
    fen_to_money,
    money_to_fen,
    payment_outcome,
    refund_outcome,
    txn_time,
)
from chalicelib.config.accounts import ChannelAccount
from chalicelib.domain.errors import ChannelError, ChannelOrderExists, InvalidRequest, InvalidState
from chalicelib.domain.money import Money

# Card answers (60-89) that are about what the payer typed: the payer can type again, the order stays open.
RETYPE_CODES: Mapping[str, str] = {"62": "card", "63": "cvv", "70": "sms_code"}
ORDER_PAID = "ORDERPAID"
ORDER_PAYING = "ORDERPAYING"
CHALLENGE_FIELD = "challengeUrl"  # modelled: how the sandbox hands over a 3-D Secure style challenge
# Card instalments ride on the consume: the payer's gateway form, or the card consume sent at the SMS
# confirmation (the SMS request before it carries none). QuickPass's app order does not carry them here.
INSTALMENT_METHODS = frozenset({"unionpay.gateway", "unionpay.card"})


def _utc_now() -> datetime:
    return datetime.now(UTC)


class UnionPayAdapter:
    channel = "unionpay"
    methods = frozenset(messages.PRODUCTS)
    confirm_methods = frozenset({"unionpay.card"})  # the SMS code of a token payment

    def __init__(self, transport: Transport, clock: Callable[[], datetime] = _utc_now,
                 order_book: OrderBook | None = None) -> None:
        self._clock = clock
        self._client = AcpClient(transport, clock)
        self._book: OrderBook = order_book or HubRecordsOrderBook()

    # -- payments --------------------------------------------------------------------------------------

    def create(self, account: ChannelAccount, request: CreateRequest) -> CreateResult:
        if request.method not in self.methods:
            raise InvalidRequest(f"method {request.method!r} is not a UnionPay method", param="method")
        credentials = UnionPayCredentials.from_account(account)
        order_id, fen = _order_id(request.attempt_id), _fen(request.amount)
        txn = txn_time(request.requested_at or self._clock())
        if request.instalments is not None and request.method not in INSTALMENT_METHODS:
            raise InvalidRequest(f"{request.method} takes no instalments here", param="instalments")
        if request.method == "unionpay.card":
            return self._create_card(credentials, request, order_id, fen, txn)
        fields = messages.consume(request.method, credentials.merchant_id, order_id, txn, fen,
                                  back_url=request.notify_url, pay_timeout=request.expires_at,
                                  front_url=request.return_url,
                                  instalments=request.instalments.count if request.instalments else None)
        if request.method == "unionpay.gateway":
            url = self._client.gateway_url(credentials, FRONT_PATH)
            signed = self._client.sign(credentials, fields)
            return CreateResult(order_ref_text(txn), ClientAction("form_post", {"url": url, "fields": signed}))
        answer = self._client.call(credentials, self._client.gateway_url(credentials, APP_PATH), fields)
        _created_or_raise(answer, "appTransReq")
        tn = answer.get("tn", "")
        if not tn:
            raise ChannelError("UnionPay accepted the app order but sent no tn", channel_code="NO_TN")
        mode = "01" if credentials.environment == "test" else "00"
        return CreateResult(order_ref_text(txn, tn), ClientAction("app_params", {"tn": tn, "mode": mode}))

    def _create_card(self, credentials: UnionPayCredentials, request: CreateRequest, order_id: str, fen: str,
                     txn: str) -> CreateResult:
        card = request.card
        if card is None:
            raise InvalidRequest("unionpay.card needs the card", param="card")
        if not card.phone:
            raise InvalidRequest("unionpay.card needs the phone number the bank holds for the card", param="card.phone")
        fields = messages.consume_sms(credentials.merchant_id, order_id, txn, fen, request.expires_at)
        try:
            fields.update(card_fields(credentials.encrypt_cert_pem, credentials.encrypt_cert_id, card, cvv=card.cvv))
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="card") from exc
        answer = self._client.call(credentials, self._client.gateway_url(credentials, BACK_PATH), fields)
        code = answer.get("respCode", "")
        if code in RETYPE_CODES or code == "60":
            raise InvalidRequest(f"UnionPay refused the card: {describe(answer)}", param="card")
        _created_or_raise(answer, "consume SMS")
        params = {"phone_masked": mask_phone(card.phone), "card_last4": card.last4}
        return CreateResult(order_ref_text(txn), ClientAction("sms_verification", params))

    def confirm(self, account: ChannelAccount, request: ConfirmRequest) -> ConfirmResult:
        if request.method != "unionpay.card":
            raise InvalidState(f"{request.method} has no confirmation step: the payer pays at UnionPay",
                               param="payment_id")
        credentials = UnionPayCredentials.from_account(account)
        txn = txn_time_of(request.channel_order_ref)
        if txn is None:
            raise InvalidState("this payment has no UnionPay order to confirm", param="payment_id")
        sms_code = request.inputs.get("sms_code", "").strip()
        if not sms_code:
            # Nothing typed (a repeat, or the hub completing on its own): answer where the order stands.
            current = self._query(credentials, request.attempt_id, txn)
            if current.outcome is PaymentOutcome.PENDING and current.raw_status in UNKNOWN_CODES:
                return ConfirmResult(status=replace(current, outcome=PaymentOutcome.PROCESSING))
            if current.outcome in (PaymentOutcome.PENDING, PaymentOutcome.NOT_FOUND):
                raise InvalidRequest("sms_code is required", param="sms_code")
            return ConfirmResult(status=current)
        if request.card is None:
            raise InvalidState("the card of this payment is no longer available", param="payment_id")
        order_id, fen = _order_id(request.attempt_id), _fen(request.amount)
        fields = messages.consume("unionpay.card", credentials.merchant_id, order_id, txn, fen,
                                  back_url=request.notify_url, pay_timeout=None,
                                  instalments=request.instalments.count if request.instalments else None)
        cvv = request.inputs.get("cvv") or request.card.cvv
        try:
            fields.update(card_fields(credentials.encrypt_cert_pem, credentials.encrypt_cert_id, request.card,
                                      sms_code=sms_code, cvv=cvv))
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="card") from exc
        # A lost or unreadable answer raises ChannelError: confirming again is safe, because the repeated
        # consume (same orderId and txnTime) is answered "duplicate" and then decided by a query.
        answer = self._client.call(credentials, self._client.gateway_url(credentials, BACK_PATH), fields)
        return self._consume_answer(credentials, request, answer, txn)

    def _consume_answer(self, credentials: UnionPayCredentials, request: ConfirmRequest, answer: Mapping[str, str],
                        txn: str) -> ConfirmResult:
        code = answer.get("respCode", "")
        if code in RETYPE_CODES:
            raise InvalidRequest(f"UnionPay refused what the payer typed: {describe(answer)}", param=RETYPE_CODES[code])
        kind = classify(code)
        if kind is Answer.ACCEPTED:
            challenge = answer.get(CHALLENGE_FIELD, "")
            status = PaymentStatus(PaymentOutcome.PROCESSING, "CHALLENGE" if challenge else code,
                                   channel_transaction_id=answer.get("queryId") or None)
            action = ClientAction("three_ds", {"redirect_url": challenge}) if challenge else None
            return ConfirmResult(status=status, action=action)
        if kind is Answer.UNKNOWN:
            return ConfirmResult(status=PaymentStatus(PaymentOutcome.PROCESSING, code or "UNKNOWN"))
        if kind in (Answer.DUPLICATE, Answer.NOT_FOUND) or code == "35":
            # Already consumed (a repeated confirm) or not in a state to consume: say where it stands.
            return ConfirmResult(status=self._query(credentials, request.attempt_id, txn))
        if kind is Answer.REFUSED:
            return ConfirmResult(status=PaymentStatus(PaymentOutcome.FAILED, code))
        raise ChannelError(f"UnionPay refused the consume message: {describe(answer)}", channel_code=code)

    def query(self, account: ChannelAccount, attempt_id: str, amount: Money, *,
              channel_order_ref: str | None = None) -> PaymentStatus:
        """``channel_order_ref`` (what ``create`` returned) carries the original txnTime the query needs."""
        credentials = UnionPayCredentials.from_account(account)
        txn = self._payment_txn_time(attempt_id, channel_order_ref)
        if txn is None:
            raise ChannelError(f"no UnionPay txnTime on record for {attempt_id}; cannot query",
                               channel_code="NO_TXN_TIME")
        return self._query(credentials, attempt_id, txn)

    def _payment_txn_time(self, attempt_id: str, channel_order_ref: str | None) -> str | None:
        """The txnTime inside the given ``channel_order_ref``; the order book only when the caller has none."""
        given = txn_time_of(channel_order_ref)
        if given is not None:
            return given
        ref = self._book.payment(attempt_id)
        return ref.txn_time if ref is not None else None

    def _query(self, credentials: UnionPayCredentials, attempt_id: str, txn: str) -> PaymentStatus:
        answer = self._query_answer(credentials, _order_id(attempt_id), txn)
        if answer is None:
            return PaymentStatus(PaymentOutcome.NOT_FOUND, "34")
        orig = answer.get("origRespCode", "")
        if answer.get("txnType") != CONSUME_TXN_TYPE:
            # Only the SMS request (txnType 77) exists so far: the payer has not confirmed.
            return PaymentStatus(PaymentOutcome.PENDING, f"TXN_{answer.get('txnType', '')[:2]}_{orig[:2]}")
        outcome = payment_outcome(orig)
        try:
            amount = fen_to_money(answer.get("txnAmt", ""), answer.get("currencyCode", ""))
        except ValueError:
            amount = None
            if outcome is PaymentOutcome.SUCCEEDED:
                raise ChannelError("UnionPay query reports a payment without a readable txnAmt") from None
        return PaymentStatus(outcome, orig or "UNREADABLE", channel_transaction_id=answer.get("queryId") or None,
                             amount=amount, paid_at=notifications.paid_at(answer) if outcome is PaymentOutcome.SUCCEEDED
                             else None)

    def _query_answer(self, credentials: UnionPayCredentials, order_id: str, txn: str) -> dict[str, str] | None:
        """The verified query answer, None when UnionPay has no such transaction (respCode 34)."""
        fields = messages.query(credentials.merchant_id, order_id, txn)
        answer = self._client.call(credentials, self._client.gateway_url(credentials, QUERY_PATH), fields)
        code = answer.get("respCode", "")
        if code == "34":
            return None
        if code != "00":
            # respCode is about the query itself; a failed query decides nothing.
            raise ChannelError(f"UnionPay query failed: {describe(answer)}", channel_code=code, retryable=True)
        return answer

    def close(self, account: ChannelAccount, attempt_id: str, *, channel_order_ref: str | None = None) -> None:
        credentials = UnionPayCredentials.from_account(account)
        txn = self._payment_txn_time(attempt_id, channel_order_ref)
        if txn is None:
            return  # neither given nor recorded by the hub, so never handed to a payer
        status = self._query(credentials, attempt_id, txn)
        if status.outcome is PaymentOutcome.SUCCEEDED:
            raise ChannelError("UnionPay order is already paid", channel_code=ORDER_PAID, refused=True)
        if status.outcome is PaymentOutcome.PENDING and status.raw_status in UNKNOWN_CODES:
            raise ChannelError("UnionPay order is being paid; close it later", channel_code=ORDER_PAYING,
                               retryable=True)

    # -- refunds ---------------------------------------------------------------------------------------

    def refund(self, account: ChannelAccount, request: RefundRequest) -> RefundStatus:
        credentials = UnionPayCredentials.from_account(account)
        if not request.channel_transaction_id:
            raise ChannelError("the payment has no UnionPay queryId to refund", channel_code="NO_QUERY_ID",
                               refused=True)
        txn, method = self._refund_txn_and_method(request)
        biz_type = messages.PRODUCTS.get(method, messages.PRODUCTS["unionpay.gateway"]).biz_type
        fields = messages.refund(credentials.merchant_id, _order_id(request.refund_id), txn,
                                 _fen(request.amount), orig_query_id=request.channel_transaction_id,
                                 biz_type=biz_type, back_url=request.notify_url)
        answer = self._client.call(credentials, self._client.gateway_url(credentials, BACK_PATH), fields)
        code = answer.get("respCode", "")
        kind = classify(code)
        if kind in (Answer.ACCEPTED, Answer.UNKNOWN, Answer.DUPLICATE):
            # 00 = accepted (the result comes by notify/query); unknown or already sent: query decides.
            return RefundStatus(RefundOutcome.PROCESSING, code or "UNKNOWN", channel_refund_id=answer.get("queryId") or None)
        if kind in (Answer.REFUSED, Answer.NOT_FOUND):
            raise ChannelError(f"UnionPay refused the refund: {describe(answer)}", channel_code=code, refused=True)
        raise ChannelError(f"UnionPay refused the refund message: {describe(answer)}", channel_code=code)

    def _refund_txn_and_method(self, request: RefundRequest) -> tuple[str, str]:
        """The refund's txnTime (its creation time, fixed before the first send) and the payment's method, from the
        request when it carries them; the order book fills in only what it lacks."""
        txn = txn_time(request.created_at) if request.created_at is not None else None
        method = request.method
        if txn is None:
            ref = self._book.refund(request.refund_id)
            if ref is None:
                raise ChannelError(f"no record of refund {request.refund_id}", channel_code="NO_TXN_TIME")
            txn, method = ref.txn_time, method or ref.method
        if method is None:
            payment = self._book.payment(request.attempt_id)
            method = payment.method if payment else None
        return txn, method or "unionpay.gateway"

    def query_refund(self, account: ChannelAccount, refund_id: str, amount: Money, *, attempt_id: str | None = None,
                     channel_refund_id: str | None = None, channel_order_ref: str | None = None,
                     created_at: datetime | None = None) -> RefundStatus:
        """A refund is found by its orderId and its own txnTime: the refund's ``created_at`` as given, else the
        order book's."""
        credentials = UnionPayCredentials.from_account(account)
        if created_at is not None:
            txn = txn_time(created_at)
        else:
            ref = self._book.refund(refund_id)
            if ref is None:
                return RefundStatus(RefundOutcome.NOT_FOUND, "NO_RECORD")
            txn = ref.txn_time
        answer = self._query_answer(credentials, _order_id(refund_id), txn)
        if answer is None:
            return RefundStatus(RefundOutcome.NOT_FOUND, "34")
        orig = answer.get("origRespCode", "")
        outcome = refund_outcome(orig)
        try:
            refunded = fen_to_money(answer.get("txnAmt", ""), answer.get("currencyCode", ""))
        except ValueError:
            refunded = None
            if outcome is RefundOutcome.SUCCEEDED:
                raise ChannelError("UnionPay query reports a refund without a readable txnAmt") from None
        return RefundStatus(outcome, orig or "UNREADABLE", channel_refund_id=answer.get("queryId") or None,
                            amount=refunded)

    # -- callbacks and statements ----------------------------------------------------------------------

    def verify_and_parse_notification(self, account: ChannelAccount, callback: InboundCallback) -> Notification:
        return notifications.parse_callback(UnionPayCredentials.from_account(account), callback)

    def acknowledge(self, ok: bool) -> CallbackReply:
        return notifications.acknowledgement(ok)

    def fetch_statement(self, account: ChannelAccount, day: str) -> Iterable[bytes]:
        return statement.fetch_files(self._client, UnionPayCredentials.from_account(account), day, self._clock())

    def parse_statement(self, account: ChannelAccount,
                        chunks: Iterable[bytes]) -> Iterator[StatementRow | StatementSummary]:
        return statement.parse_files(chunks, account.setting("merchant_id"))


def _order_id(hub_id: str) -> str:
    try:
        return to_order_id(hub_id)
    except BadOrderId as exc:
        raise InvalidRequest(f"id {hub_id!r} cannot be a UnionPay orderId: {exc}") from exc


def _fen(amount: Money) -> str:
    try:
        return money_to_fen(amount)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="amount") from exc


def _created_or_raise(answer: Mapping[str, str], what: str) -> None:
    """A create's answer: a duplicate means our orderId and txnTime already made this order (a retry of a create
    whose answer was lost); UnionPay will not send its tn or SMS again, so the hub must look and replace it."""
    if classify(answer.get("respCode", "")) is Answer.DUPLICATE:
        raise ChannelOrderExists(f"UnionPay {what}: {describe(answer)}", channel_code=answer.get("respCode"))
    _accepted_or_raise(answer, what)


def _accepted_or_raise(answer: Mapping[str, str], what: str) -> None:
    code = answer.get("respCode", "")
    kind = classify(code)
    if kind is Answer.ACCEPTED:
        return
    raise ChannelError(f"UnionPay {what}: {describe(answer)}", channel_code=code or "UNKNOWN",
                       retryable=kind is Answer.UNKNOWN, refused=kind in (Answer.REFUSED, Answer.DUPLICATE))
