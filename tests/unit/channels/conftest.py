"""Fixtures for channel tests; the helpers themselves live in ``wechatpay_kit`` so tests can import them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from wechatpay_kit import NOW_TS, PlatformKey, WeChatKit, make_kit

from chalicelib.channels.base import HttpResponse


@pytest.fixture(scope="session")
def kit() -> WeChatKit:
    # RSA-2048 generation is slow; one set of keys serves the whole session.
    return make_kit()


@pytest.fixture
def signed_response(kit: WeChatKit) -> Callable[..., HttpResponse]:
    """Build a response signed by the test platform key, the way the WeChat sandbox signs them."""

    def build(status: int, payload: dict[str, Any] | None = None, *, key: PlatformKey | None = None,
              ts: int = NOW_TS, sign: bool = True) -> HttpResponse:
        body = b"" if payload is None else json.dumps(payload).encode()
        headers = {"content-type": "application/json", "request-id": "08F78BB5AF0610D302"}
        if sign:
            headers.update(kit.signed_headers(body, key, ts=ts, with_type=False))
        return HttpResponse(status=status, headers=headers, body=body)

    return build
