"""The channels' own signed samples (real messages made by the channels, kept in tests/fixtures so the tests
need nothing outside the repository). Never skipped: a missing file fails loudly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VECTORS_PATH = Path(__file__).resolve().parent / "fixtures" / "real_channel_samples.json"


def load_vectors() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(VECTORS_PATH.read_text())
    return loaded
