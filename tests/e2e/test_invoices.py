"""E-invoices end to end: the merchant API, the invoice worker and the Nuonuo sandbox, judged by the sandbox's
own books (what it issued), the hub's records, the webhooks and the PDFs read back."""

from __future__ import annotations

import io
import time
import uuid
from typing import Any

import pytest
import requests
from pypdf import PdfReader

from infra.local.invoicing import new_credit_code, provision
from sandbox.nuonuo.server import NuonuoSandbox, control
from tests.e2e.test_payment_life import pay
from tests.helpers import make_merchant, wait_for

COMPANY = {"type": "company", "name": "深圳市腾讯计算机系统有限公司", "tax_no": "9144030071526726XG",
           "address": "深圳市南山区粤海街道", "phone": "0755-86013388", "bank_account": "招商银行深圳分行 755900000000"}
TEA = {"description": "*茶*绿茶", "tax_code": "1030201010000000000", "tax_rate": "0.13", "amount": 6000}
SERVICE = {"description": "*餐饮服务*茶位费", "tax_code": "3070401000000000000", "tax_rate": "0.06", "amount": 2888}


@pytest.fixture(scope="module")
def nuonuo():
    box = NuonuoSandbox(retry_scale=0.002)
    box.start()
    yield box
    box.stop()


def invoicing_merchant(stack, nuonuo, red_letter: str = "auto") -> Any:
    merchant = make_merchant(stack)
    merchant.seller_tax_no = new_credit_code()  # faults and books are per seller at the sandbox
    provision(merchant.merchant_id, nuonuo.base_url, red_letter=red_letter, seller_tax_no=merchant.seller_tax_no)
    return merchant


def paid(stack, merchant, amount: int) -> dict[str, Any]:
    payment = merchant.create_payment(amount=amount)
    pay(stack, payment["attempt_id"])
    return wait_for(lambda: (p := merchant.get(f"/v1/payments/{payment['id']}"))["status"] == "succeeded" and p)


def request_invoice(merchant, payments, lines, *, kind="ordinary", buyer=None, key=None, number=None):
    body = {"merchant_invoice_no": number or f"F{uuid.uuid4().hex[:12]}", "kind": kind,
            "payment_ids": [p["id"] for p in payments], "buyer": buyer or COMPANY, "lines": lines}
    return merchant.call("POST", "/v1/invoices", body, idempotency_key=key), body


def settled(merchant, drain, invoice_id: str, until, timeout_s: float = 20.0) -> dict[str, Any]:
    """Run the workers (as Lambda would) until the invoice satisfies ``until``."""
    deadline = time.monotonic() + timeout_s
    while True:
        drain()
        invoice = merchant.get(f"/v1/invoices/{invoice_id}")
        if until(invoice):
            return invoice
        if time.monotonic() > deadline:
            raise AssertionError(f"invoice {invoice_id} stayed {invoice['status']}: {invoice}")
        time.sleep(0.3)


def fault(nuonuo, merchant, body: dict[str, Any]) -> None:
    control(nuonuo.base_url, "/_sandbox/faults", {**body, "tax_no": merchant.seller_tax_no})


def books(nuonuo, tax_no: str) -> list[dict[str, Any]]:
    return [i for i in control(nuonuo.base_url, "/_sandbox/invoices")["invoices"] if i["tax_no"] == tax_no]


def issued_for(nuonuo, order_no: str) -> list[dict[str, Any]]:
    return [i for i in control(nuonuo.base_url, "/_sandbox/invoices")["invoices"] if i["order_no"] == order_no]


def pdf_text(link: dict[str, str]) -> str:
    response = requests.get(link["url"], timeout=10)
    assert response.status_code == 200
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)


