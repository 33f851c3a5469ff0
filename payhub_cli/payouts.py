"""`payhub payouts ...`: submit a merchant's payout file, approve or reject a batch (maker-checker, audited),
read a batch, its items and its result file, set a merchant's approval thresholds (audited)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def submit(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import audit, payouts

    rows = payouts.rows_from_csv(Path(args.file).read_text(encoding="utf-8"))
    body = {"merchant_batch_no": args.batch_no, "currency": args.currency, "items": rows}
    if args.check:
        return payouts.check(body).public()
    return payouts.create_batch(args.merchant, body, maker=audit.Actor.cli().as_record())


def decide(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import audit, payouts

    return payouts.decide(audit.Actor.cli(), args.batch_id, approve=args.command == "approve", reason=args.reason)


def show(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import payouts

    return payouts.get_batch(args.batch_id)


def items(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import payouts

    return payouts.list_items(args.batch_id, None, state=args.state, limit=args.limit)


def result(args: argparse.Namespace) -> None:
    from chalicelib.service import payouts

    sys.stdout.write(payouts.result_csv(args.batch_id, None))


def policy(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import audit, payouts

    return payouts.set_policy(audit.Actor.cli(), args.merchant, {
        "single_threshold_minor": args.single, "batch_threshold_minor": args.batch, "daily_limit_minor": args.daily})


def register(groups: Any) -> None:
    group = groups.add_parser("payouts", help="batch payouts").add_subparsers(dest="command", required=True)
    sub = group.add_parser("submit", help="submit a merchant's payout file (CSV with a header row)")
    sub.add_argument("--merchant", required=True)
    sub.add_argument("--file", required=True, help="columns: item_ref,amount,payee_account_no,payee_name[,payee_bank_name,"
                                                  "payee_bank_code,purpose]; amounts in minor units")
    sub.add_argument("--batch-no", required=True, help="the merchant's batch number: a resubmission returns the batch")
    sub.add_argument("--currency", default="CNY")
    sub.add_argument("--check", action="store_true", help="only validate: print the report, write nothing")
    sub.set_defaults(run=submit)
    for name, text in (("approve", "approve a batch awaiting approval (not its maker)"),
                       ("reject", "reject a batch awaiting approval (not its maker)")):
        one = group.add_parser(name, help=text)
        one.add_argument("batch_id")
        one.add_argument("--reason", required=True)
        one.set_defaults(run=decide)
    shown = group.add_parser("show", help="a batch with its count of items per state")
    shown.add_argument("batch_id")
    shown.set_defaults(run=show)
    listed = group.add_parser("items", help="a batch's items")
    listed.add_argument("batch_id")
    listed.add_argument("--state", choices=("pending", "processing", "succeeded", "failed", "returned"))
    listed.add_argument("--limit", type=int, default=100)
    listed.set_defaults(run=items)
    out = group.add_parser("result", help="the result file (CSV) on stdout")
    out.add_argument("batch_id")
    out.set_defaults(run=result)
    limits = group.add_parser("policy", help="a merchant's approval thresholds, minor units (audited)")
    limits.add_argument("merchant")
    limits.add_argument("--single", type=int, required=True, help="an item at or above this waits for approval")
    limits.add_argument("--batch", type=int, required=True, help="a batch total at or above this waits")
    limits.add_argument("--daily", type=int, required=True, help="the day's payouts past this wait")
    limits.set_defaults(run=policy)
