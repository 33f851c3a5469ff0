"""PayPal test kit: a throwaway CA (root -> intermediate -> signing cert with a .paypal.com CN), accounts,
webhooks signed by PayPal's rule, and a fake transport. Keys are generated per session, never committed."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from chalicelib.channels.base import HttpRequest, HttpResponse, InboundCallback
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets

NOW = datetime(2024, 5, 20, 4, 0, 0, tzinfo=UTC)
MERCHANT_ID = "7KNGBPH2U58GQ"
WEBHOOK_ID = "4JH86294D6297924G"
API = "https://api-m.sandbox.paypal.com"
CERT_URL = "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-1d93a270"
OLD_CERT_URL = "https://api.paypal.com/v1/notifications/certs/CERT-11111111-22222222-33333333"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_cert(cn: str, key: rsa.RSAPrivateKey, issuer_cn: str, issuer_key: rsa.RSAPrivateKey, *, ca: bool,
              not_before: datetime = NOW - timedelta(days=30), days: int = 365) -> x509.Certificate:
    return (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(issuer_cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_before + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


def pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


@dataclass
class Signer:
    key: rsa.RSAPrivateKey
    chain_pem: str

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


@dataclass
class PayPalKit:
    root_key: rsa.RSAPrivateKey
    root: x509.Certificate
    intermediate_key: rsa.RSAPrivateKey
    intermediate: x509.Certificate
    current: Signer
    old: Signer
    stranger: rsa.RSAPrivateKey  # a key nobody certified

    @property
    def root_pem(self) -> str:
        return pem(self.root)

    def leaf(self, cn: str = "messageverificationcerts.paypal.com", **options: Any) -> Signer:
        key = self.stranger
        cert = make_cert(cn, key, "Test Intermediate", self.intermediate_key, ca=False, **options)
        return Signer(key, pem(cert, self.intermediate))

    def account(self, *, settings: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None,
                pinned: Mapping[str, str] | None = None) -> ChannelAccount:
        config = ChannelAccountConfig(
            account_id="paypal-test", channel="paypal", methods=("paypal.wallet",), currencies=("USD", "JPY", "TWD"),
            api_base_url=API, settings={"merchant_id": MERCHANT_ID, "webhook_id": WEBHOOK_ID, **(settings or {})})
        values: dict[str, Any] = {
            "client_id": "AYSq3RDGsmBLJE-otTkBtM-jBRd1TCQwFf9RGfwddNXWz0uFU9ztymylOhRS",
            "client_secret": "EGnHDxD_qRPdaLdZz8iCr8N7_MzF-YHPTkjs6NKYQvQSBngp4PTTVWkPZRbL",
            "webhook_cert_roots": {"test-root": self.root_pem},
            "webhook_certs": dict(pinned if pinned is not None else {CERT_URL: self.current.chain_pem}),
            **(secrets or {}),
        }
        return ChannelAccount(config, ChannelSecrets(values))

    def callback(self, event: Mapping[str, Any], *, signer: Signer | None = None, cert_url: str = CERT_URL,
                 webhook_id: str = WEBHOOK_ID, sent_at: datetime = NOW, transmission_id: str = "69cd13f0-d67a-11e5",
                 received_at: datetime = NOW, body: bytes | None = None, **header_overrides: str) -> InboundCallback:
        raw = body if body is not None else json.dumps(event, separators=(",", ":")).encode()
        time = sent_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        message = f"{transmission_id}|{time}|{webhook_id}|{zlib.crc32(raw) & 0xFFFFFFFF}".encode()
        headers = {
            "paypal-transmission-id": transmission_id, "paypal-transmission-time": time,
            "paypal-transmission-sig": (signer or self.current).sign(message), "paypal-cert-url": cert_url,
            "paypal-auth-algo": "SHA256withRSA", "content-type": "application/json",
        }
        headers.update({k.replace("_", "-"): v for k, v in header_overrides.items()})
        return InboundCallback(headers=headers, body=raw, received_at=received_at)


@cache  # RSA key generation is slow: one kit per test session
def make_kit() -> PayPalKit:
    root_key, intermediate_key = _key(), _key()
    root = make_cert("Test Root", root_key, "Test Root", root_key, ca=True, days=3650)
    intermediate = make_cert("Test Intermediate", intermediate_key, "Test Root", root_key, ca=True, days=1825)
    signers = []
    for _ in range(2):
        key = _key()
        cert = make_cert("messageverificationcerts.paypal.com", key, "Test Intermediate", intermediate_key, ca=False)
        signers.append(Signer(key, pem(cert, intermediate)))
    return PayPalKit(root_key, root, intermediate_key, intermediate, signers[0], signers[1], _key())


# -- events ---------------------------------------------------------------------------------------------------


def capture(status: str = "COMPLETED", *, capture_id: str = "2GG279541U471931P", attempt_id: str = "att_test0001",
            value: str = "10.00", currency: str = "USD", merchant_id: str = MERCHANT_ID) -> dict[str, Any]:
    return {"id": capture_id, "status": status, "amount": {"currency_code": currency, "value": value},
            "final_capture": True, "invoice_id": attempt_id, "custom_id": attempt_id,
            "payee": {"email_address": "shop@example.com", "merchant_id": merchant_id},
            "supplementary_data": {"related_ids": {"order_id": "5O190127TN364715T"}},
            "create_time": "2024-05-20T03:59:58Z", "update_time": "2024-05-20T03:59:58Z"}


def order(status: str = "APPROVED", *, order_id: str = "5O190127TN364715T", attempt_id: str = "att_test0001",
          value: str = "10.00", currency: str = "USD", captures: list[dict[str, Any]] | None = None,
          refunds: list[dict[str, Any]] | None = None, merchant_id: str = MERCHANT_ID) -> dict[str, Any]:
    unit: dict[str, Any] = {"reference_id": attempt_id, "custom_id": attempt_id, "invoice_id": attempt_id,
                            "amount": {"currency_code": currency, "value": value},
                            "payee": {"email_address": "shop@example.com", "merchant_id": merchant_id}}
    if captures is not None or refunds is not None:
        unit["payments"] = {"captures": captures or [], "refunds": refunds or []}
    links = [{"href": f"{API}/v2/checkout/orders/{order_id}", "rel": "self", "method": "GET"}]
    if status == "CREATED":
        links.append({"href": f"https://www.sandbox.paypal.com/checkoutnow?token={order_id}", "rel": "approve",
                      "method": "GET"})
    return {"id": order_id, "intent": "CAPTURE", "status": status, "purchase_units": [unit], "links": links}


def refund(status: str = "COMPLETED", *, refund_id: str = "1JU08902781691411", our_id: str = "re_test0001",
           value: str = "2.00", currency: str = "USD", merchant_id: str = MERCHANT_ID) -> dict[str, Any]:
    return {"id": refund_id, "status": status, "amount": {"currency_code": currency, "value": value},
            "invoice_id": our_id, "custom_id": our_id, "payer": {"email_address": "shop@example.com",
                                                                 "merchant_id": merchant_id}}


def event(event_type: str, resource: Mapping[str, Any], *, event_id: str = "WH-2WR32451HC0233532-67976317FL4543714",
          resource_type: str = "capture") -> dict[str, Any]:
    return {"id": event_id, "event_version": "1.0", "create_time": "2024-05-20T03:59:59Z",
            "resource_type": resource_type, "resource_version": "2.0", "event_type": event_type,
            "summary": "Payment completed", "resource": dict(resource)}


# -- transport ------------------------------------------------------------------------------------------------

Handler = Callable[[HttpRequest], HttpResponse]


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json", **(headers or {})}, json.dumps(payload).encode())


def token_response(expires_in: int = 32400, token: str = "A21AAtest-token") -> HttpResponse:
    return json_response(200, {"access_token": token, "token_type": "Bearer", "expires_in": expires_in,
                               "app_id": "APP-80W284485P519543T", "scope": "https://uri.paypal.com/services"})


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

    def json_body(self, index: int) -> Any:
        return json.loads(self.requests[index].body)


@dataclass
class MapReferences:
    """References from plain dicts, standing in for the hub's records."""

    orders: dict[str, str] = field(default_factory=dict)
    captures: dict[str, str] = field(default_factory=dict)
    refunds: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    def order_id(self, attempt_id: str) -> str | None:
        return self.orders.get(attempt_id)

    def capture_id(self, attempt_id: str) -> str | None:
        return self.captures.get(attempt_id)

    def refund(self, refund_id: str) -> Any:
        from chalicelib.channels.paypal.references import RefundReference

        found = self.refunds.get(refund_id)
        return RefundReference(found[0], found[1]) if found else None
