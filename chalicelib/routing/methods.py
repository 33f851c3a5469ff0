"""Payment methods as configuration: a new method of a protocol the hub already speaks goes live with a document.

    {"method": "alipay.pc_form", "protocol_method": "alipay.page", "settings": {"page_action": "form_post"},
     "title": {"en": "Alipay (desktop)", "zh": "支付宝电脑网站"}}

``protocol_method`` is what the adapter speaks (a built-in method or a plugin's); ``settings`` are laid over
the channel account's own settings for the order placed (the create call), so a product that differs from an
existing one by how its order is placed (a form instead of a redirect, another app id, a bank's product code)
needs no code. Accounts offer the new method by listing it in their ``methods``. The payment keeps the method
asked for; its attempt records the protocol method, which is what the channel later queries, closes and refunds.
"""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING

from chalicelib.channels import registry
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.value_class import value_class

if TYPE_CHECKING:  # loaded with the first configured method read: built-in methods need none
    from chalicelib.routing.method_definition import MethodDefinition

METHOD_PATTERN = r"^[a-z0-9]+\.[a-z0-9_]{1,40}$"


@value_class
class ResolvedMethod:
    """A method name resolved to the channel and protocol method that serve it."""

    method: str  # as asked for
    protocol_method: str  # what the adapter speaks
    channel: str
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return self.method != self.protocol_method


def check_definition(definition: MethodDefinition) -> None:
    """What a stored definition must satisfy beyond its shape (raises InvalidRequest naming the field)."""
    protocol = registry.protocol_methods()
    if definition.method in protocol:
        raise InvalidRequest(f"{definition.method} is a protocol method already", param="method")
    if definition.protocol_method not in protocol:
        raise InvalidRequest(f"unknown protocol method {definition.protocol_method!r}", param="protocol_method")


def definitions() -> dict[str, MethodDefinition]:
    from chalicelib.storage import config_repo

    return {d.method: d for d in config_repo.list_method_definitions()}


def resolve(method: str) -> ResolvedMethod:
    if method in registry.protocol_methods():
        return ResolvedMethod(method, method, registry.channel_for_method(method))
    definition = definitions().get(method)
    if definition is None or not definition.enabled:
        raise InvalidRequest(f"unknown payment method {method!r}", param="method")
    return ResolvedMethod(method, definition.protocol_method, registry.channel_for_method(definition.protocol_method),
                          dict(definition.settings))


def is_known(method: str) -> bool:
    try:
        resolve(method)
    except InvalidRequest:
        return False
    return True


def known_methods() -> list[str]:
    return sorted(registry.protocol_methods() | {m for m, d in definitions().items() if d.enabled})
