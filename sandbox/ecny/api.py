"""The gateway endpoints the hub calls (all ``POST``, JSON). Each handler gets the authenticated merchant and
the parsed body (whose ``merchant_id`` already matches the signed header) and returns the answer's ``data``.

Field checks live here; business rules (uniqueness, transitions, refund limits) live in ``state``.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from . import statement
from .crypto import sm3_hex
from .errors import ParamError, StatementNotReady
from .protocol import BEIJING, beijing, fen, now_utc, parse_beijing
from .resources import order_json, refund_json, sealed
from .state import Merchant, OrderRequest, RefundRequest, SandboxState

_OUT_NO = re.compile(r"^[0-9A-Za-z_-]{6,32}$")
DOWNLOAD_TTL_S = 300
StatementFaults = Callable[[str, date], list[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class _File:
    merchant_id: str
    content: bytes
    expires_at_s: float


def _text(body: Mapping[str, Any], name: str, *, max_len: int, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ParamError(f"{name} must be a non-empty string of at most {max_len} characters")
    return value


def _out_no(body: Mapping[str, Any], name: str) -> str:
    value = _text(body, name, max_len=32)
    if not _OUT_NO.match(value):
        raise ParamError(f"{name} must be 6-32 of [0-9A-Za-z_-]")
    return value


def _amount(body: Mapping[str, Any], name: str) -> int:
    value = body.get(name)
    try:
        amount = fen(value) if isinstance(value, str) else -1
    except ValueError:
        amount = -1
    if amount <= 0:
        raise ParamError(f"{name} must be a positive yuan string with two decimals, e.g. \"88.88\"")
    return amount


def _currency(body: Mapping[str, Any]) -> None:
    if body.get("currency", "CNY") != "CNY":
        raise ParamError("currency must be CNY")


def _url(body: Mapping[str, Any], name: str) -> str:
    url = _text(body, name, max_len=256)
    if not url.startswith(("https://", "http://")):  # plain http allowed: local hubs
        raise ParamError(f"{name} must be an absolute http(s) URL")
    return url


def _expire_at(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_beijing(value) if isinstance(value, str) else parse_beijing("")
    except ValueError as exc:
        raise ParamError("expire_time must be yyyyMMddHHmmss (Beijing time)") from exc


class GatewayApi:
    def __init__(self, state: SandboxState, on_refund_accepted: Callable[[Merchant, str], None],
                 statement_faults: StatementFaults) -> None:
        self._state = state
        self._on_refund_accepted = on_refund_accepted
        self._statement_faults = statement_faults
        self._files: dict[str, _File] = {}
        self._files_lock = threading.Lock()

    # -- orders ------------------------------------------------------------------------------------------

    def create_order(self, merchant: Merchant, body: dict[str, Any]) -> dict[str, Any]:
        _currency(body)
        if body.get("scene", "WALLET") != "WALLET":
            raise ParamError("scene must be WALLET")
        expire_at = _expire_at(body.get("expire_time"))
        request = OrderRequest(
            merchant_id=merchant.merchant_id, out_order_no=_out_no(body, "out_order_no"),
            amount_fen=_amount(body, "amount"), subject=_text(body, "subject", max_len=64),
            notify_url=_url(body, "notify_url"), expire_at=expire_at,
            client_ip=_text(body, "client_ip", max_len=45, required=False),
        )
        order = self._state.create_order(request)
        # The cashier token: opaque to the merchant, meaningful to the e-CNY app (here: an order handle).
        token = f"ECNYCASHIER.{order.order_no}.{secrets.token_urlsafe(18)}"
        return {
            "out_order_no": request.out_order_no, "order_no": order.order_no,
            "code_url": f"https://ecny.pbank.example/c/{order.order_no}",
            "order_info": sealed(merchant, request.out_order_no, "order_info", token),
            **({"expire_time": beijing(expire_at)} if expire_at else {}),
        }

    def query_order(self, merchant: Merchant, body: dict[str, Any]) -> dict[str, Any]:
        order = self._state.order(merchant.merchant_id, _out_no(body, "out_order_no"))
        return order_json(merchant, order)

    def close_order(self, merchant: Merchant, body: dict[str, Any]) -> dict[str, Any]:
        out_order_no = _out_no(body, "out_order_no")
        self._state.close_order(merchant.merchant_id, out_order_no)
        return {"out_order_no": out_order_no, "status": "CLOSED"}

    # -- refunds -----------------------------------------------------------------------------------------

    def create_refund(self, merchant: Merchant, body: dict[str, Any]) -> dict[str, Any]:
        _currency(body)
        request = RefundRequest(
            merchant_id=merchant.merchant_id, out_order_no=_out_no(body, "out_order_no"),
            out_refund_no=_out_no(body, "out_refund_no"), amount_fen=_amount(body, "refund_amount"),
            order_amount_fen=_amount(body, "order_amount"), reason=_text(body, "reason", max_len=80, required=False),
            notify_url=_url(body, "notify_url"),
        )
        refund, created = self._state.create_refund(request)
        if created:
            self._on_refund_accepted(merchant, request.out_refund_no)
            refund = self._state.refund(merchant.merchant_id, request.out_refund_no)
        return refund_json(refund)

    def query_refund(self, merchant: Merchant, body: dict[str, Any]) -> dict[str, Any]:
        return refund_json(self._state.refund(merchant.merchant_id, _out_no(body, "out_refund_no")))

    # -- statements ----------------------------------------------------------------------------------------

    def apply_statement(self, merchant: Merchant, body: dict[str, Any]) -> dict[str, Any]:
        text = _text(body, "bill_date", max_len=8)
        try:
            day = datetime.strptime(text, "%Y%m%d").date()
        except ValueError as exc:
            raise ParamError("bill_date must be yyyyMMdd") from exc
        # Sandbox files exist from the day itself (a real bank publishes T+1 in the morning), so a developer
        # need not wait; a day still to come has no file.
        if day > now_utc().astimezone(BEIJING).date():
            raise StatementNotReady("对账文件尚未生成")
        entries = self._state.ledger_for_day(merchant.merchant_id, day)
        content = statement.render(merchant.merchant_id, day, entries,
                                   self._statement_faults(merchant.merchant_id, day))
        token = secrets.token_urlsafe(24)
        with self._files_lock:
            self._files[token] = _File(merchant.merchant_id, content, time.monotonic() + DOWNLOAD_TTL_S)
        return {"bill_date": text, "file_name": f"ECNY_{merchant.merchant_id}_{text}.txt",
                "file_size": len(content), "digest_alg": "SM3", "digest": sm3_hex(content), "download_token": token}

    def download_statement(self, merchant: Merchant, body: dict[str, Any]) -> bytes:
        with self._files_lock:
            found = self._files.get(_text(body, "download_token", max_len=64))
        if found is None or found.merchant_id != merchant.merchant_id or found.expires_at_s < time.monotonic():
            raise ParamError("download_token is unknown or expired")
        return found.content

