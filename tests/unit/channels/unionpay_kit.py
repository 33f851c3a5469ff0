"""UnionPay test kit: a certificate hierarchy made per session, accounts, messages signed the way UnionPay
signs them (docs/channels/unionpay.md#signing, written here from the protocol, not from the adapter), a fake transport.

Nothing here is committed key material: every key and certificate is generated when the kit is first used.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from chalicelib.channels.base import HttpRequest, HttpResponse, InboundCallback
from chalicelib.channels.unionpay.order_book import OrderRef
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets

NOW = datetime(2024, 5, 20, 4, 0, 0, tzinfo=UTC)  # 12:00 Beijing
MER_ID = "777290058110048"
UNIONPAY_CN = "041@Z12400000000000000@中国银联股份有限公司@00000001"
TEST_CN = "041@Z12400000000000000@00040000:SIGN@00000001"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


@dataclass
class Issued:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def pem(self) -> str:
        return pem(self.cert)

    @property
    def serial(self) -> str:
        return str(self.cert.serial_number)


def issue(common_name: str, *, issuer: Issued | None = None, ca: bool = False, key: rsa.RSAPrivateKey | None = None,
          not_before: datetime | None = None, not_after: datetime | None = None, serial: int | None = None) -> Issued:
    key = key or new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before or NOW - timedelta(days=365))
        .not_valid_after(not_after or NOW + timedelta(days=365 * 3))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return Issued(builder.sign(signer_key, hashes.SHA256()), key)


@dataclass
class Chain:
    root: Issued
    middle: Issued
    signer: Issued

    def anchors(self) -> tuple[dict[str, str], dict[str, str]]:
        return {self.middle.serial: self.middle.pem}, {self.root.serial: self.root.pem}


def make_chain(cn: str = UNIONPAY_CN, label: str = "A") -> Chain:
    root = issue(f"UnionPay Test Root {label}", ca=True)
    middle = issue(f"UnionPay Test Middle {label}", issuer=root, ca=True)
    return Chain(root, middle, issue(cn, issuer=middle))


def digest_hex(fields: Mapping[str, str]) -> bytes:
    text = "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "signature")
    return hashlib.sha256(text.encode("utf-8")).hexdigest().encode("ascii")


def sign_with(key: rsa.RSAPrivateKey, fields: Mapping[str, str]) -> str:
    return base64.b64encode(key.sign(digest_hex(fields), padding.PKCS1v15(), hashes.SHA256())).decode()


def unionpay_signed(fields: Mapping[str, str], signer: Issued, *, key: rsa.RSAPrivateKey | None = None) -> dict[str, str]:
    """Fields as UnionPay sends them: version, signMethod, signPubKeyCert, then the signature over all."""
    out = {"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", **fields, "signPubKeyCert": signer.pem}
    out["signature"] = sign_with(key or signer.key, out)
    return out


def answer_body(fields: Mapping[str, str]) -> bytes:
    """A synchronous answer: raw ``k=v&`` (not URL-encoded)."""
    return "&".join(f"{k}={v}" for k, v in fields.items()).encode("utf-8")


@dataclass
class UnionPayKit:
    chain: Chain
    chain_b: Chain  # another hierarchy (rotation of the middle/root)
    renewed_signer: Issued  # a second signing certificate under chain's middle (renewal overlap)
    test_cn_signer: Issued
    wrong_cn_signer: Issued
    expired_signer: Issued
    impostor: Chain  # a chain nobody configured, with the right CN
    merchant_key: rsa.RSAPrivateKey
    merchant_cert_id: str
    encrypt: Issued

    def account(self, *, environment: str = "production", chains: tuple[Chain, ...] | None = None,
                api_base_url: str = "https://gateway.test.invalid", account_id: str = "unionpay-test") -> ChannelAccount:
        middles: dict[str, str] = {}
        roots: dict[str, str] = {}
        for chain in chains or (self.chain,):
            more_middles, more_roots = chain.anchors()
            middles.update(more_middles)
            roots.update(more_roots)
        config = ChannelAccountConfig(
            account_id=account_id, channel="unionpay", methods=("unionpay.gateway", "unionpay.quickpass", "unionpay.card"),
            api_base_url=api_base_url,
            settings={"merchant_id": MER_ID, "cert_id": self.merchant_cert_id, "environment": environment},
        )
        secrets = ChannelSecrets({
            "merchant_private_key": private_pem(self.merchant_key), "encrypt_cert": self.encrypt.pem,
            "middle_certs": middles, "root_certs": roots,
        })
        return ChannelAccount(config, secrets)

    def notify(self, fields: Mapping[str, str], signer: Issued | None = None) -> InboundCallback:
        signed = unionpay_signed(fields, signer or self.chain.signer)
        return InboundCallback(headers={"content-type": "application/x-www-form-urlencoded"},
                               body=urlencode(signed).encode(), received_at=NOW)

    def answer(self, fields: Mapping[str, str], status: int = 200, signer: Issued | None = None) -> HttpResponse:
        return HttpResponse(status=status, headers={"content-type": "text/plain;charset=UTF-8"},
                            body=answer_body(unionpay_signed(fields, signer or self.chain.signer)))

    def decrypt(self, ciphertext_b64: str) -> str:
        return self.encrypt.key.decrypt(base64.b64decode(ciphertext_b64), padding.PKCS1v15()).decode()


@cache
def make_kit() -> UnionPayKit:
    chain = make_chain()
    return UnionPayKit(
        chain=chain,
        chain_b=make_chain(label="B"),
        renewed_signer=issue(UNIONPAY_CN, issuer=chain.middle),
        test_cn_signer=issue(TEST_CN, issuer=chain.middle),
        wrong_cn_signer=issue("041@Z12400000000000000@Some Other Company@00000001", issuer=chain.middle),
        expired_signer=issue(UNIONPAY_CN, issuer=chain.middle, not_before=NOW - timedelta(days=400),
                             not_after=NOW - timedelta(days=1)),
        impostor=make_chain(label="Impostor"),
        merchant_key=new_key(),
        merchant_cert_id="69042905377",
        encrypt=issue("041@Z12400000000000000@中国银联股份有限公司@00000002", issuer=chain.middle),
    )


def payment_notify_fields(order_id: str = "attZ0abcdefghijklmnopqrstuvwx", **overrides: str) -> dict[str, str]:
    fields = {
        "accessType": "0", "bizType": "000201", "currencyCode": "156", "merId": MER_ID, "orderId": order_id,
        "queryId": "782405201200000000010", "respCode": "00", "respMsg": "success", "settleAmt": "8888",
        "settleCurrencyCode": "156", "settleDate": "0520", "traceNo": "000010", "traceTime": "0520120005",
        "txnAmt": "8888", "txnSubType": "01", "txnTime": "20240520115959", "txnType": "01",
    }
    fields.update(overrides)
    return fields


Handler = Callable[[HttpRequest], HttpResponse]


@dataclass
class FakeTransport:
    """Records every request and answers from a queue of canned responses (or handlers)."""

    responses: list[HttpResponse | Handler] = field(default_factory=list)
    requests: list[HttpRequest] = field(default_factory=list)

    def send(self, request: HttpRequest, *, timeout_s: float = 10.0) -> HttpResponse:
        self.requests.append(request)
        if not self.responses:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        answer = self.responses.pop(0)
        return answer if isinstance(answer, HttpResponse) else answer(request)


@dataclass
class FakeOrderBook:
    payments: dict[str, OrderRef] = field(default_factory=dict)
    refunds: dict[str, OrderRef] = field(default_factory=dict)

    def payment(self, attempt_id: str) -> OrderRef | None:
        return self.payments.get(attempt_id)

    def refund(self, refund_id: str) -> OrderRef | None:
        return self.refunds.get(refund_id)


def sent_fields(request: HttpRequest) -> dict[str, Any]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(request.body.decode(), keep_blank_values=True, strict_parsing=True))
