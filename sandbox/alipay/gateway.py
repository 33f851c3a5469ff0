"""``/gateway.do``: the merchant's server calls (signed JSON answers) and the payer's browser or Alipay app
bringing a signed page/wap/app order (which opens the cashier).

Every request is checked the way Alipay checks it: a registered ``app_id``, the app's ``sign_type``, and the
``sign`` over the sorted ``k=v`` string of every other non-empty parameter (``sign_type`` included), verified
with the app public key the merchant uploaded.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl

from . import bill
from .crypto import canonical, verify
from .errors import AlipayError, BusinessError, InvalidParameter, MissingParameter
from .faults import StatementFaultBook
from .notify import NotifySender, yuan
from .state import BEIJING, IllegalTransition, Merchant, Order, OrderTerms, SandboxState, alipay_time

BROWSER_METHODS = {"alipay.trade.page.pay": "FAST_INSTANT_TRADE_PAY", "alipay.trade.wap.pay": "QUICK_WAP_WAY",
                   "alipay.trade.app.pay": "QUICK_MSECURITY_PAY"}
BILL_URL_TTL_S = 30.0  # Alipay's download links live about 30 s
_OUT_NO = re.compile(r"^[0-9A-Za-z_\-]{1,64}$")
_YUAN = re.compile(r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$")
_TIME = "%Y-%m-%d %H:%M:%S"
_REQUIRED_COMMON = {"method": "isv.missing-method", "sign_type": "isv.missing-signature-type",
                    "sign": "isv.missing-signature", "timestamp": "isv.missing-timestamp", "version": "isv.missing-version"}


class GatewayRequestError(Exception):
    """The request cannot be tied to a registered app: answered with an unsigned ``error_response``."""

    def __init__(self, error: AlipayError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True, slots=True)
class Call:
    merchant: Merchant
    method: str
    params: Mapping[str, str]
    biz: Mapping[str, Any]
    host: str


@dataclass(frozen=True, slots=True)
class _BillFile:
    app_id: str
    name: str
    content: bytes
    expires_at_s: float


def decode_params(raw_query: str, body: bytes, content_type: str) -> dict[str, str]:
    """Query string and form body together, decoded with the ``charset`` they carry (utf-8 unless told)."""
    try:
        body_text = body.decode("ascii") if body and "x-www-form-urlencoded" in content_type else ""
    except UnicodeDecodeError as exc:
        raise GatewayRequestError(InvalidParameter("isv.invalid-charset", "form body is not URL-encoded")) from exc
    probe = dict(parse_qsl(raw_query, encoding="latin-1")) | dict(parse_qsl(body_text, encoding="latin-1"))
    charset = probe.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "gbk"):
        raise GatewayRequestError(InvalidParameter("isv.invalid-charset", f"charset {charset} is not supported"))
    params: dict[str, str] = {}
    try:
        for source in (raw_query, body_text):
            for key, value in parse_qsl(source, keep_blank_values=True, encoding=charset, errors="strict"):
                if params.get(key, value) != value:
                    raise GatewayRequestError(InvalidParameter("isv.invalid-parameter", f"{key} given twice"))
                params[key] = value
    except UnicodeDecodeError as exc:
        raise GatewayRequestError(InvalidParameter("isv.invalid-charset", f"not {charset}")) from exc
    return params


def app_of(state: SandboxState, params: Mapping[str, str]) -> Merchant:
    """The registered app the request names; an unknown one gets an unsigned ``error_response``."""
    app_id = params.get("app_id", "")
    if not app_id:
        raise GatewayRequestError(MissingParameter("isv.missing-app-id", "缺少AppID参数"))
    merchant = state.merchant(app_id)
    if merchant is None:
        raise GatewayRequestError(InvalidParameter("isv.invalid-app-id", "无效的AppID参数"))
    return merchant


def authenticate(merchant: Merchant, params: Mapping[str, str], host: str) -> Call:
    """Raise ``AlipayError`` (answered signed) unless the request is complete and signed by the app's key."""
    for name, sub_code in _REQUIRED_COMMON.items():
        if not params.get(name):
            raise MissingParameter(sub_code, f"缺少{name}参数")
    if params["sign_type"] != merchant.sign_type:
        raise InvalidParameter("isv.invalid-signature-type", f"the app signs with {merchant.sign_type}")
    if not verify(merchant.sign_type, merchant.app_public_key, canonical(params), params["sign"]):
        raise InvalidParameter("isv.invalid-signature", "验签出错: the sign does not verify with the app public key")
    try:
        datetime.strptime(params["timestamp"], _TIME)
    except ValueError as exc:
        raise InvalidParameter("isv.invalid-timestamp", "timestamp must be yyyy-MM-dd HH:mm:ss") from exc
    try:
        biz = json.loads(params.get("biz_content") or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidParameter("isv.invalid-parameter", "biz_content is not JSON") from exc
    if not isinstance(biz, dict):
        raise InvalidParameter("isv.invalid-parameter", "biz_content must be a JSON object")
    return Call(merchant, params["method"], params, biz, host)


def _text(biz: Mapping[str, Any], name: str, *, max_len: int = 256, required: bool = True) -> str:
    value = biz.get(name)
    if value in (None, "") and not required:
        return ""
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise MissingParameter("isv.missing-parameter" if value in (None, "") else "isv.invalid-parameter",
                               f"{name} is required (string of at most {max_len} characters)")
    return value


def _fen(biz: Mapping[str, Any], name: str) -> int:
    value = biz.get(name)
    if not isinstance(value, str) or not _YUAN.match(value):
        raise InvalidParameter("isv.invalid-parameter", f"{name} must be yuan with at most 2 decimals, e.g. 88.88")
    whole, _, cents = value.partition(".")
    fen = int(whole) * 100 + int((cents + "00")[:2])
    if fen <= 0:
        raise InvalidParameter("isv.invalid-parameter", f"{name} must be greater than 0")
    return fen


def _out_trade_no(biz: Mapping[str, Any]) -> str:
    value = _text(biz, "out_trade_no", max_len=64)
    if not _OUT_NO.match(value):
        raise InvalidParameter("isv.invalid-parameter", "out_trade_no: letters, digits, _ and - only, at most 64")
    return value


def _expire(biz: Mapping[str, Any]) -> datetime | None:
    raw = biz.get("time_expire")
    if raw in (None, ""):
        return None
    try:
        return datetime.strptime(str(raw), _TIME).replace(tzinfo=BEIJING)
    except ValueError as exc:
        raise InvalidParameter("isv.invalid-parameter", "time_expire must be yyyy-MM-dd HH:mm:ss") from exc


def _huabei(biz: Mapping[str, Any]) -> tuple[int, int]:
    """``extend_params.hb_fq_num`` (3, 6 or 12, a string) and ``hb_fq_seller_percent`` ("0" or "100"; absent
    means 0, the payer bears the fee). Anything else is refused: Alipay takes no other term and no shared fee."""
    extend = biz.get("extend_params")
    if extend in (None, ""):
        return 0, 0
    if not isinstance(extend, dict):
        raise InvalidParameter("isv.invalid-parameter", "extend_params must be a JSON object")
    number, percent = extend.get("hb_fq_num"), extend.get("hb_fq_seller_percent")
    if number in (None, ""):
        if percent not in (None, ""):
            raise BusinessError("ACQ.INVALID_PARAMETER", "参数无效: hb_fq_seller_percent without hb_fq_num")
        return 0, 0
    # Alipay's JSON reader takes 3 as well as "3" (its SDKs send strings)
    if isinstance(number, bool) or str(number) not in ("3", "6", "12"):
        raise BusinessError("ACQ.INVALID_PARAMETER", f"参数无效: hb_fq_num {number!r} (花呗分期数仅支持3、6、12)")
    if percent not in (None, "") and (isinstance(percent, bool) or str(percent) not in ("0", "100")):
        raise BusinessError("ACQ.INVALID_PARAMETER", f"参数无效: hb_fq_seller_percent {percent!r} (仅支持0或100)")
    return int(str(number)), int(str(percent or 0))


def order_terms(call: Call, product_code: str) -> OrderTerms:
    given = call.biz.get("product_code")
    if given not in (None, product_code):
        raise InvalidParameter("isv.invalid-parameter", f"product_code must be {product_code} for {call.method}")
    hb_fq_num, hb_fq_seller_percent = _huabei(call.biz)
    return OrderTerms(
        app_id=call.merchant.app_id, method=call.method, out_trade_no=_out_trade_no(call.biz),
        total_fen=_fen(call.biz, "total_amount"), subject=_text(call.biz, "subject"), product_code=product_code,
        notify_url=call.params.get("notify_url", ""), return_url=call.params.get("return_url", ""),
        time_expire=_expire(call.biz), hb_fq_num=hb_fq_num, hb_fq_seller_percent=hb_fq_seller_percent,
    )


def trade_json(order: Order) -> dict[str, Any]:
    total = yuan(order.terms.total_fen)
    body: dict[str, Any] = {"trade_no": order.trade_no, "out_trade_no": order.out_trade_no,
                            "buyer_logon_id": order.buyer_logon_id, "trade_status": order.status, "total_amount": total,
                            "buyer_user_id": order.buyer_id}
    if order.terms.hb_fq_num:  # the trade query tells the instalments the order was paid with
        body.update({"hb_fq_num": str(order.terms.hb_fq_num),
                     "hb_fq_seller_percent": str(order.terms.hb_fq_seller_percent)})
    if order.paid_at is not None:
        body.update({"buyer_pay_amount": total, "receipt_amount": total, "invoice_amount": total, "point_amount": "0.00",
                     "send_pay_date": alipay_time(order.paid_at)})
    return body


class Gateway:
    """Server-side Alipay methods. Each returns the ``<method>_response`` object (code 10000) or raises."""

    def __init__(self, state: SandboxState, notifier: NotifySender, statement_faults: StatementFaultBook) -> None:
        self._state = state
        self._notifier = notifier
        self._statement_faults = statement_faults
        self._bills: dict[str, _BillFile] = {}
        self._bills_lock = threading.Lock()
        self.handlers: dict[str, Callable[[Call], dict[str, Any]]] = {
            "alipay.trade.precreate": self.precreate, "alipay.trade.query": self.query,
            "alipay.trade.close": self.close, "alipay.trade.refund": self.refund,
            "alipay.trade.fastpay.refund.query": self.refund_query,
            "alipay.data.dataservice.bill.downloadurl.query": self.bill_url,
        }

    def precreate(self, call: Call) -> dict[str, Any]:
        order = self._present(order_terms(call, "FACE_TO_FACE_PAYMENT"), opened=False)
        return {"out_trade_no": order.out_trade_no, "qr_code": f"http://{call.host}/qr/{order.qr_token}"}

    def open_browser_order(self, call: Call) -> Order:
        """page/wap/app: the payer brought the signed order; the trade exists from now on."""
        return self._present(order_terms(call, BROWSER_METHODS[call.method]), opened=True)

    def _present(self, terms: OrderTerms, *, opened: bool) -> Order:
        try:
            return self._state.present(terms, opened=opened)
        except IllegalTransition as exc:
            raise BusinessError("ACQ.TRADE_HAS_CLOSE", f"交易已超时关闭: {exc}") from exc

    def query(self, call: Call) -> dict[str, Any]:
        return trade_json(self._state.trade(call.merchant.app_id, _out_trade_no(call.biz)))

    def close(self, call: Call) -> dict[str, Any]:
        order, closed_now = self._state.close(call.merchant.app_id, _out_trade_no(call.biz))
        if closed_now:
            self._notifier.trade_changed(call.merchant, order)
        return {"trade_no": order.trade_no, "out_trade_no": order.out_trade_no}

    def refund(self, call: Call) -> dict[str, Any]:
        out_trade_no = _out_trade_no(call.biz)
        # Without out_request_no Alipay takes the order number: one full refund per trade.
        request_no = _text(call.biz, "out_request_no", max_len=64, required=False) or out_trade_no
        refund, order, moved = self._state.refund(call.merchant.app_id, out_trade_no, request_no,
                                                  _fen(call.biz, "refund_amount"),
                                                  _text(call.biz, "refund_reason", required=False))
        if moved:
            self._notifier.refunded(call.merchant, order, refund)
        return {"trade_no": order.trade_no, "out_trade_no": order.out_trade_no, "buyer_logon_id": order.buyer_logon_id,
                "fund_change": "Y" if moved else "N", "refund_fee": yuan(order.refunded_fen),
                "gmt_refund_pay": alipay_time(refund.refunded_at), "buyer_user_id": order.buyer_id}

    def refund_query(self, call: Call) -> dict[str, Any]:
        out_trade_no = _out_trade_no(call.biz)
        request_no = _text(call.biz, "out_request_no", max_len=64)
        refund = self._state.find_refund(call.merchant.app_id, out_trade_no, request_no)
        order = self._state.trade(call.merchant.app_id, out_trade_no)
        if refund is None:  # Alipay answers 10000 with no refund data: "no such refund"
            return {"trade_no": order.trade_no, "out_trade_no": out_trade_no}
        answer = {"trade_no": order.trade_no, "out_trade_no": out_trade_no, "out_request_no": request_no,
                  "total_amount": yuan(order.terms.total_fen), "refund_amount": yuan(refund.refund_fen),
                  "refund_status": "REFUND_SUCCESS"}
        if "gmt_refund_pay" in (call.biz.get("query_options") or []):
            answer["gmt_refund_pay"] = alipay_time(refund.refunded_at)
        return answer

    # -- bills -------------------------------------------------------------------------------------------

    def bill_url(self, call: Call) -> dict[str, Any]:
        if call.biz.get("bill_type") != "trade":
            raise InvalidParameter("isv.invalid-parameter", "the sandbox serves bill_type=trade only")
        try:
            day = date.fromisoformat(str(call.biz.get("bill_date")))
        except ValueError as exc:
            raise InvalidParameter("isv.invalid-parameter", "bill_date must be yyyy-MM-dd (daily bills)") from exc
        if day > datetime.now(BEIJING).date():
            raise BusinessError("isp.bill_not_exist", "账单不存在")
        # Sandbox bills exist at once (Alipay's are T+1 after about 10:00) so tests need not wait a day.
        entries = self._state.ledger_for_day(call.merchant.app_id, day)
        content = bill.render(call.merchant.pid, day, entries, self._statement_faults.for_day(day.isoformat()))
        token = secrets.token_urlsafe(24)
        name = f"{call.merchant.pid}0156_{day:%Y%m%d}.csv.zip"
        with self._bills_lock:
            now = time.monotonic()
            self._bills = {k: v for k, v in self._bills.items() if v.expires_at_s > now}
            self._bills[token] = _BillFile(call.merchant.app_id, name, content, now + BILL_URL_TTL_S)
        return {"bill_download_url": f"http://{call.host}/bill/download?token={token}&downloadFileName={name}"}

    def bill_file(self, token: str) -> _BillFile | None:
        with self._bills_lock:
            found = self._bills.get(token)
        return found if found is not None and found.expires_at_s >= time.monotonic() else None