def test_an_invoice_for_two_paid_orders_is_issued_kept_and_announced(stack, nuonuo, drain):
    merchant = invoicing_merchant(stack, nuonuo)
    first, second = paid(stack, merchant, 6000), paid(stack, merchant, 3000)
    response, _ = request_invoice(merchant, [first, second], [TEA, SERVICE], kind="special")
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "pending" and created["amount"] == 8888
    # 6000 * 0.13 / 1.13 = 690.27 -> 690; 2888 * 0.06 / 1.06 = 163.47 -> 163
    assert [line["tax"] for line in created["lines"]] == [690, 163]
    assert created["tax"] == 853 and created["amount_without_tax"] == 8888 - 853

    invoice = settled(merchant, drain, created["id"], lambda i: i["status"] == "issued")
    assert len(invoice["invoice_no"]) == 20 and invoice["verification_code"]
    [record] = issued_for(nuonuo, invoice["provider_order_no"])
    assert record["invoice_no"] == invoice["invoice_no"] and record["total"] == "88.88"
    assert record["total_tax"] == "8.53" and record["invoice_line"] == "bs"
    assert wait_for(lambda: "invoice.issued" in stack.receiver.types_for(created["id"]))

    text = pdf_text(invoice["pdf"])
    assert "电子发票（增值税专用发票）" in text and invoice["invoice_no"] in text
    assert "9144030071526726XG" in text and "¥88.88" in text and "1030201010000000000" in text
    assert invoice["pdf"]["expires_at"] > invoice["created_at"]


def test_a_retried_request_gets_the_same_invoice_and_the_provider_issues_one(stack, nuonuo, drain):
    merchant = invoicing_merchant(stack, nuonuo)
    payment = paid(stack, merchant, 6000)
    first, body = request_invoice(merchant, [payment], [TEA], key="same-key")
    again = merchant.call("POST", "/v1/invoices", body, idempotency_key="same-key")
    other_key = merchant.call("POST", "/v1/invoices", body)  # same merchant invoice number, same request
    assert first.status_code == again.status_code == other_key.status_code == 201
    assert first.json()["id"] == again.json()["id"] == other_key.json()["id"]
    changed = merchant.call("POST", "/v1/invoices", {**body, "remark": "other"})
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "duplicate_merchant_invoice_no"
    invoice = settled(merchant, drain, first.json()["id"], lambda i: i["status"] == "issued")
    assert len(issued_for(nuonuo, invoice["provider_order_no"])) == 1


def test_never_more_than_paid_less_refunded(stack, nuonuo, drain):
    merchant = invoicing_merchant(stack, nuonuo)
    payment = paid(stack, merchant, 5000)
    refund = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds", {"amount": 1000, "merchant_refund_no": "r1"})
    assert refund.status_code == 201
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund.json()['id']}")["status"] == "succeeded", timeout_s=15)
    too_much, _ = request_invoice(merchant, [payment], [{**TEA, "amount": 4001}])
    assert too_much.status_code == 422 and too_much.json()["error"]["code"] == "invoice_exceeds_paid"
    assert too_much.json()["error"]["param"] == "lines"
    exact, _ = request_invoice(merchant, [payment], [{**TEA, "amount": 4000}])
    assert exact.status_code == 201
    more, _ = request_invoice(merchant, [payment], [{**TEA, "amount": 1}])  # the rest is invoiced already
    assert more.status_code == 422


