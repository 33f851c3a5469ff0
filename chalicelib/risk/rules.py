"""The risk rule document: what an operator writes, validated before it is stored.

A document holds rules (each a CEL boolean expression with the action it asks for), allow and block lists, amount
limits per merchant and method, and the providers' settings (never their secrets). It is stored as a new version
each time (risk/store.py); the rules are compiled once per version (risk/compiled.py).
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

from chalicelib.domain.value_class import value_class

ACTIONS = ("allow", "review", "challenge", "deny")
OPERATIONS = ("create", "confirm", "refund")
STEP_UPS = ("webauthn", "face", "sms")  # strongest first: the order methods are offered in
MODES = ("shadow", "enforce")
LIST_KINDS = ("user_id", "device_id", "ip", "card_fingerprint")


class RuleDocumentError(ValueError):
    """The document is not valid; ``field`` names where (``rules[3].expr``)."""

    def __init__(self, message: str, field_name: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@value_class
class Scope:
    """The merchants and methods a rule applies to."""

    merchant_ids: tuple[str, ...] = ()  # empty: every merchant
    methods: tuple[str, ...] = ()  # empty: every method

    def covers(self, merchant_id: str, method: str) -> bool:
        return ((not self.merchant_ids or merchant_id in self.merchant_ids)
                and (not self.methods or method in self.methods))


@value_class
class Rule:
    """A CEL boolean expression and the action it asks for when it holds."""

    rule_id: str
    expr: str
    action: str
    score: int = 0
    mode: str = "shadow"  # new rules start by being watched, not obeyed
    operations: tuple[str, ...] = ("create",)
    step_up: tuple[str, ...] = ()  # for challenge: the step-ups the payer may choose from
    on_error: str = "open"  # the expression could not be decided (provider down, feature missing): open = not fired
    scope: Scope = field(default_factory=Scope)
    reason: str = ""


@value_class
class Limits:
    """The largest amount allowed per merchant and per method."""

    per_merchant: dict[str, int] = field(default_factory=dict)  # merchant id -> largest amount, minor units
    per_method: dict[str, int] = field(default_factory=dict)


@value_class
class ProviderSettings:
    """The third-party risk service (a Sift Events API v205 endpoint) and the step-up providers."""

    risk_base_url: str | None = None
    risk_budget_ms: int = 300
    sms_base_url: str | None = None
    sms_sign_name: str = ""
    sms_template_code: str = ""
    face_base_url: str | None = None
    face_rule_id: str = ""
    face_min_similarity: float = 70.0
    face_timeout_s: int = 300
    webauthn_rp_id: str | None = None  # default: the host of the public base URL
    webauthn_origins: tuple[str, ...] = ()  # default: the public base URL


@value_class
class RuleDocument:
    """A validated rule document, as ``parse_document`` returns it."""

    rules: tuple[Rule, ...] = ()
    blocklist: dict[str, frozenset[str]] = field(default_factory=dict)
    allowlist: dict[str, frozenset[str]] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    providers: ProviderSettings = field(default_factory=ProviderSettings)


def _str(value: Any, name: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise RuleDocumentError("must be a non-empty string", name)
    return value


def _choice(value: Any, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise RuleDocumentError(f"must be one of {', '.join(choices)}", name)
    return str(value)


def _choices(value: Any, choices: tuple[str, ...], name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise RuleDocumentError(f"must be a non-empty list of {', '.join(choices)}", name)
    return tuple(_choice(item, choices, f"{name}[{i}]") for i, item in enumerate(value))


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise RuleDocumentError("must be a list of strings", name)
    return tuple(_str(item, f"{name}[{i}]") for i, item in enumerate(value))


def _amount(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RuleDocumentError("must be a non-negative integer (minor units)", name)
    return value


def _only(doc: dict[str, Any], allowed: set[str], name: str) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise RuleDocumentError(f"unknown field(s) {', '.join(unknown)}", name)


def _rule(raw: Any, name: str) -> Rule:
    if not isinstance(raw, dict):
        raise RuleDocumentError("must be an object", name)
    _only(raw, {"id", "expr", "action", "score", "mode", "operations", "step_up", "on_error", "scope", "reason"}, name)
    action = _choice(raw.get("action"), ACTIONS, f"{name}.action")
    step_up = _choices(raw["step_up"], STEP_UPS, f"{name}.step_up") if "step_up" in raw else ()
    if action == "challenge" and not step_up:
        raise RuleDocumentError("a challenge names the step-ups the payer may use", f"{name}.step_up")
    score = raw.get("score", 0)
    if not isinstance(score, int) or isinstance(score, bool) or not 0 <= score <= 100:
        raise RuleDocumentError("must be an integer 0..100", f"{name}.score")
    scope_raw = raw.get("scope", {})
    if not isinstance(scope_raw, dict):
        raise RuleDocumentError("must be an object", f"{name}.scope")
    _only(scope_raw, {"merchant_ids", "methods"}, f"{name}.scope")
    scope = Scope(_strings(scope_raw.get("merchant_ids", []), f"{name}.scope.merchant_ids"),
                  _strings(scope_raw.get("methods", []), f"{name}.scope.methods"))
    return Rule(
        rule_id=_str(raw.get("id"), f"{name}.id"), expr=_str(raw.get("expr"), f"{name}.expr"), action=action,
        score=score, mode=_choice(raw.get("mode", "shadow"), MODES, f"{name}.mode"),
        operations=_choices(raw.get("operations", ["create"]), OPERATIONS, f"{name}.operations"),
        step_up=step_up, on_error=_choice(raw.get("on_error", "open"), ("open", "closed"), f"{name}.on_error"),
        scope=scope, reason=_str(raw.get("reason"), f"{name}.reason", required=False),
    )


def _lists(raw: Any, name: str) -> dict[str, frozenset[str]]:
    if not isinstance(raw, dict):
        raise RuleDocumentError("must be an object of lists", name)
    _only(raw, set(LIST_KINDS), name)
    return {kind: frozenset(_strings(values, f"{name}.{kind}")) for kind, values in raw.items()}


def _providers(raw: Any) -> ProviderSettings:
    if not isinstance(raw, dict):
        raise RuleDocumentError("must be an object", "providers")
    known = set(ProviderSettings.__dataclass_fields__)
    _only(raw, known, "providers")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "webauthn_origins":
            values[key] = _strings(value, f"providers.{key}")
        elif key in ("risk_budget_ms", "face_timeout_s"):
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 600_000:
                raise RuleDocumentError("must be a positive integer", f"providers.{key}")
            values[key] = value
        elif key == "face_min_similarity":
            if not isinstance(value, int | float) or not 0 <= value <= 100:
                raise RuleDocumentError("must be a number 0..100", f"providers.{key}")
            values[key] = float(value)
        else:
            values[key] = _str(value, f"providers.{key}")
    return ProviderSettings(**values)


def parse_document(raw: Any, *, check_expressions: bool = True) -> RuleDocument:
    """Validate an operator's document. Expressions are compiled here too, so a rule that does not parse is
    refused when it is put, never found out on a payment."""
    if not isinstance(raw, dict):
        raise RuleDocumentError("must be an object", "document")
    _only(raw, {"rules", "blocklist", "allowlist", "limits", "providers"}, "document")
    rules_raw = raw.get("rules", [])
    if not isinstance(rules_raw, list):
        raise RuleDocumentError("must be a list", "rules")
    rules = tuple(_rule(item, f"rules[{i}]") for i, item in enumerate(rules_raw))
    ids = [rule.rule_id for rule in rules]
    if len(set(ids)) != len(ids):
        raise RuleDocumentError("rule ids must be unique", "rules")
    limits_raw = raw.get("limits", {})
    if not isinstance(limits_raw, dict):
        raise RuleDocumentError("must be an object", "limits")
    _only(limits_raw, {"per_merchant", "per_method"}, "limits")
    limits = Limits(**{
        key: {_str(k, f"limits.{key}"): _amount(v, f"limits.{key}.{k}") for k, v in dict(limits_raw.get(key, {})).items()}
        for key in ("per_merchant", "per_method")})
    document = RuleDocument(rules=rules, blocklist=_lists(raw.get("blocklist", {}), "blocklist"),
                            allowlist=_lists(raw.get("allowlist", {}), "allowlist"), limits=limits,
                            providers=_providers(raw.get("providers", {})))
    if not check_expressions:  # a stored version, checked when it was put; compiled once by risk/compiled.py
        return document
    from chalicelib.risk.compiled import compile_rule

    for i, rule in enumerate(rules):
        compile_rule(rule, f"rules[{i}].expr")
    return document
