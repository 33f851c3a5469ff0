"""Channel accounts: validated configuration documents plus their secrets.

The document (ids, enabled methods, priority, endpoints) lives in the config table; the key material lives
in Secrets Manager under ``payhub/<stage>/channels/<account_id>`` and is resolved into ``ChannelSecrets``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.config.secret import Secret
from chalicelib.validation.light import LightModel


class ChannelAccountConfig(LightModel):
    """The non-secret part of a channel account, as stored in the config table. Frozen. It runs the core schema
    generated from the pydantic model of ``account_model.py`` (the source of truth; chalicelib/validation/light.py):
    the functions that only read accounts load none of pydantic's model machinery."""

    _source = "chalicelib.config.account_model:ChannelAccountConfig"
    _schemas = "chalicelib.config.account_schema"
    _frozen = True

    account_id: str
    channel: str
    enabled: bool
    priority: int
    methods: tuple[str, ...]
    currencies: tuple[str, ...]
    api_base_url: str
    # The merchants this account takes payments for (their own channel merchant number); empty: any merchant.
    merchant_ids: tuple[str, ...]
    # Channel-specific identifiers (WeChat: mchid, appid, merchant_serial_no, sign_type, public_key_id, ...)
    settings: dict[str, str]


class ChannelSecrets:
    """Key material of one account. Values are ``Secret`` so they never reach a log by accident.

    Keys by convention (WeChat): ``merchant_private_key`` (PEM or SM2 hex), ``apiv3_key``,
    ``platform_keys`` (JSON object serial -> PEM / SM2 public hex; several during rotation).
    """

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = {k: v for k, v in values.items()}

    def get(self, name: str) -> Secret:
        value = self._values.get(name)
        if not isinstance(value, str):
            raise KeyError(f"channel secret {name!r} is not configured")
        return Secret(value)

    def get_map(self, name: str) -> dict[str, Secret]:
        value = self._values.get(name) or {}
        if not isinstance(value, dict):
            raise KeyError(f"channel secret {name!r} must be an object")
        return {k: Secret(v) for k, v in value.items()}

    def get_list(self, name: str) -> list[Secret]:
        """A list of secrets tried in turn (e.g. Stripe webhook secrets during a rotation: no key id on the wire)."""
        value = self._values.get(name) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise KeyError(f"channel secret {name!r} must be a list of strings")
        return [Secret(v) for v in value]

    def __repr__(self) -> str:
        return f"ChannelSecrets(keys={sorted(self._values)})"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("channel secrets cannot be pickled")


class ChannelAccount:
    """What adapters receive: the validated config and its secrets."""

    def __init__(self, config: ChannelAccountConfig, secrets: ChannelSecrets) -> None:
        self.config = config
        self.secrets = secrets

    @property
    def account_id(self) -> str:
        return self.config.account_id

    def setting(self, name: str) -> str:
        try:
            return self.config.settings[name]
        except KeyError as exc:
            raise KeyError(f"channel account {self.account_id} lacks setting {name!r}") from exc

    def __repr__(self) -> str:
        return f"ChannelAccount({self.config.channel}/{self.account_id})"
