"""`payhub transfers ...`: payer businesses' bank credits that wait for a person (list them; approve a large one,
assign an unknown one to a payment, return one or an excess to the payer, let the merchant keep an excess), each
audited; and one run of the sweep that reads the reserves' statements."""

from __future__ import annotations

import argparse
from typing import Any


def waiting(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import transfers_in

    return {"object": "list", "data": transfers_in.needing_a_person(limit=args.limit)}


def decide(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import audit, transfers_in

    actor = audit.Actor.cli()
    if args.command == "assign":
        return transfers_in.assign(actor, args.receipt_id, args.payment, args.reason)
    act = {"approve": transfers_in.approve, "return": transfers_in.return_to_payer, "keep": transfers_in.keep}
    return act[args.command](actor, args.receipt_id, args.reason)


def sweep(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import transfers_in

    return transfers_in.sweep()


def register(groups: Any) -> None:
    group = groups.add_parser("transfers", help="payer businesses' bank transfers into the reserve").add_subparsers(
        dest="command", required=True)
    listed = group.add_parser("waiting", help="credits waiting for a person (unknown, excess, late, large)")
    listed.add_argument("--limit", type=int, default=100)
    listed.set_defaults(run=waiting)
    for name, text in (("approve", "count a large credit for its order (audited)"),
                       ("return", "transfer a credit's unapplied money back to the payer (audited)"),
                       ("keep", "the merchant keeps an excess (the payer agreed; audited)"),
                       ("assign", "count an unknown credit for a bank-transfer payment (audited)")):
        one = group.add_parser(name, help=text)
        one.add_argument("receipt_id")
        one.add_argument("--reason", required=True)
        if name == "assign":
            one.add_argument("--payment", required=True, help="the payment the credit pays")
        one.set_defaults(run=decide)
    group.add_parser("sweep", help="read every reserve's statement of today now").set_defaults(run=sweep)
