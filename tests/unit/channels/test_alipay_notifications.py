"""Alipay async notifies through the adapter: verify (V1 and V2, every configured key), then parse and map."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from alipay_kit import APP_ID, NOW, PID, AlipayKit, make_kit, trade_notify

from chalicelib.channels.alipay import AlipayAdapter
from chalicelib.channels.base import (
    InboundCallback,
    NotificationKind,
    PaymentOutcome,
    RefundOutcome,
)
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets
from chalicelib.domain.errors import CallbackRejected
from chalicelib.domain.money import Money
from tests.vectors import load_vectors

VECTORS = load_vectors()


@pytest.fixture(scope="module")
def kit() -> AlipayKit:
    return make_kit()


@pytest.fixture
def adapter() -> AlipayAdapter:
    return AlipayAdapter(transport=None)  # type: ignore[arg-type]  # notifies never touch the network


def vector_account(sample: dict, appid: str, pid: str) -> ChannelAccount:
    key = sample.get("alipay_public_key_pem") or sample["alipay_public_key_b64"]
    config = ChannelAccountConfig(account_id="alipay-vector", channel="alipay", methods=("alipay.page",),
                                  api_base_url="https://openapi.alipay.com",
                                  settings={"appid": appid, "merchant_id": pid, "sign_type": "RSA2"})
    return ChannelAccount(config, ChannelSecrets({"app_private_key": "unused", "alipay_public_keys": {"2019": key}}))


def form_callback(params: dict[str, str]) -> InboundCallback:
    return InboundCallback(headers={}, body=urlencode(params).encode(), received_at=NOW)


# -- the real Alipay-signed samples --------------------------------------------------------------------------


def test_real_alipay_trade_notify_is_accepted_exactly_as_given(adapter: AlipayAdapter) -> None:
    sample = VECTORS["alipay_trade_notify_2019"]
    account = vector_account(sample, "2019073166072302", "2088531891668739")
    notification = adapter.verify_and_parse_notification(account, form_callback(sample["form"]))
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.object_id == "20190815155618536-564-57"
    assert notification.event_id == "2019081500222155624068450559358070:TRADE_SUCCESS"
    assert (notification.channel_merchant_id, notification.channel_app_id) == ("2088531891668739", "2019073166072302")
    assert notification.payment is not None
    assert notification.payment.outcome is PaymentOutcome.SUCCEEDED
    assert notification.payment.amount == Money(10, "CNY")
    assert notification.payment.channel_transaction_id == "2019081522001468450512505578"
    assert notification.payment.paid_at is not None and notification.payment.paid_at.isoformat() == "2019-08-15T15:56:24+08:00"
    assert "sign" not in notification.raw


def test_real_trade_notify_with_any_signed_field_altered_is_rejected(adapter: AlipayAdapter) -> None:
    sample = VECTORS["alipay_trade_notify_2019"]
    account = vector_account(sample, "2019073166072302", "2088531891668739")
    for name in sample["form"]:
        if name in ("sign", "sign_type"):
            continue
        altered = {**sample["form"], name: sample["form"][name] + "1"}
        with pytest.raises(CallbackRejected):
            adapter.verify_and_parse_notification(account, form_callback(altered))
    # sign_type is outside the V1 string, but a notify claiming another algorithm is still refused
    with pytest.raises(CallbackRejected, match="sign_type"):
        adapter.verify_and_parse_notification(account, form_callback({**sample["form"], "sign_type": "RSA"}))


def test_real_gateway_message_verifies_but_is_not_a_trade_notify(adapter: AlipayAdapter) -> None:
    sample = VECTORS["alipay_servicemarket_notify_2019"]
    account = vector_account(sample, "2017122801303261", "2088721996721370")
    with pytest.raises(CallbackRejected, match="notify_type"):  # got past the V2 signature check
        adapter.verify_and_parse_notification(account, form_callback(sample["form"]))
    with pytest.raises(CallbackRejected, match="signature"):
        adapter.verify_and_parse_notification(account, form_callback({**sample["form"], "title": "x"}))


# -- notifies signed by the kit's Alipay keys -----------------------------------------------------------------


@pytest.mark.parametrize("sign_type", ["RSA2", "SM2"])
def test_payment_notify_in_both_sign_types(kit: AlipayKit, adapter: AlipayAdapter, sign_type: str) -> None:
    params = kit.notify(trade_notify(), sign_type=sign_type)
    notification = adapter.verify_and_parse_notification(kit.account(sign_type), kit.callback(params))
    assert notification.payment is not None and notification.payment.outcome is PaymentOutcome.SUCCEEDED
    assert notification.payment.amount == Money(8888, "CNY")
    assert (notification.channel_merchant_id, notification.channel_app_id) == (PID, APP_ID)


def test_v2_signed_notify_is_accepted_too(kit: AlipayKit, adapter: AlipayAdapter) -> None:
    params = kit.notify(trade_notify(), keep_sign_type=True)
    assert adapter.verify_and_parse_notification(kit.account(), kit.callback(params)).object_id == "att_01HZX3K8Q"


@pytest.mark.parametrize("field", sorted(trade_notify()))
def test_each_tampered_field_is_rejected(kit: AlipayKit, adapter: AlipayAdapter, field: str) -> None:
    params = kit.notify(trade_notify())
    params[field] = params[field] + "9"
    with pytest.raises(CallbackRejected, match="signature"):
        adapter.verify_and_parse_notification(kit.account(), kit.callback(params))


def test_forged_unsigned_and_wrong_algorithm_notifies_are_rejected(kit: AlipayKit, adapter: AlipayAdapter) -> None:
    forged = kit.notify(trade_notify(), key=kit.alipay_sm2, sign_type="RSA2")
    with pytest.raises(CallbackRejected, match="signature"):
        adapter.verify_and_parse_notification(kit.account(), kit.callback(forged))
    unsigned = {k: v for k, v in kit.notify(trade_notify()).items() if k != "sign"}
    with pytest.raises(CallbackRejected, match="not signed"):
        adapter.verify_and_parse_notification(kit.account(), kit.callback(unsigned))
    with pytest.raises(CallbackRejected):  # an SM2 account never accepts an RSA2 notify
        adapter.verify_and_parse_notification(kit.account("SM2"), kit.callback(kit.notify(trade_notify())))


def test_key_rotation_with_overlap(kit: AlipayKit, adapter: AlipayAdapter) -> None:
    by_old = kit.callback(kit.notify(trade_notify(), key=kit.alipay_rsa_old))
    by_new = kit.callback(kit.notify(trade_notify()))
    both = kit.account(keys={"2023": kit.alipay_rsa_old.public_text, "2024": kit.alipay_rsa.public_text})
    assert adapter.verify_and_parse_notification(both, by_old).object_id == "att_01HZX3K8Q"
    assert adapter.verify_and_parse_notification(both, by_new).object_id == "att_01HZX3K8Q"
    only_new = kit.account(keys={"2024": kit.alipay_rsa.public_text})
    assert adapter.verify_and_parse_notification(only_new, by_new).object_id == "att_01HZX3K8Q"
    with pytest.raises(CallbackRejected):
        adapter.verify_and_parse_notification(only_new, by_old)
    with pytest.raises(CallbackRejected):
        adapter.verify_and_parse_notification(kit.account(keys={}), by_new)


def test_gbk_notify_is_decoded_with_its_charset(kit: AlipayKit, adapter: AlipayAdapter) -> None:
    params = kit.notify(trade_notify(charset="gbk", subject="乌龙茶"))
    notification = adapter.verify_and_parse_notification(kit.account(), kit.callback(params, encoding="gbk"))
    assert notification.raw["subject"] == "乌龙茶"
    with pytest.raises(CallbackRejected):  # the same bytes read as UTF-8 are not what Alipay signed
        adapter.verify_and_parse_notification(kit.account(), kit.callback({**params, "charset": "utf-8"}, "gbk"))


def test_empty_values_are_left_out_of_the_signed_string(kit: AlipayKit, adapter: AlipayAdapter) -> None:
    signed = kit.notify(trade_notify())
    with_empty = {**signed, "body": "", "passback_params": ""}  # Java rsaCheckV1 drops empty values
    assert adapter.verify_and_parse_notification(kit.account(), kit.callback(with_empty)).object_id == "att_01HZX3K8Q"


def test_malformed_bodies_are_rejected(kit: AlipayKit, adapter: AlipayAdapter) -> None:
    params = kit.notify(trade_notify())
    body = urlencode(params).encode()
    for bad in (body + b"&sign=again", "sign=中".encode(), body + b"&charset=koi8-r", b""):
        with pytest.raises(CallbackRejected):
            adapter.verify_and_parse_notification(kit.account(), InboundCallback({}, bad, NOW))


@pytest.mark.parametrize("missing", ["notify_id", "out_trade_no", "seller_id", "app_id", "trade_status", "total_amount"])
def test_signed_notify_without_a_business_field_is_rejected(kit: AlipayKit, adapter: AlipayAdapter, missing: str) -> None:
    params = kit.notify(trade_notify(**{missing: None}))  # type: ignore[arg-type]
    with pytest.raises(CallbackRejected, match="lacks"):
        adapter.verify_and_parse_notification(kit.account(), kit.callback(params))


def test_bad_amount_in_a_signed_notify_is_rejected(kit: AlipayKit, adapter: AlipayAdapter) -> None:
    for amount in ("88.888", "1e3", "-1.00", "abc"):
        with pytest.raises(CallbackRejected, match="amount"):
            adapter.verify_and_parse_notification(kit.account(), kit.callback(kit.notify(trade_notify(total_amount=amount))))


# -- what each trade_status means ------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "outcome"), [
    ("WAIT_BUYER_PAY", PaymentOutcome.PENDING), ("TRADE_SUCCESS", PaymentOutcome.SUCCEEDED),
    ("TRADE_FINISHED", PaymentOutcome.SUCCEEDED), ("SOMETHING_NEW", PaymentOutcome.PENDING),
])
def test_trade_status_mapping(kit: AlipayKit, adapter: AlipayAdapter, status: str, outcome: PaymentOutcome) -> None:
    params = kit.notify(trade_notify(trade_status=status))
    notification = adapter.verify_and_parse_notification(kit.account(), kit.callback(params))
    assert notification.payment is not None and notification.payment.outcome is outcome
    assert notification.event_id.endswith(f":{status}")


def test_unpaid_trade_closed_is_closed(kit: AlipayKit, adapter: AlipayAdapter) -> None:
    params = kit.notify(trade_notify(trade_status="TRADE_CLOSED", gmt_payment=None, receipt_amount=None,
                                     buyer_pay_amount=None, invoice_amount=None, gmt_close="2024-05-20 14:00:00"))
    notification = adapter.verify_and_parse_notification(kit.account(), kit.callback(params))
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.payment is not None and notification.payment.outcome is PaymentOutcome.CLOSED


def test_full_refund_trade_closed_is_a_refund_notification_never_a_close(kit: AlipayKit, adapter: AlipayAdapter) -> None:
    params = kit.notify(trade_notify(trade_status="TRADE_CLOSED", out_biz_no="re_01HZX9", refund_fee="88.88",
                                     gmt_refund="2024-05-20 13:00:00.512", gmt_close="2024-05-20 13:00:00"))
    notification = adapter.verify_and_parse_notification(kit.account(), kit.callback(params))
    assert notification.kind is NotificationKind.REFUND
    assert notification.object_id == "re_01HZX9"
    assert notification.payment is None and notification.refund is not None
    assert notification.refund.outcome is RefundOutcome.SUCCEEDED
    assert notification.refund.amount is None  # refund_fee is the trade's refunded total, not this refund's amount
    assert notification.event_id == "2024052000222120005012345678901234:TRADE_CLOSED:re_01HZX9"


def test_partial_refund_notify_keeps_trade_success_and_reports_the_refund(kit: AlipayKit, adapter: AlipayAdapter) -> None:
    params = kit.notify(trade_notify(out_biz_no="re_01P", refund_fee="8.88", gmt_refund="2024-05-20 13:00:00.100"))
    notification = adapter.verify_and_parse_notification(kit.account(), kit.callback(params))
    assert (notification.kind, notification.object_id) == (NotificationKind.REFUND, "re_01P")


def test_trade_closed_that_shows_a_payment_stays_succeeded(kit: AlipayKit, adapter: AlipayAdapter) -> None:
    """Refunded in full elsewhere (no out_biz_no of ours): the payer did pay, so the attempt is not closed."""
    params = kit.notify(trade_notify(trade_status="TRADE_CLOSED", refund_fee="88.88", gmt_close="2024-05-20 13:00:00"))
    notification = adapter.verify_and_parse_notification(kit.account(), kit.callback(params))
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.payment is not None and notification.payment.outcome is PaymentOutcome.SUCCEEDED
    assert notification.payment.raw_status == "TRADE_CLOSED"


def test_dedupe_key_is_notify_id_with_trade_status(kit: AlipayKit, adapter: AlipayAdapter) -> None:
    account = kit.account()
    first = adapter.verify_and_parse_notification(account, kit.callback(kit.notify(trade_notify())))
    again = adapter.verify_and_parse_notification(account, kit.callback(kit.notify(trade_notify(notify_time="x"))))
    later = adapter.verify_and_parse_notification(account, kit.callback(kit.notify(trade_notify(trade_status="TRADE_FINISHED"))))
    assert first.event_id == again.event_id != later.event_id


def test_acknowledgement_is_exactly_success() -> None:
    adapter = AlipayAdapter(transport=None)  # type: ignore[arg-type]
    ok = adapter.acknowledge(True)
    assert (ok.status, ok.body) == (200, b"success")
    refused = adapter.acknowledge(False)
    assert refused.body != b"success" and refused.status >= 400
