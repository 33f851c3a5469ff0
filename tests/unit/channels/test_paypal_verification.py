"""PayPal webhook verification: the certificate scheme (message, chain, URL policy, cache, window, rotation) and
the verify-API scheme, through ``PayPalAdapter.verify_and_parse_notification`` and a fake transport."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from paypal_kit import (
    API,
    CERT_URL,
    NOW,
    OLD_CERT_URL,
    WEBHOOK_ID,
    FakeTransport,
    capture,
    event,
    json_response,
    make_kit,
    token_response,
)

from chalicelib.channels.base import HttpResponse, NotificationKind, PaymentOutcome
from chalicelib.channels.paypal import PayPalAdapter
from chalicelib.channels.paypal.certificates import CertificateRejected, check_cert_url
from chalicelib.channels.paypal.verification import signed_message
from chalicelib.domain.errors import CallbackRejected

KIT = make_kit()
EVENT = event("PAYMENT.CAPTURE.COMPLETED", capture())


def adapter(transport: FakeTransport | None = None) -> PayPalAdapter:
    return PayPalAdapter(transport or FakeTransport(), clock=lambda: NOW)


def test_message_is_the_four_fields_joined_by_bars_with_unsigned_crc32():
    # crc32(b"hello") is 907060870; a body whose crc32 has the top bit set must still print unsigned.
    assert signed_message("tid", "2024-05-20T04:00:00Z", "WH1", b"hello") == b"tid|2024-05-20T04:00:00Z|WH1|907060870"
    assert signed_message("t", "x", "w", b"\xff" * 4).split(b"|")[-1] == b"4294967295"


def test_a_webhook_signed_by_paypals_rule_verifies_and_parses():
    notification = adapter().verify_and_parse_notification(KIT.account(), KIT.callback(EVENT))
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.event_id == EVENT["id"]
    assert notification.object_id == "att_test0001"
    assert notification.payment is not None and notification.payment.outcome is PaymentOutcome.SUCCEEDED


@pytest.mark.parametrize("spoil", [
    "body", "transmission_id", "transmission_time", "webhook_id", "signature", "auth_algo", "cert_url",
])
def test_each_tampered_field_is_rejected(spoil):
    good = KIT.callback(EVENT)
    headers = dict(good.headers)
    body = good.body
    if spoil == "body":
        body = body.replace(b'"10.00"', b'"99.00"')
    elif spoil == "transmission_id":
        headers["paypal-transmission-id"] += "x"
    elif spoil == "transmission_time":
        headers["paypal-transmission-time"] = (NOW - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif spoil == "signature":
        headers["paypal-transmission-sig"] = headers["paypal-transmission-sig"][:-8] + "AAAAAAA="
    elif spoil == "auth_algo":
        headers["paypal-auth-algo"] = "SHA1withRSA"
    elif spoil == "cert_url":
        headers["paypal-cert-url"] = OLD_CERT_URL  # not pinned, and a fetch is not allowed by the fake transport
    callback = type(good)(headers=headers, body=body, received_at=good.received_at)
    account = KIT.account(settings={"webhook_id": "OTHERWEBHOOKID123"}) if spoil == "webhook_id" else KIT.account()
    transport = FakeTransport([HttpResponse(404, {}, b"")]) if spoil == "cert_url" else FakeTransport()
    with pytest.raises(CallbackRejected):
        adapter(transport).verify_and_parse_notification(account, callback)


def test_a_signature_by_a_key_paypal_never_certified_is_rejected():
    forged = KIT.callback(EVENT, signer=KIT.leaf())  # a valid-looking chain, but not the pinned one's key
    with pytest.raises(CallbackRejected, match="signature mismatch"):
        adapter().verify_and_parse_notification(KIT.account(), forged)


@pytest.mark.parametrize("offset_s", [-301, 301, -86400])
def test_transmissions_outside_the_window_are_rejected(offset_s):
    callback = KIT.callback(EVENT, sent_at=NOW + timedelta(seconds=offset_s))
    with pytest.raises(CallbackRejected, match="window"):
        adapter().verify_and_parse_notification(KIT.account(), callback)


def test_the_window_is_configurable_and_measured_from_receipt():
    callback = KIT.callback(EVENT, sent_at=NOW - timedelta(seconds=500))
    adapter().verify_and_parse_notification(KIT.account(settings={"webhook_tolerance_s": "600"}), callback)


@pytest.mark.parametrize("header", ["paypal-transmission-id", "paypal-transmission-time", "paypal-transmission-sig",
                                    "paypal-cert-url", "paypal-auth-algo"])
def test_a_missing_header_is_rejected(header):
    good = KIT.callback(EVENT)
    headers = {k: v for k, v in good.headers.items() if k != header}
    with pytest.raises(CallbackRejected, match="missing"):
        adapter().verify_and_parse_notification(KIT.account(), type(good)(headers, good.body, good.received_at))


# -- certificate chains -----------------------------------------------------------------------------------------


def test_a_certificate_that_does_not_chain_to_a_configured_root_is_rejected():
    from paypal_kit import make_cert, pem

    other_root = make_cert("Test Root", KIT.stranger, "Test Root", KIT.stranger, ca=True)  # same name, other key
    account = KIT.account(secrets={"webhook_cert_roots": {"other": pem(other_root)}})
    with pytest.raises(CallbackRejected, match="chain"):
        adapter().verify_and_parse_notification(account, KIT.callback(EVENT))
    with pytest.raises(CallbackRejected, match="no webhook_cert_roots"):
        adapter().verify_and_parse_notification(KIT.account(secrets={"webhook_cert_roots": {}}), KIT.callback(EVENT))


def test_a_leaf_whose_cn_is_not_a_paypal_name_is_rejected():
    leaf = KIT.leaf("messageverificationcerts.paypal.com.evil.example")
    account = KIT.account(pinned={CERT_URL: leaf.chain_pem})
    with pytest.raises(CallbackRejected, match="CN"):
        adapter().verify_and_parse_notification(account, KIT.callback(EVENT, signer=leaf))


def test_an_expired_or_not_yet_valid_certificate_is_rejected():
    for leaf in (KIT.leaf(not_before=NOW - timedelta(days=400), days=365), KIT.leaf(not_before=NOW + timedelta(days=1))):
        account = KIT.account(pinned={CERT_URL: leaf.chain_pem})
        with pytest.raises(CallbackRejected, match="not valid"):
            adapter().verify_and_parse_notification(account, KIT.callback(EVENT, signer=leaf))


def test_a_leaf_issued_by_another_leaf_is_rejected():
    from paypal_kit import Signer, make_cert, pem

    issuer_key = KIT.current.key
    fake_intermediate = make_cert("Test Intermediate", issuer_key, "Test Root", KIT.root_key, ca=False)
    leaf_cert = make_cert("messageverificationcerts.paypal.com", KIT.stranger, "Test Intermediate", issuer_key, ca=False)
    leaf = Signer(KIT.stranger, pem(leaf_cert, fake_intermediate))
    account = KIT.account(pinned={CERT_URL: leaf.chain_pem})
    with pytest.raises(CallbackRejected, match="chain"):
        adapter().verify_and_parse_notification(account, KIT.callback(EVENT, signer=leaf))


@pytest.mark.parametrize("url", [
    "http://api.paypal.com/v1/notifications/certs/CERT-1",
    "https://api.paypal.com.evil.example/v1/notifications/certs/CERT-1",
    "https://evilpaypal.com/cert",
    "https://attacker@api.paypal.com/cert",
    "https://api.paypal.com:8443/cert",
    "https://169.254.169.254/latest/meta-data",
    "file:///etc/passwd",
    "https://[::1/cert",
])
def test_certificate_urls_off_paypal_https_are_refused_before_any_request(url):
    with pytest.raises(CertificateRejected):
        check_cert_url(url)
    transport = FakeTransport()  # any request would fail the test
    with pytest.raises(CallbackRejected, match="certificate rejected"):
        adapter(transport).verify_and_parse_notification(KIT.account(pinned={}), KIT.callback(EVENT, cert_url=url))
    assert transport.requests == []


@pytest.mark.parametrize("url", ["https://api.paypal.com/v1/notifications/certs/CERT-1",
                                 "https://api.sandbox.paypal.com/cert", "https://paypal.com/cert",
                                 "https://API.PayPal.com:443/cert"])
def test_paypal_https_urls_pass_the_policy(url):
    check_cert_url(url)


def test_an_allowed_url_is_fetched_once_then_served_from_the_cache():
    transport = FakeTransport([HttpResponse(200, {"content-type": "application/x-pem-file"},
                                            KIT.current.chain_pem.encode())])
    paypal = adapter(transport)
    account = KIT.account(pinned={})
    for n in range(3):
        paypal.verify_and_parse_notification(account, KIT.callback(EVENT, transmission_id=f"t-{n}"))
    assert [(r.method, r.url) for r in transport.requests] == [("GET", CERT_URL)]
    assert "authorization" not in {k.lower() for k in transport.requests[0].headers}


def test_a_fetched_chain_is_still_validated():
    from paypal_kit import Signer, make_cert, pem

    self_made = make_cert("messageverificationcerts.paypal.com", KIT.stranger, "Attacker CA", KIT.stranger, ca=False)
    transport = FakeTransport([HttpResponse(200, {}, pem(self_made).encode())])
    callback = KIT.callback(EVENT, signer=Signer(KIT.stranger, pem(self_made)))
    with pytest.raises(CallbackRejected, match="chain"):
        adapter(transport).verify_and_parse_notification(KIT.account(pinned={}), callback)
    garbage = FakeTransport([HttpResponse(200, {}, b"not a certificate")])
    with pytest.raises(CallbackRejected, match="PEM"):
        adapter(garbage).verify_and_parse_notification(KIT.account(pinned={}), KIT.callback(EVENT))


# -- rotation ------------------------------------------------------------------------------------------------------


def test_rotation_with_overlap_accepts_both_certificates_then_only_the_new_one():
    old_signed = KIT.callback(EVENT, signer=KIT.old, cert_url=OLD_CERT_URL)
    new_signed = KIT.callback(EVENT, signer=KIT.current, cert_url=CERT_URL)
    both = KIT.account(pinned={OLD_CERT_URL: KIT.old.chain_pem, CERT_URL: KIT.current.chain_pem})
    paypal = adapter()
    assert paypal.verify_and_parse_notification(both, old_signed).event_id == EVENT["id"]
    assert paypal.verify_and_parse_notification(both, new_signed).event_id == EVENT["id"]
    only_new = KIT.account(pinned={CERT_URL: KIT.current.chain_pem})
    paypal.verify_and_parse_notification(only_new, new_signed)
    with pytest.raises(CallbackRejected):  # the old URL is no longer pinned and is not fetched (no response queued)
        adapter(FakeTransport([HttpResponse(404, {}, b"")])).verify_and_parse_notification(only_new, old_signed)


def test_a_certificate_pinned_under_one_url_does_not_vouch_for_another_url():
    swapped = KIT.account(pinned={CERT_URL: KIT.old.chain_pem})
    with pytest.raises(CallbackRejected, match="signature mismatch"):
        adapter().verify_and_parse_notification(swapped, KIT.callback(EVENT))


# -- the verify API ------------------------------------------------------------------------------------------------


def test_api_mode_asks_paypal_with_our_webhook_id_and_the_parsed_event():
    transport = FakeTransport([token_response(), json_response(200, {"verification_status": "SUCCESS"})])
    account = KIT.account(settings={"webhook_verification": "api"}, pinned={})
    callback = KIT.callback(EVENT, cert_url="https://evil.example/cert")  # the API mode never fetches the URL
    notification = adapter(transport).verify_and_parse_notification(account, callback)
    assert notification.event_id == EVENT["id"]
    verify = transport.requests[1]
    assert verify.url == f"{API}/v1/notifications/verify-webhook-signature"
    sent = json.loads(verify.body)
    assert sent["webhook_id"] == WEBHOOK_ID and sent["webhook_event"] == EVENT
    assert sent["transmission_sig"] == callback.headers["paypal-transmission-sig"]
    assert verify.headers["Authorization"] == "Bearer A21AAtest-token"


@pytest.mark.parametrize("answer", [json_response(200, {"verification_status": "FAILURE"}),
                                    json_response(400, {"name": "VALIDATION_ERROR", "details": [{"issue": "X"}]}),
                                    json_response(503, {"name": "SERVICE_UNAVAILABLE"})])
def test_api_mode_rejects_failure_refusal_and_outage(answer):
    transport = FakeTransport([token_response(), answer])
    account = KIT.account(settings={"webhook_verification": "api"})
    with pytest.raises(CallbackRejected):
        adapter(transport).verify_and_parse_notification(account, KIT.callback(EVENT))


def test_api_mode_still_enforces_the_window_without_calling_paypal():
    transport = FakeTransport()
    account = KIT.account(settings={"webhook_verification": "api"})
    with pytest.raises(CallbackRejected, match="window"):
        adapter(transport).verify_and_parse_notification(account, KIT.callback(EVENT, sent_at=NOW - timedelta(hours=1)))
    assert transport.requests == []


def test_an_unknown_verification_mode_is_a_configuration_error():
    with pytest.raises(ValueError, match="webhook_verification"):
        adapter().verify_and_parse_notification(KIT.account(settings={"webhook_verification": "none"}),
                                                KIT.callback(EVENT))
