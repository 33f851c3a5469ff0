"""A genuine PayPal sandbox webhook delivery against the hub's certificate-mode verifier.

PayPal's certificate URL answered with the signing certificate alone (as recorded in PayPal's own SDK tests);
the configuration the docs prescribe is "fetch the URL, trust the root". The chain must be completed from the
intermediate PayPal's SDKs ship, with the root pinning, CN check and validity kept. The clock is injected.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from cryptography import x509
from paypal_kit import FakeTransport, make_cert, make_kit, pem

from chalicelib.channels.base import HttpResponse
from chalicelib.channels.paypal.certificates import CertificateRejected, CertificateStore, validate_chain
from chalicelib.channels.paypal.credentials import PayPalCredentials
from chalicelib.channels.paypal.intermediates import DIGICERT_SHA2_EV_SERVER_CA, KNOWN_INTERMEDIATES
from chalicelib.channels.paypal.verification import SignatureInvalid, verify
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets
from tests.vectors import load_fixture

REAL = load_fixture("paypal_sandbox_webhook.json")
HEADERS: dict[str, str] = REAL["headers"]
BODY: bytes = REAL["body"].encode("utf-8")
SERVED = REAL["served_certificate"]["pem"]
ROOT = REAL["root"]["pem"]
CERT_URL = HEADERS["paypal-cert-url"]
RECEIVED = datetime.fromisoformat(REAL["received_at"].replace("Z", "+00:00"))


def credentials(*, roots: dict[str, str] | None = None, intermediates: dict[str, str] | None = None,
                webhook_id: str = REAL["webhook_id"]) -> PayPalCredentials:
    config = ChannelAccountConfig(account_id="paypal-real", channel="paypal", methods=("paypal.checkout",),
                                  api_base_url="https://api-m.sandbox.paypal.com",
                                  settings={"merchant_id": "2BP3WP8PK6566", "webhook_id": webhook_id,
                                            "webhook_verification": "certificate"})
    secrets: dict[str, object] = {"client_id": "unused", "client_secret": "unused",
                                  "webhook_cert_roots": roots if roots is not None else {"digicert-ev": ROOT}}
    if intermediates is not None:
        secrets["webhook_cert_intermediates"] = intermediates
    return PayPalCredentials.from_account(ChannelAccount(config, ChannelSecrets(secrets)))


def served_leaf_only() -> FakeTransport:
    return FakeTransport([HttpResponse(200, {"content-type": REAL["served_certificate"]["content_type"]},
                                       SERVED.encode("ascii"))])


def deliver(headers: dict[str, str] = HEADERS, body: bytes = BODY, *, received_at: datetime = RECEIVED,
            creds: PayPalCredentials | None = None) -> dict:
    store = CertificateStore(served_leaf_only())
    return verify(store, None, creds or credentials(), headers, body, received_at)  # type: ignore[arg-type]


def test_the_url_served_the_signing_certificate_alone() -> None:
    served = x509.load_pem_x509_certificates(SERVED.encode())
    assert len(served) == 1
    assert served[0].issuer == x509.load_pem_x509_certificate(DIGICERT_SHA2_EV_SERVER_CA.encode()).subject


def test_the_genuine_delivery_is_accepted_with_the_documented_configuration() -> None:
    event = deliver()
    assert event["id"] == "WH-0G2756385H040842W-5Y612302CV158622M"
    assert event["event_type"] == "PAYMENT.SALE.COMPLETED"


def test_without_a_known_intermediate_the_leaf_alone_does_not_chain() -> None:
    validate_chain.cache_clear()
    with pytest.raises(CertificateRejected, match="does not chain"):
        validate_chain(SERVED, (ROOT,))
    assert validate_chain(SERVED, (ROOT,), KNOWN_INTERMEDIATES).subject_cn == "messageverificationcerts.sandbox.paypal.com"


def test_an_intermediate_configured_on_the_account_completes_the_chain_too() -> None:
    validate_chain.cache_clear()
    key = validate_chain(SERVED, (ROOT,), (DIGICERT_SHA2_EV_SERVER_CA,))
    assert key.not_after == x509.load_pem_x509_certificate(SERVED.encode()).not_valid_after_utc
    # and through the account secret: the configured one joins the known ones
    assert deliver(creds=credentials(intermediates={"digicert-ev-ca": DIGICERT_SHA2_EV_SERVER_CA}))["id"]


def test_the_root_is_still_pinned() -> None:
    other_root = make_kit().root_pem
    with pytest.raises(SignatureInvalid, match="does not chain"):
        deliver(creds=credentials(roots={"someone-else": other_root}))


def test_an_intermediate_with_the_right_name_and_the_wrong_key_completes_nothing() -> None:
    kit = make_kit()
    real = x509.load_pem_x509_certificate(DIGICERT_SHA2_EV_SERVER_CA.encode())
    cn = real.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    assert isinstance(cn, str)
    impostor = make_cert(cn, kit.stranger, "DigiCert High Assurance EV Root CA", kit.stranger, ca=True)
    validate_chain.cache_clear()
    with pytest.raises(CertificateRejected):
        validate_chain(SERVED, (ROOT,), (pem(impostor),))


@pytest.mark.parametrize("moment", [datetime.fromisoformat("2017-03-22T12:00:01+00:00"),
                                    datetime.fromisoformat("2015-03-17T23:59:59+00:00")])
def test_outside_the_signing_certificates_validity_the_chain_is_refused(moment: datetime) -> None:
    store = CertificateStore(served_leaf_only())
    creds = credentials()
    with pytest.raises(CertificateRejected, match="not valid at this time"):
        store.trusted_key(CERT_URL, creds.pinned_certs, creds.cert_roots, moment, creds.cert_intermediates)


def test_a_transmission_outside_the_window_is_refused_even_when_genuine() -> None:
    with pytest.raises(SignatureInvalid, match="window"):
        deliver(received_at=RECEIVED + timedelta(hours=1))


@pytest.mark.parametrize("spoil", [
    "body", "transmission-id", "transmission-time", "signature", "webhook-id", "cert-url-host",
])
def test_every_altered_copy_is_refused(spoil: str) -> None:
    headers, body, creds = dict(HEADERS), BODY, credentials()
    if spoil == "body":
        body = BODY.replace(b'"total":"20.00"', b'"total":"2000.00"')
    elif spoil == "transmission-id":
        headers["paypal-transmission-id"] = headers["paypal-transmission-id"][:-1] + "c"
    elif spoil == "transmission-time":
        headers["paypal-transmission-time"] = "2015-05-18T15:45:14Z"
    elif spoil == "signature":
        sig = headers["paypal-transmission-sig"]
        headers["paypal-transmission-sig"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    elif spoil == "webhook-id":
        creds = credentials(webhook_id="4JH86294D6297924H")
    else:
        headers["paypal-cert-url"] = CERT_URL.replace("api.sandbox.paypal.com", "paypal.com.example.net")
    with pytest.raises(SignatureInvalid):
        deliver(headers, body, creds=creds)
