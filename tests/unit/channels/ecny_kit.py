"""e-CNY test kit: SM2 keys made once per session, accounts, a fake bank gateway that signs its answers the
way docs/channels/ecny.md says, signed notifications, sealed fields and reconciliation files.

Keys are generated here, never committed. gmssl SM2 costs ~10-15 ms per operation, so tests reuse one kit.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from chalicelib.channels.base import HttpRequest, HttpResponse, InboundCallback
from chalicelib.channels.ecny import signing
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets
from chalicelib.crypto.aead import sm4_gcm_encrypt
from chalicelib.crypto.sm import sm2_generate_keypair, sm2_sign, sm3_digest

NOW = datetime(2024, 5, 20, 4, 0, 0, tzinfo=UTC)  # 12:00 in Beijing
NOW_TS = int(NOW.timestamp())
MERCHANT_ID = "EC4401000000001"
MERCHANT_SERIAL = "7A3C9E1F00112233AABB"
BANK_SERIAL = "B0B0B0B0B0B0B0B0B0B1"
BANK_SERIAL_OLD = "B0B0B0B0B0B0B0B0B0B0"
DATA_KEY_ID = "DK00000001"
DATA_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
BASE_URL = "https://ecny-gw.test.invalid"
ATTEMPT = "att_01hz8k3m4n5p6q7r8s9t0v1w2x"
NONCE = "0123456789abcdef0123456789abcdef"


@dataclass(frozen=True)
class Sm2Pair:
    serial: str
    private_hex: str
    public_hex: str

    @classmethod
    def generate(cls, serial: str) -> Sm2Pair:
        private_hex, public_hex = sm2_generate_keypair()
        return cls(serial, private_hex, public_hex)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(sm2_sign(self.private_hex, self.public_hex, message)).decode()


@dataclass
class ECNYKit:
    merchant: Sm2Pair
    bank: Sm2Pair
    bank_old: Sm2Pair
    impostor: Sm2Pair  # same serial as ``bank``, another key: forged signatures

    def account(self, *, bank_keys: Sequence[Sm2Pair] | None = None, data_keys: dict[str, bytes] | None = None,
                api_base_url: str = BASE_URL) -> ChannelAccount:
        config = ChannelAccountConfig(
            account_id="ecny-test", channel="ecny", methods=("ecny.wallet",), api_base_url=api_base_url,
            settings={"merchant_id": MERCHANT_ID, "merchant_key_serial": MERCHANT_SERIAL,
                      "merchant_sm2_public_key": self.merchant.public_hex},
        )
        keys = [self.bank, self.bank_old] if bank_keys is None else list(bank_keys)
        data = {DATA_KEY_ID: DATA_KEY} if data_keys is None else data_keys
        return ChannelAccount(config, ChannelSecrets({
            "merchant_private_key": self.merchant.private_hex,
            "bank_public_keys": {key.serial: key.public_hex for key in keys},
            "data_keys": {key_id: key.hex() for key_id, key in data.items()},
        }))

    # -- notifications -----------------------------------------------------------------------------------

    def notify_headers(self, body: bytes, key: Sm2Pair | None = None, *, ts: int = NOW_TS,
                       nonce: str = NONCE) -> dict[str, str]:
        key = key or self.bank
        return {
            "content-type": "application/json; charset=utf-8",
            "x-ecny-timestamp": str(ts), "x-ecny-nonce": nonce, "x-ecny-serial": key.serial,
            "x-ecny-signature": key.sign(signing.notify_message(str(ts), nonce, body)),
        }

    def callback(self, body: bytes, headers: dict[str, str] | None = None,
                 received_at: datetime = NOW) -> InboundCallback:
        return InboundCallback(headers=headers if headers is not None else self.notify_headers(body), body=body,
                               received_at=received_at)

    # -- gateway answers -----------------------------------------------------------------------------------

    def answer(self, request: HttpRequest, payload: dict[str, Any] | bytes, *, status: int = 200,
               key: Sm2Pair | None = None, ts: int = NOW_TS, request_nonce: str | None = None,
               sign: bool = True) -> HttpResponse:
        """An answer to ``request`` signed by the bank over RESPONSE\\n<the request's nonce>\\n..."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        headers = {"content-type": "application/json; charset=utf-8"}
        if sign:
            key = key or self.bank
            nonce = secrets.token_hex(16)
            bound = request.headers[signing.HEADER_NONCE] if request_nonce is None else request_nonce
            headers.update({
                "x-ecny-timestamp": str(ts), "x-ecny-nonce": nonce, "x-ecny-serial": key.serial,
                "x-ecny-signature": key.sign(signing.response_message(bound, str(ts), nonce, body)),
            })
        return HttpResponse(status=status, headers=headers, body=body)

    def success(self, data: dict[str, Any], **options: Any) -> Callable[[HttpRequest], HttpResponse]:
        return lambda request: self.answer(request, {"code": "SUCCESS", "msg": "成功", "data": data}, **options)

    def failure(self, code: str, *, status: int = 200, **options: Any) -> Callable[[HttpRequest], HttpResponse]:
        return lambda request: self.answer(request, {"code": code, "msg": "失败"}, status=status, **options)


