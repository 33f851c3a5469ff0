"""Alipay's signatures, written here from docs/channels/alipay.md#signed-string (the sandbox never imports the hub's code).

RSA2 = SHA256withRSA over the canonical string; SM2 = SM3withSM2 with the default user id, DER-encoded, as the
official Java SDK signs. RSA keys travel as bare base64 (what Alipay's console shows), SM2 keys as hex.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from gmssl import sm2

SignType = Literal["RSA2", "SM2"]
SIGN_TYPES: tuple[SignType, ...] = ("RSA2", "SM2")
_SM2_ORDER = int(sm2.default_ecc_table["n"], 16)


def canonical(params: Mapping[str, str], exclude: Iterable[str] = ("sign",)) -> bytes:
    """Sorted ``k=v`` joined by ``&``; ``exclude`` and empty values left out; raw (decoded) values."""
    dropped = set(exclude) | {"sign"}
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in dropped and params[k] != "").encode("utf-8")


# -- SM2 through gmssl's curve arithmetic (cryptography has no SM2) --------------------------------------------


def _curve(private_hex: str, public_hex: str) -> sm2.CryptSM2:
    curve = sm2.CryptSM2(private_key=private_hex, public_key="")
    curve.public_key = public_hex  # after init: gmssl's lstrip("04") would eat leading digits of x
    return curve


def _sm2_point(text: str) -> str:
    key = "".join(text.split()).lower()
    if len(key) == 130 and key.startswith("04"):
        key = key[2:]
    if len(key) != 128:
        raise ValueError("SM2 public key must be 64 bytes of hex (x||y), optionally prefixed by 04")
    int(key, 16)
    return key


def sm2_sign(private_hex: str, public_hex: str, message: bytes) -> bytes:
    # The nonce comes from ``secrets``: gmssl's default draws it from ``random``, which is not fit for signing.
    nonce = f"{secrets.randbelow(_SM2_ORDER - 1) + 1:064x}"
    raw = _curve(private_hex, _sm2_point(public_hex)).sign_with_sm3(message, nonce)
    return encode_dss_signature(int(raw[:64], 16), int(raw[64:], 16))


def sm2_verify(public_hex: str, message: bytes, der: bytes) -> bool:
    try:
        r, s = decode_dss_signature(der)
        curve = _curve("", _sm2_point(public_hex))
    except ValueError:
        return False
    if not (0 < r < _SM2_ORDER and 0 < s < _SM2_ORDER):
        return False
    return bool(curve.verify_with_sm3(f"{r:064x}{s:064x}", message))


# -- keys -------------------------------------------------------------------------------------------------------


def _rsa_public(text: str) -> rsa.RSAPublicKey:
    body = text.strip()
    der = None if "-----BEGIN" in body else base64.b64decode("".join(body.split()), validate=True)
    key = serialization.load_der_public_key(der) if der is not None else serialization.load_pem_public_key(body.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def check_public_key(sign_type: SignType, text: str) -> str:
    """Validate an app public key as registered in the console; returns it normalised."""
    if sign_type == "SM2":
        return _sm2_point(text)
    try:
        _rsa_public(text)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not an RSA public key: {exc}") from exc
    return text.strip()


def verify(sign_type: SignType, public_key: str, message: bytes, signature_b64: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    if sign_type == "SM2":
        return sm2_verify(public_key, message, signature)
    try:
        _rsa_public(public_key).verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


@dataclass
class AlipayKey:
    """A key pair Alipay owns; ``public_text`` is what Alipay's console shows the merchant."""

    sign_type: SignType
    public_text: str
    _rsa: rsa.RSAPrivateKey | None = field(default=None, repr=False)
    _sm2_private: str = field(default="", repr=False)

    @classmethod
    def generate(cls, sign_type: SignType) -> AlipayKey:
        if sign_type == "SM2":
            private_hex = f"{secrets.randbelow(_SM2_ORDER - 2) + 1:064x}"
            public_hex = _sm2_point(_curve(private_hex, "")._kg(int(private_hex, 16), sm2.default_ecc_table["g"]))
            return cls("SM2", public_hex, _sm2_private=private_hex)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls("RSA2", base64.b64encode(der).decode("ascii"), _rsa=key)

    def sign(self, message: bytes) -> str:
        if self.sign_type == "SM2":
            return base64.b64encode(sm2_sign(self._sm2_private, self.public_text, message)).decode("ascii")
        assert self._rsa is not None
        return base64.b64encode(self._rsa.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode("ascii")
