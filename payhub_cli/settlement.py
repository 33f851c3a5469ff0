"""`payhub settlement ...`: a merchant's settlement terms, holds and releases (audited), and settling a day."""

from __future__ import annotations

import argparse
from typing import Any

from payhub_cli.recon import _day  # one reading of a YYYY-MM-DD argument for every command


def terms(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import audit, settlement

    payee = {"payee_account_no": args.payee_account, "payee_name": args.payee_name,
             "payee_bank_name": args.payee_bank, "payee_bank_code": args.payee_bank_code}
    return settlement.set_terms(audit.Actor.cli(), args.merchant, {
        "delay_days": args.delay_days, "minimum_minor": args.minimum, "fee_bps": args.fee_bps,
        "reserve_id": args.reserve, "paused": args.paused, "currencies": args.currencies.split(","),
        **{k: v for k, v in payee.items() if v is not None}})


def run(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import settlement

    return settlement.settle_day(args.merchant, args.currency, args.date)


def show(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import settlement

    return settlement.get_settlement(args.settlement_id)


def hold(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import audit, settlement

    return settlement.place_hold(audit.Actor.cli(), args.merchant, args.amount, args.currency, args.reason)


def release(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import audit, settlement

    return settlement.release_hold(audit.Actor.cli(), args.hold_id, args.reason)


def register(groups: Any) -> None:
    group = groups.add_parser("settlement", help="paying merchants from the reserve").add_subparsers(
        dest="command", required=True)
    put = group.add_parser("terms", help="set a merchant's settlement terms (audited)")
    put.add_argument("merchant")
    put.add_argument("--delay-days", type=int, required=True, help="N of T+N")
    put.add_argument("--minimum", type=int, default=0, help="smallest net transfer, minor units")
    put.add_argument("--fee-bps", type=int, required=True, help="the hub's fee on what is settled, basis points")
    put.add_argument("--reserve", required=True, help="the reserve account paying out")
    put.add_argument("--paused", action="store_true", help="settle nothing until put again without it")
    put.add_argument("--currencies", default="CNY", help="comma-separated: the payables settled")
    put.add_argument("--payee-account", help="the merchant's bank account settlements are sent to")
    put.add_argument("--payee-name", help="its holder's name")
    put.add_argument("--payee-bank", help="its bank's name, for an account at another bank")
    put.add_argument("--payee-bank-code", help="its bank's 12-digit CNAPS code, for an account at another bank")
    put.set_defaults(run=terms)
    day = group.add_parser("run", help="settle one merchant's currency for a Beijing day that has ended")
    day.add_argument("--merchant", required=True)
    day.add_argument("--currency", default="CNY")
    day.add_argument("--date", required=True, type=_day)
    day.set_defaults(run=run)
    one = group.add_parser("show", help="one settlement record")
    one.add_argument("settlement_id")
    one.set_defaults(run=show)
    held = group.add_parser("hold", help="hold an amount back from a merchant's settlement (audited)")
    held.add_argument("merchant")
    held.add_argument("--amount", type=int, required=True, help="minor units")
    held.add_argument("--currency", default="CNY")
    held.add_argument("--reason", required=True)
    held.set_defaults(run=hold)
    freed = group.add_parser("release", help="release a hold: hld_… (an operator's) or att_… (reconciliation's)")
    freed.add_argument("hold_id")
    freed.add_argument("--reason", required=True)
    freed.set_defaults(run=release)
