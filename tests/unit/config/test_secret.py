"""Secrets cannot reach a log, a response or a pickle by accident."""

from __future__ import annotations

import copy
import io
import json
import logging
import pickle

import pytest

from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets
from chalicelib.config.secret import Secret
from chalicelib.observability import JsonFormatter

VALUE = "s3cr3t-apiv3-key-0123456789abcdef"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEv-very-secret\n-----END PRIVATE KEY-----"


def renderings(obj: object) -> list[str]:
    return [repr(obj), str(obj), f"{obj}", f"{obj!r}", "%s" % (obj,), "{}".format(obj),  # noqa: UP031, UP032 - the old ways too
            json.dumps({"x": obj}, default=str), json.dumps([obj], default=repr)]


def logged(obj: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.secret")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("value %s %r", obj, obj, extra={"secret_field": obj, "nested": {"k": obj}})
        try:
            raise RuntimeError(obj)
        except RuntimeError:
            logger.exception("failed with %s", obj)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return stream.getvalue()


def test_secret_reveals_only_on_request() -> None:
    secret = Secret(VALUE)
    assert secret.reveal() == VALUE
    for text in renderings(secret):
        assert VALUE not in text and "*" in text
    assert VALUE not in logged(secret)


def test_secret_not_in_containers_or_exceptions() -> None:
    secret = Secret(VALUE)
    for holder in ([secret], {"k": secret}, (secret,), {"outer": [secret]}):
        assert VALUE not in repr(holder) and VALUE not in str(holder)
    assert VALUE not in str(ValueError(secret)) and VALUE not in repr(KeyError(secret))


def test_secret_has_no_dict_to_dump() -> None:
    with pytest.raises(TypeError):
        vars(Secret(VALUE))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_secret_pickling_refused(protocol: int) -> None:
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(Secret(VALUE), protocol=protocol)
    with pytest.raises(TypeError):
        pickle.dumps({"nested": [Secret(VALUE)]}, protocol=protocol)


def test_secret_copy_refused_too() -> None:
    with pytest.raises(TypeError):
        copy.deepcopy(Secret(VALUE))


def test_secret_equality_and_hash_by_value() -> None:
    assert Secret(VALUE) == Secret(VALUE)
    assert Secret(VALUE) != Secret("other")
    assert Secret(VALUE) != VALUE  # never equal to the bare string
    assert len({Secret(VALUE), Secret(VALUE)}) == 1


def make_secrets() -> ChannelSecrets:
    return ChannelSecrets({"apiv3_key": VALUE, "merchant_private_key": PEM,
                           "platform_keys": {"SERIAL1": PEM + "-platform"}})


def test_channel_secrets_never_show_values() -> None:
    secrets = make_secrets()
    for text in renderings(secrets) + [logged(secrets)]:
        assert VALUE not in text and "very-secret" not in text
    assert "apiv3_key" in repr(secrets)  # the key names are fine and useful


def test_channel_secrets_hand_out_secrets() -> None:
    secrets = make_secrets()
    assert secrets.get("apiv3_key") == Secret(VALUE)
    assert secrets.get("apiv3_key").reveal() == VALUE
    keys = secrets.get_map("platform_keys")
    assert list(keys) == ["SERIAL1"] and keys["SERIAL1"].reveal() == PEM + "-platform"
    for text in renderings(keys) + [logged(keys)]:
        assert "very-secret" not in text


def test_channel_secrets_missing_or_wrong_type() -> None:
    secrets = ChannelSecrets({"apiv3_key": 123, "platform_keys": "not-a-map"})
    with pytest.raises(KeyError):
        secrets.get("apiv3_key")
    with pytest.raises(KeyError):
        secrets.get("absent")
    with pytest.raises(KeyError):
        secrets.get_map("platform_keys")
    assert ChannelSecrets({}).get_map("platform_keys") == {}


def test_channel_secrets_copy_the_source_mapping() -> None:
    source = {"apiv3_key": VALUE}
    secrets = ChannelSecrets(source)
    source["apiv3_key"] = "changed"
    assert secrets.get("apiv3_key").reveal() == VALUE


def test_channel_account_repr_shows_no_secret() -> None:
    config = ChannelAccountConfig(account_id="wx_main", channel="wechatpay", methods=("wechat.native",),
                                  api_base_url="https://api.mch.weixin.qq.com")
    account = ChannelAccount(config, make_secrets())
    for text in renderings(account) + [logged(account)]:
        assert VALUE not in text and "very-secret" not in text


def test_channel_secrets_pickling_refused() -> None:
    with pytest.raises(TypeError):
        blob = pickle.dumps(make_secrets())
        assert VALUE.encode() not in blob
