"""Stripe-Version: every published version is accepted, the SDKs' defaults included; others are refused."""

from __future__ import annotations

from datetime import date

import pytest

from sandbox.stripe.versions import is_accepted

TODAY = date(2026, 12, 1)


@pytest.mark.parametrize("version", [
    "2020-08-27", "2022-11-15", "2024-06-20",  # bare dates, before release trains
    "2024-09-30.acacia", "2024-12-18.acacia", "2025-03-31.basil", "2025-08-27.basil", "2025-09-30.clover",
    "2026-03-31.dahlia", "2026-10-28.endive",
])
def test_published_versions_are_accepted(version: str) -> None:
    assert is_accepted(version, TODAY)


@pytest.mark.parametrize("version", [
    "", "latest", "2024-13-01", "2025-02-30",  # not a version at all
    "2024-09-30", "2025-09-30",  # a trained era date without its train
    "2024-06-20.acacia",  # a bare-date era version with a name
    "2025-03-31.acacia", "2025-03-30.basil",  # the wrong train for the date
    "2027-01-15.endive",  # not published yet
    "2010-12-31",  # before Stripe's API had versions
])
def test_other_versions_are_refused(version: str) -> None:
    assert not is_accepted(version, TODAY)
