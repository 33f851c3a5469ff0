"""Platform certificates: what ``GET /v3/certificates`` hands a merchant so it can verify WeChat's RSA signatures.

WeChat issues each RSA platform key an X.509 certificate under its own CA ("Tenpay.com Root CA"); the
certificate's serial number, in upper-case hex, is what ``Wechatpay-Serial`` names in certificate mode. The list
answer carries each certificate encrypted with AEAD_AES_256_GCM under the merchant's APIv3 key, associated data
``certificate``, so only the merchant can read it, and the answer itself is signed like every other answer.

SM2 platform certificates (``algorithm_type=SM2``) are not modelled: ``cryptography`` cannot sign with SM2, and
an SM2 merchant of the sandbox verifies with the WeChat Pay public key (``public_key_id``) instead.
"""

from __future__ import annotations

import base64
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from chalicelib.crypto.aead import aes_gcm_encrypt

CERTIFICATE_AAD = "certificate"
_BEIJING = timezone(timedelta(hours=8))  # WeChat writes every time in Beijing time
VALID_FOR = timedelta(days=5 * 365)  # WeChat's platform certificates live five years
_NONCE_ALPHABET = string.ascii_letters + string.digits


def new_serial_hex() -> str:
    """A certificate serial as WeChat prints it: 40 upper-case hex digits. X.509 (RFC 5280) allows at most 20
    octets for a positive serial, so the top bit stays clear (cryptography enforces < 2**159)."""
    return f"{secrets.randbits(159) | 1:040X}"


class PlatformCA:
    """The sandbox's stand-in for WeChat's certificate authority: one key made at startup, never written out."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.name = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Tenpay.com CA Center"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA"),
        ])

    def issue(self, public_key: rsa.RSAPublicKey, serial_hex: str, mchid: str | None) -> x509.Certificate:
        now = datetime.now(UTC)
        subject = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "微信商户系统"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, mchid or "Tenpay.com"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com sign"),
        ])
        return (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(self.name).public_key(public_key)
            .serial_number(int(serial_hex, 16))
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=True,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(self._key, hashes.SHA256())
        )


@dataclass(frozen=True, slots=True)
class PlatformCertificate:
    serial_hex: str
    pem: str
    effective: datetime
    expires: datetime

    @classmethod
    def of(cls, certificate: x509.Certificate, serial_hex: str) -> PlatformCertificate:
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        return cls(serial_hex, pem, certificate.not_valid_before_utc, certificate.not_valid_after_utc)


def certificate_list(certificates: list[PlatformCertificate], apiv3_key: str) -> dict[str, object]:
    """The body of ``GET /v3/certificates``: each certificate sealed for the merchant, newest first."""
    data = []
    for cert in certificates:
        nonce = "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(12))
        sealed = aes_gcm_encrypt(apiv3_key.encode("ascii"), nonce.encode("ascii"), cert.pem.encode("ascii"),
                                 CERTIFICATE_AAD.encode("ascii"))
        data.append({
            "serial_no": cert.serial_hex,
            "effective_time": cert.effective.astimezone(_BEIJING).isoformat(timespec="seconds"),
            "expire_time": cert.expires.astimezone(_BEIJING).isoformat(timespec="seconds"),
            "encrypt_certificate": {"algorithm": "AEAD_AES_256_GCM", "nonce": nonce,
                                    "associated_data": CERTIFICATE_AAD,
                                    "ciphertext": base64.b64encode(sealed).decode("ascii")},
        })
    return {"data": data}