@cache
def make_kit() -> ECNYKit:
    """One set of keys per test session."""
    bank = Sm2Pair.generate(BANK_SERIAL)
    return ECNYKit(merchant=Sm2Pair.generate(MERCHANT_SERIAL), bank=bank, bank_old=Sm2Pair.generate(BANK_SERIAL_OLD),
                   impostor=Sm2Pair.generate(BANK_SERIAL))


def seal(plaintext: str, *, out_order_no: str = ATTEMPT, name: str = "payer_wallet", merchant_id: str = MERCHANT_ID,
         kid: str = DATA_KEY_ID, key: bytes = DATA_KEY, iv: bytes = b"\x01" * 12) -> dict[str, str]:
    aad = f"{merchant_id}|{out_order_no}|{name}".encode()
    sealed = sm4_gcm_encrypt(key, iv, plaintext.encode(), aad)
    return {"kid": kid, "iv": base64.b64encode(iv).decode(), "ct": base64.b64encode(sealed).decode()}


def order(status: str = "SUCCESS", amount: str = "88.88", out_order_no: str = ATTEMPT, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "out_order_no": out_order_no, "order_no": "EO2024052012000012345678", "status": status, "amount": amount,
        "currency": "CNY", "subject": "Green tea", "create_time": "20240520115900", "offline": False,
        "refunded_amount": "0.00",
    }
    if status in ("SUCCESS", "PART_REFUNDED", "REFUNDED"):
        body.update({"txn_id": "TX" + "1" * 28, "pay_time": "20240520120102", "settle_time": "20240520120102",
                     "payer_wallet": seal("0021123456789012", out_order_no=out_order_no)})
    body.update(extra)
    return body


def refund(status: str = "SUCCESS", amount: str = "8.88", out_refund_no: str = "re_01hz8k3m4n5p6q7r8s9t0v1w2x") -> dict[str, Any]:
    return {"out_refund_no": out_refund_no, "refund_no": "ER2024052013000012345678", "out_order_no": ATTEMPT,
            "status": status, "refund_amount": amount, "currency": "CNY", "create_time": "20240520130000",
            "success_time": "20240520130005"}


def batch_item(out_order_no: str, amount: str, item_id: str) -> dict[str, Any]:
    return {"item_id": item_id, "out_order_no": out_order_no, "order_no": "EO20240520080000" + item_id[-10:],
            "txn_id": "TX" + "2" * 28, "status": "SUCCESS", "amount": amount, "currency": "CNY",
            "pay_time": "20240519231500", "settle_time": "20240520080000", "offline": True, "device_id": "HW0000000001",
            "payer_wallet": seal("0021999988887777", out_order_no=out_order_no)}


def envelope(notify_type: str, content: dict[str, Any], *, notify_id: str = "NT202405201201020000000001",
             merchant_id: str = MERCHANT_ID) -> bytes:
    body = {"notify_id": notify_id, "notify_type": notify_type, "merchant_id": merchant_id,
            "create_time": "20240520120102", **content}
    return json.dumps(body, ensure_ascii=False, indent=1).encode()  # not compact: the hub must not re-serialise


