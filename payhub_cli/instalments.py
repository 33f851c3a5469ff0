"""`payhub instalments ...`: instalment fee tables per channel and per merchant (audited), and a schedule preview."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _document(path: str) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    if not isinstance(document, dict):
        raise ValueError(f"{path}: a fee table is a JSON object")
    return document


def put(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import audit, instalments

    return instalments.put_table(audit.Actor.cli(), _document(args.file), merchant_id=args.merchant)


def show(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import instalments

    return instalments.show_table(args.channel, args.merchant)


def preview(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import instalments

    return instalments.plan(args.merchant, args.method, args.amount, "CNY", args.count, args.fee_payer).public()


def register(groups: Any) -> None:
    group = groups.add_parser("instalments", help="instalment fee tables (Huabei, UnionPay card)").add_subparsers(
        dest="command", required=True)
    put_cmd = group.add_parser("put", help="put a channel's fee table, or one merchant's with --merchant (audited)")
    put_cmd.add_argument("file", help='JSON: {"channel": "alipay", "terms": [{"count": 3, "buyer_rate_bps": 230, '
                                      '"seller_rate_bps": 230, "minimum_minor": 10000}, ...]}')
    put_cmd.add_argument("--merchant", help="the merchant whose own table this is (default: the channel's)")
    put_cmd.set_defaults(run=put)
    show_cmd = group.add_parser("show", help="a fee table as stored")
    show_cmd.add_argument("channel")
    show_cmd.add_argument("--merchant")
    show_cmd.set_defaults(run=show)
    plan_cmd = group.add_parser("preview", help="the schedule a payment would get")
    plan_cmd.add_argument("--merchant", required=True)
    plan_cmd.add_argument("--method", required=True)
    plan_cmd.add_argument("--amount", type=int, required=True, help="fen")
    plan_cmd.add_argument("--count", type=int, required=True)
    plan_cmd.add_argument("--fee-payer", choices=("buyer", "seller"), default="buyer")
    plan_cmd.set_defaults(run=preview)
