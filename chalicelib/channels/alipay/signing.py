"""Alipay's signature rules (docs/channels/alipay.md#signed-string), shared by requests, responses and notifies.

The signed string is ``k=v`` pairs sorted by key (ASCII), joined with ``&``, raw values (never URL-encoded),
``sign`` always left out and empty values skipped. Requests keep ``sign_type``; payment notifies leave it out
too ("V1", Java ``rsaCheckV1``) while gateway messages keep it ("V2"); a notify is accepted under either.

``RSA2`` is SHA256withRSA (PKCS#1 v1.5); ``SM2`` is SM3withSM2 with the default user id, DER, as the official
Java SDK's ``SM2Encryptor`` does. Keys may be PEM or the bare base64 Alipay's console shows (RSA), or hex (SM2).
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Iterable, Mapping
from functools import lru_cache

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

from chalicelib.config.secret import Secret
from chalicelib.crypto import rsa
from chalicelib.crypto.sm import normalize_public_key_hex, sm2_sign, sm2_verify

SIGN_TYPES = frozenset({"RSA2", "SM2"})
_EC_PUBLIC_KEY_OID = bytes.fromhex("06072a8648ce3d0201")  # id-ecPublicKey, which SM2 keys use in X.509


class NotifyRule(enum.StrEnum):
    V1 = "v1"  # payment notifies: drop sign and sign_type
    V2 = "v2"  # application-gateway messages: drop sign only


def sign_content(params: Mapping[str, str], *, exclude: Iterable[str] = ("sign",)) -> bytes:
    """The canonical string: sorted ``k=v`` joined with ``&``, without ``exclude`` and without empty values."""
    dropped = set(exclude) | {"sign"}
    pairs = sorted((key, value) for key, value in params.items() if key not in dropped and value != "")
    return "&".join(f"{key}={value}" for key, value in pairs).encode("utf-8")


def notify_content(params: Mapping[str, str], rule: NotifyRule) -> bytes:
    return sign_content(params, exclude=("sign", "sign_type") if rule is NotifyRule.V1 else ("sign",))


def _pem(key_text: str, kind: str) -> str:
    """Bare base64 (as Alipay's console shows keys) gets PEM armour; PEM passes through."""
    text = key_text.strip()
    if "-----BEGIN" in text:
        return text + "\n"
    body = "".join(text.split())
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----\n"


@lru_cache(maxsize=16)
def rsa_private_key(key_text: str) -> rsa_keys.RSAPrivateKey:
    """PKCS#8 or PKCS#1, PEM or bare base64; parsing costs more than signing, so keys are cached."""
    text = key_text.strip()
    if "-----BEGIN" in text:
        return rsa.load_private_key(text)
    der = base64.b64decode("".join(text.split()), validate=True)
    try:
        key = serialization.load_der_private_key(der, password=None)
    except ValueError as exc:
        raise ValueError("app private key is neither PKCS#8 nor PKCS#1 DER") from exc
    if not isinstance(key, rsa_keys.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


@lru_cache(maxsize=64)
def rsa_public_key(key_text: str) -> rsa_keys.RSAPublicKey:
    return rsa.load_public_key(_pem(key_text, "PUBLIC KEY"))


def sm2_public_key_hex(key_text: str) -> str:
    """An SM2 public key as ``crypto.sm`` takes it (hex ``x||y``), from hex or from base64 DER SubjectPublicKeyInfo (the
    form Alipay's console and the Java SDK use, bare or PEM-armoured: the key is the uncompressed point at the end
    of the DER)."""
    text = "".join(line for line in key_text.strip().splitlines() if not line.startswith("-----"))
    text = "".join(text.split())  # PEM armour (a pasted "BEGIN PUBLIC KEY" block) is the same DER in base64
    if all(c in "0123456789abcdefABCDEF" for c in text):
        return normalize_public_key_hex(text)
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("SM2 public key is neither hex nor base64") from exc
    if len(der) < 65 + len(_EC_PUBLIC_KEY_OID) or der[0] != 0x30 or _EC_PUBLIC_KEY_OID not in der or der[-65] != 0x04:
        raise ValueError("SM2 public key DER is not an uncompressed EC SubjectPublicKeyInfo")
    return der[-64:].hex()


def sign(sign_type: str, private_key: Secret, message: bytes, *, app_sm2_public_key: str | None = None) -> str:
    """Base64 signature of ``message`` with the app private key (SM2: a hex scalar; the public point is needed
    too: the SM3withSM2 digest's Z is computed from it)."""
    if sign_type == "SM2":
        if not app_sm2_public_key:
            raise ValueError("SM2 signing needs the app's SM2 public key (setting app_sm2_public_key)")
        signature = sm2_sign(private_key.reveal().strip(), sm2_public_key_hex(app_sm2_public_key), message)
    elif sign_type == "RSA2":
        signature = rsa.sign_sha256(rsa_private_key(private_key.reveal()), message)
    else:
        raise ValueError(f"unsupported sign_type {sign_type!r}")
    return base64.b64encode(signature).decode("ascii")


def verify(sign_type: str, public_key_text: str, message: bytes, signature_b64: str) -> bool:
    """True when ``signature_b64`` is a valid signature; a key of the wrong form for ``sign_type`` never verifies."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    if sign_type == "RSA2":
        try:
            public_key = rsa_public_key(public_key_text)
        except (ValueError, UnsupportedAlgorithm):
            # Not an RSA key (an SM2 key of a mixed set: its curve is one cryptography cannot load), or not a
            # key at all: it cannot have made an RSA2 signature, so the next configured key is tried.
            return False
        return rsa.verify_sha256(public_key, message, signature)
    if sign_type == "SM2":
        try:
            point = sm2_public_key_hex(public_key_text)
        except ValueError:
            return False
        return sm2_verify(point, message, signature)
    return False


def verify_with_any(sign_type: str, public_keys: Mapping[str, Secret], message: bytes, signature_b64: str) -> str | None:
    """The id of the first configured Alipay key that verifies, or None. Alipay names no key in what it signs,
    so during a rotation every configured key is tried in turn; a key of the other type (SM2 among RSA2 keys,
    RSA among SM2 keys) never verifies and is skipped, it never stops the search."""
    for key_id, key in public_keys.items():
        if verify(sign_type, key.reveal(), message, signature_b64):
            return key_id
    return None


def verify_notify(sign_type: str, public_keys: Mapping[str, Secret], params: Mapping[str, str]) -> NotifyRule | None:
    """The rule under which a notify's ``sign`` verifies (V1 first: payment notifies), or None."""
    signature = params.get("sign", "")
    if not signature:
        return None
    for rule in (NotifyRule.V1, NotifyRule.V2):
        if verify_with_any(sign_type, public_keys, notify_content(params, rule), signature) is not None:
            return rule
    return None
