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
    for address in _addresses(parts.hostname, resolve, param):
        if not _public(address):
            raise InvalidRequest("notify_url resolves to a private, loopback or link-local address", param=param)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Global, and not a private address in IPv6 clothing (IPv4-mapped or NAT64-embedded)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped.is_global
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF).is_global
    return address.is_global


def _addresses(host: str, resolve: bool, param: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        if not resolve:
            return []
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise InvalidRequest(f"{param} host does not resolve", param=param) from exc
    return [ipaddress.ip_address(info[4][0]) for info in infos]
