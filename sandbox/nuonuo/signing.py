"""Nuonuo's request signature, ``X-Nuonuo-Sign``: base64(HMAC-SHA1(appSecret, canonical string)).

The canonical string spells the fixed path ``/open/v1/services`` backwards (``a=services&l=v1&p=open``), then the
appKey, the request's ``senid``, ``nonce`` and ``timestamp`` (all three also sent in the query string), and the
exact body text: ``a=services&l=v1&p=open&k=<appKey>&i=<senid>&n=<nonce>&t=<timestamp>&f=<body>``.
Written here from the published rule, independently of the hub's client, so each checks the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def canonical(app_key: str, senid: str, nonce: str, timestamp: str, body: str) -> str:
    return f"a=services&l=v1&p=open&k={app_key}&i={senid}&n={nonce}&t={timestamp}&f={body}"


def sign(app_secret: str, app_key: str, senid: str, nonce: str, timestamp: str, body: str) -> str:
    digest = hmac.new(app_secret.encode(), canonical(app_key, senid, nonce, timestamp, body).encode(), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode()


def verify(app_secret: str, app_key: str, senid: str, nonce: str, timestamp: str, body: str, given: str) -> bool:
    return hmac.compare_digest(sign(app_secret, app_key, senid, nonce, timestamp, body), given)
