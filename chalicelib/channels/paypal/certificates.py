"""PayPal's webhook signing certificates: where they may come from, and when one is trusted.

A certificate is looked up by its ``PAYPAL-CERT-URL``. Pinned certificates (the account's ``webhook_certs``
secret, URL -> PEM chain) are used as they are, with no network; any other URL is fetched only if it is HTTPS on
a PayPal host (``paypal.com`` or ``*.paypal.com``, default port, no user info), checked BEFORE any request, so a
forged header can neither make the hub call an arbitrary address nor substitute its own certificate. Either way
the chain must lead to one of the account's configured roots (``webhook_cert_roots``), every certificate in it
must be valid at the time the webhook was received, and the leaf's CN must end in ``.paypal.com``.

The URL has served the signing certificate alone. The path is then completed from intermediates the hub knows
(``intermediates.KNOWN_INTERMEDIATES``, the DigiCert CA PayPal's own SDKs ship) and any the account configures
(``webhook_cert_intermediates``): only as candidates, each link verified by signature (with the hash the
certificate names) and CA flag, so the root pinning is untouched. No certificate is fetched from anywhere but
the PayPal host the header names.
Fetched chains are cached by URL for the life of the process (bounded); validation results are cached by the
exact chain and roots, and the validity window is checked on every use.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
from cryptography.x509.oid import NameOID

from chalicelib.channels.base import HttpRequest, Transport
from chalicelib.channels.paypal.intermediates import KNOWN_INTERMEDIATES
from chalicelib.config.secret import Secret
from chalicelib.crypto.x509_links import may_sign_certificates, signed_by
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.value_class import value_class

PAYPAL_DOMAIN = "paypal.com"
MAX_CHAIN = 5
FETCH_TIMEOUT_S = 5.0
MAX_CERT_BYTES = 64 * 1024
_FETCHED_MAX = 64


class CertificateRejected(Exception):
    """A certificate URL or chain failed a check; the message is a short reason, never key material."""


def check_cert_url(url: str) -> None:
    """Raise ``CertificateRejected`` unless ``url`` is https on paypal.com or a subdomain, default port, no user info."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CertificateRejected("certificate URL is malformed") from exc
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme != "https":
        raise CertificateRejected("certificate URL is not https")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise CertificateRejected("certificate URL carries user info")
    if port not in (None, 443):
        raise CertificateRejected("certificate URL uses a non-default port")
    if host != PAYPAL_DOMAIN and not host.endswith("." + PAYPAL_DOMAIN):
        raise CertificateRejected("certificate URL is not on a PayPal host")


@value_class
class TrustedKey:
    """A validated chain's leaf key and the window in which every certificate of the chain is valid."""

    public_key: rsa_keys.RSAPublicKey
    not_before: datetime
    not_after: datetime
    subject_cn: str

    def check_time(self, at: datetime) -> None:
        moment = at if at.tzinfo else at.replace(tzinfo=UTC)
        if not self.not_before <= moment <= self.not_after:
            raise CertificateRejected("signing certificate chain is not valid at this time")


