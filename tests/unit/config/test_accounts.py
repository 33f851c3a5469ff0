"""ChannelAccountConfig: the non-secret half of a channel account, validated strictly."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets


def valid(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"account_id": "wx_main-1", "channel": "wechatpay", "methods": ["wechat.native"],
                           "api_base_url": "https://api.mch.weixin.qq.com",
                           "settings": {"mchid": "1900000001", "appid": "wx123"}}
    doc.update(overrides)
    return doc


def error_locs(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[Any, ...]]:
    return [tuple(err["loc"]) for err in exc.value.errors()]


def test_valid_document_with_defaults() -> None:
    config = ChannelAccountConfig.model_validate(valid())
    assert config.enabled is True and config.priority == 100 and config.currencies == ("CNY",)
    assert config.methods == ("wechat.native",)
    assert config.settings["mchid"] == "1900000001"


def test_config_is_frozen() -> None:
    config = ChannelAccountConfig.model_validate(valid())
    with pytest.raises(ValidationError):
        config.enabled = False  # type: ignore[misc]


@pytest.mark.parametrize(("field", "value"), [
    ("account_id", "A"), ("account_id", "x"), ("account_id", "Upper"), ("account_id", "-leading"),
    ("account_id", "has space"), ("account_id", "a" * 64), ("account_id", "abc\n"), ("account_id", "a/b"),
    ("channel", "WeChat"), ("channel", "we-chat"), ("channel", ""),
    ("methods", []), ("methods", None),
    ("api_base_url", "ftp://x"), ("api_base_url", "api.mch.weixin.qq.com"),
    ("settings", {"mchid": 1900000001}),
    ("priority", "high"),
])
def test_invalid_fields_named_in_error(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        ChannelAccountConfig.model_validate(valid(**{field: value}))
    assert all(loc[0] == field for loc in error_locs(exc)), error_locs(exc)


@pytest.mark.parametrize("missing", ["account_id", "channel", "methods", "api_base_url"])
def test_required_fields(missing: str) -> None:
    doc = valid()
    del doc[missing]
    with pytest.raises(ValidationError) as exc:
        ChannelAccountConfig.model_validate(doc)
    assert error_locs(exc) == [(missing,)]


def test_extra_field_forbidden_and_named() -> None:
    # A secret pasted into the config document by mistake must not be silently kept.
    with pytest.raises(ValidationError) as exc:
        ChannelAccountConfig.model_validate(valid(apiv3_key="oops"))
    assert error_locs(exc) == [("apiv3_key",)]


def test_account_id_boundaries() -> None:
    assert ChannelAccountConfig.model_validate(valid(account_id="ab")).account_id == "ab"
    assert ChannelAccountConfig.model_validate(valid(account_id="a" * 63)).account_id == "a" * 63


def test_channel_account_exposes_settings() -> None:
    account = ChannelAccount(ChannelAccountConfig.model_validate(valid()), ChannelSecrets({}))
    assert account.account_id == "wx_main-1"
    assert account.setting("mchid") == "1900000001"
    with pytest.raises(KeyError, match="lacks setting 'serial'"):
        account.setting("serial")
    assert repr(account) == "ChannelAccount(wechatpay/wx_main-1)"


# --- the same as the pydantic BaseModel it replaced -------------------------------------------------------------
# ChannelAccountConfig is a light class (chalicelib/validation/light.py) running the core schema generated from
# account_model.py, for the cold start of the functions that only read accounts. This is the BaseModel it was before
# either existed, written out here on its own, so every document is held to the very same validation and output.


def _as_base_model() -> type[Any]:
    from pydantic import BaseModel, ConfigDict, Field, field_validator

    from chalicelib.domain.money import SUPPORTED_CURRENCIES

    class ChannelAccountConfig(BaseModel):  # noqa: D101 - the model as it was
        model_config = ConfigDict(extra="forbid", frozen=True)

        account_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,62}$")
        channel: str = Field(pattern=r"^[a-z0-9_]+$")
        enabled: bool = True
        priority: int = 100
        methods: tuple[str, ...]
        currencies: tuple[str, ...] = ("CNY",)
        api_base_url: str = Field(pattern=r"^https?://")
        merchant_ids: tuple[str, ...] = ()
        settings: dict[str, str] = Field(default_factory=dict)

        @field_validator("methods", "currencies")
        @classmethod
        def _not_empty(cls, values: tuple[str, ...]) -> tuple[str, ...]:
            if not values:
                raise ValueError("at least one is required")
            return values

        @field_validator("currencies")
        @classmethod
        def _known_currencies(cls, currencies: tuple[str, ...]) -> tuple[str, ...]:
            unknown = sorted(set(currencies) - SUPPORTED_CURRENCIES)
            if unknown:
                raise ValueError(f"unsupported currencies {unknown}")
            return currencies

    return ChannelAccountConfig


DOCUMENTS = [
    valid(), valid(priority="7", enabled="yes", currencies=["CNY", "HKD"], merchant_ids=("m1", "m2")),
    valid(methods=["a", "b"], settings={}), valid(account_id="A", channel="", priority=1.5, apiv3_key="x"),
    valid(currencies=[]), valid(currencies=["XXX", "CNY"]), valid(methods=None, settings={"k": 1}),
    valid(enabled="maybe", merchant_ids="m1", api_base_url=None), {"account_id": 5}, [], "not a document", None,
]


@pytest.mark.parametrize("document", DOCUMENTS, ids=range(len(DOCUMENTS)))
def test_validates_as_the_base_model_did(document: Any) -> None:
    import json

    model = _as_base_model()

    def outcome(cls: Any, validate: str, raw: Any) -> Any:
        try:
            config = getattr(cls, validate)(raw)
        except ValidationError as exc:
            return exc.title, exc.errors(include_url=False, include_context=False), str(exc)
        return config.model_dump_json(), config.model_dump(mode="json"), config.model_dump(), repr(config)

    assert outcome(ChannelAccountConfig, "model_validate", document) == outcome(model, "model_validate", document)
    as_json = json.dumps(document)
    assert (outcome(ChannelAccountConfig, "model_validate_json", as_json)
            == outcome(model, "model_validate_json", as_json))


def test_keyword_construction_copy_and_frozen_as_the_base_model() -> None:
    model = _as_base_model()
    ours, theirs = ChannelAccountConfig(**valid()), model(**valid())
    assert ours.model_dump() == theirs.model_dump()
    assert ours == ChannelAccountConfig.model_validate_json(ours.model_dump_json()) and ours != theirs
    assert ChannelAccountConfig.model_validate(ours) is ours
    copied = ours.model_copy(update={"enabled": False})
    assert copied.enabled is False and ours.enabled is True and copied.settings == ours.settings
    for config in (ours, theirs):
        with pytest.raises(ValidationError) as exc:
            config.priority = 1
        assert exc.value.errors(include_url=False) == [
            {"type": "frozen_instance", "loc": ("priority",), "msg": "Instance is frozen", "input": 1}]
        with pytest.raises(TypeError):
            hash(config)  # settings is a dict
    with pytest.raises(ValidationError) as exc:
        ChannelAccountConfig(**valid(priority="high"))
    assert error_locs(exc) == [("priority",)]
