"""Every channel the hub speaks: one entry per adapter module, and which method belongs to which channel.

Adding a channel is one module under chalicelib/channels/, one line here, its sandbox and its tests.
Adapters are imported lazily so a function only pays the import cost of the channels it touches.
"""

from __future__ import annotations

import importlib
from functools import cache

from chalicelib.channels.base import ChannelAdapter
from chalicelib.domain.errors import InvalidRequest

# channel -> (module, class)
ADAPTERS: dict[str, tuple[str, str]] = {
    "wechatpay": ("chalicelib.channels.wechatpay", "WeChatPayAdapter"),
    "alipay": ("chalicelib.channels.alipay", "AlipayAdapter"),
    "unionpay": ("chalicelib.channels.unionpay", "UnionPayAdapter"),
    "ecny": ("chalicelib.channels.ecny", "ECNYAdapter"),
    "stripe": ("chalicelib.channels.stripe", "StripeAdapter"),
    "paypal": ("chalicelib.channels.paypal", "PayPalAdapter"),
}

# method prefix (before the dot) -> channel
METHOD_PREFIXES: dict[str, str] = {
    "wechat": "wechatpay",
    "alipay": "alipay",
    "unionpay": "unionpay",
    "ecny": "ecny",
    "stripe": "stripe",
    "paypal": "paypal",
}

# Every payment method an adapter offers, spelled out so request validation (and the OpenAPI enum) need not
# import every adapter; a unit test keeps it equal to the union of the adapters' ``methods``.
METHODS: tuple[str, ...] = (
    "wechat.jsapi", "wechat.miniprogram", "wechat.native", "wechat.h5", "wechat.app",
    "alipay.page", "alipay.wap", "alipay.qr", "alipay.app",
    "unionpay.gateway", "unionpay.quickpass", "unionpay.card",
    "ecny.wallet", "stripe.card", "paypal.wallet",
)


def channel_for_method(method: str) -> str:
    prefix = method.split(".", 1)[0]
    channel = METHOD_PREFIXES.get(prefix)
    if channel is None or "." not in method:
        raise InvalidRequest(f"unknown payment method {method!r}", param="method")
    return channel


@cache
def adapter(channel: str) -> ChannelAdapter:
    try:
        module_name, class_name = ADAPTERS[channel]
    except KeyError as exc:
        raise InvalidRequest(f"unknown channel {channel!r}", param="channel") from exc
    from chalicelib.channels.measured import instrument
    from chalicelib.channels.transport import UrllibTransport

    cls = getattr(importlib.import_module(module_name), class_name)
    instance: ChannelAdapter = instrument(cls(UrllibTransport()), channel)  # counted per account
    return instance
