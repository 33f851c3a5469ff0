"""Idempotency-Key store: one conditional write decides who runs a request.

    t0  request A: put IN_PROGRESS if the key is new (or its record expired)      -> A runs
    t1  request B, same key, same body: condition fails, old item returned
            IN_PROGRESS -> 409 idempotency_in_flight       COMPLETED -> stored response replayed
    t1' request C, same key, other body -> 422 idempotency_key_reused
    t2  A finishes: COMPLETED + response (kept 24 h);  A crashes with a 5xx: record deleted, retry may run

A lock older than LOCK_TIMEOUT_S is treated as abandoned (the Lambda died) and may be taken over.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.config.settings import settings
from chalicelib.domain.errors import IdempotencyInFlight, IdempotencyKeyReused, InvalidRequest
from chalicelib.domain.value_class import value_class
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item
from chalicelib.storage.transaction import Transaction

RETENTION_S = 24 * 3600 + 3600
LOCK_TIMEOUT_S = 60


@value_class
class StoredResponse:
    """The answer stored under an Idempotency-Key, replayed to a retry."""

    status: int
    body: dict[str, Any]


# Routes whose bodies may carry a card number, CVV or SMS code. Their fingerprint is keyed (an HMAC under the
# KMS card-fingerprint key): a plain SHA-256 over a body whose other fields are known would give the PAN or
# the code back to anyone who tries every candidate. Only the pre-order function may use that key.
KEYED_ROUTES = frozenset({("POST", "/v1/payments"), ("POST", "/v1/payments/{payment_id}/confirm")})
_PAYER_SECRETS = frozenset({"card", "cvv", "sms_code"})


def request_hash(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode())
    if (method, path) in KEYED_ROUTES and _holds_payer_secrets(body):
        from chalicelib.vault.cards import vault  # the KMS client only for requests that need it

        return "k1:" + vault().keyed_digest(digest.digest())
    return digest.hexdigest()


def _holds_payer_secrets(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(_PAYER_SECRETS & set(value)) or any(_holds_payer_secrets(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_payer_secrets(v) for v in value)
    if isinstance(value, str):  # a body that is not valid JSON is hashed as text: it may still hold a card
        return any(name in value for name in _PAYER_SECRETS)
    return False


def _key(merchant_id: str, idempotency_key: str) -> dict[str, Any]:
    return to_item({"pk": f"{merchant_id}#{idempotency_key}"})


@value_class
class RequestOrigin:
    """Which request made a record: its Idempotency-Key and body fingerprint, kept on the record itself (a payment's
    order number claim, a refund's number claim). When the key's stored answer is lost (its write failed, or it
    expired), a retry of the same request still finds its work by this and answers it again instead of a 409."""

    idempotency_key: str
    fingerprint: str

    def item(self) -> dict[str, str]:
        return {"idempotency_key": self.idempotency_key, "request_fingerprint": self.fingerprint}

    def matches(self, item: dict[str, Any]) -> bool:
        return (item.get("idempotency_key") == self.idempotency_key
                and item.get("request_fingerprint") == self.fingerprint)


@value_class
class Lock:
    """Proof that this request owns the key: completing or releasing it requires the same lock."""

    merchant_id: str
    key: str
    locked_at_ns: int
    fingerprint: str = ""

    @property
    def origin(self) -> RequestOrigin:
        return RequestOrigin(self.key, self.fingerprint)


_TAKE_CONDITION = ("attribute_not_exists(pk) OR expires_at_epoch < :now "
                   "OR (#status = :in_progress AND locked_at < :stale AND fingerprint = :fp)")


def new_lock(merchant_id: str, idempotency_key: str, fingerprint: str) -> Lock:
    if not 1 <= len(idempotency_key) <= 255:
        raise InvalidRequest("Idempotency-Key must be 1 to 255 characters", param="Idempotency-Key")
    return Lock(merchant_id, idempotency_key, time.time_ns(), fingerprint)


def _take_values(lock: Lock) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the record that takes the key, the condition's values)."""
    now = int(time.time())
    record = {"status": "in_progress", "fingerprint": lock.fingerprint, "locked_at": now,
              "lock_id": lock.locked_at_ns, "expires_at_epoch": now + RETENTION_S}
    values = {":now": now, ":in_progress": "in_progress", ":stale": now - LOCK_TIMEOUT_S, ":fp": lock.fingerprint}
    return record, values


def begin(merchant_id: str, idempotency_key: str, fingerprint: str) -> StoredResponse | Lock:
    """Take the key. Returns a stored response to replay, or the Lock under which the caller runs the request."""
    lock = new_lock(merchant_id, idempotency_key, fingerprint)
    record, values = _take_values(lock)
    try:
        client("dynamodb").put_item(
            TableName=settings().names.idempotency_table,
            Item={**_key(merchant_id, idempotency_key), **to_item(record)},
            ConditionExpression=_TAKE_CONDITION, ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_item(values), ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return lock
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        old = from_item(dict(exc.response.get("Item") or {}))  # type: ignore[call-overload]
    return _held(old, fingerprint)


def _held(old: dict[str, Any], fingerprint: str) -> StoredResponse:
    """The key is held by an earlier request: its stored answer to replay, or the reason this one may not run."""
    if old.get("fingerprint") != fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was used with a different request",
                                   param="Idempotency-Key")
    if old.get("status") == "completed":
        return StoredResponse(int(old["response_status"]), json.loads(old["response_body"]))
    raise IdempotencyInFlight("a request with this Idempotency-Key is still in flight", param="Idempotency-Key")


class Replay(Exception):
    """The key's stored answer, found where a route takes the key inside its own transaction (``Claim``)."""

    def __init__(self, response: StoredResponse) -> None:
        super().__init__(f"replay of a {response.status} answer")
        self.response = response


@dataclass
class Claim:
    """The key taken and answered inside the route's own transactions rather than by writes of its own, so a
    create costs its two transactions and nothing more (the record before the channel call, the final one).

        T1  ... + the key, on the same condition ``begin`` puts it under
        T2  ... + the answer, stored while this request still holds the key

    A T1 that fails on the key is decided as ``begin`` decides (``refused``): the stored answer (``Replay``),
    409 in flight, or 422 reused. Errors afterwards are settled by the edge with the lock, as for ``begin``."""

    lock: Lock
    ok_status: int
    taken: bool = False  # this request holds the key (T1 committed with it, or ``take_alone``)
    answered: bool = False  # T2 stored the answer: the edge has nothing left to settle

    LABEL = "idempotency"

    @property
    def origin(self) -> RequestOrigin:
        return self.lock.origin

    def take_in(self, tx: Transaction) -> None:
        record, values = _take_values(self.lock)
        tx.update(self.LABEL, settings().names.idempotency_table, _key_plain(self.lock), record,
                  remove=("response_status", "response_body"), condition=_TAKE_CONDITION, condition_values=values)

    def take_alone(self) -> None:
        """Take the key by a write of its own: for a path whose T1 did not commit (a retry finding its earlier
        work by the order number). Raises ``Replay``, or the 409/422 ``begin`` raises, when it is held."""
        taken = begin(self.lock.merchant_id, self.lock.key, self.lock.fingerprint)
        if isinstance(taken, StoredResponse):
            raise Replay(taken)
        self.lock = taken
        self.taken = True

    def answer_in(self, tx: Transaction, body: dict[str, Any]) -> None:
        tx.update(self.LABEL, settings().names.idempotency_table, _key_plain(self.lock),
                  {"status": "completed", "response_status": self.ok_status, "response_body": json.dumps(body)},
                  condition="#status = :in_progress AND lock_id = :mine",
                  condition_values={":in_progress": "in_progress", ":mine": self.lock.locked_at_ns})

    def refused(self) -> Replay:
        """After T1 failed on the key: read it (the one read of this path) and decide."""
        old = client("dynamodb").get_item(TableName=settings().names.idempotency_table, Key=_key(
            self.lock.merchant_id, self.lock.key), ConsistentRead=True).get("Item")
        return Replay(_held(from_item(old) if old else {}, self.lock.fingerprint))


def _key_plain(lock: Lock) -> dict[str, str]:
    return {"pk": f"{lock.merchant_id}#{lock.key}"}


def complete(lock: Lock, response: StoredResponse) -> None:
    """Store the answer for replays. Only the lock's owner may: a stale owner finishing late writes nothing."""
    client("dynamodb").update_item(
        TableName=settings().names.idempotency_table, Key=_key(lock.merchant_id, lock.key),
        UpdateExpression="SET #status = :completed, response_status = :code, response_body = :body",
        ConditionExpression="#status = :in_progress AND lock_id = :mine",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues=to_item({":completed": "completed", ":code": response.status,
                                           ":body": json.dumps(response.body), ":in_progress": "in_progress",
                                           ":mine": lock.locked_at_ns}),
    )


def abandon(lock: Lock) -> None:
    """Release the key (server-side failure, or a request rejected before any work) so a retry can run."""
    client("dynamodb").delete_item(TableName=settings().names.idempotency_table, Key=_key(lock.merchant_id, lock.key),
                                   ConditionExpression="#status = :in_progress AND lock_id = :mine",
                                   ExpressionAttributeNames={"#status": "status"},
                                   ExpressionAttributeValues=to_item({":in_progress": "in_progress",
                                                                      ":mine": lock.locked_at_ns}))
