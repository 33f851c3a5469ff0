"""Pre-orders (统一下单) for ``ecny.wallet``: the request body, and the client action built from the answer.

The bank answers with ``code_url`` (an e-CNY payment code any wallet app scans) and ``order_info`` sealed
for us; unsealed, ``order_info`` is the opaque token the merchant's app hands to the e-CNY cashier SDK to
pay in-app. The action is ``qr_code`` carrying both, so one pre-order serves a web/POS page and an app.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.channels.base import ClientAction, CreateRequest, CreateResult
from chalicelib.channels.ecny.amounts import CURRENCY, money_to_yuan
from chalicelib.channels.ecny.credentials import ECNYCredentials
from chalicelib.channels.ecny.sealing import SealError, unseal
from chalicelib.channels.ecny.states import format_beijing
from chalicelib.domain.errors import ChannelError, InvalidRequest

METHODS = frozenset({"ecny.wallet"})
SUBJECT_CHARS_MAX = 64


def create_body(credentials: ECNYCredentials, request: CreateRequest) -> dict[str, Any]:
    if request.amount.currency != CURRENCY:
        raise InvalidRequest("e-CNY accepts CNY only", param="currency")
    if request.amount.minor <= 0:
        raise InvalidRequest("amount must be positive", param="amount")
    body: dict[str, Any] = {
        "merchant_id": credentials.merchant_id,
        "out_order_no": request.attempt_id,
        "amount": money_to_yuan(request.amount),
        "currency": CURRENCY,
        "subject": request.description[:SUBJECT_CHARS_MAX],
        "notify_url": request.notify_url,
        "expire_time": format_beijing(request.expires_at),
        "scene": "WALLET",
    }
    if request.payer.ip:
        body["client_ip"] = request.payer.ip
    return body


def _required(answer: Mapping[str, Any], name: str) -> str:
    value = answer.get(name)
    if not isinstance(value, str) or not value:
        raise ChannelError(f"e-CNY pre-order answer lacks {name}")
    return value


def create_result(credentials: ECNYCredentials, request: CreateRequest, answer: Mapping[str, Any]) -> CreateResult:
    if answer.get("out_order_no") != request.attempt_id:
        raise ChannelError("e-CNY pre-order answer is for another out_order_no")
    order_no = _required(answer, "order_no")
    code_url = _required(answer, "code_url")
    try:
        order_info = unseal(credentials, answer.get("order_info"), out_order_no=request.attempt_id, field="order_info")
    except SealError as exc:
        raise ChannelError(f"e-CNY pre-order order_info: {exc}") from None
    return CreateResult(order_no, ClientAction("qr_code", {"code_url": code_url, "order_info": order_info}))
