"""A bill per payment and per refund: what the merchant and the payer keep once the money moved.

The bill is made from the hub's records when asked (so it exists the moment the payment or refund succeeded,
with no job in between): the merchant, the order, the channel and its transaction number, the amounts, the fee
where the hub knows it, and the times. ``bill_json`` is the API's answer, ``bill_pdf`` the printable document
with the same facts; the PDF is stored under the record's version (chalicelib/bills/store.py).

Fees: channels state their fee per transaction only in their daily statements; the hub does not keep a
per-payment fee, so ``fee`` is ``null`` with ``fee_note`` saying so (the monthly statement shows the same).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.bills import links, store
from chalicelib.bills.errors import BillNotAvailable
from chalicelib.documents.pdf import Document, Fields, Note, money, render
from chalicelib.domain.clock import parse_iso, utcnow
from chalicelib.domain.errors import NotFound
from chalicelib.domain.models import Merchant, Payment, Refund
from chalicelib.domain.states import PaymentState, RefundState
from chalicelib.storage import config_repo, records, state_repo
from chalicelib.storage.recon_index import BEIJING

FEE_NOTE = "the channel reports its fee in its daily statement; not known per payment"
_STATUS_ZH = {"succeeded": "成功 succeeded", "failed": "失败 failed", "processing": "处理中 processing"}


def _merchant_name(merchant_id: str) -> str:
    found = config_repo.get_merchant(merchant_id)
    return found.name if found else merchant_id


def load_payment(merchant_id: str, payment_id: str) -> tuple[Payment, dict[str, Any]]:
    payment = state_repo.get_payment(payment_id)
    if payment is None or payment.merchant_id != merchant_id:
        raise NotFound(f"no payment {payment_id}", param="payment_id")
    if payment.status is not PaymentState.SUCCEEDED or not payment.succeeded_attempt_id:
        raise BillNotAvailable(f"payment {payment_id} is {payment.status}: a bill exists once it succeeded")
    attempt = state_repo.get_item(records.attempt_key(payment.succeeded_attempt_id)) or {}
    return payment, attempt


def load_refund(merchant_id: str, refund_id: str) -> tuple[Refund, Payment]:
    refund = state_repo.get_refund(refund_id)
    if refund is None or refund.merchant_id != merchant_id:
        raise NotFound(f"no refund {refund_id}", param="refund_id")
    if refund.status is not RefundState.SUCCEEDED:
        raise BillNotAvailable(f"refund {refund_id} is {refund.status}: a bill exists once it succeeded")
    payment = state_repo.get_payment(refund.payment_id)
    if payment is None:
        raise NotFound(f"no payment {refund.payment_id}", param="refund_id")
    return refund, payment


def payment_bill(payment: Payment, attempt: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "bill", "kind": "payment", "id": f"bill_{payment.payment_id}",
        "merchant": {"id": payment.merchant_id, "name": _merchant_name(payment.merchant_id)},
        "payment_id": payment.payment_id, "merchant_order_no": payment.merchant_order_no,
        "description": payment.description, "method": payment.method, "channel": attempt.get("channel"),
        "channel_transaction_id": attempt.get("channel_transaction_id"),
        "amount": payment.amount_captured, "currency": payment.currency,
        "amount_refunded": payment.amount_refunded, "fee": None, "fee_note": FEE_NOTE,
        "status": str(payment.status), "created_at": payment.created_at,
        "paid_at": attempt.get("recon_at") or attempt.get("updated_at"), "version": payment.version,
    }


def refund_bill(refund: Refund, payment: Payment) -> dict[str, Any]:
    return {
        "object": "bill", "kind": "refund", "id": f"bill_{refund.refund_id}",
        "merchant": {"id": refund.merchant_id, "name": _merchant_name(refund.merchant_id)},
        "refund_id": refund.refund_id, "merchant_refund_no": refund.merchant_refund_no,
        "payment_id": refund.payment_id, "merchant_order_no": payment.merchant_order_no,
        "channel": refund.channel, "channel_refund_id": refund.channel_refund_id,
        "amount": refund.amount, "currency": refund.currency, "payment_amount": payment.amount_captured,
        "fee": None, "fee_note": FEE_NOTE, "reason": refund.reason, "status": str(refund.status),
        "created_at": refund.created_at, "refunded_at": refund.updated_at, "version": refund.version,
    }


def _local(text: str | None) -> str:
    """Times on paper in Beijing time, with the zone said."""
    if not text:
        return "—"
    return parse_iso(text).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") + " (UTC+8)"


def render_bill(bill: dict[str, Any]) -> bytes:
    ccy = bill["currency"]
    merchant = f"{bill['merchant']['name']} ({bill['merchant']['id']})"
    if bill["kind"] == "payment":
        title = "电子账单 · 支付 Payment bill"
        facts = [("商户 Merchant", merchant), ("商户订单号 Order no.", bill["merchant_order_no"]),
                 ("商品 Description", bill["description"]), ("支付单号 Payment", bill["payment_id"]),
                 ("支付方式 Method", bill["method"]), ("渠道 Channel", bill["channel"] or "—"),
                 ("渠道交易号 Channel transaction no.", bill["channel_transaction_id"] or "—")]
        amounts = [("支付金额 Amount paid", money(bill["amount"], ccy)),
                   ("已退款 Refunded so far", money(bill["amount_refunded"], ccy)),
                   ("手续费 Fee", money(bill["fee"], ccy))]
        times = [("下单时间 Created", _local(bill["created_at"])), ("支付时间 Paid", _local(bill["paid_at"]))]
    else:
        title = "电子账单 · 退款 Refund bill"
        facts = [("商户 Merchant", merchant), ("商户订单号 Order no.", bill["merchant_order_no"]),
                 ("退款单号 Merchant refund no.", bill["merchant_refund_no"]), ("退款 Refund", bill["refund_id"]),
                 ("原支付 Payment", bill["payment_id"]), ("渠道 Channel", bill["channel"]),
                 ("渠道退款号 Channel refund no.", bill["channel_refund_id"] or "—"),
                 ("原因 Reason", bill["reason"] or "—")]
        amounts = [("退款金额 Amount refunded", money(bill["amount"], ccy)),
                   ("原支付金额 Payment amount", money(bill["payment_amount"], ccy)),
                   ("手续费 Fee", money(bill["fee"], ccy))]
        times = [("申请时间 Requested", _local(bill["created_at"])), ("退款时间 Refunded", _local(bill["refunded_at"]))]
    facts.append(("状态 Status", _STATUS_ZH.get(bill["status"], bill["status"])))
    moment = bill.get("paid_at") or bill.get("refunded_at") or bill["created_at"]
    return render(Document(
        title=title, subtitle=f"{bill['id']} · version {bill['version']}", created=parse_iso(moment),
        parts=[Fields("交易 Transaction", facts), Fields("金额 Amounts", amounts), Fields("时间 Times", times),
               Note("手续费：渠道在日对账单中列明，本账单不含逐笔手续费。Fee: reported by the channel in its daily "
                    "statement, not known per payment. 本账单由 payhub 根据交易记录生成。")],
        footer=f"payhub · {bill['id']}", subject=bill["id"]))


def stored_pdf_key(bill: dict[str, Any]) -> str:
    """The bill's PDF in S3, rendered now if this version has none yet."""
    object_id = bill["payment_id"] if bill["kind"] == "payment" else bill["refund_id"]
    key = store.bill_key(bill["merchant"]["id"], object_id, bill["version"])
    if not store.exists(key):
        store.put(key, render_bill(bill), "application/pdf", filename=f"{bill['id']}.pdf")
    return key


def bill_for(merchant_id: str, kind: str, object_id: str) -> dict[str, Any]:
    if kind == "payment":
        return payment_bill(*load_payment(merchant_id, object_id))
    return refund_bill(*load_refund(merchant_id, object_id))


def merchant_view(merchant: Merchant, kind: str, object_id: str, *, link_ttl_s: int) -> dict[str, Any]:
    """The bill as JSON, with a link for the payer that expires after ``link_ttl_s``."""
    bill = bill_for(merchant.merchant_id, kind, object_id)
    expires = int(utcnow().timestamp()) + link_ttl_s
    bill["payer_link"] = {"url": links.payer_url(merchant.merchant_id, kind, object_id, expires),
                          "expires_at": datetime.fromtimestamp(expires, BEIJING).isoformat()}
    return bill
