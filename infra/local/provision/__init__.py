"""Local channel accounts: for each channel, its sandbox and how to provision an account against it.

A provisioner generates fresh keys, registers the public halves at the sandbox (as a merchant would in the
channel's console), and stores the account config and secrets through ``config_repo`` exactly as
``payhub channel put`` would. The sandbox never imports hub code, and the hub never imports the sandbox:
this package is the only place that knows both.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.config.accounts import ChannelAccountConfig


@dataclass(frozen=True)
class LocalChannel:
    channel: str
    sandbox: str  # "module:Class"; the class takes keyword options, has start(host, port) -> url and stop()
    provisioner: str  # "module:function"; (sandbox_url, *, account_id, priority, **options) -> ChannelAccountConfig
    default_account: str
    port: int  # fixed port for `make run`

    def new_sandbox(self, **options: Any) -> Any:
        module, cls = self.sandbox.split(":")
        return getattr(importlib.import_module(module), cls)(**options)

    def provision(self, sandbox_url: str, **options: Any) -> ChannelAccountConfig:
        module, func = self.provisioner.split(":")
        provision: Callable[..., ChannelAccountConfig] = getattr(importlib.import_module(module), func)
        options.setdefault("account_id", self.default_account)
        return provision(sandbox_url, **options)


LOCAL_CHANNELS: dict[str, LocalChannel] = {
    "wechatpay": LocalChannel("wechatpay", "sandbox.wechatpay.server:WeChatPaySandbox",
                              "infra.local.provision.wechatpay:provision", "wechat-demo", 8101),
    "alipay": LocalChannel("alipay", "sandbox.alipay.server:AlipaySandbox",
                           "infra.local.provision.alipay:provision", "alipay-demo", 8102),
    "unionpay": LocalChannel("unionpay", "sandbox.unionpay.server:UnionPaySandbox",
                             "infra.local.provision.unionpay:provision", "unionpay-demo", 8103),
    "ecny": LocalChannel("ecny", "sandbox.ecny.server:ECNYSandbox",
                         "infra.local.provision.ecny:provision", "ecny-demo", 8104),
    "stripe": LocalChannel("stripe", "sandbox.stripe.server:StripeSandbox",
                           "infra.local.provision.stripe:provision", "stripe-demo", 8105),
    "paypal": LocalChannel("paypal", "sandbox.paypal.server:PayPalSandbox",
                           "infra.local.provision.paypal:provision", "paypal-demo", 8106),
}
