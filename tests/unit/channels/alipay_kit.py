"""Alipay test kit: keys generated per session, accounts, Alipay-signed answers and notifies.

Everything signed here is signed by Alipay's rules as docs/channels/alipay.md#wire-rules states them, written out in this file
(not with the adapter's own signing code), so the adapter is checked against the protocol.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

from chalicelib.channels.base import HttpRequest, HttpResponse, InboundCallback
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets
from chalicelib.crypto import rsa
from chalicelib.crypto.sm import sm2_generate_keypair, sm2_sign

NOW = datetime(2024, 5, 20, 4, 0, 0, tzinfo=UTC)  # 12:00 in Beijing
APP_ID = "2021000117600001"
PID = "2088621000000001"
METHODS = ("alipay.page", "alipay.wap", "alipay.qr", "alipay.app")


def canonical(params: dict[str, str], exclude: tuple[str, ...]) -> bytes:
    """docs/channels/alipay.md#signed-string: drop the excluded keys and empty values, sort, join k=v with &."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in exclude and params[k] != "").encode()


def der_b64(key: rsa_keys.RSAPublicKey) -> str:
    return base64.b64encode(key.public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


@dataclass(frozen=True)
class AlipaySide:
    """One Alipay key: signs what Alipay signs; ``public_text`` is what an account configures."""

    sign_type: str
    public_text: str
    rsa_private: rsa_keys.RSAPrivateKey | None = None
    sm2_private_hex: str = ""

    def sign(self, message: bytes) -> str:
        if self.sign_type == "SM2":
            return base64.b64encode(sm2_sign(self.sm2_private_hex, self.public_text, message)).decode()
        assert self.rsa_private is not None
        return base64.b64encode(rsa.sign_sha256(self.rsa_private, message)).decode()


@dataclass
class AlipayKit:
    app_rsa: rsa_keys.RSAPrivateKey
    app_sm2_private: str
    app_sm2_public: str
    alipay_rsa: AlipaySide
    alipay_rsa_old: AlipaySide
    alipay_sm2: AlipaySide

    def app_private_key_text(self, form: str = "pkcs8_b64") -> str:
        if form == "pem":
            return self.app_rsa.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()).decode()
        fmt = serialization.PrivateFormat.TraditionalOpenSSL if form == "pkcs1_b64" else serialization.PrivateFormat.PKCS8
        return base64.b64encode(self.app_rsa.private_bytes(serialization.Encoding.DER, fmt,
                                                           serialization.NoEncryption())).decode()

    def account(self, sign_type: str = "RSA2", *, keys: dict[str, str] | None = None, page_action: str = "redirect_url",
                api_base_url: str = "https://openapi.test.invalid", private_key_form: str = "pkcs8_b64") -> ChannelAccount:
        settings = {"appid": APP_ID, "merchant_id": PID, "sign_type": sign_type, "page_action": page_action}
        if sign_type == "SM2":
            settings["app_sm2_public_key"] = self.app_sm2_public
            default_keys = {"sm2-2024": self.alipay_sm2.public_text}
        else:
            default_keys = {"rsa-2024": self.alipay_rsa.public_text, "rsa-2023": self.alipay_rsa_old.public_text}
        config = ChannelAccountConfig(account_id="alipay-test", channel="alipay", methods=METHODS,
                                      api_base_url=api_base_url, settings=settings)
        secrets = ChannelSecrets({
            "app_private_key": self.app_sm2_private if sign_type == "SM2" else self.app_private_key_text(private_key_form),
            "alipay_public_keys": default_keys if keys is None else keys,
        })
        return ChannelAccount(config, secrets)

    def side(self, sign_type: str) -> AlipaySide:
        return self.alipay_sm2 if sign_type == "SM2" else self.alipay_rsa

    def answer(self, method: str, payload: dict[str, Any], *, sign_type: str = "RSA2", key: AlipaySide | None = None,
               signed: bool = True, error_key: bool = False) -> HttpResponse:
        """A gateway answer: the response object's exact text is what gets signed (not re-serialised)."""
        content = json.dumps(payload, ensure_ascii=False, indent=1)  # whitespace on purpose: verify the raw text
        name = "error_response" if error_key else method.replace(".", "_") + "_response"
        body = f'{{"{name}": {content}'
        if signed:
            body += f',\n "sign": "{(key or self.side(sign_type)).sign(content.encode())}"'
        return HttpResponse(status=200, headers={"content-type": "application/json;charset=utf-8"},
                            body=(body + "}").encode())

    def notify(self, fields: dict[str, str], *, key: AlipaySide | None = None, sign_type: str = "RSA2",
               keep_sign_type: bool = False) -> dict[str, str]:
        """Alipay's notify: V1 signs without sign and sign_type; V2 (gateway messages) keeps sign_type."""
        params = {"sign_type": sign_type, "charset": "utf-8", **fields}
        exclude = ("sign",) if keep_sign_type else ("sign", "sign_type")
        return {**params, "sign": (key or self.side(sign_type)).sign(canonical(params, exclude))}

    @staticmethod
    def callback(params: dict[str, str], encoding: str = "utf-8") -> InboundCallback:
        body = urlencode(params, encoding=encoding).encode("ascii")
        return InboundCallback(headers={"content-type": "application/x-www-form-urlencoded"}, body=body,
                               received_at=NOW)


