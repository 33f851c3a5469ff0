"""The channels' own signed samples. The shared copy beside the repository is the source of truth; the copy
in tests/fixtures keeps the tests runnable from a lone clone. Never skipped: a missing file fails loudly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = (_REPO.parent / "shared" / "vectors" / "real_channel_samples.json",
               _REPO / "tests" / "fixtures" / "real_channel_samples.json")


def load_vectors() -> dict[str, Any]:
    for path in _CANDIDATES:
        if path.exists():
            loaded: dict[str, Any] = json.loads(path.read_text())
            return loaded
    raise FileNotFoundError(f"channel vectors not found in {[str(p) for p in _CANDIDATES]}")
