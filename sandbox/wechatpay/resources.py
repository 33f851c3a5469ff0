"""JSON shapes WeChat returns for orders and refunds, in query answers and in callback plaintexts."""

from __future__ import annotations

from typing import Any

from .state import TRADE_STATE_DESC, Order, Refund, rfc3339_beijing

REFUND_STATUS_DESC = {"PROCESSING": "退款处理中", "SUCCESS": "退款成功", "CLOSED": "退款关闭", "ABNORMAL": "退款异常"}
USER_RECEIVED_ACCOUNT = "支付用户零钱"


def transaction_json(order: Order) -> dict[str, Any]:
    request = order.request
    body: dict[str, Any] = {
        "appid": request.appid, "mchid": request.mchid, "out_trade_no": request.out_trade_no,
        "trade_type": request.trade_type, "trade_state": order.trade_state,
        "trade_state_desc": TRADE_STATE_DESC[order.trade_state], "attach": request.attach,
        "amount": {"total": request.total_fen, "currency": request.currency},
        "scene_info": {"device_id": ""}, "promotion_detail": [],
    }
    if order.transaction_id is not None:  # only a paid order has a WeChat id, payer and success time
        body["transaction_id"] = order.transaction_id
        body["bank_type"] = "OTHERS"
        body["success_time"] = rfc3339_beijing(order.success_time) if order.success_time else None
        body["payer"] = {"openid": order.payer_openid}
        body["amount"].update({"payer_total": request.total_fen, "payer_currency": request.currency})
    elif request.payer_openid:
        body["payer"] = {"openid": request.payer_openid}
    return body


def refund_json(refund: Refund) -> dict[str, Any]:
    request = refund.request
    body: dict[str, Any] = {
        "refund_id": refund.refund_id, "out_refund_no": request.out_refund_no,
        "transaction_id": refund.transaction_id, "out_trade_no": refund.out_trade_no, "channel": "ORIGINAL",
        "user_received_account": USER_RECEIVED_ACCOUNT, "create_time": rfc3339_beijing(refund.created_at),
        "status": refund.status, "funds_account": "AVAILABLE", "promotion_detail": [],
        "amount": {
            "total": request.total_fen, "refund": request.refund_fen, "from": [],
            "payer_total": request.total_fen, "payer_refund": request.refund_fen,
            "settlement_total": request.total_fen, "settlement_refund": request.refund_fen,
            "discount_refund": 0, "currency": request.currency, "refund_fee": 0,
        },
    }
    if refund.success_time is not None:
        body["success_time"] = rfc3339_beijing(refund.success_time)
    return body


def refund_notification_json(refund: Refund) -> dict[str, Any]:
    """The decrypted resource of a REFUND.* callback (fewer fields than the query answer)."""
    request = refund.request
    return {
        "mchid": request.mchid, "transaction_id": refund.transaction_id, "out_trade_no": refund.out_trade_no,
        "refund_id": refund.refund_id, "out_refund_no": request.out_refund_no, "refund_status": refund.status,
        "success_time": rfc3339_beijing(refund.success_time) if refund.success_time else None,
        "user_received_account": USER_RECEIVED_ACCOUNT,
        "amount": {"total": request.total_fen, "refund": request.refund_fen, "payer_total": request.total_fen,
                   "payer_refund": request.refund_fen},
    }
