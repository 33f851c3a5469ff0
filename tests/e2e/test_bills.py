"""Bills for payments and refunds (JSON and PDF, read back with pypdf), payer links that expire and cannot be
altered, and monthly statements that add up with the ledger to the fen."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
import requests

from chalicelib.bills import links, statements
from chalicelib.domain.ledger import merchant_payable_account
from chalicelib.storage import config_repo, ledger_repo
from tests.helpers import wait_for
from tests.pdf_text import pdf_text


def pay(stack, attempt_id: str) -> None:
    response = requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": attempt_id}, timeout=10)
    assert response.status_code == 200, response.text


def paid_payment(stack, merchant, amount: int, **overrides) -> dict:
    payment = merchant.create_payment(amount=amount, **overrides)
    pay(stack, payment["attempt_id"])
    return wait_for(lambda: (p := merchant.get(f"/v1/payments/{payment['id']}"))["status"] == "succeeded" and p)


def refunded(merchant, drain, payment_id: str, amount: int, number: str) -> dict:
    response = merchant.call("POST", f"/v1/payments/{payment_id}/refunds",
                             {"amount": amount, "merchant_refund_no": number, "reason": "少发一件 one item missing"})
    assert response.status_code == 201, response.text
    drain()
    return wait_for(lambda: (r := merchant.get(f"/v1/refunds/{response.json()['id']}"))["status"] == "succeeded"
                    and r, timeout_s=15)


def test_a_payment_bill_as_soon_as_it_is_paid_json_and_pdf(stack, merchant):
    payment = paid_payment(stack, merchant, 8888, description="绿茶 Green tea", merchant_order_no="T-1001")
    bill = merchant.get(f"/v1/payments/{payment['id']}/bill")
    assert bill["object"] == "bill" and bill["kind"] == "payment"
    assert (bill["amount"], bill["currency"], bill["merchant_order_no"]) == (8888, "CNY", "T-1001")
    assert bill["merchant"] == {"id": merchant.merchant_id, "name": "Test Merchant"}
    assert bill["channel"] == "wechatpay" and bill["channel_transaction_id"]
    assert bill["fee"] is None and bill["fee_note"] and bill["paid_at"] and bill["created_at"] == payment["created_at"]

    pdf = requests.get(bill["pdf_url"], timeout=10)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    text = pdf_text(pdf.content)
    for shown in ("电子账单 · 支付 Payment bill", "Test Merchant", merchant.merchant_id, "T-1001", "绿茶 Green tea",
                  payment["id"], bill["channel_transaction_id"], "wechatpay", "88.88 CNY", "wechat.native",
                  "成功 succeeded", "(UTC+8)"):
        assert shown in text, shown


def test_no_bill_before_the_money_moved(merchant):
    payment = merchant.create_payment(amount=100)
    response = merchant.call("GET", f"/v1/payments/{payment['id']}/bill")
    assert response.status_code == 409 and response.json()["error"]["code"] == "bill_not_available"
    assert merchant.call("GET", "/v1/payments/pay_nope/bill").status_code == 404
    bad = merchant.call("GET", f"/v1/payments/{payment['id']}/bill?link_expires_in=5")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "link_expires_in"


def test_a_refund_bill(stack, merchant, drain):
    payment = paid_payment(stack, merchant, 5000, merchant_order_no="R-100")
    refund = refunded(merchant, drain, payment["id"], 1234, "R-1")
    bill = merchant.get(f"/v1/refunds/{refund['id']}/bill")
    assert (bill["kind"], bill["amount"], bill["payment_amount"], bill["merchant_refund_no"]) == (
        "refund", 1234, 5000, "R-1")
    text = pdf_text(requests.get(bill["pdf_url"], timeout=10).content)
    for shown in ("退款 Refund bill", "R-100", "R-1", refund["id"], payment["id"], "12.34 CNY", "50.00 CNY",
                  "少发一件 one item missing"):
        assert shown in text, shown
    # the payment's own bill now says what was refunded (a new version, a new PDF; the old one is kept)
    again = merchant.get(f"/v1/payments/{payment['id']}/bill")
    assert again["amount_refunded"] == 1234
    assert "12.34 CNY" in pdf_text(requests.get(again["pdf_url"], timeout=10).content)


def test_the_payer_link_opens_without_a_key_until_it_expires(stack, merchant):
    payment = paid_payment(stack, merchant, 2500)
    bill = merchant.get(f"/v1/payments/{payment['id']}/bill?link_expires_in=600")
    link = bill["payer_link"]
    assert link["url"].startswith(stack.api_url + "/v1/bills/")
    assert datetime.fromisoformat(link["expires_at"]) > datetime.now(UTC)
    opened = requests.get(link["url"], timeout=10, allow_redirects=False)
    assert opened.status_code == 302 and opened.headers["Cache-Control"] == "no-store"
    assert "25.00 CNY" in pdf_text(requests.get(opened.headers["Location"], timeout=10).content)

    expired = links.payer_url(merchant.merchant_id, "payment", payment["id"], int(datetime.now(UTC).timestamp()) - 1)
    answer = requests.get(expired, timeout=10, allow_redirects=False)
    assert answer.status_code == 410 and answer.json()["error"]["code"] == "link_expired"


def test_an_altered_payer_link_is_refused_and_reported(stack, merchant, published_metrics):
    payment = paid_payment(stack, merchant, 300)
    other = paid_payment(stack, merchant, 400)
    url = merchant.get(f"/v1/payments/{payment['id']}/bill")["payer_link"]["url"]
    token = url.rsplit("/", 1)[1]
    body, _, tag = token.partition(".")
    # the same link pointing at another payment, or living longer: re-encoded payloads under the old tag
    import base64
    import json

    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    for change in ({"i": other["id"]}, {"e": payload["e"] + 10**6}):
        forged = base64.urlsafe_b64encode(json.dumps({**payload, **change}, separators=(",", ":"),
                                                     sort_keys=True).encode()).rstrip(b"=").decode()
        response = requests.get(f"{stack.api_url}/v1/bills/{forged}.{tag}", timeout=10, allow_redirects=False)
        assert response.status_code == 404, change
    for bad in (token[:-2], token + "A", "nothing-here", token.replace(".", "")):
        assert requests.get(f"{stack.api_url}/v1/bills/{bad}", timeout=10, allow_redirects=False).status_code == 404
    assert published_metrics.values("PayHub/Security", "bill_link_forged", Stage="local")


@pytest.fixture
def month_of_today() -> str:
    return datetime.now(UTC).astimezone(statements.BEIJING).strftime("%Y-%m")


def test_a_monthly_statement_adds_up_with_the_ledger_to_the_fen(stack, merchant, drain, month_of_today):
    amounts = [1, 999, 8888, 12345, 100000, 3]
    paid = [paid_payment(stack, merchant, amount) for amount in amounts]
    refunds = [refunded(merchant, drain, paid[2]["id"], 888, "a"), refunded(merchant, drain, paid[2]["id"], 1, "b"),
               refunded(merchant, drain, paid[4]["id"], 99999, "c")]
    record = config_repo.get_merchant(merchant.merchant_id)
    statement = statements.build(record, month_of_today, "CNY")

    # to the fen: the lines, the records the test made, the ledger's running totals and its balance
    assert statement.payments_total == sum(amounts)
    assert statement.refunds_total == 888 + 1 + 99999
    account = merchant_payable_account(merchant.merchant_id, "CNY")
    movement = sum(ledger_repo.day_movement(account, day) for day in statements.days_of(month_of_today))
    assert statement.net == -movement == -ledger_repo.balance(account) == sum(amounts) - (888 + 1 + 99999)
    assert {line.payment_id for line in statement.lines} == {p["id"] for p in paid}
    assert {line.refund_id for line in statement.lines if line.refund_id} == {r["id"] for r in refunds}
    assert all(line.channel_transaction_id for line in statement.lines)

    summary = statements.publish(statement)
    again = statements.publish(statement)  # a re-run stores the same files and announces nothing new
    assert again == summary

    answer = merchant.get(f"/v1/statements/{month_of_today}")
    assert (answer["payments_total"], answer["refunds_total"], answer["net"]) == (
        sum(amounts), 100888, sum(amounts) - 100888)
    rows = list(csv.reader(io.StringIO(requests.get(answer["files"]["csv"], timeout=10).content.decode("utf-8-sig"))))
    lines = [row for row in rows[1:] if row and not row[0].startswith("#")]
    assert rows[0][:3] == ["value_day", "booked_at", "type"] and len(lines) == len(amounts) + len(refunds)
    assert sum(int(row[9]) for row in lines) == -movement
    assert {row[4] for row in lines} == {p["merchant_order_no"] for p in paid}
    text = pdf_text(requests.get(answer["files"]["pdf"], timeout=10).content)
    net = sum(amounts) - 100888
    for shown in ("Monthly statement", month_of_today, "净额 Net", f"{net // 100}.{net % 100:02d} CNY",
                  "123.45 CNY", "-999.99 CNY", paid[3]["merchant_order_no"]):
        assert shown in text, shown

    drain()
    events = merchant.get("/v1/events?limit=20")["data"]
    announced = [e for e in events if e["type"] == "statement.available"]
    assert len(announced) == 1 and announced[0]["data"]["net"] == sum(amounts) - 100888
    assert announced[0]["data"]["url"].endswith(f"/v1/statements/{month_of_today}?currency=CNY")


def test_the_scheduled_function_publishes_missing_statements_once(stack, merchant, drain, month_of_today):
    from functions import statements as job

    paid_payment(stack, merchant, 777)
    first = job.handler({"month": month_of_today}, None)
    ours = statements.statement_id(merchant.merchant_id, month_of_today, "CNY")
    assert ours in first["published"]
    assert ours not in job.handler({"month": month_of_today}, None)["published"]


@pytest.mark.parametrize(("path", "param"), [("/v1/statements/2026-13", "month"), ("/v1/statements/26-01", "month"),
                                             ("/v1/statements/2026-01?currency=XXX", "currency"),
                                             ("/v1/statements/2026-01?x=1", "x")])
def test_statement_requests_are_checked(merchant, path, param):
    response = merchant.call("GET", path)
    assert response.status_code == 400 and response.json()["error"]["param"] == param


def test_a_statement_not_made_yet_is_404(merchant):
    response = merchant.call("GET", "/v1/statements/2019-01")
    assert response.status_code == 404 and response.json()["error"]["code"] == "statement_not_ready"
