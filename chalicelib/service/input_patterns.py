"""The syntax of free text and URLs in requests, as regular expressions.

Each pattern is both what request validation runs (pydantic, Rust regex engine) and what the OpenAPI document
publishes (ECMA-262 regex), so it is written in the subset the engines read alike: no look-around, no
``\\d``/``\\s``/``\\w`` (their Unicode meaning differs), explicit character classes only. Anchors ``^…$``
make a pattern a whole-value match.
"""

from __future__ import annotations

# Control characters (C0, DEL, C1) are refused in every free-text field: text goes on to channels (which
# refuse or mangle them), to logs and to webhooks. NUL in particular truncates strings in C code downstream.
TEXT = r"^[^\x00-\x1f\x7f-\x9f]*$"

# URLs the hub calls (notify_url) or sends the payer to (return_url): absolute http(s), RFC 3986 syntax in
# ASCII, no user info (credentials in a URL end up in logs), a host that is a DNS name, an IPv4 address or a
# bracketed IPv6 address, and a port from 1 to 65535. What the SSRF policy further requires of the address is
# checked after syntax, in webhook_targets.
_DEC_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"(?:{_DEC_OCTET}\.){{3}}{_DEC_OCTET}"
_H16 = r"[0-9A-Fa-f]{1,4}"
_LS32 = rf"(?:{_H16}:{_H16}|{_IPV4})"


def _ipv6() -> str:
    """RFC 3986 ``IPv6address``: eight groups, or fewer around one ``::``, the last two possibly an IPv4."""
    forms = [rf"(?:{_H16}:){{6}}{_LS32}", rf"::(?:{_H16}:){{5}}{_LS32}"]
    # [ *n( h16 ":" ) h16 ] "::" then what is left of the eight groups
    tails = [rf"(?:{_H16}:){{4}}{_LS32}", rf"(?:{_H16}:){{3}}{_LS32}", rf"(?:{_H16}:){{2}}{_LS32}",
             rf"{_H16}:{_LS32}", _LS32, _H16, ""]
    for before, tail in enumerate(tails):
        head = rf"(?:(?:{_H16}:){{0,{before}}}{_H16})?" if before else rf"(?:{_H16})?"
        forms.append(rf"{head}::{tail}")
    return "(?:" + "|".join(forms) + ")"


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[{_ipv6()}\])"
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_PCHAR = r"(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
_QCHAR = r"(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})"
URL = rf"^https?://{_HOST}(?::{_PORT})?(?:/{_PCHAR}*)*(?:\?{_QCHAR}*)?(?:#{_QCHAR}*)?$"
