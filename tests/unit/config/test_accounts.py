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
