"""The card fields of a quick-pay (认证支付) request: ``accNo`` and ``customerInfo``, encrypted per ACP.

``accNo`` is the card number encrypted with UnionPay's encryption certificate (RSA PKCS#1 v1.5, base64);
``encryptCertId`` names that certificate. ``customerInfo`` is ``base64("{k=v&k=v}")`` where the sensitive
items (phoneNo, cvn2, expired) are not written in clear but gathered into one
``encryptedInfo=<base64 RSA ciphertext of "phoneNo=..&cvn2=..&expired=..">``.

Nothing here logs, stores or returns card data in clear: values exist only in the request being built.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

from chalicelib.channels.base import CardDetails

SENSITIVE_ITEMS = ("phoneNo", "cvn2", "expired")


@lru_cache(maxsize=8)
def _encryption_key(cert_pem: str) -> rsa_keys.RSAPublicKey:
    key = x509.load_pem_x509_certificate(cert_pem.encode("ascii")).public_key()
    if not isinstance(key, rsa_keys.RSAPublicKey):
        raise ValueError("UnionPay encryption certificate is not RSA")
    return key


def encrypt(cert_pem: str, plaintext: str) -> str:
    ciphertext = _encryption_key(cert_pem).encrypt(plaintext.encode("utf-8"), padding.PKCS1v15())
    return base64.b64encode(ciphertext).decode("ascii")


def expired_yymm(card: CardDetails) -> str:
    if not 1 <= card.exp_month <= 12 or card.exp_year < 2000:
        raise ValueError("card expiry must be a month 1-12 and a four-digit year")
    return f"{card.exp_year % 100:02d}{card.exp_month:02d}"


def customer_info(cert_pem: str, *, plain: Mapping[str, str | None], sensitive: Mapping[str, str | None]) -> str:
    """``customerInfo``: the plain items in clear, the sensitive ones sealed together as ``encryptedInfo``."""
    items = {key: value for key, value in plain.items() if value}
    sealed = "&".join(f"{key}={value}" for key, value in sensitive.items() if value)
    if sealed:
        items["encryptedInfo"] = encrypt(cert_pem, sealed)
    body = "&".join(f"{key}={items[key]}" for key in sorted(items))
    return base64.b64encode(("{" + body + "}").encode("utf-8")).decode("ascii")


def card_fields(cert_pem: str, cert_id: str, card: CardDetails, *, sms_code: str | None = None,
                cvv: str | None = None, with_identity: bool = True) -> dict[str, str]:
    """``accNo``, ``encryptCertId`` and ``customerInfo`` for one request."""
    if not card.number.isdigit() or not 12 <= len(card.number) <= 19:
        raise ValueError("card number must be 12-19 digits")
    plain: dict[str, str | None] = {"smsCode": sms_code}
    if with_identity:
        plain.update({"certifTp": card.id_type, "certifId": card.id_number, "customerNm": card.holder_name})
    sensitive = {"phoneNo": card.phone, "cvn2": cvv, "expired": expired_yymm(card)}
    return {
        "accNo": encrypt(cert_pem, card.number),
        "encryptCertId": cert_id,
        "customerInfo": customer_info(cert_pem, plain=plain, sensitive=sensitive),
    }


def mask_phone(phone: str | None) -> str:
    """``138****8000``: enough for the payer to recognise the phone the code went to."""
    if not phone or len(phone) < 7:
        return ""
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
