"""Runtime settings, read once from the environment. Names of resources derive from the stage."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import urlsplit

from chalicelib.config.names import StageNames
from chalicelib.domain.value_class import value_class

# How long a warm function may trust what it read about an API key or a merchant's status. A revoked key or a
# suspended merchant stops working on every warm function within this, plus one consistent read: the
# deployed functions use this default (infra sets no override), and tests measure it. Capped so that no
# configuration can make revocation slower than the promised 5 s.
AUTH_CACHE_TTL_S = 2.0
AUTH_CACHE_TTL_MAX_S = 4.0
LOCAL_PUBLIC_BASE_URL = "http://127.0.0.1:8000"  # `make run`'s API; only the local stage may fall back to it


class SettingsError(ValueError):
    """A deployed function's environment is incomplete or unsafe: it refuses to start rather than run wrong."""


@value_class
class Settings:
    """The configuration a process runs with, read from its environment (``load_settings``)."""

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
    # Deployed: the stage's reconciliation bucket (its name carries the account and region, so only the stack
    # knows it). Local: None, the stage's plain bucket name is used.
    recon_bucket_name: str | None = None

    @property
    def is_prod(self) -> bool:
        return self.stage == "prod"

    @property
    def is_deployed(self) -> bool:
        """dev, test and prod run in AWS from the same CDK app: every guard applies to each of them."""
        return self.stage != "local"

    @property
    def recon_bucket(self) -> str:
        """Where statements and reports go. A deployed function that was given no bucket must not guess one."""
        if self.recon_bucket_name:
            return self.recon_bucket_name
        if self.is_deployed:
            raise SettingsError(f"PAYHUB_RECON_BUCKET is not set: the {self.stage} stack gives it to the functions "
                                "that touch reconciliation files, and this one was not given it")
        return self.names.recon_bucket


def _flag(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(f"{name} must be true or false, not {value!r}")


def _public_base_url(environ: Mapping[str, str], stage: str) -> str:
    """Where channels call back. Deployed stages get it from the stack (https://<the stage's custom domain>);
    without it every channel would be told to call 127.0.0.1 and no callback would ever arrive."""
    value = environ.get("PAYHUB_PUBLIC_BASE_URL", "").strip()
    if stage == "local":
        return (value or LOCAL_PUBLIC_BASE_URL).rstrip("/")
    if not value:
        raise SettingsError(f"PAYHUB_PUBLIC_BASE_URL is required on the {stage} stage (https://<custom domain>, "
                            "set by the stack from its DomainName parameter); refusing to start without it")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise SettingsError(f"PAYHUB_PUBLIC_BASE_URL must be an https URL on the {stage} stage, "
                            f"not {value!r}; refusing to start")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise SettingsError(f"PAYHUB_PUBLIC_BASE_URL must be https://host[/path] only on the {stage} stage; "
                            "refusing to start")
    return value.rstrip("/")


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Settings from an environment; refuses a combination that would weaken a deployed stage.

    Every setting a deployed function reads comes from its template (infra/stack.py): ``PAYHUB_STAGE``,
    ``PAYHUB_PUBLIC_BASE_URL`` and, for the functions that need it, ``PAYHUB_RECON_BUCKET``; the others
    have defaults that hold in every stage. ``AWS_REGION`` is set by Lambda itself.
    """
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
        public_base_url=_public_base_url(environ, stage),
        region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "ap-east-1",
        secrets_ttl_s=int(environ.get("PAYHUB_SECRETS_TTL_S", "60")),
        card_cipher=environ.get("PAYHUB_CARD_CIPHER", "aes-256-gcm"),
        auth_cache_ttl_s=auth_ttl,
        webhook_allow_loopback=allow_loopback,
        recon_bucket_name=environ.get("PAYHUB_RECON_BUCKET") or None,
    )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings(os.environ)
