"""The payer's last used method, per payer and merchant: kept only when the payer ticks "remember", removed
when they ask. The payer is the merchant's own ``payer.user_id``, stored only as a keyed hash with the
merchant's id, so the record names no one outside that merchant."""

from __future__ import annotations

import hashlib

from chalicelib.domain.clock import iso, utcnow
from chalicelib.storage import state_repo
from chalicelib.storage.aws import client


def _key(merchant_id: str, user_id: str) -> dict[str, str]:
    digest = hashlib.sha256(f"{merchant_id}\x00{user_id}".encode()).hexdigest()
    return {"pk": f"PAYERPREF#{merchant_id}#{digest}", "sk": "METHOD"}


def last_method(merchant_id: str, user_id: str | None) -> str | None:
    if not user_id:
        return None
    item = state_repo.get_item(_key(merchant_id, user_id))
    return str(item["method"]) if item else None


def remember(merchant_id: str, user_id: str, method: str) -> None:
    key = _key(merchant_id, user_id)
    client("dynamodb").put_item(TableName=state_repo.state_table(), Item={
        "pk": {"S": key["pk"]}, "sk": {"S": key["sk"]}, "method": {"S": method}, "updated_at": {"S": iso(utcnow())}})


def forget(merchant_id: str, user_id: str) -> None:
    key = _key(merchant_id, user_id)
    client("dynamodb").delete_item(TableName=state_repo.state_table(),
                                   Key={"pk": {"S": key["pk"]}, "sk": {"S": key["sk"]}})
