"""Channel and merchant secrets are encrypted under the stage's own KMS key (the one every role may decrypt
with), not under the AWS-managed ``aws/secretsmanager`` key the docs never promised."""

from __future__ import annotations

import json

from chalicelib.config.settings import settings
from chalicelib.storage.aws import client
from payhub_cli.main import main as payhub


def _stage_key_arn() -> str:
    return str(client("kms").describe_key(KeyId=settings().names.kms_alias)["KeyMetadata"]["Arn"])


def _secret_key_arn(name: str) -> str:
    key_id = client("secretsmanager").describe_secret(SecretId=name)["KmsKeyId"]
    return str(client("kms").describe_key(KeyId=key_id)["KeyMetadata"]["Arn"])


def test_a_channel_account_put_by_the_cli_keeps_its_secrets_under_the_stage_key(stack, capsys, tmp_path):
    document = {"account": {"account_id": "wechat-keyed", "channel": "wechatpay", "enabled": False,
                            "methods": ["wechat.native"], "api_base_url": stack.sandbox_url,
                            "settings": {"mchid": "1900000998", "appid": "wx0000000000000002",
                                         "merchant_serial_no": "ABD"}},
                "secrets": {"apiv3_key": "k" * 32, "merchant_private_key": "placeholder", "platform_keys": {}}}
    path = tmp_path / "account.json"
    path.write_text(json.dumps(document))
    assert payhub(["channel", "put", str(path)]) == 0
    capsys.readouterr()
    assert _secret_key_arn(settings().names.channel_secret("wechat-keyed")) == _stage_key_arn()


def test_a_merchant_webhook_secret_is_under_the_stage_key(stack, merchant):
    assert _secret_key_arn(settings().names.merchant_webhook_secret(merchant.merchant_id)) == _stage_key_arn()
