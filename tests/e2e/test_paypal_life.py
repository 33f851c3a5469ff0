"""PayPal payments' whole life over HTTP: create (the approve link as the action) -> the buyer approves at the
sandbox -> signed CHECKOUT.ORDER.APPROVED -> the hub's status-sync worker captures -> succeeded -> merchant webhook
-> refund against the capture -> webhook; duplicate and reordered webhooks harmless, forged ones rejected, a
second account live by configuration alone."""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, datetime, timedelta

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from chalicelib.domain.clock import iso, utcnow
from chalicelib.storage import config_repo, ledger_repo, records, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import to_item
from infra.local.provision.paypal import provision
from tests.helpers import wait_for


@pytest.fixture
def paypal(channel_account):
    local = channel_account("paypal")
    yield local
    requests.delete(f"{local.sandbox_url}/_sandbox/faults", timeout=10)


def create(merchant, amount: int = 2500, currency: str = "USD", **extra) -> dict:
    return merchant.create_payment(method="paypal.wallet", amount=amount, currency=currency, description="Green tea",
                                   return_url="https://shop.example/paypal/return", **extra)


def approve(local, attempt_id: str, result: str = "success") -> dict:
    response = requests.post(f"{local.sandbox_url}/_sandbox/pay", json={"out_trade_no": attempt_id, "result": result},
                             timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json()["order"])


def arm(local, fault: str, **options) -> None:
    response = requests.post(f"{local.sandbox_url}/_sandbox/faults", json={"fault": fault, **options}, timeout=10)
    assert response.status_code == 200, response.text


def deliveries(local, attempt_id: str) -> list[dict]:
    answer = requests.get(f"{local.sandbox_url}/_sandbox/deliveries", params={"out_trade_no": attempt_id}, timeout=10)
    return list(answer.json()["attempts"])


def status_of(merchant, payment: dict) -> str:
    return str(merchant.get(f"/v1/payments/{payment['id']}")["status"])


def settle(merchant, payment: dict, drain, wanted: str = "succeeded") -> None:
    """Run the workers (the confirm command captures) until the payment reaches ``wanted``."""
    def reached() -> bool:
        drain()
        return status_of(merchant, payment) == wanted

    wait_for(reached, timeout_s=20, every_s=0.1)


def make_sync_due(key: dict[str, str]) -> None:
    client("dynamodb").update_item(
        TableName=state_repo.state_table(), Key=to_item(key), UpdateExpression="SET sync_due_at = :past",
        ExpressionAttributeValues={":past": {"S": iso(utcnow() - timedelta(seconds=1))}})


def refund(merchant, payment: dict, amount: int, number: str) -> str:
    response = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                             {"amount": amount, "merchant_refund_no": number, "reason": "test"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_wallet_payment_from_creation_to_refund(stack, paypal, merchant, drain):
    payment = create(merchant, amount=2500)
    assert payment["status"] == "pending" and payment["action"]["type"] == "redirect_url"
    attempt = state_repo.get_attempt(payment["attempt_id"])
    assert payment["action"]["url"] == f"{paypal.sandbox_url}/checkoutnow?token={attempt.channel_order_ref}"
    approve(paypal, payment["attempt_id"])
    settle(merchant, payment, drain)
    attempt = state_repo.get_attempt(payment["attempt_id"])
    order = requests.get(f"{paypal.sandbox_url}/_sandbox/orders/{payment['attempt_id']}", timeout=10).json()["order"]
    capture = order["purchase_units"][0]["payments"]["captures"][0]
    assert capture["status"] == "COMPLETED" and attempt.channel_transaction_id == capture["id"]
    wait_for(lambda: [d for d in deliveries(paypal, payment["attempt_id"])
                      if d["event_type"] == "PAYMENT.CAPTURE.COMPLETED" and d["delivered"]], timeout_s=15)
    drain()
    assert wait_for(lambda: "payment.succeeded" in stack.receiver.types_for(payment["id"]))
    assert merchant.get(f"/v1/payments/{payment['id']}")["amount_captured"] == 2500

    refund_id = refund(merchant, payment, 600, "r1")
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund_id}")["status"] == "succeeded", timeout_s=15)
    wait_for(lambda: [d for d in deliveries(paypal, payment["attempt_id"])
                      if d["event_type"] == "PAYMENT.CAPTURE.REFUNDED" and d["delivered"]], timeout_s=15)
    drain()
    assert wait_for(lambda: "refund.succeeded" in stack.receiver.types_for(refund_id))
    after = merchant.get(f"/v1/payments/{payment['id']}")
    assert (after["amount_refunded"], after["amount_refund_pending"]) == (600, 0)
    assert len(ledger_repo.journals_for(payment["attempt_id"])) == 1 and len(ledger_repo.journals_for(refund_id)) == 1
    assert state_repo.get_refund(refund_id).channel_refund_id is not None


