"""Merchant-side WeChat Pay v3 signatures: the ``Authorization`` header and the client pay-signs.

Pure functions plus one small signer, so the sandbox and tests can rebuild and check the same messages.
Every signed message is lines each ending in ``\\n`` (the last one too); the bytes signed must be the bytes sent.
"""

from __future__ import annotations

import base64
import re
import secrets
from functools import lru_cache
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

from chalicelib.config.secret import Secret
from chalicelib.crypto import rsa
from chalicelib.crypto.sm import sm2_sign
from chalicelib.domain.value_class import value_class

SCHEME_RSA = "WECHATPAY2-SHA256-RSA2048"
SCHEME_SM2 = "WECHATPAY2-SM2-WITH-SM3"
SCHEME_BY_SIGN_TYPE = {"RSA": SCHEME_RSA, "SM2": SCHEME_SM2}
AUTHORIZATION_FIELDS = ("mchid", "nonce_str", "timestamp", "serial_no", "signature")

_PAIR = r'[a-z_]+="[^"]*"'
_HEADER_RE = re.compile(rf"^(?P<scheme>[A-Z0-9-]+) (?P<pairs>{_PAIR}(?:,{_PAIR})*)$")
_PAIR_RE = re.compile(r'([a-z_]+)="([^"]*)"')


def signing_message(*lines: str | bytes) -> bytes:
    """Join lines with a trailing ``\\n`` after each one, including the last (WeChat's rule)."""
    return b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)


def canonical_url(url: str) -> str:
    """Absolute path plus raw query as sent on the wire: no scheme, no host, no re-encoding."""
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def request_message(method: str, url: str, timestamp: int | str, nonce: str, body: bytes) -> bytes:
    return signing_message(method.upper(), canonical_url(url), str(timestamp), nonce, body)


def new_nonce() -> str:
    return secrets.token_hex(16).upper()


def format_authorization(scheme: str, fields: dict[str, str]) -> str:
    return scheme + " " + ",".join(f'{name}="{fields[name]}"' for name in AUTHORIZATION_FIELDS)


def parse_authorization_header(value: str) -> dict[str, str]:
    """Parse ``SCHEME k="v",...`` into ``{"scheme": ..., "mchid": ..., ...}``; ValueError when malformed.

    Pair order is not significant (SDKs differ), but every field must be present exactly once.
    """
    match = _HEADER_RE.match(value.strip())
    if match is None:
        raise ValueError("malformed WeChat Pay Authorization header")
    scheme = match.group("scheme")
    if scheme not in (SCHEME_RSA, SCHEME_SM2):
        raise ValueError("unsupported Authorization scheme")
    fields: dict[str, str] = {}
    for name, field_value in _PAIR_RE.findall(match.group("pairs")):
        if name in fields:
            raise ValueError(f"duplicate Authorization field {name}")
        fields[name] = field_value
    missing = [name for name in AUTHORIZATION_FIELDS if name not in fields]
    if missing:
        raise ValueError(f"Authorization header lacks {', '.join(missing)}")
    return {"scheme": scheme, **fields}


def jsapi_pay_sign_message(app_id: str, timestamp: str, nonce: str, prepay_id: str) -> bytes:
    """JSAPI / mini-program: line 4 is the package ``prepay_id=<id>``."""
    return signing_message(app_id, timestamp, nonce, f"prepay_id={prepay_id}")


def app_pay_sign_message(app_id: str, timestamp: str, nonce: str, prepay_id: str) -> bytes:
    """APP: line 4 is the *bare* prepay id; mixing this up with JSAPI is the classic bug."""
    return signing_message(app_id, timestamp, nonce, prepay_id)


@lru_cache(maxsize=16)
def _rsa_private_key(pem: str) -> rsa_keys.RSAPrivateKey:
    # Parsing a PEM costs more than signing; accounts reuse one key for every request.
    return rsa.load_private_key(pem)


@value_class
class MerchantSigner:
    """Signs with the merchant's private key: RSA (SHA256withRSA) or SM2 (SM3withSM2, DER)."""

    mchid: str
    serial_no: str
    sign_type: str
    private_key: Secret
    sm2_public_key_hex: str | None = None

    @property
    def scheme(self) -> str:
        return SCHEME_BY_SIGN_TYPE[self.sign_type]

    def sign(self, message: bytes) -> str:
        if self.sign_type == "SM2":
            if not self.sm2_public_key_hex:
                raise ValueError("SM2 signing needs the merchant SM2 public key")
            signature = sm2_sign(self.private_key.reveal(), self.sm2_public_key_hex, message)
        else:
            signature = rsa.sign_sha256(_rsa_private_key(self.private_key.reveal()), message)
        return base64.b64encode(signature).decode()

    def authorization(self, method: str, url: str, body: bytes, *, timestamp: int, nonce: str) -> str:
        signature = self.sign(request_message(method, url, timestamp, nonce, body))
        fields = {
            "mchid": self.mchid,
            "nonce_str": nonce,
            "timestamp": str(timestamp),
            "serial_no": self.serial_no,
            "signature": signature,
        }
        return format_authorization(self.scheme, fields)
