"""Rules compiled once per document version, and their evaluation against one payment's features.

CEL (Common Expression Language) is a non-Turing-complete expression language with no side effects and no access
to anything but the variables given, so an operator's rule can read features and nothing else; it is never Python
``eval``. The implementation is ``common-expression-language`` (Python bindings of the Rust ``cel`` interpreter):
``cel-python``'s pure-Python interpreter took ~76 ms for 100 rules here, this one ~0.04 ms (bench/risk_rules.py).
"""

from __future__ import annotations

import threading
from typing import Any

from chalicelib.domain.value_class import value_class
from chalicelib.risk.cel_extension import cel
from chalicelib.risk.rules import ACTIONS, Rule, RuleDocument, RuleDocumentError

_SEVERITY = {"allow": 0, "review": 1, "challenge": 2, "deny": 3}
assert set(_SEVERITY) == set(ACTIONS)
# Of every enforced rule that fires, the most severe action wins, except that an explicit allow (an allowlist rule)
# overrides review and challenge; only deny stands above it.
_PRECEDENCE = {"review": 1, "challenge": 2, "allow": 3, "deny": 4}


@value_class
class CompiledRule:
    """A rule with its CEL program and the variables the program reads."""

    rule: Rule
    program: Any  # cel.Program
    variables: frozenset[str]


def compile_rule(rule: Rule, field_name: str = "expr") -> CompiledRule:
    try:
        program = cel.compile(rule.expr)
    except ValueError as exc:
        # The parser's message shows the expression and where it failed; the operator wrote it, nothing secret.
        raise RuleDocumentError(f"does not parse as CEL: {str(exc).splitlines()[0]}", field_name) from exc
    return CompiledRule(rule, program, frozenset(program.variables()))


@value_class
class Fired:
    """A rule that fired for one decision (or could not be decided)."""

    rule_id: str
    action: str
    score: int
    mode: str
    reason: str
    error: str | None = None  # the expression could not be decided; fired only if the rule fails closed


@value_class
class Outcome:
    """What the rules decided for one operation, enforced and shadow alike."""

    action: str  # allow | review | challenge | deny: what is enforced
    score: int  # 0..100: enforced rules' scores, added
    step_up: tuple[str, ...]
    fired: tuple[Fired, ...]  # enforced rules that fired
    shadow: tuple[Fired, ...]  # shadow rules that fired: recorded, never enforced
    shadow_action: str  # what would have been enforced had every shadow rule been enforced too

    def summary(self) -> dict[str, Any]:
        def one(f: Fired) -> dict[str, Any]:
            return {"rule": f.rule_id, "action": f.action, "score": f.score, "reason": f.reason,
                    **({"error": f.error} if f.error else {})}

        return {"action": self.action, "score": self.score, "step_up": list(self.step_up),
                "reasons": [f.reason or f.rule_id for f in self.fired],
                "rules": [one(f) for f in self.fired], "shadow": [one(f) for f in self.shadow],
                "shadow_action": self.shadow_action}


class CompiledDocument:
    def __init__(self, version: int, document: RuleDocument) -> None:
        self.version = version
        self.document = document
        self.rules = tuple(compile_rule(rule, f"rules[{i}].expr") for i, rule in enumerate(document.rules))

    def applicable(self, operation: str, merchant_id: str, method: str) -> list[CompiledRule]:
        return [c for c in self.rules if operation in c.rule.operations and c.rule.scope.covers(merchant_id, method)]

    @staticmethod
    def variables(rules: list[CompiledRule]) -> frozenset[str]:
        """Which features these rules read: only those are gathered (a counter read, a provider call)."""
        return frozenset().union(*(c.variables for c in rules)) if rules else frozenset()

    @staticmethod
    def evaluate(rules: list[CompiledRule], features: dict[str, Any]) -> Outcome:
        context = cel.Context(variables=features)  # converted once for all rules
        fired: list[Fired] = []
        shadow: list[Fired] = []
        for compiled in rules:
            rule = compiled.rule
            error: str | None = None
            try:
                result = compiled.program.execute(context)
                hit = result is True
                if not isinstance(result, bool):
                    error, hit = f"expression gave {type(result).__name__}, not bool", rule.on_error == "closed"
            except (RuntimeError, ValueError, TypeError, KeyError, IndexError, ZeroDivisionError, OverflowError) as exc:
                # A feature the rule reads is missing (the provider did not answer in time) or the expression
                # failed on these values: the rule says whether that counts as fired (closed) or not (open).
                error, hit = str(exc).split(".")[0][:200], rule.on_error == "closed"
            if hit:
                entry = Fired(rule.rule_id, rule.action, rule.score, rule.mode, rule.reason, error)
                (fired if rule.mode == "enforce" else shadow).append(entry)
        action = _combine(fired)
        score = min(100, sum(f.score for f in fired))
        step_up = _step_ups(rules, fired) if action == "challenge" else ()
        return Outcome(action, score, step_up, tuple(fired), tuple(shadow), _combine(fired + shadow))


def _combine(fired: list[Fired]) -> str:
    if not fired:
        return "allow"
    return max((f.action for f in fired), key=lambda a: _PRECEDENCE.get(a, 0))


def _step_ups(rules: list[CompiledRule], fired: list[Fired]) -> tuple[str, ...]:
    """The step-ups every firing challenge rule accepts (strongest first); when they share none, the strongest
    any of them asks for."""
    from chalicelib.risk.rules import STEP_UPS

    by_id = {c.rule.rule_id: c.rule for c in rules}
    sets = [set(by_id[f.rule_id].step_up) for f in fired if f.action == "challenge"]
    common = set.intersection(*sets) if sets else set()
    chosen = common or {min(set().union(*sets), key=STEP_UPS.index)}
    return tuple(m for m in STEP_UPS if m in chosen)


_lock = threading.Lock()
_compiled: dict[int, CompiledDocument] = {}
KEEP_VERSIONS = 4


def compiled_for(version: int, document: RuleDocument) -> CompiledDocument:
    """Each version is compiled once per process; a newer version replaces it when the config cache turns over."""
    with _lock:
        hit = _compiled.get(version)
        if hit is None:
            hit = CompiledDocument(version, document)
            _compiled[version] = hit
            for old in sorted(_compiled)[:-KEEP_VERSIONS]:
                del _compiled[old]
        return hit
