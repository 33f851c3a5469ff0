"""UnionPay ACP payments' whole life over HTTP: gateway form, QuickPass ``tn`` and card quick pay (SMS code,
3-D Secure style challenge) → the payer pays at the sandbox → signed notify → webhook → refund → webhook;
duplicates, reordering and forgeries harmless; a new account and a new certificate chain by configuration alone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.ledger import merchant_payable_account
from chalicelib.storage import config_repo, ledger_repo, records, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import to_item
from infra.local.provision.unionpay import provision, register
from sandbox.unionpay import UnionPaySandbox
from sandbox.unionpay.pki import leaf, new_ca, sign, unionpay_cn
from tests.helpers import morning_after, wait_for

DEBIT = {"number": "6217000000000000012", "exp_month": 12, "exp_year": 2029, "phone": "13800138000",
         "holder_name": "张三", "id_type": "01", "id_number": "110101199001011234"}
CHALLENGE_CREDIT = {"number": "6258000000000022", "exp_month": 12, "exp_year": 2029, "phone": "13900139000",
                    "holder_name": "李四"}
DECLINED = {"number": "6217000000000000046", "exp_month": 12, "exp_year": 2029, "phone": "13600136000"}


@pytest.fixture
def unionpay(channel_account):
    local = channel_account("unionpay")
    yield local
    requests.delete(f"{local.sandbox_url}/_sandbox/faults", timeout=10)
    requests.delete(f"{local.sandbox_url}/_sandbox/statement-faults", timeout=10)


def pay(local, attempt_id: str, **extra: Any) -> dict:
    response = requests.post(f"{local.sandbox_url}/_sandbox/pay", json={"out_trade_no": attempt_id, **extra}, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json()["order"])


def arm(local, fault: str, **options: Any) -> None:
    response = requests.post(f"{local.sandbox_url}/_sandbox/faults", json={"fault": fault, **options}, timeout=10)
    assert response.status_code == 200, response.text


def deliveries(local, attempt_id: str) -> list[dict]:
    answer = requests.get(f"{local.sandbox_url}/_sandbox/deliveries", params={"out_trade_no": attempt_id}, timeout=10)
    return list(answer.json()["attempts"])


def status_of(merchant, payment: dict) -> str:
    return str(merchant.get(f"/v1/payments/{payment['id']}")["status"])


def make_sync_due(key: dict[str, str]) -> None:
    client("dynamodb").update_item(
        TableName=state_repo.state_table(), Key=to_item(key), UpdateExpression="SET sync_due_at = :past",
        ExpressionAttributeValues={":past": {"S": iso(utcnow() - timedelta(seconds=1))}})


def refund(merchant, payment: dict, amount: int, number: str) -> str:
    response = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                             {"amount": amount, "merchant_refund_no": number, "reason": "test"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def card_payment(merchant, card: dict, amount: int = 1000) -> dict:
    return merchant.create_payment(method="unionpay.card", amount=amount, card=card, description="card order")


def sms_code(local, attempt_id: str) -> str:
    answer = requests.get(f"{local.sandbox_url}/_sandbox/sms/{attempt_id}", timeout=10)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["code"])


def confirm(merchant, payment: dict, **body: str) -> requests.Response:
    return merchant.call("POST", f"/v1/payments/{payment['id']}/confirm", body)


def post_notify(stack, account_id: str, fields: dict[str, str]) -> requests.Response:
    return requests.post(f"{stack.api_url}/callbacks/unionpay/{account_id}", data=urlencode(fields), timeout=10,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"})


def notify_fields(attempt_id: str, merchant_id: str = "777290058110048", amount: str = "555") -> dict[str, str]:
    now = datetime.now(UTC) + timedelta(hours=8)
    return {"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "accessType": "0", "bizType": "000201",
            "txnType": "01", "txnSubType": "01", "merId": merchant_id, "orderId": attempt_id.replace("_", "Z0", 1),
            "txnTime": now.strftime("%Y%m%d%H%M%S"), "txnAmt": amount, "currencyCode": "156",
            "queryId": now.strftime("%y%m%d%H%M%S") + "123456789", "respCode": "00", "respMsg": "成功",
            "settleAmt": amount, "settleCurrencyCode": "156", "settleDate": now.strftime("%m%d"), "traceNo": "000001",
            "traceTime": now.strftime("%m%d%H%M%S")}


# -- gateway, QuickPass, card ---------------------------------------------------------------------------------------------


def test_gateway_payment_from_form_to_refund(stack, unionpay, merchant, drain):
    payment = merchant.create_payment(method="unionpay.gateway", amount=8888, description="Green tea",
                                      return_url="https://shop.example/return")
    action = payment["action"]
    assert payment["status"] == "pending" and action["type"] == "form_post"
    assert action["url"] == f"{unionpay.sandbox_url}/gateway/api/frontTransReq.do"
    fields = action["fields"]
    assert (fields["orderId"], fields["txnAmt"], fields["frontUrl"]) == (
        payment["attempt_id"].replace("_", "Z0"), "8888", "https://shop.example/return")
    # Before the payer's browser posts the form, UnionPay has no transaction: status sync leaves it pending.
    make_sync_due(records.attempt_key(payment["attempt_id"]))
    drain()
    assert status_of(merchant, payment) == "pending"

    cashier = requests.post(action["url"], data=fields, timeout=10)  # the browser's auto-submit
    assert cashier.status_code == 200 and "88.88" in cashier.text
    pay(unionpay, payment["attempt_id"])
    paid = wait_for(lambda: (p := merchant.get(f"/v1/payments/{payment['id']}"))["status"] == "succeeded" and p)
    assert paid["amount_captured"] == 8888
    # Delivered and answered 200 (on a loaded machine the first try may time out at the channel while the hub
    # still records it: the retry is then answered 200 too, and deduplicated).
    answered = wait_for(lambda: [d for d in deliveries(unionpay, payment["attempt_id"]) if d["delivered"]])
    assert answered[0]["status_code"] == 200
    drain()
    assert wait_for(lambda: "payment.succeeded" in stack.receiver.types_for(payment["id"]))

    refund_id = refund(merchant, payment, 888, "r1")
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund_id}")["status"] == "succeeded", timeout_s=15)
    drain()
    assert wait_for(lambda: "refund.succeeded" in stack.receiver.types_for(refund_id))
    after = merchant.get(f"/v1/payments/{payment['id']}")
    assert (after["amount_refunded"], after["amount_refund_pending"]) == (888, 0)
    assert ledger_repo.balance(merchant_payable_account(merchant.merchant_id, "CNY")) == -(8888 - 888)


def test_quickpass_payment_through_its_tn(stack, unionpay, merchant, drain):
    payment = merchant.create_payment(method="unionpay.quickpass", amount=300, description="Refill")
    action = payment["action"]
    assert action["type"] == "app_params" and action["tn"].isdigit() and action["mode"] == "01"
    pay(unionpay, payment["attempt_id"])
    wait_for(lambda: status_of(merchant, payment) == "succeeded")
    drain()
    assert wait_for(lambda: "payment.succeeded" in stack.receiver.types_for(payment["id"]))


def test_debit_card_with_the_sms_code_through_confirm(stack, unionpay, merchant, drain):
    payment = card_payment(merchant, DEBIT, 1234)
    assert payment["action"] == {"type": "sms_verification", "phone_masked": "138****8000", "card_last4": "0012"}
    code = sms_code(unionpay, payment["attempt_id"])
    wrong = confirm(merchant, payment, sms_code="000000" if code != "000000" else "111111")
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "sms_code"
    assert status_of(merchant, payment) == "pending"
    right = confirm(merchant, payment, sms_code=code)
    assert right.status_code == 200, right.text
    assert right.json()["status"] in ("processing", "succeeded")
    wait_for(lambda: status_of(merchant, payment) == "succeeded")
    refund_id = refund(merchant, payment, 1234, "card-r")
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund_id}")["status"] == "succeeded", timeout_s=15)
    again = confirm(merchant, payment, sms_code=code)
    assert again.status_code == 409  # the payment is settled: nothing left to confirm


def test_credit_card_with_sms_then_a_3ds_challenge(stack, unionpay, merchant, drain):
    payment = card_payment(merchant, CHALLENGE_CREDIT, 2000)
    code = sms_code(unionpay, payment["attempt_id"])
    no_cvv = confirm(merchant, payment, sms_code=code)
    assert no_cvv.status_code == 400 and no_cvv.json()["error"]["param"] == "cvv"
    challenged = confirm(merchant, payment, sms_code=code, cvv="123")
    assert challenged.status_code == 200, challenged.text
    body = challenged.json()
    assert body["status"] == "processing" and body["action"]["type"] == "three_ds"
    page = requests.get(body["action"]["redirect_url"], timeout=10)
    assert page.status_code == 200 and "6258" in page.text and CHALLENGE_CREDIT["number"] not in page.text
    # The hub queries meanwhile: still being authenticated, so nothing changes and close must wait.
    make_sync_due(records.attempt_key(payment["attempt_id"]))
    drain()
    assert status_of(merchant, payment) == "processing"
    pay(unionpay, payment["attempt_id"])  # the payer passes the challenge
    wait_for(lambda: status_of(merchant, payment) == "succeeded")
    drain()
    assert wait_for(lambda: "payment.succeeded" in stack.receiver.types_for(payment["id"]))


def test_a_declined_card_fails_the_payment(stack, unionpay, merchant):
    payment = card_payment(merchant, DECLINED)
    answer = confirm(merchant, payment, sms_code=sms_code(unionpay, payment["attempt_id"]))
    assert answer.status_code == 200 and answer.json()["status"] == "failed"


def test_card_numbers_never_reach_the_hub_logs_or_records(stack, unionpay, merchant, caplog):
    caplog.set_level("DEBUG")
    payment = card_payment(merchant, DEBIT)
    confirm(merchant, payment, sms_code=sms_code(unionpay, payment["attempt_id"]))
    wait_for(lambda: status_of(merchant, payment) == "succeeded")
    assert DEBIT["number"] not in caplog.text
    shown = merchant.get(f"/v1/payments/{payment['id']}")
    assert DEBIT["number"] not in str(shown) and DEBIT["number"] not in str(state_repo.get_attempt(payment["attempt_id"]))
    order = requests.get(f"{unionpay.sandbox_url}/_sandbox/orders/{payment['attempt_id']}", timeout=10).json()
    assert DEBIT["number"] not in str(order) and order["order"]["card"].endswith("0012")


# -- duplicates, reordering, forgeries --------------------------------------------------------------------------------------


def test_duplicate_notifies_make_one_success(stack, unionpay, merchant, drain):
    payment = merchant.create_payment(method="unionpay.quickpass", amount=4321)
    arm(unionpay, "duplicate_callback", copies=6)
    pay(unionpay, payment["attempt_id"])
    wait_for(lambda: len([d for d in deliveries(unionpay, payment["attempt_id"]) if d["delivered"]]) >= 6, timeout_s=20)
    drain()
    assert status_of(merchant, payment) == "succeeded"
    assert len(ledger_repo.journals_for(payment["attempt_id"])) == 1
    events = [e for e in merchant.get("/v1/events")["data"] if e["data"]["id"] == payment["id"]]
    assert [e["type"] for e in events] == ["payment.succeeded"]


def test_out_of_order_notifies_are_harmless(stack, unionpay, merchant, drain):
    """The payment's notify is held back until after its refund's: status sync learns the payment first."""
    payment = merchant.create_payment(method="unionpay.quickpass", amount=650)
    arm(unionpay, "out_of_order", delay_s=20)
    pay(unionpay, payment["attempt_id"])
    make_sync_due(records.attempt_key(payment["attempt_id"]))
    drain()
    assert status_of(merchant, payment) == "succeeded"
    refund_id = refund(merchant, payment, 650, "ooo")
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund_id}")["status"] == "succeeded", timeout_s=15)
    late = wait_for(lambda: [d for d in deliveries(unionpay, payment["attempt_id"])
                             if d["event_type"] == "consume" and d["delivered"]], timeout_s=15)
    assert late[0]["fault"] == "out_of_order"
    drain()
    assert len(ledger_repo.journals_for(payment["attempt_id"])) == 1 and len(ledger_repo.journals_for(refund_id)) == 1
    assert sorted(e["type"] for e in merchant.get("/v1/events")["data"]) == ["payment.succeeded", "refund.succeeded"]


@pytest.mark.parametrize("fault", ["forged", "tampered"])
def test_forged_and_tampered_notifies_are_rejected(stack, unionpay, merchant, fault):
    payment = merchant.create_payment(method="unionpay.quickpass", amount=777)
    arm(unionpay, fault)
    pay(unionpay, payment["attempt_id"])
    rows = wait_for(lambda: [d for d in deliveries(unionpay, payment["attempt_id"]) if d["delivered"]]
                    and deliveries(unionpay, payment["attempt_id"]), timeout_s=15)
    first = next(r for r in rows if r["attempt"] == 1)
    assert not first["delivered"] and first["status_code"] == 400  # not 200: UnionPay sends again
    assert any(r["attempt"] >= 2 and r["delivered"] for r in rows)
    wait_for(lambda: status_of(merchant, payment) == "succeeded")


def test_a_notify_signed_by_anyone_else_changes_nothing(stack, unionpay, merchant):
    payment = merchant.create_payment(method="unionpay.quickpass", amount=555)
    _, impostor_middle = new_ca("Impostor")
    impostor = leaf(impostor_middle, unionpay_cn(7, test_cn=False))  # the right name, a chain nobody configured
    forged = post_notify(stack, unionpay.account_id, sign(notify_fields(payment["attempt_id"]), impostor))
    assert forged.status_code != 200
    unsigned = post_notify(stack, unionpay.account_id, notify_fields(payment["attempt_id"]))
    assert unsigned.status_code != 200
    genuine_but_changed = sign(notify_fields(payment["attempt_id"]), unionpay.sandbox.keys.signer)
    genuine_but_changed["txnAmt"] = "1"
    assert post_notify(stack, unionpay.account_id, genuine_but_changed).status_code != 200
    assert status_of(merchant, payment) == "pending" and state_repo.get_attempt(payment["attempt_id"]).status == "pending"


def test_a_verified_notify_for_another_amount_is_acknowledged_but_not_applied(stack, unionpay, merchant):
    payment = merchant.create_payment(method="unionpay.quickpass", amount=556)
    fields = sign(notify_fields(payment["attempt_id"], amount="1"), unionpay.sandbox.keys.signer)
    assert post_notify(stack, unionpay.account_id, fields).text == "ok"
    assert status_of(merchant, payment) == "pending"


def test_lost_notify_is_recovered_by_a_query_and_close_of_a_paid_order_is_refused(stack, unionpay, merchant, drain):
    payment = merchant.create_payment(method="unionpay.quickpass", amount=901)
    arm(unionpay, "no_callback")
    pay(unionpay, payment["attempt_id"])
    assert status_of(merchant, payment) == "pending"
    closed = merchant.call("POST", f"/v1/payments/{payment['id']}/close")
    # ACP has no close: the adapter queries, finds it paid (ORDERPAID), and the hub records the success instead.
    assert closed.status_code == 200, closed.text
    assert status_of(merchant, payment) == "succeeded"
    unpaid = merchant.create_payment(method="unionpay.quickpass", amount=902)
    assert merchant.call("POST", f"/v1/payments/{unpaid['id']}/close").status_code == 200
    assert status_of(merchant, unpaid) == "closed"
    lost = merchant.create_payment(method="unionpay.gateway", amount=903)
    arm(unionpay, "no_callback")
    pay(unionpay, lost["attempt_id"], action=lost["action"])  # the browser's form post, played by the sandbox
    make_sync_due(records.attempt_key(lost["attempt_id"]))
    drain()
    assert status_of(merchant, lost) == "succeeded"


# -- configuration alone -----------------------------------------------------------------------------------------------------


def test_a_new_account_goes_live_by_configuration_alone(stack, unionpay, merchant, drain):
    second = provision(unionpay.sandbox_url, account_id="unionpay-second", merchant_id="777290058110049", priority=1)
    try:
        payment = merchant.create_payment(method="unionpay.quickpass", amount=321)
        assert state_repo.get_attempt(payment["attempt_id"]).account_id == "unionpay-second"
        order = pay(unionpay, payment["attempt_id"])
        assert order["merchant_id"] == "777290058110049"
        wait_for(lambda: status_of(merchant, payment) == "succeeded")
        refund_id = refund(merchant, payment, 321, "second")
        drain()
        wait_for(lambda: merchant.get(f"/v1/refunds/{refund_id}")["status"] == "succeeded", timeout_s=15)
    finally:
        config_repo.put_channel_account(second.model_copy(update={"enabled": False}), None)
    after = merchant.create_payment(method="unionpay.quickpass", amount=322)
    assert state_repo.get_attempt(after["attempt_id"]).account_id == unionpay.account_id


def test_a_new_unionpay_certificate_chain_with_overlap(stack, merchant):
    """UnionPay moves to a new middle/root: its notifies fail until the account lists the new chain next to the
    old one; then both verify; once the old chain is removed, what a certificate under it signs is refused."""
    box = UnionPaySandbox(retry_scale=0.002, refund_settle_s=0.0)
    url = box.start()
    config, secrets = register(url, account_id="unionpay-rotation", merchant_id="777290058110050", priority=1)
    config_repo.put_channel_account(config, secrets)
    try:
        payment = merchant.create_payment(method="unionpay.quickpass", amount=1000)
        old_signer = box.keys.signer
        rotated = requests.post(f"{url}/_sandbox/signing-cert/rotate", json={"new_chain": True}, timeout=10).json()
        requests.post(f"{url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"]}, timeout=10)
        wait_for(lambda: any(not d["delivered"] for d in requests.get(f"{url}/_sandbox/deliveries", timeout=10).json()[
            "attempts"]), timeout_s=10)
        assert status_of(merchant, payment) == "pending"  # signed under a chain the account does not list yet

        new_middles = {rotated["middle_serial"]: rotated["middle_cert"]}
        new_roots = {rotated["root_serial"]: rotated["root_cert"]}
        config_repo.put_channel_account(config, {**secrets, "middle_certs": {**secrets["middle_certs"], **new_middles},
                                                 "root_certs": {**secrets["root_certs"], **new_roots}})
        wait_for(lambda: status_of(merchant, payment) == "succeeded", timeout_s=15)  # UnionPay's re-send verifies

        other = merchant.create_payment(method="unionpay.quickpass", amount=1001)
        old_signed = sign(notify_fields(other["attempt_id"], "777290058110050", "1001"), old_signer)
        assert post_notify(stack, "unionpay-rotation", old_signed).text == "ok"  # overlap: the old chain still counts
        config_repo.put_channel_account(config, {**secrets, "middle_certs": new_middles, "root_certs": new_roots})
        assert post_notify(stack, "unionpay-rotation", old_signed).status_code != 200
        new_signed = sign(notify_fields(other["attempt_id"], "777290058110050", "1001"), box.keys.signer)
        assert post_notify(stack, "unionpay-rotation", new_signed).text == "ok"
    finally:
        config_repo.put_channel_account(config.model_copy(update={"enabled": False}), None)
        box.stop()


def test_statement_of_the_day_lists_what_moved(stack, unionpay, merchant, drain):
    from chalicelib.channels.base import StatementKind
    from chalicelib.channels.registry import adapter

    payment = merchant.create_payment(method="unionpay.quickpass", amount=2500)
    pay(unionpay, payment["attempt_id"])
    wait_for(lambda: status_of(merchant, payment) == "succeeded")
    refund_id = refund(merchant, payment, 500, "st")
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund_id}")["status"] == "succeeded", timeout_s=15)
    account = config_repo.channel_account(unionpay.account_id)
    assert account is not None
    day = (datetime.now(UTC) + timedelta(hours=8)).date().isoformat()
    channel = adapter("unionpay")
    rows = list(channel.parse_statement(account, channel.fetch_statement(account, day)))
    found = {(row.kind, row.object_id): row for row in rows}
    paid = found[(StatementKind.PAYMENT, payment["attempt_id"])]
    assert paid.amount.minor == 2500 and paid.status == "succeeded" and paid.occurred_at.date() == date.fromisoformat(day)
    refunded = found[(StatementKind.REFUND, refund_id)]
    assert refunded.amount.minor == 500 and refunded.attempt_id == payment["attempt_id"]


# -- T+1 reconciliation on UnionPay's files ---------------------------------------------------------------------------------


@pytest.fixture
def dedicated(stack, channel_account, drain):
    """A merchant with its own UnionPay merId, so the day's file holds only its own transactions."""
    import secrets

    from tests.helpers import make_merchant

    merchant = make_merchant(stack)
    mer_id = f"7772900{secrets.randbelow(10**8):08d}"
    local = channel_account("unionpay", account_id=f"up-recon-{secrets.token_hex(4)}", merchant_id=mer_id,
                            merchant_ids=(merchant.merchant_id,), priority=1)
    yield local, merchant, mer_id
    requests.delete(f"{local.sandbox_url}/_sandbox/statement-faults", params={"merchant_id": mer_id}, timeout=10)
    drain()