def test_bad_requests_name_their_field(stack, nuonuo):
    merchant = invoicing_merchant(stack, nuonuo)
    payment = paid(stack, merchant, 1000)
    cases = [
        ({"buyer": {**COMPANY, "tax_no": "9144030071526726XH"}}, "buyer.tax_no"),  # check character mutated
        ({"buyer": {"type": "company", "name": "某公司"}}, "buyer.tax_no"),
        ({"kind": "special", "buyer": {k: v for k, v in COMPANY.items() if k != "bank_account"}}, "buyer.bank_account"),
        ({"kind": "special", "buyer": {"type": "person", "name": "张三"}}, "buyer.type"),
        ({"lines": [{**TEA, "amount": 100, "tax_code": "10302"}]}, "lines.0.tax_code"),
        ({"lines": [{**TEA, "amount": 100, "tax_rate": "0.17"}]}, "lines.0.tax_rate"),
    ]
    for change, param in cases:
        body = {"merchant_invoice_no": f"F{uuid.uuid4().hex[:10]}", "kind": "ordinary",
                "payment_ids": [payment["id"]], "buyer": COMPANY, "lines": [{**TEA, "amount": 100}], **change}
        response = merchant.call("POST", "/v1/invoices", body)
        assert response.status_code == 400, (change, response.text)
        assert response.json()["error"]["param"] == param
    unpaid = merchant.create_payment(amount=1000)
    response, _ = request_invoice(merchant, [unpaid], [{**TEA, "amount": 100}])
    assert response.status_code == 409 and response.json()["error"]["param"] == "payment_ids.0"
    stranger = make_merchant(stack)
    provision(stranger.merchant_id, nuonuo.base_url)
    response, _ = request_invoice(stranger, [payment], [{**TEA, "amount": 100}])
    assert response.status_code == 404


def test_a_refusal_fails_the_invoice_tells_the_merchant_and_frees_the_amount(stack, nuonuo, drain):
    merchant = invoicing_merchant(stack, nuonuo)
    payment = paid(stack, merchant, 6000)
    fault(nuonuo, merchant, {"kind": "refuse", "cause": "购买方纳税人识别号不存在"})
    response, _ = request_invoice(merchant, [payment], [TEA])
    invoice = settled(merchant, drain, response.json()["id"], lambda i: i["status"] == "failed")
    assert invoice["failure_reason"] == "购买方纳税人识别号不存在"
    assert issued_for(nuonuo, invoice["provider_order_no"]) == []
    assert wait_for(lambda: "invoice.failed" in stack.receiver.types_for(invoice["id"]))
    again, _ = request_invoice(merchant, [payment], [TEA])  # the failed invoice's amount is free again
    assert again.status_code == 201
    settled(merchant, drain, again.json()["id"], lambda i: i["status"] == "issued")

    fault(nuonuo, merchant, {"kind": "refuse_at_once", "cause": "开票信息校验失败"})
    payment2 = paid(stack, merchant, 100)
    response, _ = request_invoice(merchant, [payment2], [{**TEA, "amount": 100}])
    invoice = settled(merchant, drain, response.json()["id"], lambda i: i["status"] == "failed")
    assert "开票信息校验失败" in invoice["failure_reason"]


def test_a_delayed_invoice_is_learnt_by_callback_or_query(stack, nuonuo, drain):
    merchant = invoicing_merchant(stack, nuonuo)
    payment = paid(stack, merchant, 6000)
    fault(nuonuo, merchant, {"kind": "delay", "seconds": 1.5})
    response, _ = request_invoice(merchant, [payment], [TEA])
    invoice_id = response.json()["id"]
    drain()
    assert merchant.get(f"/v1/invoices/{invoice_id}")["status"] == "issuing"
    invoice = settled(merchant, drain, invoice_id, lambda i: i["status"] == "issued")
    assert len(issued_for(nuonuo, invoice["provider_order_no"])) == 1
    # and with the callback lost, the scheduled query finds it all the same
    fault(nuonuo, merchant, {"kind": "delay", "seconds": 1.0})
    fault(nuonuo, merchant, {"kind": "no_callback"})
    response, _ = request_invoice(merchant, [paid(stack, merchant, 100)], [{**TEA, "amount": 100}])
    settled(merchant, drain, response.json()["id"], lambda i: i["status"] == "issued")


