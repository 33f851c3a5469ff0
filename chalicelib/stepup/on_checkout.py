"""Step-up on the hosted checkout page: the payer of a session whose attempt risk control challenged proves who
they are on the page itself, through the same challenge code as the merchant API (``stepup/flow.py``).

Which step-ups are offered: those the firing rules accept (``risk/compiled.py``) that this payer can use here —
  webauthn  the payer (``payer.user_id``) has a platform authenticator registered with this merchant; registering
            one is the merchant's business (its own signed-in pages, ``/v1/payers/{user_id}/authenticators``):
            a payer being challenged cannot enrol a new one here, or anyone could pass with their own
  sms       the code goes only to the number the merchant vouches for: the session's ``step_up_phone``. A number
            typed on the page (the card form's phone included) is chosen by whoever holds the page, so a code sent
            there proves nothing: without a ``step_up_phone`` SMS is not offered
  face      face verification is configured (the provider's settings in the rule document)
A challenge none of whose step-ups is usable is refused (stepup/hooks.py ``assess_attempt``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.domain.errors import InvalidState, NotFound, StepUpFailed
from chalicelib.domain.models import Merchant, Payment
from chalicelib.domain.states import PaymentState
from chalicelib.risk import store
from chalicelib.stepup import flow
from chalicelib.stepup import records as stepup_records
from chalicelib.storage import config_repo, state_repo

if TYPE_CHECKING:
    from chalicelib.checkout.sessions import CheckoutSession

log = logging.getLogger(__name__)


def awaiting(payment: Payment) -> bool:
    """The payment waits for its payer's step-up: held at its attempt, or (a card's confirm) before the bank's
    confirmation goes ahead."""
    step_up = payment.step_up or {}
    if step_up.get("status") not in ("required", "started"):
        return False
    return payment.status is PaymentState.REQUIRES_STEP_UP or (
        step_up.get("operation") == "confirm" and payment.status is PaymentState.PENDING)


def usable(session: CheckoutSession) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
    """For ``next_attempt``: of the step-ups a challenge offers, those this session's payer can use on the page."""

    def choose(offered: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(m for m in offered if _can_use(session, m))

    return choose


def _can_use(session: CheckoutSession, method: str) -> bool:
    if method == "webauthn":
        user_id = session.payer.get("user_id")
        return bool(user_id) and flow.has_authenticator(session.merchant_id, str(user_id))
    if method == "sms":
        return bool(session.step_up_phone)  # never a number typed on the page (see the module's docstring)
    return bool(store.active().document.providers.face_base_url)


def _merchant(session: CheckoutSession) -> Merchant:
    merchant = config_repo.get_merchant(session.merchant_id)
    if merchant is None:
        raise NotFound("the merchant of this session is gone", param="session_id")
    return merchant


def _payment(session: CheckoutSession) -> Payment:
    payment = state_repo.get_payment(session.payment_id)
    if payment is None or not awaiting(payment):
        raise InvalidState("this checkout is not waiting for a verification", param="method")
    return payment


def start(session: CheckoutSession, method: str, *, return_to: str) -> dict[str, Any]:
    """Start an SMS or face challenge (WebAuthn: ``webauthn_options``); answers the challenge's ``action``."""
    payment = _payment(session)
    if method == "sms" and not session.step_up_phone:
        raise InvalidState("this checkout has no phone number from the merchant for a code", param="method")
    phone = session.step_up_phone if method == "sms" else None
    return flow.start(_merchant(session), payment.payment_id, method, phone=phone, return_to=return_to)


def webauthn_options(session: CheckoutSession) -> dict[str, Any]:
    """Request options for ``navigator.credentials.get``: a challenge bound to this payment, amount and merchant."""
    payment = _payment(session)
    return flow.start(_merchant(session), payment.payment_id, "webauthn")


def verify(session: CheckoutSession, *, code: str | None = None, credential: dict[str, Any] | None = None
           ) -> Payment:
    """Answer the open challenge; passing a held attempt's step-up asks its channel (flow._resume_create)."""
    payment = _payment(session)
    return flow.verify(_merchant(session), payment.payment_id, code=code, assertion=credential)


def why_refused(session: CheckoutSession) -> str:
    """After a refused answer, what to tell the payer: ``failed`` (no tries left), ``expired`` or ``wrong``."""
    payment = state_repo.get_payment(session.payment_id)
    if payment is not None and payment.status is PaymentState.FAILED:
        return "failed"
    challenge = stepup_records.get_challenge(session.payment_id) or {}
    if challenge.get("status") == "expired":
        return "expired"
    return "wrong"


def face_returned(session: CheckoutSession) -> None:
    """The payer is back from the face provider's page: ask it for the result now. Not finished yet, wrong or
    expired: the page shows the step-up as it stands (and says why)."""
    challenge = stepup_records.get_challenge(session.payment_id) or {}
    if challenge.get("method") != "face" or challenge.get("status") != "open":
        return  # not a face check that is under way: the page shows the step-up as it stands
    try:
        verify(session)
    except (InvalidState, StepUpFailed) as exc:
        log.info("checkout %s: face verification not passed on return (%s)", session.session_id, exc.code)


def mask(phone: str) -> str:
    """138****8000: what the payer recognises as their number, and no more."""
    national = phone[3:] if phone.startswith("+86") else phone.lstrip("+")
    return national[:3] + "****" + national[-4:]


def screen_facts(session: CheckoutSession, payment: Payment) -> dict[str, Any]:
    """What the step-up screens show beyond the payment: tries left, the masked number, the face check's link."""
    challenge = stepup_records.get_challenge(payment.payment_id) or {}
    current = (challenge.get("status") == "open"
               and challenge.get("challenge_id") == (payment.step_up or {}).get("challenge_id"))
    phone = challenge.get("phone_masked") if current else None
    # A confirm's challenge was not chosen with the page in mind (stepup/hooks.py assess_confirm): show only what
    # this payer can use here (none at all: the screen says so and offers another method).
    methods = [m for m in (payment.step_up or {}).get("methods", []) if _can_use(session, m)]
    return {"left": max(0, flow.MAX_TRIES - int(challenge.get("tries", 0))), "methods": methods,
            "phone_masked": mask(session.step_up_phone) if session.step_up_phone else phone,
            "face_url": challenge.get("url") if current else None}
