"""Where each record lives in the state table, and how it maps to and from an item.

Keys (single table, pk/sk):
  PAY#<payment_id>  / PAYMENT     the merchant's order
  ATT#<attempt_id>  / ATTEMPT     one try on one channel account (our out_trade_no at the channel)
  RE#<refund_id>    / REFUND      a refund
  EVT#<event_id>    / EVENT       outbox event + webhook delivery status;  DLV#<n>: one delivery attempt
  MORD#<merchant>#<order_no> / UNIQUE     merchant_order_no is unique per merchant
  MREF#<payment_id>#<refund_no> / UNIQUE  merchant_refund_no is unique per payment
  CB#<channel>#<account>#<event id> / CALLBACK   a channel notification already applied (dedupe)
  AUDIT#<object id> / <ts>#<kind>  append-only audit of automatic decisions
  CARD#<token>      / CARD        a vaulted card: number encrypted, CVV never (chalicelib/vault/cards.py)

Payments and refunds also carry their place in the merchant's list (``list_pk``/``list_sk``,
chalicelib/storage/listing_index.py), written with the record and never changed.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from chalicelib.domain.models import Attempt, Payment, Refund
from chalicelib.domain.states import AttemptState, PaymentState, RefundState
from chalicelib.storage.listing_index import listing_fields

T = TypeVar("T")


def payment_key(payment_id: str) -> dict[str, str]:
    return {"pk": f"PAY#{payment_id}", "sk": "PAYMENT"}


def attempt_key(attempt_id: str) -> dict[str, str]:
    return {"pk": f"ATT#{attempt_id}", "sk": "ATTEMPT"}


def refund_key(refund_id: str) -> dict[str, str]:
    return {"pk": f"RE#{refund_id}", "sk": "REFUND"}


def event_key(event_id: str) -> dict[str, str]:
    return {"pk": f"EVT#{event_id}", "sk": "EVENT"}


def order_no_key(merchant_id: str, merchant_order_no: str) -> dict[str, str]:
    return {"pk": f"MORD#{merchant_id}#{merchant_order_no}", "sk": "UNIQUE"}


def refund_no_key(payment_id: str, merchant_refund_no: str) -> dict[str, str]:
    return {"pk": f"MREF#{payment_id}#{merchant_refund_no}", "sk": "UNIQUE"}


def callback_key(channel: str, account_id: str, channel_event_id: str) -> dict[str, str]:
    return {"pk": f"CB#{channel}#{account_id}#{channel_event_id}", "sk": "CALLBACK"}


def card_key(token: str) -> dict[str, str]:
    return {"pk": f"CARD#{token}", "sk": "CARD"}


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _to_item(record: Any, key: dict[str, str]) -> dict[str, Any]:
    values = dataclasses.asdict(record)
    return {**key, **{k: (str(v) if k == "status" else v) for k, v in values.items()}}


def _from_item(cls: type[T], item: dict[str, Any], status_type: type) -> T:
    values = {k: v for k, v in item.items() if k in _fields(cls)}
    values["status"] = status_type(values["status"])
    return cls(**values)


def payment_item(payment: Payment) -> dict[str, Any]:
    return {**_to_item(payment, payment_key(payment.payment_id)),
            **listing_fields("payment", payment.merchant_id, payment.payment_id, payment.created_at)}


def payment_from(item: dict[str, Any]) -> Payment:
    return _from_item(Payment, item, PaymentState)


def attempt_item(attempt: Attempt) -> dict[str, Any]:
    return _to_item(attempt, attempt_key(attempt.attempt_id))


def attempt_from(item: dict[str, Any]) -> Attempt:
    return _from_item(Attempt, item, AttemptState)


def refund_item(refund: Refund) -> dict[str, Any]:
    return {**_to_item(refund, refund_key(refund.refund_id)),
            **listing_fields("refund", refund.merchant_id, refund.refund_id, refund.created_at)}


def refund_from(item: dict[str, Any]) -> Refund:
    return _from_item(Refund, item, RefundState)
