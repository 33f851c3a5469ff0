"""Where merchant webhooks may go. In prod: https only, and never private, loopback or link-local (SSRF)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from chalicelib.config import settings as settings_module
from chalicelib.domain.errors import InvalidRequest
from chalicelib.service.webhook_targets import check_notify_url


def _use_stage(monkeypatch: pytest.MonkeyPatch, stage: str) -> Iterator[None]:
    monkeypatch.setenv("PAYHUB_STAGE", stage)
    settings_module.settings.cache_clear()
    yield
    monkeypatch.undo()
    settings_module.settings.cache_clear()  # the next caller reads the real environment again


@pytest.fixture
def prod(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from _use_stage(monkeypatch, "prod")


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from _use_stage(monkeypatch, "local")


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """IP literals must be decided without DNS; any lookup fails the test."""

    def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError(f"unexpected DNS lookup {args}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_fixture_really_is_prod(prod: None) -> None:
    assert settings_module.settings().is_prod


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/hook", "https://127.0.0.1:8443/hook", "https://10.0.0.1/hook", "https://172.16.5.4/",
    "https://192.168.1.1/", "https://169.254.169.254/latest/meta-data/", "https://[::1]/hook",
    "https://[fe80::1]/", "https://[fc00::1]/", "https://0.0.0.0/", "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:169.254.169.254]/", "https://100.64.0.1/",
])
def test_prod_refuses_non_global_ip_literals(prod: None, no_dns: None, url: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        check_notify_url(url)
    assert exc.value.param == "notify_url"


@pytest.mark.parametrize("url", ["http://203.0.113.10/hook", "http://8.8.8.8/hook", "http://example.com/hook"])
def test_prod_refuses_plain_http(prod: None, no_dns: None, url: str) -> None:
    with pytest.raises(InvalidRequest, match="https"):
        check_notify_url(url, param="webhook_url")


@pytest.mark.parametrize("url", ["https://8.8.8.8/hook", "https://1.1.1.1:8443/x?y=1", "https://[2606:4700::1111]/"])
def test_prod_accepts_public_ip_literals(prod: None, no_dns: None, url: str) -> None:
    check_notify_url(url)


@pytest.mark.parametrize("url", ["ftp://8.8.8.8/", "https:///nohost", "8.8.8.8/hook", "", "javascript:alert(1)"])
def test_malformed_urls_refused_in_any_stage(local: None, url: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        check_notify_url(url, param="webhook_url")
    assert exc.value.param == "webhook_url"


def test_param_names_the_field_checked(prod: None, no_dns: None) -> None:
    with pytest.raises(InvalidRequest) as exc:
        check_notify_url("https://10.0.0.1/", param="webhook_url")
    assert exc.value.param == "webhook_url"


def test_prod_resolves_names_and_refuses_private_answers(prod: None, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"public.example": ["93.184.216.34"], "sneaky.example": ["93.184.216.34", "10.1.2.3"]}

    def fake_getaddrinfo(host: str, port: object) -> list[tuple[object, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, 0)) for ip in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    check_notify_url("https://public.example/hook")
    with pytest.raises(InvalidRequest):
        check_notify_url("https://sneaky.example/hook")  # one private answer is enough to refuse


def test_local_stage_allows_loopback_http(local: None, no_dns: None) -> None:
    check_notify_url("http://127.0.0.1:9000/hook")


def test_unresolvable_host_error_names_the_callers_param(prod: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(InvalidRequest) as exc:
        check_notify_url("https://does-not-resolve.example/hook", param="webhook_url")
    assert exc.value.param == "webhook_url"
