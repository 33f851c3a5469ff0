"""The hosted checkout page's step-up routes (chalicelib/stepup/on_checkout.py does the work).

  POST /checkout/{id}/{key}/stepup            form: ``method`` sms | face starts that challenge; ``step=verify``
                                              answers it (``code`` for SMS; face: the hub asks the provider)
  POST /checkout/{id}/{key}/stepup/webauthn   JSON from assets/checkout_stepup.js: ``{"step": "options"}`` gives
                                              the request options, ``{"step": "verify", "credential": …}`` answers

Both are guarded as every POST of the page: the CSRF token (a form field, or the ``X-CSRF-Token`` header for the
script's JSON) must match the page's cookie, and an Origin header, when sent, must be the hub's. Every refusal
leaves the payment as it was: nothing is charged before a step-up passes.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.checkout import sessions
from chalicelib.domain.errors import (
    HubError,
    InvalidRequest,
    InvalidState,
    StepUpFailed,
    StepUpPending,
    StepUpRateLimited,
)
from chalicelib.stepup import on_checkout
from functions import checkout as page

log = logging.getLogger(__name__)
MAX_JSON_BYTES = 16_384  # an assertion is well under 2 KB


def stepup_form(request: Request, session_id: str, key: str) -> Response:
    def run(session: sessions.CheckoutSession) -> Response:
        form = page._checked_form(request, session)
        if form is None:
            return page._forbidden(request, session)
        try:
            if form.get("step") == "verify":
                code = form.get("code", "").replace(" ", "")
                if form.get("code") is not None and not (code.isdigit() and len(code) == 6):
                    return page._redirect(page._back(session_id, key, form, error="wrong"))
                on_checkout.verify(session, code=code or None)
            else:
                method = form.get("method", "")
                if method not in ("sms", "face"):
                    raise InvalidRequest("sms or face", param="method")
                on_checkout.start(session, method, return_to=_return_url(session_id, key))
        except StepUpFailed:
            return page._redirect(page._back(session_id, key, form, error=on_checkout.why_refused(session)))
        except StepUpRateLimited:
            return page._redirect(page._back(session_id, key, form, error="rate_limited", stepup="choose"))
        except InvalidState as exc:
            waiting = exc.code == StepUpPending.code  # a face check still under way, not a refusal
            log.info("checkout %s: step-up refused (%s)", session_id, exc.code)
            return page._redirect(page._back(session_id, key, form, error="not_finished" if waiting else "unavailable"))
        except HubError as exc:
            log.info("checkout %s: step-up refused (%s)", session_id, exc.code)
            return page._redirect(page._back(session_id, key, form, error="unavailable", stepup="choose"))
        return page._redirect(page._back(session_id, key, form))

    return page._payer_call(request, session_id, key, run)


def _return_url(session_id: str, key: str) -> str:
    """Where the face provider sends the payer back: the page's own return, which asks the provider."""
    from chalicelib.config.settings import settings

    return f"{settings().public_base_url}{page._base(session_id, key)}/return"


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(body=json.dumps(body), status_code=status, headers=page._headers("application/json", page._csp()))


def stepup_webauthn(request: Request, session_id: str, key: str) -> Response:
    session: sessions.CheckoutSession | None = None
    try:
        session = sessions.open_for_payer(session_id, key)
        if session is None:
            return _json(404, {"error": "unknown"})
        cookie = page._cookies(request).get(page.CSRF_COOKIE, "")
        sent = request.headers.get("x-csrf-token") or ""
        raw = request.raw_body or b""
        if not page._same_origin(request) or not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
            log.warning("checkout %s: step-up call refused (CSRF token or origin)", session_id)
            return _json(403, {"error": "forbidden"})
        if len(raw) > MAX_JSON_BYTES:
            return _json(413, {"error": "unavailable"})
        body = json.loads(raw or b"{}")
        if not isinstance(body, dict):
            return _json(400, {"error": "unavailable"})
        if body.get("step") == "options":
            started = on_checkout.webauthn_options(session)
            return _json(200, {"action": started["action"], "expires_at": started["expires_at"]})
        credential = body.get("credential")
        if body.get("step") != "verify" or not isinstance(credential, dict):
            return _json(400, {"error": "unavailable"})
        payment = on_checkout.verify(session, credential=credential)
        return _json(200, {"payment_status": str(payment.status)})
    except StepUpFailed:
        return _json(422, {"error": on_checkout.why_refused(session) if session else "unavailable"})
    except (HubError, ValueError) as exc:
        log.info("checkout %s: WebAuthn step-up refused (%s)", session_id, getattr(exc, "code", type(exc).__name__))
        return _json(409, {"error": "unavailable"})
    except Exception:
        log.exception("checkout step-up failed", extra={"session_id": session_id})
        return _json(503, {"error": "unavailable"})