def test_a_lost_answer_is_resolved_by_query_never_by_a_second_invoice(stack, nuonuo, drain):
    merchant = invoicing_merchant(stack, nuonuo)
    payment = paid(stack, merchant, 6000)
    fault(nuonuo, merchant, {"kind": "lose_answer"})
    fault(nuonuo, merchant, {"kind": "no_callback"})
    response, _ = request_invoice(merchant, [payment], [TEA])
    invoice = settled(merchant, drain, response.json()["id"], lambda i: i["status"] == "issued")
    order_no = invoice["provider_order_no"]
    assert len(issued_for(nuonuo, order_no)) == 1
    sent = control(nuonuo.base_url, "/_sandbox/billing-requests")["order_nos"]
    assert sent.count(order_no) == 1  # the retry asked, it did not send again


def test_a_forged_callback_is_refused(stack, nuonuo):
    merchant = invoicing_merchant(stack, nuonuo)
    forged = requests.post(f"{stack.api_url}/invoice-callbacks/nuonuo/{merchant.merchant_id}",
                           data={"operater": "callback", "orderno": "PHNOSUCHORDER0000000",
                                 "content": '{"c_status":"2"}'}, timeout=10)
    assert forged.status_code == 401


def refund(merchant, drain, payment, amount, number):
    response = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                             {"amount": amount, "merchant_refund_no": number})
    assert response.status_code == 201, response.text
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{response.json()['id']}")["status"] == "succeeded", timeout_s=15)
    return response.json()["id"]


def test_partial_refunds_reverse_exactly_the_refunded_amount_then_the_rest(stack, nuonuo, drain):
    merchant = invoicing_merchant(stack, nuonuo)
    payment = paid(stack, merchant, 8888)
    response, _ = request_invoice(merchant, [payment], [TEA, SERVICE])
    invoice = settled(merchant, drain, response.json()["id"], lambda i: i["status"] == "issued")

    refund_id = refund(merchant, drain, payment, 1000, "r1")
    invoice = settled(merchant, drain, invoice["id"], lambda i: i["amount_reversed"] == 1000)
    [reversal] = invoice["reversals"]
    assert reversal["status"] == "issued" and reversal["refund_id"] == refund_id and reversal["amount"] == 1000
    reds = [i for i in books(nuonuo, merchant.seller_tax_no) if i["red"] and i["blue_invoice_no"] == invoice["invoice_no"]]
    assert [r["total"] for r in reds] == ["-10.00"]
    assert wait_for(lambda: "invoice.reversed" in stack.receiver.types_for(invoice["id"]))
    assert invoice["status"] == "issued"

    refund(merchant, drain, payment, 7888, "r2")
    invoice = settled(merchant, drain, invoice["id"], lambda i: i["status"] == "reversed")
    reds = [i for i in books(nuonuo, merchant.seller_tax_no) if i["red"] and i["blue_invoice_no"] == invoice["invoice_no"]]
    assert sorted(r["total"] for r in reds) == ["-10.00", "-78.88"]
    # the reversals' taxes add up to the invoice's tax exactly
    assert sum(r["tax"] for r in invoice["reversals"]) == invoice["tax"]
    text = pdf_text(requests.get and _red_link(merchant, invoice))
    assert "（红字）" in text and invoice["invoice_no"] in text


def _red_link(merchant, invoice):
    from chalicelib.invoices import files
    from chalicelib.storage import state_repo

    item = state_repo.get_item({"pk": f"INV#{invoice['id']}", "sk": f"RED#{invoice['reversals'][-1]['id']}"})
    return files.link(item["pdf_key"])


def test_a_refund_within_what_stays_paid_reverses_nothing(stack, nuonuo, drain):
    merchant = invoicing_merchant(stack, nuonuo)
    payment = paid(stack, merchant, 10000)
    response, _ = request_invoice(merchant, [payment], [TEA])  # 6000 of 10000 invoiced
    invoice = settled(merchant, drain, response.json()["id"], lambda i: i["status"] == "issued")
    refund(merchant, drain, payment, 3000, "r1")  # 7000 stays paid: still more than invoiced
    drain()
    assert merchant.get(f"/v1/invoices/{invoice['id']}")["reversals"] == []
    refund(merchant, drain, payment, 2000, "r2")  # 5000 paid, 6000 invoiced: 1000 reversed
    invoice = settled(merchant, drain, invoice["id"], lambda i: i["amount_reversed"] == 1000)


