"""The hub's X-Nuonuo-Sign against the sandbox's independent implementation and a hand-computed value."""

from __future__ import annotations

import base64
import hashlib
import hmac

from chalicelib.invoices.nuonuo import sign
from sandbox.nuonuo import signing


def test_signature_matches_the_published_rule():
    body = '{"order":{"orderNo":"PH1","buyerName":"张三"}}'
    message = ("a=services&l=v1&p=open&k=appkey1&i=" + "a" * 32 + "&n=12345678&t=1700000000&f=" + body).encode()
    expected = base64.b64encode(hmac.new(b"secret", message, hashlib.sha1).digest()).decode()
    assert sign("secret", "appkey1", "a" * 32, "12345678", "1700000000", body) == expected
    assert signing.verify("secret", "appkey1", "a" * 32, "12345678", "1700000000", body, expected)
    assert not signing.verify("secret", "appkey1", "a" * 32, "12345678", "1700000000", body + " ", expected)
    assert not signing.verify("other", "appkey1", "a" * 32, "12345678", "1700000000", body, expected)
