"""The payer's side of a Checkout Session: the page at the session's ``url`` (``/c/pay/{session}``).

``GET`` shows what is being paid with "Pay" and "Cancel" buttons (a test card that pays is filled in: the sandbox
collects no card); ``POST result=pay`` pays and sends the browser to ``success_url`` with ``{CHECKOUT_SESSION_ID}``
filled in, as Stripe does; ``result=cancel`` sends it to ``cancel_url`` and leaves the session open.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs

from sandbox.common.httpserver import Request, Response

from .currencies import THREE_DECIMAL, ZERO_DECIMAL
from .sessions import CheckoutBook
from .state import IllegalTransition

SESSION_ID_TEMPLATE = "{CHECKOUT_SESSION_ID}"
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stripe Checkout (sandbox)</title></head>
<body><main><h1>Pay {merchant}</h1>
<p>{product}: <b>{amount} {currency}</b></p>
<p>Card: 4242 4242 4242 4242 (test card)</p>
<form method="post"><button name="result" value="pay">Pay</button>
{cancel}</form></main></body></html>"""


def _amount(amount: int, currency: str) -> str:
    if currency in ZERO_DECIMAL:
        return str(amount)
    return f"{amount / 1000:.3f}" if currency in THREE_DECIMAL else f"{amount / 100:.2f}"


def _text(status: int, message: str) -> Response:
    return Response(status, f"<!doctype html><h1>{html.escape(message)}</h1>".encode(),
                    {"Content-Type": "text/html; charset=utf-8"})


class HostedCheckoutPage:
    def __init__(self, book: CheckoutBook) -> None:
        self._book = book

    def show(self, request: Request) -> Response:
        session = self._book.for_payer(request.path_params["session"])
        if session is None or session.status != "open":
            return _text(404, "This checkout is no longer available.")
        cancel = '<button name="result" value="cancel">Cancel</button>' if session.cancel_url else ""
        page = _PAGE.format(merchant=html.escape(session.account), product=html.escape(session.product_name),
                            amount=_amount(session.amount_total, session.currency),
                            currency=html.escape(session.currency.upper()), cancel=cancel)
        return Response(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})

    def submit(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        session_id = request.path_params["session"]
        if form.get("result") == "cancel":
            session = self._book.for_payer(session_id)
            if session is None or not session.cancel_url:
                return _text(404, "This checkout cannot be cancelled here.")
            return Response(303, b"", {"Location": session.cancel_url})
        try:
            session = self._book.pay(session_id)
        except IllegalTransition as exc:
            return _text(409, str(exc))
        return Response(303, b"", {"Location": session.success_url.replace(SESSION_ID_TEMPLATE, session.id)})
