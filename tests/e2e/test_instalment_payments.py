"""Instalments end to end, against the Alipay sandbox over the wire: a merchant's fee table put by an operator
(audited), a payment created with ``instalments`` (validated, naming the field), the Huabei parameters arriving in
``extend_params`` exactly as Alipay takes them, the schedule in the payment, the seller's fee booked at capture and
given back in proportion by refunds, which go to Alipay like any refund."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from chalicelib.domain import ledger
from chalicelib.domain.errors import InvalidRequest
from chalicelib.service import audit, instalments
from chalicelib.storage import ledger_repo
from tests.helpers import wait_for

OPERATOR = audit.Actor("cli", "ops-test", "ops-test")
HUABEI = {"channel": "alipay", "terms": [
    {"count": 3, "buyer_rate_bps": 230, "seller_rate_bps": 230, "minimum_minor": 10_000},
    {"count": 6, "buyer_rate_bps": 450, "seller_rate_bps": 450, "minimum_minor": 10_000},
    {"count": 12, "buyer_rate_bps": 750, "seller_rate_bps": 750, "minimum_minor": 60_000}]}


@pytest.fixture
def alipay(channel_account: Any) -> Any:
    return channel_account("alipay")


def sandbox_order(local: Any, attempt_id: str) -> dict[str, Any]:
    answer = requests.get(f"{local.sandbox_url}/_sandbox/orders/{attempt_id}", timeout=10)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["order"])


def payable(merchant: Any) -> int:
    return -ledger_repo.balance(ledger.merchant_payable_account(merchant.merchant_id, "CNY"))


def refunded(merchant: Any, drain: Any, payment: dict[str, Any], amount: int, number: str) -> None:
    response = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                             {"amount": amount, "merchant_refund_no": number})
    assert response.status_code == 201, response.text
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{response.json()['id']}")["status"] == "succeeded", timeout_s=15)


def test_seller_paid_huabei_page_payment_from_fee_table_to_full_refund(stack, alipay, merchant, drain):
    instalments.put_table(OPERATOR, HUABEI, merchant_id=merchant.merchant_id)
    payment = merchant.create_payment(method="alipay.page", amount=60_000, description="Sofa",
                                      return_url="https://shop.example/return",
                                      instalments={"count": 6, "fee_payer": "seller"})
    plan = payment["instalments"]
    assert (plan["count"], plan["fee_payer"], plan["rate_bps"], plan["seller_fee"], plan["buyer_fee"]) == (
        6, "seller", 450, 2_700, 0)
    assert [i["amount"] for i in plan["instalments"]] == [10_000] * 6  # the payer repays the principal only
    signed = dict(parse_qsl(urlsplit(payment["action"]["url"]).query))
    assert json.loads(signed["biz_content"])["extend_params"] == {"hb_fq_num": "6", "hb_fq_seller_percent": "100"}

    cashier = requests.get(payment["action"]["url"], timeout=10)  # the payer opens the cashier: the trade exists
    assert cashier.status_code == 200, cashier.text
    order = sandbox_order(alipay, payment["attempt_id"])
    assert (order["hb_fq_num"], order["hb_fq_seller_percent"]) == ("6", "100")  # they arrived, as sent
    paid = requests.post(f"{alipay.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"]},
                         timeout=10)
    assert paid.status_code == 200, paid.text
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    assert payable(merchant) == 60_000 - 2_700  # Alipay keeps the seller's fee: booked with the capture
    assert merchant.get(f"/v1/payments/{payment['id']}")["instalments"] == plan

    refunded(merchant, drain, payment, 20_000, "r1")
    assert payable(merchant) == 57_300 - 20_000 + 900  # a third of the principal back: a third of the fee too
    refunded(merchant, drain, payment, 40_000, "r2")
    assert payable(merchant) == 0  # refunded in full: the whole fee came back, nothing owed either way
    assert sandbox_order(alipay, payment["attempt_id"])["refunded_fen"] == 60_000


def test_buyer_paid_huabei_qr_payment_books_no_fee_for_the_seller(stack, alipay, merchant, drain):
    instalments.put_table(OPERATOR, HUABEI, merchant_id=merchant.merchant_id)
    payment = merchant.create_payment(method="alipay.qr", amount=10_001, description="Lamp",
                                      instalments={"count": 3, "fee_payer": "buyer"})
    plan = payment["instalments"]
    assert (plan["buyer_fee"], plan["seller_fee"], plan["buyer_total"]) == (230, 0, 10_231)
    assert [(i["principal"], i["fee"]) for i in plan["instalments"]] == [(3_335, 78), (3_333, 76), (3_333, 76)]
    order = sandbox_order(alipay, payment["attempt_id"])  # precreate is a server call: it arrived at once
    assert (order["hb_fq_num"], order["hb_fq_seller_percent"]) == ("3", "0")
    requests.get(payment["action"]["qr_code"], timeout=10)
    assert requests.post(f"{alipay.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"]},
                         timeout=10).status_code == 200
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    assert payable(merchant) == 10_001  # the payer repays Huabei the fee; the seller gets the whole principal
    refunded(merchant, drain, payment, 10_001, "r1")
    assert payable(merchant) == 0


@pytest.mark.parametrize(("overrides", "param"), [
    ({"instalments": {"count": 5}}, "instalments.count"),
    ({"instalments": {"count": 3, "fee_payer": "both"}}, "instalments.fee_payer"),
    ({"instalments": {"count": 3, "extra": 1}}, "instalments.extra"),
    ({"method": "wechat.native", "instalments": {"count": 3}}, "instalments"),
    ({"amount": 9_999, "instalments": {"count": 3}}, "amount"),
    ({"amount": 59_999, "instalments": {"count": 12}}, "amount"),
    ({"settlement_currency": "HKD", "instalments": {"count": 3}}, "settlement_currency"),
])
def test_bad_instalments_are_refused_naming_the_field(stack, alipay, merchant, overrides, param):
    instalments.put_table(OPERATOR, HUABEI, merchant_id=merchant.merchant_id)
    body = {"merchant_order_no": "inst-bad", "amount": 60_000, "currency": "CNY", "description": "Sofa",
            "method": "alipay.qr", **overrides}
    response = merchant.call("POST", "/v1/payments", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param, response.text


def test_no_fee_table_no_instalments_and_the_put_is_audited(stack, alipay, merchant):
    body = {"merchant_order_no": "inst-none", "amount": 60_000, "currency": "CNY", "description": "Sofa",
            "method": "alipay.qr", "instalments": {"count": 3}}
    refused = merchant.call("POST", "/v1/payments", body)  # no table for this merchant (nor a channel default)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "instalments", refused.text
    other = {**HUABEI, "terms": HUABEI["terms"][:1]}
    instalments.put_table(OPERATOR, other, merchant_id=merchant.merchant_id)
    body["instalments"] = {"count": 6}
    refused = merchant.call("POST", "/v1/payments", body)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "instalments.count"
    records, _ = audit.list_records(action="instalments.put", target=f"alipay:{merchant.merchant_id}")
    assert records and records[0]["after"]["terms"] == other["terms"]
    with pytest.raises(InvalidRequest) as bad:
        instalments.put_table(OPERATOR, {**HUABEI, "terms": [{**HUABEI["terms"][0], "count": 9}]},
                              merchant_id=merchant.merchant_id)
    assert bad.value.param == "terms[0].count"


def test_the_operator_cli_puts_shows_and_previews_a_fee_table(stack, merchant, tmp_path, capsys):
    from payhub_cli.main import main as payhub

    path = tmp_path / "huabei.json"
    path.write_text(json.dumps(HUABEI))
    assert payhub(["instalments", "put", str(path), "--merchant", merchant.merchant_id]) == 0
    assert json.loads(capsys.readouterr().out)["scope"] == merchant.merchant_id
    assert payhub(["instalments", "show", "alipay", "--merchant", merchant.merchant_id]) == 0
    assert json.loads(capsys.readouterr().out)["terms"] == HUABEI["terms"]
    assert payhub(["instalments", "preview", "--merchant", merchant.merchant_id, "--method", "alipay.wap",
                   "--amount", "100000", "--count", "12"]) == 0
    assert json.loads(capsys.readouterr().out)["buyer_fee"] == 7_500
    path.write_text(json.dumps({**HUABEI, "terms": [{**HUABEI["terms"][0], "buyer_rate_bps": 99_999}]}))
    assert payhub(["instalments", "put", str(path), "--merchant", merchant.merchant_id]) == 1
    assert "terms[0].buyer_rate_bps" in capsys.readouterr().err


CARD_INSTALMENTS = {"channel": "unionpay", "terms": [
    {"count": 6, "buyer_rate_bps": 360, "seller_rate_bps": 0, "minimum_minor": 10_000},
    {"count": 12, "buyer_rate_bps": 720, "seller_rate_bps": 0, "minimum_minor": 10_000}]}


def test_unionpay_card_instalments_ride_on_the_gateway_consume(stack, channel_account, merchant, drain):
    unionpay = channel_account("unionpay")
    instalments.put_table(OPERATOR, CARD_INSTALMENTS, merchant_id=merchant.merchant_id)
    payment = merchant.create_payment(method="unionpay.gateway", amount=50_000, description="Bike",
                                      return_url="https://shop.example/return", instalments={"count": 6})
    assert (payment["instalments"]["buyer_fee"], payment["instalments"]["fee_payer"]) == (1_800, "buyer")
    fields = payment["action"]["fields"]
    assert (fields["txnType"], fields["txnSubType"], fields["bizType"], fields["instalTransInfo"]) == (
        "01", "03", "000201", "{numberOfInstallments=06}")
    cashier = requests.post(payment["action"]["url"], data=fields, timeout=10)  # the browser's auto-submit
    assert cashier.status_code == 200, cashier.text
    shown = requests.get(f"{unionpay.sandbox_url}/_sandbox/orders/{payment['attempt_id']}", timeout=10).json()
    assert shown["order"]["instalments"] == 6  # arrived, signed, as sent
    assert requests.post(f"{unionpay.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"]},
                         timeout=10).status_code == 200
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    assert payable(merchant) == 50_000  # the issuer bills its fee to the cardholder
    refunded(merchant, drain, payment, 50_000, "r1")  # a refund of an instalment consume is an ordinary refund
    assert payable(merchant) == 0

    body = {"merchant_order_no": "inst-up", "amount": 50_000, "currency": "CNY", "description": "Bike",
            "method": "unionpay.gateway", "instalments": {"count": 6, "fee_payer": "seller"}}
    refused = merchant.call("POST", "/v1/payments", body)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "instalments.fee_payer"
    body.update(method="unionpay.quickpass", instalments={"count": 6})
    refused = merchant.call("POST", "/v1/payments", body)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "instalments"



def test_a_day_with_seller_paid_instalments_reconciles_clean(stack, channel_account, merchant, drain, capsys):
    """The statement's rows state the trade and Alipay's ordinary fee; the seller's instalment fee is booked undated,
    so the day's ledger check compares exactly what the rows state (docs/instalments.md#ledger)."""
    import secrets
    from datetime import datetime, timedelta, timezone

    from chalicelib.recon.run import run_day
    from payhub_cli.main import main as payhub
    from tests.helpers import morning_after

    local = channel_account("alipay", account_id="alipay-inst-recon", merchant_ids=(merchant.merchant_id,),
                            merchant_id="2088" + "".join(secrets.choice("0123456789") for _ in range(12)),
                            appid="2021" + "".join(secrets.choice("0123456789") for _ in range(12)))
    instalments.put_table(OPERATOR, HUABEI, merchant_id=merchant.merchant_id)
    payment = merchant.create_payment(method="alipay.qr", amount=30_000, description="Desk",
                                      instalments={"count": 6, "fee_payer": "seller"})
    assert payhub(["sandbox", "pay", payment["id"]]) == 0, capsys.readouterr().err
    drain()
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded", timeout_s=15)
    refunded(merchant, drain, payment, 10_000, "r1")
    assert payable(merchant) == 30_000 - 1_350 - 10_000 + 450
    day = datetime.now(timezone(timedelta(hours=8))).date()
    result = run_day(local.account_id, day, now=morning_after(day), near_midnight=timedelta(0))
    assert result.ok, result.failure_reason
    assert result.unresolved == 0, json.dumps(result.run.get("items_by_kind"))