def test_on_request_mode_waits_for_the_merchant_and_a_buyer_confirmation(stack, nuonuo, drain):
    merchant = invoicing_merchant(stack, nuonuo, red_letter="on_request")
    payment = paid(stack, merchant, 6000)
    response, _ = request_invoice(merchant, [payment], [TEA], kind="special")
    invoice = settled(merchant, drain, response.json()["id"], lambda i: i["status"] == "issued")
    refund(merchant, drain, payment, 2500, "r1")
    invoice = settled(merchant, drain, invoice["id"], lambda i: i["amount_reversal_due"] == 2500)
    assert invoice["reversals"] == []
    assert wait_for(lambda: any(e["type"] == "invoice.reversal_required" for e in stack.receiver.received
                                if e["data"].get("id") == invoice["id"]))

    fault(nuonuo, merchant, {"kind": "red_needs_buyer"})
    asked = merchant.call("POST", f"/v1/invoices/{invoice['id']}/reversals", {})
    assert asked.status_code == 202, asked.text
    invoice = settled(merchant, drain, invoice["id"], lambda i: i["reversals"][0]["status"] == "confirming")
    control(nuonuo.base_url, f"/_sandbox/red-forms/{merchant.seller_tax_no}/{invoice['reversals'][0]['id']}/buyer-confirm", {})
    invoice = settled(merchant, drain, invoice["id"], lambda i: i["amount_reversed"] == 2500)
    assert invoice["amount_reversal_due"] == 0
    too_much = merchant.call("POST", f"/v1/invoices/{invoice['id']}/reversals", {"amount": 3501})
    assert too_much.status_code == 422 and too_much.json()["error"]["param"] == "amount"


def test_the_cli_sets_up_requests_reads_fetches_and_reverses(stack, nuonuo, drain, tmp_path, capsys):
    import json

    from payhub_cli.main import main as payhub

    def run(*args: str) -> Any:
        capsys.readouterr()
        assert payhub(list(args)) == 0, capsys.readouterr().err
        return json.loads(capsys.readouterr().out)

    merchant = make_merchant(stack)
    merchant.seller_tax_no = new_credit_code()
    app = control(nuonuo.base_url, "/_sandbox/apps", {"tax_no": merchant.seller_tax_no})
    setup = tmp_path / "invoicing.json"
    setup.write_text(json.dumps({"settings": {
        "provider": "nuonuo", "api_base_url": nuonuo.base_url, "app_key": app["app_key"],
        "seller_tax_no": merchant.seller_tax_no, "seller_name": "福州茶舍有限公司", "seller_address": "福州市鼓楼区",
        "seller_phone": "0591-1", "seller_bank_account": "工行 1", "drawer": "林晓", "red_letter": "on_request"},
        "secrets": {"app_secret": app["app_secret"], "access_token": app["access_token"]}}, ensure_ascii=False))
    assert run("invoicing", "put", merchant.merchant_id, str(setup))["secrets_updated"] is True
    assert "app_secret" not in json.dumps(run("invoicing", "show", merchant.merchant_id))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"settings": {**json.loads(setup.read_text())["settings"], "seller_tax_no": "91350100M000100Y44"}}))
    capsys.readouterr()
    assert payhub(["invoicing", "put", merchant.merchant_id, str(bad)]) == 1
    assert "seller_tax_no" in capsys.readouterr().err

    payment = paid(stack, merchant, 6000)
    request = tmp_path / "invoice.json"
    request.write_text(json.dumps({"merchant_invoice_no": "CLI-1", "kind": "ordinary", "payment_ids": [payment["id"]],
                                   "buyer": {"type": "person", "name": "张三"}, "lines": [TEA]}, ensure_ascii=False))
    created = run("invoice", "create", merchant.merchant_id, str(request))
    assert run("invoice", "create", merchant.merchant_id, str(request))["id"] == created["id"]  # a retry
    settled(merchant, drain, created["id"], lambda i: i["status"] == "issued")
    shown = run("invoice", "get", created["id"])
    assert shown["status"] == "issued" and shown["pdf"]["url"]
    out = tmp_path / "invoice.pdf"
    assert run("invoice", "pdf", created["id"], "--out", str(out))["bytes"] > 1000
    assert "电子发票（普通发票）" in "".join(p.extract_text() for p in PdfReader(str(out)).pages)

    refund(merchant, drain, payment, 600, "r1")
    settled(merchant, drain, created["id"], lambda i: i["amount_reversal_due"] == 600)
    reversed_ = run("invoice", "reverse", created["id"])
    assert reversed_["amount_reversing"] == 600
    done = settled(merchant, drain, created["id"], lambda i: i["amount_reversed"] == 600)
    red_out = tmp_path / "red.pdf"
    run("invoice", "pdf", created["id"], "--reversal", done["reversals"][0]["id"], "--out", str(red_out))
    assert "-6.00" in "".join(p.extract_text() for p in PdfReader(str(red_out)).pages)
    audit = [r for r in run("audit", "list")["data"] if r.get("target") == merchant.merchant_id]
    assert any(r["action"] == "invoicing.put" for r in audit)