def trade_notify(**overrides: str) -> dict[str, str]:
    fields = {
        "notify_time": "2024-05-20 12:00:05", "notify_type": "trade_status_sync",
        "notify_id": "2024052000222120005012345678901234", "app_id": APP_ID, "auth_app_id": APP_ID,
        "version": "1.0", "trade_no": "2024052022001400001234567890", "out_trade_no": "att_01HZX3K8Q",
        "buyer_id": "2088102177846880", "buyer_logon_id": "t**@example.com", "seller_id": PID,
        "trade_status": "TRADE_SUCCESS", "total_amount": "88.88", "receipt_amount": "88.88",
        "buyer_pay_amount": "88.88", "invoice_amount": "88.88", "point_amount": "0.00", "subject": "绿茶 Green tea",
        "gmt_create": "2024-05-20 11:59:50", "gmt_payment": "2024-05-20 12:00:04",
        "fund_bill_list": '[{"amount":"88.88","fundChannel":"ALIPAYACCOUNT"}]',
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


@dataclass
class FakeTransport:
    """Records every request and answers from a queue of canned responses (or handlers)."""

    responses: list[HttpResponse | Callable[[HttpRequest], HttpResponse]] = field(default_factory=list)
    requests: list[HttpRequest] = field(default_factory=list)

    def send(self, request: HttpRequest, *, timeout_s: float = 10.0) -> HttpResponse:
        self.requests.append(request)
        if not self.responses:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        answer = self.responses.pop(0)
        return answer if isinstance(answer, HttpResponse) else answer(request)


def make_kit() -> AlipayKit:
    def rsa_side() -> AlipaySide:
        key = rsa_keys.generate_private_key(public_exponent=65537, key_size=2048)
        return AlipaySide("RSA2", der_b64(key.public_key()), rsa_private=key)

    app_sm2_private, app_sm2_public = sm2_generate_keypair()
    alipay_sm2_private, alipay_sm2_public = sm2_generate_keypair()
    return AlipayKit(
        app_rsa=rsa_keys.generate_private_key(public_exponent=65537, key_size=2048),
        app_sm2_private=app_sm2_private, app_sm2_public=app_sm2_public,
        alipay_rsa=rsa_side(), alipay_rsa_old=rsa_side(),
        alipay_sm2=AlipaySide("SM2", alipay_sm2_public, sm2_private_hex=alipay_sm2_private),
    )
