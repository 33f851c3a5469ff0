"""`payhub route ...` and `payhub method ...`: routing rules per merchant (versioned), methods defined by
configuration, account health, and `route explain`: which rule chose which account for a payment, and why."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


class RouteError(Exception):
    """Shown to the operator as one line."""


def _read(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RouteError(f"cannot read {path}: {exc}") from exc


def _validated(model: Any, document: Any, where: str) -> Any:
    from pydantic import ValidationError

    try:
        return model.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(map(str, first["loc"])) or "document"
        raise RouteError(f"{where}: {field}: {first['msg']}") from exc


def route_put(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.routing.rules import RoutingRules
    from chalicelib.service import audit
    from chalicelib.storage import config_repo
    from payhub_cli.keys import actor

    if config_repo.load_merchant(args.merchant, consistent=True) is None:
        raise RouteError(f"no merchant {args.merchant}")
    rules = _validated(RoutingRules, _read(args.file), args.file)
    known = {c.account_id for c in config_repo.list_channel_accounts()}
    for rule in rules.rules:
        for candidate in rule.candidates:
            if candidate.account_id not in known:
                raise RouteError(f"{args.file}: rules.{rule.rule_id}.candidates: no channel account "
                                 f"{candidate.account_id!r}")
    before = config_repo.routing(args.merchant)
    stored = config_repo.put_routing(args.merchant, rules, audit_item=lambda tx: audit.add(
        tx, actor(), "routing.put", args.merchant,
        before={"version": before.version} if before else None,
        after={"rules": json.loads(rules.model_dump_json())}))
    return {"merchant_id": args.merchant, "version": stored.version, "rules": [r.rule_id for r in rules.rules]}


def route_show(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.storage import config_repo

    if args.history:
        return {"merchant_id": args.merchant, "versions": [
            {"version": v.version, "created_at": v.created_at, "rules": [r.rule_id for r in v.rules.rules]}
            for v in config_repo.routing_versions(args.merchant)]}
    stored = config_repo.routing(args.merchant)
    if stored is None:
        return {"merchant_id": args.merchant, "version": None, "rules": None}
    return json.loads(stored.model_dump_json())  # type: ignore[no-any-return]


def route_explain(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.routing.decide import Context
    from chalicelib.service import routing

    ctx = Context(merchant_id=args.merchant, method=args.method, currency=args.currency, amount=args.amount,
                  payer_id=args.payer, city=args.city, user_groups=tuple(args.group or ()), order_key=args.order)
    return {"payment": {"merchant_id": ctx.merchant_id, "method": ctx.method, "currency": ctx.currency,
                        "amount": ctx.amount, "payer_id": ctx.payer_id, "city": ctx.city,
                        "user_groups": list(ctx.user_groups)},
            **routing.route(ctx).explain()}


def route_health(args: argparse.Namespace) -> list[dict[str, Any]]:
    from chalicelib.routing.health import health
    from chalicelib.storage import config_repo

    views = []
    for config in config_repo.list_channel_accounts():
        view = health().view(config.account_id)
        views.append({"account_id": config.account_id, "channel": config.channel, "breaker": view.state,
                      "calls": view.stats.calls, "failure_rate": round(view.stats.failure_rate, 3),
                      "mean_latency_ms": round(view.stats.mean_latency_ms), "summary": view.describe()})
    return views


def method_put(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.routing.method_definition import MethodDefinition
    from chalicelib.routing.methods import check_definition
    from chalicelib.service import audit
    from chalicelib.storage import config_repo
    from payhub_cli.keys import actor

    definition = _validated(MethodDefinition, _read(args.file), args.file)
    check_definition(definition)
    config_repo.put_method_definition(definition, audit_item=lambda tx: audit.add(
        tx, actor(), "method.put", definition.method, after=json.loads(definition.model_dump_json())))
    return json.loads(definition.model_dump_json())  # type: ignore[no-any-return]


def method_list(args: argparse.Namespace) -> list[dict[str, Any]]:
    from chalicelib.channels import registry
    from chalicelib.routing import methods

    listed: list[dict[str, Any]] = [{"method": m, "channel": registry.channel_for_method(m), "source": "protocol"}
                                    for m in sorted(registry.protocol_methods())]
    for definition in methods.definitions().values():
        listed.append({"method": definition.method, "protocol_method": definition.protocol_method,
                       "channel": registry.channel_for_method(definition.protocol_method), "source": "configuration",
                       "enabled": definition.enabled})
    return listed


def register(groups: Any) -> None:
    route = groups.add_parser("route", help="routing rules, explanations and account health").add_subparsers(
        dest="command", required=True)
    put = route.add_parser("put", help="store a merchant's routing rules (a new version, live within the cache time)")
    put.add_argument("--merchant", required=True)
    put.add_argument("file")
    put.set_defaults(run=route_put)
    show = route.add_parser("show", help="the rules in force (or every version with --history)")
    show.add_argument("--merchant", required=True)
    show.add_argument("--history", action="store_true")
    show.set_defaults(run=route_show)
    explain = route.add_parser("explain", help="which rule chooses which account for a payment, and why")
    explain.add_argument("--merchant", required=True)
    explain.add_argument("--method", required=True)
    explain.add_argument("--currency", default="CNY")
    explain.add_argument("--amount", type=int)
    explain.add_argument("--payer", help="the payer's id (sticky percentages and the weighted pick)")
    explain.add_argument("--city")
    explain.add_argument("--group", action="append", help="a user group of the payer (repeatable)")
    explain.add_argument("--order", help="the merchant's order number (keys the weighted pick without a payer)")
    explain.set_defaults(run=route_explain)
    route.add_parser("health", help="each account's recent outcomes and breaker").set_defaults(run=route_health)

    method = groups.add_parser("method", help="payment methods defined by configuration").add_subparsers(
        dest="command", required=True)
    mput = method.add_parser("put", help="define (or change) a method of an existing protocol from a JSON file")
    mput.add_argument("file")
    mput.set_defaults(run=method_put)
    method.add_parser("list", help="every method: the protocols' own and the configured ones").set_defaults(
        run=method_list)
