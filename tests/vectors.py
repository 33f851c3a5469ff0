"""The channels' own signed samples, committed under tests/fixtures (see docs/real-channel-material.md for
where each came from). Never skipped: a missing file fails loudly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def load_fixture(name: str) -> dict[str, Any]:
    """One JSON fixture file from tests/fixtures, by file name."""
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return loaded


def load_vectors() -> dict[str, Any]:
    return load_fixture("real_channel_samples.json")
