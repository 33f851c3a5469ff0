"""The ACP endpoints: verify the merchant's signature, do the work, answer (the server signs answers).

``frontTransReq.do`` is posted by the payer's browser and answers HTML (the cashier); ``appTransReq.do``,
``backTransReq.do``, ``queryTrans.do`` and the file download are server to server and answer ``k=v&``.
Business refusals are ``AcpError`` with a respCode. The codes follow UnionPay's ranges
(docs/channels/unionpay.md#response-codes); the exact numbers for card problems are the sandbox's model: 60 not a
UnionPay card, 61 declined, 62 card details or phone do not match, 63 CVN2 missing or wrong, 70 SMS code wrong,
71 SMS code used up, 72 authentication failed, 06 payTimeout passed during authentication, 98 file not ready.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import threading
from collections.abc import Mapping
from datetime import date, datetime

from sandbox.common.httpserver import Request

from . import cards, statement
from .callbacks import CallbackSender
from .faults import FaultBook
from .pki import UnionPayKeys, verify
from .state import BEIJING, AcpError, IllegalTransition, Order, OrderKind, SandboxState, digits, new_query_id, now_utc
from .wire import FormError, decode_form, to_hub_id

ANSWER_ECHO = ("version", "encoding", "signMethod", "txnType", "txnSubType", "bizType", "accessType", "merId",
               "orderId", "txnTime")
SMS_TRIES_MAX = 5
_ORDER_ID = re.compile(r"^[0-9A-Za-z]{8,40}$")
_TIME = re.compile(r"^\d{14}$")
_FEN = re.compile(r"^[1-9][0-9]{0,11}$")
_URL = re.compile(r"^https?://\S+$")


def _required(fields: Mapping[str, str], *names: str) -> None:
    for name in names:
        if not fields.get(name):
            raise AcpError("10", f"报文格式错误: {name} is required")


def _expect(fields: Mapping[str, str], **values: str) -> None:
    for name, value in values.items():
        if fields.get(name) != value:
            raise AcpError("10", f"报文格式错误: {name} must be {value}")


def _time(text: str, name: str) -> datetime:
    if not _TIME.match(text):
        raise AcpError("10", f"报文格式错误: {name} must be yyyyMMddHHmmss")
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
    except ValueError as exc:
        raise AcpError("10", f"报文格式错误: {name} is not a time") from exc


def _consume_basics(fields: Mapping[str, str]) -> int:
    _required(fields, "merId", "orderId", "txnTime", "txnAmt", "currencyCode", "backUrl", "accessType")
    if not _ORDER_ID.match(fields["orderId"]):
        raise AcpError("10", "报文格式错误: orderId must be 8-40 letters and digits")
    _time(fields["txnTime"], "txnTime")
    if not _FEN.match(fields["txnAmt"]):
        raise AcpError("10", "报文格式错误: txnAmt must be fen, digits only")
    _expect(fields, currencyCode="156", accessType="0")
    if not _URL.match(fields["backUrl"]):
        raise AcpError("10", "报文格式错误: backUrl must be an http(s) URL")
    return int(fields["txnAmt"])


_INSTAL = re.compile(r"^\{numberOfInstallments=([0-9]{2})\}$")


def _instalments(fields: Mapping[str, str]) -> int:
    """0 for a plain consume (txnSubType 01); the number of instalments of an instalment consume (03), whose
    instalTransInfo must be ``{numberOfInstallments=NN}``."""
    sub_type, info = fields.get("txnSubType"), fields.get("instalTransInfo", "")
    if sub_type == "01":
        if info:
            raise AcpError("10", "报文格式错误: instalTransInfo is for txnSubType 03 (分期付款) only")
        return 0
    if sub_type != "03":
        raise AcpError("10", "报文格式错误: txnSubType must be 01 or 03")
    found = _INSTAL.match(info)
    if found is None:
        raise AcpError("10", "报文格式错误: instalTransInfo must be {numberOfInstallments=NN}")
    count = int(found.group(1))
    if not 2 <= count <= 36:
        raise AcpError("10", f"报文格式错误: numberOfInstallments {count} is not offered")
    return count


def _customer_info(keys: UnionPayKeys, text: str) -> dict[str, str]:
    """``base64("{k=v&...&encryptedInfo=<rsa>}")`` -> all items, the encrypted ones opened."""
    try:
        inner = base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise AcpError("10", "报文格式错误: customerInfo is not base64") from exc
    if not (inner.startswith("{") and inner.endswith("}")):
        raise AcpError("10", "报文格式错误: customerInfo must be {k=v&...}")
    items = dict(item.split("=", 1) for item in inner[1:-1].split("&") if "=" in item)
    sealed = items.pop("encryptedInfo", "")
    if sealed:
        try:
            items.update(dict(item.split("=", 1) for item in keys.decrypt(sealed).split("&") if "=" in item))
        except (binascii.Error, ValueError) as exc:
            raise AcpError("10", "报文格式错误: encryptedInfo cannot be decrypted with our certificate") from exc
    return items


class GatewayApi:
    def __init__(self, state: SandboxState, keys: UnionPayKeys, faults: FaultBook, callbacks: CallbackSender,
                 statement_faults: statement.StatementFaults, refund_settle_s: float) -> None:
        self._state = state
        self._keys = keys
        self._faults = faults
        self._callbacks = callbacks
        self._statement_faults = statement_faults
        self._refund_settle_s = refund_settle_s
        self._timers: list[threading.Timer] = []
        self._timers_lock = threading.Lock()

    # -- authentication ---------------------------------------------------------------------------------------

    def verified(self, request: Request) -> dict[str, str]:
        """The posted fields, once they carry a valid signature by the merchant that merId names."""
        try:
            fields = decode_form(request.body)
        except FormError as exc:
            raise AcpError("10", f"报文格式错误: {exc}") from exc
        _required(fields, "version", "signMethod", "merId")
        _expect(fields, version="5.1.0", signMethod="01")
        if not fields.get("certId") or not fields.get("signature"):
            raise AcpError("11", "验证签名失败: certId and signature are required")
        found = self._state.merchant_key(fields["certId"])
        if found is None:
            raise AcpError("11", "验证签名失败: certId is not a registered merchant certificate")
        merchant_id, public_key = found
        if merchant_id != fields["merId"]:
            raise AcpError("11", "验证签名失败: certId belongs to another merchant")
        if not verify(fields, public_key):
            raise AcpError("11", "验证签名失败: signature does not match")
        return fields

    # -- front (browser) and app --------------------------------------------------------------------------------

    def submit_front(self, fields: Mapping[str, str]) -> Order:
        """A payer's browser posted the consume form: open the order (a re-post of the same form re-opens it).
        ``txnSubType`` 03 is a card instalment consume and must carry ``instalTransInfo``."""
        _expect(fields, txnType="01", bizType="000201", channelType="07")
        instalments = _instalments(fields)
        amount = _consume_basics(fields)
        try:
            existing = self._state.order(fields["merId"], fields["orderId"])
        except AcpError:
            existing = None
        if existing is not None:
            if (existing.kind, existing.txn_time, existing.amount_fen, existing.status, existing.instalments) == (
                    "gateway", fields["txnTime"], amount, "SUBMITTED", instalments):
                return existing
            raise AcpError("12", "重复交易: this orderId was already used")
        order = self._new_order(fields, "gateway", amount)
        order.instalments = instalments
        return self._state.add_order(order)

    def app_trans(self, fields: Mapping[str, str], request: Request) -> dict[str, str]:
        _expect(fields, txnType="01", txnSubType="01", bizType="000201", channelType="08")
        amount = _consume_basics(fields)
        order = self._new_order(fields, "app", amount)
        order.tn = digits(21)
        self._state.add_order(order)
        return {"respCode": "00", "respMsg": "成功[0000000]", "tn": order.tn}

    def _new_order(self, fields: Mapping[str, str], kind: OrderKind, amount: int) -> Order:
        timeout = _time(fields["payTimeout"], "payTimeout") if fields.get("payTimeout") else None
        return Order(merchant_id=fields["merId"], order_id=fields["orderId"], txn_time=fields["txnTime"],
                     kind=kind, amount_fen=amount, biz_type=fields["bizType"],
                     channel_type=fields.get("channelType", ""), back_url=fields.get("backUrl", ""),
                     created_at=now_utc(), front_url=fields.get("frontUrl", ""), pay_timeout=timeout)

    # -- back: SMS, consume, refund ---------------------------------------------------------------------------------

    def back_trans(self, fields: Mapping[str, str], request: Request) -> dict[str, str]:
        txn_type = fields.get("txnType", "")
        if txn_type == "77":
            return self._consume_sms(fields)
        if txn_type == "01":
            return self._card_consume(fields, request)
        if txn_type == "04":
            return self._refund(fields)
        raise AcpError("10", f"报文格式错误: txnType {txn_type} is not served by backTransReq here")

    def _card(self, fields: Mapping[str, str]) -> tuple[str, cards.TestCard, dict[str, str]]:
        _required(fields, "accNo", "encryptCertId", "customerInfo")
        if fields["encryptCertId"] != self._keys.encrypter.serial:
            raise AcpError("10", "报文格式错误: encryptCertId is not our current encryption certificate")
        try:
            number = self._keys.decrypt(fields["accNo"])
        except (binascii.Error, ValueError) as exc:
            raise AcpError("10", "报文格式错误: accNo cannot be decrypted with our certificate") from exc
        card = cards.lookup(number)
        if card is None:
            raise AcpError("60", "无效卡号: not a UnionPay card number")
        return number, card, _customer_info(self._keys, fields["customerInfo"])

    def _consume_sms(self, fields: Mapping[str, str]) -> dict[str, str]:
        _expect(fields, txnSubType="02", bizType="000301")
        _required(fields, "merId", "orderId", "txnTime", "txnAmt")
        if not _ORDER_ID.match(fields["orderId"]) or not _FEN.match(fields["txnAmt"]):
            raise AcpError("10", "报文格式错误: orderId or txnAmt")
        _time(fields["txnTime"], "txnTime")
        number, card, info = self._card(fields)
        phone = info.get("phoneNo", "")
        if not phone:
            raise AcpError("10", "报文格式错误: customerInfo needs phoneNo")
        if (card.phone and phone != card.phone) or (card.expired and info.get("expired", card.expired) != card.expired):
            raise AcpError("62", "持卡人身份信息或手机号输入不正确")
        order = Order(merchant_id=fields["merId"], order_id=fields["orderId"], txn_time=fields["txnTime"], kind="card",
                      amount_fen=int(fields["txnAmt"]), biz_type="000301", channel_type=fields.get("channelType", "07"),
                      back_url="", created_at=now_utc(), status="SMS_SENT",
                      pay_timeout=_time(fields["payTimeout"], "payTimeout") if fields.get("payTimeout") else None,
                      card_fingerprint=cards.fingerprint(number), card_masked=cards.mask(number), card_kind=card.kind,
                      card_behaviour=card.behaviour, phone_masked=cards.mask_phone(phone),
                      sms_code=f"{secrets.randbelow(1_000_000):06d}")
        self._state.add_order(order)
        return {"respCode": "00", "respMsg": "成功[0000000]"}

    def _card_consume(self, fields: Mapping[str, str], request: Request) -> dict[str, str]:
        _expect(fields, bizType="000301")
        instalments = _instalments(fields)  # txnSubType 01, or 03 with instalTransInfo
        amount = _consume_basics(fields)
        order = self._state.order(fields["merId"], fields["orderId"], fields["txnTime"])
        if order.kind != "card":
            raise AcpError("12", "重复交易: this orderId was already used")
        if order.status != "SMS_SENT":
            raise AcpError("12", "重复交易: this order was already consumed")
        if amount != order.amount_fen:
            raise AcpError("30", "交易金额与短信验证交易不一致")
        number, card, info = self._card(fields)
        if cards.fingerprint(number) != order.card_fingerprint:
            raise AcpError("62", "卡号与短信验证交易不一致")
        if info.get("smsCode", "") != order.sms_code:
            return self._wrong_code(order)
        if card.kind == "credit" and (not info.get("cvn2") or info.get("cvn2") != card.cvn2):
            raise AcpError("63", "CVN2 输入不正确")
        if card.expired and info.get("expired", "") not in ("", card.expired):
            raise AcpError("62", "有效期输入不正确")
        self._state.update_order(order.merchant_id, order.order_id, back_url=fields["backUrl"], instalments=instalments)
        if card.behaviour == "decline":
            failed = self._state.pay(order.merchant_id, order.order_id, False, "61", allowed=("SMS_SENT",))
            return {"respCode": "61", "respMsg": "余额不足", "queryId": failed.query_id}
        if card.behaviour == "challenge":
            token = secrets.token_urlsafe(16)
            updated = self._state.update_order(order.merchant_id, order.order_id, status="CHALLENGE", orig_resp_code="05",
                                               challenge_token=token, query_id=new_query_id(now_utc()))
            host = request.headers.get("host", "127.0.0.1")
            return {"respCode": "00", "respMsg": "成功[0000000]", "queryId": updated.query_id,
                    "challengeUrl": f"http://{host}/_sandbox/challenge/{token}"}
        paid = self._state.pay(order.merchant_id, order.order_id, True, allowed=("SMS_SENT",))
        self._callbacks.payment_succeeded(paid, to_hub_id(paid.order_id))
        return {"respCode": "00", "respMsg": "成功[0000000]", "queryId": paid.query_id}

    def _wrong_code(self, order: Order) -> dict[str, str]:
        tries = order.sms_failures + 1
        if tries >= SMS_TRIES_MAX:
            self._state.update_order(order.merchant_id, order.order_id, sms_failures=tries)
            self._state.pay(order.merchant_id, order.order_id, False, "71", allowed=("SMS_SENT",))
            return {"respCode": "71", "respMsg": "短信验证码错误次数超限"}
        self._state.update_order(order.merchant_id, order.order_id, sms_failures=tries)
        return {"respCode": "70", "respMsg": "短信验证码不正确"}

    def complete_challenge(self, order: Order, succeeded: bool) -> Order:
        if order.status != "CHALLENGE":
            raise IllegalTransition(f"order {order.order_id} is {order.status}, not waiting for authentication")
        done = self._state.pay(order.merchant_id, order.order_id, succeeded, "72", allowed=("CHALLENGE",))
        if done.status == "PAID":
            self._callbacks.payment_succeeded(done, to_hub_id(done.order_id))
        return done

    def _refund(self, fields: Mapping[str, str]) -> dict[str, str]:
        _expect(fields, txnSubType="00")
        _required(fields, "origQryId", "bizType")
        amount = _consume_basics(fields)
        refund = self._state.add_refund(fields["merId"], fields["orderId"], fields["txnTime"], fields["origQryId"],
                                        amount, fields["backUrl"], fields["bizType"])
        timer = threading.Timer(self._refund_settle_s, self._settle_refund, (refund.merchant_id, refund.order_id))
        timer.daemon = True
        with self._timers_lock:
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()
        return {"respCode": "00", "respMsg": "成功[0000000]", "queryId": refund.query_id, "origQryId": refund.orig_query_id}

    def _settle_refund(self, merchant_id: str, order_id: str) -> None:
        try:
            refund = self._state.settle_refund(merchant_id, order_id)
        except IllegalTransition:
            return
        self._callbacks.refund_succeeded(refund, to_hub_id(refund.order_id))

    def cancel_timers(self) -> None:
        with self._timers_lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()

    # -- query ------------------------------------------------------------------------------------------------------

    def query_trans(self, fields: Mapping[str, str], request: Request) -> dict[str, str]:
        _expect(fields, txnType="00", txnSubType="00", bizType="000000")
        _required(fields, "orderId", "txnTime")
        merchant_id, order_id, txn_time = fields["merId"], fields["orderId"], fields["txnTime"]
        try:
            refund = self._state.refund(merchant_id, order_id, txn_time)
        except AcpError:
            refund = None
        if refund is not None:
            answer = {"respCode": "00", "respMsg": "成功[0000000]", "txnType": "04", "txnSubType": "00",
                      "bizType": refund.biz_type, "queryId": refund.query_id, "origQryId": refund.orig_query_id,
                      "txnAmt": str(refund.amount_fen), "currencyCode": "156",
                      "origRespCode": "00" if refund.status == "SUCCEEDED" else "05",
                      "origRespMsg": "成功" if refund.status == "SUCCEEDED" else "交易已受理，请稍后查询"}
            if refund.succeeded_at is not None:
                answer.update(_trace(refund.trace_no, refund.succeeded_at, refund.amount_fen))
            return answer
        order = self._state.order(merchant_id, order_id, txn_time)
        if order.status in ("SUBMITTED", "EXPIRED"):
            raise AcpError("34", "查无此交易: the payer has not paid")
        if order.status == "SMS_SENT":
            return {"respCode": "00", "respMsg": "成功[0000000]", "txnType": "77", "txnSubType": "02", "bizType": "000301",
                    "origRespCode": "00", "origRespMsg": "短信已发送", "txnAmt": str(order.amount_fen),
                    "currencyCode": "156"}
        answer = {"respCode": "00", "respMsg": "成功[0000000]", "txnType": "01",
                  "txnSubType": "03" if order.instalments else "01",
                  "bizType": order.biz_type, "queryId": order.query_id, "txnAmt": str(order.amount_fen),
                  "currencyCode": "156", "origRespCode": order.orig_resp_code,
                  "origRespMsg": {"00": "成功", "05": "交易已受理，请稍后查询"}.get(order.orig_resp_code, "交易失败")}
        if order.paid_at is not None:
            answer.update(_trace(order.trace_no, order.paid_at, order.amount_fen))
        if order.card_masked:
            answer["accNo"] = order.card_masked
        if order.instalments:
            answer["instalTransInfo"] = f"{{numberOfInstallments={order.instalments:02d}}}"
        return answer

    # -- files ------------------------------------------------------------------------------------------------------

    def file_transfer(self, fields: Mapping[str, str], request: Request) -> dict[str, str]:
        _expect(fields, txnType="76", txnSubType="01", bizType="000000", fileType="00")
        _required(fields, "settleDate", "txnTime")
        day = settle_day(fields["settleDate"], now_utc().astimezone(BEIJING).date())
        if self._faults.take("file_not_ready", request.path):
            raise AcpError("98", "文件不存在: not generated yet")
        merchant = self._state.merchant(fields["merId"])
        assert merchant is not None
        entries = self._state.ledger_for_day(merchant.merchant_id, day)
        faults = self._statement_faults.for_day(day, merchant.merchant_id)
        zm, zme = statement.render(entries, merchant.merchant_id, merchant.name, day, faults)
        name, content = statement.package(zm, zme, merchant.merchant_id, day)
        return {"respCode": "00", "respMsg": "成功[0000000]", "settleDate": fields["settleDate"], "fileType": "00",
                "fileName": name, "fileContent": content}


def _trace(trace_no: str, moment: datetime, amount_fen: int) -> dict[str, str]:
    local = moment.astimezone(BEIJING)
    return {"traceNo": trace_no, "traceTime": local.strftime("%m%d%H%M%S"), "settleDate": local.strftime("%m%d"),
            "settleAmt": str(amount_fen), "settleCurrencyCode": "156"}


def settle_day(mmdd: str, today: date) -> date:
    """The latest day on or before ``today`` whose month and day are ``mmdd`` (ACP's settleDate has no year)."""
    if len(mmdd) != 4 or not mmdd.isdigit():
        raise AcpError("10", "报文格式错误: settleDate must be MMDD")
    for year in (today.year, today.year - 1, today.year - 2, today.year - 3, today.year - 4):
        try:
            candidate = date(year, int(mmdd[:2]), int(mmdd[2:]))
        except ValueError:
            continue
        if candidate <= today:
            return candidate
    raise AcpError("10", "报文格式错误: settleDate is not a date")
