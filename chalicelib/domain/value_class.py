"""``value_class``: a frozen dataclass whose equality, hash and repr are shared functions instead of generated ones.

``@dataclass(frozen=True)`` writes six methods for every class as source text and compiles each one (``__init__``,
``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``): ~0.5 ms of CPU a class on Python 3.11.
A payment create defines ~60 such classes before its first answer, so that compiling was a large part of the
payments function's cold start (docs/cold-start.md). Equality, hash and repr do not need code of their own per
class: they read the fields' values in order, which one function can do for every class. So this decorator
installs those three (the same results as dataclass's, held by tests/unit/domain/test_value_class.py) and lets
``dataclass`` write only ``__init__`` and the frozen guards: about a third less to compile.

Everything else is a dataclass as before (``dataclasses.fields``, ``replace``, ``asdict``, ``slots=True``), and
type checkers see one through ``dataclass_transform``. A class that writes its own ``__eq__``, ``__hash__`` or
``__repr__`` keeps it, as with ``dataclass``.
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

T = TypeVar("T")


def _compared(value: Any) -> tuple[Any, ...]:
    return tuple(getattr(value, name) for name in value.__class__.__value_compared__)


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _compared(self) == _compared(other)


def _hash(self: Any) -> int:
    return hash(tuple(getattr(self, name) for name in self.__class__.__value_hashed__))


@reprlib.recursive_repr()
def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__class__.__value_shown__)
    return f"{self.__class__.__qualname__}({shown})"


@overload
def value_class(cls: type[T], /) -> type[T]: ...


@overload
def value_class(*, slots: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def value_class(cls: Any = None, /, *, slots: bool = False) -> Any:
    """``@dataclass(frozen=True)`` (or with ``slots=True``), with the shared ``__eq__``, ``__hash__``, ``__repr__``."""

    def wrap(klass: type[T]) -> type[T]:
        own = klass.__dict__
        if "__eq__" not in own:
            klass.__eq__ = _eq  # type: ignore[assignment,method-assign]
            if "__hash__" not in own:
                klass.__hash__ = _hash  # type: ignore[assignment,method-assign]
        elif own.get("__hash__") is None:  # its own __eq__ and no __hash__: dataclass hashes the fields then too
            klass.__hash__ = _hash  # type: ignore[assignment,method-assign]
        if "__repr__" not in own:
            klass.__repr__ = _repr  # type: ignore[assignment,method-assign]
        made: type[T] = dataclasses.dataclass(klass, frozen=True, eq=False, repr=False, slots=slots)
        fields = dataclasses.fields(made)  # type: ignore[arg-type]
        made.__value_compared__ = tuple(f.name for f in fields if f.compare)  # type: ignore[attr-defined]
        made.__value_hashed__ = tuple(f.name for f in fields  # type: ignore[attr-defined]
                                      if (f.compare if f.hash is None else f.hash))
        made.__value_shown__ = tuple(f.name for f in fields if f.repr)  # type: ignore[attr-defined]
        return made

    return wrap if cls is None else wrap(cls)


def builder(cls: type[T]) -> Callable[..., T]:
    """A positional constructor of a slotted value class that has no ``__post_init__``: ``builder(C)(*values)`` is
    the instance ``C(*values)`` would be (every field given, in order), made by storing each field through its
    slot instead of through the frozen class's ``__init__`` (which goes through ``object.__setattr__`` per field):
    ~0.5 us instead of ~1 us for a class of nine fields on CPython 3.11. For loops that make tens of thousands of
    values (the DuckDB engine's differences). A class with a ``__post_init__`` is refused: its checks would be
    skipped."""
    if not dataclasses.is_dataclass(cls) or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__qualname__} is not a slotted value class")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__qualname__} checks its values in __post_init__: construct it")
    names = [f.name for f in dataclasses.fields(cls)]
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls,
                             **{f"set_{name}": cls.__dict__[name].__set__ for name in names}}
    body = "".join(f"    set_{name}(value, {name})\n" for name in names)
    exec(f"def build({', '.join(names)}):\n    value = new(cls)\n{body}    return value\n", scope)  # noqa: S102 - field names of a dataclass
    built: Callable[..., T] = scope["build"]
    built.__qualname__ = f"builder({cls.__qualname__})"
    return built
