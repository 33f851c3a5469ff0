"""Where merchant webhooks may go (SSRF): every deployed stage guards, every resolved address is checked after
unwrapping any IPv4 address it carries, and only the local stage reaches loopback, by explicit setting."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator

import pytest

from chalicelib.config import settings as settings_module
from chalicelib.domain.errors import InvalidRequest
from chalicelib.service.webhook_targets import TargetRefused, TargetUnresolved, check_notify_url, embedded_ipv4

DEPLOYED = ("dev", "test", "prod")


@pytest.fixture
def use_stage(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    def use(stage: str, *, allow_loopback: bool = False) -> None:
        monkeypatch.setenv("PAYHUB_STAGE", stage)
        if stage != "local":  # a deployed stage refuses to start without its https public URL
            monkeypatch.setenv("PAYHUB_PUBLIC_BASE_URL", "https://pay.example.com")
        if allow_loopback:
            monkeypatch.setenv("PAYHUB_WEBHOOK_ALLOW_LOOPBACK", "true")
        else:
            monkeypatch.delenv("PAYHUB_WEBHOOK_ALLOW_LOOPBACK", raising=False)
        settings_module.settings.cache_clear()

    yield use
    monkeypatch.undo()
    settings_module.settings.cache_clear()  # the next caller reads the real environment again


@pytest.fixture
def prod(use_stage: Callable[..., None]) -> None:
    use_stage("prod")


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """IP literals (and inet_aton's legacy spellings) must be decided without DNS; any lookup fails the test."""

    def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError(f"unexpected DNS lookup {args}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def answers(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]]) -> None:
    def fake_getaddrinfo(host: str, port: object, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, 0))
                for ip in table[host]]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)


