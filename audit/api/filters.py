"""`?action=`, `?via=`, `?actor=`, `?outcome=` for the audit log (`?since=`/`?until=` and
`?ordering=` come from the project's default filters). A bad value is a 400."""

from __future__ import annotations

import re

from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend

from audit.models import Outcome, Via

ACTION = re.compile(r"^[a-z_]+(\.[a-z_]+)*\.?$")
ACTION_PATTERN = r"^[a-z_]+(\.[a-z_]+)*\.?$"


def _choices(name: str, raw: str, allowed: list[str]) -> list[str]:
    wanted = [part.strip() for part in raw.split(",")]
    if not all(part in allowed for part in wanted):
        raise ValidationError({name: [f"Expected one or more of {allowed}."]})
    return wanted


class AuditFilterBackend(BaseFilterBackend):
    def filter_queryset(self, request, queryset, view):
        params = request.query_params
        if (action := params.get("action")) is not None:
            if len(action) > 64 or not ACTION.match(action):
                raise ValidationError(
                    {"action": ["Expected an action such as order.submit, or a prefix: order."]}
                )
            # "order." lists every order action; "order.submit" that one.
            if action.endswith("."):
                queryset = queryset.filter(action__startswith=action)
            else:
                queryset = queryset.filter(action=action)
        if (via := params.get("via")) is not None:
            queryset = queryset.filter(via__in=_choices("via", via, Via.values))
        if (outcome := params.get("outcome")) is not None:
            queryset = queryset.filter(outcome__in=_choices("outcome", outcome, Outcome.values))
        if (actor := params.get("actor")) is not None:
            if not actor or len(actor) > 150:
                raise ValidationError({"actor": ["Expected a username, key:<name> or system."]})
            queryset = queryset.filter(actor=actor)
        return queryset

    def get_schema_operation_parameters(self, view) -> list[dict]:
        def param(name: str, description: str, schema: dict) -> dict:
            return {
                "name": name,
                "required": False,
                "in": "query",
                "description": description,
                "schema": schema,
            }

        return [
            param(
                "action",
                "Only this action (order.submit), or every action under a prefix (order.).",
                {"type": "string", "maxLength": 64, "pattern": ACTION_PATTERN},
            ),
            param(
                "via", "Only entries that came this way.", {"type": "string", "enum": Via.values}
            ),
            param("outcome", "Only this outcome.", {"type": "string", "enum": Outcome.values}),
            param(
                "actor",
                'Only this actor: a username, "key:<key name>", a strategy config, "system".',
                {"type": "string", "minLength": 1, "maxLength": 150},
            ),
        ]
