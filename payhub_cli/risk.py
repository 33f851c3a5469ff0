"""``payhub risk``: the risk rules (put a new version from a file, show the one in force) and a payment's decisions."""

from __future__ import annotations

import argparse
import json
from typing import Any


def rules_put(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.risk import operations
    from chalicelib.service import audit

    with open(args.file, encoding="utf-8") as source:
        document = json.load(source)
    return operations.put_rules(audit.Actor.cli(), document)


def rules_show(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.risk import operations

    return operations.current_rules()


def decisions(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.risk import operations

    return operations.payment_risk(args.payment_id)


def register(groups: Any) -> None:
    risk = groups.add_parser("risk", help="risk control").add_subparsers(dest="command", required=True)
    put = risk.add_parser("put-rules", help="validate, compile and store a new version of the rules (JSON file)")
    put.add_argument("file")
    put.set_defaults(run=rules_put)
    risk.add_parser("rules", help="the rules in force and their version").set_defaults(run=rules_show)
    show = risk.add_parser("decisions", help="a payment's risk decisions and step-up (or a denied request's)")
    show.add_argument("payment_id")
    show.set_defaults(run=decisions)
