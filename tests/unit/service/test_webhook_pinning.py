"""A webhook connects to exactly an address that passed the SSRF check (no second DNS lookup), in every stage
and for http as well as https; it never follows a redirect; a refused target is final, not an error."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.config import settings as settings_module
from chalicelib.service import webhooks


def _use(monkeypatch: pytest.MonkeyPatch, stage: str, allow_loopback: bool = False) -> Iterator[None]:
    monkeypatch.setenv("PAYHUB_STAGE", stage)
    if stage != "local":  # a deployed stage refuses to start without its https public URL
        monkeypatch.setenv("PAYHUB_PUBLIC_BASE_URL", "https://pay.example.com")
    if allow_loopback:
        monkeypatch.setenv("PAYHUB_WEBHOOK_ALLOW_LOOPBACK", "true")
    else:
        monkeypatch.delenv("PAYHUB_WEBHOOK_ALLOW_LOOPBACK", raising=False)
    settings_module.settings.cache_clear()
    yield
    monkeypatch.undo()
    settings_module.settings.cache_clear()


@pytest.fixture
def prod(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from _use(monkeypatch, "prod")


@pytest.fixture
def dev(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from _use(monkeypatch, "dev")


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from _use(monkeypatch, "local", allow_loopback=True)


class _Secret:
    def reveal(self) -> str:
        return "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class _Response:
    def __init__(self, status: int = 204) -> None:
        self.status = status


EVENT = {"event_id": "evt_1", "merchant_id": "mch_1", "type": "payment.succeeded",
         "created_at": "2026-01-01T00:00:00.000Z", "data": {"id": "pay_1"}}


def _pools(monkeypatch: pytest.MonkeyPatch, status: int = 204,
           refuse: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Record every connection pool opened (https and http) and what was sent through it."""
    opened: list[dict[str, Any]] = []

    def pool_class(scheme: str) -> type:
        class Pool:
            def __init__(self, host: str, **kwargs: Any) -> None:
                opened.append({"scheme": scheme, "host": host, **kwargs})

            def urlopen(self, method: str, path: str, **kwargs: Any) -> _Response:
                opened[-1].update(method=method, path=path, headers=kwargs["headers"], redirect=kwargs["redirect"])
                if opened[-1]["host"] in refuse:
                    raise webhooks.urllib3.exceptions.NewConnectionError(None, "refused")  # type: ignore[arg-type]
                return _Response(status)

            def close(self) -> None:
                return None

        return Pool

    monkeypatch.setattr(webhooks.urllib3, "HTTPSConnectionPool", pool_class("https"))
    monkeypatch.setattr(webhooks.urllib3, "HTTPConnectionPool", pool_class("http"))
    monkeypatch.setattr(webhooks.config_repo, "webhook_secrets", lambda merchant_id: [_Secret()])
    return opened


def _resolver(monkeypatch: pytest.MonkeyPatch, *rounds: list[str]) -> None:
    answers = iter(rounds)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, 0)) for ip in next(answers)])


def test_webhook_connects_to_the_checked_address_with_the_name_for_tls(prod, monkeypatch):
    _resolver(monkeypatch, ["93.184.216.34"], ["10.0.0.7"])  # a rebinding resolver: the 2nd answer is private
    opened = _pools(monkeypatch)
    sent = webhooks._post("https://merchant.example/hooks?x=1", EVENT)
    assert (sent.status_code, sent.error, sent.refused, sent.address) == (204, None, False, "93.184.216.34")
    [call] = opened
    assert call["scheme"] == "https" and call["host"] == "93.184.216.34" and call["port"] == 443
    assert call["server_hostname"] == call["assert_hostname"] == "merchant.example"
    assert call["path"] == "/hooks?x=1" and call["headers"]["host"] == "merchant.example"


def test_plain_http_is_pinned_too_where_it_is_allowed(local, monkeypatch):
    _resolver(monkeypatch, ["127.0.0.1"], ["10.0.0.7"])
    opened = _pools(monkeypatch)
    assert webhooks._post("http://localhost:8200/hook", EVENT).status_code == 204
    [call] = opened
    assert (call["scheme"], call["host"], call["port"]) == ("http", "127.0.0.1", 8200)
    assert call["headers"]["host"] == "localhost:8200"


def test_redirects_are_never_followed(dev, monkeypatch):
    _resolver(monkeypatch, ["93.184.216.34"])
    opened = _pools(monkeypatch, status=302)
    sent = webhooks._post("https://merchant.example/hook", EVENT)
    assert sent.status_code == 302 and sent.error == "HTTP 302" and not sent.refused
    assert [call["redirect"] for call in opened] == [False]


def test_the_next_checked_address_is_tried_when_one_refuses_the_connection(prod, monkeypatch):
    _resolver(monkeypatch, ["93.184.216.34", "93.184.216.35"])
    opened = _pools(monkeypatch, refuse=("93.184.216.34",))
    sent = webhooks._post("https://merchant.example/hook", EVENT)
    assert sent.status_code == 204 and sent.address == "93.184.216.35"
    assert [call["host"] for call in opened] == ["93.184.216.34", "93.184.216.35"]


@pytest.mark.parametrize("answer", ["169.254.169.254", "10.0.0.7", "127.0.0.1"])
def test_a_name_resolving_to_a_refused_address_is_never_called(dev, monkeypatch, answer):
    _resolver(monkeypatch, [answer])
    monkeypatch.setattr(webhooks.urllib3, "HTTPSConnectionPool", None)  # any connection attempt would crash
    monkeypatch.setattr(webhooks.urllib3, "HTTPConnectionPool", None)
    sent = webhooks._post("https://metadata.example/", EVENT)
    assert sent.status_code is None and sent.refused and "does not call" in (sent.error or "")


def test_a_name_that_does_not_resolve_is_an_ordinary_failure_retried_later(prod, monkeypatch):
    def fail(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    sent = webhooks._post("https://gone.example/", EVENT)
    assert sent.status_code is None and not sent.refused and "does not resolve" in (sent.error or "")
