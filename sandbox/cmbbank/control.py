"""The control API (``/_sandbox/...``): plain JSON, no signatures. It stands for what happens at the bank and
at the other businesses (onboarding a direct-connect user, a payer's transfer arriving, a payee's bank failing
or returning a payment, a forged answer on the wire), never for anything the hub could call."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from sandbox.common.control import ControlError
from sandbox.common.control import json_body as _body
from sandbox.common.control import required_str as _required_str
from sandbox.common.httpserver import Request, Response, json_response
from sandbox.common.sm2 import public_key_hex

from .api import _AMOUNT
from .state import BankRefusal, BankState, PayeeFault, yuan

ANSWER_FAULTS = ("wrong_key", "tampered", "unsigned", "replay")


def _fen(body: Mapping[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, str) or not _AMOUNT.match(value):
        raise ControlError(400, "PARAM_ERROR", f"{name} is required (yuan as a string, e.g. \"88.88\")")
    whole, _, cents = value.partition(".")
    return int(whole) * 100 + int(cents.ljust(2, "0") or "0")


class AnswerFaults:
    """Forged answers to come: each ``take`` uses one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[str] = []

    def arm(self, mode: str, count: int) -> None:
        with self._lock:
            self._pending += [mode] * count

    def take(self) -> str | None:
        with self._lock:
            return self._pending.pop(0) if self._pending else None


class ControlApi:
    def __init__(self, state: BankState, answer_faults: AnswerFaults, bank_public_hex: str, branch_no: str,
                 bus_mod: str, later: Callable[[float, Callable[[], None]], None]) -> None:
        self._state = state
        self._answer_faults = answer_faults
        self._bank_public_hex = bank_public_hex
        self._branch_no = branch_no
        self._bus_mod = bus_mod
        self._later = later

    def guarded(self, route: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            try:
                return route(request)
            except ControlError as exc:
                return json_response(exc.status, {"code": exc.code, "message": exc.message})
            except BankRefusal as exc:
                return json_response(409, {"code": exc.code, "message": exc.message})

        return wrapped

    def not_found(self, request: Request) -> Response:
        return json_response(404, {"code": "NOT_FOUND", "message": f"no route {request.method} {request.path}"})

    def register_user(self, request: Request) -> Response:
        """Onboarding: the customer's UID and SM2 public key, its accounts with opening balances. Answers the
        bank's public key and the symmetric key the bank issues for this user."""
        body = _body(request)
        uid = _required_str(body, "uid")
        if not uid.isascii() or not uid.isalnum() or len(uid) > 16:
            raise ControlError(400, "PARAM_ERROR", "uid must be 1-16 letters or digits")
        try:
            public_hex = public_key_hex(_required_str(body, "public_key"))
        except ValueError as exc:
            raise ControlError(400, "PARAM_ERROR", f"public_key: {exc}") from None
        accounts = body.get("accounts")
        if not isinstance(accounts, list) or not accounts:
            raise ControlError(400, "PARAM_ERROR", "accounts is required (list of {account_no, name, balance})")
        parsed = [(_required_str(a, "account_no"), _required_str(a, "name"), self._branch_no, _fen(a, "balance"))
                  for a in accounts if isinstance(a, dict)]
        if len(parsed) != len(accounts):
            raise ControlError(400, "PARAM_ERROR", "each account must be an object")
        user = self._state.register_user(uid, public_hex, parsed)
        return json_response(200, {"uid": uid, "bank_public_key": self._bank_public_hex, "sm4_key": user.sm4_key,
                                   "branch_no": self._branch_no, "bus_mod": self._bus_mod})

    def credit(self, request: Request) -> Response:
        """A payer business transferring to one of our accounts or sub-accounts (``to``: the number it wrote)."""
        body = _body(request)
        entry = self._state.credit(_required_str(body, "to"), _required_str(body, "payer_account_no"),
                                   _required_str(body, "payer_name"), _fen(body, "amount"),
                                   str(body.get("postscript") or ""))
        return json_response(200, {"account_no": entry.account_no, "dmanbr": entry.dmanbr, "refnbr": entry.refnbr,
                                   "seq": entry.seq, "balance_after": yuan(entry.balance_after_fen)})

    def payee_fault(self, request: Request) -> Response:
        """The next ``count`` payments to ``payee_account_no`` fail, or succeed and come back ``return_after_s``
        later (退票), with ``reason`` as the bank's words."""
        body = _body(request)
        outcome = _required_str(body, "outcome")
        if outcome not in ("fail", "return"):
            raise ControlError(400, "PARAM_ERROR", "outcome must be fail or return")
        count, delay = body.get("count", 1), body.get("return_after_s", 0)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ControlError(400, "PARAM_ERROR", "count must be a positive integer")
        if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
            raise ControlError(400, "PARAM_ERROR", "return_after_s must be a non-negative number")
        fault = PayeeFault(_required_str(body, "payee_account_no"), outcome, _required_str(body, "reason"), count,
                           float(delay))
        self._state.add_fault(fault)
        return json_response(200, {"armed": fault.__dict__})

    def return_now(self, request: Request) -> Response:
        body = _body(request)
        payment = self._state.return_payment(_required_str(body, "account_no"), request.path_params["yurref"],
                                             _required_str(body, "reason"))
        return json_response(200, {"yurref": payment.yurref, "rtn_flg": payment.rtn_flg, "rtn_nar": payment.rtn_nar})

    def answer_fault(self, request: Request) -> Response:
        body = _body(request)
        mode, count = _required_str(body, "mode"), body.get("count", 1)
        if mode not in ANSWER_FAULTS:
            raise ControlError(400, "PARAM_ERROR", f"mode must be one of {', '.join(ANSWER_FAULTS)}")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ControlError(400, "PARAM_ERROR", "count must be a positive integer")
        self._answer_faults.arm(mode, count)
        return json_response(200, {"armed": mode, "count": count})

    def received(self, request: Request) -> Response:
        return json_response(200, self._state.view())
