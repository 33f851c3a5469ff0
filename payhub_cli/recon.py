"""`payhub recon ...` and `payhub operator-key ...`: reconcile a day on demand, look at runs, manage the keys
of the operator API."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import Any


class ReconFailed(Exception):
    """The run finished as failed; its summary was printed, the exit status says so."""


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("expected YYYY-MM-DD") from exc


def _progress(message: str) -> None:
    print(f"recon: {message}", file=sys.stderr, flush=True)


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("run_id", "account_id", "channel", "day", "status", "failure_reason", "unresolved", "items_by_status",
            "items_by_kind", "totals", "statement", "reports")
    return {key: run[key] for key in keys if run.get(key) is not None}


def recon_run(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.recon import repo
    from chalicelib.recon.run import StatementNotReady, run_day

    try:
        result = run_day(args.account, args.date, progress=_progress)
    except StatementNotReady as exc:
        raise ReconFailed(f"the statement of {args.date} is not available yet ({exc}); run again later") from exc
    summary = _summary(result.run or repo.get_run(args.account, args.date) or {})
    if not result.ok:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        raise ReconFailed(f"run {result.run_id} failed: {result.failure_reason}")
    return summary


def recon_close(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.recon import review
    from chalicelib.service import audit

    return review.close_item(audit.Actor.cli(), args.run_id, args.item_id, args.note)


def recon_reserve(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.recon import reserve

    return reserve.reconcile(args.reserve, args.date)


def recon_list(args: argparse.Namespace) -> list[dict[str, Any]]:
    from chalicelib.recon import repo

    runs, _ = repo.list_runs(day=args.date, account_id=args.account, limit=args.limit, after=None)
    return [{key: run.get(key) for key in ("run_id", "account_id", "channel", "day", "status", "unresolved",
                                           "items_by_status", "failure_reason", "finished_at")} for run in runs]


def recon_items(args: argparse.Namespace) -> list[dict[str, Any]]:
    from chalicelib.recon import views

    params = {"limit": "200", **({"status": args.status} if args.status else {})}
    return list(views.list_items(args.run_id, params)["data"])


def operator_key_create(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service.operators import create_operator_key

    created = create_operator_key(args.name)
    return {"key_id": created.operator.key_id, "name": created.operator.name, "operator_key": created.api_key}


def operator_key_list(args: argparse.Namespace) -> list[dict[str, Any]]:
    from chalicelib.service.operators import list_operator_keys

    return list_operator_keys()


def operator_key_revoke(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service.operators import revoke_operator_key

    revoke_operator_key(args.key_id)
    return {"key_id": args.key_id, "status": "revoked"}


def register(groups: Any) -> None:
    recon = groups.add_parser("recon", help="T+1 reconciliation").add_subparsers(dest="command", required=True)
    run = recon.add_parser("run", help="reconcile one channel account's Beijing day now (progress on stderr)")
    run.add_argument("--account", required=True, help="channel account id")
    run.add_argument("--date", required=True, type=_day, help="statement day, YYYY-MM-DD (Beijing)")
    run.set_defaults(run=recon_run)
    close = recon.add_parser("close", help="close an item a person has reviewed (audited)")
    close.add_argument("run_id")
    close.add_argument("item_id", help="the item's id as `recon items` shows it")
    close.add_argument("--note", required=True, help="what was found and done")
    close.set_defaults(run=recon_close)
    held = recon.add_parser("reserve", help="reconcile a reserve account's bank statement of a Beijing day")
    held.add_argument("--reserve", required=True, help="reserve id (a bank account configured for it)")
    held.add_argument("--date", required=True, type=_day, help="statement day, YYYY-MM-DD (Beijing)")
    held.set_defaults(run=recon_reserve)
    listing = recon.add_parser("list", help="list runs, newest day first")
    listing.add_argument("--account")
    listing.add_argument("--date", type=_day)
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(run=recon_list)
    items = recon.add_parser("items", help="a run's differences")
    items.add_argument("run_id")
    items.add_argument("--status", choices=("repaired", "needs_review", "waiting", "retry", "resolved"))
    items.set_defaults(run=recon_items)

    keys = groups.add_parser("operator-key", help="operator API keys").add_subparsers(dest="command", required=True)
    create = keys.add_parser("create", help="create an operator key; prints it once")
    create.add_argument("--name", required=True, help="who or what uses it")
    create.set_defaults(run=operator_key_create)
    keys.add_parser("list", help="list operator keys (never the keys themselves)").set_defaults(run=operator_key_list)
    revoke = keys.add_parser("revoke", help="revoke an operator key")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=operator_key_revoke)