# Every spelling of an address the hub must never call, and why. The first five passed the old prod guard.
REFUSED_HOSTS = [
    ("[2002:a9fe:a9fe::]", "6to4 of 169.254.169.254 (metadata)"),
    ("[2002:7f00:1::]", "6to4 of 127.0.0.1"),
    ("[::127.0.0.1]", "IPv4-compatible loopback"),
    ("[::a9fe:a9fe]", "IPv4-compatible metadata"),
    ("[64:ff9b:1::a9fe:a9fe]", "local-use NAT64 /96 of the metadata address"),
    ("[64:ff9b:1:a9fe:a9:fe00::]", "local-use NAT64 /48 layout of 169.254.169.254"),
    ("[64:ff9b:1:8:800:808::]", "local-use NAT64 is not global even around a public IPv4 address"),
    ("[64:ff9b::a9fe:a9fe]", "well-known NAT64 of the metadata address"),
    ("[64:ff9b::7f00:1]", "well-known NAT64 of loopback"),
    ("[::ffff:127.0.0.1]", "IPv4-mapped loopback"),
    ("[::ffff:169.254.169.254]", "IPv4-mapped metadata"),
    ("[::ffff:a9fe:a9fe]", "IPv4-mapped metadata, hex"),
    ("[::ffff:0:a9fe:a9fe]", "IPv4-translated metadata"),
    ("[2001:0:4136:e378:8000:63bf:80ff:fffe]", "Teredo whose client is 127.0.0.1 (XOR-ed)"),
    ("[2001:0:a9fe:a9fe::1]", "Teredo whose server is the metadata address"),
    ("[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "Teredo with public ends: 2001::/23 is not global"),
    ("[2001:db8::5efe:a9fe:a9fe]", "ISATAP of the metadata address"),
    ("[2600:1f18::200:5efe:a00:1]", "ISATAP of 10.0.0.1 under a global prefix"),
    ("[::1]", "IPv6 loopback"), ("[::]", "unspecified"), ("[fe80::1]", "link-local"),
    ("[fc00::1]", "unique local"), ("[fd00:ec2::254]", "EC2 IPv6 metadata (unique local)"),
    ("[fec0::1]", "site-local"), ("[ff02::1]", "multicast"), ("[100::1]", "discard-only"),
    ("[2001:db8::1]", "documentation"), ("[3fff::1]", "documentation (2024)"), ("[5f00::1]", "SRv6"),
    ("[4000::1]", "outside 2000::/3"),
    ("127.0.0.1", "loopback"), ("127.1.2.3", "loopback /8"), ("10.0.0.1", "private"), ("172.16.5.4", "private"),
    ("192.168.1.1", "private"), ("169.254.169.254", "metadata"), ("169.254.170.2", "ECS task metadata"),
    ("0.0.0.0", "this network"), ("100.64.0.1", "CGNAT"), ("192.0.0.170", "IETF"), ("192.0.2.1", "TEST-NET-1"),
    ("198.18.0.1", "benchmarking"), ("198.51.100.1", "TEST-NET-2"), ("203.0.113.1", "TEST-NET-3"),
    ("192.88.99.1", "6to4 relay"), ("224.0.0.1", "multicast"), ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("2130706433", "decimal loopback"), ("0x7f.0.0.1", "hex loopback"), ("0177.0.0.1", "octal loopback"),
    ("127.1", "short loopback"), ("0xa9fea9fe", "hex metadata"),
]
PUBLIC_HOSTS = ["8.8.8.8", "1.1.1.1:8443", "[2606:4700::1111]", "[::ffff:8.8.8.8]", "[64:ff9b::808:808]",
                "[2002:808:808::1]", "93.184.216.34"]


@pytest.mark.parametrize("stage", DEPLOYED)
@pytest.mark.parametrize(("host", "why"), REFUSED_HOSTS, ids=[h for h, _ in REFUSED_HOSTS])
def test_every_deployed_stage_refuses_every_spelling(use_stage, no_dns, stage: str, host: str, why: str) -> None:
    use_stage(stage)
    with pytest.raises(TargetRefused) as exc:
        check_notify_url(f"https://{host}/hook")
    assert exc.value.param == "notify_url" and exc.value.http_status == 400, why


@pytest.mark.parametrize(("host", "why"), REFUSED_HOSTS, ids=[h for h, _ in REFUSED_HOSTS])
def test_the_local_stage_refuses_them_too_without_the_loopback_setting(use_stage, no_dns, host: str,
                                                                       why: str) -> None:
    use_stage("local")
    with pytest.raises(TargetRefused):
        check_notify_url(f"http://{host}/hook")


@pytest.mark.parametrize("stage", DEPLOYED)
@pytest.mark.parametrize("host", PUBLIC_HOSTS)
def test_public_addresses_pass_in_every_stage(use_stage, no_dns, stage: str, host: str) -> None:
    use_stage(stage)
    target = check_notify_url(f"https://{host}/hook?x=1")
    assert len(target.addresses) == 1 and target.path == "/hook?x=1"


def test_the_loopback_setting_admits_plain_loopback_only(use_stage, no_dns) -> None:
    use_stage("local", allow_loopback=True)
    assert check_notify_url("http://127.0.0.1:9000/hook").addresses == ("127.0.0.1",)
    assert check_notify_url("http://[::1]:9000/hook").addresses == ("::1",)
    for sneaky in ("[::ffff:127.0.0.1]", "[2002:7f00:1::]", "[::127.0.0.1]", "169.254.169.254", "10.0.0.1",
                   "[64:ff9b:1::a9fe:a9fe]"):
        with pytest.raises(TargetRefused):
            check_notify_url(f"http://{sneaky}/hook")


@pytest.mark.parametrize("stage", DEPLOYED)
def test_the_loopback_setting_is_refused_outside_the_local_stage(monkeypatch, stage: str) -> None:
    environ = {"PAYHUB_STAGE": stage, "PAYHUB_WEBHOOK_ALLOW_LOOPBACK": "true"}
    with pytest.raises(ValueError, match="only accepted on the local stage"):
        settings_module.load_settings(environ)
    deployed = {"PAYHUB_STAGE": stage, "PAYHUB_PUBLIC_BASE_URL": "https://pay.example.com"}
    assert settings_module.load_settings(deployed).webhook_allow_loopback is False


@pytest.mark.parametrize("stage", DEPLOYED)
@pytest.mark.parametrize("url", ["http://8.8.8.8/hook", "http://example.com/hook"])
def test_deployed_stages_refuse_plain_http(use_stage, no_dns, stage: str, url: str) -> None:
    use_stage(stage)
    with pytest.raises(TargetRefused, match="https"):
        check_notify_url(url, param="webhook_url")


@pytest.mark.parametrize("url", ["ftp://8.8.8.8/", "https:///nohost", "8.8.8.8/hook", "", "javascript:alert(1)"])
def test_malformed_urls_refused_in_any_stage(use_stage, url: str) -> None:
    use_stage("local", allow_loopback=True)
    with pytest.raises(InvalidRequest) as exc:
        check_notify_url(url, param="webhook_url")
    assert exc.value.param == "webhook_url"


def test_every_answer_is_checked_and_one_private_answer_refuses(prod, monkeypatch) -> None:
    answers(monkeypatch, {"public.example": ["93.184.216.34", "2606:4700::1111"],
                          "sneaky.example": ["93.184.216.34", "10.1.2.3"],
                          "sneaky6.example": ["93.184.216.34", "2002:a9fe:a9fe::1"]})
    assert check_notify_url("https://public.example/hook").addresses == ("93.184.216.34", "2606:4700::1111")
    for host in ("sneaky.example", "sneaky6.example"):
        with pytest.raises(TargetRefused, match="does not call"):
            check_notify_url(f"https://{host}/hook")


def test_an_unresolvable_name_is_its_own_error_naming_the_param(prod, monkeypatch) -> None:
    answers(monkeypatch, {})
    with pytest.raises(TargetUnresolved) as exc:
        check_notify_url("https://does-not-resolve.example/hook", param="webhook_url")
    assert exc.value.param == "webhook_url" and not isinstance(exc.value, TargetRefused)


def test_host_header_keeps_a_non_default_port(prod, no_dns) -> None:
    assert check_notify_url("https://8.8.8.8/").host_header == "8.8.8.8"
    assert check_notify_url("https://8.8.8.8:8443/").host_header == "8.8.8.8:8443"
    assert check_notify_url("https://[2606:4700::1111]:8443/").host_header == "[2606:4700::1111]:8443"


@pytest.mark.parametrize(("address", "form", "inner"), [
    ("::ffff:a9fe:a9fe", "IPv4-mapped", "169.254.169.254"),
    ("::a9fe:a9fe", "IPv4-compatible", "169.254.169.254"),
    ("64:ff9b::a9fe:a9fe", "NAT64", "169.254.169.254"),
    ("64:ff9b:1::a9fe:a9fe", "local-use NAT64 /96", "169.254.169.254"),
    ("64:ff9b:1:a9fe:a9:fe00::", "local-use NAT64 /48", "169.254.169.254"),
    ("2002:a9fe:a9fe::", "6to4", "169.254.169.254"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo client", "192.0.2.45"),  # RFC 4380's own example
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo server", "65.54.227.120"),
    ("fe80::5efe:a00:1", "ISATAP", "10.0.0.1"),
])
def test_embedded_ipv4_is_found_in_every_form(address: str, form: str, inner: str) -> None:
    assert (form, ipaddress.IPv4Address(inner)) in embedded_ipv4(ipaddress.IPv6Address(address))
