"""A merchant's routing rules: a versioned configuration document (stored by ``config_repo.put_routing``).

What each field means, with an example, is in ``rule_models.py``: its pydantic models are the source of truth,
and these frozen classes run the core schemas generated from them (``rule_schemas.py``), so that a create's
routing loads no pydantic model machinery (chalicelib/validation/light.py).
"""

from __future__ import annotations

import fnmatch
from typing import Any

from chalicelib.validation.light import LightModel

_MODELS = "chalicelib.routing.rule_models"
_SCHEMAS = "chalicelib.routing.rule_schemas"


class Candidate(LightModel):
    _source, _schemas, _frozen = f"{_MODELS}:Candidate", _SCHEMAS, True

    account_id: str
    priority: int
    weight: int  # 0: a backup only, never chosen first among its peers


class Gray(LightModel):
    """Who a gray-release rule is for (``rule_models.Gray`` says how each condition is judged)."""

    _source, _schemas, _frozen = f"{_MODELS}:Gray", _SCHEMAS, True

    cities: tuple[str, ...]
    user_groups: tuple[str, ...]
    percent: float | None
    salt: str


class Rule(LightModel):
    _source, _schemas, _frozen = f"{_MODELS}:Rule", _SCHEMAS, True

    rule_id: str
    enabled: bool
    methods: tuple[str, ...]  # method names; "*" patterns allowed ("wechat.*")
    currencies: tuple[str, ...]  # empty: any currency
    min_amount: int | None  # minor units, inclusive
    max_amount: int | None  # minor units, inclusive
    gray: Gray | None
    candidates: tuple[Candidate, ...]

    def takes_method(self, method: str) -> bool:
        return any(fnmatch.fnmatchcase(method, pattern) for pattern in self.methods)


class Failover(LightModel):
    _source, _schemas, _frozen = f"{_MODELS}:Failover", _SCHEMAS, True

    enabled: bool
    # Each channel call of a create is cut off after this, so a retry and a backup fit in one API request.
    create_timeout_ms: int


class RoutingRules(LightModel):
    """What an operator writes. ``version`` is given by the store on each put, never by the writer."""

    _source, _schemas, _frozen = f"{_MODELS}:RoutingRules", _SCHEMAS, True

    rules: tuple[Rule, ...]
    fallback: bool
    failover: Failover


class StoredRouting(LightModel):
    _source, _schemas, _frozen = f"{_MODELS}:StoredRouting", _SCHEMAS, True

    merchant_id: str
    version: int
    created_at: str
    rules: RoutingRules


def __getattr__(name: str) -> Any:
    """``NO_RULES``, a merchant's rules when it has none, built when first asked for: building it at import would
    run the generated schemas' module while it imports this one (it names these classes)."""
    if name == "NO_RULES":
        globals()["NO_RULES"] = no_rules = RoutingRules()
        return no_rules
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
