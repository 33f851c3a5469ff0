"""boto3 clients, created lazily once per process (cold start pays only for what a function uses).

``AWS_ENDPOINT_URL`` (honoured by boto3 itself) points every client at moto server locally, so tests and
the local stack exercise the real boto3 wire path.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.config.settings import settings

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)


@cache
def client(service: str) -> Any:
    session = boto3.session.Session()
    return session.client(service, region_name=settings().region, config=_CONFIG)  # type: ignore[call-overload]


def reset_clients() -> None:
    """For tests that switch endpoints or stages."""
    client.cache_clear()
