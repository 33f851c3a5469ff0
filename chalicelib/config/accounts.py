"""Channel accounts: validated configuration documents plus their secrets.

The document (ids, enabled methods, priority, endpoints) lives in the config table; the key material lives
in Secrets Manager under ``payhub/<stage>/channels/<account_id>`` and is resolved into ``ChannelSecrets``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_core import SchemaValidator, ValidationError, to_json, to_jsonable_python

from chalicelib.config.secret import Secret
from chalicelib.domain.money import known_currencies


def _not_empty(values: tuple[str, ...]) -> tuple[str, ...]:
    if not values:
        raise ValueError("at least one is required")
    return values


def _after(function: Any, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function-after", "function": {"type": "no-info", "function": function}, "schema": schema}


def _field(schema: dict[str, Any], **default: Any) -> dict[str, Any]:
    return {"type": "model-field", "schema": {"type": "default", "schema": schema, **default} if default else schema}


_STRINGS = {"type": "tuple", "items_schema": [{"type": "str"}], "variadic_item_index": 0}
_TITLE = "ChannelAccountConfig"
# The core schema pydantic generates for this model as a BaseModel (Field patterns, defaults, the two validators),
# written out and run by pydantic-core directly: the same validation, coercions and errors, without the model
# machinery of pydantic (~45 ms of CPU to import and build), which the functions that only read accounts (the
# callbacks function, the channel workers) would otherwise load for this one class. tests/unit/config/
# test_accounts.py holds it to the BaseModel it replaces, field by field and error by error.
_VALIDATOR = SchemaValidator(
    {
        "type": "model-fields",
        "model_name": _TITLE,
        "fields": {
            "account_id": _field({"type": "str", "pattern": r"^[a-z0-9][a-z0-9_-]{1,62}$"}),
            "channel": _field({"type": "str", "pattern": r"^[a-z0-9_]+$"}),
            "enabled": _field({"type": "bool"}, default=True),
            "priority": _field({"type": "int"}, default=100),
            "methods": _field(_after(_not_empty, _STRINGS)),
            "currencies": _field(_after(known_currencies, _after(_not_empty, _STRINGS)), default=("CNY",)),
            "api_base_url": _field({"type": "str", "pattern": r"^https?://"}),
            "merchant_ids": _field(_STRINGS, default=()),
            "settings": _field({"type": "dict", "keys_schema": {"type": "str"}, "values_schema": {"type": "str"}},
                               default_factory=dict, default_factory_takes_data=False),
        },
    },
    {"title": _TITLE, "extra_fields_behavior": "forbid"},
)


class ChannelAccountConfig:
    """The non-secret part of a channel account, as stored in the config table. Frozen; the part of pydantic's
    model interface the hub uses (``model_validate``, ``model_validate_json``, ``model_dump``,
    ``model_dump_json``, ``model_copy``) behaves as it did when this was a ``BaseModel``."""

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

    def __init__(self, **data: Any) -> None:
        fields, _, _ = _VALIDATOR.validate_python(data)
        self.__dict__.update(fields)

    @classmethod
    def _of(cls, fields: dict[str, Any]) -> ChannelAccountConfig:
        config = cls.__new__(cls)
        config.__dict__.update(fields)
        return config

    @classmethod
    def model_validate(cls, obj: Any) -> ChannelAccountConfig:
        if isinstance(obj, cls):
            return obj
        fields, _, _ = _VALIDATOR.validate_python(obj)
        return cls._of(fields)

    @classmethod
    def model_validate_json(cls, data: str | bytes) -> ChannelAccountConfig:
        fields, _, _ = _VALIDATOR.validate_json(data)
        return cls._of(fields)

    def model_dump(self, *, mode: str = "python") -> dict[str, Any]:
        fields = dict(self.__dict__)
        return to_jsonable_python(fields) if mode == "json" else fields  # type: ignore[no-any-return]

    def model_dump_json(self) -> str:
        return to_json(self.__dict__).decode()

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> ChannelAccountConfig:
        """A shallow copy with ``update`` laid over it, unvalidated (as pydantic's ``model_copy``)."""
        return self._of({**self.__dict__, **(update or {})})

    def __setattr__(self, name: str, value: Any) -> None:
        raise ValidationError.from_exception_data(_TITLE, [{"type": "frozen_instance", "loc": (name,),
                                                             "input": value}])

    def __delattr__(self, name: str) -> None:
        raise ValidationError.from_exception_data(_TITLE, [{"type": "frozen_instance", "loc": (name,),
                                                             "input": None}])

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(tuple(self.__dict__.values()))  # unhashable while settings is a dict, as the frozen BaseModel

    def __repr__(self) -> str:
        return f"{_TITLE}({', '.join(f'{name}={value!r}' for name, value in self.__dict__.items())})"


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
