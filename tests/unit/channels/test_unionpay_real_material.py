"""Genuine UnionPay ACP 5.1.0 messages, signed by UnionPay's test environment, against the hub's verifier.

The samples (tests/fixtures/unionpay_acp_test_environment.json) come from public UnionPay SDKs' tests and demo
code and were verified independently before being committed. Their root and middle certificates are SHA-1
signed, as UnionPay's real ones are: the chain step must follow the hash each certificate names. The clock is
injected (each message's own time): the signing certificates have since expired.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from unionpay_kit import MER_ID, NOW, FakeTransport, Issued, issue, make_kit, new_key, private_pem, unionpay_signed

from chalicelib.channels.base import HttpResponse, InboundCallback
from chalicelib.channels.unionpay.certs import CertificateRejected, trusted_signing_key
from chalicelib.channels.unionpay.client import AcpClient
from chalicelib.channels.unionpay.credentials import UnionPayCredentials
from chalicelib.channels.unionpay.notifications import parse_callback
from chalicelib.channels.unionpay.verification import SignatureInvalid, check_signed
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets
from chalicelib.domain.errors import CallbackRejected, ChannelError
from chalicelib.domain.money import Money
from tests.vectors import load_fixture

REAL = load_fixture("unionpay_acp_test_environment.json")
ROOT_PEM = REAL["root_cert"]["pem"]
MIDDLE_PEM = REAL["middle_cert"]["pem"]
MESSAGES = REAL["messages"]
NAMES = sorted(MESSAGES)
ANSWERS = [name for name in NAMES if MESSAGES[name]["kind"] == "answer"]
NOTIFICATIONS = [name for name in NAMES if MESSAGES[name]["kind"] == "notification"]


def at(name: str) -> datetime:
    return datetime.fromisoformat(MESSAGES[name]["received_at"].replace("Z", "+00:00"))


def fields_of(name: str) -> dict[str, str]:
    return dict(MESSAGES[name]["fields"])


def credentials(*, environment: str = "test", middles: tuple[str, ...] = (MIDDLE_PEM,),
                roots: tuple[str, ...] = (ROOT_PEM,)) -> UnionPayCredentials:
    kit = make_kit()
    config = ChannelAccountConfig(
        account_id="unionpay-real", channel="unionpay", methods=("unionpay.gateway",),
        api_base_url="https://gateway.test.invalid",
        settings={"merchant_id": MER_ID, "cert_id": kit.merchant_cert_id, "environment": environment})
    secrets = ChannelSecrets({
        "merchant_private_key": private_pem(kit.merchant_key), "encrypt_cert": kit.encrypt.pem,
        "middle_certs": {f"m{i}": pem for i, pem in enumerate(middles)},
        "root_certs": {f"r{i}": pem for i, pem in enumerate(roots)},
    })
    return UnionPayCredentials.from_account(ChannelAccount(config, secrets))


def environment_of(name: str) -> str:
    return MESSAGES[name]["environment"]


# -- the samples are what they claim to be --------------------------------------------------------------------


def test_the_real_root_and_middle_are_sha1_signed_like_unionpays() -> None:
    root = x509.load_pem_x509_certificate(ROOT_PEM.encode())
    middle = x509.load_pem_x509_certificate(MIDDLE_PEM.encode())
    assert isinstance(root.signature_hash_algorithm, hashes.SHA1)
    assert isinstance(middle.signature_hash_algorithm, hashes.SHA1)
    assert middle.issuer == root.subject
    with pytest.raises(ValueError):  # the library call the verifier used to rely on
        middle.verify_directly_issued_by(root)


@pytest.mark.parametrize("name", NAMES)
def test_every_genuine_message_is_accepted_at_its_own_time(name: str) -> None:
    check_signed(fields_of(name), credentials(environment=environment_of(name)), at(name))


@pytest.mark.parametrize("name", [n for n in NAMES if MESSAGES[n]["environment"] == "production"])
def test_production_named_certificates_are_accepted_by_a_production_account_too(name: str) -> None:
    check_signed(fields_of(name), credentials(environment="production"), at(name))


@pytest.mark.parametrize("name", [n for n in NAMES if MESSAGES[n]["environment"] == "test"])
def test_the_test_environment_signing_name_is_refused_by_a_production_account(name: str) -> None:
    with pytest.raises(SignatureInvalid, match="CN"):
        check_signed(fields_of(name), credentials(environment="production"), at(name))


# -- every altered copy is refused -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_field_of_a_genuine_message_is_covered(name: str) -> None:
    genuine = fields_of(name)
    creds = credentials(environment=environment_of(name))
    for key in genuine:
        if key in ("version", "signMethod"):
            continue  # checked by value before any signature work
        altered = dict(genuine)
        altered[key] = genuine[key][:-1] + ("0" if genuine[key][-1:] != "0" else "1")
        with pytest.raises(SignatureInvalid):
            check_signed(altered, creds, at(name))
        removed = {k: v for k, v in genuine.items() if k != key}
        with pytest.raises(SignatureInvalid):
            check_signed(removed, creds, at(name))
    with pytest.raises(SignatureInvalid, match="signature mismatch"):
        check_signed({**genuine, "reserved": "1"}, creds, at(name))


def test_a_signature_moved_to_another_genuine_message_is_refused() -> None:
    first, second = fields_of("refund_answer_2022"), fields_of("cancel_answer_2022")
    with pytest.raises(SignatureInvalid, match="signature mismatch"):
        check_signed({**first, "signature": second["signature"]}, credentials(), at("refund_answer_2022"))


def test_a_genuine_signature_under_the_other_genuine_certificate_is_refused() -> None:
    fields = fields_of("payment_notify_2022")
    fields["signPubKeyCert"] = fields_of("sdk_demo_payment_notify_2017_a")["signPubKeyCert"]
    with pytest.raises(SignatureInvalid):
        check_signed(fields, credentials(), at("sdk_demo_payment_notify_2017_a"))


# -- the chain rules are kept ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["payment_notify_2022", "sdk_demo_payment_notify_2017_a"])
def test_outside_the_validity_of_the_signing_certificate_the_message_is_refused(name: str) -> None:
    leaf = x509.load_pem_x509_certificate(fields_of(name)["signPubKeyCert"].encode())
    for moment in (leaf.not_valid_after_utc + timedelta(seconds=1), leaf.not_valid_before_utc - timedelta(seconds=1)):
        with pytest.raises(SignatureInvalid, match="validity"):
            check_signed(fields_of(name), credentials(), moment)


def test_without_the_real_middle_or_root_nothing_chains() -> None:
    kit = make_kit()
    name = "query_answer_2024"
    for creds in (credentials(middles=(kit.chain.middle.pem,)), credentials(roots=(kit.chain.root.pem,)),
                  credentials(middles=(ROOT_PEM,), roots=(ROOT_PEM,))):
        with pytest.raises(SignatureInvalid, match="does not chain"):
            check_signed(fields_of(name), creds, at(name))


def test_the_real_middle_configured_as_the_signer_is_not_a_shortcut() -> None:
    # The middle is a CA under the root, but a message must be signed by a certificate the middle issued.
    name = "query_answer_2024"
    with pytest.raises(SignatureInvalid, match="does not chain"):
        check_signed(fields_of(name), credentials(middles=(ROOT_PEM,)), at(name))


# -- through the hub's own entry points: answers via the client, notifications via the callback path ----------


@pytest.mark.parametrize("name", ANSWERS)
def test_a_genuine_answer_on_the_wire_is_accepted_by_the_client(name: str) -> None:
    body = "&".join(f"{k}={v}" for k, v in MESSAGES[name]["fields"].items()).encode("utf-8")
    transport = FakeTransport([HttpResponse(status=200, headers={}, body=body)])
    client = AcpClient(transport, clock=lambda: at(name))
    answer = client.call(credentials(environment=environment_of(name)), "https://gateway.test.invalid/q",
                         {"txnType": "00"})
    assert answer == fields_of(name)


@pytest.mark.parametrize("name", ANSWERS)
def test_a_genuine_answer_with_one_changed_amount_is_refused_by_the_client(name: str) -> None:
    fields = fields_of(name)
    fields["txnAmt"] = "100"
    body = "&".join(f"{k}={v}" for k, v in fields.items()).encode("utf-8")
    client = AcpClient(FakeTransport([HttpResponse(status=200, headers={}, body=body)]), clock=lambda: at(name))
    with pytest.raises(ChannelError) as caught:
        client.call(credentials(environment=environment_of(name)), "https://gateway.test.invalid/q", {})
    assert caught.value.channel_code == "RESPONSE_SIGNATURE_INVALID"


def _callback(fields: dict[str, str], name: str) -> InboundCallback:
    return InboundCallback(headers={"content-type": "application/x-www-form-urlencoded"},
                           body=urlencode(fields).encode(), received_at=at(name))


@pytest.mark.parametrize("name", NOTIFICATIONS)
def test_a_genuine_payment_notification_is_accepted_whole_by_the_callback_path(name: str) -> None:
    fields = fields_of(name)
    notification = parse_callback(credentials(environment=environment_of(name)), _callback(fields, name))
    assert notification.payment is not None
    assert notification.payment.channel_transaction_id == fields["queryId"]
    assert notification.payment.amount == Money(int(fields["txnAmt"]), "CNY")
    assert notification.channel_merchant_id == fields["merId"]


@pytest.mark.parametrize("name", NOTIFICATIONS)
def test_an_altered_genuine_notification_is_refused_by_the_callback_path(name: str) -> None:
    for key, value in (("txnAmt", "2"), ("respCode", "01"), ("orderId", "attZ0abcdefghijklmnopqrstuvwx")):
        with pytest.raises(CallbackRejected, match="signature check failed"):
            parse_callback(credentials(environment=environment_of(name)), _callback({**fields_of(name), key: value}, name))


# -- SHA-1 links built here, to pin the rule beyond the samples ----------------------------------------------


_SHA256_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")
_SHA1_RSA = bytes.fromhex("300d06092a864886f70d0101050500")


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + content


def _sha1_issue(common_name: str, *, issuer: Issued | None, ca: bool, usage: x509.KeyUsage | None = None) -> Issued:
    """A certificate signed sha1WithRSA, as CFCA signs UnionPay's. ``cryptography`` no longer signs
    certificates with SHA-1, so the TBS is built with SHA-256, its algorithm identifier swapped (same length)
    and the TBS signed with SHA-1 by hand."""
    key = new_key()
    signer_key = issuer.key if issuer else key
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, common_name)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer.cert.subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    template = builder.sign(signer_key, hashes.SHA256())
    tbs = template.tbs_certificate_bytes.replace(_SHA256_RSA, _SHA1_RSA, 1)
    signature = signer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    cert = x509.load_der_x509_certificate(_der(0x30, tbs + _SHA1_RSA + _der(0x03, b"\x00" + signature)))
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA1)
    return Issued(cert, key)


def _usage(*, cert_sign: bool, digital_signature: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
                         encipher_only=False, decipher_only=False)


def test_a_sha1_chain_is_followed_and_a_forged_sha1_link_is_not() -> None:
    root = _sha1_issue("Root", issuer=None, ca=True)
    middle = _sha1_issue("Middle", issuer=root, ca=True)
    signer = _sha1_issue("041@Z1@中国银联股份有限公司@1", issuer=middle, ca=False)
    trusted_signing_key(signer.pem, (middle.pem,), (root.pem,), allow_test=False, now=NOW)
    fields = unionpay_signed({"respCode": "00"}, signer)
    creds = credentials(middles=(middle.pem,), roots=(root.pem,))
    check_signed(fields, creds, NOW)
    # Same names, another key: the SHA-1 signature of the link no longer verifies.
    stranger = _sha1_issue("Middle", issuer=root, ca=True)
    with pytest.raises(CertificateRejected, match="does not chain"):
        trusted_signing_key(signer.pem, (stranger.pem,), (root.pem,), allow_test=False, now=NOW)


def test_ca_flag_and_key_usage_are_still_required() -> None:
    root = _sha1_issue("Root", issuer=None, ca=True)
    not_ca = _sha1_issue("Middle", issuer=root, ca=False)
    signer = _sha1_issue("041@Z1@中国银联股份有限公司@1", issuer=not_ca, ca=False)
    with pytest.raises(CertificateRejected, match="does not chain"):
        trusted_signing_key(signer.pem, (not_ca.pem,), (root.pem,), allow_test=False, now=NOW)
    no_cert_sign = _sha1_issue("Middle", issuer=root, ca=True, usage=_usage(cert_sign=False, digital_signature=True))
    signer = _sha1_issue("041@Z1@中国银联股份有限公司@1", issuer=no_cert_sign, ca=False)
    with pytest.raises(CertificateRejected, match="does not chain"):
        trusted_signing_key(signer.pem, (no_cert_sign.pem,), (root.pem,), allow_test=False, now=NOW)
    middle = _sha1_issue("Middle", issuer=root, ca=True, usage=_usage(cert_sign=True, digital_signature=False))
    encipher_only = _sha1_issue("041@Z1@中国银联股份有限公司@1", issuer=middle, ca=False,
                                usage=_usage(cert_sign=False, digital_signature=False))
    with pytest.raises(CertificateRejected, match="key usage"):
        trusted_signing_key(encipher_only.pem, (middle.pem,), (root.pem,), allow_test=False, now=NOW)


def test_link_signatures_by_algorithm() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    from chalicelib.crypto.x509_links import signed_by

    kit = make_kit()
    root = issue("Root", ca=True)
    assert signed_by(root.cert, root.cert)
    assert not signed_by(kit.chain.middle.cert, root.cert)  # right algorithm, wrong key
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "Other")])

    def self_signed(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
                    digest: hashes.HashAlgorithm | None) -> x509.Certificate:
        builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(NOW).not_valid_after(NOW + timedelta(days=1)))
        return builder.sign(key, digest)

    assert signed_by(ecdsa := self_signed(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()), ecdsa)
    # Ed25519 names no hash: not an algorithm a payment channel's chain uses, so never accepted.
    assert not signed_by(eddsa := self_signed(ed25519.Ed25519PrivateKey.generate(), None), eddsa)
