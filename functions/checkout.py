"""Checkout function: the merchant's checkout-session API and the hosted page the payer opens.

The page's answers are HTML in the payer's language whatever goes wrong (an unknown or tampered URL, an expired
session, a channel error): never JSON, never a trace. Every POST from the page carries a CSRF token that must
match the page's own cookie (SameSite=Strict, HttpOnly, scoped to the session's path), and an Origin header, when
the browser sends one, must be the hub's.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from chalice import Response
from chalice.app import Request

from chalicelib.checkout import i18n, sessions, wechat
from chalicelib.checkout.inputs import CreateCheckoutSessionInput
from chalicelib.checkout.page import Page, Renderer, message_page
from chalicelib.config.settings import settings
from chalicelib.domain.errors import (
    ChannelError,
    HubError,
    InvalidRequest,
    InvalidState,
    RiskDenied,
    StepUpRequired,
)
from chalicelib.domain.models import Merchant
from functions.edge import JSON, merchant_call, parse_body
from functions.standalone import Route, standalone_app

log = logging.getLogger(__name__)
FORM = ("application/x-www-form-urlencoded",)
CSRF_COOKIE = "payhub_csrf"
ASSETS = {"checkout.css": "text/css; charset=utf-8", "checkout.js": "text/javascript; charset=utf-8",
          "wechat-jsapi.js": "text/javascript; charset=utf-8"}
# The step-up screen's scripts live with the step-up code (chalicelib/stepup/screens.py)
STEPUP_ASSETS = {"webauthn_step_up.js": "text/javascript; charset=utf-8",
                 "checkout_stepup.js": "text/javascript; charset=utf-8"}
MAX_FORM_BYTES = 8192


# --- merchant API ---------------------------------------------------------------------------------------------

def create_session(request: Request) -> Response:
    def run(merchant: Merchant) -> tuple[int, dict[str, Any]]:
        return 201, sessions.create_session(merchant, parse_body(request, CreateCheckoutSessionInput))

    return merchant_call(request, run)


def get_session(request: Request, session_id: str) -> Response:
    def run(merchant: Merchant) -> tuple[int, dict[str, Any]]:
        session, payment = sessions.for_merchant(merchant, session_id)
        body = session.public(payment)
        body["attempts"] = [{"attempt_id": a["attempt_id"], "method": a["method"], "created_at": a["created_at"]}
                            for a in sessions.attempts(session)]
        return 200, body

    return merchant_call(request, run)


# --- the hosted page ------------------------------------------------------------------------------------------

def _csp(form_targets: tuple[str, ...] = ()) -> str:
    targets = "".join(f" {t}" for t in form_targets)
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            f"form-action 'self'{targets}; base-uri 'none'; frame-ancestors 'none'")


def _secure() -> bool:
    return settings().public_base_url.startswith("https://")


# The page's URL holds its key: never sent as a referrer to a channel or any other site. "same-origin" rather than
# "no-referrer", because under "no-referrer" Chromium sends ``Origin: null`` with the page's own form POSTs.
def _headers(content_type: str, csp: str) -> dict[str, str]:
    return {"Content-Type": content_type, "Content-Security-Policy": csp, "Cache-Control": "no-store",
            "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"}


def _html(page: Page, *, cookie: str | None = None) -> Response:
    headers = _headers("text/html; charset=utf-8", _csp(page.form_targets))
    if cookie:
        headers["Set-Cookie"] = cookie
    return Response(body=page.html, status_code=page.status, headers=headers)


def _redirect(location: str) -> Response:
    return Response(body="", status_code=303, headers={**_headers("text/plain", _csp()), "Location": location})


def _cookies(request: Request) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in (request.headers.get("cookie") or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            found[name] = value
    return found


def _query(request: Request) -> dict[str, str]:
    return dict(request.query_params or {})


def _lang(request: Request, session: sessions.CheckoutSession | None, asked: str | None = None) -> str:
    return i18n.choose_lang(asked or _query(request).get("lang"), session.locale if session else None,
                            request.headers.get("accept-language"))


def _base(session_id: str, key: str) -> str:
    return f"/checkout/{session_id}/{key}"


def _form(request: Request) -> dict[str, str]:
    raw = request.raw_body or b""
    if len(raw) > MAX_FORM_BYTES:
        raise InvalidRequest("form too large", param="body")
    parsed = parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0].strip() for name, values in parsed.items()}


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not every client sends it; the CSRF token below is what must match
    expected = urlsplit(settings().public_base_url)
    return origin == f"{expected.scheme}://{expected.netloc}"


def _in_wechat(request: Request) -> bool:
    return wechat.in_wechat(request.headers.get("user-agent"))


def _unknown(request: Request) -> Response:
    lang = _lang(request, None)
    return _html(message_page(lang, 404, "unknown"))


def _payer_call(request: Request, session_id: str, key: str, run: Any) -> Response:
    """Open the session by its key, run the step, and answer a page whatever happens."""
    session = None
    try:
        session = sessions.open_for_payer(session_id, key)
        if session is None:
            return _unknown(request)
        return run(session)  # type: ignore[no-any-return]
    except Exception:
        log.exception("checkout page failed", extra={"session_id": session_id})
        lang = _lang(request, session)
        return _html(message_page(lang, 503, "error"))


def page(request: Request, session_id: str, key: str) -> Response:
    from chalicelib.checkout import payer  # the page's payment flow (risk control, step-up, attempts): not the session API's

    def run(session: sessions.CheckoutSession) -> Response:
        query = _query(request)
        lang = _lang(request, session)
        token = _cookies(request).get(CSRF_COOKIE)
        cookie = None
        if not token or len(token) != 43:
            token = secrets.token_urlsafe(32)
            cookie = (f"{CSRF_COOKIE}={token}; Path={_base(session_id, key)}/; HttpOnly; SameSite=Strict"
                      + ("; Secure" if _secure() else ""))
        renderer = Renderer(payer.view(session, in_wechat=_in_wechat(request)), lang, _base(session_id, key), token)
        rendered = renderer.render(choose=query.get("choose") == "1", step=query.get("step"),
                                   error=query.get("error"), field=query.get("field"),
                                   remember=query.get("remember") == "1", notice=query.get("notice"),
                                   stepup=query.get("stepup"), instalments=query.get("instalments"))
        return _html(rendered, cookie=cookie)

    return _payer_call(request, session_id, key, run)


def _checked_form(request: Request, session: sessions.CheckoutSession) -> dict[str, str] | None:
    """The POSTed form if its CSRF token matches the page's cookie and it comes from the hub's own origin."""
    form = _form(request)
    cookie = _cookies(request).get(CSRF_COOKIE, "")
    sent = form.get("csrf", "")
    if not _same_origin(request) or not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        log.warning("checkout %s: POST refused (CSRF token or origin)", session.session_id)
        return None
    return form


def _back(session_id: str, key: str, form: dict[str, str], **params: str) -> str:
    lang = form.get("lang")
    if lang in i18n.LANGS:
        params["lang"] = lang
    query = urlencode({k: v for k, v in params.items() if v})
    return _base(session_id, key) + (f"?{query}" if query else "")


def _forbidden(request: Request, session: sessions.CheckoutSession) -> Response:
    return _html(message_page(_lang(request, session), 403, "forbidden"))


def pay(request: Request, session_id: str, key: str) -> Response:
    from chalicelib.checkout import payer

    def run(session: sessions.CheckoutSession) -> Response:
        form = _checked_form(request, session)
        if form is None:
            return _forbidden(request, session)
        method = form.get("method", "")
        remember = form.get("remember") == "1"
        card = None
        if method == "unionpay.card":
            if not form.get("card_number"):  # to the card form, keeping the instalment term chosen with the method
                return _redirect(_back(session_id, key, form, step="card", remember="1" if remember else "",
                                       instalments=form.get("instalments_unionpay", "")))
            card, bad = _card(form)
            if bad:
                return _redirect(_back(session_id, key, form, step="card", error="bad_input", field=bad,
                                       remember="1" if remember else "",
                                       instalments=form.get("instalments_unionpay", "")))
        try:
            openid = None
            if method == wechat.JSAPI and method in payer.view(session, in_wechat=_in_wechat(request)).methods:
                openid, authorise = payer.wechat_authorisation(session, key, remember=remember)
                if authorise:
                    return _redirect(authorise)  # WeChat's web authorisation first; it comes back to wechat_came_back
            payer.pay(session, key, method, remember=remember, card=card, in_wechat=_in_wechat(request), openid=openid,
                      instalments=_instalments_chosen(form, method))
        except InvalidRequest as exc:
            field = exc.param or "method"
            if method == "unionpay.card" and field.startswith("card"):
                return _redirect(_back(session_id, key, form, step="card", error="bad_input", field=field))
            return _redirect(_back(session_id, key, form, error="method_unavailable"))
        except RiskDenied:  # the decision is recorded; the page says so plainly (chalicelib/stepup/screens.py)
            return _redirect(_back(session_id, key, form, error="risk_denied"))
        except (ChannelError, InvalidState) as exc:
            log.info("checkout %s: %s could not be opened (%s)", session_id, method, exc.code)
            return _redirect(_back(session_id, key, form, error="method_unavailable", choose="1"))
        except HubError as exc:
            log.info("checkout %s: %s refused (%s)", session_id, method, exc.code)
            return _redirect(_back(session_id, key, form, error="method_unavailable", choose="1"))
        return _redirect(_back(session_id, key, form))

    return _payer_call(request, session_id, key, run)


def _instalments_chosen(form: dict[str, str], method: str) -> int | None:
    """The instalments the payer picked for ``method``'s channel (``instalments_alipay``, ``instalments_unionpay``):
    none (pay in full), or a number the fee table then checks."""
    from chalicelib.domain.instalments import INSTALMENT_METHODS

    channel = INSTALMENT_METHODS.get(method)
    chosen = form.get(f"instalments_{channel}", "") if channel else ""
    return int(chosen) if chosen.isdigit() and len(chosen) <= 2 else None


def _card(form: dict[str, str]) -> tuple[Any, str | None]:
    """The card typed into the hub's fields, validated as the API validates it; the number is never logged."""
    from pydantic_core import ValidationError

    from chalicelib.service.inputs import CardInput

    raw: dict[str, Any] = {"number": form.get("card_number", "").replace(" ", "").replace("-", ""),
                           "phone": form.get("card_phone") or None, "holder_name": form.get("card_holder_name") or None}
    for name in ("exp_month", "exp_year"):
        value = form.get(f"card_{name}", "")
        if not value.isdigit():
            return None, f"card.{name}"
        raw[name] = int(value)
    if len(str(raw["exp_year"])) == 2:
        raw["exp_year"] += 2000
    try:
        return CardInput.model_validate({k: v for k, v in raw.items() if v is not None}), None
    except ValidationError as exc:
        return None, "card." + ".".join(str(p) for p in exc.errors()[0]["loc"])


