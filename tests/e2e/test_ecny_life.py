"""A digital RMB payment's whole life over HTTP against the partner-bank gateway sandbox: create → the wallet
pays → signed notification → webhook → refund; and offline payments, reported later in batches, credited even
when the payment was closed meanwhile, exactly once however often the batch comes."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from chalicelib.channels.base import StatementRow
from chalicelib.channels.registry import adapter
from chalicelib.crypto.sm import sm2_generate_keypair, sm2_sign
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.ledger import merchant_payable_account
from chalicelib.storage import config_repo, ledger_repo, records, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import to_item
from tests.helpers import make_merchant, wait_for

BEIJING = timezone(timedelta(hours=8))
BANK_MERCHANT = "EC4401000000001"  # the provisioner's default merchant number at the bank


@pytest.fixture(scope="module")
def ecny(channel_account: Any) -> Any:
    return channel_account("ecny")


@pytest.fixture(autouse=True)
def clear_faults(ecny: Any) -> Any:
    yield
    requests.delete(f"{ecny.sandbox_url}/_sandbox/faults", timeout=10)


def bank(ecny: Any, path: str, body: dict[str, Any] | None = None, expect: int = 200) -> dict[str, Any]:
    response = requests.post(f"{ecny.sandbox_url}{path}", json=body or {}, timeout=10)
    assert response.status_code == expect, response.text
    return dict(response.json())


def arm(ecny: Any, fault: str, **options: Any) -> None:
    bank(ecny, "/_sandbox/faults", {"fault": fault, "path_prefix": f"/callbacks/ecny/{ecny.account_id}", **options})


def deliveries(ecny: Any, **filters: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{ecny.sandbox_url}/_sandbox/deliveries", params=filters, timeout=10).json()
    return list(answer["attempts"])


def create(merchant: Any, amount: int) -> dict[str, Any]:
    return dict(merchant.create_payment(method="ecny.wallet", amount=amount))


def payment_of(merchant: Any, payment: dict[str, Any]) -> dict[str, Any]:
    return dict(merchant.get(f"/v1/payments/{payment['id']}"))


def succeeded(merchant: Any, payment: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
    return dict(wait_for(lambda: (p := payment_of(merchant, payment))["status"] == "succeeded" and p,
                         timeout_s=timeout_s))


def journals(object_id: str) -> list[dict[str, Any]]:
    return list(ledger_repo.journals_for(object_id))


def make_sync_due(key: dict[str, str]) -> None:
    client("dynamodb").update_item(
        TableName=state_repo.state_table(), Key=to_item(key), UpdateExpression="SET sync_due_at = :past",
        ExpressionAttributeValues={":past": {"S": iso(utcnow() - timedelta(seconds=1))}})


def test_wallet_payment_from_creation_to_refund(stack, ecny, merchant, drain):
    payment = create(merchant, 8888)
    assert payment["status"] == "pending"
    action = payment["action"]
    assert action["type"] == "qr_code" and action["code_url"].startswith("https://")
    assert action["order_info"].startswith("ECNYCASHIER.")  # unsealed by the hub for the app's e-CNY cashier
    assert state_repo.get_attempt(payment["attempt_id"]).account_id == ecny.account_id

    bank(ecny, "/_sandbox/pay", {"out_trade_no": payment["attempt_id"]})
    paid = succeeded(merchant, payment)
    assert paid["amount_captured"] == 8888
    drain()
    assert wait_for(lambda: "payment.succeeded" in stack.receiver.types_for(payment["id"]))

    refund = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                           {"amount": 888, "merchant_refund_no": "r1", "reason": "one cup missing"})
    assert refund.status_code == 201, refund.text
    refund_id = refund.json()["id"]
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund_id}")["status"] == "succeeded", timeout_s=15)
    drain()
    assert wait_for(lambda: "refund.succeeded" in stack.receiver.types_for(refund_id))
    after = payment_of(merchant, payment)
    assert (after["amount_refunded"], after["amount_refund_pending"]) == (888, 0)
    assert ledger_repo.balance(merchant_payable_account(merchant.merchant_id, "CNY")) == -(8888 - 888)
    order = requests.get(f"{ecny.sandbox_url}/_sandbox/orders/{payment['attempt_id']}", timeout=10).json()
    assert order["order"]["status"] == "PART_REFUNDED" and order["order"]["refunded_fen"] == 888


def test_a_refused_wallet_payment_fails(stack, ecny, merchant, drain):
    payment = create(merchant, 300)
    bank(ecny, "/_sandbox/pay", {"out_trade_no": payment["attempt_id"], "result": "fail"})
    wait_for(lambda: payment_of(merchant, payment)["status"] == "failed")
    drain()
    assert wait_for(lambda: stack.receiver.types_for(payment["id"]) == ["payment.failed"])


def test_duplicate_notifications_make_one_success_and_one_journal(stack, ecny, merchant, drain):
    payment = create(merchant, 4321)
    arm(ecny, "duplicate_callback", copies=6)
    bank(ecny, "/_sandbox/pay", {"out_trade_no": payment["attempt_id"]})
    wait_for(lambda: len([d for d in deliveries(ecny, out_trade_no=payment["attempt_id"]) if d["delivered"]]) == 6,
             timeout_s=15)
    drain()
    assert payment_of(merchant, payment)["status"] == "succeeded"
    assert len(journals(payment["attempt_id"])) == 1
    assert ledger_repo.balance(merchant_payable_account(merchant.merchant_id, "CNY")) == -4321
    assert wait_for(lambda: stack.receiver.types_for(payment["id"]) == ["payment.succeeded"])


def test_out_of_order_notifications_are_harmless(stack, ecny, merchant, drain):
    """The refund's notification arrives before the payment's own, which the bank held back."""
    payment = create(merchant, 650)
    arm(ecny, "out_of_order", delay_s=20)
    bank(ecny, "/_sandbox/pay", {"out_trade_no": payment["attempt_id"]})
    make_sync_due(records.attempt_key(payment["attempt_id"]))
    drain()  # status sync queries the gateway and learns the success while its notification is held
    assert payment_of(merchant, payment)["status"] == "succeeded"
    refund = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                           {"amount": 650, "merchant_refund_no": "ooo"}).json()
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund['id']}")["status"] == "succeeded", timeout_s=15)
    held = wait_for(lambda: [d for d in deliveries(ecny, out_trade_no=payment["attempt_id"], notify_type="PAYMENT")
                             if d["delivered"]], timeout_s=15)
    assert held[0]["status_code"] == 200  # the late payment notification is acknowledged and changes nothing
    drain()
    assert len(journals(payment["attempt_id"])) == 1 and len(journals(refund["id"])) == 1
    assert sorted(stack.receiver.types_for(payment["id"]) + stack.receiver.types_for(refund["id"])) == [
        "payment.succeeded", "refund.succeeded"]
    assert ledger_repo.balance(merchant_payable_account(merchant.merchant_id, "CNY")) == 0


def _forged_notification(ecny: Any, attempt_id: str, amount: str) -> tuple[bytes, dict[str, str]]:
    """A PAYMENT notification in the right shape, under the bank's serial, signed by a key the bank never had."""
    account = config_repo.channel_account(ecny.account_id)
    assert account is not None
    serial = next(iter(account.secrets.get_map("bank_public_keys")))
    body = json.dumps({"notify_id": "NT-forged-" + secrets.token_hex(4), "notify_type": "PAYMENT",
                       "merchant_id": BANK_MERCHANT, "create_time": "20240520120102",
                       "data": {"out_order_no": attempt_id, "order_no": "EO1", "status": "SUCCESS", "amount": amount,
                                "currency": "CNY", "txn_id": "TX1", "offline": False}}).encode()
    private_hex, public_hex = sm2_generate_keypair()
    ts, nonce = str(int(utcnow().timestamp())), secrets.token_hex(16)
    signature = sm2_sign(private_hex, public_hex, f"NOTIFY\n{ts}\n{nonce}\n".encode() + body)
    return body, {"Content-Type": "application/json", "X-ECNY-Timestamp": ts, "X-ECNY-Nonce": nonce,
                  "X-ECNY-Serial": serial, "X-ECNY-Signature": base64.b64encode(signature).decode()}


