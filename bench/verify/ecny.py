"""e-CNY notification verification cases: ``ECNYAdapter.verify_and_parse_notification`` end to end (X-ECNY-*
headers, timestamp window, bank key by serial, SM3withSM2 over ``NOTIFY\\n<ts>\\n<nonce>\\n<body>`` (Tongsuo),
JSON parse, SM4-GCM unsealing of the payer's wallet id, status mapping).

A batch carries many payments under one signature, so its cost per payment falls with its size; the batch case
reports the whole batch. Keys come from tests/unit/channels/ecny_kit.py (generated in-process); no network, no AWS.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from chalicelib.channels.base import InboundCallback, Notification
from chalicelib.channels.ecny import ECNYAdapter
from chalicelib.channels.transport import UrllibTransport

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_ROOT, "tests", "unit", "channels"))
import ecny_kit  # noqa: E402

BATCH_SIZE = 20


def cases() -> list[tuple[str, Callable[[], object]]]:
    kit = ecny_kit.make_kit()
    account = kit.account()
    adapter = ECNYAdapter(UrllibTransport(), clock=lambda: ecny_kit.NOW)  # notifications never use the transport

    payment_body = ecny_kit.envelope("PAYMENT", {"data": ecny_kit.order()})
    payment = kit.callback(payment_body)
    items = [ecny_kit.batch_item(f"att_offline{n:017d}", "5.00", f"OI2024052008000000{n:08d}") for n in range(BATCH_SIZE)]
    batch = kit.callback(ecny_kit.envelope("OFFLINE_BATCH", {"batch": ecny_kit.batch(items)}))

    def run(callback: InboundCallback, expected: int) -> Callable[[], object]:
        def verify() -> object:
            parsed = adapter.verify_and_parse_notification(account, callback)
            notifications = [parsed] if isinstance(parsed, Notification) else parsed
            assert len(notifications) == expected and all(n.payment is not None for n in notifications)
            return parsed

        verify()  # checks the case works before it is timed
        return verify

    return [
        ("payment notification (SM2/SM3, SM4-GCM wallet)", run(payment, 1)),
        (f"offline batch of {BATCH_SIZE} payments (one SM2 verify, {BATCH_SIZE} SM4-GCM)", run(batch, BATCH_SIZE)),
    ]