def confirm(request: Request, session_id: str, key: str) -> Response:
    from chalicelib.checkout import payer

    def run(session: sessions.CheckoutSession) -> Response:
        form = _checked_form(request, session)
        if form is None:
            return _forbidden(request, session)
        code, cvv = form.get("sms_code", ""), form.get("cvv") or None
        if not code.isdigit() or not 4 <= len(code) <= 8 or (cvv is not None and not (cvv.isdigit() and 3 <= len(cvv) <= 4)):
            return _redirect(_back(session_id, key, form, error="bad_input", field="sms_code" if not code.isdigit()
                                   or not 4 <= len(code) <= 8 else "cvv"))
        try:
            payer.confirm(session, sms_code=code, cvv=cvv)
        except StepUpRequired:  # the page now shows the step-up; the payer confirms again once it passed
            return _redirect(_back(session_id, key, form))
        except HubError as exc:
            log.info("checkout %s: confirmation refused (%s)", session_id, exc.code)
            return _redirect(_back(session_id, key, form, error="error"))
        return _redirect(_back(session_id, key, form))

    return _payer_call(request, session_id, key, run)


def forget(request: Request, session_id: str, key: str) -> Response:
    from chalicelib.checkout import payer

    def run(session: sessions.CheckoutSession) -> Response:
        form = _checked_form(request, session)
        if form is None:
            return _forbidden(request, session)
        payer.forget(session)
        return _redirect(_back(session_id, key, form, notice="forgotten"))

    return _payer_call(request, session_id, key, run)


