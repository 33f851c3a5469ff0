"""Plain dicts <-> DynamoDB attribute values."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def _prepare(value: Any) -> Any:
    if isinstance(value, float):
        raise TypeError("floats are not stored; use int minor units or str")
    if isinstance(value, Decimal) and value != value.to_integral_value():
        raise TypeError("fractional Decimals are not stored as numbers (they would come back as int); use str")
    if isinstance(value, Mapping):
        return {k: _prepare(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_prepare(v) for v in value]
    return value


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SERIALIZER.serialize(_prepare(v)) for k, v in values.items() if v is not None}


def to_value(value: Any) -> dict[str, Any]:
    serialized: dict[str, Any] = dict(_SERIALIZER.serialize(_prepare(value)))
    return serialized


def _restore(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _restore(_DESERIALIZER.deserialize(v)) for k, v in item.items()}
