"""WeChat Pay test kit: keys generated per session, accounts, signed callbacks and a fake transport.

Keys are generated here, never committed. Everything a test signs is signed the way WeChat signs it, so the
adapter is exercised end to end without a network.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

from chalicelib.channels.base import HttpRequest, HttpResponse, InboundCallback
from chalicelib.channels.wechatpay.signing import SCHEME_RSA, SCHEME_SM2
from chalicelib.channels.wechatpay.verification import verification_message
from chalicelib.config.accounts import (
    ChannelAccount,
    ChannelAccountConfig,
    ChannelSecrets,
)
from chalicelib.crypto import rsa
from chalicelib.crypto.aead import aes_gcm_encrypt, sm4_gcm_encrypt, sm4_key_from_secret
from chalicelib.crypto.sm import sm2_generate_keypair, sm2_sign

NOW = datetime(2024, 5, 20, 4, 0, 0, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())
APIV3_KEY = "Tst4pIv3KeyTst4pIv3KeyTst4pIv3Ke"  # 32 ASCII bytes, test only
MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
MERCHANT_SERIAL = "3775B6A45ACD588826D15E583A95F5DD8C0E3C2D"


def rsa_pair() -> tuple[rsa_keys.RSAPrivateKey, str, str]:
    key = rsa_keys.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return key, private_pem, public_pem


@dataclass(frozen=True)
class PlatformKey:
    """One WeChat-side key: signs like WeChat does; ``public_text`` is what an account configures."""

    serial: str
    scheme: str
    public_text: str
    rsa_private: rsa_keys.RSAPrivateKey | None = None
    sm2_private_hex: str | None = None

    def sign(self, message: bytes) -> str:
        if self.scheme == SCHEME_SM2:
            assert self.sm2_private_hex is not None
            return base64.b64encode(sm2_sign(self.sm2_private_hex, self.public_text, message)).decode()
        assert self.rsa_private is not None
        return base64.b64encode(rsa.sign_sha256(self.rsa_private, message)).decode()


@dataclass
class WeChatKit:
    merchant_rsa: rsa_keys.RSAPrivateKey
    merchant_rsa_pem: str
    merchant_sm2_private: str
    merchant_sm2_public: str
    platform_rsa: PlatformKey
    platform_rsa_old: PlatformKey
    platform_pubkey_mode: PlatformKey
    platform_sm2: PlatformKey

    def account(self, sign_type: str = "RSA", api_base_url: str = "https://api.test.invalid",
                apiv3_key: str = APIV3_KEY) -> ChannelAccount:
        settings = {"mchid": MCHID, "appid": APPID, "merchant_serial_no": MERCHANT_SERIAL, "sign_type": sign_type,
                    "public_key_id": self.platform_pubkey_mode.serial}
        if sign_type == "SM2":
            settings["merchant_sm2_public_key"] = self.merchant_sm2_public
        config = ChannelAccountConfig(
            account_id="wx-test", channel="wechatpay",
            methods=("wechat.jsapi", "wechat.miniprogram", "wechat.native", "wechat.h5", "wechat.app"),
            api_base_url=api_base_url, settings=settings,
        )
        platform = [self.platform_rsa, self.platform_rsa_old, self.platform_pubkey_mode, self.platform_sm2]
        secrets = ChannelSecrets({
            "merchant_private_key": self.merchant_sm2_private if sign_type == "SM2" else self.merchant_rsa_pem,
            "apiv3_key": apiv3_key,
            "platform_keys": {key.serial: key.public_text for key in platform},
        })
        return ChannelAccount(config, secrets)

    def signed_headers(self, body: bytes, key: PlatformKey | None = None, *, ts: int = NOW_TS,
                       nonce: str = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", with_type: bool = True) -> dict[str, str]:
        key = key or self.platform_rsa
        headers = {
            "wechatpay-timestamp": str(ts),
            "wechatpay-nonce": nonce,
            "wechatpay-serial": key.serial,
            "wechatpay-signature": key.sign(verification_message(str(ts), nonce, body)),
        }
        if with_type:
            headers["wechatpay-signature-type"] = key.scheme
        return headers

    @staticmethod
    def resource(payload: dict[str, Any], *, algorithm: str = "AEAD_AES_256_GCM", aad: str = "transaction",
                 nonce: str = "fdasflkja484") -> dict[str, str]:
        plaintext = json.dumps(payload).encode()
        if algorithm == "AEAD_SM4_GCM":
            sealed = sm4_gcm_encrypt(sm4_key_from_secret(APIV3_KEY.encode()), nonce.encode(), plaintext, aad.encode())
        else:
            sealed = aes_gcm_encrypt(APIV3_KEY.encode(), nonce.encode(), plaintext, aad.encode())
        return {"original_type": aad, "algorithm": algorithm, "ciphertext": base64.b64encode(sealed).decode(),
                "associated_data": aad, "nonce": nonce}

    @staticmethod
    def envelope(event_type: str, resource: dict[str, str], event_id: str = "EV-2018022511223320873") -> bytes:
        body = {"id": event_id, "create_time": "2015-05-20T13:29:35+08:00", "resource_type": "encrypt-resource",
                "event_type": event_type, "summary": "支付成功", "resource": resource}
        return json.dumps(body, ensure_ascii=False, indent=1).encode()  # not compact: we must not re-serialise

    def callback(self, body: bytes, headers: dict[str, str], received_at: datetime = NOW) -> InboundCallback:
        return InboundCallback(headers=headers, body=body, received_at=received_at)


def transaction(
    trade_state: str = "SUCCESS", total: int = 100, out_trade_no: str = "att_1217752501201407033233368018"
) -> dict[str, Any]:
    return {
        "appid": APPID, "mchid": MCHID, "out_trade_no": out_trade_no, "transaction_id": "1217752501201407033233368018",
        "trade_type": "JSAPI", "trade_state": trade_state, "trade_state_desc": "支付成功", "bank_type": "CMC",
        "success_time": "2018-06-08T10:34:56+08:00", "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
    }


def refund(status: str = "SUCCESS", refund_fen: int = 40) -> dict[str, Any]:
    return {
        "mchid": MCHID, "transaction_id": "1217752501201407033233368018", "out_trade_no": "att_1",
        "refund_id": "50000000382019052709732678859", "out_refund_no": "rf_1", "refund_status": status,
        "success_time": "2018-06-08T10:34:56+08:00", "user_received_account": "招商银行信用卡0403",
        "amount": {"total": 100, "refund": refund_fen, "payer_total": 100, "payer_refund": refund_fen},
    }


Handler = Callable[[HttpRequest], HttpResponse]


@dataclass
class FakeTransport:
    """Records every request and answers from a queue of canned responses (or a handler)."""

    responses: list[HttpResponse | Handler] = field(default_factory=list)
    requests: list[HttpRequest] = field(default_factory=list)

    def send(self, request: HttpRequest, *, timeout_s: float = 10.0) -> HttpResponse:
        self.requests.append(request)
        if not self.responses:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        answer = self.responses.pop(0)
        return answer if isinstance(answer, HttpResponse) else answer(request)




def make_kit() -> WeChatKit:
    merchant, merchant_pem, _ = rsa_pair()
    sm2_merchant_private, sm2_merchant_public = sm2_generate_keypair()
    platform, _, platform_public = rsa_pair()
    old, _, old_public = rsa_pair()
    pubkey_mode, _, pubkey_mode_public = rsa_pair()
    sm2_platform_private, sm2_platform_public = sm2_generate_keypair()
    return WeChatKit(
        merchant_rsa=merchant, merchant_rsa_pem=merchant_pem,
        merchant_sm2_private=sm2_merchant_private, merchant_sm2_public=sm2_merchant_public,
        platform_rsa=PlatformKey("5157F09EFDC096DE15EBE81A47057A7232F1B8E1", SCHEME_RSA, platform_public, platform),
        platform_rsa_old=PlatformKey("444F4864EA9B34415D9C3BBE8A4C3E09C7B7D4F4", SCHEME_RSA, old_public, old),
        platform_pubkey_mode=PlatformKey(
            "PUB_KEY_ID_0114232134912410000000000000", SCHEME_RSA, pubkey_mode_public, pubkey_mode),
        platform_sm2=PlatformKey("7E2B6A3D9C0F41E8A5D7B3C1E9F02468ACE13579", SCHEME_SM2, sm2_platform_public,
                                 sm2_private_hex=sm2_platform_private),
    )