def test_two_requests_racing_for_the_same_money_cannot_both_take_it(stack, nuonuo, drain):
    from concurrent.futures import ThreadPoolExecutor

    merchant = invoicing_merchant(stack, nuonuo)
    payment = paid(stack, merchant, 6000)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: request_invoice(merchant, [payment], [TEA])[0], range(4)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 1, [a.text for a in answers]
    assert all(s in (409, 422) for s in statuses if s != 201)
    from chalicelib.invoices.service import available

    assert available(payment["id"])[0] == 0


def test_a_refund_while_the_invoice_is_still_issuing_waits_for_it(stack, nuonuo, drain):
    merchant = invoicing_merchant(stack, nuonuo)
    payment = paid(stack, merchant, 6000)
    fault(nuonuo, merchant, {"kind": "delay", "seconds": 3.0})
    response, _ = request_invoice(merchant, [payment], [TEA])
    drain()
    assert merchant.get(f"/v1/invoices/{response.json()['id']}")["status"] == "issuing"
    refund(merchant, drain, payment, 2000, "r1")  # its invoice.refund message comes back until the invoice is issued
    invoice = settled(merchant, drain, response.json()["id"], lambda i: i["amount_reversed"] == 2000, timeout_s=40)
    assert invoice["reversals"][0]["refund_id"]


def test_a_push_naming_another_merchants_order_is_refused(stack, nuonuo, drain):
    owner, other = invoicing_merchant(stack, nuonuo), invoicing_merchant(stack, nuonuo)
    response, _ = request_invoice(owner, [paid(stack, owner, 100)], [{**TEA, "amount": 100}])
    order_no = response.json()["provider_order_no"]
    pushed = requests.post(f"{stack.api_url}/invoice-callbacks/nuonuo/{other.merchant_id}",
                           data={"operater": "callback", "orderno": order_no, "content": "{}"}, timeout=10)
    assert pushed.status_code == 401
    mine = requests.post(f"{stack.api_url}/invoice-callbacks/nuonuo/{owner.merchant_id}",
                         data={"operater": "callback", "orderno": order_no, "content": "{}"}, timeout=10)
    assert mine.status_code == 200  # believed only as far as making the worker ask the provider
    settled(owner, drain, response.json()["id"], lambda i: i["status"] == "issued")
