"""Reads for research runs."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from strategies.research.exceptions import RunNotFound
from strategies.research.models import ResearchRun

# Everything but the (possibly large) result: what lists show.
LIST_FIELDS = (
    "id",
    "kind",
    "status",
    "config_id",
    "plugin",
    "requested_by",
    "inputs",
    "progress",
    "message",
    "error",
    "cancel_requested",
    "created_at",
    "started_at",
    "finished_at",
)


def runs_list(*, status: str | None = None, kind: str | None = None) -> QuerySet[ResearchRun]:
    runs = ResearchRun.objects.only(*LIST_FIELDS)
    if status:
        runs = runs.filter(status__in=status.split(","))
    if kind:
        runs = runs.filter(kind__in=kind.split(","))
    return runs


def run_get(pk: Any) -> ResearchRun:
    text = str(pk)
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise RunNotFound(f"no research run with id {pk!r}", details={"id": str(pk)[:40]})
    run = ResearchRun.objects.filter(pk=int(text)).first()
    if run is None:
        raise RunNotFound(f"no research run with id {pk!r}", details={"id": text})
    return run
