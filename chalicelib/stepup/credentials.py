"""Provider credentials and the one-time-code hashing key: one secret, ``payhub/<stage>/risk/providers``, cached
like every secret (a rotated key is live within the cache time).

  {"sift_api_key": "...", "aliyun_access_key_id": "...", "aliyun_access_key_secret": "...",
   "tencent_secret_id": "...", "tencent_secret_key": "...", "otp_hmac_key": "<32+ random bytes, hex>"}
"""

from __future__ import annotations

from typing import Any

from chalicelib.config.cache import TtlCache
from chalicelib.config.settings import settings

_cache: TtlCache[Any] = TtlCache(ttl_s=settings().secrets_ttl_s)


def _load() -> dict[str, Any]:
    from chalicelib.storage.config_repo import get_secret

    try:
        return get_secret(settings().names.risk_providers_secret)
    except KeyError:
        return {}


def credential(name: str) -> str | None:
    value = _cache.get("providers", _load).get(name)
    return str(value) if value else None


def invalidate_cache() -> None:
    _cache.invalidate()
