"""One link of a certificate chain: was ``child`` signed by ``issuer``'s key, with the hash ``child`` names?

``cryptography``'s ``Certificate.verify_directly_issued_by`` refuses SHA-1-signed certificates outright
("Unsupported signature algorithm"), and callers that turned that into "not issued by" refused genuine chains:
UnionPay's test and production root and middle certificates are SHA-1 signed (CFCA), and so are several CA
certificates payment channels still chain through. Here the issuer's public key checks the signature directly,
with the hash algorithm the certificate's own ``signatureAlgorithm`` names. Only RSA PKCS#1 v1.5 and ECDSA with
SHA-1 or the SHA-2 family are accepted; MD5, RSA-PSS and anything unknown are refused, never guessed.

Name chaining, CA flags, key usage and validity are the caller's: this module checks the signature alone.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import SignatureAlgorithmOID

_RSA_PKCS1 = frozenset({
    SignatureAlgorithmOID.RSA_WITH_SHA1, SignatureAlgorithmOID.RSA_WITH_SHA224, SignatureAlgorithmOID.RSA_WITH_SHA256,
    SignatureAlgorithmOID.RSA_WITH_SHA384, SignatureAlgorithmOID.RSA_WITH_SHA512,
})
_ECDSA = frozenset({
    SignatureAlgorithmOID.ECDSA_WITH_SHA1, SignatureAlgorithmOID.ECDSA_WITH_SHA224,
    SignatureAlgorithmOID.ECDSA_WITH_SHA256, SignatureAlgorithmOID.ECDSA_WITH_SHA384,
    SignatureAlgorithmOID.ECDSA_WITH_SHA512,
})
_HASHES = (hashes.SHA1, hashes.SHA224, hashes.SHA256, hashes.SHA384, hashes.SHA512)


def signed_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s public key verifies ``child``'s signature under the algorithm ``child`` names."""
    oid = child.signature_algorithm_oid
    try:
        digest = child.signature_hash_algorithm
        key = issuer.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return False
    if not isinstance(digest, _HASHES):
        return False
    try:
        if oid in _RSA_PKCS1 and isinstance(key, rsa.RSAPublicKey):
            key.verify(child.signature, child.tbs_certificate_bytes, padding.PKCS1v15(), digest)
            return True
        if oid in _ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(child.signature, child.tbs_certificate_bytes, ec.ECDSA(digest))
            return True
    except InvalidSignature:
        return False
    return False


def may_sign_certificates(cert: x509.Certificate) -> bool:
    """basicConstraints says CA, and keyUsage (when present) allows keyCertSign."""
    try:
        if not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return False
    except x509.ExtensionNotFound:
        return False
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return usage.key_cert_sign


def may_sign_data(cert: x509.Certificate) -> bool:
    """keyUsage (when present) allows digitalSignature or nonRepudiation: a key that signs messages."""
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return usage.digital_signature or usage.content_commitment
