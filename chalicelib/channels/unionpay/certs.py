"""Trusting UnionPay's signing certificate, as carried in ``signPubKeyCert`` (docs/channels/unionpay.md#verification-rules).

A certificate is trusted when it was issued by one of the configured *middle* certificates, which was
issued by one of the configured *root* certificates; every certificate in that chain is inside its validity
period; and the subject CN, split on ``@``, has ``中国银联股份有限公司`` as its third element (the test
environment's ``00040000:SIGN`` only when the account says ``environment=test``).

"Issued by" means: the child's issuer name is the issuer's subject, the issuer is a CA (basicConstraints, and
keyCertSign when it carries keyUsage), and the issuer's key verifies the child's signature with the hash the
child's ``signatureAlgorithm`` names. UnionPay's (CFCA's) test and production root and middle certificates are
SHA-1 signed, so SHA-1 is accepted on these links; ``cryptography``'s ``verify_directly_issued_by`` refuses it
and must not be used here (it turned every genuine UnionPay message into "not issued by"). The signing
certificate's keyUsage, when present, must allow signing.

The expensive part (parsing and the two issuer signatures) is cached per (certificate, trust anchors, CN
policy); the validity window is kept with the cached result and checked against the clock on every use,
so a cached certificate still stops verifying the moment it expires. The cache key includes the anchors,
so removing a middle certificate from the account stops the certificates it issued at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
from cryptography.x509.oid import NameOID

from chalicelib.crypto.x509_links import may_sign_certificates, may_sign_data, signed_by
from chalicelib.domain.value_class import value_class

UNIONPAY_CN_NAME = "中国银联股份有限公司"
TEST_CN_NAME = "00040000:SIGN"


class CertificateRejected(Exception):
    """The certificate is not UnionPay's, or not now; the message is a short reason."""


@value_class
class TrustedCert:
    public_key: rsa_keys.RSAPublicKey
    not_before: datetime
    not_after: datetime  # the earliest expiry along the chain
    serial: int


def _load(pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise CertificateRejected("not a PEM certificate") from exc


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    return child.issuer == issuer.subject and may_sign_certificates(issuer) and signed_by(child, issuer)


def cn_is_unionpay(cert: x509.Certificate, *, allow_test: bool) -> bool:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        return False
    value = names[0].value
    parts = (value if isinstance(value, str) else value.decode("utf-8", "replace")).split("@")
    if len(parts) < 3:
        return False
    return parts[2] == UNIONPAY_CN_NAME or (allow_test and parts[2] == TEST_CN_NAME)


@lru_cache(maxsize=64)
def _chain(leaf_pem: str, middles: tuple[str, ...], roots: tuple[str, ...], allow_test: bool) -> TrustedCert:
    leaf = _load(leaf_pem)
    if not cn_is_unionpay(leaf, allow_test=allow_test):
        raise CertificateRejected("certificate CN is not UnionPay's signing name")
    public_key = leaf.public_key()
    if not isinstance(public_key, rsa_keys.RSAPublicKey):
        raise CertificateRejected("certificate key is not RSA")
    if not may_sign_data(leaf):
        raise CertificateRejected("certificate key usage does not allow signing")
    root_certs = [_load(pem) for pem in roots]
    for middle in (_load(pem) for pem in middles):
        if not _issued_by(leaf, middle):
            continue
        for root in root_certs:
            if _issued_by(middle, root):
                chain = (leaf, middle, root)
                return TrustedCert(
                    public_key=public_key,
                    not_before=max(cert.not_valid_before_utc for cert in chain),
                    not_after=min(cert.not_valid_after_utc for cert in chain),
                    serial=leaf.serial_number,
                )
    raise CertificateRejected("certificate does not chain to the configured middle and root certificates")


def trusted_signing_key(leaf_pem: str, middles: tuple[str, ...], roots: tuple[str, ...], *, allow_test: bool,
                        now: datetime) -> rsa_keys.RSAPublicKey:
    """The certificate's public key if it is UnionPay's and valid at ``now``; else ``CertificateRejected``."""
    if not middles or not roots:
        raise CertificateRejected("the account has no middle/root certificates configured")
    trusted = _chain(leaf_pem, middles, roots, allow_test)
    moment = now if now.tzinfo else now.replace(tzinfo=UTC)
    if not trusted.not_before <= moment <= trusted.not_after:
        raise CertificateRejected("certificate chain is outside its validity period")
    return trusted.public_key


def serial_decimal(pem: str) -> str:
    """A certificate serial as ACP writes ``certId`` / ``encryptCertId``: decimal."""
    return str(_load(pem).serial_number)
