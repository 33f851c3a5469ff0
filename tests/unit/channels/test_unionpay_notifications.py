"""UnionPay notify verification: certificate chain, CN, validity, signature, rotation
(docs/channels/unionpay.md#verification-rules)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode

import pytest
from unionpay_kit import (
    MER_ID,
    NOW,
    FakeTransport,
    issue,
    make_kit,
    payment_notify_fields,
    sign_with,
    unionpay_signed,
)

from chalicelib.channels.base import InboundCallback, NotificationKind, PaymentOutcome, RefundOutcome
from chalicelib.channels.unionpay import UnionPayAdapter
from chalicelib.domain.errors import CallbackRejected
from chalicelib.domain.money import Money


@pytest.fixture
def adapter() -> UnionPayAdapter:
    return UnionPayAdapter(FakeTransport(), clock=lambda: NOW)


def test_a_notify_signed_by_unionpay_is_accepted_and_parsed(adapter):
    kit = make_kit()
    note = adapter.verify_and_parse_notification(kit.account(), kit.notify(payment_notify_fields()))
    assert note.kind is NotificationKind.PAYMENT
    assert note.object_id == "att_abcdefghijklmnopqrstuvwx"
    assert note.channel_merchant_id == MER_ID and note.channel_app_id is None
    assert note.event_id == "782405201200000000010:01:00"
    assert note.payment is not None and note.payment.outcome is PaymentOutcome.SUCCEEDED
    assert note.payment.amount == Money(8888, "CNY")
    assert note.payment.channel_transaction_id == "782405201200000000010"
    assert note.payment.paid_at is not None and note.payment.paid_at.isoformat() == "2024-05-20T12:00:05+08:00"
    assert "signature" not in note.raw and "signPubKeyCert" not in note.raw


def test_a_refund_notify_is_a_refund_notification(adapter):
    kit = make_kit()
    fields = payment_notify_fields(orderId="reZ0abcdefghijklmnopqrstuvwx", txnType="04", txnSubType="00",
                                   queryId="782405201300000000020", txnAmt="888", origQryId="782405201200000000010")
    note = adapter.verify_and_parse_notification(kit.account(), kit.notify(fields))
    assert note.kind is NotificationKind.REFUND and note.object_id == "re_abcdefghijklmnopqrstuvwx"
    assert note.refund is not None and note.refund.outcome is RefundOutcome.SUCCEEDED
    assert note.refund.amount == Money(888, "CNY") and note.refund.channel_refund_id == "782405201300000000020"


def _tampered(callback: InboundCallback, name: str, value: str) -> InboundCallback:
    fields = dict(parse_qsl(callback.body.decode(), keep_blank_values=True))
    fields[name] = value
    return replace(callback, body=urlencode(fields).encode())


@pytest.mark.parametrize("name", sorted(payment_notify_fields()))
def test_each_changed_field_is_rejected(adapter, name):
    kit = make_kit()
    callback = kit.notify(payment_notify_fields())
    original = dict(parse_qsl(callback.body.decode()))[name]
    with pytest.raises(CallbackRejected):
        adapter.verify_and_parse_notification(kit.account(), _tampered(callback, name, original + "1"))


def test_an_added_field_is_rejected_because_every_received_field_is_signed(adapter):
    kit = make_kit()
    with pytest.raises(CallbackRejected, match="signature mismatch"):
        adapter.verify_and_parse_notification(kit.account(), _tampered(kit.notify(payment_notify_fields()), "extra", "1"))


def test_a_removed_field_is_rejected(adapter):
    kit = make_kit()
    fields = dict(parse_qsl(kit.notify(payment_notify_fields()).body.decode()))
    del fields["settleAmt"]
    callback = InboundCallback(headers={}, body=urlencode(fields).encode(), received_at=NOW)
    with pytest.raises(CallbackRejected):
        adapter.verify_and_parse_notification(kit.account(), callback)


def test_the_certificate_itself_is_part_of_the_signed_string(adapter):
    kit = make_kit()
    # Swap in another valid UnionPay certificate but keep the original signature: must fail.
    callback = kit.notify(payment_notify_fields())
    swapped = _tampered(callback, "signPubKeyCert", kit.renewed_signer.pem)
    with pytest.raises(CallbackRejected, match="signature mismatch"):
        adapter.verify_and_parse_notification(kit.account(), swapped)


def test_a_forged_signature_with_the_real_certificate_is_rejected(adapter):
    kit = make_kit()
    fields = unionpay_signed(payment_notify_fields(), kit.chain.signer)
    fields["signature"] = sign_with(kit.impostor.signer.key, fields)
    callback = InboundCallback(headers={}, body=urlencode(fields).encode(), received_at=NOW)
    with pytest.raises(CallbackRejected, match="signature mismatch"):
        adapter.verify_and_parse_notification(kit.account(), callback)


def test_an_impostor_chain_with_the_right_name_is_rejected(adapter):
    kit = make_kit()
    with pytest.raises(CallbackRejected, match="does not chain"):
        adapter.verify_and_parse_notification(kit.account(), kit.notify(payment_notify_fields(), kit.impostor.signer))


def test_a_self_signed_certificate_with_the_right_name_is_rejected(adapter):
    kit = make_kit()
    self_signed = issue("041@Z12400000000000000@中国银联股份有限公司@00000001")
    with pytest.raises(CallbackRejected, match="does not chain"):
        adapter.verify_and_parse_notification(kit.account(), kit.notify(payment_notify_fields(), self_signed))


def test_a_certificate_from_the_right_chain_with_the_wrong_name_is_rejected(adapter):
    kit = make_kit()
    with pytest.raises(CallbackRejected, match="CN"):
        adapter.verify_and_parse_notification(kit.account(), kit.notify(payment_notify_fields(), kit.wrong_cn_signer))


def test_an_expired_certificate_is_rejected(adapter):
    kit = make_kit()
    with pytest.raises(CallbackRejected, match="validity"):
        adapter.verify_and_parse_notification(kit.account(), kit.notify(payment_notify_fields(), kit.expired_signer))


def test_a_cached_certificate_stops_verifying_when_it_expires(adapter):
    kit = make_kit()
    account = kit.account()
    callback = kit.notify(payment_notify_fields())
    adapter.verify_and_parse_notification(account, callback)  # now cached
    later = replace(callback, received_at=kit.chain.signer.cert.not_valid_after_utc + timedelta(seconds=1))
    with pytest.raises(CallbackRejected, match="validity"):
        adapter.verify_and_parse_notification(account, later)


def test_the_test_environment_name_is_accepted_only_in_the_test_environment(adapter):
    kit = make_kit()
    callback = kit.notify(payment_notify_fields(), kit.test_cn_signer)
    with pytest.raises(CallbackRejected, match="CN"):
        adapter.verify_and_parse_notification(kit.account(environment="production"), callback)
    assert adapter.verify_and_parse_notification(kit.account(environment="test"), callback).payment is not None


def test_an_intermediate_that_is_not_a_ca_cannot_issue(adapter):
    kit = make_kit()
    not_ca = issue("041@Z1@中国银联股份有限公司@9", issuer=kit.chain.middle)  # a leaf, not a CA
    leaf = issue("041@Z1@中国银联股份有限公司@10", issuer=not_ca)
    account = kit.account()
    account.secrets._values["middle_certs"] = {"x": not_ca.pem}  # type: ignore[attr-defined]
    with pytest.raises(CallbackRejected, match="does not chain"):
        adapter.verify_and_parse_notification(account, kit.notify(payment_notify_fields(), leaf))


@pytest.mark.parametrize(("name", "value", "reason"), [
    ("version", "5.0.0", "version"), ("signMethod", "11", "signMethod"), ("signature", "", "missing signature"),
    ("signPubKeyCert", "", "missing signPubKeyCert"), ("signPubKeyCert", "not a pem", "rejected"),
    ("signature", "%%%", "signature mismatch"),
])
def test_envelope_problems_are_rejected(adapter, name, value, reason):
    kit = make_kit()
    with pytest.raises(CallbackRejected, match=reason):
        adapter.verify_and_parse_notification(kit.account(), _tampered(kit.notify(payment_notify_fields()), name, value))


@pytest.mark.parametrize("body", [b"\xff\xfe", b"a=1&a=2", b""])
def test_unreadable_bodies_are_rejected(adapter, body):
    with pytest.raises(CallbackRejected):
        adapter.verify_and_parse_notification(make_kit().account(), InboundCallback({}, body, NOW))


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"txnType": "31"}, "txnType"), ({"orderId": "attZ9abcdefgh"}, "orderId"), ({"txnAmt": "88.88"}, "amount"),
    ({"currencyCode": "999"}, "amount"), ({"queryId": ""}, "queryId"),
])
def test_signed_but_unusable_notifies_are_rejected(adapter, overrides, reason):
    kit = make_kit()
    fields = {k: v for k, v in payment_notify_fields(**overrides).items() if v}
    with pytest.raises(CallbackRejected, match=reason):
        adapter.verify_and_parse_notification(kit.account(), kit.notify(fields))


@pytest.mark.parametrize(("code", "outcome"), [("00", PaymentOutcome.SUCCEEDED), ("05", PaymentOutcome.PENDING),
                                               ("61", PaymentOutcome.FAILED), ("Q9", PaymentOutcome.PENDING)])
def test_notify_resp_codes_map_like_query_codes(adapter, code, outcome):
    kit = make_kit()
    note = adapter.verify_and_parse_notification(kit.account(), kit.notify(payment_notify_fields(respCode=code)))
    assert note.payment is not None and note.payment.outcome is outcome
    assert note.event_id.endswith(f":{code}")


# -- rotation with overlap ---------------------------------------------------------------------------------------------


def test_renewed_signing_certificate_overlaps_with_the_old_one(adapter):
    kit = make_kit()
    account = kit.account()
    for signer in (kit.chain.signer, kit.renewed_signer):
        assert adapter.verify_and_parse_notification(account, kit.notify(payment_notify_fields(), signer)).payment


def test_middle_and_root_rotation_overlaps_then_the_old_chain_stops(adapter):
    kit = make_kit()
    old, new = kit.chain, kit.chain_b
    both = kit.account(chains=(old, new))
    for chain in (old, new):
        assert adapter.verify_and_parse_notification(both, kit.notify(payment_notify_fields(), chain.signer)).payment
    only_new = kit.account(chains=(new,))
    assert adapter.verify_and_parse_notification(only_new, kit.notify(payment_notify_fields(), new.signer)).payment
    with pytest.raises(CallbackRejected, match="does not chain"):
        adapter.verify_and_parse_notification(only_new, kit.notify(payment_notify_fields(), old.signer))


def test_acknowledgements():
    adapter = UnionPayAdapter(FakeTransport())
    ok, bad = adapter.acknowledge(True), adapter.acknowledge(False)
    assert (ok.status, ok.body) == (200, b"ok")
    assert bad.status != 200