def test_unionpay_card_instalments_go_out_with_the_consume_at_the_sms_confirmation(stack, channel_account, merchant,
                                                                                    drain):
    unionpay = channel_account("unionpay")
    instalments.put_table(OPERATOR, CARD_INSTALMENTS, merchant_id=merchant.merchant_id)
    card = {"number": "6217000000000000012", "exp_month": 12, "exp_year": 2029, "phone": "13800138000"}
    payment = merchant.create_payment(method="unionpay.card", amount=24_000, card=card, description="Bike",
                                      instalments={"count": 12})
    assert (payment["instalments"]["count"], payment["instalments"]["buyer_fee"]) == (12, 1_728)
    code = requests.get(f"{unionpay.sandbox_url}/_sandbox/sms/{payment['attempt_id']}", timeout=10).json()["code"]
    confirmed = merchant.call("POST", f"/v1/payments/{payment['id']}/confirm", {"sms_code": code})
    assert confirmed.status_code == 200, confirmed.text
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded", timeout_s=15)
    shown = requests.get(f"{unionpay.sandbox_url}/_sandbox/orders/{payment['attempt_id']}", timeout=10).json()
    assert shown["order"]["instalments"] == 12  # the consume carried txnSubType 03 and instalTransInfo
    assert payable(merchant) == 24_000
