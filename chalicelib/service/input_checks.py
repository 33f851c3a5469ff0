"""The checks of the merchant API's request models that a constraint cannot state, as module-level functions.

The models (``input_models.py``) attach them as validators, and the core schemas generated from those models
(``input_schemas.py``) call them by name: a function here must not import pydantic's model machinery.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from chalicelib.channels import registry
from chalicelib.domain.cards import expired, luhn_valid, requires_card
from chalicelib.domain.clock import utcnow
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.money import SUPPORTED_CURRENCIES

if TYPE_CHECKING:
    from pydantic_core.core_schema import ValidationInfo

# What a method needs from the payer besides the common fields (the schema states it as ``if method is … then
# required``, so the document refuses what validation refuses).
PAYER_NEEDS: dict[str, str] = {"wechat.jsapi": "openid", "wechat.miniprogram": "openid", "wechat.h5": "ip"}


def integral(value: Any) -> Any:
    """JSON does not tell 5 from 5.0 and JSON Schema's "integer" accepts both, so an integral float is the
    integer it spells; 5.5 stays a float and is refused as not an integer (and true is never 1)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def known_currency(value: str) -> str:
    if value not in SUPPORTED_CURRENCIES:
        raise ValueError(f"unsupported currency {value!r}")
    return value


def known_settlement_currency(value: str | None) -> str | None:
    """Absent means settled in the presentment currency; otherwise a currency the hub supports."""
    if value is not None and value not in SUPPORTED_CURRENCIES:
        raise ValueError(f"unsupported settlement currency {value!r}")
    return value


def known_method(value: str) -> str:
    # The schema's enum lists the built-in methods; a plugin's methods and methods defined by configuration
    # (chalicelib/routing/methods.py) are taken too, read when needed (configuration is cached).
    if value not in registry.METHODS:
        from chalicelib.routing.methods import METHOD_PATTERN, is_known

        if not re.fullmatch(METHOD_PATTERN, value) or not is_known(value):  # the shape first: no lookup for junk
            raise ValueError(f"unknown payment method {value!r}")
    return value


def luhn(value: str) -> str:
    if not luhn_valid(value):
        raise ValueError("card number fails its check digit")
    return value


def not_expired(value: int, info: ValidationInfo) -> int:
    month = info.data.get("exp_month", 12)  # absent when the month itself was invalid: judge the year alone
    if expired(month, value, utcnow().date()):
        raise ValueError("card has expired")
    return value


def what_the_method_needs(body: Any) -> Any:
    """A created payment's body: the payer's details and the card its method needs, and no card it does not take."""
    name = PAYER_NEEDS.get(body.method)
    if name is not None and not getattr(body.payer, name):  # absent, null or empty
        raise InvalidRequest(f"payer.{name} is required for {body.method} payments", param=f"payer.{name}")
    if requires_card(body.method) and body.card is None:
        raise InvalidRequest(f"card is required for {body.method} payments", param="card")
    if body.card is not None and not requires_card(body.method):
        raise InvalidRequest(f"{body.method} does not take a card; the payer enters it at the channel", param="card")
    return body
