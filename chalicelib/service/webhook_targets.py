"""Where the hub may send merchant webhooks: the address policy against server-side request forgery (SSRF).

A merchant chooses the URL, the hub's worker makes the request from inside AWS: a URL that reaches the
instance metadata service (169.254.169.254), the Lambda runtime API or anything else on a private network
would turn the hub into the merchant's proxy. So, in every stage:

* the name is resolved and **every** answer is checked, and the delivery connects to one of exactly those
  checked addresses (never resolving again), which defeats DNS rebinding;
* an IPv6 answer that carries an IPv4 address (IPv4-mapped, IPv4-translated, IPv4-compatible, NAT64 in
  64:ff9b::/96 and the local-use 64:ff9b:1::/48, 6to4, Teredo, ISATAP) is judged by the IPv4 address it
  carries as well as by its own block;
* only globally reachable unicast is accepted: the tables below are IANA's special-purpose registries,
  written out so that the decision does not change with the Python patch release (``is_global`` did);
* deployed stages (dev, test, prod) require https; only the local stage may reach loopback, and only when
  ``PAYHUB_WEBHOOK_ALLOW_LOOPBACK`` says so (the local stack's webhook receiver listens on 127.0.0.1).

The notify_url's *syntax* (length, characters, port range) is checked by the request models; this module
decides where the hub may connect.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from chalicelib.config.settings import settings
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.value_class import value_class

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(InvalidRequest):
    """The URL may never be called: wrong scheme, or an address the policy refuses. Not worth retrying."""


class TargetUnresolved(InvalidRequest):
    """The name did not resolve. At delivery this is an ordinary failed attempt, retried later."""


@value_class
class Target:
    """A checked webhook target: connect to one of ``addresses``, naming ``host`` in Host and TLS SNI."""

    url: str
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line
    addresses: tuple[str, ...]  # every address the name resolved to, each one checked

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def _nets(*specs: tuple[str, str]) -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]:
    return tuple((ipaddress.ip_network(net), why) for net, why in specs)


# IANA IPv4 special-purpose address registry: every block that is not globally reachable unicast.
_V4_REFUSED = _nets(
    ("0.0.0.0/8", "'this network'"), ("10.0.0.0/8", "private"), ("100.64.0.0/10", "shared address space (CGNAT)"),
    ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local (instance metadata)"),
    ("172.16.0.0/12", "private"), ("192.0.0.0/24", "IETF protocol assignments"), ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast (deprecated)"), ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"), ("198.51.100.0/24", "documentation"), ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved"),
)
# IANA IPv6 special-purpose address registry, plus the old site-local block; anything outside 2000::/3 is
# refused as well (the forms that only carry an IPv4 address are decided by that address first).
_V6_REFUSED = _nets(
    ("::/128", "unspecified"), ("::1/128", "loopback"), ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"), ("2001::/23", "IETF protocol assignments (Teredo, ORCHID, ...)"),
    ("2001:db8::/32", "documentation"), ("3fff::/20", "documentation"), ("5f00::/16", "SRv6 SIDs"),
    ("fc00::/7", "unique local"), ("fe80::/10", "link-local"), ("fec0::/10", "site-local"), ("ff00::/8", "multicast"),
)
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_V6_LOOPBACK = ipaddress.IPv6Address("::1")
# Blocks whose addresses are nothing but an IPv4 address in IPv6 form: that address alone decides.
_IPV4_CARRIERS = _nets(
    ("::ffff:0:0/96", "IPv4-mapped"), ("::ffff:0:0:0/96", "IPv4-translated"), ("::/96", "IPv4-compatible"),
    ("64:ff9b::/96", "NAT64"),
)
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_6TO4 = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")
_ISATAP_IID = 0x00005EFE  # interface identifier ::0:5efe:a.b.c.d (the u/g bits of its first octet may be set)
# RFC 6052 layouts: where the 32 IPv4 bits sit for each NAT64 prefix length (bits 64-71 are always skipped).
_RFC6052_BYTES = {48: (6, 7, 9, 10), 56: (7, 9, 10, 11), 64: (9, 10, 11, 12), 96: (12, 13, 14, 15)}
# inet_aton's legacy spellings of an IPv4 address (127.1, 0x7f.0.0.1, 017700000001, 2130706433).
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """Every IPv4 address this IPv6 address carries, with the name of the form that carries it."""
    value = int(address)
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    for net, form in _IPV4_CARRIERS:
        if address in net and value > 1:  # :: and ::1 are themselves, not IPv4-compatible 0.0.0.0/0.0.0.1
            found.append((form, ipaddress.IPv4Address(value & 0xFFFFFFFF)))
            break
    if address in _LOCAL_NAT64:  # the operator picks the prefix length inside the /48: try each layout
        packed = address.packed
        found += [(f"local-use NAT64 /{length}", ipaddress.IPv4Address(bytes(packed[i] for i in positions)))
                  for length, positions in _RFC6052_BYTES.items()]
    if address in _6TO4:
        found.append(("6to4", ipaddress.IPv4Address((value >> 80) & 0xFFFFFFFF)))
    if address in _TEREDO:
        found.append(("Teredo server", ipaddress.IPv4Address((value >> 64) & 0xFFFFFFFF)))
        found.append(("Teredo client", ipaddress.IPv4Address(~value & 0xFFFFFFFF)))  # stored XOR-ed with ones
    if (value >> 32) & 0xFCFFFFFF == _ISATAP_IID:
        found.append(("ISATAP", ipaddress.IPv4Address(value & 0xFFFFFFFF)))
    return found


def _v4_refusal(address: ipaddress.IPv4Address) -> str | None:
    return next((why for net, why in _V4_REFUSED if address in net), None)


def refusal(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why the hub must not connect to ``address``; None when it may.

    ``allow_loopback`` admits plain loopback (127.0.0.0/8, ::1) only, never loopback inside another form.
    """
    if allow_loopback and (address == _V6_LOOPBACK or (address.version == 4 and address.is_loopback)):
        return None
    if isinstance(address, ipaddress.IPv4Address):
        return _v4_refusal(address)
    carried = embedded_ipv4(address)
    for form, inner in carried:
        why = _v4_refusal(inner)
        if why:
            return f"{form} form of {inner} ({why})"
    if carried and any(address in net for net, _ in _IPV4_CARRIERS) and int(address) > 1:
        return None  # only an IPv4 address in IPv6 form, and that address is global
    why = next((why for net, why in _V6_REFUSED if address in net), None)
    if why:
        return why
    if address not in _GLOBAL_UNICAST:
        return "not global unicast"
    return None


