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
