"""Payments presented in one currency and settled in another, over HTTP against the channel sandboxes: a rate
published by the operator CLI (audited), locked at creation, a Stripe USD payment settled in CNY paid and
refunded partially then fully at the locked rate while a newer rate is in force, the ledger checked in both
currencies; refusals naming their field; a WeChat Pay CNY payment settled in HKD paid out to the merchant in HKD;
a PayPal JPY payment settled in KWD (zero and three decimals); the channel converting at its own rate (the
difference booked); the merchant's statement in the settlement currency."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
import requests

from chalicelib.domain import ledger
from chalicelib.domain.clock import BEIJING, beijing_today, utcnow
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.money import Money
from chalicelib.service import audit, fx_rates, settlement
from chalicelib.storage import ledger_repo
from tests.helpers import wait_for

OPERATOR = audit.Actor("cli", "ops-test", "ops-test")


@pytest.fixture(scope="module")
def stripe(channel_account: Any) -> Any:
    return channel_account("stripe")


def cli(capsys: Any, *argv: str) -> tuple[int, Any, str]:
    from payhub_cli.main import main as payhub

    code = payhub(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def balance(account: str) -> int:
    return ledger_repo.balance(account)


def refund(merchant: Any, drain: Any, payment_id: str, amount: int) -> dict[str, Any]:
    made = merchant.call("POST", f"/v1/payments/{payment_id}/refunds",
                         {"amount": amount, "merchant_refund_no": f"r{uuid.uuid4().hex[:12]}"})
    assert made.status_code == 201, made.text
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{made.json()['id']}")["status"] == "succeeded", timeout_s=15)
    return merchant.get(f"/v1/refunds/{made.json()['id']}")


def test_a_usd_payment_settled_in_cny_is_refunded_at_its_locked_rate(stack, stripe, merchant, drain, capsys):
    code, rate, _ = cli(capsys, "fx", "put-rate", "--pair", "USDCNY", "--rate", "7.1234", "--source", "boc-midday",
                        "--valid-minutes", "30")
    assert code == 0 and (rate["pair"], rate["rate"], rate["source"]) == ("USDCNY", "7.1234", "boc-midday")
    records, _ = audit.list_records(action="fx.put_rate", target="USDCNY")
    assert any(r["after"]["id"] == rate["id"] for r in records)

    payment = merchant.create_payment(method="stripe.card", currency="USD", amount=2500, settlement_currency="CNY")
    # 25.00 USD at 7.1234 = 178.085 CNY, truncated to the fen: 178.08
    assert (payment["amount"], payment["currency"]) == (2500, "USD")
    assert (payment["settlement_amount"], payment["settlement_currency"]) == (17_808, "CNY")
    assert payment["fx_rate"] == {k: rate[k] for k in ("id", "pair", "rate", "source", "as_of", "valid_until")}

    # A newer rate is published; the payment keeps the one it locked.
    code, newer, _ = cli(capsys, "fx", "put-rate", "--pair", "USDCNY", "--rate", "7.5", "--source", "boc-close",
                         "--valid-minutes", "30")
    assert code == 0 and fx_rates.latest_valid("USDCNY", utcnow()).rate_id == newer["id"]

    answer = requests.post(f"{stripe.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"],
                                                                        "result": "success"}, timeout=10)
    assert answer.status_code == 200, answer.text
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    drain()
    clearing = ledger.clearing_account(stripe.account_id, "USD")
    payable = ledger.merchant_payable_account(merchant.merchant_id, "CNY")
    clearing_before = balance(clearing)
    assert balance(payable) == -17_808
    assert balance(ledger.merchant_payable_account(merchant.merchant_id, "USD")) == 0
    captured = ledger_repo.journals_for(payment["attempt_id"])
    assert len(captured) == 1 and captured[0]["purpose"] == "payment_captured"

    first = refund(merchant, drain, payment["id"], 1_000)  # 1000 * 17808 / 2500 = 7123.2 -> 7123
    assert (first["amount"], first["currency"], first["settlement_amount"], first["settlement_currency"]) == (
        1_000, "USD", 7_123, "CNY")
    after_first = merchant.get(f"/v1/payments/{payment['id']}")
    assert (after_first["amount_refunded"], after_first["settlement_amount_refunded"]) == (1_000, 7_123)
    assert balance(payable) == -(17_808 - 7_123)

    too_much = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                             {"amount": 1_501, "merchant_refund_no": "too-much"})
    assert too_much.status_code == 422 and too_much.json()["error"]["param"] == "amount"

    last = refund(merchant, drain, payment["id"], 1_500)  # the rest: exactly what is left of the CNY side
    assert (last["settlement_amount"], last["settlement_currency"]) == (17_808 - 7_123, "CNY")
    done = merchant.get(f"/v1/payments/{payment['id']}")
    assert (done["amount_refunded"], done["settlement_amount_refunded"]) == (2_500, 17_808)
    assert done["fx_rate"]["id"] == rate["id"]
    assert balance(payable) == 0
    assert balance(clearing) == clearing_before - 2_500
    journal = ledger_repo.journal("refund_paid", last["id"])
    assert journal is not None
    lines = {(e["account"], e["currency"]): int(e["amount"]) for e in journal["entries"]}  # type: ignore[union-attr]
    assert lines == {(payable, "CNY"): 10_685, (ledger.fx_position_account("USDCNY", "CNY"), "CNY"): -10_685,
                     (ledger.fx_position_account("USDCNY", "USD"), "USD"): 1_500, (clearing, "USD"): -1_500}


def test_refusals_name_their_field(stack, stripe, merchant, capsys):
    body = {"merchant_order_no": f"o{uuid.uuid4().hex[:20]}", "amount": 2500, "currency": "USD",
            "description": "fx", "method": "stripe.card"}
    none = merchant.call("POST", "/v1/payments", {**body, "settlement_currency": "JPY"})  # no USDJPY rate at all
    assert none.status_code == 422, none.text
    assert (none.json()["error"]["code"], none.json()["error"]["param"]) == ("fx_rate_unavailable", "settlement_currency")

    fx_rates.put_rate(OPERATOR, "USDEUR", "0.92", "ecb", 60, as_of=utcnow() - timedelta(hours=2))  # expired an hour ago
    expired = merchant.call("POST", "/v1/payments", {**body, "settlement_currency": "EUR"})
    assert expired.status_code == 422 and expired.json()["error"]["param"] == "settlement_currency"

    unknown = merchant.call("POST", "/v1/payments", {**body, "settlement_currency": "XXX"})
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "settlement_currency"

    same = merchant.create_payment(**{**body, "settlement_currency": "USD"})  # its own currency: nothing converted
    assert (same["settlement_amount"], same["settlement_currency"], same["fx_rate"]) == (2500, "USD", None)

    for argv, field in ((("--pair", "USDUSD", "--rate", "1"), "pair"), (("--pair", "USDCNY", "--rate", "-7"), "rate"),
                        (("--pair", "USDCNY", "--rate", "7.1", "--valid-minutes", "0"), "valid_minutes")):
        args = ["fx", "put-rate", *argv, "--source", "desk"]
        if "--valid-minutes" not in argv:
            args += ["--valid-minutes", "5"]
        code, _, err = cli(capsys, *args)
        assert code == 1 and field in err, (argv, err)


def test_rates_loaded_from_a_file_and_a_cny_payment_settled_in_hkd_is_settled_in_hkd(stack, merchant, drain,
                                                                                         tmp_path, capsys):
    rates_file = tmp_path / "rates.json"
    rates_file.write_text(json.dumps({"source": "hkma-fixing", "valid_minutes": 60,
                                      "rates": {"CNYHKD": "1.0842", "CNYUSD": "0.1403"}}))
    code, loaded, _ = cli(capsys, "fx", "load-rates", str(rates_file))
    assert code == 0 and [r["pair"] for r in loaded] == ["CNYHKD", "CNYUSD"]

    yesterday: date = beijing_today() - timedelta(days=1)
    payment = merchant.create_payment(amount=10_000, settlement_currency="HKD")  # 100.00 CNY -> 108.42 HKD
    assert (payment["settlement_amount"], payment["settlement_currency"]) == (10_842, "HKD")
    paid = requests.post(f"{stack.sandbox_url}/_sandbox/pay", timeout=10, json={
        "out_trade_no": payment["attempt_id"],
        "paid_at": datetime.combine(yesterday, time(12), tzinfo=BEIJING).isoformat()})
    assert paid.status_code == 200, paid.text
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    drain()
    back = refund(merchant, drain, payment["id"], 3_333)  # 3333 * 10842 / 10000 = 3613.6 -> 3613
    assert back["settlement_amount"] == 3_613

    settlement.set_terms(OPERATOR, merchant.merchant_id, {"delay_days": 0, "minimum_minor": 0, "fee_bps": 0,
                                                          "reserve_id": "rsv-hk-1", "currencies": ["HKD"],
                                                          "payee_account_no": "012345678901", "payee_name": "HK Tea"})
    # Yesterday's HKD capture less today's refund at the locked rate: a refund takes money away at once.
    record = settlement.settle_day(merchant.merchant_id, "HKD", yesterday)
    assert (record["currency"], record["gross"], record["net"]) == ("HKD", 10_842 - 3_613, 10_842 - 3_613)
    assert balance(ledger.merchant_payable_account(merchant.merchant_id, "HKD")) == 0
    assert balance(ledger.merchant_payable_account(merchant.merchant_id, "CNY")) == 0
    assert balance(ledger.merchant_settling_account(merchant.merchant_id, "HKD")) == -(10_842 - 3_613)


def test_the_channel_converting_at_its_own_rate_books_the_difference(stack, stripe, merchant, drain, capsys):
    from chalicelib.service import fx_conversions

    fx_rates.put_rate(OPERATOR, "USDSGD", "1.3412", "mas-reference", 60)
    payments = [merchant.create_payment(method="stripe.card", currency="USD", amount=amount, settlement_currency="SGD")
                for amount in (10_000, 3_333)]
    assert [p["settlement_amount"] for p in payments] == [13_412, 4_470]  # 44.70222 truncated
    for payment in payments:
        requests.post(f"{stripe.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"],
                                                                  "result": "success"}, timeout=10)
        wait_for(lambda p=payment: merchant.get(f"/v1/payments/{p['id']}")["status"] == "succeeded")
    drain()
    assert fx_conversions.open_position("USDSGD") == (13_333, 17_882)

    # Stripe converts 100.00 USD of it at its own rate (1.3390) into the reserve: 0.22 SGD less than locked.
    first = fx_conversions.book_conversion("stripe:2026-12-01:USD", stripe.account_id, "rsv-sg-1",
                                           Money(10_000, "USD"), Money(13_390, "SGD"))
    assert (first["locked"], first["difference"]) == (10_000 * 17_882 // 13_333, 10_000 * 17_882 // 13_333 - 13_390)
    again = fx_conversions.book_conversion("stripe:2026-12-01:USD", stripe.account_id, "rsv-sg-1",
                                           Money(10_000, "USD"), Money(13_390, "SGD"))
    assert again["already_booked"] is True
    # The rest, converted at a better rate and booked by an operator from the bank's statement line: the
    # position closes at exactly what the payments locked.
    code, rest, _ = cli(capsys, "fx", "book-conversion", "--reference", "stripe:2026-12-02:USD", "--account",
                        stripe.account_id, "--reserve", "rsv-sg-1", "--cleared", "33.33", "USD", "--received", "44.80",
                        "SGD")
    assert code == 0 and rest["already_booked"] is False
    records, _ = audit.list_records(action="fx.book_conversion", target="stripe:2026-12-02:USD")
    assert len(records) == 1 and records[0]["after"]["difference"] == rest["difference"]
    assert first["locked"] + rest["locked"] == 17_882
    assert fx_conversions.open_position("USDSGD") == (0, 0)
    assert balance(ledger.fx_difference_account("SGD")) == first["difference"] + rest["difference"] == 17_882 - 17_870
    assert balance(ledger.reserve_account("rsv-sg-1", "SGD")) == 17_870
    assert balance(ledger.merchant_payable_account(merchant.merchant_id, "SGD")) == -17_882  # owed what was locked

    with pytest.raises(InvalidRequest) as refused:
        fx_conversions.book_conversion("stripe:2026-12-03:USD", stripe.account_id, "rsv-sg-1", Money(1, "USD"),
                                       Money(1, "SGD"))
    assert refused.value.param == "amount"


def test_the_merchants_statement_is_in_the_settlement_currency(stack, stripe, merchant, drain):
    from chalicelib.bills import statements
    from chalicelib.storage import config_repo

    fx_rates.put_rate(OPERATOR, "USDAUD", "1.5311", "rba", 60)
    payment = merchant.create_payment(method="stripe.card", currency="USD", amount=4_000, settlement_currency="AUD")
    assert payment["settlement_amount"] == 6_124  # 61.244 truncated
    requests.post(f"{stripe.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"],
                                                              "result": "success"}, timeout=10)
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    drain()
    back = refund(merchant, drain, payment["id"], 1_000)  # 1000 * 6124 / 4000 = 1531
    account = config_repo.get_merchant(merchant.merchant_id)
    assert account is not None
    statement = statements.build(account, utcnow().astimezone(BEIJING).strftime("%Y-%m"), "AUD")
    assert [(line.kind, line.amount, line.currency) for line in statement.lines] == [
        ("payment", 6_124, "AUD"), ("refund", -back["settlement_amount"], "AUD")]
    assert back["settlement_amount"] == 1_531 and statement.net == 6_124 - 1_531
    assert statements.build(account, utcnow().astimezone(BEIJING).strftime("%Y-%m"), "USD").lines == ()


def test_a_paypal_jpy_payment_settled_in_kwd_keeps_both_exponents(stack, channel_account, merchant, drain):
    """Zero decimals presented (PayPal sends JPY without any), three settled: 15000 JPY at 0.00205 is 30.750 KWD."""
    paypal = channel_account("paypal")
    fx_rates.put_rate(OPERATOR, "JPYKWD", "0.00205", "cbk", 60)
    payment = merchant.create_payment(method="paypal.wallet", amount=15_000, currency="JPY", description="Matcha",
                                      return_url="https://shop.example/paypal/return", settlement_currency="KWD")
    assert (payment["amount"], payment["settlement_amount"], payment["settlement_currency"]) == (15_000, 30_750, "KWD")
    approved = requests.post(f"{paypal.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"],
                                                                         "result": "success"}, timeout=10)
    assert approved.status_code == 200, approved.text

    def captured() -> bool:
        drain()  # the approval's webhook makes status sync capture the order
        return merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded"

    wait_for(captured, timeout_s=20, every_s=0.1)
    payable = ledger.merchant_payable_account(merchant.merchant_id, "KWD")
    assert balance(payable) == -30_750
    first = refund(merchant, drain, payment["id"], 4_999)  # 4999 * 30750 / 15000 = 10247.95 -> 10.247 KWD
    last = refund(merchant, drain, payment["id"], 10_001)
    assert (first["settlement_amount"], last["settlement_amount"]) == (10_247, 20_503)
    assert balance(payable) == 0
    done = merchant.get(f"/v1/payments/{payment['id']}")
    assert (done["amount_refunded"], done["settlement_amount_refunded"]) == (15_000, 30_750)
