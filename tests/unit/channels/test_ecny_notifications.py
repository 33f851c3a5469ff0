"""Notifications: verify the exact bytes, then parse, then unseal; offline batches become one Notification per
payment, each with its own event id and ``settled_offline``; every tampered part is rejected."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from ecny_kit import (
    ATTEMPT,
    MERCHANT_ID,
    NOW,
    batch,
    batch_item,
    envelope,
    make_kit,
    order,
    refund,
)

from chalicelib.channels.base import NotificationKind, PaymentOutcome, RefundOutcome
from chalicelib.channels.ecny import ECNYAdapter
from chalicelib.channels.transport import UrllibTransport
from chalicelib.domain.errors import CallbackRejected
from chalicelib.domain.money import Money

KIT = make_kit()
ADAPTER = ECNYAdapter(UrllibTransport(), clock=lambda: NOW)  # notifications never touch the transport
WALLET = "0021123456789012"


def _parse(body: bytes, headers: dict[str, str] | None = None, *, received_at=NOW, account=None):
    return ADAPTER.verify_and_parse_notification(account or KIT.account(), KIT.callback(body, headers, received_at))


def _rejects(body: bytes, reason: str, headers: dict[str, str] | None = None, **options) -> None:
    with pytest.raises(CallbackRejected) as caught:
        _parse(body, headers, **options)
    assert reason in str(caught.value)
    assert KIT.merchant.private_hex not in str(caught.value) and WALLET not in str(caught.value)


def test_payment_notification_made_by_the_rules_is_accepted() -> None:
    notification = _parse(envelope("PAYMENT", {"data": order()}))
    assert notification.kind is NotificationKind.PAYMENT
    assert (notification.event_id, notification.object_id) == ("NT202405201201020000000001", ATTEMPT)
    assert notification.channel_merchant_id == MERCHANT_ID and notification.channel_app_id is None
    payment = notification.payment
    assert payment.outcome is PaymentOutcome.SUCCEEDED and payment.amount == Money(8888, "CNY")
    assert payment.channel_transaction_id == "TX" + "1" * 28 and not payment.settled_offline
    assert notification.raw["payer_wallet_masked"] == "************9012"
    assert WALLET not in json.dumps(dict(notification.raw))  # the clear wallet id is never kept


def test_failed_payment_notification() -> None:
    notification = _parse(envelope("PAYMENT", {"data": order("FAILED")}))
    assert notification.payment.outcome is PaymentOutcome.FAILED


def test_refund_notification() -> None:
    notification = _parse(envelope("REFUND", {"data": refund()}, notify_id="NT2"))
    assert notification.kind is NotificationKind.REFUND and notification.object_id == refund()["out_refund_no"]
    assert notification.refund.outcome is RefundOutcome.SUCCEEDED and notification.refund.amount == Money(888, "CNY")
    assert notification.event_id == "NT2"


@pytest.mark.parametrize(("path", "value"), [
    (("data", "amount"), "0.01"), (("data", "status"), "CLOSED"), (("data", "out_order_no"), "att_other"),
    (("merchant_id",), "EC0000000000000"), (("notify_id",), "NT-other"), (("notify_type",), "REFUND"),
])
def test_each_field_changed_after_signing_is_rejected(path: tuple[str, ...], value: str) -> None:
    body = envelope("PAYMENT", {"data": order()})
    headers = KIT.notify_headers(body)
    changed = json.loads(body)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    _rejects(json.dumps(changed, ensure_ascii=False, indent=1).encode(), "signature", headers)


def test_reserialised_body_is_rejected() -> None:
    """Whitespace alone breaks the signature: the hub must verify the bytes it received."""
    body = envelope("PAYMENT", {"data": order()})
    compact = json.dumps(json.loads(body), separators=(",", ":")).encode()
    _rejects(compact, "signature mismatch", KIT.notify_headers(body))


def test_forged_stale_and_unsigned_are_rejected() -> None:
    body = envelope("PAYMENT", {"data": order()})
    _rejects(body, "signature mismatch", KIT.notify_headers(body, KIT.impostor))
    _rejects(body, "window", KIT.notify_headers(body), received_at=NOW + timedelta(minutes=6))
    _rejects(body, "X-ECNY-Signature", {"content-type": "application/json"})


def test_rotation_overlap_at_the_notification_level() -> None:
    body = envelope("PAYMENT", {"data": order()})
    by_old = KIT.notify_headers(body, KIT.bank_old)
    assert _parse(body, by_old, account=KIT.account(bank_keys=[KIT.bank_old, KIT.bank])).object_id == ATTEMPT
    _rejects(body, "unknown X-ECNY-Serial", by_old, account=KIT.account(bank_keys=[KIT.bank]))


def test_a_sealed_wallet_from_another_order_is_rejected() -> None:
    """Cut-and-paste of a sealed field between orders fails its associated data, even when the bank signs it."""
    data = order()
    data["payer_wallet"] = order(out_order_no="att_other")["payer_wallet"]
    _rejects(envelope("PAYMENT", {"data": data}), "payer_wallet")


@pytest.mark.parametrize(("content", "reason"), [
    ({"data": {**order(), "amount": 8888}}, "bad amount"),
    ({"data": {**order(), "amount": "88.8"}}, "bad amount"),
    ({"data": "not an object"}, "not a JSON object"),
    ({"data": {k: v for k, v in order().items() if k != "out_order_no"}}, "out_order_no"),
])
def test_malformed_payment_content_is_rejected(content: dict, reason: str) -> None:
    _rejects(envelope("PAYMENT", content), reason)


def test_unknown_notify_type_and_non_json_are_rejected() -> None:
    _rejects(envelope("SETTLEMENT", {"data": order()}), "unsupported notify_type")
    _rejects(b"notify_id=1", "not JSON")


# -- offline batches ---------------------------------------------------------------------------------------

ITEMS = [batch_item("att_offline_closed00000000001", "5.00", "OI202405200800000000000001"),
         batch_item("att_offline_pending0000000002", "8.00", "OI202405200800000000000002"),
         batch_item("att_offline_other000000000003", "0.01", "OI202405200800000000000003")]


def test_a_batch_is_one_notification_per_payment_each_settled_offline() -> None:
    notifications = _parse(envelope("OFFLINE_BATCH", {"batch": batch(ITEMS)}))
    assert isinstance(notifications, list) and len(notifications) == 3
    assert [n.object_id for n in notifications] == [item["out_order_no"] for item in ITEMS]
    assert [n.event_id for n in notifications] == [item["item_id"] for item in ITEMS]  # own id each: dedupe
    assert {n.channel_merchant_id for n in notifications} == {MERCHANT_ID}
    for notification, amount in zip(notifications, (500, 800, 1), strict=True):
        payment = notification.payment
        assert payment.outcome is PaymentOutcome.SUCCEEDED and payment.settled_offline
        assert payment.amount == Money(amount, "CNY")
        assert payment.paid_at.isoformat() == "2024-05-19T23:15:00+08:00"  # when the wallet paid
        assert notification.raw["batch_no"] == "OB20240520080000000001"


@pytest.mark.parametrize(("content", "reason"), [
    ({"batch": batch(ITEMS, count=2)}, "count"),
    ({"batch": batch(ITEMS, total="13.00")}, "total_amount"),
    ({"batch": batch([ITEMS[0], ITEMS[0]])}, "repeats an item_id"),
    ({"batch": batch([{**ITEMS[0], "offline": False}])}, "offline SUCCESS"),
    ({"batch": batch([{**ITEMS[0], "status": "CLOSED"}])}, "offline SUCCESS"),
    ({"batch": batch([{k: v for k, v in ITEMS[0].items() if k != "item_id"}])}, "item_id"),
    ({"batch": batch([])}, "items"),
    ({"batch": "x"}, "not a JSON object"),
])
def test_an_inconsistent_batch_is_rejected_whole(content: dict, reason: str) -> None:
    _rejects(envelope("OFFLINE_BATCH", content), reason)


def test_a_tampered_batch_item_is_rejected() -> None:
    body = envelope("OFFLINE_BATCH", {"batch": batch(ITEMS)})
    headers = KIT.notify_headers(body)
    _rejects(body.replace(b'"8.00"', b'"9.00"'), "signature mismatch", headers)


def test_acknowledgement_is_the_documented_answer() -> None:
    ok, rejected = ADAPTER.acknowledge(True), ADAPTER.acknowledge(False)
    assert (ok.status, json.loads(ok.body)) == (200, {"code": "SUCCESS", "msg": "OK"})
    assert rejected.status == 400 and json.loads(rejected.body)["code"] == "FAIL"


def test_another_merchants_notification_is_parsed_for_the_cross_check() -> None:
    """Signed by the bank but for another merchant number: returned (not rejected) so the callback service
    acknowledges it and raises a business-mismatch alert instead of letting the bank retry for a day."""
    notification = _parse(envelope("PAYMENT", {"data": order()}, merchant_id="EC0000000000009"))
    assert notification.channel_merchant_id == "EC0000000000009"
    assert "payer_wallet_masked" not in notification.raw