def test_a_forged_notification_is_rejected_and_changes_nothing(stack, ecny, merchant, drain):
    payment = create(merchant, 1500)
    body, headers = _forged_notification(ecny, payment["attempt_id"], "15.00")
    answer = requests.post(f"{stack.api_url}/callbacks/ecny/{ecny.account_id}", data=body, headers=headers, timeout=10)
    assert answer.status_code == 400 and answer.json()["code"] == "FAIL"
    drain()
    assert payment_of(merchant, payment)["status"] == "pending"
    assert journals(payment["attempt_id"]) == [] and stack.receiver.types_for(payment["id"]) == []


@pytest.mark.parametrize("fault", ["forged", "tampered", "stale"])
def test_a_spoiled_notification_is_refused_and_the_banks_retry_applied(stack, ecny, merchant, fault):
    payment = create(merchant, 700)
    arm(ecny, fault)
    bank(ecny, "/_sandbox/pay", {"out_trade_no": payment["attempt_id"]})
    rows = wait_for(lambda: [d for d in deliveries(ecny, out_trade_no=payment["attempt_id"]) if d["delivered"]]
                    and deliveries(ecny, out_trade_no=payment["attempt_id"]), timeout_s=15)
    first = next(r for r in rows if r["attempt"] == 1)
    assert not first["delivered"] and first["status_code"] == 400
    assert succeeded(merchant, payment)["amount_captured"] == 700
    assert len(journals(payment["attempt_id"])) == 1


# -- offline payments ------------------------------------------------------------------------------------------