def came_back(request: Request, session_id: str, key: str) -> Response:
    from chalicelib.checkout import payer

    def run(session: sessions.CheckoutSession) -> Response:
        payer.came_back(session)
        return _redirect(_base(session_id, key))

    return _payer_call(request, session_id, key, run)


def wechat_came_back(request: Request, session_id: str, key: str) -> Response:
    """Back from WeChat's web authorisation with ``code`` and ``state``. The state must be one this session issued
    and not yet used (else a 403 page, logged); the code is traded for the payer's openid server-side and the JSAPI
    attempt opened. A code WeChat refuses (used, expired) sends the payer back to the methods to try again."""
    from chalicelib.checkout import payer

    def run(session: sessions.CheckoutSession) -> Response:
        query = _query(request)
        back = {"lang": query["lang"]} if query.get("lang") in i18n.LANGS else {}
        try:
            payer.pay_after_authorisation(session, key, state=query.get("state", ""), code=query.get("code", ""))
        except InvalidRequest as exc:
            if exc.param in ("state", "code"):
                return _forbidden(request, session)
            return _redirect(_back(session_id, key, back, error="method_unavailable", choose="1"))
        except ChannelError as exc:
            log.info("checkout %s: WeChat authorisation or JSAPI create failed (%s %s)", session_id, exc.code,
                     exc.channel_code)
            return _redirect(_back(session_id, key, back, error="wechat_auth", choose="1"))
        except HubError as exc:
            log.info("checkout %s: JSAPI refused (%s)", session_id, exc.code)
            return _redirect(_back(session_id, key, back, error="method_unavailable", choose="1"))
        return _redirect(_back(session_id, key, back))

    return _payer_call(request, session_id, key, run)


