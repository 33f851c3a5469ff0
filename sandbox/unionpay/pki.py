"""The sandbox's UnionPay key material: a root -> middle -> signing certificate hierarchy, an encryption
certificate, and the merchant certificates it issues. Made at startup with ``cryptography``; never written out.

The signing certificate's subject CN follows UnionPay's pattern, ``<code>@<id>@中国银联股份有限公司@<n>``
(third ``@`` element is what merchants check). ``test_cn=True`` uses the test environment's ``00040000:SIGN``.
Signatures are ACP 5.1.0 ``signMethod=01``: RSA-SHA256 over the lower-case SHA-256 hex of the sorted
``k=v&`` string of every field but ``signature`` (the sandbox's own code, independent of the hub's).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

UNIONPAY_NAME = "中国银联股份有限公司"
TEST_NAME = "00040000:SIGN"
KEY_BITS = 2048


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def to_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


@dataclass
class KeyPair:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def pem(self) -> str:
        return to_pem(self.cert)

    @property
    def serial(self) -> str:
        return str(self.cert.serial_number)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "China UnionPay (sandbox)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def issue(common_name: str, public_key: rsa.RSAPublicKey, issuer: KeyPair | None, signer_key: rsa.RSAPrivateKey, *,
          ca: bool, days: int = 3650) -> x509.Certificate:
    now = datetime.now(UTC)
    subject = _name(common_name)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if issuer and ca else None), critical=True)
        .sign(signer_key, hashes.SHA256())
    )


def new_ca(label: str) -> tuple[KeyPair, KeyPair]:
    root_key, middle_key = new_key(), new_key()
    root = KeyPair(issue(f"CFCA ACP TEST ROOT {label}", root_key.public_key(), None, root_key, ca=True), root_key)
    middle = KeyPair(issue(f"CFCA ACP TEST OCA {label}", middle_key.public_key(), root, root_key, ca=True), middle_key)
    return root, middle


def leaf(middle: KeyPair, common_name: str) -> KeyPair:
    key = new_key()
    return KeyPair(issue(common_name, key.public_key(), middle, middle.key, ca=False, days=730), key)


def unionpay_cn(number: int, *, test_cn: bool) -> str:
    return f"041@Z12400000000000000@{TEST_NAME if test_cn else UNIONPAY_NAME}@{number:08d}"


# -- the ACP signature ---------------------------------------------------------------------------------------


def digest_hex(fields: Mapping[str, str]) -> bytes:
    text = "&".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "signature")
    return hashlib.sha256(text.encode("utf-8")).hexdigest().encode("ascii")


def sign(fields: Mapping[str, str], signer: KeyPair, *, key: rsa.RSAPrivateKey | None = None) -> dict[str, str]:
    """Add ``signPubKeyCert`` and ``signature`` (``key`` lets a forgery sign under the real certificate)."""
    out = dict(fields)
    out["signPubKeyCert"] = signer.pem
    out.pop("signature", None)
    signature = (key or signer.key).sign(digest_hex(out), padding.PKCS1v15(), hashes.SHA256())
    out["signature"] = base64.b64encode(signature).decode("ascii")
    return out


def verify(fields: Mapping[str, str], public_key: rsa.RSAPublicKey) -> bool:
    try:
        signature = base64.b64decode(fields.get("signature", ""), validate=True)
        public_key.verify(signature, digest_hex(fields), padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


@dataclass
class UnionPayKeys:
    """Everything UnionPay signs and decrypts with; ``rotate_signer`` models a certificate renewal."""

    test_cn: bool = False
    root: KeyPair = field(init=False)
    middle: KeyPair = field(init=False)
    signer: KeyPair = field(init=False)
    encrypter: KeyPair = field(init=False)
    retired: list[KeyPair] = field(default_factory=list)  # earlier signers (and their chains), newest last
    retired_chains: list[tuple[KeyPair, KeyPair]] = field(default_factory=list)
    _serial: int = 1

    def __post_init__(self) -> None:
        self.root, self.middle = new_ca("A")
        self.signer = leaf(self.middle, unionpay_cn(self._next(), test_cn=self.test_cn))
        self.encrypter = leaf(self.middle, unionpay_cn(self._next(), test_cn=self.test_cn))

    def _next(self) -> int:
        self._serial += 1
        return self._serial

    def rotate_signer(self, *, new_chain: bool) -> None:
        self.retired.append(self.signer)
        if new_chain:
            self.retired_chains.append((self.root, self.middle))
            self.root, self.middle = new_ca(chr(ord("A") + len(self.retired_chains)))
        self.signer = leaf(self.middle, unionpay_cn(self._next(), test_cn=self.test_cn))

    def issue_merchant_cert(self, merchant_id: str, public_key: rsa.RSAPublicKey) -> x509.Certificate:
        # The merchant's certificate comes from the same middle CA; its CN names the merchant, never UnionPay.
        return issue(f"041@Z{merchant_id}@{merchant_id}@00000001", public_key, self.middle, self.middle.key, ca=False)

    def decrypt(self, ciphertext_b64: str) -> str:
        ciphertext = base64.b64decode(ciphertext_b64, validate=True)
        return self.encrypter.key.decrypt(ciphertext, padding.PKCS1v15()).decode("utf-8")

    def chain_json(self) -> dict[str, str]:
        return {"root_cert": self.root.pem, "root_serial": self.root.serial, "middle_cert": self.middle.pem,
                "middle_serial": self.middle.serial, "sign_cert": self.signer.pem, "sign_cert_id": self.signer.serial,
                "encrypt_cert": self.encrypter.pem, "encrypt_cert_id": self.encrypter.serial}


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """A merchant's RSA public key from a PEM public key or certificate."""
    data = text.encode("ascii")
    key = x509.load_pem_x509_certificate(data).public_key() if b"CERTIFICATE" in data else \
        serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key
