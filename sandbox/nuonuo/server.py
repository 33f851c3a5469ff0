"""``NuonuoSandbox``: the provider's gateway, its invoice files, its callbacks and a control API on one server.

Every ``POST /open/v1/services`` is checked as Nuonuo's gateway checks it: the app named by ``appkey`` (query),
its ``accessToken`` and ``userTax`` headers, ``X-Nuonuo-Sign`` over the exact body, a ``timestamp`` within ten
minutes; then the ``method`` header picks the business method. ``/_sandbox/...`` stands for what happens on the
provider's and the tax bureau's side (registering an app, faults, a buyer confirming a red form, the books).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlencode

from sandbox.common.control import ControlError, json_body, required_str
from sandbox.common.delivery import Deliverer, DeliveryJob
from sandbox.common.httpserver import BackgroundHTTPServer, Request, Response, Router, json_response

from . import signing
from .api import Api
from .state import ISSUED, Order, State

_log = logging.getLogger("sandbox.nuonuo")
DEFAULT_PORT = 8110
CALLBACK_RETRY_S = (15.0, 60.0, 300.0, 1800.0)  # the sandbox's own push schedule
MAX_CLOCK_SKEW_S = 600


class NuonuoSandbox:
    def __init__(self, *, retry_scale: float = 1.0) -> None:
        self.state = State()
        self.deliverer = Deliverer(CALLBACK_RETRY_S, retry_scale)
        self.api = Api(self.state, lambda: self.base_url, self._push)
        self._http = BackgroundHTTPServer(self._routes(), self._not_found)
        self.base_url = ""

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.base_url = self._http.start(host, port)
        _log.info("Nuonuo sandbox listening on %s", self.base_url)
        return self.base_url

    def stop(self) -> None:
        self.deliverer.stop()
        self._http.stop()

    def _routes(self) -> Router:
        router = Router()
        router.add("POST", "/open/v1/services", self._services)
        router.add("GET", "/files/{name}", self._file)
        router.add("POST", "/_sandbox/apps", self._register)
        router.add("POST", "/_sandbox/faults", self._fault)
        router.add("GET", "/_sandbox/invoices", lambda r: json_response(200, {"invoices": self.state.issued()}))
        router.add("GET", "/_sandbox/billing-requests",
                   lambda r: json_response(200, {"order_nos": list(self.state.billing_requests)}))
        router.add("POST", "/_sandbox/red-forms/{tax_no}/{bill_id}/buyer-confirm", self._buyer_confirms)
        return router

    @staticmethod
    def _not_found(request: Request) -> Response:
        return json_response(404, {"code": "NOT_FOUND", "describe": f"no route {request.method} {request.path}"})

    # --- the gateway --------------------------------------------------------------------------------------

    def _services(self, request: Request) -> Response:
        app = self.state.apps.get(request.query.get("appkey", ""))
        senid, nonce, timestamp = (request.query.get(k, "") for k in ("senid", "nonce", "timestamp"))
        try:
            body_text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            return _gateway_error("070399", "报文不是UTF-8")
        if app is None:
            return _gateway_error("070101", "appkey无效")
        if request.headers.get("accesstoken") != app.access_token:
            return _gateway_error("070304", "accessToken无效")
        if request.headers.get("usertax") != app.tax_no:
            return _gateway_error("070305", "userTax与授权企业不符")
        if not (senid and nonce.isdigit() and timestamp.isdigit()):
            return _gateway_error("070301", "senid、nonce、timestamp 必填")
        if abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW_S:
            return _gateway_error("070302", "timestamp 超出允许范围")
        if not signing.verify(app.app_secret, app.app_key, senid, nonce, timestamp, body_text,
                              request.headers.get("x-nuonuo-sign", "")):
            _log.warning("refused a request with a bad X-Nuonuo-Sign")
            return _gateway_error("070303", "签名验证失败")
        try:
            body = json.loads(body_text)
        except ValueError:
            return _gateway_error("070399", "报文不是JSON")
        if not isinstance(body, dict):
            return _gateway_error("070399", "报文须为JSON对象")
        answer = self.api.call(app, request.headers.get("method", ""), body)
        with self.state.lock:
            faults = self.state.faults(app.tax_no)
            lose = faults.lose_answer > 0
            if lose:
                faults.lose_answer -= 1
        if lose:  # the work is done; the answer never reaches the caller
            return json_response(502, {"message": "Bad Gateway"})
        return json_response(200, answer)

    def _file(self, request: Request) -> Response:
        serial = request.path_params["name"].removesuffix(".pdf")
        order = self.state.by_serial.get(serial)
        if order is None or order.status != ISSUED or not order.pdf:
            return self._not_found(request)
        return Response(200, order.pdf, {"Content-Type": "application/pdf"})

    # --- callbacks ----------------------------------------------------------------------------------------

    def _push(self, order: Order) -> None:
        """Tell the seller's callBackUrl the outcome: a form post ``operater=callback``, ``orderno`` and
        ``content`` (JSON with c_orderno, c_fpqqlsh, c_status, c_fphm, c_kprq, c_url, c_msg)."""
        if not order.callback_url:
            return
        with self.state.lock:
            faults = self.state.faults(order.tax_no)
            if faults.no_callback > 0:
                faults.no_callback -= 1
                return
            result = self.api.result_of(order)
        content = {"c_orderno": order.order_no, "c_fpqqlsh": order.serial_no, "c_status": order.status,
                   "c_fphm": result.get("allElectronicInvoiceNumber", ""), "c_kprq": result.get("invoiceTime", ""),
                   "c_url": result.get("pdfUrl", ""), "c_msg": order.fail_cause or result["statusMsg"]}
        body = urlencode({"operater": "callback", "orderno": order.order_no,
                          "content": json.dumps(content, ensure_ascii=False)}).encode()

        def prepare(_attempt: int) -> tuple[bytes, dict[str, str]]:
            return body, {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}

        self.deliverer.submit(DeliveryJob(f"nuonuo-{order.serial_no}", order.callback_url, prepare,
                                          labels={"order_no": order.order_no}))

    # --- control ------------------------------------------------------------------------------------------

    def _register(self, request: Request) -> Response:
        try:
            tax_no = required_str(json_body(request), "tax_no")
        except ControlError as exc:
            return json_response(exc.status, {"code": exc.code, "message": exc.message})
        app = self.state.register(tax_no)
        return json_response(200, {"app_key": app.app_key, "app_secret": app.app_secret,
                                   "access_token": app.access_token, "tax_no": app.tax_no})

    def _fault(self, request: Request) -> Response:
        try:
            body = json_body(request)
            kind = required_str(body, "kind")
            tax_no = required_str(body, "tax_no")
        except ControlError as exc:
            return json_response(exc.status, {"code": exc.code, "message": exc.message})
        count = int(body.get("count", 1))
        faults = self.state.faults(tax_no)
        with self.state.lock:
            if kind == "refuse":
                faults.refuse += [str(body.get("cause", "购买方纳税人识别号不存在"))] * count
            elif kind == "refuse_at_once":
                faults.refuse_at_once += [str(body.get("cause", "开票信息校验失败"))] * count
            elif kind == "delay":
                faults.delay_s += [float(body.get("seconds", 1.0))] * count
            elif kind == "lose_answer":
                faults.lose_answer += count
            elif kind == "red_needs_buyer":
                faults.red_needs_buyer += count
            elif kind == "no_callback":
                faults.no_callback += count
            else:
                return json_response(400, {"code": "PARAM_ERROR", "message": f"unknown fault {kind!r}"})
        return json_response(200, {"kind": kind, "count": count})

    def _buyer_confirms(self, request: Request) -> Response:
        try:
            form = self.api.buyer_confirms(request.path_params["tax_no"], request.path_params["bill_id"])
        except KeyError:
            return self._not_found(request)
        return json_response(200, {"billId": form.bill_id, "billStatus": form.status})


def _gateway_error(code: str, describe: str) -> Response:
    return json_response(200, {"code": code, "describe": describe, "result": None})


def control(base_url: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A test's or the CLI's call to the control API."""
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{base_url}{path}", data=data,  # noqa: S310 - the sandbox on loopback
                                 method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as answer:  # noqa: S310 - the sandbox on loopback
        loaded: dict[str, Any] = json.loads(answer.read())
        return loaded
