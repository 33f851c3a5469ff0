"""Links a merchant hands to a payer: ``<public base URL>/v1/bills/<token>``, valid until a time the merchant
chose (at most ``MAX_TTL_S``).

The token carries the merchant, the kind, the object and the expiry, signed (chalicelib/bills/signing.py); no
record is written to make a link, so making one is free and the merchant can make as many as it likes. Opening
it checks the signature first, then the expiry, then that the object is still the merchant's, and answers with
a redirect to the bill's PDF in S3 under a presigned URL of a few minutes. An altered token is answered as an
unknown page and logged; an expired one says so (410), so the payer knows to ask for a new link.
"""

from __future__ import annotations

import logging

from chalicelib.bills import signing
from chalicelib.bills.errors import LinkExpired, LinkInvalid
from chalicelib.config.settings import settings
from chalicelib.domain.clock import utcnow
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.value_class import value_class
from chalicelib.observability import security_event

log = logging.getLogger(__name__)
DEFAULT_TTL_S = 7 * 24 * 3600
MAX_TTL_S = 90 * 24 * 3600
MIN_TTL_S = 60
_KINDS = {"payment": "p", "refund": "r"}
_KIND_OF = {v: k for k, v in _KINDS.items()}


@value_class
class Opened:
    merchant_id: str
    kind: str
    object_id: str


def ttl(text: str | None) -> int:
    if text is None:
        return DEFAULT_TTL_S
    if not text.isascii() or not text.isdigit() or not MIN_TTL_S <= int(text) <= MAX_TTL_S:
        raise InvalidRequest(f"link_expires_in must be whole seconds from {MIN_TTL_S} to {MAX_TTL_S}",
                             param="link_expires_in")
    return int(text)


def token(merchant_id: str, kind: str, object_id: str, expires_epoch: int) -> str:
    return signing.sign("bill_link", {"m": merchant_id, "k": _KINDS[kind], "i": object_id, "e": expires_epoch})


def payer_url(merchant_id: str, kind: str, object_id: str, expires_epoch: int) -> str:
    return f"{settings().public_base_url}/v1/bills/{token(merchant_id, kind, object_id, expires_epoch)}"


def open_token(text: str) -> Opened:
    try:
        payload = signing.verify("bill_link", text)
    except signing.BadToken as exc:
        log.warning("bill link refused: %s", exc, extra=security_event("bill_link_forged"))
        raise LinkInvalid("no such bill link") from None
    expires = payload.get("e")
    kind = _KIND_OF.get(str(payload.get("k")))
    if not isinstance(expires, int) or kind is None or not isinstance(payload.get("i"), str):
        raise LinkInvalid("no such bill link")
    if utcnow().timestamp() >= expires:
        raise LinkExpired("this bill link has expired: ask the merchant for a new one")
    return Opened(str(payload["m"]), kind, str(payload["i"]))
