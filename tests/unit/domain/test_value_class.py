"""``value_class`` is ``dataclass(frozen=True)`` with shared equality, hash and repr: each class below is declared both
ways and must behave the same (values, hashes, reprs, ``NotImplemented`` across classes, recursion, slots, a class's
own methods kept)."""

from __future__ import annotations

import dataclasses
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.value_class import builder, value_class


def _pair(body: dict[str, Any], annotations: dict[str, Any], slots: bool = False) -> tuple[type, type]:
    ours = value_class(slots=slots)(type("Sample", (), {"__annotations__": dict(annotations), **body}))
    theirs = dataclass(frozen=True, slots=slots)(type("Sample", (), {"__annotations__": dict(annotations), **body}))
    return ours, theirs


SHAPES = {
    "plain": ({"c": None}, {"a": "int", "b": "str", "c": "Any"}),
    "compare=False, repr=False, hash=True": (
        {"b": field(default="x", compare=False), "c": field(default=None, repr=False),
         "d": field(default=0, hash=False)}, {"a": "int", "b": "str", "c": "Any", "d": "int"}),
    "no fields": ({}, {}),
}
VALUES = st.tuples(st.integers(-3, 3), st.sampled_from(["x", "y", "茶"]), st.none() | st.integers(0, 2) | st.text(max_size=2))


@pytest.mark.parametrize("slots", [False, True])
@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
@given(left=VALUES, right=VALUES)
def test_equality_hash_and_repr_are_dataclasses(shape: str, slots: bool, left: tuple, right: tuple) -> None:
    ours, theirs = _pair(*SHAPES[shape], slots=slots)
    names = [f.name for f in dataclasses.fields(theirs)]
    mine = [ours(*left[:len(names)]), ours(*right[:len(names)])]
    reference = [theirs(*left[:len(names)]), theirs(*right[:len(names)])]
    assert (mine[0] == mine[1]) == (reference[0] == reference[1])
    assert (mine[0] != mine[1]) == (reference[0] != reference[1])
    assert hash(mine[0]) == hash(reference[0])
    assert repr(mine[0]) == repr(reference[0])
    assert mine[0].__eq__(reference[0]) is NotImplemented and mine[0] != reference[0]
    assert dataclasses.replace(mine[0]) == mine[0] and dataclasses.asdict(mine[0]) == dataclasses.asdict(reference[0])
    if names:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(mine[0], names[0], 1)


@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
@given(values=VALUES)
def test_a_builder_makes_the_instance_the_constructor_makes(shape: str, values: tuple) -> None:
    cls, _ = _pair(*SHAPES[shape], slots=True)
    names = [f.name for f in dataclasses.fields(cls)]
    given_values = (*values, 7)[:len(names)]  # a builder takes every field
    built, made = builder(cls)(*given_values), cls(*given_values)
    assert type(built) is cls and built == made and hash(built) == hash(made) and repr(built) == repr(made)
    assert [getattr(built, name) for name in names] == list(given_values)
    if names:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(built, names[0], 1)


def test_a_builder_is_refused_for_a_class_that_checks_its_values_or_has_no_slots() -> None:
    @value_class(slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("negative")

    @value_class
    class Unslotted:
        a: int

    for cls in (Checked, Unslotted, dict):
        with pytest.raises(TypeError):
            builder(cls)


def test_a_class_keeps_its_own_methods_and_hashes_its_fields_when_it_only_defines_eq() -> None:
    @value_class
    class Shown:
        secret: str

        def __repr__(self) -> str:
            return "Shown(***)"

    @value_class
    class OwnEq:
        a: int

        def __eq__(self, other: object) -> bool:
            return True

    @dataclass(frozen=True)
    class OwnEqReference:
        a: int

        def __eq__(self, other: object) -> bool:
            return True

    assert repr(Shown("pw")) == "Shown(***)"
    assert OwnEq(1) == OwnEq(2) and hash(OwnEq(5)) == hash(OwnEqReference(5))


def test_subclasses_compare_by_their_own_fields_and_not_with_their_base() -> None:
    @value_class
    class Base:
        a: int

    @value_class
    class Child(Base):
        b: int = 0

    assert Child(1, 2) == Child(1, 2) and Child(1, 2) != Child(1, 3) and Base(1) != Child(1)
    assert repr(Child(1, 2)) == "test_subclasses_compare_by_their_own_fields_and_not_with_their_base.<locals>.Child(a=1, b=2)"


def test_a_value_that_contains_itself_is_shown_without_recursing() -> None:
    @value_class
    class Box:
        items: list[Any]

    box = Box([])
    box.items.append(box)
    assert repr(box) == "test_a_value_that_contains_itself_is_shown_without_recursing.<locals>.Box(items=[...])"


def test_the_hub_declares_its_frozen_dataclasses_as_value_classes() -> None:
    """One way to write a frozen value class, so the cold-start saving holds as code is added."""
    root = pathlib.Path(__file__).resolve().parents[3]
    found = [f"{path.relative_to(root)}:{n}" for folder in ("chalicelib", "functions")
             for path in sorted((root / folder).rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), start=1)
             if re.match(r"\s*@dataclass\(.*frozen=True", line)]
    assert found == []
