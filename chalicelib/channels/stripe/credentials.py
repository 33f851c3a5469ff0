"""One Stripe account's identifiers and keys, read from a ``ChannelAccount`` in one place.

Settings (strings): ``merchant_id`` (the Stripe account id ``acct_...``), ``publishable_key`` (``pk_...``, public,
handed to Stripe.js), optional ``stripe_version`` (API version pinned on every request), ``livemode``
("true"/"false", defaults to what the secret key says) and ``files_base_url`` (where report files are
downloaded; ``https://files.stripe.com`` next to the real API, else the API base URL).
Secrets: ``secret_key`` (``sk_...`` or restricted ``rk_...``) and ``webhook_secrets``, a list of the
endpoint's signing secrets (``whsec_...``); during a rotation both the new and the old one are listed.
"""

from __future__ import annotations

from chalicelib.config.accounts import ChannelAccount
from chalicelib.config.secret import Secret
from chalicelib.domain.value_class import value_class

API_VERSION = "2024-06-20"
STRIPE_API_BASE = "https://api.stripe.com"
STRIPE_FILES_BASE = "https://files.stripe.com"
_KEY_PREFIXES = ("sk_test_", "sk_live_", "rk_test_", "rk_live_")


@value_class
class StripeCredentials:
    merchant_id: str
    api_base_url: str
    files_base_url: str
    publishable_key: str
    stripe_version: str
    livemode: bool
    secret_key: Secret
    webhook_secrets: tuple[Secret, ...]

    @classmethod
    def from_account(cls, account: ChannelAccount) -> StripeCredentials:
        settings = account.config.settings
        secret_key = account.secrets.get("secret_key")
        key_text = secret_key.reveal()
        if not key_text.startswith(_KEY_PREFIXES):
            raise ValueError(f"channel account {account.account_id}: secret_key must be an sk_ or rk_ key")
        key_livemode = "_live_" in key_text[:8]
        livemode_setting = settings.get("livemode")
        livemode = key_livemode if livemode_setting is None else livemode_setting.lower() == "true"
        if livemode != key_livemode:
            raise ValueError(f"channel account {account.account_id}: livemode does not match the secret key's mode")
        webhook_secrets = tuple(account.secrets.get_list("webhook_secrets"))
        if not all(s.reveal().startswith("whsec_") for s in webhook_secrets):
            raise ValueError(f"channel account {account.account_id}: webhook_secrets must be whsec_ secrets")
        merchant_id = account.setting("merchant_id")
        if not merchant_id.startswith("acct_"):
            raise ValueError(f"channel account {account.account_id}: merchant_id must be the acct_ id")
        api_base_url = account.config.api_base_url.rstrip("/")
        default_files = STRIPE_FILES_BASE if api_base_url == STRIPE_API_BASE else api_base_url
        return cls(
            merchant_id=merchant_id,
            api_base_url=api_base_url,
            files_base_url=(settings.get("files_base_url") or default_files).rstrip("/"),
            publishable_key=settings.get("publishable_key", ""),
            stripe_version=settings.get("stripe_version") or API_VERSION,
            livemode=livemode,
            secret_key=secret_key,
            webhook_secrets=webhook_secrets,
        )
