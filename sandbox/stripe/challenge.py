"""The 3-D Secure challenge page a payer is redirected to (``next_action.redirect_to_url.url``).

``GET`` shows the issuer's page with "Complete" and "Fail" buttons; the ``POST`` records the result and sends
the browser back to the merchant's ``return_url`` with ``payment_intent``, ``payment_intent_client_secret`` and
``redirect_status``, as Stripe does.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from sandbox.common.httpserver import Request, Response

from .state import IllegalTransition, SandboxState

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>3D Secure 2 Test Page</title></head>
<body style="font-family:sans-serif;max-width:28em;margin:3em auto">
<h1>3D Secure 2 Test Page</h1>
<p>Payment of <b>{amount} {currency}</b> ({intent}). Complete or fail the authentication.</p>
<form method="post"><input type="hidden" name="client_secret" value="{secret}">
<button name="result" value="success">Complete</button>
<button name="result" value="fail">Fail</button></form>
</body></html>"""


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


class ChallengePage:
    def __init__(self, state: SandboxState) -> None:
        self._state = state

    def show(self, request: Request) -> Response:
        intent = self._state.find_intent(request.path_params["intent"])
        secret = request.query.get("client_secret", "")
        if intent is None or secret != intent.client_secret or intent.status != "requires_action":
            return Response(404, b"<h1>This authentication is not available.</h1>", {"Content-Type": "text/html"})
        page = _PAGE.format(amount=intent.amount, currency=html.escape(intent.currency.upper()),
                            intent=html.escape(intent.id), secret=html.escape(secret))
        return Response(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})

    def submit(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        intent_id = request.path_params["intent"]
        try:
            intent = self._state.complete_three_ds(intent_id, form.get("result") == "success",
                                                   client_secret=form.get("client_secret", ""))
        except IllegalTransition as exc:
            return Response(409, f"<h1>{html.escape(str(exc))}</h1>".encode(), {"Content-Type": "text/html"})
        if not intent.return_url:
            return Response(200, b"<h1>Authentication finished. You can close this window.</h1>",
                            {"Content-Type": "text/html"})
        status = "failed" if intent.status == "requires_payment_method" else "succeeded"
        location = _with_query(intent.return_url, {"payment_intent": intent.id,
                                                   "payment_intent_client_secret": intent.client_secret,
                                                   "redirect_status": status})
        return Response(303, b"", {"Location": location})
