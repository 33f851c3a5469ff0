"""Checkout Sessions: Stripe's own hosted payment page, in the sandbox's books.

Life of a session (``mode=payment``): ``open`` -> the payer pays on the page at ``url`` -> ``complete`` with
``payment_status=paid``; or ``open`` -> ``expire`` (or its ``expires_at`` passes) -> ``expired``. Only an open
session can be expired. The PaymentIntent is made when the payer pays (carrying ``payment_intent_data``'s metadata
and description), charged at once, and the events go out in Stripe's order: ``payment_intent.created``,
``charge.succeeded``, ``payment_intent.succeeded``, then ``checkout.session.completed``. A session that expires sends
``checkout.session.expired``. Everything happens under the books' one lock.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest, NotFound
from .records import TEST_CARDS, CheckoutSession, Intent
from .resources import checkout_session_json, intent_json
from .state import IllegalTransition, SandboxState, token

# Stripe lets ``expires_at`` be 30 minutes to 24 hours after creation; 24 hours when it is not given.
EXPIRES_MIN_S, EXPIRES_MAX_S = 30 * 60, 24 * 3600
PAYER_CARD = "pm_card_visa"  # what the sandbox's payer types into the page


@dataclass(frozen=True, slots=True)
class SessionParams:
    amount_total: int
    currency: str
    product_name: str
    success_url: str
    cancel_url: str | None
    client_reference_id: str | None
    metadata: dict[str, str]
    intent_metadata: dict[str, str]
    intent_description: str | None
    expires_at: int | None


class CheckoutBook:
    def __init__(self, state: SandboxState) -> None:
        self._state = state
        self.sessions: dict[str, CheckoutSession] = {}

    def json(self, session: CheckoutSession) -> dict[str, Any]:
        return checkout_session_json(session, self._state.base_url)

    def create(self, account: str, params: SessionParams) -> CheckoutSession:
        now = int(time.time())
        expires_at = params.expires_at or now + EXPIRES_MAX_S
        if not now + EXPIRES_MIN_S <= expires_at <= now + EXPIRES_MAX_S:
            raise InvalidRequest("expires_at must be between 30 minutes and 24 hours from now", param="expires_at")
        with self._state._lock:
            session = CheckoutSession(
                id=token("cs_test_a1", 56), account=account, amount_total=params.amount_total,
                currency=params.currency, created=now, expires_at=expires_at, success_url=params.success_url,
                cancel_url=params.cancel_url, client_reference_id=params.client_reference_id,
                metadata=dict(params.metadata), intent_metadata=dict(params.intent_metadata),
                intent_description=params.intent_description, product_name=params.product_name)
            self.sessions[session.id] = session
            return copy.deepcopy(session)

    def get(self, account: str, session_id: str) -> CheckoutSession:
        events: list[tuple[str, str, dict[str, Any]]] = []
        with self._state._lock:
            session = self._session(account, session_id)
            self._lapse(session, events)
            snapshot = copy.deepcopy(session)
        self._state._flush(events)
        return snapshot

    def expire(self, account: str, session_id: str) -> CheckoutSession:
        events: list[tuple[str, str, dict[str, Any]]] = []
        with self._state._lock:
            session = self._session(account, session_id)
            self._lapse(session, events)
            if session.status != "open":
                raise InvalidRequest(f"Only Checkout Sessions with a status in [\"open\"] can be expired; this one "
                                     f"is {session.status}.", code="checkout_session_unexpected_state")
            self._end(session, events)
            snapshot = copy.deepcopy(session)
        self._state._flush(events)
        return snapshot

    def _session(self, account: str | None, session_id: str) -> CheckoutSession:
        session = self.sessions.get(session_id)
        if session is None or (account is not None and session.account != account):
            raise NotFound(f"No such checkout.session: '{session_id}'", param="session")
        return session

    def _lapse(self, session: CheckoutSession, events: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Lock held. A session past its ``expires_at`` is expired the moment anyone looks."""
        if session.status == "open" and session.expires_at <= time.time():
            self._end(session, events)

    def _end(self, session: CheckoutSession, events: list[tuple[str, str, dict[str, Any]]]) -> None:
        session.status = "expired"
        events.append((session.account, "checkout.session.expired", self.json(session)))

    # -- the payer on the hosted page -------------------------------------------------------------------------

    def open_for_attempt(self, attempt_id: str) -> str | None:
        """The newest open session whose metadata names this attempt (what ``/_sandbox/pay`` pays)."""
        with self._state._lock:
            found = [s.id for s in self.sessions.values()
                     if s.metadata.get("attempt_id") == attempt_id and s.status == "open"]
            return found[-1] if found else None

    def for_payer(self, session_id: str) -> CheckoutSession | None:
        with self._state._lock:
            found = self.sessions.get(session_id)
            return copy.deepcopy(found) if found else None

    def pay(self, session_id: str) -> CheckoutSession:
        """The payer types a card that pays and presses Pay: the intent is made, charged, and the session done."""
        events: list[tuple[str, str, dict[str, Any]]] = []
        state = self._state
        with state._lock:
            try:
                session = self._session(None, session_id)
            except NotFound as exc:
                raise IllegalTransition(f"no Checkout Session {session_id}") from exc
            self._lapse(session, events)
            if session.status != "open":
                state._flush(events)
                raise IllegalTransition(f"Checkout Session {session_id} is {session.status}: it cannot be paid")
            intent = Intent(
                id=token("pi_"), account=session.account, amount=session.amount_total, currency=session.currency,
                client_secret="", created=int(time.time()), description=session.intent_description,
                metadata=dict(session.intent_metadata), payment_method_types=["card"],
                confirmation_method="automatic", capture_method="automatic", payment_method=PAYER_CARD)
            intent.client_secret = f"{intent.id}_secret_{token('', 25)}"
            state.intents[intent.id] = intent
            state._intent_seen_at[intent.id] = time.monotonic()
            events.append((session.account, "payment_intent.created", intent_json(intent)))
            state._charge(intent, TEST_CARDS[PAYER_CARD], events)
            session.status, session.payment_status, session.payment_intent = "complete", "paid", intent.id
            events.append((session.account, "checkout.session.completed", self.json(session)))
            snapshot = copy.deepcopy(session)
        state._flush(events)
        return snapshot
