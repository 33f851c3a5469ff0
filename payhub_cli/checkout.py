"""``payhub checkout lookup REF``: the operator's view of a checkout session from the payer's support reference."""

from __future__ import annotations

import argparse
from typing import Any


def checkout_lookup(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.checkout.support import lookup

    return lookup(args.support_ref)


def register(groups: Any) -> None:
    checkout = groups.add_parser("checkout", help="hosted checkout sessions").add_subparsers(dest="command",
                                                                                            required=True)
    find = checkout.add_parser("lookup", help="a session, its payment and every attempt, by support reference")
    find.add_argument("support_ref", help="as the page shows it to the payer, e.g. VD859-YRK6X")
    find.set_defaults(run=checkout_lookup)
