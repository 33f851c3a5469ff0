"""`payhub payments|refunds list|export`, `payhub bill`, `payhub statements run|get`."""

from __future__ import annotations

import csv
import json

import requests

from payhub_cli.main import main as payhub
from tests import listing_data as data
from tests.helpers import wait_for
from tests.pdf_text import pdf_text


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = payhub(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_and_export_payments_and_refunds(capsys, merchant, tmp_path):
    payments = [data.payment(merchant.merchant_id, n) for n in range(230)]
    refunds = [data.refund(merchant.merchant_id, payments[n], n) for n in range(0, 230, 10)]
    data.store(payments + refunds)

    code, out, _ = run(capsys, "payments", "list", "--merchant", merchant.merchant_id, "--limit", "3",
                       "--status", "failed")
    page = json.loads(out)
    assert code == 0 and [p["status"] for p in page["data"]] == ["failed"] * 3 and page["next_cursor"]
    code, out, _ = run(capsys, "payments", "list", "--merchant", merchant.merchant_id, "--limit", "3",
                       "--status", "failed", "--cursor", page["next_cursor"])
    assert code == 0 and not {p["id"] for p in json.loads(out)["data"]} & {p["id"] for p in page["data"]}

    target = tmp_path / "payments.csv"
    code, out, err = run(capsys, "payments", "export", "--merchant", merchant.merchant_id, "--output", str(target),
                         "--from", "2026-03-01T01:00:00Z", "--channel", "alipay")
    assert code == 0, err
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    expected = [p for p in payments if p.method.startswith("alipay.") and p.created_at >= "2026-03-01T01:00:00.000Z"]
    assert [r["id"] for r in rows] == [p.payment_id for p in sorted(expected, key=lambda p: p.created_at, reverse=True)]
    assert json.loads(out)["rows"] == len(expected) and "payments" in err

    target = tmp_path / "refunds.jsonl"
    code, out, _ = run(capsys, "refunds", "export", "--merchant", merchant.merchant_id, "--output", str(target),
                       "--format", "jsonl")
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert code == 0 and {r["id"] for r in lines} == {r.refund_id for r in refunds}


def test_bad_input_is_one_line_and_a_failure(capsys, merchant):
    code, _, err = run(capsys, "payments", "list", "--merchant", merchant.merchant_id, "--status", "paid")
    assert code == 1 and err.startswith("payhub: status must be one of")
    code, _, err = run(capsys, "payments", "list", "--merchant", "mch_nobody")
    assert code == 1 and "no merchant mch_nobody" in err


def test_bill_pdf_and_statement_through_the_cli(capsys, stack, merchant, drain, tmp_path):
    payment = merchant.create_payment(amount=4321, description="乌龙茶 Oolong")
    requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"]}, timeout=10)
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    pdf = tmp_path / "bill.pdf"
    code, out, err = run(capsys, "bill", payment["id"], "--merchant", merchant.merchant_id, "--pdf", str(pdf))
    assert code == 0, err
    assert json.loads(out)["amount"] == 4321 and "43.21 CNY" in pdf_text(pdf.read_bytes())

    from chalicelib.bills.statements import BEIJING
    from chalicelib.domain.clock import utcnow

    month = utcnow().astimezone(BEIJING).strftime("%Y-%m")
    code, out, err = run(capsys, "statements", "run", "--month", month, "--merchant", merchant.merchant_id)
    assert code == 0, err
    assert json.loads(out)["published"][0]["net"] == 4321
    code, out, _ = run(capsys, "statements", "get", "--merchant", merchant.merchant_id, "--month", month,
                       "--output-dir", str(tmp_path))
    assert code == 0 and json.loads(out)["payments_total"] == 4321
    assert "43.21 CNY" in pdf_text((tmp_path / f"statement-{month}-CNY.pdf").read_bytes())
