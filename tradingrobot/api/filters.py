"""Filters and ordering every list view gets by default (REST_FRAMEWORK DEFAULT_FILTER_BACKENDS).

`?symbol=`, `?status=`, `?strategy=` (a strategy config's id or name), `?since=` / `?until=`
(ISO-8601 date or date-time, on the model's time field) and `?ordering=`. Each applies only where
the list's model has the field, and a bad value is a 400, never silently ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from django.core.exceptions import FieldDoesNotExist
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend, OrderingFilter

# The first of these a model has is the one ?since= and ?until= bound.
TIME_FIELDS = ("executed_at", "timestamp", "created_at", "started_at", "updated_at", "at")
STRATEGY_PATHS = ("strategy_config", "order__strategy_config")


def _model(view):
    queryset = getattr(view, "queryset", None)
    if queryset is not None:
        return queryset.model
    serializer_class = getattr(view, "serializer_class", None)
    meta = getattr(serializer_class, "Meta", None)
    return getattr(meta, "model", None)


def _field(model, path: str):
    """The model field at a `a__b` path, or None."""
    field = None
    for part in path.split("__"):
        if model is None:
            return None
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
        model = field.related_model
    return field


def _time_field(model) -> str | None:
    return next((name for name in TIME_FIELDS if _field(model, name) is not None), None)


def parse_moment(name: str, value: str, *, end: bool = False) -> datetime:
    """An ISO-8601 date or date-time as an aware UTC datetime; anything else is a 400."""
    invalid = ValidationError({name: ["Expected an ISO-8601 date or date-time."]})
    try:
        moment = parse_datetime(value) if "T" in value or " " in value else None
        if moment is None:
            day = parse_date(value)
            if day is None:
                raise invalid
            moment = datetime.combine(day, time.max if end else time.min)
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, UTC)
        # In UTC: databases refuse odd offsets (PostgreSQL: beyond +-15:59).
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise invalid from None


class CommonFilterBackend(BaseFilterBackend):
    def filter_queryset(self, request, queryset, view):
        model = queryset.model
        params = request.query_params
        if (symbol := params.get("symbol")) is not None and _field(model, "symbol"):
            symbol = symbol.strip().upper()
            if not symbol or len(symbol) > 16:
                raise ValidationError({"symbol": ["Expected a ticker symbol."]})
            queryset = queryset.filter(symbol=symbol)
        if (status := params.get("status")) is not None and (field := _field(model, "status")):
            allowed = [value for value, _label in field.choices or []]
            # One status or a comma-separated list of them (?status=new,accepted).
            wanted = [part.strip() for part in status.split(",")]
            if allowed and not all(part in allowed for part in wanted):
                raise ValidationError({"status": [f"Expected one or more of {allowed}."]})
            queryset = queryset.filter(status__in=wanted)
        if (strategy := params.get("strategy")) is not None:
            path = next((p for p in STRATEGY_PATHS if _field(model, p) is not None), None)
            if path:
                # ASCII digits only: "³".isdigit() is true, and int("³") fails.
                by_id = strategy.isascii() and strategy.isdigit()
                lookup = f"{path}__pk" if by_id else f"{path}__name"
                queryset = queryset.filter(**{lookup: strategy})
        if time_field := _time_field(model):
            if (since := params.get("since")) is not None:
                queryset = queryset.filter(**{f"{time_field}__gte": parse_moment("since", since)})
            if (until := params.get("until")) is not None:
                queryset = queryset.filter(
                    **{f"{time_field}__lte": parse_moment("until", until, end=True)}
                )
        return queryset

    def get_schema_operation_parameters(self, view) -> list[dict]:
        model = _model(view)
        if model is None:
            return []
        parameters = []

        def add(name: str, description: str, schema: dict) -> None:
            parameters.append(
                {
                    "name": name,
                    "required": False,
                    "in": "query",
                    "description": description,
                    "schema": schema,
                }
            )

        if _field(model, "symbol"):
            add("symbol", "Only this ticker symbol.", {"type": "string", "maxLength": 16})
        if (field := _field(model, "status")) and field.choices:
            add(
                "status",
                "Only this status.",
                {"type": "string", "enum": [c for c, _ in field.choices]},
            )
        if any(_field(model, p) for p in STRATEGY_PATHS):
            add("strategy", "Only this strategy config (id or name).", {"type": "string"})
        if time_field := _time_field(model):
            add(
                "since",
                f"{time_field} at or after (ISO-8601).",
                {"type": "string", "format": "date-time"},
            )
            add(
                "until",
                f"{time_field} at or before (ISO-8601).",
                {"type": "string", "format": "date-time"},
            )
        return parameters


class Ordering(OrderingFilter):
    """`?ordering=field,-field` over the list's serializer fields that are database columns;
    an unknown field is a 400 (DRF would silently ignore it)."""

    def orderable(self, model, view, request=None) -> list[str]:
        if model is None:
            return []
        try:
            fields = self.get_valid_fields(
                model._default_manager.none(), view, {"request": request}
            )
        except Exception:  # noqa: BLE001 - a view with no serializer to read fields from
            return []
        return sorted(
            name
            for name, _label in fields
            if (field := _field(model, name)) is not None and getattr(field, "concrete", False)
        )

    def get_ordering(self, request, queryset, view):
        raw = request.query_params.get(self.ordering_param)
        if raw is None:
            return self.get_default_ordering(view)
        terms = [term.strip() for term in raw.split(",") if term.strip()]
        valid = self.orderable(queryset.model, view, request)
        bad = [term for term in terms if term.lstrip("-") not in valid or term.startswith("--")]
        if bad or not terms:
            raise ValidationError(
                {self.ordering_param: [f"Unknown ordering field(s) {bad}; expected {valid}."]}
            )
        return terms

    def get_schema_operation_parameters(self, view) -> list[dict]:
        fields = self.orderable(_model(view), view)
        if not fields:
            return []
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": "Sort by these fields (comma-separated; '-' for descending).",
                "schema": {"type": "string", "enum": fields + [f"-{name}" for name in fields]},
            }
        ]
