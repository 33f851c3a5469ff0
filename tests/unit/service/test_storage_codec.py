"""Plain dicts <-> DynamoDB attribute values: floats refused on the way in, numbers come back as int."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.storage.codec import from_item, to_item, to_value

# What the hub stores: str, int, bool, nested maps and lists of those (no floats, no None inside lists).
LEAVES = st.one_of(st.text(max_size=10), st.integers(min_value=-(10**30), max_value=10**30), st.booleans())
VALUES = st.recursive(LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(min_size=1, max_size=5), inner,
                                                                      max_size=4)), max_leaves=12)


@given(item=st.dictionaries(st.text(min_size=1, max_size=8), VALUES, max_size=6))
def test_round_trip(item: dict[str, Any]) -> None:
    assert from_item(to_item(item)) == item


def test_numbers_come_back_as_int_not_decimal() -> None:
    restored = from_item(to_item({"amount": 8888, "nested": {"v": 3, "l": [1, 2]}}))
    assert restored == {"amount": 8888, "nested": {"v": 3, "l": [1, 2]}}
    assert type(restored["amount"]) is int and type(restored["nested"]["l"][0]) is int
    assert to_item({"amount": 8888}) == {"amount": {"N": "8888"}}


@pytest.mark.parametrize("value", [1.5, 0.0, {"a": 1.0}, [1, 2.5], {"a": {"b": [3.0]}}, (1.0,)])
def test_floats_refused_anywhere(value: Any) -> None:
    with pytest.raises(TypeError, match="floats"):
        to_item({"x": value})
    with pytest.raises(TypeError, match="floats"):
        to_value(value)


def test_none_attributes_dropped_not_stored_as_null() -> None:
    assert to_item({"a": 1, "b": None, "m": {"c": None, "d": "x"}}) == {"a": {"N": "1"}, "m": {"M": {"d": {"S": "x"}}}}


def test_to_value_serialises_one_value() -> None:
    assert to_value("pending") == {"S": "pending"}
    assert to_value(3) == {"N": "3"}
    assert to_value(True) == {"BOOL": True}


def test_integral_decimal_from_the_table_is_an_int() -> None:
    assert from_item({"amount": {"N": "100"}}) == {"amount": 100}
    assert from_item({"amount": {"N": "-7"}, "l": {"L": [{"N": "1"}]}}) == {"amount": -7, "l": [1]}


def test_fractional_decimal_never_silently_truncated() -> None:
    try:
        item = to_item({"fee_rate": Decimal("0.006")})
    except TypeError:
        return  # refusing it on the way in is fine too
    assert from_item(item)["fee_rate"] == Decimal("0.006")