def test_zero_decimal_currency(stack, paypal, merchant, drain):
    payment = create(merchant, amount=1500, currency="JPY")
    approve(paypal, payment["attempt_id"])
    settle(merchant, payment, drain)
    order = requests.get(f"{paypal.sandbox_url}/_sandbox/orders/{payment['attempt_id']}", timeout=10).json()["order"]
    assert order["purchase_units"][0]["amount"] == {"currency_code": "JPY", "value": "1500"}


def test_duplicate_webhooks_make_one_success(stack, paypal, merchant, drain):
    payment = create(merchant, amount=4321)
    arm(paypal, "duplicate_callback", copies=6, count=2)  # the approval and the capture webhook, six copies each
    approve(paypal, payment["attempt_id"])
    settle(merchant, payment, drain)
    wait_for(lambda: len([d for d in deliveries(paypal, payment["attempt_id"]) if d["delivered"]]) >= 12, timeout_s=20)
    drain()
    assert status_of(merchant, payment) == "succeeded"
    assert len(ledger_repo.journals_for(payment["attempt_id"])) == 1
    events = [e for e in merchant.get("/v1/events")["data"] if e["data"]["id"] == payment["id"]]
    assert [e["type"] for e in events] == ["payment.succeeded"]


def test_out_of_order_webhooks_are_harmless(stack, paypal, merchant, drain):
    """The approval webhook is held back until after the capture's: status sync learns of the approval by a query,
    captures, and the late approval then changes nothing."""
    payment = create(merchant, amount=650)
    arm(paypal, "out_of_order", delay_s=20)
    approve(paypal, payment["attempt_id"])
    make_sync_due(records.attempt_key(payment["attempt_id"]))
    settle(merchant, payment, drain)
    kinds = wait_for(lambda: [d["event_type"] for d in deliveries(paypal, payment["attempt_id"]) if d["delivered"]]
                     if len([d for d in deliveries(paypal, payment["attempt_id"]) if d["delivered"]]) >= 2 else None,
                     timeout_s=15)
    assert kinds.index("PAYMENT.CAPTURE.COMPLETED") < kinds.index("CHECKOUT.ORDER.APPROVED")
    drain()
    assert status_of(merchant, payment) == "succeeded"
    assert len(ledger_repo.journals_for(payment["attempt_id"])) == 1


@pytest.mark.parametrize("fault", ["forged", "tampered", "stale"])
def test_spoiled_webhooks_are_rejected_and_the_genuine_retry_applies(stack, paypal, merchant, drain, fault):
    payment = create(merchant, amount=777)
    arm(paypal, fault)
    approve(paypal, payment["attempt_id"])
    rows = wait_for(lambda: [d for d in deliveries(paypal, payment["attempt_id"]) if d["delivered"]]
                    and deliveries(paypal, payment["attempt_id"]), timeout_s=15)
    first = next(r for r in rows if r["attempt"] == 1)
    assert not first["delivered"] and first["status_code"] == 400
    settle(merchant, payment, drain)


def _self_signed_paypal_lookalike() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "messageverificationcerts.paypal.com")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM).decode()


