"""Drives the PayPal sandbox with paypal-server-sdk, in a process of its own.

Run as ``python -S paypal_sdk_driver.py`` with only the SDK's own directory (``.venv/paypal-sdk``) on
``PYTHONPATH``: ``-S`` keeps the project's virtualenv out, and nothing here imports the project, so the SDK's
top-level ``tests`` package cannot shadow the project's. Reads its job as JSON on stdin, writes what the SDK
answered as JSON on stdout; ``test_paypal_sdk.py`` judges it. The sandbox host replaces PayPal's in the SDK's
table of environments, which is the only thing changed.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from typing import Any

from paypalserversdk.configuration import Configuration, Environment, Server
from paypalserversdk.exceptions.error_exception import ErrorException
from paypalserversdk.http.auth.o_auth_2 import ClientCredentialsAuthCredentials
from paypalserversdk.models.amount_with_breakdown import AmountWithBreakdown
from paypalserversdk.models.checkout_payment_intent import CheckoutPaymentIntent
from paypalserversdk.models.money import Money
from paypalserversdk.models.order_request import OrderRequest
from paypalserversdk.models.purchase_unit_request import PurchaseUnitRequest
from paypalserversdk.models.refund_request import RefundRequest
from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient


def approve(base_url: str, custom_id: str) -> str:
    """The buyer approves at PayPal (the sandbox's control API stands in for the buyer's browser)."""
    request = urllib.request.Request(f"{base_url}/_sandbox/pay", data=json.dumps({"out_trade_no": custom_id}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - 127.0.0.1 sandbox
        return str(json.loads(answer.read())["order"]["status"])


def run(job: dict[str, Any]) -> dict[str, Any]:
    base_url = job["base_url"]
    Configuration.environments = {Environment.SANDBOX: {Server.DEFAULT: base_url}}
    client = PaypalServersdkClient(
        client_credentials_auth_credentials=ClientCredentialsAuthCredentials(
            o_auth_client_id=job["client_id"], o_auth_client_secret=job["client_secret"]),
        environment=Environment.SANDBOX, timeout=10)
    custom_id = job["custom_id"]
    out: dict[str, Any] = {}

    created = client.orders.create_order({
        "body": OrderRequest(intent=CheckoutPaymentIntent.CAPTURE, purchase_units=[PurchaseUnitRequest(
            amount=AmountWithBreakdown(currency_code="USD", value="25.00"), custom_id=custom_id, invoice_id=custom_id)]),
        "paypal_request_id": f"create-{custom_id}", "prefer": "return=representation"})
    order_id = created.body.id
    out["create"] = {"status_code": created.status_code, "id": order_id, "status": created.body.status,
                     "links": sorted(link.rel for link in created.body.links)}
    again = client.orders.create_order({
        "body": OrderRequest(intent=CheckoutPaymentIntent.CAPTURE, purchase_units=[PurchaseUnitRequest(
            amount=AmountWithBreakdown(currency_code="USD", value="25.00"), custom_id=custom_id, invoice_id=custom_id)]),
        "paypal_request_id": f"create-{custom_id}", "prefer": "return=representation"})
    out["create_again_id"] = again.body.id
    out["get_before"] = client.orders.get_order({"id": order_id}).body.status
    out["approved"] = approve(base_url, custom_id)
    out["get_after_approval"] = client.orders.get_order({"id": order_id}).body.status

    captured = client.orders.capture_order({"id": order_id, "paypal_request_id": f"capture-{custom_id}",
                                            "prefer": "return=representation"})
    capture = captured.body.purchase_units[0].payments.captures[0]
    out["capture"] = {"status_code": captured.status_code, "order_status": captured.body.status, "id": capture.id,
                      "status": capture.status, "value": capture.amount.value, "custom_id": capture.custom_id}
    out["get_capture"] = client.payments.get_captured_payment({"capture_id": capture.id}).body.status

    refunded = client.payments.refund_captured_payment({
        "capture_id": capture.id, "body": RefundRequest(amount=Money(currency_code="USD", value="10.00")),
        "paypal_request_id": f"refund-{custom_id}", "prefer": "return=representation"})
    out["refund"] = {"status_code": refunded.status_code, "id": refunded.body.id, "status": refunded.body.status,
                     "value": refunded.body.amount.value}
    out["get_refund"] = client.payments.get_refund({"refund_id": refunded.body.id}).body.status

    try:
        client.orders.get_order({"id": "5O190127TN364715T"})
        out["unknown_order"] = "answered"
    except ErrorException as exc:
        out["unknown_order"] = {"status_code": exc.response_code, "name": exc.name}
    return out


if __name__ == "__main__":
    print(json.dumps(run(json.load(sys.stdin))))
