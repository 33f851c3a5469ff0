"""One PayPal account's identifiers and key material, read from a ``ChannelAccount`` in one place.

Settings (strings): ``merchant_id`` (the payee's PayPal merchant id, cross-checked on every webhook),
``webhook_id`` (the id PayPal gave the webhook registered for this app), ``webhook_verification``
(``certificate`` | ``api``), optional ``webhook_tolerance_s`` (transmission-time window, default 300) and
``brand_name`` (shown on the approval page).
Secrets: ``client_id``, ``client_secret`` (OAuth2 client credentials), ``webhook_cert_roots`` (name -> PEM of a
root CA the signing certificate must chain to), optional ``webhook_certs`` (certificate URL -> PEM chain:
certificates pinned by URL, used instead of fetching them) and optional ``webhook_cert_intermediates`` (name ->
PEM of an intermediate CA that may complete a chain the URL serves without it; never a trust anchor).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import field

from chalicelib.config.accounts import ChannelAccount
from chalicelib.config.secret import Secret
from chalicelib.domain.value_class import value_class

VERIFICATION_MODES = frozenset({"certificate", "api"})
DEFAULT_TOLERANCE_S = 300


@value_class
class PayPalCredentials:
    account_id: str
    api_base_url: str
    merchant_id: str
    webhook_id: str
    webhook_verification: str
    webhook_tolerance_s: int
    client_id: Secret
    client_secret: Secret
    cert_roots: Mapping[str, Secret]
    pinned_certs: Mapping[str, Secret]
    brand_name: str | None = None
    cert_intermediates: Mapping[str, Secret] = field(default_factory=dict)

    @classmethod
    def from_account(cls, account: ChannelAccount) -> PayPalCredentials:
        settings = account.config.settings
        mode = settings.get("webhook_verification", "certificate")
        if mode not in VERIFICATION_MODES:
            raise ValueError(f"channel account {account.account_id}: webhook_verification must be certificate or api")
        tolerance = settings.get("webhook_tolerance_s", str(DEFAULT_TOLERANCE_S))
        if not tolerance.isdigit() or not 30 <= int(tolerance) <= 3600:
            raise ValueError(f"channel account {account.account_id}: webhook_tolerance_s must be 30..3600")
        return cls(
            account_id=account.account_id,
            api_base_url=account.config.api_base_url.rstrip("/"),
            merchant_id=account.setting("merchant_id"),
            webhook_id=account.setting("webhook_id"),
            webhook_verification=mode,
            webhook_tolerance_s=int(tolerance),
            client_id=account.secrets.get("client_id"),
            client_secret=account.secrets.get("client_secret"),
            cert_roots=account.secrets.get_map("webhook_cert_roots"),
            pinned_certs=account.secrets.get_map("webhook_certs"),
            brand_name=settings.get("brand_name") or None,
            cert_intermediates=account.secrets.get_map("webhook_cert_intermediates"),
        )

    def token_cache_key(self) -> str:
        """Identifies the OAuth client without holding the secret: a rotated secret gets a fresh token."""
        material = f"{self.api_base_url}\n{self.client_id.reveal()}\n{self.client_secret.reveal()}".encode()
        return hashlib.sha256(material).hexdigest()
