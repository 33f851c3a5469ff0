"""In prod a webhook connects to exactly the address that passed the SSRF check (no second DNS lookup)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.config import settings as settings_module
from chalicelib.service import webhooks


@pytest.fixture
def prod(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PAYHUB_STAGE", "prod")
    settings_module.settings.cache_clear()
    yield
    monkeypatch.undo()
    settings_module.settings.cache_clear()


class _Secret:
    def reveal(self) -> str:
        return "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class _Response:
    status = 204


def test_webhook_connects_to_the_checked_address_with_the_name_for_tls(prod, monkeypatch):
    answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 0))],
                    [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 0))]])  # a rebinding resolver
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: next(answers))
    monkeypatch.setattr(webhooks.config_repo, "webhook_secret", lambda merchant_id: _Secret())
    opened: list[dict[str, Any]] = []

    class Pool:
        def __init__(self, host: str, **kwargs: Any) -> None:
            opened.append({"host": host, **kwargs})

        def urlopen(self, method: str, path: str, **kwargs: Any) -> _Response:
            opened[-1].update(method=method, path=path, headers=kwargs["headers"])
            return _Response()

        def close(self) -> None:
            return None

    monkeypatch.setattr(webhooks.urllib3, "HTTPSConnectionPool", Pool)
    event = {"event_id": "evt_1", "merchant_id": "mch_1", "type": "payment.succeeded",
             "created_at": "2026-01-01T00:00:00.000Z", "data": {"id": "pay_1"}}
    assert webhooks._post("https://merchant.example/hooks?x=1", event) == (204, None)
    [call] = opened
    assert call["host"] == "93.184.216.34" and call["port"] == 443
    assert call["server_hostname"] == call["assert_hostname"] == "merchant.example"
    assert call["path"] == "/hooks?x=1" and call["headers"]["host"] == "merchant.example"


def test_a_name_resolving_to_a_private_address_is_never_called(prod, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo",
                        lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 0))])
    monkeypatch.setattr(webhooks.urllib3, "HTTPSConnectionPool", None)  # any connection attempt would crash
    status, error = webhooks._post("https://metadata.example/", {"event_id": "e", "merchant_id": "m"})
    assert status is None and "private" in error
