"""The local stack's risk control: the providers' sandbox credentials as the stage's risk secret, and a starter rule
document whose rules all run in shadow mode (decided and recorded on every payment, never enforced) until an
operator puts a version that enforces them (``payhub risk put-rules``)."""

from __future__ import annotations

import secrets
from typing import Any

PORT = 8107

STARTER_RULES: list[dict[str, Any]] = [
    {"id": "blocked", "expr": "lists.blocked", "action": "deny", "score": 100, "reason": "on a block list"},
    {"id": "allowed", "expr": "lists.allowed", "action": "allow", "reason": "on an allow list"},
    {"id": "over-limit", "expr": "limits.over", "action": "deny", "score": 80, "reason": "over the amount limit"},
    {"id": "payer-burst", "expr": "velocity.payer.count_10m >= 5", "action": "challenge",
     "step_up": ["webauthn", "sms"], "score": 40, "reason": "many payments in 10 minutes"},
    {"id": "elsewhere", "expr": "city.unusual && amount >= 50000", "action": "challenge",
     "step_up": ["webauthn", "face", "sms"], "score": 30, "reason": "large amount from an unusual city"},
    {"id": "new-device-large", "expr": "device.new && payer.known && amount >= 100000", "action": "challenge",
     "step_up": ["webauthn", "face", "sms"], "score": 30, "reason": "new device, large amount"},
    {"id": "provider-high", "expr": "provider.score >= 90", "action": "review", "on_error": "open", "score": 20,
     "reason": "risk service scores it high"},
    {"id": "refund-heavy", "expr": "refund.payer_ratio_24h > 0.8", "action": "review", "operations": ["refund"],
     "reason": "payer refunds most of what they pay"},
]


def provision(box: Any) -> int:
    from chalicelib.config.settings import settings
    from chalicelib.risk import store
    from chalicelib.storage.config_repo import put_secret

    put_secret(settings().names.risk_providers_secret, {
        "sift_api_key": box.sift_api_key, "aliyun_access_key_id": box.aliyun_id,
        "aliyun_access_key_secret": box.aliyun_secret, "tencent_secret_id": box.tencent_id,
        "tencent_secret_key": box.tencent_key, "otp_hmac_key": secrets.token_hex(32)})
    return store.put_document({
        "rules": [{**rule, "mode": "shadow"} for rule in STARTER_RULES],
        "providers": {"risk_base_url": box.url, "risk_budget_ms": 300, "sms_base_url": f"{box.url}/sms",
                      "sms_sign_name": "PayHub", "sms_template_code": "SMS_0001",
                      "face_base_url": f"{box.url}/faceid", "face_rule_id": "1"},
    }, put_by="make run")
