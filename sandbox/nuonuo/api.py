"""The ``/open/v1/services`` methods: blue invoices (requestBillingNew, queryInvoiceResult) and 数电 red-letter
confirmation forms (saveInvoiceRedConfirm, queryInvoiceRedConfirm). Business answers are
``{"code", "describe", "result"}``: E0000 success, E9106 a repeated order number or form id, E9500 nothing found;
other E9xxx codes here stand for the gateway's validation refusals (the sandbox's own numbers)."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from . import pdf
from .state import FAILED, FORM_AWAITING_BUYER, FORM_CONFIRMED, FORM_NO_CONFIRMATION, ISSUED, ISSUING, App, Order, RedForm, State

BEIJING = timezone(timedelta(hours=8))
_GOODS_CODE = re.compile(r"\d{19}")
RATES = {"0.13", "0.09", "0.06", "0.05", "0.03", "0.01", "0"}


class Refused(Exception):
    def __init__(self, code: str, describe: str) -> None:
        super().__init__(describe)
        self.code, self.describe = code, describe


def _money(value: Any, name: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise Refused("E9102", f"{name} 不是金额") from exc
    if amount != amount.quantize(Decimal("0.01")):
        raise Refused("E9102", f"{name} 最多两位小数")
    return amount


def _tax_of(amount: Decimal, rate: Decimal) -> Decimal:
    return (amount * rate / (1 + rate)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def check_lines(details: Any, *, red: bool) -> list[dict[str, Any]]:
    """Each line must add up (without tax + tax = with tax) and carry a tax no more than a fen off its rate."""
    if not isinstance(details, list) or not details:
        raise Refused("E9102", "invoiceDetail 不能为空")
    lines = []
    for n, item in enumerate(details, 1):
        name, code, rate_text = item.get("goodsName"), str(item.get("goodsCode", "")), str(item.get("taxRate", ""))
        if not name:
            raise Refused("E9102", f"第{n}行 goodsName 不能为空")
        if not _GOODS_CODE.fullmatch(code):
            raise Refused("E9102", f"第{n}行 goodsCode 须为19位税收分类编码")
        if rate_text not in RATES:
            raise Refused("E9102", f"第{n}行 taxRate 不合法")
        incl, tax = _money(item.get("taxIncludedAmount"), "taxIncludedAmount"), _money(item.get("tax"), "tax")
        excl = _money(item.get("taxExcludedAmount"), "taxExcludedAmount")
        if (incl < 0) != red or incl == 0:
            raise Refused("E9102", f"第{n}行 金额符号不对")
        if excl + tax != incl:
            raise Refused("E9102", f"第{n}行 不含税金额 + 税额 ≠ 价税合计")
        if abs(_tax_of(incl, Decimal(rate_text)) - tax) > Decimal("0.01"):
            raise Refused("E9102", f"第{n}行 税额与税率不符")
        rate_shown = "免税" if rate_text == "0" else f"{int(Decimal(rate_text) * 100)}%"
        lines.append({"name": name, "code": code, "rate": rate_text, "rate_text": rate_shown, "amount": str(incl),
                      "tax": str(tax), "without_tax": str(excl)})
    return lines


class Api:
    def __init__(self, state: State, base_url: Callable[[], str], on_issued: Callable[[Order], None]) -> None:
        self.state = state
        self._base_url = base_url
        self._on_issued = on_issued  # pushes the callback

    def call(self, app: App, method: str, body: dict[str, Any]) -> dict[str, Any]:
        handler = {
            "nuonuo.OpeMplatform.requestBillingNew": self.request_billing,
            "nuonuo.OpeMplatform.queryInvoiceResult": self.query_invoices,
            "nuonuo.OpeMplatform.saveInvoiceRedConfirm": self.save_red_form,
            "nuonuo.OpeMplatform.queryInvoiceRedConfirm": self.query_red_forms,
        }.get(method)
        if handler is None:
            return {"code": "E9001", "describe": f"不支持的方法 {method}", "result": None}
        try:
            result = handler(app, body)
        except Refused as refused:
            return {"code": refused.code, "describe": refused.describe, "result": None}
        return {"code": "E0000", "describe": "调用成功", "result": result}

    # --- blue invoices ------------------------------------------------------------------------------------

    def request_billing(self, app: App, body: dict[str, Any]) -> dict[str, Any]:
        order = body.get("order")
        if not isinstance(order, dict):
            raise Refused("E9102", "order 不能为空")
        order_no = str(order.get("orderNo") or "")
        with self.state.lock:
            self.state.billing_requests.append(order_no)
            if self.state.faults(app.tax_no).refuse_at_once:
                raise Refused("E9110", self.state.faults(app.tax_no).refuse_at_once.pop(0))
            if not order_no or len(order_no) > 20:
                raise Refused("E9102", "orderNo 必填且不超过20位")
            if f"{app.tax_no}|{order_no}" in self.state.orders:
                raise Refused("E9106", "订单编号不能重复")
            if order.get("salerTaxNum") != app.tax_no:
                raise Refused("E9102", "salerTaxNum 与授权企业不符")
            line_kind = order.get("invoiceLine")
            if line_kind not in ("pc", "bs") or order.get("invoiceType") != "1":
                raise Refused("E9102", "invoiceLine 须为 pc/bs，invoiceType 须为 1（蓝票）")
            if not order.get("buyerName"):
                raise Refused("E9102", "buyerName 不能为空")
            if line_kind == "bs" and not all(order.get(k) for k in ("buyerTaxNum", "buyerAddress", "buyerAccount")):
                raise Refused("E9102", "专票须填写购方税号、地址电话和开户行账号")
            lines = check_lines(order.get("invoiceDetail"), red=False)
            serial = f"{datetime.now(BEIJING):%y%m%d%H%M%S}{secrets.randbelow(10**8):08d}"
            record = Order(order_no, serial, app.tax_no, order, callback_url=str(order.get("callBackUrl") or ""))
            record.invoice = self._invoice(order, lines, red=False)
            self.state.orders[f"{app.tax_no}|{order_no}"] = record
            self.state.by_serial[serial] = record
            faults = self.state.faults(app.tax_no)
            refuse = faults.refuse.pop(0) if faults.refuse else None
            delay = faults.delay_s.pop(0) if faults.delay_s else 0.0
        self._settle_later(record, delay, refuse)
        return {"invoiceSerialNum": serial}

    def _invoice(self, order: dict[str, Any], lines: list[dict[str, Any]], *, red: bool) -> dict[str, Any]:
        total = sum(Decimal(item["amount"]) for item in lines)
        tax = sum(Decimal(item["tax"]) for item in lines)
        return {
            "invoice_line": order.get("invoiceLine", "pc"), "red": red, "lines": lines,
            "total": str(total), "total_tax": str(tax), "total_without_tax": str(total - tax),
            "buyer": {"name": order.get("buyerName", ""), "tax_no": order.get("buyerTaxNum", ""),
                      "address": " ".join(filter(None, [order.get("buyerAddress"), order.get("buyerTel")])),
                      "account": order.get("buyerAccount", "")},
            "seller": {"name": order.get("salerName", ""), "tax_no": order.get("salerTaxNum", ""),
                       "address": " ".join(filter(None, [order.get("salerAddress"), order.get("salerTel")])),
                       "account": order.get("salerAccount", "")},
            "drawer": order.get("clerk", ""), "order_no": order.get("orderNo", ""),
        }

    def _settle_later(self, record: Order, delay_s: float, refuse: str | None) -> None:
        def settle() -> None:
            with self.state.lock:
                if refuse:
                    record.status, record.fail_cause = FAILED, refuse
                else:
                    now = datetime.now(BEIJING)
                    assert record.invoice is not None
                    record.invoice.update({
                        "invoice_no": f"{now:%y}{secrets.randbelow(10**18):018d}",  # 数电 numbers: 20 digits
                        "invoice_date": f"{now:%Y-%m-%d %H:%M:%S}", "invoice_time_ms": int(now.timestamp() * 1000),
                        "check_code": f"{secrets.randbelow(10**20):020d}",
                    })
                    record.pdf = pdf.render(record.invoice)
                    record.status = ISSUED
            self._on_issued(record)

        if delay_s > 0:
            timer = threading.Timer(delay_s, settle)
            timer.daemon = True
            timer.start()
        else:
            settle()

    def query_invoices(self, app: App, body: dict[str, Any]) -> list[dict[str, Any]]:
        serials, order_nos = body.get("serialNos") or [], body.get("orderNos") or []
        if not serials and not order_nos:
            raise Refused("E9102", "serialNos 与 orderNos 不能同时为空")
        with self.state.lock:
            found = [self.state.by_serial[s] for s in serials if s in self.state.by_serial]
            found += [self.state.orders[f"{app.tax_no}|{n}"] for n in order_nos if f"{app.tax_no}|{n}" in self.state.orders]
            found = [order for order in found if order.tax_no == app.tax_no]
            if not found:
                raise Refused("E9500", "未查询到发票")
            return [self.result_of(order) for order in found]

    def result_of(self, order: Order) -> dict[str, Any]:
        answer: dict[str, Any] = {"serialNo": order.serial_no, "orderNo": order.order_no, "status": order.status,
                                  "statusMsg": {ISSUING: "开票中", ISSUED: "开票完成", FAILED: "开票失败"}[order.status],
                                  "failCause": order.fail_cause}
        if order.status == ISSUED and order.invoice:
            invoice = order.invoice
            answer.update({
                "allElectronicInvoiceNumber": invoice["invoice_no"], "invoiceNo": invoice["invoice_no"],
                "invoiceCode": "", "checkCode": invoice["check_code"], "invoiceTime": invoice["invoice_time_ms"],
                "orderAmount": invoice["total"], "exTaxAmount": invoice["total_without_tax"],
                "taxAmount": invoice["total_tax"], "invoiceKind": invoice["invoice_line"],
                "pdfUrl": f"{self._base_url()}/files/{order.serial_no}.pdf",
            })
        return answer

    # --- red-letter confirmation forms (数电) ----------------------------------------------------------------

    def save_red_form(self, app: App, body: dict[str, Any]) -> dict[str, Any]:
        bill_id = str(body.get("billId") or "")
        if not bill_id or len(bill_id) > 32:
            raise Refused("E9102", "billId 必填且不超过32位")
        with self.state.lock:
            if f"{app.tax_no}|{bill_id}" in self.state.forms:
                raise Refused("E9106", "billId 不能重复")
            if body.get("applySource") != "0" or body.get("sellerTaxNo") != app.tax_no:
                raise Refused("E9102", "只支持销方申请（applySource 0）")
            blue = next((o for o in self.state.orders.values() if o.tax_no == app.tax_no and not o.red
                         and o.invoice and o.invoice.get("invoice_no") == body.get("blueElecInvoiceNumber")), None)
            if blue is None or blue.status != ISSUED:
                raise Refused("E9501", "蓝字发票不存在")
            lines = check_lines(body.get("detail"), red=True)
            reversed_so_far = sum((Decimal(self._form_total(f)) for f in self.state.forms.values() if f.blue is blue),
                                  Decimal(0))
            if -(reversed_so_far + sum(Decimal(item["amount"]) for item in lines)) > Decimal(blue.invoice["total"]):
                raise Refused("E9502", "红冲金额超过蓝字发票可冲红金额")
            faults = self.state.faults(app.tax_no)
            needs_buyer = faults.red_needs_buyer > 0
            if needs_buyer:
                faults.red_needs_buyer -= 1
            form = RedForm(bill_id, f"{datetime.now(BEIJING):%Y%m%d}{secrets.randbelow(10**12):012d}", app.tax_no,
                           {**body, "lines": lines}, blue, FORM_AWAITING_BUYER if needs_buyer else FORM_NO_CONFIRMATION)
            self.state.forms[f"{app.tax_no}|{bill_id}"] = form
            if not needs_buyer:
                self._issue_red(form)
            return {"billId": bill_id, "billNo": form.bill_no, "billStatus": form.status}

    @staticmethod
    def _form_total(form: RedForm) -> str:
        return str(sum(Decimal(item["amount"]) for item in form.request["lines"]))

    def buyer_confirms(self, tax_no: str, bill_id: str) -> RedForm:
        with self.state.lock:
            form = self.state.forms[f"{tax_no}|{bill_id}"]
            if form.status == FORM_AWAITING_BUYER:
                form.status = FORM_CONFIRMED
                self._issue_red(form)
            return form

    def _issue_red(self, form: RedForm) -> None:
        """Once a form needs no confirmation or both sides confirmed it, the bureau issues the red invoice."""
        blue = form.blue
        assert blue.invoice is not None
        order = {**blue.request, "orderNo": form.bill_id, "invoiceType": "2"}
        record = Order(f"RED-{form.bill_id}", f"R{datetime.now(BEIJING):%y%m%d%H%M%S}{secrets.randbelow(10**7):07d}",
                       form.tax_no, order, red=True, bill_id=form.bill_id)
        record.invoice = self._invoice(order, form.request["lines"], red=True)
        record.invoice.update({"blue_invoice_no": blue.invoice["invoice_no"], "red_form_no": form.bill_no})
        form.red_serial = record.serial_no
        self.state.orders[f"{form.tax_no}|{record.order_no}"] = record
        self.state.by_serial[record.serial_no] = record
        self._settle_later(record, 0.0, None)

    def query_red_forms(self, app: App, body: dict[str, Any]) -> dict[str, Any]:
        bill_id = str(body.get("billId") or "")
        with self.state.lock:
            form = self.state.forms.get(f"{app.tax_no}|{bill_id}")
            if form is None:
                return {"total": 0, "list": []}
            red = self.state.by_serial.get(form.red_serial)
            item = {"billId": form.bill_id, "billNo": form.bill_no, "billStatus": form.status,
                    "blueElecInvoiceNumber": form.blue.invoice["invoice_no"] if form.blue.invoice else "",
                    "redInvoiceNumber": red.invoice.get("invoice_no", "") if red and red.invoice and red.status == ISSUED else "",
                    "invoiceSerialNum": form.red_serial, "taxExcludedAmount": str(
                        sum(Decimal(i["without_tax"]) for i in form.request["lines"])),
                    "taxAmount": str(sum(Decimal(i["tax"]) for i in form.request["lines"]))}
            return {"total": 1, "list": [item]}
