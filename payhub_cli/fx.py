"""`payhub fx ...`: currency rate snapshots a converted payment locks (put and loaded with an audit record)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def put_rate(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import audit, fx_rates

    return fx_rates.put_rate(audit.Actor.cli(), args.pair, args.rate, args.source, args.valid_minutes)


def load_rates(args: argparse.Namespace) -> list[dict[str, Any]]:
    from chalicelib.service import audit, fx_rates

    return fx_rates.load_rates(audit.Actor.cli(), Path(args.file).read_text(encoding="utf-8"))


def show_rates(args: argparse.Namespace) -> list[dict[str, Any]]:
    from chalicelib.service import fx_rates

    return [snapshot.record() for snapshot in fx_rates.rates(args.pair, limit=args.limit)]


def book_conversion(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.domain.money import Money, minor_units
    from chalicelib.service import audit, fx_conversions

    cleared_amount, cleared_currency = args.cleared
    received_amount, received_currency = args.received
    return fx_conversions.book_conversion(
        args.reference, args.account, args.reserve, Money(minor_units(cleared_amount, cleared_currency), cleared_currency),
        Money(minor_units(received_amount, received_currency), received_currency), value_day=args.value_day,
        actor=audit.Actor.cli())


def register(groups: Any) -> None:
    group = groups.add_parser("fx", help="currency rates for payments settled in another currency").add_subparsers(
        dest="command", required=True)
    put = group.add_parser("put-rate", help="publish a rate snapshot (audited; never changed afterwards)")
    put.add_argument("--pair", required=True, help="presentment then settlement currency, e.g. USDCNY")
    put.add_argument("--rate", required=True, help="settlement units per presentment unit, e.g. 7.1234")
    put.add_argument("--source", required=True, help="where the rate comes from, e.g. boc-midday")
    put.add_argument("--valid-minutes", type=int, required=True, help="how long payments may lock it")
    put.set_defaults(run=put_rate)
    load = group.add_parser("load-rates", help="publish every rate of a rates file (JSON; see docs/fx.md)")
    load.add_argument("file")
    load.set_defaults(run=load_rates)
    listed = group.add_parser("rates", help="a pair's snapshots, newest first")
    listed.add_argument("pair")
    listed.add_argument("--limit", type=int, default=20)
    listed.set_defaults(run=show_rates)
    book = group.add_parser("book-conversion", help="a channel's conversion credited to the reserve: closes the "
                                                    "position at the locked rates, books the difference (audited)")
    book.add_argument("--reference", required=True, help="the bank statement line or channel report, booked once")
    book.add_argument("--account", required=True, help="the channel account whose clearing is converted")
    book.add_argument("--reserve", required=True, help="the reserve account credited")
    book.add_argument("--cleared", nargs=2, required=True, metavar=("AMOUNT", "CCY"),
                      help="presentment money leaving clearing, major units: 100.00 USD")
    book.add_argument("--received", nargs=2, required=True, metavar=("AMOUNT", "CCY"),
                      help="settlement money credited to the reserve, major units: 713.90 CNY")
    book.add_argument("--value-day", help="YYYY-MM-DD the credit is value-dated")
    book.set_defaults(run=book_conversion)
