"""Runtime settings, read once from the environment. Names of resources derive from the stage."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from chalicelib.config.names import StageNames


@dataclass(frozen=True)
class Settings:
    stage: str
    names: StageNames
    public_base_url: str  # where channels reach our callbacks, e.g. https://pay.example.com
    region: str
    secrets_ttl_s: int = 60
    card_cipher: str = "aes-256-gcm"  # or "sm4-gcm": how the card vault encrypts new cards (old ones keep theirs)

    @property
    def is_prod(self) -> bool:
        return self.stage == "prod"


@lru_cache(maxsize=1)
def settings() -> Settings:
    stage = os.environ.get("PAYHUB_STAGE", "local")
    return Settings(
        stage=stage,
        names=StageNames(stage),
        public_base_url=os.environ.get("PAYHUB_PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "ap-east-1",
        secrets_ttl_s=int(os.environ.get("PAYHUB_SECRETS_TTL_S", "60")),
        card_cipher=os.environ.get("PAYHUB_CARD_CIPHER", "aes-256-gcm"),
    )
