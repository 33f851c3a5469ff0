"""``CMBBankSandbox``: CMB's cloud direct connect on one local HTTP server.

``POST /cdcserver/api/v2`` takes the form ``UID, FUNCODE, ALG, DATA``. DATA must decrypt under the user's
symmetric key, carry the user's valid signature, name the same funcode and user, use a reqid this user never
sent before and a sigtim within 5 minutes; then the funcode runs. Every answer past decryption is sealed and
signed with the bank's key, its head echoing funcode, userid and reqid. Before decryption (unknown UID, ALG not
SM, DATA unreadable) the answer is the service's plain text ``CDCServer: ... ErrMsg: ...``.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from sandbox.common.httpserver import BackgroundHTTPServer, Request, Response, Router

from . import crypto
from .api import SUCCESS, Funcodes
from .control import AnswerFaults, ControlApi
from .state import BEIJING, BankRefusal, BankState, now_beijing

_log = logging.getLogger("sandbox.cmbbank")
DEFAULT_PORT = 8120
API_PATH = "/cdcserver/api/v2"
SIGTIM_WINDOW_S = 300
_MESSAGES = {"ERR_SIGN": "验签失败", "ERR_REQID": "请求编号重复", "ERR_SIGTIM": "签名时间超出允许范围",
             "ERR_FUNCODE": "接口不存在", "ERR_PARAM": "参数错误", "ERR_ACCOUNT": "账户无权限"}


class CMBBankSandbox:
    """``settle_s``: how long a payment stays at the bank (BNK) before it ends (0: within the pay call);
    ``page_size``: rows per DCTRSINF / NTDMTHLS page."""

    def __init__(self, *, settle_s: float = 0.0, page_size: int = 50, retry_scale: float = 1.0) -> None:
        del retry_scale  # the bank sends no notifications; accepted so `make run` starts every sandbox alike
        self.state = BankState()
        self.bank_key = crypto.Sm2Key.generate()
        self._other_key = crypto.Sm2Key.generate()  # what a forger signs with
        self.answer_faults = AnswerFaults()
        self._last_answer: dict[str, str] = {}
        self._timers: list[threading.Timer] = []
        self._timers_lock = threading.Lock()
        self._funcodes = Funcodes(self.state, self._later, settle_s=settle_s, page_size=page_size)
        self._control = ControlApi(self.state, self.answer_faults, self.bank_key.public_hex, branch_no="75",
                                   bus_mod="S4000", later=self._later)
        self._http = BackgroundHTTPServer(self._routes(), self._control.not_found)
        self.base_url = ""

    @property
    def api_url(self) -> str:
        return self.base_url + API_PATH

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.base_url = self._http.start(host, port)
        _log.info("CMB direct-connect sandbox listening on %s", self.api_url)
        return self.base_url

    def stop(self) -> None:
        self._http.stop()
        with self._timers_lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()

    def _later(self, delay_s: float, action: Callable[[], None]) -> None:
        def run() -> None:
            try:
                action()
            except BankRefusal as exc:
                _log.warning("scheduled bank action refused: %s", exc.message)

        timer = threading.Timer(delay_s, run)
        timer.daemon = True
        with self._timers_lock:
            self._timers = [t for t in self._timers if t.is_alive()]
            self._timers.append(timer)
        timer.start()

    def _routes(self) -> Router:
        router = Router()
        router.add("POST", API_PATH, self._gateway)
        control = self._control
        for method, path, route in (
            ("POST", "/_sandbox/users", control.register_user),
            ("POST", "/_sandbox/credits", control.credit),
            ("POST", "/_sandbox/payee-faults", control.payee_fault),
            ("POST", "/_sandbox/transfers/{yurref}/return", control.return_now),
            ("POST", "/_sandbox/answer-faults", control.answer_fault),
            ("GET", "/_sandbox/received", control.received),
        ):
            router.add(method, path, control.guarded(route))
        return router

    # -- the gateway ---------------------------------------------------------------------------------------

    def _gateway(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode("ascii", errors="replace")).items()}
        uid, funcode = form.get("UID", ""), form.get("FUNCODE", "")
        user = self.state.user(uid)
        if user is None:
            return _plain("用户未登记或不在白名单: UID")
        if form.get("ALG") != "SM":
            return _plain("ALG must be SM")
        try:
            document = crypto.unseal(form.get("DATA", ""), uid, user.sm4_key)
        except crypto.BadEnvelope:
            return _plain("DATA 解密失败")
        request_part = document.get("request")
        head = request_part.get("head") if isinstance(request_part, dict) else None
        head = head if isinstance(head, dict) else {}
        echo = {"funcode": str(head.get("funcode", "")), "userid": uid, "reqid": str(head.get("reqid", ""))}
        try:
            body = self._checked(document, head, user, funcode)
            handler = self._funcodes.handlers().get(funcode)
            if handler is None:
                raise BankRefusal("ERR_FUNCODE", f"funcode {funcode} is not served here")
            answer_body, code, message = handler(user, body), SUCCESS, "业务处理成功"
        except BankRefusal as exc:
            answer_body, code, message = {}, exc.code, f"{_MESSAGES.get(exc.code, '')}: {exc.message}"
        answer = {"response": {"head": {**echo, "bizcode": "", "rspid": secrets.token_hex(8), "resultcode": code,
                                        "resultmsg": message}, "body": answer_body}}
        return Response(200, self._sealed(answer, uid, user.sm4_key).encode("ascii"),
                        {"Content-Type": "text/plain; charset=utf-8"})

    def _checked(self, document: dict[str, Any], head: dict[str, Any], user: Any, funcode: str) -> dict[str, Any]:
        if not crypto.verify_document(document, user.uid, user.public_hex):
            raise BankRefusal("ERR_SIGN", "the signature does not verify under the user's registered key")
        if head.get("funcode") != funcode or head.get("userid") != user.uid:
            raise BankRefusal("ERR_PARAM", "head funcode/userid must match the form's FUNCODE/UID")
        reqid = head.get("reqid")
        if not isinstance(reqid, str) or not reqid.isdigit() or not 8 <= len(reqid) <= 32:
            raise BankRefusal("ERR_PARAM", "reqid must be 8-32 digits")
        sigtim = document["signature"].get("sigtim", "")
        try:
            signed_at = datetime.strptime(str(sigtim), "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
        except ValueError:
            raise BankRefusal("ERR_SIGTIM", "sigtim must be yyyyMMddHHmmss") from None
        if abs((now_beijing() - signed_at).total_seconds()) > SIGTIM_WINDOW_S:
            raise BankRefusal("ERR_SIGTIM", f"sigtim must be within {SIGTIM_WINDOW_S} s of the bank's clock")
        if not self.state.remember_reqid(user.uid, reqid):
            raise BankRefusal("ERR_REQID", "this reqid was already used: replayed request")
        body = document["request"].get("body")
        if not isinstance(body, dict):
            raise BankRefusal("ERR_PARAM", "request.body must be an object")
        return body

    def _sealed(self, answer: dict[str, Any], uid: str, sm4_key: str) -> str:
        sigtim = now_beijing().strftime("%Y%m%d%H%M%S")
        fault = self.answer_faults.take()
        if fault == "replay" and uid in self._last_answer:
            return self._last_answer[uid]
        signed = crypto.sign_document(answer, uid, self._other_key if fault == "wrong_key" else self.bank_key, sigtim)
        if fault == "tampered":
            signed["response"]["head"]["resultmsg"] += " "  # one byte changed after signing
        if fault == "unsigned":
            signed["signature"]["sigdat"] = crypto.PLACEHOLDER
        sealed = crypto.seal(signed, uid, sm4_key)
        if fault is None:
            self._last_answer[uid] = sealed
        return sealed


def _plain(message: str) -> Response:
    return Response(200, f"CDCServer: 请求被拒绝 ErrMsg:{message}".encode(), {"Content-Type": "text/plain; charset=utf-8"})
