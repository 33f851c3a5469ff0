"""Hub ids <-> ACP ``orderId``: reversible, because ACP order numbers are 8-40 letters and digits only.

Hub ids use ``[A-Za-z0-9_]`` (``att_k3...``). The escape is a prefix code over two-character sequences:
``_`` -> ``Z0`` and ``Z`` -> ``ZZ``; every other character stays. So ``att_k3q`` becomes ``attZ0k3q`` and
decoding reads ``Z`` plus the next character. Hub ids are lower-case after the prefix, so in practice
only the underscore is escaped and an id grows by one character.
"""

from __future__ import annotations

import re

ORDER_ID_CHARS_MIN = 8
ORDER_ID_CHARS_MAX = 40
_HUB_ID = re.compile(r"^[A-Za-z0-9_]+$")
_ORDER_ID = re.compile(r"^[A-Za-z0-9]{8,40}$")


class BadOrderId(ValueError):
    """The string is not an orderId this adapter made (or an id it cannot carry)."""


def to_order_id(hub_id: str) -> str:
    if not _HUB_ID.match(hub_id):
        raise BadOrderId("hub id must be letters, digits and underscores")
    order_id = hub_id.replace("Z", "ZZ").replace("_", "Z0")
    if not ORDER_ID_CHARS_MIN <= len(order_id) <= ORDER_ID_CHARS_MAX:
        raise BadOrderId(f"orderId would be {len(order_id)} characters; ACP allows 8-40")
    return order_id


def from_order_id(order_id: str) -> str:
    if not _ORDER_ID.match(order_id):
        raise BadOrderId("orderId must be 8-40 letters and digits")
    out: list[str] = []
    index = 0
    while index < len(order_id):
        char = order_id[index]
        if char != "Z":
            out.append(char)
            index += 1
            continue
        follower = order_id[index + 1 : index + 2]
        if follower == "Z":
            out.append("Z")
        elif follower == "0":
            out.append("_")
        else:
            raise BadOrderId("orderId has a Z that is not an escape")
        index += 2
    return "".join(out)
