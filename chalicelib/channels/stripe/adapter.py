"""``StripeAdapter``: Stripe PaymentIntents for ``stripe.card`` and Checkout Sessions for ``stripe.checkout``
behind the ``ChannelAdapter`` Protocol.

A ``stripe.checkout`` attempt's ``channel_order_ref`` is its session id (``cs_...``): query and close read and expire
the session (``checkout``); everything after the payment (refunds, statements) goes through the intent the
session made, exactly as for ``stripe.card``.

The intent id is the ``channel_order_ref`` (and the ``channel_transaction_id``); our attempt id rides along
as ``metadata[attempt_id]``. ``query``/``close`` read the intent by the id the caller passes; only a caller with
nothing but our attempt id makes them search for it (``lookup``), and then a miss is never taken for "closed".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
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
from chalicelib.channels.stripe import checkout, intents, lookup, notifications, statement, states
from chalicelib.channels.stripe.amounts import to_wire
from chalicelib.channels.stripe.client import StripeClient, json_object
from chalicelib.channels.stripe.credentials import StripeCredentials
from chalicelib.channels.stripe.reports import ReportFetcher
from chalicelib.config.accounts import ChannelAccount
from chalicelib.domain.errors import ChannelError, InvalidRequest, InvalidState
from chalicelib.domain.money import Money

ORDER_PAID = "ORDERPAID"  # the code status_sync.close_attempt knows: paid before it could be closed
# Every intent read or moved by the hub comes back with its latest charge, whose ``created`` dates the payment.
EXPAND_CHARGE: Mapping[str, Any] = {"expand": ["latest_charge"]}
CANCEL_PARAMS: Mapping[str, Any] = {"cancellation_reason": "abandoned"}
_RESOURCE_MISSING = "resource_missing"
REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
_NOT_CANCELABLE = "payment_intent_unexpected_state"
_INTENT_ID = re.compile(r"^pi_[A-Za-z0-9]{1,250}$")
_STRIPE_REFUND_ID = re.compile(r"^(re|pyr)_[A-Za-z0-9]{1,250}$")
CONFIRM_ROUNDS_MAX = 5


def _segment(value: str) -> str:
    return quote(value, safe="")


def _intent_id(ref: str | None) -> str | None:
    """A PaymentIntent id the caller passed (``pi_...``), or None when it passed none (or something else)."""
    return ref if ref is not None and _INTENT_ID.match(ref) else None


def _check_intent(intent: Mapping[str, Any], attempt_id: str, *, intent_id: str, amount: int | None = None,
                  currency: str | None = None) -> None:
    """Stripe's answers are authenticated by TLS to api.stripe.com; what they say must still be about what we
    asked: the intent we named, carrying our attempt id, and (for the one we just made) our amount."""
    if intent.get("id") != intent_id or not lookup.has_metadata(intent, "attempt_id", attempt_id):
        raise ChannelError(f"PaymentIntent {intent_id} answer is not the attempt {attempt_id}'s intent",
                           channel_code="ATTEMPT_MISMATCH")
    if amount is not None and (intent.get("amount") != amount or intent.get("currency") != currency):
        raise ChannelError(f"PaymentIntent {intent_id} was made for another amount than asked",
                           channel_code="AMOUNT_MISMATCH")


def _parsed(parse: Callable[[Mapping[str, Any]], Any], obj: Mapping[str, Any]) -> Any:
    try:
        return parse(obj)
    except ValueError as exc:
        raise ChannelError(f"Stripe answer has a bad amount: {exc}") from exc


class StripeAdapter:
    channel = "stripe"
    methods = intents.METHODS | {checkout.METHOD}
    confirm_methods = intents.METHODS  # a PaymentIntent confirmed or captured; a Checkout Session completes at Stripe

    def __init__(self, transport: Transport, *, report_fetcher: ReportFetcher | None = None) -> None:
        self._client = StripeClient(transport)
        self._reports = report_fetcher or ReportFetcher(self._client)

    # -- payments ------------------------------------------------------------------------------------------

    def create(self, account: ChannelAccount, request: CreateRequest) -> CreateResult:
        if request.method not in self.methods:
            raise InvalidRequest(f"method {request.method!r} is not a Stripe method", param="method")
        credentials = StripeCredentials.from_account(account)
        if request.method == checkout.METHOD:
            return self._create_session(credentials, request)
        params = intents.create_params(request)
        # A decline at confirmation is a 402 card_error: a definite refusal, nothing is recorded.
        intent = self._client.call_json(credentials, "POST", "/v1/payment_intents", params,
                                        idempotency_key=intents.idempotency_key(request.attempt_id, "create"))
        intent_id = intent.get("id")
        if not isinstance(intent_id, str) or not intent_id.startswith("pi_"):
            raise ChannelError("Stripe answered a PaymentIntent create without an intent id")
        _check_intent(intent, request.attempt_id, intent_id=intent_id, amount=params["amount"],
                      currency=params["currency"])
        return CreateResult(channel_order_ref=intent_id, action=intents.client_action(credentials, intent))

    def _create_session(self, credentials: StripeCredentials, request: CreateRequest) -> CreateResult:
        """``POST /v1/checkout/sessions`` under the attempt's key; the payer is sent to the session's ``url``."""
        params = checkout.create_params(request)
        session = self._client.call_json(credentials, "POST", "/v1/checkout/sessions", params,
                                         idempotency_key=intents.idempotency_key(request.attempt_id, "checkout"))
        price = params["line_items"][0]["price_data"]
        session_id = checkout.check_session(session, request.attempt_id, amount=price["unit_amount"],
                                            currency=price["currency"])
        return CreateResult(channel_order_ref=session_id, action=checkout.redirect_action(session))

    def _session(self, credentials: StripeCredentials, attempt_id: str, session_id: str) -> dict[str, Any] | None:
        try:
            session = self._client.call_json(credentials, "GET", f"/v1/checkout/sessions/{_segment(session_id)}")
        except ChannelError as exc:
            if exc.refused and exc.channel_code == _RESOURCE_MISSING:
                return None
            raise
        checkout.check_session(session, attempt_id, session_id=session_id)
        return session

    def _session_status(self, credentials: StripeCredentials, attempt_id: str, session_id: str) -> PaymentStatus:
        """A paid session answers with its intent's status (read by id, with its charge); an unpaid one by itself."""
        session = self._session(credentials, attempt_id, session_id)
        if session is None:
            return PaymentStatus(outcome=PaymentOutcome.NOT_FOUND, raw_status=_RESOURCE_MISSING)
        intent_id = checkout.paid_intent_id(session)
        if intent_id is None:
            unpaid: PaymentStatus = _parsed(checkout.unpaid_status, session)
            return unpaid
        intent = self._intent(credentials, attempt_id, intent_id)
        if intent is None:
            raise ChannelError(f"Checkout Session {session_id} names intent {intent_id}, which Stripe does not have",
                               channel_code=_RESOURCE_MISSING, retryable=True)
        status: PaymentStatus = _parsed(states.payment_status, intent)
        return status

    def _expire_session(self, credentials: StripeCredentials, attempt_id: str, session_id: str) -> None:
        """``POST /v1/checkout/sessions/{id}/expire``: only an open session can be expired. A paid one answers
        ``ORDERPAID``; one already expired (or that Stripe does not have) is closed."""
        session = self._session(credentials, attempt_id, session_id)
        if session is None or session.get("status") == "expired":
            return
        if session.get("status") == "open":
            try:
                self._client.call_json(credentials, "POST", f"/v1/checkout/sessions/{_segment(session_id)}/expire",
                                       idempotency_key=intents.idempotency_key(attempt_id, "expire"))
                return
            except ChannelError as exc:
                if not exc.refused:
                    raise
            # The payer finished it between our read and the expire: say what it is now.
            session = self._session(credentials, attempt_id, session_id)
            if session is None or session.get("status") == "expired":
                return
        if checkout.paid_intent_id(session) is not None:
            raise ChannelError(f"Checkout Session {session_id} was paid", channel_code=ORDER_PAID)
        raise ChannelError(f"Checkout Session {session_id} is complete and its payment is processing; it cannot be "
                           "closed now", channel_code="processing", retryable=True)

    def query(self, account: ChannelAccount, attempt_id: str, amount: Money, *,
              channel_order_ref: str | None = None) -> PaymentStatus:
        """``GET /v1/payment_intents/{channel_order_ref}``; a search by our attempt id only when no ``pi_`` id is given.
        A ``cs_`` reference is a Checkout Session: read it (and the intent it made, once paid)."""
        credentials = StripeCredentials.from_account(account)
        if checkout.is_session_id(channel_order_ref):
            assert channel_order_ref is not None
            return self._session_status(credentials, intents.check_our_id(attempt_id, "attempt_id"), channel_order_ref)
        intent = self._intent(credentials, intents.check_our_id(attempt_id, "attempt_id"), channel_order_ref)
        if intent is None:
            return PaymentStatus(outcome=PaymentOutcome.NOT_FOUND, raw_status=_RESOURCE_MISSING)
        status: PaymentStatus = _parsed(states.payment_status, intent)
        return status

    def close(self, account: ChannelAccount, attempt_id: str, *, channel_order_ref: str | None = None) -> None:
        """Cancel the intent, read by the given id. Succeeded -> ``ChannelError(channel_code="ORDERPAID")``; one still
        processing cannot be cancelled yet (retryable). An intent Stripe says it does not have (read by id: strongly
        consistent) counts as closed, nobody can pay it; one a search merely failed to find is *not* (retryable):
        only the channel's own answer closes an attempt."""
        credentials = StripeCredentials.from_account(account)
        attempt_id = intents.check_our_id(attempt_id, "attempt_id")
        if checkout.is_session_id(channel_order_ref):
            assert channel_order_ref is not None
            self._expire_session(credentials, attempt_id, channel_order_ref)
            return
        intent = self._intent(credentials, attempt_id, channel_order_ref)
        if intent is None:
            if _intent_id(channel_order_ref) is not None:
                return
            raise ChannelError(f"no PaymentIntent found for {attempt_id} by search; cannot confirm it is closed",
                               channel_code=_RESOURCE_MISSING, retryable=True)
        if intent.get("status") == "canceled":
            return
        self._raise_unless_cancelable(intent)
        intent_path = f"/v1/payment_intents/{_segment(str(intent['id']))}"
        try:
            self._client.call_json(credentials, "POST", f"{intent_path}/cancel", CANCEL_PARAMS,
                                   idempotency_key=intents.idempotency_key(attempt_id, "cancel"))
        except ChannelError as exc:
            if exc.channel_code != _NOT_CANCELABLE:
                raise
            # It moved on between our read and the cancel (the payer was faster): say what it is now.
            current = self._client.call_json(credentials, "GET", intent_path)
            if current.get("status") != "canceled":
                self._raise_unless_cancelable(current)
                raise

    def _intent(self, credentials: StripeCredentials, attempt_id: str,
                channel_order_ref: str | None) -> dict[str, Any] | None:
        """The attempt's intent as Stripe has it now: read by the given id; without one, found by search and then read
        by id all the same (search results lag behind the intent). None when Stripe has no such intent."""
        intent_id = _intent_id(channel_order_ref)
        if intent_id is None:
            found = lookup.find_intent(self._client, credentials, attempt_id)
            if found is None:
                return None
            intent_id = str(found["id"])
        try:
            intent = self._client.call_json(credentials, "GET", f"/v1/payment_intents/{_segment(intent_id)}",
                                            EXPAND_CHARGE)
        except ChannelError as exc:
            if exc.refused and exc.channel_code == _RESOURCE_MISSING:
                return None
            raise
        _check_intent(intent, attempt_id, intent_id=intent_id)
        return intent

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
        intent = self._client.call_json(credentials, "GET", intent_path, EXPAND_CHARGE)
        attempt_id = intents.check_our_id(request.attempt_id, "attempt_id")
        _check_intent(intent, attempt_id, intent_id=request.channel_order_ref)
        if intent.get("status") == "requires_confirmation":
            params = {"return_url": request.return_url} if request.return_url else {}
            intent = self._moved(credentials, f"{intent_path}/confirm", {**params, **EXPAND_CHARGE}, attempt_id,
                                 "confirm", intent_path)
        elif intent.get("status") == "requires_capture":
            amount = {"amount_to_capture": to_wire(request.amount), **EXPAND_CHARGE}
            intent = self._moved(credentials, f"{intent_path}/capture", amount, attempt_id, "capture", intent_path)
        _check_intent(intent, attempt_id, intent_id=request.channel_order_ref)
        status: PaymentStatus = _parsed(states.payment_status, intent)
        if status.outcome is PaymentOutcome.FAILED and intent.get("status") != "canceled":
            return ConfirmResult(status=self._cancel_declined(credentials, intent_path, attempt_id, status))
        return ConfirmResult(status=status, action=intents.three_ds_action(intent))

    def _cancel_declined(self, credentials: StripeCredentials, intent_path: str, attempt_id: str,
                         declined: PaymentStatus) -> PaymentStatus:
        """A manual-confirmation intent that was declined waits for a new payment method, which only the hub could
        give it. Cancel it so it can never be charged, and only then report the decline; if it moved on instead,
        report where it is (a FAILED answer is never given for an intent that is still payable)."""
        try:
            intent = self._client.call_json(credentials, "POST", f"{intent_path}/cancel", CANCEL_PARAMS,
                                            idempotency_key=intents.idempotency_key(attempt_id, "cancel"))
        except ChannelError as exc:
            if exc.channel_code != _NOT_CANCELABLE:
                raise
            intent = self._client.call_json(credentials, "GET", intent_path, EXPAND_CHARGE)
        _check_intent(intent, attempt_id, intent_id=intent_path.rsplit("/", 1)[-1])
        if intent.get("status") == "canceled":
            return declined
        current: PaymentStatus = _parsed(states.payment_status, intent)
        if current.outcome is PaymentOutcome.FAILED:
            raise ChannelError(f"declined PaymentIntent is {intent.get('status')}, not cancelled; try again",
                               channel_code=_NOT_CANCELABLE, retryable=True)
        return current

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
                return self._client.call_json(credentials, "GET", intent_path, EXPAND_CHARGE)
            if response.headers.get("idempotent-replayed") != "true":
                return json_object(response.body)
            current = self._client.call_json(credentials, "GET", intent_path, EXPAND_CHARGE)
            if current.get("status") != waiting_for:
                return current
        raise ChannelError(f"PaymentIntent still waits for {operation} after {CONFIRM_ROUNDS_MAX} rounds",
                           channel_code="TOO_MANY_ROUNDS")

    # -- refunds -------------------------------------------------------------------------------------------

    def check_amount(self, amount: Money) -> None:
        """The hub asks before reserving a refund: the same conversion ``refund`` makes, without sending anything."""
        try:
            to_wire(amount)
        except ValueError as exc:
            raise InvalidRequest(f"Stripe cannot take this amount: {exc}", param="amount") from exc

    def refund(self, account: ChannelAccount, request: RefundRequest) -> RefundStatus:
        credentials = StripeCredentials.from_account(account)
        refund_id = intents.check_our_id(request.refund_id, "refund_id")
        intent_id = _intent_id(request.channel_transaction_id) or _intent_id(request.channel_order_ref)
        if intent_id is None:
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
        if (not lookup.has_metadata(refund, "refund_id", refund_id) or refund.get("payment_intent") != intent_id
                or refund.get("amount") != amount):
            raise ChannelError(f"Stripe answered refund {refund_id} with another refund, intent or amount",
                               channel_code="REFUND_MISMATCH")
        status: RefundStatus = _parsed(states.refund_status, refund)
        return status

    def query_refund(self, account: ChannelAccount, refund_id: str, amount: Money, *, attempt_id: str | None = None,
                     channel_refund_id: str | None = None, channel_order_ref: str | None = None,
                     created_at: datetime | None = None) -> RefundStatus:
        """``GET /v1/refunds/{channel_refund_id}``; without Stripe's refund id, the refunds of the given intent
        (``channel_order_ref``) are listed; only a caller with neither makes it page through the account's refunds."""
        credentials = StripeCredentials.from_account(account)
        refund_id = intents.check_our_id(refund_id, "refund_id")
        stripe_refund_id = channel_refund_id if channel_refund_id and _STRIPE_REFUND_ID.match(channel_refund_id) else None
        if stripe_refund_id is not None:
            refund = self._refund(credentials, stripe_refund_id, refund_id)
        else:
            refund = lookup.find_refund(self._client, credentials, refund_id, payment_intent=_intent_id(channel_order_ref))
        if refund is None:
            return RefundStatus(outcome=RefundOutcome.NOT_FOUND, raw_status=_RESOURCE_MISSING)
        status: RefundStatus = _parsed(states.refund_status, refund)
        return status

    def _refund(self, credentials: StripeCredentials, stripe_refund_id: str, refund_id: str) -> dict[str, Any] | None:
        try:
            refund = self._client.call_json(credentials, "GET", f"/v1/refunds/{_segment(stripe_refund_id)}")
        except ChannelError as exc:
            if exc.refused and exc.channel_code == _RESOURCE_MISSING:
                return None
            raise
        if not lookup.has_metadata(refund, "refund_id", refund_id):
            raise ChannelError(f"Stripe refund {stripe_refund_id} is not our refund {refund_id}",
                               channel_code="REFUND_MISMATCH")
        return refund

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
