"""The sandbox's own certificate authority, made fresh at every start and never written to disk.

Test root -> test intermediate -> webhook signing certificate whose CN ends in ``.paypal.com`` (PayPal's real
signing certificate is ``messageverificationcerts.paypal.com`` under a public CA). Only an account that lists the
test root in ``webhook_cert_roots`` trusts these certificates; the served chain is leaf + intermediate, as
PayPal's certificate URL serves it.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

SIGNING_CN = "messageverificationcerts.sandbox.paypal.com"


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Payhub PayPal Sandbox (test only)"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(subject: str, key: rsa.RSAPrivateKey, issuer: x509.Name, issuer_key: rsa.RSAPrivateKey, *,
                 ca: bool, days: int, not_before: datetime | None = None) -> x509.Certificate:
    start = not_before or datetime.now(UTC) - timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject)).issuer_name(issuer).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=not ca, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False),
            critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256())


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class SigningCert:
    """One webhook signing certificate: its id (the last segment of its URL), key and served chain."""

    cert_id: str
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    chain_pem: str  # leaf + intermediate, what the certificate URL serves

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


class TestCA:
    def __init__(self) -> None:
        self._root_key = _key()
        root_name = _name("Payhub Sandbox PayPal Test Root CA")
        self.root = _certificate("Payhub Sandbox PayPal Test Root CA", self._root_key, root_name, self._root_key,
                                 ca=True, days=3650)
        self._intermediate_key = _key()
        self.intermediate = _certificate("Payhub Sandbox PayPal Test Intermediate CA", self._intermediate_key,
                                         root_name, self._root_key, ca=True, days=1825)

    @property
    def root_pem(self) -> str:
        return pem(self.root)

    def issue_signing_cert(self, common_name: str = SIGNING_CN, *, days: int = 365,
                           not_before: datetime | None = None) -> SigningCert:
        key = _key()
        cert = _certificate(common_name, key, self.intermediate.subject, self._intermediate_key, ca=False, days=days,
                            not_before=not_before)
        cert_id = f"CERT-{uuid.uuid4().hex[:8]}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"
        return SigningCert(cert_id, key, cert, pem(cert) + pem(self.intermediate))


def impostor_key() -> rsa.RSAPrivateKey:
    """A key PayPal never certified, for forged webhooks."""
    return _key()
