"""The non-secret part of a channel account, as stored in the config table: the pydantic model.

This model is the source of truth; the hub reads account documents with the light class of ``accounts.py``, which
runs the core schema generated from it (``account_schema.py``): the functions that only read accounts (the
callbacks function, the channel workers) then load none of pydantic's model machinery.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from chalicelib.config.account_checks import not_empty
from chalicelib.domain.money import known_currencies

_Names = Annotated[tuple[str, ...], AfterValidator(not_empty)]


class ChannelAccountConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    account_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,62}$")
    channel: str = Field(pattern=r"^[a-z0-9_]+$")
    enabled: bool = True
    priority: int = 100
    methods: _Names
    currencies: Annotated[_Names, AfterValidator(known_currencies)] = ("CNY",)
    api_base_url: str = Field(pattern=r"^https?://")
    # The merchants this account takes payments for (their own channel merchant number); empty: any merchant.
    merchant_ids: tuple[str, ...] = ()
    # Channel-specific identifiers (WeChat: mchid, appid, merchant_serial_no, sign_type, public_key_id, ...)
    settings: dict[str, str] = Field(default_factory=dict)