def _load_pem_chain(pem: str) -> list[x509.Certificate]:
    try:
        chain = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise CertificateRejected("certificate is not PEM") from exc
    if not chain or len(chain) > MAX_CHAIN:
        raise CertificateRejected("certificate chain is empty or too long")
    return chain


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else ""
    return value if isinstance(value, str) else value.decode(errors="replace")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Signature only (with the hash ``cert`` names: ``verify_directly_issued_by`` refuses SHA-1 outright)."""
    return signed_by(cert, issuer)


@lru_cache(maxsize=128)
def validate_chain(chain_pem: str, roots_pem: tuple[str, ...], extra_intermediates_pem: tuple[str, ...] = ()
                   ) -> TrustedKey:
    """Build leaf -> intermediates -> configured root; signatures, CA flags and the leaf's CN are checked here,
    the validity window (which depends on the time) by ``TrustedKey.check_time``. Intermediates come from the
    served chain first, then from ``extra_intermediates_pem`` (the known and configured ones)."""
    chain = _load_pem_chain(chain_pem)
    roots = [cert for pem in roots_pem for cert in _load_pem_chain(pem)]
    candidates = chain[1:] + [cert for pem in extra_intermediates_pem for cert in _load_pem_chain(pem)]
    if not roots:
        raise CertificateRejected("no webhook_cert_roots configured")
    leaf = chain[0]
    cn = _common_name(leaf).lower()
    if not cn.endswith("." + PAYPAL_DOMAIN):
        raise CertificateRejected("signing certificate CN does not end in .paypal.com")
    public_key = leaf.public_key()
    if not isinstance(public_key, rsa_keys.RSAPublicKey):
        raise CertificateRejected("signing certificate key is not RSA")
    root_prints = {root.fingerprint(hashes.SHA256()) for root in roots}
    path = [leaf]
    current = leaf
    while True:
        if current.fingerprint(hashes.SHA256()) in root_prints:
            break  # the chain itself ends in a configured root
        anchor = next((root for root in roots if root.subject == current.issuer and _issued_by(current, root)), None)
        if anchor is not None:
            path.append(anchor)
            break
        named = [c for c in candidates if c.subject == current.issuer and c not in path]
        if not named or len(path) >= MAX_CHAIN:
            raise CertificateRejected("signing certificate does not chain to a configured root")
        # Several candidates may carry the issuer's name (a served copy and a known one, or a re-keyed CA):
        # the one whose key verifies the signature is the issuer.
        parent = next((c for c in named if may_sign_certificates(c) and _issued_by(current, c)), None)
        if parent is None:
            raise CertificateRejected("signing certificate chain has a bad link")
        path.append(parent)
        current = parent
    return TrustedKey(
        public_key=public_key,
        not_before=max(cert.not_valid_before_utc for cert in path),
        not_after=min(cert.not_valid_after_utc for cert in path),
        subject_cn=cn,
    )


class CertificateStore:
    """Finds the certificate chain for a ``PAYPAL-CERT-URL``: pinned first, else a checked, cached fetch."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._fetched: dict[str, str] = {}
        self._lock = threading.Lock()

    def trusted_key(self, url: str, pinned: Mapping[str, Secret], roots: Mapping[str, Secret],
                    at: datetime, intermediates: Mapping[str, Secret] | None = None) -> TrustedKey:
        chain_pem = pinned[url].reveal() if url in pinned else self._fetch(url)
        extra = KNOWN_INTERMEDIATES + _roots_tuple(intermediates or {})
        key = validate_chain(chain_pem, _roots_tuple(roots), extra)
        key.check_time(at)
        return key

    def _fetch(self, url: str) -> str:
        check_cert_url(url)  # before any request: the URL came from an unauthenticated header
        with self._lock:
            cached = self._fetched.get(url)
        if cached is not None:
            return cached
        try:
            response = self._transport.send(HttpRequest("GET", url, {"Accept": "application/x-pem-file"}),
                                            timeout_s=FETCH_TIMEOUT_S)
        except ChannelError as exc:
            raise CertificateRejected("signing certificate could not be fetched") from exc
        if response.status != 200 or len(response.body) > MAX_CERT_BYTES:
            raise CertificateRejected(f"signing certificate fetch answered {response.status}")
        try:
            pem = response.body.decode("ascii")
        except UnicodeDecodeError as exc:
            raise CertificateRejected("signing certificate is not PEM") from exc
        _load_pem_chain(pem)  # only well-formed certificates are worth caching
        with self._lock:
            if len(self._fetched) >= _FETCHED_MAX:
                self._fetched.clear()
            self._fetched[url] = pem
        return pem

    def cached_urls(self) -> Sequence[str]:
        with self._lock:
            return sorted(self._fetched)


def _roots_tuple(certs: Mapping[str, Secret]) -> tuple[str, ...]:
    """PEMs in a stable order (by name), so the same configuration makes the same ``validate_chain`` cache key."""
    return tuple(certs[name].reveal() for name in sorted(certs))
