"""Nuonuo's push to our callBackUrl: a form post (``operater=callback``, ``orderno``, ``content`` JSON).

Nuonuo does not sign these pushes, so nothing in one is believed: a push only makes the worker query the
provider (a signed request of ours, answered over TLS) by the serial number it names. A push naming a serial we
never issued, or not for the merchant in its URL, is refused and logged.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

from chalicelib.domain.errors import CallbackRejected
from chalicelib.invoices import records
from chalicelib.observability import security_event
from chalicelib.storage import outbox, state_repo

log = logging.getLogger(__name__)
ACK = {"status": "0000", "message": "success"}


def receive(merchant_id: str, raw_body: bytes) -> dict[str, str]:
    try:
        form = {k: v[0] for k, v in parse_qs(raw_body.decode("utf-8"), strict_parsing=True).items()}
        content = json.loads(form.get("content", "{}"))
        order_no = str(form.get("orderno") or content.get("c_orderno") or "")
    except (UnicodeDecodeError, ValueError, AttributeError) as exc:
        raise CallbackRejected("invoice callback: not a Nuonuo push") from exc
    lookup = state_repo.get_item(records.serial_key(order_no)) if order_no and len(order_no) <= 40 else None
    invoice = state_repo.get_item(records.invoice_key(lookup["invoice_id"])) if lookup else None
    if invoice is None or invoice["merchant_id"] != merchant_id:
        log.warning("invoice callback for an unknown order refused",
                    extra=security_event("invoice_callback_unknown", merchant_id=merchant_id))
        raise CallbackRejected("invoice callback: no such order")
    outbox.send("invoices", {"command": "invoice.check", "invoice_id": invoice["invoice_id"], "n": 1})
    return ACK
