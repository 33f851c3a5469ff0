"""Checking a UnionPay answer or notification: certificate first, then the signature
(docs/channels/unionpay.md#verification-rules).

Order: version and signMethod, then ``signPubKeyCert`` (chain, validity, CN), then RSA-SHA256 over the hex
digest of every received field except ``signature`` (``signPubKeyCert`` included, blanks as received).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from chalicelib.channels.unionpay.certs import CertificateRejected, trusted_signing_key
from chalicelib.channels.unionpay.credentials import UnionPayCredentials
from chalicelib.channels.unionpay.signing import SIGN_METHOD_RSA, VERSION, signature_matches


class SignatureInvalid(Exception):
    """A UnionPay signature check failed; the message is a short reason, never key material or fields."""


def check_signed(fields: Mapping[str, str], credentials: UnionPayCredentials, now: datetime) -> None:
    if fields.get("version") != VERSION:
        raise SignatureInvalid("version is not 5.1.0")
    if fields.get("signMethod") != SIGN_METHOD_RSA:
        raise SignatureInvalid("signMethod is not 01")
    if not fields.get("signature"):
        raise SignatureInvalid("missing signature")
    certificate = fields.get("signPubKeyCert", "")
    if not certificate:
        raise SignatureInvalid("missing signPubKeyCert")
    try:
        public_key = trusted_signing_key(certificate, credentials.middle_certs, credentials.root_certs,
                                         allow_test=credentials.allow_test_cn, now=now)
    except CertificateRejected as exc:
        raise SignatureInvalid(f"signPubKeyCert rejected: {exc}") from None
    if not signature_matches(fields, public_key):
        raise SignatureInvalid("signature mismatch")
