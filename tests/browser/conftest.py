"""Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright for Python; no browser download) against
the local stack and the channel sandboxes of tests/conftest.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import CHROMIUM, CHROMIUM_ARGS, launch  # noqa: F401 - the browser fixture is tests/conftest.py's

ROOT = Path(__file__).resolve().parents[2]
# Where the screenshots go: build/screenshots by default, so a test run leaves the tree clean;
# `PAYHUB_SCREENSHOTS=docs/images` refreshes the README's pictures (look at them before committing).
IMAGES = ROOT / os.environ.get("PAYHUB_SCREENSHOTS", "build/screenshots")
PHONE = {"width": 390, "height": 844}  # the page is mobile first: the screenshots show a phone's screen


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A fresh phone-sized browser context in English; every CSP violation or page error fails the test."""
    context = browser.new_context(viewport=PHONE, locale="en-US", device_scale_factor=1)
    problems: list[str] = []

    def watch(page: Any) -> None:
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))

    context.on("page", watch)
    yield context
    context.close()
    hub_problems = [p for p in problems if "Content Security Policy" in p or "Refused" in p]
    assert not hub_problems, hub_problems


def shot(page: Any, name: str) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / f"checkout-{name}.png"), full_page=True)
