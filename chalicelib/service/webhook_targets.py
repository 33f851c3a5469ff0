"""Where the hub may send merchant webhooks. In prod, never to private, loopback or link-local addresses (SSRF)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from chalicelib.config.settings import settings
from chalicelib.domain.errors import InvalidRequest


def check_notify_url(url: str, *, param: str = "notify_url", resolve: bool = True) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("notify_url must be an absolute http(s) URL", param=param)
    if not settings().is_prod:
        return
    if parts.scheme != "https":
        raise InvalidRequest("notify_url must use https", param=param)
    for address in _addresses(parts.hostname, resolve):
        if not address.is_global:
            raise InvalidRequest("notify_url resolves to a private, loopback or link-local address", param=param)


def _addresses(host: str, resolve: bool) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        if not resolve:
            return []
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise InvalidRequest("notify_url host does not resolve", param="notify_url") from exc
    return [ipaddress.ip_address(info[4][0]) for info in infos]