def test_reconciliation_matches_a_clean_day_then_classifies_a_changed_row(dedicated, drain):
    from chalicelib.recon import repo
    from chalicelib.recon.run import run_day

    local, merchant, mer_id = dedicated
    today = (datetime.now(UTC) + timedelta(hours=8)).date()
    first = merchant.create_payment(method="unionpay.quickpass", amount=8888)
    second = merchant.create_payment(method="unionpay.quickpass", amount=100)
    for payment in (first, second):
        pay(local, payment["attempt_id"])
        wait_for(lambda p=payment: status_of(merchant, p) == "succeeded")
    refund_id = refund(merchant, first, 888, "recon")
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund_id}")["status"] == "succeeded", timeout_s=15)

    clean = run_day(local.account_id, today, now=morning_after(today), near_midnight=timedelta(0))
    assert clean.ok and clean.unresolved == 0, clean
    totals = clean.run["totals"]
    assert (totals["statement_rows"], totals["hub_records"], totals["matched"]) == (3, 3, 3)
    assert totals["by_currency"]["CNY"]["statement_settled"] == 8888 + 100 - 888

    requests.post(f"{local.sandbox_url}/_sandbox/statement-faults", timeout=10, json={
        "day": today.isoformat(), "kind": "amount", "out_trade_no": second["attempt_id"], "delta": 5,
        "merchant_id": mer_id})
    changed = run_day(local.account_id, today, now=morning_after(today), near_midnight=timedelta(0))
    items = {f"{i['object_id']}:{i['kind']}": i for i in repo.items(changed.run_id).values()}
    item = items[f"{second['attempt_id']}:amount"]
    assert item["status"] == "needs_review"
    assert {"field": "amount", "hub": "1.00", "channel": "1.05"} in item["reasons"]

    requests.post(f"{local.sandbox_url}/_sandbox/statement-faults", timeout=10, json={
        "day": today.isoformat(), "kind": "corrupt", "merchant_id": mer_id})
    broken = run_day(local.account_id, today, now=morning_after(today), near_midnight=timedelta(0))
    assert not broken.ok and "line 2" in (broken.failure_reason or "")
