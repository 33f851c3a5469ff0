"""``StripeAdapter``: Stripe PaymentIntents for ``stripe.card`` behind the ``ChannelAdapter`` Protocol.

The intent id is the ``channel_order_ref`` (and the ``channel_transaction_id``); our attempt id rides along
as ``metadata[attempt_id]`` and is how ``query``/``close`` find the intent (see ``lookup``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

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
from chalicelib.channels.stripe import intents, lookup, notifications, statement, states
from chalicelib.channels.stripe.amounts import to_wire
from chalicelib.channels.stripe.client import StripeClient, json_object
from chalicelib.channels.stripe.credentials import StripeCredentials
from chalicelib.channels.stripe.reports import ReportFetcher
from chalicelib.config.accounts import ChannelAccount
from chalicelib.domain.errors import ChannelError, InvalidRequest, InvalidState
from chalicelib.domain.money import Money

ORDER_PAID = "ORDERPAID"  # the code status_sync.close_attempt knows: paid before it could be closed
REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
_NOT_CANCELABLE = "payment_intent_unexpected_state"
CONFIRM_ROUNDS_MAX = 5


def _segment(value: str) -> str:
    return quote(value, safe="")


def _parsed(parse: Callable[[Mapping[str, Any]], Any], obj: Mapping[str, Any]) -> Any:
    try:
        return parse(obj)
    except ValueError as exc:
        raise ChannelError(f"Stripe answer has a bad amount: {exc}") from exc


class StripeAdapter:
    channel = "stripe"
    methods = intents.METHODS

    def __init__(self, transport: Transport, *, report_fetcher: ReportFetcher | None = None) -> None:
        self._client = StripeClient(transport)
        self._reports = report_fetcher or ReportFetcher(self._client)

    # -- payments ------------------------------------------------------------------------------------------

    def create(self, account: ChannelAccount, request: CreateRequest) -> CreateResult:
        if request.method not in self.methods:
            raise InvalidRequest(f"method {request.method!r} is not a Stripe method", param="method")
        credentials = StripeCredentials.from_account(account)
        params = intents.create_params(request)
        # A decline at confirmation is a 402 card_error: a definite refusal, nothing is recorded.
        intent = self._client.call_json(credentials, "POST", "/v1/payment_intents", params,
                                        idempotency_key=intents.idempotency_key(request.attempt_id, "create"))
        intent_id = intent.get("id")
        if not isinstance(intent_id, str) or not intent_id.startswith("pi_"):
            raise ChannelError("Stripe answered a PaymentIntent create without an intent id")
        return CreateResult(channel_order_ref=intent_id, action=intents.client_action(credentials, intent))

    def query(self, account: ChannelAccount, attempt_id: str, amount: Money) -> PaymentStatus:
        credentials = StripeCredentials.from_account(account)
        intent = lookup.find_intent(self._client, credentials, intents.check_our_id(attempt_id, "attempt_id"))
        if intent is None:
            return PaymentStatus(outcome=PaymentOutcome.NOT_FOUND, raw_status="resource_missing")
        status: PaymentStatus = _parsed(states.payment_status, intent)
        return status

    def close(self, account: ChannelAccount, attempt_id: str) -> None:
        """Cancel the intent. Succeeded -> ``ChannelError(channel_code="ORDERPAID")``; an intent Stripe does not
        have counts as closed (nobody can pay it); one still processing cannot be cancelled yet (retryable)."""
        credentials = StripeCredentials.from_account(account)
        intent = lookup.find_intent(self._client, credentials, intents.check_our_id(attempt_id, "attempt_id"))
        if intent is None or intent.get("status") == "canceled":
            return
        self._raise_unless_cancelable(intent)
        path = f"/v1/payment_intents/{_segment(str(intent['id']))}/cancel"
        try:
            self._client.call_json(credentials, "POST", path, {"cancellation_reason": "abandoned"},
                                   idempotency_key=intents.idempotency_key(attempt_id, "cancel"))
        except ChannelError as exc:
            if exc.channel_code != _NOT_CANCELABLE:
                raise
            # It moved on between our read and the cancel (the payer was faster): say what it is now.
            current = self._client.call_json(credentials, "GET", f"/v1/payment_intents/{_segment(str(intent['id']))}")
            if current.get("status") != "canceled":
                self._raise_unless_cancelable(current)
                raise

    @staticmethod
    def _raise_unless_cancelable(intent: Mapping[str, Any]) -> None:
        status = intent.get("status")
        if status == "succeeded":
            raise ChannelError(f"PaymentIntent {intent.get('id')} already succeeded", channel_code=ORDER_PAID)
        if status == "processing":
            raise ChannelError(f"PaymentIntent {intent.get('id')} is processing; it cannot be cancelled now",
                               channel_code="processing", retryable=True)

    def confirm(self, account: ChannelAccount, request: ConfirmRequest) -> ConfirmResult:
        """Finish what the payer started: confirm after 3-D Secure, capture an authorisation. Safe to repeat:
        the intent is read first and only moved when it waits for us; otherwise its current status is the answer."""
        if request.method not in self.methods:
            raise InvalidRequest(f"method {request.method!r} is not a Stripe method", param="method")
        if not request.channel_order_ref.startswith("pi_"):
            raise InvalidState("the attempt has no Stripe PaymentIntent to confirm", param="payment_id")
        credentials = StripeCredentials.from_account(account)
        intent_path = f"/v1/payment_intents/{_segment(request.channel_order_ref)}"
        intent = self._client.call_json(credentials, "GET", intent_path)
        attempt_id = intents.check_our_id(request.attempt_id, "attempt_id")
        if not lookup.has_metadata(intent, "attempt_id", attempt_id):
            raise ChannelError("PaymentIntent does not belong to this attempt", channel_code="ATTEMPT_MISMATCH")
        if intent.get("status") == "requires_confirmation":
            params = {"return_url": request.return_url} if request.return_url else {}
            intent = self._moved(credentials, f"{intent_path}/confirm", params, attempt_id, "confirm", intent_path)
        elif intent.get("status") == "requires_capture":
            amount = {"amount_to_capture": to_wire(request.amount)}
            intent = self._moved(credentials, f"{intent_path}/capture", amount, attempt_id, "capture", intent_path)
        status: PaymentStatus = _parsed(states.payment_status, intent)
        return ConfirmResult(status=status, action=intents.three_ds_action(intent))

    def _moved(self, credentials: StripeCredentials, path: str, params: Mapping[str, Any], attempt_id: str,
               operation: str, intent_path: str) -> dict[str, Any]:
        """POST the confirm/capture. Its key is ``payhub:<attempt>:<operation>``; should Stripe replay an earlier
        round's answer (a second 3-D Secure round brought the intent back to us), the next round's key
        (``...:<operation>:2``, ``:3``...) is used, so concurrent callers still agree on one key per round."""
        waiting_for = "requires_confirmation" if operation == "confirm" else "requires_capture"
        for round_no in range(1, CONFIRM_ROUNDS_MAX + 1):
            key = intents.idempotency_key(attempt_id, operation if round_no == 1 else f"{operation}:{round_no}")
            try:
                response = self._client.call(credentials, "POST", path, params, idempotency_key=key)
            except ChannelError as exc:
                if exc.retryable:
                    raise
                # A decline (402) or an intent that moved on (a concurrent confirm won): the intent says where it is.
                return self._client.call_json(credentials, "GET", intent_path)
            if response.headers.get("idempotent-replayed") != "true":
                return json_object(response.body)
            current = self._client.call_json(credentials, "GET", intent_path)
            if current.get("status") != waiting_for:
                return current
        raise ChannelError(f"PaymentIntent still waits for {operation} after {CONFIRM_ROUNDS_MAX} rounds",
                           channel_code="TOO_MANY_ROUNDS")

    # -- refunds -------------------------------------------------------------------------------------------

    def refund(self, account: ChannelAccount, request: RefundRequest) -> RefundStatus:
        credentials = StripeCredentials.from_account(account)
        refund_id = intents.check_our_id(request.refund_id, "refund_id")
        intent_id = request.channel_transaction_id
        if not intent_id or not intent_id.startswith("pi_"):
            found = lookup.find_intent(self._client, credentials, intents.check_our_id(request.attempt_id, "attempt_id"))
            if found is None:
                raise ChannelError(f"no PaymentIntent for attempt {request.attempt_id}", channel_code="resource_missing",
                                   refused=True)
            intent_id = str(found["id"])
        try:
            amount = to_wire(request.amount)
        except ValueError as exc:
            raise InvalidRequest(f"Stripe cannot refund this amount: {exc}", param="amount") from exc
        params: dict[str, Any] = {"payment_intent": intent_id, "amount": amount,
                                  "metadata": {"refund_id": refund_id, "attempt_id": request.attempt_id}}
        if request.reason in REFUND_REASONS:
            params["reason"] = request.reason  # free text is ours to keep; Stripe takes only its three reasons
        refund = self._client.call_json(credentials, "POST", "/v1/refunds", params,
                                        idempotency_key=intents.idempotency_key(refund_id, "refund"))
        status: RefundStatus = _parsed(states.refund_status, refund)
        return status

    def query_refund(self, account: ChannelAccount, refund_id: str, amount: Money) -> RefundStatus:
        credentials = StripeCredentials.from_account(account)
        refund = lookup.find_refund(self._client, credentials, intents.check_our_id(refund_id, "refund_id"))
        if refund is None:
            return RefundStatus(outcome=RefundOutcome.NOT_FOUND, raw_status="resource_missing")
        status: RefundStatus = _parsed(states.refund_status, refund)
        return status

    # -- callbacks -----------------------------------------------------------------------------------------

    def verify_and_parse_notification(self, account: ChannelAccount, callback: InboundCallback) -> list[Notification]:
        return notifications.parse_event(StripeCredentials.from_account(account), callback)

    def acknowledge(self, ok: bool) -> CallbackReply:
        return notifications.acknowledgement(ok)

    # -- statements ----------------------------------------------------------------------------------------

    def fetch_statement(self, account: ChannelAccount, day: str) -> Iterable[bytes]:
        return self._reports.fetch(StripeCredentials.from_account(account), day)

    def parse_statement(self, account: ChannelAccount,
                        chunks: Iterable[bytes]) -> Iterator[StatementRow | StatementSummary]:
        return statement.parse_balance_reports(chunks)
