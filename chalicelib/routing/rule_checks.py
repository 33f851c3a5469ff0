"""The routing rules' checks between fields, as module-level functions: the models (``rule_models.py``) attach
them and the schemas generated from those (``rule_schemas.py``) call them by name, without pydantic's models."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.money import known_currencies

__all__ = ["gray_says_something", "known_currencies", "rule_consistent"]


def gray_says_something(gray: Any) -> Any:
    if not gray.cities and not gray.user_groups and gray.percent is None:
        raise ValueError("a gray release needs cities, user_groups or percent")
    return gray


def rule_consistent(rule: Any) -> Any:
    if rule.min_amount is not None and rule.max_amount is not None and rule.min_amount > rule.max_amount:
        raise ValueError("min_amount is above max_amount")
    ids = [c.account_id for c in rule.candidates]
    if len(ids) != len(set(ids)):
        raise ValueError("an account is named twice among the candidates")
    return rule


def unique_rule_ids(rules: Any) -> Any:
    ids = [rule.rule_id for rule in rules.rules]
    if len(ids) != len(set(ids)):
        raise ValueError("rule_id must be unique")
    return rules
