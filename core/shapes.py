"""One declared shape per resource, and the fast encoders derived from it.

A resource's shape is declared once, as a DRF serializer: the view answers with it, the OpenAPI
schema documents it, the event payload carries it. Where a measured hot path cannot afford
`Serializer(instance).data` (about a hundred times the cost), `flat_encoder` derives a plain
function from that same declaration: one converter per declared field, chosen by the field's
type, built once. `json_object` writes an answer whose parts are partly pre-encoded JSON (rows
cached as text) under exactly the declared keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from operator import attrgetter, itemgetter
from typing import Any

from rest_framework import serializers

from core.times import iso_utc


class Money(serializers.CharField):
    """A decimal amount as a string (exact; never a float)."""


def _text(value: Any) -> Any:
    return None if value is None else str(value)


def _number(value: Any) -> Any:
    return None if value is None else float(value)


def _integer(value: Any) -> Any:
    return None if value is None else int(value)


def _time(value: Any) -> Any:
    return None if value is None else iso_utc(value)


def _same(value: Any) -> Any:
    return value


# The field types a flat shape may have, and how each value is written (first match wins).
_CONVERTERS: list[tuple[type[serializers.Field], Callable[[Any], Any]]] = [
    (Money, _text),
    (serializers.DecimalField, _text),
    (serializers.UUIDField, _text),
    (serializers.DateTimeField, _time),
    (serializers.FloatField, _number),
    (serializers.IntegerField, _integer),
    (serializers.BooleanField, _same),
    (serializers.ChoiceField, _same),
    (serializers.CharField, _same),
]


def _converter(name: str, field: serializers.Field) -> Callable[[Any], Any]:
    for kind, convert in _CONVERTERS:
        if isinstance(field, kind):
            return convert
    raise TypeError(f"{name}: {type(field).__name__} has no fast encoding; use the serializer")


@cache
def flat_encoder(
    serializer_class: type[serializers.Serializer], *, items: bool = False
) -> Callable[[Any], dict[str, Any]]:
    """`Serializer(value).data` for a flat shape (scalar fields only), as a plain function.

    Reads attributes of an object, or keys of a mapping with `items=True`. Strings stay as they
    are, decimals and UUIDs become strings, datetimes ISO-8601 in UTC with a Z."""
    fields = serializer_class().fields
    getter = itemgetter if items else attrgetter
    plan = [
        (name, getter(field.source or name), _converter(name, field))
        for name, field in fields.items()
    ]

    def encode(value: Any) -> dict[str, Any]:
        return {name: convert(read(value)) for name, read, convert in plan}

    encode.__doc__ = f"{serializer_class.__name__}'s shape, encoded directly."
    return encode


class RawJSON(str):
    """JSON text already encoded (e.g. rows cached as text), spliced into `json_object` as is."""


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@cache
def _declared_names(serializer_class: type[serializers.Serializer]) -> tuple[str, ...]:
    return tuple(serializer_class().fields)


def json_object(serializer_class: type[serializers.Serializer], values: Mapping[str, Any]) -> str:
    """The JSON text of `values` under exactly the keys `serializer_class` declares (a missing
    or unknown key is a bug and raises); RawJSON values are spliced in without re-encoding."""
    names = _declared_names(serializer_class)
    if len(values) != len(names) or not all(name in values for name in names):
        raise ValueError(
            f"{serializer_class.__name__} declares {sorted(names)}, got {sorted(values)}"
        )
    parts = []
    for name in names:
        value = values[name]
        parts.append(f"{_dumps(name)}:{value if isinstance(value, RawJSON) else _dumps(value)}")
    return "{" + ",".join(parts) + "}"