def test_a_webhook_signed_by_anyone_else_changes_nothing(stack, paypal, merchant):
    payment = create(merchant, amount=555)
    account = config_repo.channel_account(paypal.account_id)
    key, _ = _self_signed_paypal_lookalike()
    resource = {"id": "9X999999999999999", "status": "COMPLETED", "amount": {"currency_code": "USD", "value": "5.55"},
                "custom_id": payment["attempt_id"], "invoice_id": payment["attempt_id"],
                "payee": {"merchant_id": account.config.settings["merchant_id"]}}
    body = json.dumps({"id": "WH-FORGED-1", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource_type": "capture",
                       "resource": resource}).encode()
    sent_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = f"t-1|{sent_at}|{account.config.settings['webhook_id']}|{zlib.crc32(body) & 0xFFFFFFFF}".encode()
    signature = base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()
    for cert_url in ("https://attacker.example/cert.pem", f"{paypal.sandbox_url}/v1/notifications/certs/CERT-none"):
        answer = requests.post(f"{stack.api_url}/callbacks/paypal/{paypal.account_id}", data=body, timeout=10, headers={
            "Content-Type": "application/json", "PAYPAL-TRANSMISSION-ID": "t-1", "PAYPAL-TRANSMISSION-TIME": sent_at,
            "PAYPAL-TRANSMISSION-SIG": signature, "PAYPAL-CERT-URL": cert_url, "PAYPAL-AUTH-ALGO": "SHA256withRSA"})
        assert answer.status_code == 400
    assert status_of(merchant, payment) == "pending"
    assert state_repo.get_attempt(payment["attempt_id"]).status == "pending"


def test_a_declined_capture_fails_the_payment(stack, paypal, merchant, drain):
    payment = create(merchant, amount=400)
    approve(paypal, payment["attempt_id"], result="fail")
    settle(merchant, payment, drain, wanted="failed")
    assert wait_for(lambda: (drain(), "payment.failed" in stack.receiver.types_for(payment["id"]))[1])


def test_with_the_approval_webhook_lost_the_merchant_confirms_after_the_redirect(stack, paypal, merchant, drain):
    payment = create(merchant, amount=901)
    arm(paypal, "no_callback")
    approve(paypal, payment["attempt_id"])
    assert status_of(merchant, payment) == "pending"
    confirmed = merchant.call("POST", f"/v1/payments/{payment['id']}/confirm", {})
    assert confirmed.status_code == 200, confirmed.text
    settle(merchant, payment, drain)
    assert len(ledger_repo.journals_for(payment["attempt_id"])) == 1


def test_close_of_an_unapproved_payment_and_of_a_paid_one(stack, paypal, merchant, drain):
    unpaid = create(merchant, amount=902)
    closed = merchant.call("POST", f"/v1/payments/{unpaid['id']}/close")
    assert closed.status_code == 200, closed.text
    assert status_of(merchant, unpaid) == "closed"
    approve(paypal, unpaid["attempt_id"])  # approving a closed payment's order: the hub never captures it
    drain()
    assert status_of(merchant, unpaid) == "closed"
    order = requests.get(f"{paypal.sandbox_url}/_sandbox/orders/{unpaid['attempt_id']}", timeout=10).json()["order"]
    assert order["status"] == "APPROVED"


def test_a_new_account_goes_live_by_configuration_alone(stack, paypal, merchant, drain):
    second = provision(paypal.sandbox_url, account_id="paypal-second", priority=1, webhook_verification="api")
    try:
        payment = create(merchant, amount=321)
        assert state_repo.get_attempt(payment["attempt_id"]).account_id == "paypal-second"
        approve(paypal, payment["attempt_id"])
        settle(merchant, payment, drain)  # webhooks verified through PayPal's verify API for this account
        refund_id = refund(merchant, payment, 321, "second")
        drain()
        wait_for(lambda: merchant.get(f"/v1/refunds/{refund_id}")["status"] == "succeeded", timeout_s=15)
    finally:
        config_repo.put_channel_account(second.model_copy(update={"enabled": False}), None)
    after = create(merchant, amount=322)
    assert state_repo.get_attempt(after["attempt_id"]).account_id == paypal.account_id
