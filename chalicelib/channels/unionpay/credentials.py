"""One UnionPay account's identifiers and key material, read from a ``ChannelAccount`` in one place.

Settings (strings): ``merchant_id`` (merId), ``cert_id`` (the merchant signing certificate's serial in
decimal), ``environment`` (``production`` | ``test``), optional ``file_download_url`` (the file host; default
``<api_base_url>/``, production ``https://filedownload.95516.com/``).
Secrets: ``merchant_private_key`` (PEM), ``encrypt_cert`` (UnionPay's encryption certificate, PEM),
``middle_certs`` and ``root_certs`` (objects id -> PEM; several of each during a renewal).
"""

from __future__ import annotations

from chalicelib.channels.unionpay.certs import serial_decimal
from chalicelib.config.accounts import ChannelAccount
from chalicelib.config.secret import Secret
from chalicelib.domain.value_class import value_class

ENVIRONMENTS = frozenset({"production", "test"})


@value_class
class UnionPayCredentials:
    merchant_id: str
    cert_id: str
    environment: str
    api_base_url: str
    file_download_url: str
    merchant_private_key: Secret
    encrypt_cert_pem: str
    middle_certs: tuple[str, ...]
    root_certs: tuple[str, ...]

    @property
    def allow_test_cn(self) -> bool:
        return self.environment == "test"

    @property
    def encrypt_cert_id(self) -> str:
        return serial_decimal(self.encrypt_cert_pem)

    @classmethod
    def from_account(cls, account: ChannelAccount) -> UnionPayCredentials:
        settings = account.config.settings
        environment = settings.get("environment", "production")
        if environment not in ENVIRONMENTS:
            raise ValueError(f"channel account {account.account_id}: environment must be production or test")
        cert_id = account.setting("cert_id")
        if not cert_id.isdigit():
            raise ValueError(f"channel account {account.account_id}: cert_id is the certificate serial in decimal")
        api_base_url = account.config.api_base_url.rstrip("/")
        # Sorted so the same anchors always make the same cache key in certs._chain.
        middles = tuple(sorted(key.reveal() for key in account.secrets.get_map("middle_certs").values()))
        roots = tuple(sorted(key.reveal() for key in account.secrets.get_map("root_certs").values()))
        return cls(
            merchant_id=account.setting("merchant_id"),
            cert_id=cert_id,
            environment=environment,
            api_base_url=api_base_url,
            file_download_url=settings.get("file_download_url") or f"{api_base_url}/",
            merchant_private_key=account.secrets.get("merchant_private_key"),
            encrypt_cert_pem=account.secrets.get("encrypt_cert").reveal(),
            middle_certs=middles,
            root_certs=roots,
        )
