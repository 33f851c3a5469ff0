"""A merchant's routing rules: a versioned configuration document (stored by ``config_repo.put_routing``).

    {"rules": [
       {"rule_id": "gray-sh", "methods": ["wechat.native"], "currencies": ["CNY"], "max_amount": 500000,
        "gray": {"cities": ["Shanghai"], "user_groups": ["staff"], "percent": 10, "salt": "2026-12"},
        "candidates": [{"account_id": "wechat-new", "priority": 1, "weight": 1}]},
       {"rule_id": "default-wechat", "methods": ["wechat.*"],
        "candidates": [{"account_id": "wechat-a", "priority": 1, "weight": 3},
                       {"account_id": "wechat-b", "priority": 1, "weight": 1},
                       {"account_id": "wechat-backup", "priority": 2}]}],
     "fallback": true, "failover": {"create_timeout_ms": 3000}}

Rules are tried in order; the first that matches the payment and still has a healthy candidate decides. Within a
rule the lowest ``priority`` number is tried first; candidates of equal priority share traffic by ``weight``;
the next priority is the backup that failover moves to. ``fallback``: when no rule decides, the accounts are
taken as without rules (dedicated to the merchant first, then by the account's own priority).

These pydantic models are the source of truth; the hub reads and validates rules with the light classes of
``rules.py``, which run the core schemas generated from these (``rule_schemas.py``): a create's routing loads no
pydantic model machinery (chalicelib/validation/light.py).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chalicelib.routing import rule_checks

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class Candidate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    account_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,62}$")
    priority: int = Field(default=100, ge=0, le=10_000)
    weight: int = Field(default=1, ge=0, le=10_000)  # 0: a backup only, never chosen first among its peers


class Gray(BaseModel):
    """Who a gray-release rule is for. Every condition given must hold: the payer's city is one of ``cities``,
    one of the payer's groups is in ``user_groups``, and the payer falls within ``percent`` of all payers by a
    stable hash of their id and ``salt`` (the same payer stays in or out until the salt changes)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    cities: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    percent: float | None = Field(default=None, ge=0, le=100)
    salt: str = Field(default="", max_length=64)

    _says_something = model_validator(mode="after")(rule_checks.gray_says_something)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    rule_id: str = Field(pattern=_ID)
    enabled: bool = True
    methods: tuple[str, ...] = Field(min_length=1)  # method names; "*" patterns allowed ("wechat.*")
    currencies: tuple[str, ...] = ()  # empty: any currency
    min_amount: int | None = Field(default=None, ge=0)  # minor units, inclusive
    max_amount: int | None = Field(default=None, ge=0)  # minor units, inclusive
    gray: Gray | None = None
    candidates: tuple[Candidate, ...] = Field(min_length=1)

    _known_currencies = field_validator("currencies")(rule_checks.known_currencies)
    _consistent = model_validator(mode="after")(rule_checks.rule_consistent)


class Failover(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    enabled: bool = True
    # Each channel call of a create is cut off after this, so a retry and a backup fit in one API request.
    create_timeout_ms: int = Field(default=3000, ge=200, le=10_000)


class RoutingRules(BaseModel):
    """What an operator writes. ``version`` is given by the store on each put, never by the writer."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    rules: tuple[Rule, ...] = ()
    fallback: bool = True
    failover: Failover = Field(default_factory=Failover)

    _unique_ids = model_validator(mode="after")(rule_checks.unique_rule_ids)


class StoredRouting(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    merchant_id: str
    version: int
    created_at: str
    rules: RoutingRules
