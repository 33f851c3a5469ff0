"""Runtime settings, read once from the environment. Names of resources derive from the stage."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from chalicelib.config.names import StageNames

# How long a warm function may trust what it read about an API key or a merchant's status. A revoked key or a
# suspended merchant stops working on every warm function within this, plus one consistent read: the
# deployed functions use this default (infra sets no override), and tests measure it. Capped so that no
# configuration can make revocation slower than the promised 5 s.
AUTH_CACHE_TTL_S = 2.0
AUTH_CACHE_TTL_MAX_S = 4.0


@dataclass(frozen=True)
class Settings:
    stage: str
    names: StageNames
    public_base_url: str  # where channels reach our callbacks, e.g. https://pay.example.com
    region: str
    secrets_ttl_s: int = 60
    card_cipher: str = "aes-256-gcm"  # or "sm4-gcm": how the card vault encrypts new cards (old ones keep theirs)
    auth_cache_ttl_s: float = AUTH_CACHE_TTL_S
    # Only the local stage may deliver webhooks to loopback (its receiver runs on 127.0.0.1), and only when
    # this is set explicitly; every other address rule applies there too.
    webhook_allow_loopback: bool = False

    @property
    def is_prod(self) -> bool:
        return self.stage == "prod"

    @property
    def is_deployed(self) -> bool:
        """dev, test and prod run in AWS from the same CDK app: every guard applies to each of them."""
        return self.stage != "local"


def _flag(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(f"{name} must be true or false, not {value!r}")


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Settings from an environment; refuses a combination that would weaken a deployed stage."""
    stage = environ.get("PAYHUB_STAGE", "local")
    allow_loopback = _flag(environ, "PAYHUB_WEBHOOK_ALLOW_LOOPBACK")
    if allow_loopback and stage != "local":
        raise ValueError(f"PAYHUB_WEBHOOK_ALLOW_LOOPBACK is only accepted on the local stage, not {stage!r}")
    auth_ttl = float(environ.get("PAYHUB_AUTH_CACHE_TTL_S", str(AUTH_CACHE_TTL_S)))
    if not 0 <= auth_ttl <= AUTH_CACHE_TTL_MAX_S:
        raise ValueError(f"PAYHUB_AUTH_CACHE_TTL_S must be between 0 and {AUTH_CACHE_TTL_MAX_S}, not {auth_ttl}")
    return Settings(
        stage=stage,
        names=StageNames(stage),
        public_base_url=environ.get("PAYHUB_PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
        region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "ap-east-1",
        secrets_ttl_s=int(environ.get("PAYHUB_SECRETS_TTL_S", "60")),
        card_cipher=environ.get("PAYHUB_CARD_CIPHER", "aes-256-gcm"),
        auth_cache_ttl_s=auth_ttl,
        webhook_allow_loopback=allow_loopback,
    )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings(os.environ)
