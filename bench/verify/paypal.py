"""PayPal webhook verification cases: ``PayPalAdapter.verify_and_parse_notification`` in certificate mode (option B:
transmission headers, window, CRC-32 of the raw body, RSA-2048 SHA-256 under a chain validated to the configured
root, event parse). The verify-API mode (option A) is one HTTPS round trip to PayPal per event and is not measured.

Keys and the test CA come from tests/unit/channels/paypal_kit.py (generated in-process); no network, no AWS.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from chalicelib.channels.base import HttpResponse, NotificationKind
from chalicelib.channels.paypal import PayPalAdapter
from chalicelib.channels.paypal import certificates as paypal_certificates

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_ROOT, "tests", "unit", "channels"))
import paypal_kit  # noqa: E402


class _OneFetch:
    """Serves the signing chain once (the first fetch); afterwards the adapter's URL cache must answer."""

    def __init__(self, pem: str) -> None:
        self._pem = pem.encode()
        self.fetches = 0

    def send(self, request: object, *, timeout_s: float = 10.0) -> HttpResponse:
        self.fetches += 1
        if self.fetches > 1:
            raise AssertionError("certificate fetched twice: the URL cache is not working")
        return HttpResponse(200, {"content-type": "application/x-pem-file"}, self._pem)


def cases() -> list[tuple[str, Callable[[], object]]]:
    kit = paypal_kit.make_kit()
    event = paypal_kit.event("PAYMENT.CAPTURE.COMPLETED", paypal_kit.capture())
    callback = kit.callback(event)
    pinned_account = kit.account()
    fetched_account = kit.account(pinned={})
    pinned = PayPalAdapter(_OneFetch(""), clock=lambda: paypal_kit.NOW)
    fetched = PayPalAdapter(_OneFetch(kit.current.chain_pem), clock=lambda: paypal_kit.NOW)

    def run(adapter: PayPalAdapter, account: object) -> Callable[[], object]:
        def verify() -> object:
            notification = adapter.verify_and_parse_notification(account, callback)  # type: ignore[arg-type]
            assert notification.kind is NotificationKind.PAYMENT and notification.event_id == event["id"]
            return notification

        verify()  # checks the case works before it is timed
        return verify

    def chain_validation_uncached() -> object:
        paypal_certificates.validate_chain.cache_clear()
        return fetched.verify_and_parse_notification(fetched_account, callback)

    return [
        ("certificate, pinned chain (RSA-2048)", run(pinned, pinned_account)),
        ("certificate, fetched once then cached by URL", run(fetched, fetched_account)),
        ("certificate, chain re-validated every call", chain_validation_uncached),
    ]
