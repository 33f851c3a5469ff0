"""The v3 signature scheme both ways: checking the hub's ``Authorization`` header and signing our answers.

RSA mode: SHA256withRSA (PKCS#1 v1.5). SM2 mode: SM3withSM2, default user id, DER signature. Both base64.
Request message ``METHOD\\nTARGET\\nts\\nnonce\\nbody\\n`` and response/callback message ``ts\\nnonce\\nbody\\n``
are built from the exact bytes on the wire (docs/channels/wechatpay.md#request-signing,
docs/channels/wechatpay.md#verifying-answers-and-callbacks).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass
from typing import Literal, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

from chalicelib.crypto.rsa import load_public_key, sign_sha256, verify_sha256
from chalicelib.crypto.sm import normalize_public_key_hex, sm2_generate_keypair, sm2_sign, sm2_verify

from .certificates import PlatformCA, PlatformCertificate, new_serial_hex
from .errors import SignError

SignType = Literal["RSA", "SM2"]
SCHEMES: dict[SignType, str] = {"RSA": "WECHATPAY2-SHA256-RSA2048", "SM2": "WECHATPAY2-SM2-WITH-SM3"}
SIGN_TYPE_BY_SCHEME: dict[str, SignType] = {scheme: sign_type for sign_type, scheme in SCHEMES.items()}
TIMESTAMP_WINDOW_S = 300
_NONCE_ALPHABET = string.ascii_uppercase + string.digits
_PAIR = re.compile(r'(\w+)="([^"]*)"')


def random_nonce(length: int = 32) -> str:
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(length))


def request_message(method: str, target: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{method}\n{target}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def response_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


class Signer(Protocol):
    sign_type: SignType

    def public_key_text(self) -> str: ...

    def sign(self, message: bytes) -> str: ...


class RsaSigner:
    sign_type: SignType = "RSA"

    def __init__(self) -> None:
        self._private = rsa_keys.generate_private_key(public_exponent=65537, key_size=2048)

    def public_key(self) -> rsa_keys.RSAPublicKey:
        return self._private.public_key()

    def public_key_text(self) -> str:
        return self._private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def sign(self, message: bytes) -> str:
        return base64.b64encode(sign_sha256(self._private, message)).decode()


class Sm2Signer:
    sign_type: SignType = "SM2"

    def __init__(self) -> None:
        self._private_hex, self._public_hex = sm2_generate_keypair()

    def public_key_text(self) -> str:
        return self._public_hex

    def sign(self, message: bytes) -> str:
        return base64.b64encode(sm2_sign(self._private_hex, self._public_hex, message)).decode()


def new_signer(sign_type: SignType) -> Signer:
    return RsaSigner() if sign_type == "RSA" else Sm2Signer()


@dataclass(frozen=True, slots=True)
class PlatformKey:
    """WeChat's side of one sign type: the key pair plus both names a hub may know it by, and (RSA) the
    platform certificate ``GET /v3/certificates`` hands out, whose serial is ``platform_serial``."""

    signer: Signer
    platform_serial: str  # hex serial of the platform certificate
    public_key_id: str  # the newer "WeChat Pay public key" id
    certificate: PlatformCertificate | None = None  # RSA only: SM2 platform certificates are not modelled

    @classmethod
    def generate(cls, sign_type: SignType, ca: PlatformCA, mchid: str | None = None) -> PlatformKey:
        serial = new_serial_hex()
        key_id = "PUB_KEY_ID_0114" + "".join(secrets.choice(string.digits) for _ in range(22))
        signer = new_signer(sign_type)
        certificate = None
        if isinstance(signer, RsaSigner):
            certificate = PlatformCertificate.of(ca.issue(signer.public_key(), serial, mchid), serial)
        return cls(signer, serial, key_id, certificate)


class PlatformKeys(dict[SignType, "PlatformKey"]):
    """WeChat's keys: one shared key per sign type, replaced for one merchant when that merchant's key is
    rotated (platform certificates and WeChat Pay public keys are issued per merchant). A replaced RSA key's
    certificate stays listed by ``GET /v3/certificates`` (until it expires, on WeChat), so a merchant can verify
    what was signed before the rotation."""

    def __init__(self) -> None:
        self.ca = PlatformCA()
        super().__init__({"RSA": PlatformKey.generate("RSA", self.ca), "SM2": PlatformKey.generate("SM2", self.ca)})
        self._by_merchant: dict[tuple[str, SignType], PlatformKey] = {}
        self._retired: dict[tuple[str, SignType], list[PlatformKey]] = {}
        self._lock = threading.Lock()

    def for_merchant(self, mchid: str, sign_type: SignType) -> PlatformKey:
        return self._by_merchant.get((mchid, sign_type)) or self[sign_type]

    def rotate(self, mchid: str, sign_type: SignType) -> PlatformKey:
        fresh = PlatformKey.generate(sign_type, self.ca, mchid)
        with self._lock:
            self._retired.setdefault((mchid, sign_type), []).insert(0, self.for_merchant(mchid, sign_type))
            self._by_merchant[(mchid, sign_type)] = fresh
        return fresh

    def certificates(self, mchid: str) -> list[PlatformCertificate]:
        """The merchant's RSA platform certificates, the one in use first, then the ones rotated out."""
        with self._lock:
            keys = [self.for_merchant(mchid, "RSA"), *self._retired.get((mchid, "RSA"), [])]
        return [key.certificate for key in keys if key.certificate is not None]


def check_merchant_public_key(sign_type: SignType, key_text: str) -> str:
    """Validate a registered merchant key; returns it normalised. Raises ValueError."""
    if sign_type == "RSA":
        load_public_key(key_text)
        return key_text
    return normalize_public_key_hex(key_text)


def verify_merchant_signature(sign_type: SignType, key_text: str, message: bytes, signature_b64: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    if sign_type == "RSA":
        return verify_sha256(load_public_key(key_text), message, signature)
    return sm2_verify(key_text, message, signature)


@dataclass(frozen=True, slots=True)
class Authorization:
    scheme: str
    sign_type: SignType
    mchid: str
    nonce: str
    timestamp: str
    serial_no: str
    signature: str


def parse_authorization(header: str | None) -> Authorization:
    if not header:
        raise SignError("Authorization header is missing")
    scheme, _, params = header.strip().partition(" ")
    sign_type = SIGN_TYPE_BY_SCHEME.get(scheme)
    if sign_type is None:
        raise SignError(f"unsupported Authorization scheme {scheme!r}")
    pairs = dict(_PAIR.findall(params))
    missing = [name for name in ("mchid", "nonce_str", "timestamp", "serial_no", "signature") if not pairs.get(name)]
    if missing:
        raise SignError(f"Authorization lacks {', '.join(missing)}")
    return Authorization(
        scheme, sign_type, pairs["mchid"], pairs["nonce_str"], pairs["timestamp"], pairs["serial_no"],
        pairs["signature"],
    )


def check_timestamp(timestamp: str, now_s: float | None = None) -> None:
    try:
        sent_s = int(timestamp)
    except ValueError as exc:
        raise SignError("timestamp is not Unix seconds") from exc
    now = time.time() if now_s is None else now_s
    if abs(now - sent_s) >= TIMESTAMP_WINDOW_S:
        raise SignError("timestamp is outside the 300 s window")


def same_serial(expected: str, received: str) -> bool:
    # Serials are hex and case-insensitive; compare in constant time anyway, it costs nothing.
    return hmac.compare_digest(expected.upper().encode(), received.upper().encode())
