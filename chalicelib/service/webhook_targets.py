"""Where the hub may send merchant webhooks. In prod, never to private, loopback or link-local addresses (SSRF)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from chalicelib.config.settings import settings
from chalicelib.domain.errors import InvalidRequest


def check_notify_url(url: str, *, param: str = "notify_url", resolve: bool = True) -> str | None:
    """Refuse a target the hub must not call. In prod, returns the checked address to connect to.

    Connecting to exactly the address that was checked (not resolving the name again) is what defeats DNS
    rebinding: a name that answers a public address to the check and a private one to the connection.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"{param} must be an absolute http(s) URL", param=param)
    if not settings().is_prod:
        return None
    if parts.scheme != "https":
        raise InvalidRequest(f"{param} must use https", param=param)
    addresses = _addresses(parts.hostname, resolve, param)
    for address in addresses:
        if not _public(address):
            raise InvalidRequest(f"{param} resolves to a private, loopback or link-local address", param=param)
    return str(addresses[0]) if addresses else None


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