def check_notify_url(url: str, *, param: str = "notify_url", resolve: bool = True) -> Target:
    """Refuse a target the hub must not call; return it with every checked address.

    With ``resolve=False`` a name is not looked up (``addresses`` is empty); an IP literal is always checked.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused(f"{param} must be an absolute http(s) URL", param=param)
    current = settings()
    if current.is_deployed and parts.scheme != "https":
        raise TargetRefused(f"{param} must use https", param=param)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:  # urlsplit checks the port range only when asked
        raise TargetRefused(f"{param} has an invalid port", param=param) from exc
    host = parts.hostname
    addresses = _addresses(host, port, resolve, param)
    for address in addresses:
        why = refusal(address, allow_loopback=current.webhook_allow_loopback)
        if why:
            raise TargetRefused(f"{param} resolves to an address the hub does not call: {address} is {why}",
                                param=param)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return Target(url, parts.scheme, host, port, path, tuple(dict.fromkeys(str(a) for a in addresses)))


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):  # what a resolver would turn into an IPv4 address without asking DNS
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _addresses(host: str, port: int, resolve: bool, param: str) -> list[IPAddress]:
    literal = _literal(host)
    if literal is not None:
        return [literal]
    if not resolve:
        return []
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetUnresolved(f"{param} host does not resolve", param=param) from exc
    found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not found:
        raise TargetUnresolved(f"{param} host does not resolve", param=param)
    return found
