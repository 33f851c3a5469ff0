"""Alipay notify verification cases: ``AlipayAdapter.verify_and_parse_notification`` end to end (form decoding
with the notify's charset, the V1 canonical string, SHA256withRSA or SM3withSM2 against each configured Alipay
key in turn, then the parse into a ``Notification``).

Keys come from tests/unit/channels/alipay_kit.py (generated in-process); no network, no AWS. The account lists
two Alipay keys, as during a rotation: the "second key" case is signed by the key tried second.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from chalicelib.channels.alipay import AlipayAdapter
from chalicelib.channels.base import InboundCallback, NotificationKind
from chalicelib.config.accounts import ChannelAccount

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_ROOT, "tests", "unit", "channels"))
import alipay_kit  # noqa: E402


def cases() -> list[tuple[str, Callable[[], object]]]:
    kit = alipay_kit.make_kit()
    adapter = AlipayAdapter(transport=None)  # type: ignore[arg-type]  # notifies never touch the network
    fields = alipay_kit.trade_notify()

    def run(account: ChannelAccount, callback: InboundCallback) -> Callable[[], object]:
        def verify() -> object:
            notification = adapter.verify_and_parse_notification(account, callback)
            assert notification.kind is NotificationKind.PAYMENT and notification.object_id == fields["out_trade_no"]
            return notification

        verify()  # checks the case works before it is timed
        return verify

    rsa_account = kit.account("RSA2")  # keys tried in order: rsa-2024, then rsa-2023
    return [
        ("RSA2 notify (SHA256withRSA-2048)", run(rsa_account, kit.callback(kit.notify(fields)))),
        ("RSA2 notify, signed by the second listed key",
         run(rsa_account, kit.callback(kit.notify(fields, key=kit.alipay_rsa_old)))),
        ("SM2 notify (SM3withSM2)", run(kit.account("SM2"), kit.callback(kit.notify(fields, sign_type="SM2")))),
    ]