def test_an_offline_payment_reported_after_the_close_is_credited(stack, ecny, drain):
    merchant = make_merchant(stack, late_success_policy="refund")  # offline money is credited whatever the policy
    payment = create(merchant, 500)
    closed = merchant.call("POST", f"/v1/payments/{payment['id']}/close")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    drain()
    assert wait_for(lambda: stack.receiver.types_for(payment["id"]) == ["payment.closed"])

    bank(ecny, "/_sandbox/offline-pay", {"out_trade_no": payment["attempt_id"], "device_id": "HW0000000001"})
    drain()
    assert payment_of(merchant, payment)["status"] == "closed"  # nobody has told the hub yet
    [batch] = bank(ecny, "/_sandbox/offline-batch", {"merchant_id": BANK_MERCHANT})["batches"]
    assert payment["attempt_id"] in [item["out_trade_no"] for item in batch["items"]]

    credited = succeeded(merchant, payment)
    assert (credited["amount_captured"], credited["amount_refunded"], credited["amount_refund_pending"]) == (500, 0, 0)
    assert len(journals(payment["attempt_id"])) == 1
    assert ledger_repo.balance(merchant_payable_account(merchant.merchant_id, "CNY")) == -500
    audit, _ = state_repo.query("pk = :pk", {":pk": f"AUDIT#{payment['attempt_id']}"})
    assert any(a["reason"] == "settled_offline_credited" for a in audit)
    drain()
    assert wait_for(lambda: stack.receiver.types_for(payment["id"]) == ["payment.closed", "payment.succeeded"])


def test_a_batch_of_several_payments_and_a_duplicate_batch_credit_each_once(stack, ecny, drain):
    one, other = make_merchant(stack), make_merchant(stack)
    closed, pending, elsewhere = create(one, 111), create(one, 222), create(other, 333)
    assert one.call("POST", f"/v1/payments/{closed['id']}/close").json()["status"] == "closed"
    for payment in (closed, pending, elsewhere):
        bank(ecny, "/_sandbox/offline-pay", {"out_trade_no": payment["attempt_id"]})
    arm(ecny, "duplicate_callback", copies=3)  # the first batch arrives three times at once
    batches = bank(ecny, "/_sandbox/offline-batch", {"merchant_id": BANK_MERCHANT})["batches"]
    [batch] = [b for b in batches if closed["attempt_id"] in [i["out_trade_no"] for i in b["items"]]]
    ours = {i["out_trade_no"] for i in batch["items"]} & {p["attempt_id"] for p in (closed, pending, elsewhere)}
    assert len(ours) == 3 and len({i["item_id"] for i in batch["items"]}) == batch["count"]

    for client_, payment, amount in ((one, closed, 111), (one, pending, 222), (other, elsewhere, 333)):
        assert succeeded(client_, payment)["amount_captured"] == amount
    wait_for(lambda: len([d for d in deliveries(ecny, batch_no=batch["batch_no"]) if d["delivered"]]) == 3)

    bank(ecny, "/_sandbox/offline-batch", {"resend_batch_no": batch["batch_no"]})  # and once more, later
    wait_for(lambda: len([d for d in deliveries(ecny, batch_no=batch["batch_no"]) if d["delivered"]]) == 4)
    drain()
    for payment in (closed, pending, elsewhere):
        assert len(journals(payment["attempt_id"])) == 1
    assert ledger_repo.balance(merchant_payable_account(one.merchant_id, "CNY")) == -(111 + 222)
    assert ledger_repo.balance(merchant_payable_account(other.merchant_id, "CNY")) == -333
    assert wait_for(lambda: stack.receiver.types_for(pending["id"]) == ["payment.succeeded"])
    assert wait_for(lambda: stack.receiver.types_for(elsewhere["id"]) == ["payment.succeeded"])
    assert [e["type"] for e in one.get("/v1/events")["data"] if e["data"]["id"] == closed["id"]].count(
        "payment.succeeded") == 1

    # The bank's statement of the day lists each offline payment once, flagged offline.
    account = config_repo.channel_account(ecny.account_id)
    assert account is not None
    channel = adapter("ecny")
    day = datetime.now(BEIJING).date().isoformat()
    rows = [r for r in channel.parse_statement(account, channel.fetch_statement(account, day))
            if isinstance(r, StatementRow) and r.object_id in ours]
    assert sorted(r.amount.minor for r in rows) == [111, 222, 333]


def test_a_new_account_takes_payments_by_configuration_alone(stack, ecny, channel_account, merchant):
    second = channel_account("ecny", account_id="ecny-second", merchant_id="EC4401000000002", priority=1)
    try:
        payment = create(merchant, 2468)
        assert state_repo.get_attempt(payment["attempt_id"]).account_id == second.account_id
        order = requests.get(f"{ecny.sandbox_url}/_sandbox/orders/{payment['attempt_id']}", timeout=10).json()
        assert order["order"]["merchant_id"] == "EC4401000000002"  # placed under the new bank merchant number
        bank(ecny, "/_sandbox/pay", {"out_trade_no": payment["attempt_id"]})
        assert succeeded(merchant, payment)["amount_captured"] == 2468
    finally:
        found = config_repo.channel_account(second.account_id)
        assert found is not None
        config_repo.put_channel_account(found.config.model_copy(update={"enabled": False}), None)
    assert state_repo.get_attempt(create(merchant, 10)["attempt_id"]).account_id == ecny.account_id
