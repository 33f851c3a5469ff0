"""TtlCache with an injected clock: no sleeping."""

from __future__ import annotations

import pytest

from chalicelib.config.cache import TtlCache


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


class Loader:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return f"v{self.calls}"


def test_value_cached_until_ttl_expires() -> None:
    clock, load = FakeClock(), Loader()
    cache: TtlCache[str] = TtlCache(60, clock)
    assert cache.get("k", load) == "v1"
    clock.now_s += 59.999
    assert cache.get("k", load) == "v1"
    clock.now_s += 0.001  # exactly ttl: stale
    assert cache.get("k", load) == "v2"
    assert load.calls == 2
    clock.now_s += 30
    assert cache.get("k", load) == "v2"


def test_keys_are_independent() -> None:
    clock, load = FakeClock(), Loader()
    cache: TtlCache[str] = TtlCache(60, clock)
    assert cache.get("a", load) == "v1"
    assert cache.get("b", load) == "v2"
    assert cache.get("a", load) == "v1"


def test_zero_ttl_always_reloads() -> None:
    clock, load = FakeClock(), Loader()
    cache: TtlCache[str] = TtlCache(0, clock)
    assert [cache.get("k", load) for _ in range(3)] == ["v1", "v2", "v3"]


def test_invalidate_one_or_all() -> None:
    clock, load = FakeClock(), Loader()
    cache: TtlCache[str] = TtlCache(60, clock)
    cache.get("a", load), cache.get("b", load)
    cache.invalidate("a")
    assert cache.get("a", load) == "v3" and cache.get("b", load) == "v2"
    cache.invalidate("missing")  # no error
    cache.invalidate()
    assert cache.get("a", load) == "v4" and cache.get("b", load) == "v5"


def test_failed_load_is_not_cached() -> None:
    clock, calls = FakeClock(), []
    cache: TtlCache[str] = TtlCache(60, clock)

    def broken() -> str:
        calls.append(1)
        raise RuntimeError("secrets manager down")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            cache.get("k", broken)
    assert len(calls) == 2
    assert cache.get("k", lambda: "ok") == "ok"


def test_falsy_values_are_cached_too() -> None:
    clock, calls = FakeClock(), []
    cache: TtlCache[object] = TtlCache(60, clock)

    def load() -> object:
        calls.append(1)
        return None

    assert cache.get("k", load) is None and cache.get("k", load) is None
    assert len(calls) == 1
