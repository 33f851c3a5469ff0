"""The one HTTP call provisioners make: JSON to a sandbox's control API."""

from __future__ import annotations

import json
from typing import Any

import urllib3


def post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = urllib3.request("POST", url, json=body, timeout=10.0)
    if response.status != 200:
        raise RuntimeError(f"sandbox answered {response.status}: {response.data[:200]!r}")
    loaded: dict[str, Any] = json.loads(response.data)
    return loaded
