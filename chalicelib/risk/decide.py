"""One risk decision: gather the features the applicable rules read, evaluate them, and say what to record.

Only what the rules read is gathered: counters (one BatchGetItem) when a rule reads ``velocity``, ``payer``,
``city``, ``device`` or ``refund.payer_ratio_24h``; the provider (one HTTP call within its budget) when a rule
reads ``provider``. The increments are written by the caller inside the transaction it commits anyway, so a
decision adds at most one DynamoDB round trip to an operation.
"""

from __future__ import annotations

import logging
import time
from dataclasses import field
from typing import Any

from chalicelib.config.settings import settings
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.ids import new_id
from chalicelib.domain.value_class import value_class
from chalicelib.risk import counters, store
from chalicelib.risk.compiled import Outcome
from chalicelib.risk.counters import Snapshot, Subject
from chalicelib.risk.provider import ScoreRequest
from chalicelib.storage.transaction import Transaction

log = logging.getLogger(__name__)
COUNTER_VARIABLES = frozenset({"velocity", "payer", "city", "device", "refund"})


@value_class
class Context:
    """What one risk decision is about: the operation, the money and who pays."""

    operation: str  # create | confirm | refund
    merchant_id: str
    method: str
    amount: int
    currency: str
    subject: Subject
    order_ref: str  # the payment id (refunds: the payment refunded)
    captured: int = 0  # refunds: what the payment captured and has refunded so far
    refunded: int = 0
    attempt_id: str | None = None  # a checkout session's attempt: one decision per attempt the payer opens


@value_class
class Decision:
    """One risk decision as recorded with the payment or refund it judged."""

    decision_id: str
    context: Context
    outcome: Outcome
    version: int
    provider: dict[str, Any] | None
    elapsed_ms: float
    decided_at: str
    features: dict[str, Any] = field(default_factory=dict)

    @property
    def action(self) -> str:
        return self.outcome.action

    def record(self) -> dict[str, Any]:
        """What the payment (or refund) keeps, and operators read."""
        attempt = {"attempt_id": self.context.attempt_id, "method": self.context.method} if self.context.attempt_id else {}
        return {"decision_id": self.decision_id, "operation": self.context.operation, **attempt, **self.outcome.summary(),
                "rules_version": self.version, "decided_at": self.decided_at,
                # DynamoDB items hold no floats here (storage/codec.py): scores as text, time in microseconds
                "provider": {k: (str(v) if isinstance(v, float) else v) for k, v in self.provider.items()}
                if self.provider else None,
                "elapsed_us": int(self.elapsed_ms * 1000)}

    def write(self, tx: Transaction, *, count: bool) -> None:
        """The decision's own record, and (``count``) this operation added to the counters."""
        now = utcnow()
        ctx = self.context
        # A plain allow (no rule fired, shadow or enforced) is kept on the payment or refund only: the record of
        # its own is for what an operator may look for (denied requests leave nothing else).
        if self.outcome.fired or self.outcome.shadow or self.action != "allow":
            self._put(tx)
        if not count:
            return
        if ctx.operation == "refund":
            counters.add_refund(tx, ctx.subject, amount=ctx.amount, shard_key=self.decision_id, now=now)
        else:
            counters.add_payment(tx, ctx.subject, amount=ctx.amount, shard_key=ctx.order_ref, now=now)

    def _put(self, tx: Transaction) -> None:
        ctx = self.context
        tx.put_new("risk_decision", settings().names.state_table,
                   {"pk": f"RISKDEC#{ctx.order_ref}", "sk": f"{self.decided_at}#{self.decision_id}",
                    "merchant_id": ctx.merchant_id, **self.record()})


def decide(ctx: Context) -> Decision:
    started = time.perf_counter()
    compiled = store.active()
    rules = compiled.applicable(ctx.operation, ctx.merchant_id, ctx.method)
    wanted = compiled.variables(rules)
    now = utcnow()
    snapshot = counters.read(ctx.subject, now) if wanted & COUNTER_VARIABLES else Snapshot()
    provider_record: dict[str, Any] | None = None
    features = build_features(ctx, compiled.document, snapshot)
    if "provider" in wanted:
        provider_record = _ask_provider(ctx, compiled.document.providers)
        if provider_record.get("available"):
            features["provider"] = {"score": provider_record["score"], "reasons": provider_record["reasons"]}
    outcome = compiled.evaluate(rules, features)
    elapsed = (time.perf_counter() - started) * 1000
    decision = Decision(new_id("rsk"), ctx, outcome, compiled.version, provider_record, elapsed, iso(now), features)
    if outcome.action != "allow" or outcome.shadow:
        log.info("risk %s on %s %s: %s score %d, shadow %s", decision.decision_id, ctx.operation, ctx.order_ref,
                 outcome.action, outcome.score, outcome.shadow_action)
    return decision


