"""UnionPay ACP 5.1.0 notify verification cases: ``UnionPayAdapter.verify_and_parse_notification`` end to end
(form decode, ``signPubKeyCert`` chained to the configured middle and root, validity and CN checks, SHA-256 hex
then RSA-SHA256 over every received field, orderId mapping and amount parse).

Validated certificates are cached (``certs._chain``), so a warm Lambda pays one RSA verify per notify; the
"cold" case clears that cache each time and so also pays PEM parsing and the two issuer signature checks.
Keys and the test CA come from tests/unit/channels/unionpay_kit.py (generated in-process); no network, no AWS.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from chalicelib.channels.base import InboundCallback, NotificationKind
from chalicelib.channels.transport import UrllibTransport
from chalicelib.channels.unionpay import UnionPayAdapter, certs

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_ROOT, "tests", "unit", "channels"))
import unionpay_kit  # noqa: E402


def cases() -> list[tuple[str, Callable[[], object]]]:
    kit = unionpay_kit.make_kit()
    account = kit.account()
    adapter = UnionPayAdapter(UrllibTransport(), clock=lambda: unionpay_kit.NOW)  # notifications never use it
    payment = kit.notify(unionpay_kit.payment_notify_fields())
    refund = kit.notify(unionpay_kit.payment_notify_fields(orderId="reZ0abcdefghijklmnopqrstuvwx", txnType="04",
                                                           txnSubType="00", txnAmt="888"))

    def run(callback: InboundCallback, kind: NotificationKind, cold: bool = False) -> Callable[[], object]:
        def verify() -> object:
            if cold:
                certs._chain.cache_clear()
            parsed = adapter.verify_and_parse_notification(account, callback)
            assert parsed.kind is kind
            return parsed

        verify()  # checks the case works before it is timed
        return verify

    return [
        ("payment notify (RSA-2048, certificate chain cached)", run(payment, NotificationKind.PAYMENT)),
        ("refund notify (RSA-2048, certificate chain cached)", run(refund, NotificationKind.REFUND)),
        ("payment notify, chain validated from scratch", run(payment, NotificationKind.PAYMENT, cold=True)),
    ]