def batch(items: list[dict[str, Any]], *, count: int | None = None, total: str | None = None) -> dict[str, Any]:
    fen = sum(int(item["amount"].replace(".", "")) for item in items)
    return {"batch_no": "OB20240520080000000001", "count": len(items) if count is None else count,
            "total_amount": total or f"{fen // 100}.{fen % 100:02d}", "currency": "CNY", "items": items}


# -- reconciliation files, built from the documented format ------------------------------------------------

COLUMNS = ["交易类型", "商户订单号", "银行订单号", "交易流水号", "商户退款单号", "银行退款单号", "交易金额", "手续费",
           "币种", "交易状态", "交易时间", "入账时间", "离线标识", "付款钱包"]


def pay_row(out_order_no: str = ATTEMPT, amount: str = "88.88", **changes: str) -> dict[str, str]:
    row = {"交易类型": "PAY", "商户订单号": out_order_no, "银行订单号": "EO2024052012000012345678",
           "交易流水号": "TX" + "1" * 28, "商户退款单号": "", "银行退款单号": "", "交易金额": amount, "手续费": "0.00",
           "币种": "CNY", "交易状态": "SUCCESS", "交易时间": "20240520120102", "入账时间": "20240520120102",
           "离线标识": "N", "付款钱包": "************9012"}
    row.update(changes)
    return row


def refund_row(out_refund_no: str = "re_01hz8k3m4n5p6q7r8s9t0v1w2x", amount: str = "8.88", **changes: str) -> dict[str, str]:
    return pay_row(交易类型="REFUND", 商户退款单号=out_refund_no, 银行退款单号="ER2024052013000012345678",
                   交易金额=amount, 交易时间="20240520130005", 入账时间="20240520130005", **changes)


def _fen(text: str) -> int:
    """Amount cells as fen for the trailer; a deliberately malformed cell counts as 0 (its row fails first)."""
    whole, _, cents = text.partition(".")
    return int(whole) * 100 + int(cents) if whole.isdigit() and cents.isdigit() and len(cents) == 2 else 0


def statement_file(rows: list[dict[str, str]], *, columns: list[str] | None = None, merchant_id: str = MERCHANT_ID,
                   trailer: str | None = None, digest: str | None = None) -> bytes:
    columns = columns or COLUMNS
    lines = [f"ECNYRECON|1.0|{merchant_id}|20240520|20240521090000", "|".join(columns)]
    lines += ["|".join(row.get(column, "") for column in columns) for row in rows]
    content = "".join(line + "\r\n" for line in lines).encode("gbk")
    if trailer is None:
        pay = sum(_fen(r["交易金额"]) for r in rows if r["交易类型"] == "PAY")
        back = sum(_fen(r["交易金额"]) for r in rows if r["交易类型"] == "REFUND")
        yuan = lambda fen: f"{'-' if fen < 0 else ''}{abs(fen) // 100}.{abs(fen) % 100:02d}"  # noqa: E731
        trailer = (f"合计|总笔数={len(rows)}|支付笔数={sum(r['交易类型'] == 'PAY' for r in rows)}|支付金额={yuan(pay)}"
                   f"|退款笔数={sum(r['交易类型'] == 'REFUND' for r in rows)}|退款金额={yuan(back)}|手续费=0.00"
                   f"|结算金额={yuan(pay - back)}|SM3={digest or sm3_digest(content).hex()}")
    return content + (trailer + "\r\n").encode("gbk")


Handler = Callable[[HttpRequest], HttpResponse]


@dataclass
class FakeGateway:
    """A ``Transport`` that records requests and answers each from a queue of handlers."""

    handlers: list[Handler] = field(default_factory=list)
    requests: list[HttpRequest] = field(default_factory=list)

    def send(self, request: HttpRequest, *, timeout_s: float = 10.0) -> HttpResponse:
        self.requests.append(request)
        if not self.handlers:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        return self.handlers.pop(0)(request)
