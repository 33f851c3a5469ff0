"""``WeChatPaySandbox``: wires state, faults, callbacks and both APIs onto one local HTTP server.

Every ``/v3/...`` call goes: injected 5xx? -> check the hub's Authorization -> handler -> sign the answer
(``ts\\nnonce\\nbody\\n`` with the platform key of the merchant's sign type) -> maybe hold it (timeout fault).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from sandbox.common.delivery import Deliverer
from sandbox.common.httpserver import BackgroundHTTPServer, Request, Response, Router

from . import auth
from .api import Answer, V3Api
from .auth import PlatformKeys, SignType
from .callbacks import RETRY_SCHEDULE_S, CallbackSender
from .certificates import certificate_list
from .control import ControlApi
from .errors import ParamError, ResourceNotExists, SignError, SystemError_, WeChatPayError
from .faults import FaultBook
from .oauth import OAuthAndJsapi
from .state import IllegalTransition, Merchant, SandboxState
from .statement_control import StatementControl
from .statement_faults import StatementFaultBook

_log = logging.getLogger("sandbox.wechatpay")
DEFAULT_PORT = 8101

V3Handler = Callable[[Request, Merchant], Answer]


class WeChatPaySandbox:
    """A local WeChat Pay v3. ``retry_scale`` shrinks the callback retry schedule (0.01: 15 s -> 0.15 s);
    ``refund_settle_s`` is how long a refund stays PROCESSING before it succeeds."""

    def __init__(self, *, retry_scale: float = 1.0, refund_settle_s: float = 1.0,
                 callback_timeout_s: float = 5.0) -> None:
        self.state = SandboxState()
        self.faults = FaultBook()
        # One platform key per sign type, made at startup and never written anywhere.
        self.platform_keys = PlatformKeys()
        self.deliverer = Deliverer(RETRY_SCHEDULE_S, retry_scale, timeout_s=callback_timeout_s)
        self.callbacks = CallbackSender(self.deliverer, self.faults, self.platform_keys)
        self._refund_settle_s = refund_settle_s
        self._timers: list[threading.Timer] = []
        self._timers_lock = threading.Lock()
        self.statement_faults = StatementFaultBook()
        self._v3 = V3Api(self.state, self._schedule_refund_success, self.statement_faults)
        self._statements = StatementControl(self.state, self.statement_faults)
        self._control = ControlApi(self.state, self.faults, self.deliverer, self.callbacks, self.platform_keys)
        self.oauth = OAuthAndJsapi(self.state, self.callbacks.payment_succeeded)
        self._http = BackgroundHTTPServer(self._routes(), self._control.not_found)
        self.base_url = ""

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.base_url = self._http.start(host, port)
        _log.info("WeChat Pay sandbox listening on %s", self.base_url)
        return self.base_url

    def stop(self) -> None:
        self._http.stop()
        with self._timers_lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
        self.callbacks.cancel_holds()
        self.deliverer.stop()

    # -- routing -----------------------------------------------------------------------------------------

    def _routes(self) -> Router:
        router = Router()
        v3, api = self._wrap_v3, self._v3
        for product in ("jsapi", "app", "h5", "native"):
            router.add("POST", f"/v3/pay/transactions/{product}", v3(api.create_order))
        router.add("GET", "/v3/pay/transactions/out-trade-no/{out_trade_no}", v3(api.query_by_out_trade_no))
        router.add("GET", "/v3/pay/transactions/id/{transaction_id}", v3(api.query_by_transaction_id))
        router.add("POST", "/v3/pay/transactions/out-trade-no/{out_trade_no}/close", v3(api.close))
        router.add("POST", "/v3/refund/domestic/refunds", v3(api.create_refund))
        router.add("GET", "/v3/refund/domestic/refunds/{out_refund_no}", v3(api.query_refund))
        router.add("GET", "/v3/bill/tradebill", v3(api.trade_bill))
        router.add("GET", "/v3/billdownload/file", v3(api.download_bill))
        router.add("GET", "/v3/certificates", v3(self._certificates))

        # open.weixin.qq.com and api.weixin.qq.com: the payer's openid for a JSAPI payment (oauth.py).
        router.add("GET", "/connect/oauth2/authorize", self.oauth.authorize)
        router.add("GET", "/sns/oauth2/access_token", self.oauth.access_token)

        control = self._control
        for method, path, handler in (
            ("POST", "/_sandbox/merchants", self._register_merchant),
            ("POST", "/_sandbox/jsapi/pay", self.oauth.jsapi_pay),
            ("GET", "/_sandbox/platform", control.platform),
            ("POST", "/_sandbox/platform/rotate", control.rotate_platform_key),
            ("POST", "/_sandbox/pay", control.pay),
            ("POST", "/_sandbox/userpaying", control.userpaying),
            ("GET", "/_sandbox/orders/{out_trade_no}", control.show_order),
            ("GET", "/_sandbox/ledger", control.ledger),
            ("GET", "/_sandbox/deliveries", control.deliveries),
            ("POST", "/_sandbox/faults", control.arm_fault),
            ("GET", "/_sandbox/faults", control.list_faults),
            ("DELETE", "/_sandbox/faults", control.clear_faults),
            ("POST", "/_sandbox/orders/{out_trade_no}/forget", self._statements.forget),
            ("POST", "/_sandbox/statement-faults", self._statements.arm),
            ("GET", "/_sandbox/statement-faults", self._statements.list),
            ("DELETE", "/_sandbox/statement-faults", self._statements.clear),
        ):
            router.add(method, path, control.guarded(handler))
        return router

    def _register_merchant(self, request: Request) -> Response:
        """Registration as the control API does it, plus each appid's AppSecret (for the web authorisation)."""
        answer = self._control.register_merchant(request)
        if answer.status == 200:
            body = json.loads(answer.body)
            body["app_secrets"] = {appid: self.oauth.app_secret(appid) for appid in json.loads(request.body)["appids"]}
            answer.body = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return answer

    def _wrap_v3(self, handler: V3Handler) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            sign_type: SignType = "RSA"
            serial_mode, mchid = "public_key_id", ""
            hold = None
            try:
                if self.faults.take("error_5xx", request.path):
                    raise SystemError_("系统错误 (injected error_5xx)")
                merchant = self._authenticate(request)
                sign_type, serial_mode, mchid = merchant.sign_type, merchant.serial_mode, merchant.mchid
                hold = self.faults.take("timeout", request.path)
                answer = handler(request, merchant)
            except SignError as exc:
                sign_type = _scheme_sign_type(request) or "RSA"
                answer = _error(exc)
            except WeChatPayError as exc:
                answer = _error(exc)
            except IllegalTransition as exc:
                answer = Answer(400, {"code": "INVALID_REQUEST", "message": str(exc)})
            response = self._render(answer, sign_type, serial_mode, mchid)
            if hold is not None:
                # The work is done; only the answer is late, so the hub must query to learn the outcome.
                response.delay_before_send_s = hold.delay_s
            return response

        return wrapped

    def _authenticate(self, request: Request) -> Merchant:
        header = auth.parse_authorization(request.headers.get("authorization"))
        merchant = self.state.merchant(header.mchid)
        if merchant is None:
            raise SignError(f"mchid {header.mchid} is not registered with the sandbox")
        if header.sign_type != merchant.sign_type:
            raise SignError(f"merchant {merchant.mchid} signs with {auth.SCHEMES[merchant.sign_type]}")
        if not auth.same_serial(merchant.merchant_serial_no, header.serial_no):
            raise SignError("serial_no is not the merchant's registered certificate serial")
        auth.check_timestamp(header.timestamp)
        message = auth.request_message(request.method, request.raw_target, header.timestamp, header.nonce,
                                       request.body)
        if not auth.verify_merchant_signature(merchant.sign_type, merchant.merchant_public_key, message,
                                              header.signature):
            raise SignError("signature does not verify over METHOD\\nURL\\ntimestamp\\nnonce\\nbody\\n")
        return merchant

    def _render(self, answer: Answer, sign_type: SignType, serial_mode: str, mchid: str) -> Response:
        if isinstance(answer.payload, bytes):
            body = answer.payload
            headers = {"Content-Type": "application/octet-stream"}
        elif answer.payload is None:
            body, headers = b"", {}
        else:
            body = json.dumps(answer.payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            headers = {"Content-Type": "application/json; charset=utf-8"}
        headers["Request-ID"] = auth.random_nonce(24)
        if answer.signed:
            platform = self.platform_keys.for_merchant(mchid, sign_type)
            timestamp, nonce = str(int(time.time())), auth.random_nonce()
            headers.update({
                "Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce,
                "Wechatpay-Signature": platform.signer.sign(auth.response_message(timestamp, nonce, body)),
                "Wechatpay-Serial": platform.public_key_id if serial_mode == "public_key_id"
                else platform.platform_serial,
                # WeChat names the algorithm on every signed answer; SDKs refuse an answer without it.
                "Wechatpay-Signature-Type": auth.SCHEMES[sign_type],
            })
        return Response(answer.status, body, headers)

    def _certificates(self, request: Request, merchant: Merchant) -> Answer:
        """``GET /v3/certificates``: the merchant's RSA platform certificates, sealed with its APIv3 key."""
        algorithm_type = request.query.get("algorithm_type", "RSA")
        if algorithm_type not in ("RSA", "SM2", "ALL"):
            raise ParamError("algorithm_type must be RSA, SM2 or ALL")
        if algorithm_type == "SM2":
            raise ParamError("the sandbox issues no SM2 platform certificates: verify SM2 answers with the "
                             "WeChat Pay public key (public_key_id) it registered")
        return Answer(200, certificate_list(self.platform_keys.certificates(merchant.mchid), merchant.apiv3_key))

    # -- refunds settle a moment after they are accepted -------------------------------------------------

    def _schedule_refund_success(self, merchant: Merchant, out_refund_no: str) -> None:
        timer = threading.Timer(self._refund_settle_s, self._settle_refund, (merchant.mchid, out_refund_no))
        timer.daemon = True
        with self._timers_lock:
            self._timers = [t for t in self._timers if t.is_alive()]
            self._timers.append(timer)
        timer.start()

    def _settle_refund(self, mchid: str, out_refund_no: str) -> None:
        try:
            refund = self.state.settle_refund(mchid, out_refund_no)
        except IllegalTransition:
            _log.warning("refund %s was no longer PROCESSING when it came to settle", out_refund_no)
            return
        except ResourceNotExists:  # its order was forgotten (/_sandbox/orders/{no}/forget) meanwhile
            _log.warning("refund %s no longer exists when it came to settle", out_refund_no)
            return
        merchant = self.state.merchant(mchid)
        if merchant is not None:
            self.callbacks.refund_succeeded(merchant, refund)


def _error(exc: WeChatPayError) -> Answer:
    return Answer(exc.http_status, {"code": exc.code, "message": exc.message})


def _scheme_sign_type(request: Request) -> SignType | None:
    scheme = (request.headers.get("authorization") or "").partition(" ")[0]
    return auth.SIGN_TYPE_BY_SCHEME.get(scheme)
