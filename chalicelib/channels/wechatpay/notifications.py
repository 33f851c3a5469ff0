"""WeChat Pay callbacks: verify the raw bytes, then decrypt the resource, then parse (never the other way).

Every failure becomes ``CallbackRejected`` with a short reason and a 4XX/5XX answer, so WeChat retries a
genuine notification later (and re-sends a correctly signed copy after a signature probe).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from chalicelib.channels.base import (
    CallbackReply,
    InboundCallback,
    Notification,
    NotificationKind,
)
from chalicelib.channels.wechatpay.credentials import WeChatCredentials
from chalicelib.channels.wechatpay.states import payment_status, refund_status
from chalicelib.channels.wechatpay.verification import SignatureInvalid, check_signed
from chalicelib.crypto.aead import (
    DecryptionFailed,
    aes_gcm_decrypt,
    sm4_gcm_decrypt,
    sm4_key_from_secret,
)
from chalicelib.domain.errors import CallbackRejected

_KIND_BY_EVENT_PREFIX = {"TRANSACTION.": NotificationKind.PAYMENT, "REFUND.": NotificationKind.REFUND}


class MalformedResource(ValueError):
    """The resource object lacks a field or uses an algorithm we do not support."""


def decrypt_resource(resource: Mapping[str, Any], apiv3_key: str) -> bytes:
    """AEAD_AES_256_GCM with the APIv3 key bytes, or AEAD_SM4_GCM with SM3(APIv3 key)[:16].

    Raises ``DecryptionFailed`` (tampering or wrong key) or ``MalformedResource``.
    """
    algorithm = resource.get("algorithm")
    nonce, aad, ciphertext = resource.get("nonce"), resource.get("associated_data", ""), resource.get("ciphertext")
    if not isinstance(nonce, str) or not isinstance(ciphertext, str) or not isinstance(aad, str):
        raise MalformedResource("resource lacks nonce or ciphertext")
    try:
        sealed = base64.b64decode(ciphertext, validate=True)
    except binascii.Error as exc:
        raise MalformedResource("resource ciphertext is not base64") from exc
    key = apiv3_key.encode()
    # An empty associated_data is still authenticated: pass b"", never skip it.
    if algorithm == "AEAD_AES_256_GCM":
        return aes_gcm_decrypt(key, nonce.encode(), sealed, aad.encode())
    if algorithm == "AEAD_SM4_GCM":
        return sm4_gcm_decrypt(sm4_key_from_secret(key), nonce.encode(), sealed, aad.encode())
    raise MalformedResource("unsupported resource algorithm")


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CallbackRejected(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise CallbackRejected(f"{what} is not a JSON object")
    return value


def _kind(event_type: Any) -> NotificationKind:
    for prefix, kind in _KIND_BY_EVENT_PREFIX.items():
        if isinstance(event_type, str) and event_type.startswith(prefix):
            return kind
    raise CallbackRejected("unsupported event_type")


def parse_callback(credentials: WeChatCredentials, callback: InboundCallback) -> Notification:
    # The window is measured against when the hub received the request, so a callback processed
    # asynchronously (acknowledged first, applied later) is judged by its arrival, not by queue delay.
    received_at = callback.received_at
    if received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=UTC)
    try:
        check_signed(callback.headers, callback.body, credentials.platform_keys, received_at)
    except SignatureInvalid as exc:
        raise CallbackRejected(f"signature check failed: {exc}") from None
    envelope = _json_object(callback.body, "callback body")
    kind = _kind(envelope.get("event_type"))
    resource = envelope.get("resource")
    event_id = envelope.get("id")
    if not isinstance(resource, Mapping) or not isinstance(event_id, str) or not event_id:
        raise CallbackRejected("callback envelope lacks id or resource")
    try:
        plaintext = decrypt_resource(resource, credentials.apiv3_key.reveal())
    except (DecryptionFailed, ValueError) as exc:
        raise CallbackRejected(f"resource decryption failed: {exc}") from None
    payload = _json_object(plaintext, "decrypted resource")
    return _notification(kind, event_id, payload)


def _notification(kind: NotificationKind, event_id: str, payload: dict[str, Any]) -> Notification:
    mchid = payload.get("mchid")
    object_key = "out_trade_no" if kind is NotificationKind.PAYMENT else "out_refund_no"
    object_id = payload.get(object_key)
    if not isinstance(mchid, str) or not mchid or not isinstance(object_id, str) or not object_id:
        raise CallbackRejected(f"decrypted resource lacks mchid or {object_key}")
    try:
        payment = payment_status(payload) if kind is NotificationKind.PAYMENT else None
        refund = refund_status(payload) if kind is NotificationKind.REFUND else None
    except ValueError as exc:
        raise CallbackRejected(f"decrypted resource has a bad amount: {exc}") from None
    appid = payload.get("appid")
    return Notification(
        kind=kind,
        event_id=event_id,
        channel_merchant_id=mchid,
        channel_app_id=appid if isinstance(appid, str) and appid else None,
        object_id=object_id,
        payment=payment,
        refund=refund,
        raw=payload,
    )


def acknowledgement(ok: bool, *, retry_later: bool = False) -> CallbackReply:
    """204 on success; otherwise 4XX/5XX — WeChat decides by the status code, not by the body."""
    if ok:
        return CallbackReply(status=204)
    status, message = (500, "retry later") if retry_later else (400, "rejected")
    body = json.dumps({"code": "FAIL", "message": message}).encode()
    return CallbackReply(status=status, body=body, headers={"Content-Type": "application/json"})
