"""A model class validated by pydantic-core alone: the part of ``BaseModel``'s interface the hub uses.

Importing pydantic's ``BaseModel`` and building one model costs a function ~30 ms of CPU on its first request
(pydantic's own dataclasses, its schema generator), as much as the whole cold-start budget above the floor. A
``LightModel`` subclass names the ``BaseModel`` it stands for (``_source``, the single source of truth) and the
generated module holding that model's core schema (``_schemas``, written by ``chalicelib.validation.codegen``);
its validator is built from that schema on first use. Because the schema is pydantic's own, validation gives the
same values, the same coercions and the same ``ValidationError`` (title, locations, types, messages).

pydantic-core creates instances itself (``__new__``, then ``__dict__`` and the bookkeeping slots below), so a
subclass adds no ``__init__`` logic and declares its fields as annotations only, for readers and mypy.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic_core import SchemaValidator, ValidationError, to_json, to_jsonable_python


def _import(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _plain(value: Any, exclude_none: bool) -> Any:
    """``value`` as ``BaseModel.model_dump`` gives it: nested models as dicts, containers kept as they are."""
    if isinstance(value, LightModel):
        return value.model_dump(exclude_none=exclude_none)
    if isinstance(value, dict):
        return {k: _plain(v, exclude_none) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v, exclude_none) for v in value)
    return value


class LightModel:
    # pydantic-core's model validator sets these on every instance it makes, as on a BaseModel.
    __slots__ = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")

    _source: ClassVar[str]  # "module:Class" of the BaseModel this stands for
    _schemas: ClassVar[str]  # the generated module whose SCHEMAS, CONFIGS and HIDDEN hold this class's entry
    _frozen: ClassVar[bool] = False  # as the BaseModel's ``frozen`` config
    _built: ClassVar[SchemaValidator | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._built = None  # each subclass builds its own validator

    @classmethod
    def _core_schema(cls) -> dict[str, Any]:
        return importlib.import_module(cls._schemas).SCHEMAS[cls.__name__]  # type: ignore[no-any-return]

    @classmethod
    def _validator(cls) -> SchemaValidator:
        if cls._built is None:
            config = importlib.import_module(cls._schemas).CONFIGS[cls.__name__]
            cls._built = SchemaValidator(cls._core_schema(), config)  # type: ignore[arg-type]
        return cls._built

    @classmethod
    def _fields(cls) -> dict[str, Any]:
        """The model's fields as its core schema declares them (a model validator wraps the model schema)."""
        schema = cls._core_schema()
        while schema["type"] != "model":
            schema = schema["schema"]
        return schema["schema"]["fields"]  # type: ignore[no-any-return]

    @classmethod
    def model_fields_names(cls) -> tuple[str, ...]:
        return tuple(cls._fields())

    def __init__(self, **data: Any) -> None:
        self._validator().validate_python(data, self_instance=self)

    @classmethod
    def model_validate(cls, obj: Any) -> Self:
        return cls._validator().validate_python(obj)  # type: ignore[no-any-return]

    @classmethod
    def model_validate_json(cls, data: str | bytes) -> Self:
        return cls._validator().validate_json(data)  # type: ignore[no-any-return]

    @classmethod
    def model_construct(cls, **values: Any) -> Self:
        """An instance from trusted values, unvalidated; absent fields take their defaults (as ``BaseModel``)."""
        fields: dict[str, Any] = {}
        for name, field in cls._fields().items():
            if name in values:
                fields[name] = values[name]
            elif field["schema"]["type"] == "default":
                default = field["schema"]
                fields[name] = default["default_factory"]() if "default_factory" in default else default["default"]
        instance = cls.__new__(cls)
        object.__setattr__(instance, "__dict__", fields)
        object.__setattr__(instance, "__pydantic_fields_set__", set(values))
        object.__setattr__(instance, "__pydantic_extra__", None)
        object.__setattr__(instance, "__pydantic_private__", None)
        return instance

    @classmethod
    def model_json_schema(cls, **kwargs: Any) -> dict[str, Any]:
        """The BaseModel's JSON Schema (the OpenAPI document's): it loads pydantic's model machinery, once."""
        return _import(cls._source).model_json_schema(**kwargs)  # type: ignore[no-any-return]

    def model_dump(self, *, mode: str = "python", exclude_none: bool = False) -> dict[str, Any]:
        fields = {k: _plain(v, exclude_none) for k, v in self.__dict__.items() if not (exclude_none and v is None)}
        # inf_nan_mode="null": as BaseModel writes them (a JSON body parsed by json.loads may carry Infinity or NaN
        # into a free-form field); JSON has no such numbers.
        return to_jsonable_python(fields, inf_nan_mode="null") if mode == "json" else fields  # type: ignore[no-any-return]

    def model_dump_json(self) -> str:
        return to_json(self.model_dump(), inf_nan_mode="null").decode()

    def __getstate__(self) -> dict[str, Any]:
        return {"__dict__": self.__dict__, "fields_set": object.__getattribute__(self, "__pydantic_fields_set__")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """copy, deepcopy and pickle restore an instance here (a frozen one refuses ``setattr``, as it should)."""
        object.__setattr__(self, "__dict__", state["__dict__"])
        object.__setattr__(self, "__pydantic_fields_set__", state["fields_set"])
        object.__setattr__(self, "__pydantic_extra__", None)
        object.__setattr__(self, "__pydantic_private__", None)

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> Self:
        """A shallow copy with ``update`` laid over it, unvalidated (as pydantic's ``model_copy``)."""
        return self.__class__.model_construct(**{**self.__dict__, **(update or {})})

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen:
            raise ValidationError.from_exception_data(self.__class__.__name__, [
                {"type": "frozen_instance", "loc": (name,), "input": value}])
        if name not in self.__dict__:
            raise ValueError(f'"{self.__class__.__name__}" object has no field "{name}"')
        self.__dict__[name] = value

    def __delattr__(self, name: str) -> None:
        if self._frozen:  # as a frozen BaseModel refuses it
            raise ValidationError.from_exception_data(self.__class__.__name__, [
                {"type": "frozen_instance", "loc": (name,), "input": None}])
        raise AttributeError(name)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        if not self._frozen:  # a mutable BaseModel is unhashable
            raise TypeError(f"unhashable type: '{self.__class__.__name__}'")
        return hash((self.__class__, *self.__dict__.values()))

    def _shown(self) -> list[str]:
        hidden = importlib.import_module(self._schemas).HIDDEN.get(self.__class__.__name__, ())
        return [f"{k}={v!r}" for k, v in self.__dict__.items() if k not in hidden]

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({', '.join(self._shown())})"

    def __str__(self) -> str:
        return " ".join(self._shown())