def build_features(ctx: Context, document: Any, snapshot: Snapshot) -> dict[str, Any]:
    subject = ctx.subject
    values = {"user_id": subject.user_id, "device_id": subject.device_id, "ip": subject.ip,
              "card_fingerprint": subject.card_fingerprint}
    blocked = [kind for kind, listed in document.blocklist.items() if values.get(kind) and values[kind] in listed]
    allowed = [kind for kind, listed in document.allowlist.items() if values.get(kind) and values[kind] in listed]
    merchant_max = document.limits.per_merchant.get(ctx.merchant_id, -1)
    method_max = document.limits.per_method.get(ctx.method, -1)
    history = sum(snapshot.cities.values()) if snapshot.cities else sum(snapshot.devices.values())
    usual = sorted(city for city, n in snapshot.cities.items() if n >= counters.USUAL_CITY_MIN)
    device_digest = counters.digest("device", subject.device_id) if subject.device_id else None
    payer_velocity = snapshot.velocity.get("payer", {})
    paid_24h = payer_velocity.get("amount_24h", 0)
    features: dict[str, Any] = {
        "operation": ctx.operation, "merchant_id": ctx.merchant_id, "method": ctx.method, "amount": ctx.amount,
        "currency": ctx.currency,
        "velocity": {dim: dict(snapshot.velocity.get(dim, dict.fromkeys(counters._feature_names(), 0)))
                     for dim in counters.DIMENSIONS},
        "payer": {"user_id": subject.user_id or "", "history": history, "known": history > 0},
        "city": {"name": subject.city or "", "usual": usual,
                 "unusual": bool(subject.city) and bool(usual) and subject.city not in usual},
        "device": {"id": subject.device_id or "",
                   "new": device_digest is not None and device_digest not in snapshot.devices},
        "lists": {"blocked": bool(blocked), "allowed": bool(allowed), "blocked_by": blocked, "allowed_by": allowed},
        "limits": {"merchant_max": merchant_max, "method_max": method_max,
                   "over": (0 <= merchant_max < ctx.amount) or (0 <= method_max < ctx.amount)},
        "refund": {"amount": ctx.amount if ctx.operation == "refund" else 0, "captured": ctx.captured,
                   "refunded": ctx.refunded,
                   "ratio": ((ctx.refunded + ctx.amount) / ctx.captured) if ctx.operation == "refund" and ctx.captured
                   else 0.0,
                   "payer_ratio_24h": (payer_velocity.get("refunded_24h", 0) + (ctx.amount if ctx.operation == "refund"
                                                                                else 0)) / paid_24h
                   if paid_24h else 0.0},
    }
    return features


def _ask_provider(ctx: Context, providers: Any) -> dict[str, Any]:
    if not providers.risk_base_url:
        return {"available": False, "error": "no provider configured"}
    from chalicelib.risk.provider import score
    from chalicelib.stepup.credentials import credential

    api_key = credential("sift_api_key")
    if api_key is None:
        return {"available": False, "error": "no provider credential"}
    event = "$create_refund" if ctx.operation == "refund" else "$transaction"
    answer = score(providers.risk_base_url, api_key,
                   ScoreRequest(event, ctx.subject.user_id or "anonymous", ctx.order_ref, ctx.amount, ctx.currency,
                                ip=ctx.subject.ip, device_id=ctx.subject.device_id, city=ctx.subject.city,
                                merchant_id=ctx.merchant_id),
                   budget_ms=providers.risk_budget_ms)
    if answer is None:
        return {"available": False, "error": f"no score within {providers.risk_budget_ms} ms"}
    return {"available": True, "name": "sift", "score": answer.score, "reasons": list(answer.reasons),
            "elapsed_ms": answer.elapsed_ms}