def came_back_posted(request: Request, session_id: str, key: str) -> Response:
    """UnionPay brings the payer back with a form POST (its frontUrl): nothing in it is trusted or needed; the hub
    queries the channel instead, as for any return."""
    return came_back(request, session_id, key)


def status(request: Request, session_id: str, key: str) -> Response:
    from chalicelib.checkout import payer

    headers = _headers("application/json", _csp())
    try:
        session = sessions.open_for_payer(session_id, key)
        if session is None:
            return Response(body=json.dumps({"state": "unknown"}), status_code=404, headers=headers)
        return Response(body=json.dumps(payer.status(session)), status_code=200, headers=headers)
    except Exception:
        log.exception("checkout status failed", extra={"session_id": session_id})
        return Response(body=json.dumps({"state": "error"}), status_code=503, headers=headers)


def asset(request: Request, name: str) -> Response:
    content_type = ASSETS.get(name) or STEPUP_ASSETS.get(name)
    if content_type is None:
        return Response(body="not found", status_code=404, headers={"Content-Type": "text/plain"})
    package = "chalicelib.checkout" if name in ASSETS else "chalicelib.stepup"
    body = (resources.files(package) / "assets" / name).read_text(encoding="utf-8")
    return Response(body=body, status_code=200, headers={
        "Content-Type": content_type, "Cache-Control": "public, max-age=86400, immutable",
        "X-Content-Type-Options": "nosniff"})


# Risk control's step-up screens (functions/checkout_stepup.py), imported when a payer first needs one.
def stepup_form(request: Request, session_id: str, key: str) -> Response:
    from functions import checkout_stepup

    return checkout_stepup.stepup_form(request, session_id, key)


def stepup_webauthn(request: Request, session_id: str, key: str) -> Response:
    from functions import checkout_stepup

    return checkout_stepup.stepup_webauthn(request, session_id, key)


ROUTES: list[Route] = [
    ("/v1/checkout_sessions", "POST", create_session, JSON),
    ("/v1/checkout_sessions/{session_id}", "GET", get_session, JSON),
    ("/checkout/{session_id}/{key}", "GET", page, JSON),
    ("/checkout/{session_id}/{key}/status", "GET", status, JSON),
    ("/checkout/{session_id}/{key}/return", "GET", came_back, JSON),
    ("/checkout/{session_id}/{key}/return", "POST", came_back_posted, FORM),
    ("/checkout/{session_id}/{key}/wechat-oauth", "GET", wechat_came_back, JSON),
    ("/checkout/{session_id}/{key}/pay", "POST", pay, FORM),
    ("/checkout/{session_id}/{key}/confirm", "POST", confirm, FORM),
    ("/checkout/{session_id}/{key}/forget", "POST", forget, FORM),
    ("/checkout-assets/{name}", "GET", asset, JSON),
    ("/checkout/{session_id}/{key}/stepup", "POST", stepup_form, FORM),
    ("/checkout/{session_id}/{key}/stepup/webauthn", "POST", stepup_webauthn, JSON),
]
app = standalone_app("payhub-checkout", __name__, ROUTES)
