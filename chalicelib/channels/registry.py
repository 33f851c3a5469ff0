"""Every protocol the hub speaks: the built-in adapters, the plugins that register themselves, and which
protocol method belongs to which channel.

Built-in channels are listed here. A new *protocol* ships as its own package (its own Lambda layer) that names
its adapter class under the ``payhub.channels`` entry-point group, the entry point's name being the channel:

    [project.entry-points."payhub.channels"]
    mybank = "mybank_channel.adapter:MyBankAdapter"

so adding one changes no module of the core. A new *method* of a protocol the hub already speaks (another
Alipay product, a bank gateway speaking UnionPay's protocol) is configuration: ``chalicelib/routing/methods.py``.
Adapters are imported lazily so a function only pays the import cost of the channels it touches.
"""

from __future__ import annotations

import importlib
import logging
from functools import cache
from importlib.metadata import EntryPoint, entry_points

from chalicelib.channels.base import ChannelAdapter
from chalicelib.domain.errors import InvalidRequest

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "payhub.channels"

# channel -> (module, class)
ADAPTERS: dict[str, tuple[str, str]] = {
    "wechatpay": ("chalicelib.channels.wechatpay", "WeChatPayAdapter"),
    "alipay": ("chalicelib.channels.alipay", "AlipayAdapter"),
    "unionpay": ("chalicelib.channels.unionpay", "UnionPayAdapter"),
    "ecny": ("chalicelib.channels.ecny", "ECNYAdapter"),
    "stripe": ("chalicelib.channels.stripe", "StripeAdapter"),
    "paypal": ("chalicelib.channels.paypal", "PayPalAdapter"),
    "banktransfer": ("chalicelib.channels.banktransfer", "BankTransferAdapter"),
}

# method prefix (before the dot) -> channel
METHOD_PREFIXES: dict[str, str] = {
    "wechat": "wechatpay",
    "alipay": "alipay",
    "unionpay": "unionpay",
    "ecny": "ecny",
    "stripe": "stripe",
    "paypal": "paypal",
    "bank": "banktransfer",
}

# Every payment method a built-in adapter offers, spelled out so request validation (and the OpenAPI enum) need
# not import every adapter; a unit test keeps it equal to the union of the adapters' ``methods``.
METHODS: tuple[str, ...] = (
    "wechat.jsapi", "wechat.miniprogram", "wechat.native", "wechat.h5", "wechat.app",
    "alipay.page", "alipay.wap", "alipay.qr", "alipay.app",
    "unionpay.gateway", "unionpay.quickpass", "unionpay.card",
    "ecny.wallet", "stripe.card", "stripe.checkout", "paypal.wallet",
    "bank.transfer",
)

# Channels with no statement of their own: a bank transfer's evidence is the reserve's bank statement (read by the
# transfers sweep and reconciled daily with the reserve), so no channel reconciliation is scheduled for them.
NO_CHANNEL_STATEMENT: frozenset[str] = frozenset({"banktransfer"})


@cache
def plugins() -> dict[str, EntryPoint]:
    """Channels registered by installed plugin packages (read once per process: a layer cannot change under a
    running Lambda). A plugin may not take the name of a built-in channel."""
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in ADAPTERS or point.name in found:
            log.warning("channel plugin %s ignored: the channel name is already taken", point.name)
            continue
        found[point.name] = point
    return found


@cache
def _plugin_class(channel: str) -> type:
    loaded = plugins()[channel].load()
    methods = getattr(loaded, "methods", None)
    if getattr(loaded, "channel", None) != channel or not isinstance(methods, frozenset) or not methods:
        raise TypeError(f"channel plugin {channel!r}: its adapter must state channel={channel!r} and its methods")
    return loaded  # type: ignore[no-any-return]


def channels() -> tuple[str, ...]:
    return (*ADAPTERS, *plugins())


def is_channel(channel: str) -> bool:
    return channel in ADAPTERS or channel in plugins()


def protocol_methods() -> frozenset[str]:
    """What the adapters themselves speak: the built-in methods and every plugin's."""
    methods = set(METHODS)
    for channel in plugins():
        methods |= _plugin_class(channel).methods  # type: ignore[attr-defined]
    return frozenset(methods)


def channel_for_method(method: str) -> str:
    """The channel of a protocol method (a configured method is resolved to one first: routing/methods.py)."""
    prefix = method.split(".", 1)[0]
    channel = METHOD_PREFIXES.get(prefix)
    if channel is not None and "." in method:
        return channel
    for name in plugins():
        if method in _plugin_class(name).methods:  # type: ignore[attr-defined]
            return name
    raise InvalidRequest(f"unknown payment method {method!r}", param="method")


@cache
def adapter(channel: str) -> ChannelAdapter:
    from chalicelib.channels.measured import instrument
    from chalicelib.channels.transport import UrllibTransport

    if channel in ADAPTERS:
        module_name, class_name = ADAPTERS[channel]
        cls = getattr(importlib.import_module(module_name), class_name)
    elif channel in plugins():
        cls = _plugin_class(channel)
    else:
        raise InvalidRequest(f"unknown channel {channel!r}", param="channel")
    instance: ChannelAdapter = instrument(cls(UrllibTransport()), channel)  # counted per account
    return instance


def forget_plugins() -> None:
    """Read the installed plugins again (tests that install one; a Lambda never needs this)."""
    plugins.cache_clear()
    _plugin_class.cache_clear()
    adapter.cache_clear()
